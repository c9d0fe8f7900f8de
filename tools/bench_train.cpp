// Training speed: each stage of nnlift::train on an in-memory planted data set, next to one X·G
// product (G d×2k), the cost floor of one pass over X.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <malloc.h>
#include <string>
#include <sys/resource.h>
#include <unistd.h>

#include <nnlift/evaluate.hpp>
#include <nnlift/experimental.hpp>
#include <nnlift/npy.hpp>
#include <nnlift/synth.hpp>
#include <nnlift/train.hpp>

namespace {
// The thread count the library uses for num_threads = 0.
int omp_threads() {
  const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  const char* env = std::getenv("OMP_NUM_THREADS");
  return env != nullptr && std::atoi(env) > 0 ? std::atoi(env)
                                              : static_cast<int>(std::max(1L, cores));
}
}  // namespace

int main(int argc, char** argv) {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);  // as the nnlift executable does (src/cli/main.cpp)
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  long d = 100, k = 10, n = 1000000;
  int threads = 0;
  long sample_rows = nnlift::MomentOptions().subspace_sample_rows;
  std::string reference;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const long v = std::atol(argv[i + 1]);
    if (a == "--reference") {
      reference = argv[i + 1];
    } else if (a == "--dim") {
      d = v;
    } else if (a == "--hidden") {
      k = v;
    } else if (a == "--samples") {
      n = v;
    } else if (a == "--threads") {
      threads = static_cast<int>(v);
    } else if (a == "--subspace-sample-rows") {
      sample_rows = v;
    }
  }
  if (argc % 2 == 0) {
    std::cerr << "usage: bench_train [--dim 100] [--hidden 10] [--samples 1000000] [--threads P]\n"
                 "                   [--subspace-sample-rows 200000] [--reference "
                 "tools/blas_reference.py]\n";
    return 2;
  }
  nnlift::SynthOptions so;
  so.dim = d;
  so.hidden = k;
  so.samples = n;
  so.test_samples = 100000;
  so.noise = 0.05;
  so.seed = 1;
  so.num_threads = threads;
  const nnlift::SynthData s = nnlift::make_synthetic(so);
  nnlift::Dataset data = nnlift::training_set(s);

  // The floor: one X·G product with G d×2k, in the same fixed row blocks and threads.
  nnlift::experimental::Rng rng(3);
  const nnlift::Matrix G = rng.normal_matrix(d, 2 * k);
  double floor = 1e300;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    // A row-wise pass through the public execution context: the blocks write their own rows.
    const nnlift::Matrix P = nnlift::ExecutionContext(threads).map_rows(
        n, 2 * k, [&](nnlift::Index b, nnlift::Index c, Eigen::Ref<nnlift::Matrix> rows) {
          rows.noalias() = data.X.middleRows(b, c) * G;
        });
    floor = std::min(floor,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (P.rows() != n) {
      return 1;
    }
  }
  // The outside floor in the same run: numpy's BLAS on the same matrix (tools/blas_reference.py),
  // in the environment a user runs numpy in (not this run's allocator tunables).
  double blas_xg = 0, blas_read = 0;
  std::string blas_name;
  if (!reference.empty()) {
    const std::string npy = "/tmp/nnlift_bench_train_" + std::to_string(::getpid()) + ".npy";
    nnlift::write_npy(npy, nnlift::to_npy(data.X));
    const std::string cmd =
        "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE -u GLIBC_TUNABLES /usr/bin/python3 " +
        reference + " " + npy + " " + std::to_string(k) + " " +
        std::to_string(threads > 0 ? threads : omp_threads()) + " 2>&1";
    std::string line;
    if (FILE* pipe = ::popen(cmd.c_str(), "r")) {
      char buffer[4096];
      while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) {
        line += buffer;
      }
      ::pclose(pipe);
    }
    std::remove(npy.c_str());
    const auto field = [&](const std::string& key) {
      const auto at = line.find("\"" + key + "\": ");
      return at == std::string::npos ? std::string() : line.substr(at + key.size() + 4);
    };
    blas_xg = std::atof(field("xg_seconds").c_str());
    blas_read = std::atof(field("read_seconds").c_str());
    blas_name = field("blas");
    blas_name = blas_name.substr(1, blas_name.find('"', 1) - 1);
    if (!(blas_xg > 0)) {
      std::cerr << "bench_train: the BLAS reference failed: " << line << "\n";
      return 1;
    }
  }
  // nnlift's own read of X: a column sum through the execution context.
  double own_read = 1e300;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    const nnlift::Matrix sums =
        nnlift::ExecutionContext(threads).sum(n, d, 1, [&](nnlift::Index b, nnlift::Index c) {
          return nnlift::Matrix(data.X.middleRows(b, c).transpose() * nnlift::Vector::Ones(c));
        });
    own_read = std::min(
        own_read, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (sums.rows() != d) {
      return 1;
    }
  }

  nnlift::TrainOptions o;
  o.hidden = k;
  o.seed = 1;
  o.moments.subspace_sample_rows = sample_rows;
  rusage before{};
  ::getrusage(RUSAGE_SELF, &before);
  const auto t0 = std::chrono::steady_clock::now();
  const nnlift::TrainResult r = nnlift::train(data, o, nnlift::ExecutionContext(threads));
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rusage after{};
  ::getrusage(RUSAGE_SELF, &after);
  std::printf("d = %ld, k = %ld, n = %ld, threads %d (0 = all)\n\n", d, k, n, threads);
  const double unit = blas_xg > 0 ? blas_xg : floor;
  const char* unit_name = blas_xg > 0 ? "BLAS X·G" : "nnlift X·G";
  if (blas_xg > 0) {
    std::printf("BLAS reference: numpy on %s\n\n", blas_name.c_str());
  }
  std::printf("| stage | seconds | %s products |\n|---|---|---|\n", unit_name);
  if (blas_xg > 0) {
    std::printf("| one X·G product (G %ldx%ld) by numpy's BLAS, best of 3 | %.3f | 1 |\n",
                d,
                2 * k,
                blas_xg);
    std::printf("| one read of X by numpy (column sums), best of 3 | %.3f | %.2f |\n",
                blas_read,
                blas_read / unit);
  }
  std::printf(
      "| one X·G product by nnlift (its row blocks and threads), best of 3 | %.3f | %.2f |\n",
      floor,
      floor / unit);
  std::printf("| one read of X by nnlift (column sums), best of 3 | %.3f | %.2f |\n",
              own_read,
              own_read / unit);
  for (const nnlift::StageTime& st : r.stages) {
    std::printf("| %s | %.3f | %.1f |\n", st.name.c_str(), st.seconds, st.seconds / unit);
  }
  std::printf("| **whole training** | %.3f | **%.1f** |\n\n", total, total / unit);
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  std::printf("page faults during the training: %ld (GLIBC_TUNABLES=%s)\n",
              after.ru_minflt - before.ru_minflt,
              tunables != nullptr ? tunables : "");
  const nnlift::Recovery rec = nnlift::recovery(s.truth, r.network);
  const nnlift::Vector f = nnlift::predict_value(s.truth, s.X_test).col(0);
  const nnlift::Vector g = nnlift::predict_value(r.network, s.X_test).col(0);
  std::printf(
      "residualised: %s; HOOI sweeps %d over all rows, %d over a sample of %ld; route %s; min "
      "|cos| %.4f, mean |cos| %.4f; test MSE vs truth / Var f = %.6f\n",
      nnlift::to_string(r.moments.residualize_used),
      r.moments.subspace_sweeps,
      r.moments.subspace_sample_sweeps,
      static_cast<long>(r.moments.subspace_sample_rows),
      nnlift::to_string(r.moments.route),
      rec.min_cosine,
      rec.mean_cosine,
      (f - g).squaredNorm() / (f.array() - f.mean()).square().sum());
  return 0;
}
