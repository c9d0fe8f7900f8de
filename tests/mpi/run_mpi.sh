#!/usr/bin/env bash
# The distributed nnlift train under mpirun: byte-identical models for 1, 2 and 3 processes
# (and without mpirun), from one CSV and from shards; a malformed row in one process's share and
# a missing shard fail cleanly. Usage: run_mpi.sh NNLIFT MPIEXEC WORK_DIR
set -uo pipefail
nnlift=$1
mpiexec=$2
work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
# Containers often run as root; Open MPI refuses that unless told.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
run() { "$mpiexec" --oversubscribe -np "$@"; }
# expect_error WHAT PATTERN MODEL NP ARGS...: `nnlift ARGS` on NP processes exits 1 with a message
# matching PATTERN (grep) and writes no MODEL file; prints the message.
expect_error() {
  local what=$1 pattern=$2 model=$3 np=$4
  shift 4
  local out rc
  out=$(timeout 120 "$mpiexec" --oversubscribe -np "$np" "$nnlift" "$@" 2>&1)
  rc=$?
  [ "$rc" -eq 1 ] || fail "$what: exit $rc, expected 1"
  grep -q "$pattern" <<< "$out" || fail "$what: message: $out"
  [ ! -e "$model" ] || fail "$what: a model file was written"
  echo "ok: $what: $(grep -m 1 "$pattern" <<< "$out")"
}

# 20011 rows: not a multiple of the 8192-row block nor of the vector width.
"$nnlift" synth --dim 8 --hidden 3 --samples 20011 --noise 0.05 --seed 3 --out train.csv \
  --truth truth.json > /dev/null 2>&1 || fail "synth"
"$nnlift" synth --dim 6 --hidden 2 --samples 12011 --task classification --seed 4 --out classes.csv \
  --truth classes_truth.json > /dev/null 2>&1 || fail "synth classes"
# 45 inputs: the quadratic control variate in all of them is too costly at this n, so the one in
# the subspace's coordinates is used, and with --subspace-sample-rows 3000 both HOOIs run on a
# strided sample of the rows (every 7th, by global row index) before the HOOI over all rows.
"$nnlift" synth --dim 45 --hidden 2 --samples 20003 --noise 0.05 --seed 4 --out wide.csv \
  --truth wide_truth.json > /dev/null 2>&1 || fail "synth wide"

# Log-normal inputs (x -> e^x on every input column): the default score model finds them
# heavy-tailed and tries the rank-Gauss map on validation rows, from a sample gathered from every
# process.
awk -F, -v OFS=, 'NR == 1 { print; next } { for (i = 1; i < NF; ++i) $i = exp($i); print }' \
  train.csv > heavy.csv
out=$("$nnlift" train --data heavy.csv --hidden 3 --model heavy.json 2>&1)
grep -q 'columns heavy-tailed' <<< "$out" || fail "heavy.csv: the inputs were not found heavy-tailed"

# Identical model files for every process count (the job includes a validation split and the
# refinement's weight-decay choice and early stopping).
# (np 2 and 3 for every job; np 1 for the first only, to keep the test short.)
# (classes.csv has 6 inputs: --hidden 8 adds two extra units, seeded by the global seed.)
for spec in "train.csv --hidden 3 --refine lbfgs" "classes.csv --hidden 8" \
            "train.csv --hidden auto --score auto" "heavy.csv --hidden 3" \
            "wide.csv --hidden 2 --subspace-sample-rows 3000"; do
  set -- $spec
  data=$1
  shift
  "$nnlift" train --data "$data" "$@" --model alone.json --quiet || fail "$spec: without mpirun"
  counts="2 3"
  [ "$data $1" = "train.csv --hidden" ] && [ "$2" = 3 ] && counts="1 2 3"
  for p in $counts; do
    run "$p" "$nnlift" train --data "$data" "$@" --model "np$p.json" --quiet --threads 1 ||
      fail "$spec: np $p exited $?"
    cmp -s alone.json "np$p.json" || fail "$spec: np $p model differs from the one-process model"
  done
  if [ "$data" = wide.csv ]; then
    grep -q '"subspace_sample_rows": 2858' alone.json || fail "$spec: the sample was not used"
  fi
  echo "ok: $spec: np $counts and no mpirun give the same model file"
done

# Shards: a glob over five files, read by three processes, gives the one-file model.
head -n 1 train.csv > header
tail -n +2 train.csv | split -l 4500 - shard-
for f in shard-a?; do cat header "$f" > "$f.csv" && rm "$f"; done
"$nnlift" train --data train.csv --hidden 3 --model whole.json --quiet
run 3 "$nnlift" train --data 'shard-*.csv' --hidden 3 --model shards.json --quiet ||
  fail "shards: exited $?"
cmp -s whole.json shards.json || fail "shards: the model differs from the one-file model"
echo "ok: five shards over three processes give the one-file model"
# Empty shards (header only, as a partition without rows): the same model, whichever process
# reads them (with four processes, the first reads only the empty one).
cp header shard-a0.csv && cp header shard-zz.csv
run 4 "$nnlift" train --data 'shard-*.csv' --hidden 3 --model empty.json --quiet ||
  fail "empty shards: exited $?"
cmp -s whole.json empty.json || fail "empty shards: the model differs from the one-file model"
rm -f shard-a0.csv shard-zz.csv
echo "ok: two empty shards among five, over four processes, give the one-file model"

# A .npy file (nnlift convert) is shared as row ranges: two processes give the one-file model.
"$nnlift" convert --data train.csv --out train.npy --quiet || fail "convert"
run 2 "$nnlift" train --data train.npy --hidden 3 --model npy2.json --quiet --threads 1 ||
  fail "npy: exited $?"
cmp -s whole.json npy2.json || fail "npy: the model differs from the CSV's one-process model"
echo "ok: a .npy file over two processes gives the CSV's model"

# Inputs of 32 MB or more: every process restarts itself with glibc's huge pages before MPI
# starts (src/cli/main.cpp), and the model is still the one-process model.
"$nnlift" synth --dim 100 --hidden 3 --samples 42000 --noise 0.05 --seed 6 --out big.csv \
  --truth big_truth.json > /dev/null 2>&1 || fail "synth big"
"$nnlift" convert --data big.csv --out big.npy --quiet || fail "convert big"
[ "$(stat -c %s big.npy)" -ge $((32 << 20)) ] || fail "big.npy is under 32 MB"
# (A sanitizer build keeps its own allocator and does not restart.)
if [ "${NNLIFT_SANITIZED:-OFF}" != ON ]; then
  env -u GLIBC_TUNABLES -u LD_PRELOAD "$nnlift" --version big.npy | grep -q 'hugetlb=1' ||
    fail "big.npy: nnlift did not restart for huge pages"
fi
"$nnlift" train --data big.npy --hidden 3 --model big1.json --quiet || fail "big: without mpirun"
run 2 "$nnlift" train --data big.npy --hidden 3 --model big2.json --quiet --threads 1 ||
  fail "big: np 2 exited $?"
cmp -s big1.json big2.json || fail "big: np 2 model differs from the one-process model"
echo "ok: a 34 MB .npy over two processes (each restarted for huge pages) gives the one-process model"

# A malformed row in the last process's share: one clean error naming file:line:column, exit 1,
# no model file, no hang.
awk 'NR == 18001 { sub(",", ",abc") } { print }' train.csv > bad.csv
out=$(timeout 120 "$mpiexec" --oversubscribe -np 3 "$nnlift" train --data bad.csv --hidden 3 \
  --categorical none --model bad.json 2>&1)
rc=$?
[ "$rc" -eq 1 ] || fail "malformed row: exit $rc, expected 1"
[ "$(grep -c 'bad.csv:18001:' <<< "$out")" -eq 1 ] ||
  fail "malformed row: expected one message naming bad.csv:25001, got: $out"
[ ! -e bad.json ] || fail "malformed row: a model file was written"
echo "ok: a malformed row in rank 2's share: $(grep 'bad.csv:18001:' <<< "$out")"

# A file as users have them: yes/no labels; a text column with a category that appears only in
# the last process's share; a column of numbers with one word, also there; missing values (NA).
# Every process reads the column as text, the lists and fill values are those of all rows, and
# --missing mean and drop-rows give the one-process model for 1, 2 and 3 processes.
awk -F, -v OFS=, 'NR == 1 { print "colour", "late", $0; next }
  { $NF = ($NF == 1 ? "yes" : "no"); if (NR % 53 == 0) $2 = "NA"
    c = (NR > 11000 && NR % 7 == 0) ? "violet" : (NR % 3 ? "red" : "blue")
    if (NR % 97 == 0) c = "NA"
    print c, (NR == 11900 ? "word" : NR % 5), $0 }' classes.csv > messy.csv
for missing in mean drop-rows; do
  "$nnlift" train --data messy.csv --hidden 3 --missing "$missing" --model alone.json --quiet ||
    fail "messy.csv --missing $missing: one process exited $?"
  grep -q '"violet"' alone.json || fail "messy.csv: the category of the last rows is not in the model"
  for p in 1 2 3; do
    run "$p" "$nnlift" train --data messy.csv --hidden 3 --missing "$missing" \
      --model "np$p.json" --quiet --threads 1 || fail "messy.csv --missing $missing: np $p exited $?"
    cmp -s alone.json "np$p.json" ||
      fail "messy.csv --missing $missing: np $p model differs from the one-process model"
  done
  echo "ok: text columns, text labels and --missing $missing: np 1 2 3 give the one-process model"
done
# A missing value without --missing: the reader names it, in the last process's share.
expect_error "a missing value under mpirun" "messy.csv:53:.*missing" messy2.json 3 \
  train --data messy.csv --hidden 3 --model messy2.json

# --strict: a column constant in the first two shares only is not constant (each process's
# reader refused it as constant in its own share: "constant feature column(s) ... x1").
awk -F, -v OFS=, 'NR > 1 && NR <= 14000 { $1 = 0 } { print }' train.csv > partly.csv
"$nnlift" train --data partly.csv --hidden 3 --strict --model strict1.json --quiet > strict1.out 2>&1
alone=$?
run 3 "$nnlift" train --data partly.csv --hidden 3 --strict --model strict3.json --quiet \
  --threads 1 > strict3.out 2>&1
rc=$?
[ "$rc" -eq "$alone" ] || fail "--strict: np 3 exited $rc, one process $alone: $(cat strict3.out)"
! grep -q "constant feature" strict3.out || fail "--strict: np 3 refused x1 as constant"
[ "$alone" -ne 0 ] || cmp -s strict1.json strict3.json || fail "--strict: np 3 model differs"
echo "ok: --strict with a column constant in two of three shares: np 3 as one process (exit $rc)"

# A shard list with a missing file fails before any work, naming it.
expect_error "a missing shard" 'missing.csv: no such file' missing.json 2 \
  train --data 'shard-aa.csv,missing.csv' --hidden 3 --model missing.json

# Shards whose columns differ: the message names the shard that differs (it named the first).
awk -F, -v OFS=, 'NR == 1 { $1 = "renamed" } { print }' shard-aa.csv > renamed.csv
expect_error "shards with other columns" 'renamed.csv: the processes read different columns' \
  renamed.json 2 train --data 'shard-aa.csv,renamed.csv' --hidden 3 --model renamed.json

# Inputs too wide for their d x d covariance in memory: every process stops with the one message,
# decided on every process's need and memory (a process that alone stopped would hang the rest).
awk 'BEGIN { d = 200000; for (i = 0; i < 6; ++i) { for (j = 0; j < d; ++j)
       printf "%s%s", (j ? "," : ""), (i ? (i * 7 + j) % 10 : "c" j); printf "\n" } }' > wide.csv
expect_error "inputs too wide" '199999 input columns: their d x d covariance and whitening need' \
  wide.json 2 train --data wide.csv --hidden 2 --model wide.json

# Only train runs distributed.
timeout 60 "$mpiexec" --oversubscribe -np 2 "$nnlift" predict --model whole.json --data train.csv \
  > /dev/null 2>&1
rc=$?
[ "$rc" -eq 2 ] || fail "predict under mpirun: exit $rc, expected 2"

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all MPI checks passed"
