// The paper's Fourier bias estimator (Procedure 2), for inputs with a constant density on a
// bounded support. ALGORITHM.md §4.4(a).
// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>

#include <nnlift/activation.hpp>
#include <nnlift/execution.hpp>

namespace nnlift::detail {

/// Biases of the units σ(⟨w_j, x⟩ + b_j), w_j = row j of W1 (original coordinates), from
/// v_j = mean_i ỹ_i e^{−i⟨ω_i, x_i⟩} with one frequency ω_i per row drawn uniformly on the cap
/// {‖ω‖ = r, ⟨ω/r, w̄_j⟩ >= 1 − ε²/2} around w̄_j = w_j/‖w_j‖ (angular convention).
/// With s_j = ‖w_j‖: b_j = s_j (∠v_j − ∠Σ̃) / r, the phase taken modulo π into (−π/2, π/2],
/// which resolves the sign of a2_j on the assumption |b_j| < π s_j / (2r). The density is
/// assumed constant on the support, so 1/p(x) is a common factor that does not move the phase.
/// `yc` are the centred labels. The frequency of each row comes from the stream (seed, unit,
/// global row index): the result depends neither on the thread count nor on how rows are split.
Vector fourier_biases(const Matrix& X,
                      const Vector& yc,
                      const Matrix& W1,
                      Activation activation,
                      double radius,
                      double cap,
                      std::uint64_t seed,
                      const ExecutionContext& context);

/// Kolmogorov–Smirnov distance between u_i = (‖x_i − x̄‖ / max_i ‖x_i − x̄‖)^d and U(0, 1):
/// about 1/√n for inputs uniform on a ball, near 1 for Gaussian inputs in any dimension. Over
/// the rows of every part (the radii are gathered: n doubles).
double ball_uniformity_distance(const Matrix& X, const ExecutionContext& context);

}  // namespace nnlift::detail
