# SPDX-License-Identifier: MIT
# Runs the real nnlift binary: --help, --version, a usage error (exit 2) and synth.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
function(expect_exit code)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL ${code})
    message(FATAL_ERROR "'${ARGN}' exited ${rc}, expected ${code}\nstdout: ${out}\nstderr: ${err}")
  endif()
  set(LAST_OUT "${out}" PARENT_SCOPE)
  set(LAST_ERR "${err}" PARENT_SCOPE)
endfunction()
expect_exit(0 "${NNLIFT}" --help)
if(NOT LAST_OUT MATCHES "synth")
  message(FATAL_ERROR "--help does not list the synth command")
endif()
expect_exit(0 "${NNLIFT}" --version)
# With inputs of 32 MB or more, the executable restarts itself with glibc's allocator asking for
# huge pages (src/cli/main.cpp), unless the user set the tunable, or in a sanitizer build (its
# own allocator); with small inputs it does not restart.
execute_process(COMMAND truncate -s 40M "${WORK_DIR}/large.bin" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "truncate could not make a 40 MB file")
endif()
set(clean_env ${CMAKE_COMMAND} -E env --unset=GLIBC_TUNABLES --unset=LD_PRELOAD)
expect_exit(0 ${clean_env} "${NNLIFT}" --version "--data=${WORK_DIR}/large.bin")
if(SANITIZE)
  if(LAST_OUT MATCHES "hugetlb=1")
    message(FATAL_ERROR "a sanitizer build restarted for glibc's huge pages: ${LAST_OUT}")
  endif()
elseif(NOT LAST_OUT MATCHES "allocator: glibc.malloc.hugetlb=1 \\(transparent huge pages\\)")
  message(FATAL_ERROR "nnlift did not restart with huge pages for a 40 MB input: ${LAST_OUT}")
endif()
expect_exit(0 ${clean_env} "${NNLIFT}" --version "${WORK_DIR}/cli_binary_no_such_file.csv")
if(NOT LAST_OUT MATCHES "allocator: huge pages not asked for")
  message(FATAL_ERROR "nnlift restarted without large inputs: ${LAST_OUT}")
endif()
expect_exit(0 ${CMAKE_COMMAND} -E env --unset=LD_PRELOAD
            "GLIBC_TUNABLES=glibc.malloc.check=0:glibc.malloc.hugetlb=0" "${NNLIFT}" --version
            "${WORK_DIR}/large.bin")
if(NOT LAST_OUT MATCHES "allocator: glibc.malloc.hugetlb=0 \\(huge pages not asked for\\)")
  message(FATAL_ERROR "nnlift overrode the user's glibc.malloc.hugetlb=0: ${LAST_OUT}")
endif()
file(REMOVE "${WORK_DIR}/large.bin")
expect_exit(2 "${NNLIFT}" synth --no-such-flag)
if(NOT LAST_ERR MATCHES "Try 'nnlift synth --help'")
  message(FATAL_ERROR "usage error without a hint: ${LAST_ERR}")
endif()
expect_exit(0 "${NNLIFT}" synth --dim 4 --hidden 2 --samples 50 --seed 1 --quiet
            --out "${WORK_DIR}/train.csv" --truth "${WORK_DIR}/truth.json")
expect_exit(1 "${NNLIFT}" decompose --tensor "${WORK_DIR}/missing.npy" --rank 2
            --out "${WORK_DIR}/r.json")
if(EXISTS "${WORK_DIR}/r.json")
  message(FATAL_ERROR "a failed command left an output file behind")
endif()
expect_exit(0 "${NNLIFT}" synth --dim 5 --hidden 2 --samples 20000 --test-samples 2000 --seed 2
            --noise 0.05 --quiet --out "${WORK_DIR}/tr.csv" --test-out "${WORK_DIR}/te.csv"
            --truth "${WORK_DIR}/truth.json")
expect_exit(0 "${NNLIFT}" train --data "${WORK_DIR}/tr.csv" --hidden 2 --model "${WORK_DIR}/m.json")
expect_exit(0 "${NNLIFT}" evaluate --model "${WORK_DIR}/m.json" --data "${WORK_DIR}/te.csv"
            --truth "${WORK_DIR}/truth.json")
if(NOT LAST_OUT MATCHES "min \\|cos\\| 0\\.9")
  message(FATAL_ERROR "evaluate did not report a recovery above 0.9: ${LAST_OUT}")
endif()
