// The one table of what the training pipeline needs to know about each activation.
// SPDX-License-Identifier: MIT
#pragma once

#include <nnlift/activation.hpp>

namespace nnlift::detail {

struct ActivationTraits {
  Activation value;
  const char* name;
  /// True when a flipped direction cannot be absorbed by (a2, b2) (σ(−z) is not an affine image
  /// of σ(z)), so the unit must be oriented by the signs of c1 and c2 (ALGORITHM.md §4.4b step 4).
  bool needs_orientation;
  /// ∠Σ̃(ξ) for ξ > 0, the phase of σ's Fourier transform (Fourier bias, §4.4a).
  double fourier_phase;
  /// Non-null: why NN-LIFT cannot train this activation (train() refuses it with this text).
  const char* refusal;
};

/// The row of `activation` in the table (activation.cpp).
const ActivationTraits& traits(Activation activation) noexcept;

/// e^x of each of `size` doubles in place, vectorised (Eigen's exp) in fixed chunks: each entry's
/// bits depend on its value alone, wherever it lies (any row block, partition or thread count).
void exp_inplace(double* values, Index size);

/// Every entry of `values` through σ, and σ' at the same points into `slopes`, with σ' from σ
/// where it follows (logistic: σ(1 − σ), tanh: (1 − σ)(1 + σ)), else from the same exponential
/// (softplus). The values equal activate_inplace()'s bit for bit; all but ReLU are vectorised
/// there (Eigen's exp and log, within a few ulp of activate() and activation_derivative(·, 1,
/// ·)). Each entry's bits depend on its value alone. `slopes` is resized.
void activate_with_slope(Activation activation, Matrix& values, Matrix& slopes);

}  // namespace nnlift::detail
