// The pieces of generalised linear models shared by the output-layer fits, the refinement, the
// predictions and the scores: the softmax and the logistic loss.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>

#include <nnlift/activation.hpp>
#include <nnlift/types.hpp>

#include "detail/activation_traits.hpp"

namespace nnlift::detail {

/// Replaces the logits in `row` by their softmax probabilities; returns the log-normaliser
/// log Σ_c e^{row_c} (computed stably, from the largest logit).
template <class Row>
double softmax_inplace(Row&& row) {
  const double top = row.maxCoeff();
  row = (row.array() - top).exp().matrix();
  const double z = row.sum();
  row /= z;
  return std::log(z) + top;
}

/// The softmax log-loss of each row of `logits` against the target rows Y (one-hot), and in P
/// its gradient softmax(logits) − Y: P = exp(L − max) / Σ by columns, every exponential through
/// exp_inplace (vectorised, each entry's bits from its value alone); log-normaliser log Σ + max.
inline Vector softmax_losses(const Matrix& logits, const Eigen::Ref<const Matrix>& Y, Matrix& P) {
  const Vector top = logits.rowwise().maxCoeff();
  P = logits.colwise() - top;
  exp_inplace(P.data(), P.size());
  const Vector total = P.rowwise().sum();
  const Vector log_normaliser = total.array().log() + top.array();
  P.array().colwise() /= total.array();
  P -= Y;
  return log_normaliser.cwiseProduct(Y.rowwise().sum()) - Y.cwiseProduct(logits).rowwise().sum();
}

/// log(1 + e^f) − t f, the logistic loss of each logit in F's one column for the 0/1 targets T,
/// and in E its gradient σ(F) − T: the sigmoids and e^{−|f|} of the whole column through the
/// vectorised activate_inplace and exp_inplace (each entry's bits from its value alone).
inline Vector logistic_losses(const Matrix& F, const Eigen::Ref<const Matrix>& T, Matrix& E) {
  E = F;
  activate_inplace(Activation::Sigmoid, E);
  E -= T;
  Matrix tail = -F.array().abs();
  exp_inplace(tail.data(), tail.size());
  Vector loss(F.rows());
  for (Index i = 0; i < F.rows(); ++i) {
    loss(i) = std::max(F(i, 0), 0.0) + std::log1p(tail(i, 0)) - T(i, 0) * F(i, 0);
  }
  return loss;
}

/// log(1 + e^f) − t f, the logistic loss of logit f for a 0/1 label t, computed stably.
inline double logistic_loss(double f, double t) {
  return std::max(f, 0.0) + std::log1p(std::exp(-std::abs(f))) - t * f;
}

}  // namespace nnlift::detail
