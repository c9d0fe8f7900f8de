// Training speed: each stage of nnlift::train on an in-memory planted data set, next to one X·G
// product (G d×2k), the cost floor of one pass over X.
// SPDX-License-Identifier: MIT
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include <nnlift/evaluate.hpp>
#include <nnlift/experimental.hpp>
#include <nnlift/synth.hpp>
#include <nnlift/train.hpp>

int main(int argc, char** argv) {
  long d = 100, k = 10, n = 1000000;
  int threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const long v = std::atol(argv[i + 1]);
    if (a == "--dim") {
      d = v;
    } else if (a == "--hidden") {
      k = v;
    } else if (a == "--samples") {
      n = v;
    } else if (a == "--threads") {
      threads = static_cast<int>(v);
    }
  }
  if (argc % 2 == 0) {
    std::cerr << "usage: bench_train [--dim 100] [--hidden 10] [--samples 1000000] [--threads P]\n";
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
    nnlift::Matrix P(n, 2 * k);
    nnlift::ExecutionContext(threads).sum(n, 0, 0, [&](nnlift::Index b, nnlift::Index c) {
      P.middleRows(b, c).noalias() = data.X.middleRows(b, c) * G;
      return nnlift::Matrix(0, 0);
    });
    floor = std::min(floor,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (P.rows() != n) {
      return 1;
    }
  }
  nnlift::TrainOptions o;
  o.hidden = k;
  o.seed = 1;
  const auto t0 = std::chrono::steady_clock::now();
  const nnlift::TrainResult r = nnlift::train(data, o, nnlift::ExecutionContext(threads));
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("d = %ld, k = %ld, n = %ld, threads %d (0 = all)\n\n", d, k, n, threads);
  std::printf("| stage | seconds | X·G passes |\n|---|---|---|\n");
  std::printf("| one X·G product (G %ldx%ld), best of 3 | %.3f | 1 |\n", d, 2 * k, floor);
  for (const nnlift::StageTime& st : r.stages) {
    std::printf("| %s | %.3f | %.1f |\n", st.name.c_str(), st.seconds, st.seconds / floor);
  }
  std::printf("| **whole training** | %.3f | **%.1f** |\n\n", total, total / floor);
  const nnlift::Recovery rec = nnlift::recovery(s.truth, r.network);
  const nnlift::Vector f = nnlift::predict_value(s.truth, s.X_test).col(0);
  const nnlift::Vector g = nnlift::predict_value(r.network, s.X_test).col(0);
  std::printf(
      "residualised: %s; route %s; min |cos| %.4f, mean |cos| %.4f; test MSE vs truth / "
      "Var f = %.4f\n",
      nnlift::to_string(r.moments.residualize_used),
      nnlift::to_string(r.moments.route),
      rec.min_cosine,
      rec.mean_cosine,
      (f - g).squaredNorm() / (f.array() - f.mean()).square().sum());
  return 0;
}
