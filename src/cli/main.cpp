// The nnlift executable: hands its arguments to nnlift::cli::run; under mpirun (a build with
// NNLIFT_MPI), it first joins the other processes of MPI_COMM_WORLD.
// SPDX-License-Identifier: MIT
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <malloc.h>
#include <string>
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

// Starts this program again with glibc's allocator asking for transparent huge pages
// (GLIBC_TUNABLES=glibc.malloc.hugetlb=1, glibc 2.35 and later; a tunable is read only at start-up,
// hence the exec). Every stage makes row-sized temporaries (8 MB per vector of 10^6 rows, 16 to
// 80 MB per n x k matrix) and each pass block-sized ones; in 4 kB pages their first touch costs a
// page fault per page, and on a virtual machine a fault can cost 10 us (here: 800 MB touched in
// 2.1 s in 4 kB pages, 0.05 s in 2 MB ones). tools/bench_train's set from a .npy file: 23,000 page
// faults and 2.1-2.9 s without, 5,000-9,000 and 1.8-1.9 s with. Left alone where the user has set
// the tunable (glibc.malloc.hugetlb=0 turns it off), where something is preloaded (another
// allocator, or valgrind, which would not follow the exec), in a sanitizer build (its own
// allocator), or where the exec fails (the program then just goes on, unchanged).
void restart_with_huge_pages(char** argv) {
#if defined(__GLIBC__) && !defined(NNLIFT_SANITIZED)
  int major = 0, minor = 0;
  if (std::sscanf(gnu_get_libc_version(), "%d.%d", &major, &minor) != 2 ||
      (major == 2 && minor < 35) || major < 2) {
    return;
  }
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (std::getenv("LD_PRELOAD") != nullptr ||
      (tunables != nullptr && std::strstr(tunables, "glibc.malloc.hugetlb") != nullptr)) {
    return;
  }
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
  (void)argv;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  restart_with_huge_pages(argv);
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
