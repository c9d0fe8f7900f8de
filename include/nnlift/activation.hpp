// Elementwise activation functions of the hidden layer and their derivatives.
// SPDX-License-Identifier: MIT
#pragma once

#include <string>

#include <nnlift/types.hpp>

namespace nnlift {

/// Hidden-layer activation σ. All are three times differentiable at least in the
/// distributional sense (ALGORITHM.md §1.1, §8.2).
enum class Activation {
  Sigmoid,   ///< logistic 1/(1+e^{-t})
  Tanh,      ///< hyperbolic tangent
  Softplus,  ///< log(1+e^t)
  Relu,      ///< max(t, 0); no third-order signal without bias (ALGORITHM.md §8.1)
};

/// "sigmoid", "tanh", "softplus", "relu".
const char* to_string(Activation activation) noexcept;

/// Parses a name as printed by to_string (also "logistic" for Sigmoid).
/// \throws std::invalid_argument naming the unknown value and the accepted ones.
Activation parse_activation(const std::string& name);

/// σ^{(order)}(t) for order 0..3. ReLU's second and third derivatives are distributions; for
/// them this returns 0 (use activation_moment for their Gaussian expectations).
/// \throws std::invalid_argument if order is not in [0, 3].
double activation_derivative(Activation activation, int order, double t);

/// σ(t), the same as activation_derivative(activation, 0, t).
double activate(Activation activation, double t) noexcept;

/// Applies σ elementwise to a matrix in place. The logistic is vectorised (within a few ulp of
/// activate()); every entry's bits depend on its value alone, not on where it lies.
void activate_inplace(Activation activation, Matrix& values);

/// κ_m(b; s) := E[σ^{(m)}(b + s Z)], Z ~ N(0,1), for m = 0..3 (ALGORITHM.md §3.1),
/// by 80-node Gauss–Hermite quadrature; for ReLU by closed forms (Φ, φ, −bφ scaled by s).
/// \throws std::invalid_argument if order is not in [0, 3] or s <= 0.
double activation_moment(Activation activation, int order, double b, double s = 1.0);

}  // namespace nnlift
