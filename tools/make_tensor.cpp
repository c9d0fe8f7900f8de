// Writes a planted symmetric tensor Σ λ_j v_j^{⊗3} (+ noise) as .npy, with its true factors.
// SPDX-License-Identifier: MIT
#include <cstdlib>
#include <iostream>
#include <string>

#include <nnlift/npy.hpp>

#include "planted.hpp"

using tools::Index;
using tools::Matrix;

int main(int argc, char** argv) {
  Index d = 10, k = 4;
  double eps = 0.01;
  std::uint64_t seed = 1;
  bool orthogonal = false;
  std::string out, truth;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "make_tensor: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--dim") {
      d = std::stol(next());
    } else if (a == "--rank") {
      k = std::stol(next());
    } else if (a == "--noise") {
      eps = std::stod(next());
    } else if (a == "--seed") {
      seed = std::stoull(next());
    } else if (a == "--orthogonal") {
      orthogonal = true;
    } else if (a == "--out") {
      out = next();
    } else if (a == "--truth") {
      truth = next();
    } else {
      std::cerr
          << "usage: make_tensor --dim d --rank k [--noise eps] [--seed s] [--orthogonal]\n"
             "                   --out T.npy [--truth V.npy]\n"
             "Writes Σ λ_j v_j⊗v_j⊗v_j + noise (relative Frobenius size eps); λ = linspace(2,\n"
             "0.7) with alternating signs; V non-orthogonal (cond ≈ 2) unless --orthogonal.\n";
      return a == "--help" ? 0 : 2;
    }
  }
  if (out.empty() || k < 1 || k > d) {
    std::cerr << "make_tensor: need --out and 1 <= rank <= dim (see --help)\n";
    return 2;
  }
  const tools::PlantedTensor p = tools::make_planted(d, k, orthogonal, eps, seed);
  nnlift::NpyArray array;
  array.shape = {d, d, d};
  array.data = p.T.data();
  nnlift::write_npy(out, array);
  if (!truth.empty()) {
    nnlift::write_npy(truth, nnlift::to_npy(p.V));
  }
  std::cerr << "make_tensor: wrote " << out << " (d = " << d << ", k = " << k << ", noise " << eps
            << "); lambda =";
  for (Index j = 0; j < k; ++j) {
    std::cerr << " " << p.lambda(j);
  }
  std::cerr << "\n";
  return 0;
}
