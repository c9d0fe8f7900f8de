// Time and accuracy of every decomposition method on noisy planted d×d×d tensors, next to the
// algorithm of TensorLy's symmetric_parafac_power_iteration (tools/tensorly_reference.py) on
// the same tensor, at equal restarts and power updates.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <nnlift/decompose.hpp>
#include <nnlift/npy.hpp>

#include "planted.hpp"
#include "stats.hpp"

using tools::Index;
using tools::Matrix;

#ifndef NNLIFT_TENSORLY_REFERENCE
#define NNLIFT_TENSORLY_REFERENCE "tools/tensorly_reference.py"
#endif

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Runs the numpy reference; returns its decomposition time and factors (empty on failure).
double run_reference(
    const nnlift::DenseSymmetricTensor3& T, Index k, int repeats, int iterations, Matrix& factors) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string in = (dir / "nnlift_bench_T.npy").string();
  const std::string out = (dir / "nnlift_bench_V.npy").string();
  nnlift::NpyArray array;
  array.shape = {T.dim(), T.dim(), T.dim()};
  array.data = T.data();
  nnlift::write_npy(in, array);
  const std::string command = std::string("/usr/bin/python3 ") + NNLIFT_TENSORLY_REFERENCE + " " +
                              in + " " + std::to_string(k) + " " + out + " " +
                              std::to_string(repeats) + " " + std::to_string(iterations);
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return -1;
  }
  double seconds = -1;
  char line[4096];
  while (std::fgets(line, sizeof line, pipe) != nullptr) {
    std::sscanf(line, "seconds %lf", &seconds);
  }
  if (pclose(pipe) != 0 || seconds < 0) {
    return -1;
  }
  factors = nnlift::to_matrix(nnlift::read_npy(out));
  return seconds;
}

// Accuracy of each route on noisy non-orthogonal mixed-sign k×k×k tensors, over seeds.
void compare_routes(int seeds, int threads) {
  std::printf(
      "\nRoute accuracy: k x k x k non-orthogonal (cond ~2) tensors, weights +-linspace(2, 0.7),"
      " %d seeds; max column error, median [worst]\n\n",
      seeds);
  std::printf("| k | noise | power (sign-agnostic whitening + TPM) | jennrich | als | auto |\n");
  std::printf("|---|---|---|---|---|---|\n");
  const nnlift::DecomposeMethod methods[] = {nnlift::DecomposeMethod::Power,
                                             nnlift::DecomposeMethod::Jennrich,
                                             nnlift::DecomposeMethod::Als,
                                             nnlift::DecomposeMethod::Auto};
  for (Index k : {5, 10}) {
    for (double eps : {0.01, 0.03, 0.1}) {
      std::printf("| %ld | %.2f |", static_cast<long>(k), eps);
      for (nnlift::DecomposeMethod m : methods) {
        std::vector<double> errors;
        for (int seed = 0; seed < seeds; ++seed) {
          const tools::PlantedTensor p =
              tools::make_planted(k, k, false, eps, 1000 + static_cast<std::uint64_t>(seed));
          nnlift::DecomposeOptions o;
          o.rank = k;
          o.method = m;
          o.seed = static_cast<std::uint64_t>(seed);
          o.num_threads = threads;
          const nnlift::DecomposeResult r = nnlift::decompose(p.T, o);
          errors.push_back(r.components.size() ? tools::max_column_error(p.V, r.components) : 2.0);
        }
        std::printf(" %.4f [%.3f] |",
                    tools::median(errors),
                    *std::max_element(errors.begin(), errors.end()));
      }
      std::printf("\n");
      std::fflush(stdout);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, reference = true;
  double eps = 0.01;
  int threads = 0;
  long only_dim = 0;
  bool routes_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--routes") {
      routes_only = true;
    } else if (a == "--no-reference") {
      reference = false;
    } else if (a == "--noise" && i + 1 < argc) {
      eps = std::atof(argv[++i]);
    } else if (a == "--dim" && i + 1 < argc) {
      only_dim = std::atol(argv[++i]);
    } else if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else {
      std::cerr
          << "usage: bench_decompose [--quick] [--no-reference] [--noise 0.01] [--threads P]\n";
      return a == "--help" ? 0 : 2;
    }
  }
  if (routes_only) {
    compare_routes(20, threads);
    return 0;
  }
  // TensorLy's defaults: 10 starts, 10 rounds of 3 updates each (30 updates per start).
  const int restarts = 10, rounds = 10, updates = 3 * rounds;
  std::printf(
      "noise %.3g (relative Frobenius); equal budget: %d restarts x %d power updates per "
      "component; threads %d (0 = all)\n\n",
      eps,
      restarts,
      updates,
      threads);
  std::printf(
      "| d | k | components | method | seconds | max column error | speed-up vs TensorLy alg. |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  std::vector<Index> dims = quick ? std::vector<Index>{50} : std::vector<Index>{50, 100, 200};
  if (only_dim > 0) {
    dims = {static_cast<Index>(only_dim)};
  }
  for (Index d : dims) {
    for (Index k : {10, 20}) {
      for (bool orthogonal : {true, false}) {
        const tools::PlantedTensor p = tools::make_planted(d, k, orthogonal, eps, 7 + d + k);
        const nnlift::DenseSymmetricTensor3& T = p.T;
        double ref_seconds = -1, ref_error = 0;
        if (reference) {
          Matrix factors;
          ref_seconds = run_reference(p.T, k, restarts, rounds, factors);
          if (ref_seconds >= 0) {
            ref_error = tools::max_column_error(p.V, factors);
          }
        }
        const char* shape = orthogonal ? "orthogonal" : "non-orth.";
        for (nnlift::DecomposeMethod m : {nnlift::DecomposeMethod::Power,
                                          nnlift::DecomposeMethod::Jennrich,
                                          nnlift::DecomposeMethod::Als,
                                          nnlift::DecomposeMethod::Auto}) {
          nnlift::DecomposeOptions o;
          o.rank = k;
          o.method = m;
          o.seed = 1;
          o.num_threads = threads;
          o.power.num_restarts = restarts;
          o.power.max_iterations = updates;
          // Best of three: the machine is shared and the first run pays for warm-up.
          nnlift::DecomposeResult r;
          double s = 1e300;
          for (int rep = 0; rep < 3; ++rep) {
            const auto t0 = std::chrono::steady_clock::now();
            r = nnlift::decompose(T, o);
            s = std::min(s, seconds_since(t0));
          }
          std::printf("| %ld | %ld | %s | nnlift %s%s | %.3f | %.4f |",
                      static_cast<long>(d),
                      static_cast<long>(k),
                      shape,
                      nnlift::to_string(m),
                      m == nnlift::DecomposeMethod::Auto
                          ? (std::string(" (") + nnlift::to_string(r.method_used) + ")").c_str()
                          : "",
                      s,
                      tools::max_column_error(p.V, r.components));
          if (ref_seconds > 0) {
            std::printf(" %.0fx |\n", ref_seconds / s);
          } else {
            std::printf(" |\n");
          }
        }
        if (ref_seconds >= 0) {
          std::printf("| %ld | %ld | %s | TensorLy algorithm (numpy) | %.3f | %.4f | 1x |\n",
                      static_cast<long>(d),
                      static_cast<long>(k),
                      shape,
                      ref_seconds,
                      ref_error);
        }
        std::fflush(stdout);
      }
    }
  }
  compare_routes(20, threads);
  return 0;
}
