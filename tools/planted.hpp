// Planted symmetric tensors for the tools: Σ λ_j v_j^{⊗3} plus symmetric noise.
// SPDX-License-Identifier: MIT
#pragma once

#include <Eigen/QR>

#include <nnlift/experimental.hpp>
#include <nnlift/tensor.hpp>

namespace tools {

using nnlift::Index;
using nnlift::Matrix;
using nnlift::Vector;

struct PlantedTensor {
  Vector lambda;  ///< k weights, signs alternating
  Matrix V;       ///< d×k unit components
  nnlift::DenseSymmetricTensor3 T;
};

/// Components: orthonormal, or U diag(linspace(1, 2)) Wᵀ with normalised columns (non-orthogonal,
/// condition number about 2). Weights: linspace(2, 0.7) with alternating signs. Noise: a
/// symmetric Gaussian tensor scaled to eps·‖T‖_F.
inline PlantedTensor make_planted(
    Index d, Index k, bool orthogonal, double eps, std::uint64_t seed) {
  nnlift::experimental::Rng rng(seed);
  auto orthonormal = [&](Index rows, Index cols) {
    const Matrix G = rng.normal_matrix(rows, cols);
    return Matrix(Eigen::HouseholderQR<Matrix>(G).householderQ() * Matrix::Identity(rows, cols));
  };
  Matrix V = orthonormal(d, k);
  if (!orthogonal) {
    V = V * Vector::LinSpaced(k, 1.0, 2.0).asDiagonal() * orthonormal(k, k).transpose();
    V.colwise().normalize();
  }
  Vector lambda = Vector::LinSpaced(k, 2.0, 0.7);
  for (Index j = 1; j < k; j += 2) {
    lambda(j) = -lambda(j);
  }
  nnlift::DenseSymmetricTensor3 clean = nnlift::DenseSymmetricTensor3::from_factors(lambda, V);
  if (eps <= 0) {
    return {lambda, V, clean};
  }
  // Symmetric noise: the symmetrisation of i.i.d. Gaussian entries.
  std::vector<double> raw(static_cast<std::size_t>(d * d * d));
  for (double& x : raw) {
    x = rng.normal();
  }
  std::vector<double> noise(raw.size());
  double norm2 = 0;
  auto at = [&](Index i, Index j, Index l) {
    return raw[static_cast<std::size_t>(i + d * (j + d * l))];
  };
  for (Index l = 0; l < d; ++l) {
    for (Index j = 0; j < d; ++j) {
      for (Index i = 0; i < d; ++i) {
        const double s =
            (at(i, j, l) + at(i, l, j) + at(j, i, l) + at(j, l, i) + at(l, i, j) + at(l, j, i)) / 6;
        noise[static_cast<std::size_t>(i + d * (j + d * l))] = s;
        norm2 += s * s;
      }
    }
  }
  const double scale = eps * clean.frobenius_norm() / std::sqrt(norm2);
  std::vector<double> data = clean.data();
  for (std::size_t i = 0; i < data.size(); ++i) {
    data[i] += scale * noise[i];
  }
  return {lambda, V, nnlift::DenseSymmetricTensor3(d, std::move(data))};
}

/// Largest sign-aligned column error after greedy matching by |cosine|.
inline double max_column_error(const Matrix& truth, const Matrix& estimate) {
  const Index k = truth.cols();
  std::vector<bool> used(static_cast<std::size_t>(estimate.cols()), false);
  double worst = 0;
  for (Index i = 0; i < k; ++i) {
    double best = -1;
    Index bj = 0;
    for (Index j = 0; j < estimate.cols(); ++j) {
      const double c = std::abs(truth.col(i).dot(estimate.col(j).normalized()));
      if (!used[static_cast<std::size_t>(j)] && c > best) {
        best = c;
        bj = j;
      }
    }
    used[static_cast<std::size_t>(bj)] = true;
    worst = std::max(worst, std::sqrt(std::max(0.0, 2.0 - 2.0 * best)));
  }
  return worst;
}

}  // namespace tools
