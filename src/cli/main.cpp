// The nnlift executable: hands its arguments to nnlift::cli::run; under mpirun (a build with
// NNLIFT_MPI), it first joins the other processes of MPI_COMM_WORLD.
// SPDX-License-Identifier: MIT
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <glob.h>
#include <iostream>
#include <malloc.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

#include "cli/commands.hpp"

#ifdef NNLIFT_WITH_MPI
#include <nnlift/mpi.hpp>

#include "cli/shards.hpp"

namespace {

// Launched by mpirun (Open MPI, or a PMI/PMIx launcher such as srun): MPI is started only then,
// so that a plain `nnlift` neither waits for nor prints anything from the MPI runtime.
bool launched_by_mpirun() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (std::getenv(var) != nullptr) {
      return true;
    }
  }
  return false;
}

// Every process runs the command; rank 0 alone prints and writes files.
int run_distributed(int& argc, char**& argv, const std::vector<std::string>& args) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int code = 0;
  {
    const nnlift::MpiReducer reducer(MPI_COMM_WORLD);
    nnlift::cli::Processes processes;
    processes.reducer = &reducer;
    processes.rank = reducer.rank();
    processes.size = reducer.size();
    processes.align_rows = [&](const nnlift::Matrix& rows) { return reducer.align_rows(rows); };
    processes.communication_seconds = [&] { return reducer.communication_seconds(); };
    std::ostream silent(nullptr);
    const bool first = reducer.rank() == 0;
    code =
        nnlift::cli::run(args, first ? std::cout : silent, first ? std::cerr : silent, &processes);
    // Every process leaves with rank 0's code.
    MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
  }
  MPI_Finalize();
  return code;
}

}  // namespace
#endif

namespace {

#if defined(__GLIBC__) && !defined(NNLIFT_SANITIZED)
// Whether an argument (or the part after '=' of --flag=value) names input files of at least 32 MB
// in all (a glob such as 'part-*.csv' counts its matches): only then do huge pages pay for the
// restart (6 ms: 50 runs of `nnlift --version` 0.75 s against 0.46 s).
bool large_inputs(int argc, char** argv) {
  constexpr std::uintmax_t kLarge = std::uintmax_t{32} << 20;
  std::uintmax_t total = 0;
  const auto add = [&](const char* path) {
    struct stat st {};
    if (::stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
      total += static_cast<std::uintmax_t>(st.st_size);
    }
  };
  for (int i = 1; i < argc && total < kLarge; ++i) {
    const char* arg = argv[i];
    const char* eq = std::strchr(arg, '=');
    const char* path = arg[0] == '-' && eq != nullptr ? eq + 1 : arg;
    if (std::strpbrk(path, "*?[") != nullptr) {
      glob_t matches{};
      if (::glob(path, 0, nullptr, &matches) == 0) {
        for (std::size_t m = 0; m < matches.gl_pathc; ++m) {
          add(matches.gl_pathv[m]);
        }
      }
      ::globfree(&matches);
    } else {
      add(path);
    }
  }
  return total >= kLarge;
}

#endif

// Starts this program again with glibc's allocator asking for transparent huge pages
// (GLIBC_TUNABLES=glibc.malloc.hugetlb=1, glibc 2.35 and later; a tunable is read only at start-up,
// hence the exec), when the inputs are large. Every stage makes row-sized temporaries (8 MB per
// vector of 10^6 rows, 16 to 80 MB per n x k matrix) and each pass block-sized ones; in 4 kB pages
// their first touch costs a page fault per page, and on a virtual machine a fault can cost 10 us
// (here: 800 MB touched in 2.1 s in 4 kB pages, 0.05-1.2 s in 2 MB ones). `nnlift train` on a
// planted 10^6 x 101 .npy file (nnlift synth --dim 100 --hidden 10, then nnlift convert):
// 24,100-24,700 page faults and 2.48-2.73 s without, 4,700-7,400 and 1.78-1.91 s with. Left alone
// where the user has set the tunable (glibc.malloc.hugetlb=0 turns it off), where something is
// preloaded (another allocator, or valgrind, which would not follow the exec), in a sanitizer build
// (its own allocator), or where the exec fails (the program then goes on as it is).
void restart_with_huge_pages(int argc, char** argv) {
#if defined(__GLIBC__) && !defined(NNLIFT_SANITIZED)
  int major = 0, minor = 0;
  if (std::sscanf(gnu_get_libc_version(), "%d.%d", &major, &minor) != 2 ||
      (major == 2 && minor < 35) || major < 2) {
    return;
  }
  if (std::getenv("LD_PRELOAD") != nullptr || nnlift::cli::hugetlb_tunable() ||
      !large_inputs(argc, argv)) {
    return;
  }
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  const std::string before = tunables != nullptr ? tunables : "";
  const std::string with = (before.empty() ? "" : before + ":") + "glibc.malloc.hugetlb=1";
  if (::setenv("GLIBC_TUNABLES", with.c_str(), 1) != 0) {
    return;
  }
  ::execv("/proc/self/exe", argv);
  // Still here: the exec failed. Leave the environment as it was.
  if (tunables != nullptr) {
    ::setenv("GLIBC_TUNABLES", before.c_str(), 1);
  } else {
    ::unsetenv("GLIBC_TUNABLES");
  }
#else
  (void)argc;
  (void)argv;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  restart_with_huge_pages(argc, argv);
  std::ios::sync_with_stdio(false);
  // Every pass makes block-sized temporaries (a few MB), and the stages make row-sized ones
  // (n × k: 80 MB at n = 10^6, k = 10). By default glibc maps and unmaps each one, and the fresh
  // pages cost a fault per 4 kB and their zeroing (the standardise stage took twice as long; at
  // 64 MB instead of 256 MB here, the n × k ones cost 0.07 s each on first touch and the whole
  // training of tools/bench_train's set took 1.94-2.02 s instead of 1.81-1.85 s); with these
  // thresholds freed memory is reused. Only the data themselves (larger) are mapped.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  // Past a file-size limit (ulimit -f) a write then fails with EFBIG, which nnlift reports and
  // cleans up after, instead of the process being killed mid-write by SIGXFSZ.
  std::signal(SIGXFSZ, SIG_IGN);
  const std::vector<std::string> args(argv + 1, argv + argc);
#ifdef NNLIFT_WITH_MPI
  if (launched_by_mpirun()) {
    return run_distributed(argc, argv, args);
  }
#endif
  return nnlift::cli::run(args, std::cout, std::cerr);
}
