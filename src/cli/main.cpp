// The nnlift executable: hands its arguments to nnlift::cli::run; under mpirun (a build with
// NNLIFT_MPI), it first joins the other processes of MPI_COMM_WORLD.
// SPDX-License-Identifier: MIT
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <malloc.h>
#include <string>
#include <vector>

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

int main(int argc, char** argv) {
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
