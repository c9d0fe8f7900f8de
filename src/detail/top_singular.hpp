// The HOOI step's top left singular vectors and its change (subspace.cpp), for its tests and the
// trainer's core sweeps.
// SPDX-License-Identifier: MIT
#pragma once

#include <string>

#include <nnlift/subspace.hpp>
#include <nnlift/types.hpp>

namespace nnlift::detail {

/// The top-k left singular vectors of Y (d×k, orthonormal; columns past min(d, cols) zero), and
/// (up to k+1 of) its singular values, descending, through the symmetric eigenproblem of the
/// smaller Gram matrix.
Matrix top_left_singular(const Matrix& Y, Index k, Vector& singular_values);

/// The sine of the largest principal angle between span(Q1) and span(Q2) (orthonormal columns):
/// the spectral norm of Q2's part outside span(Q1), accurate to rounding.
double largest_angle_sine(const Matrix& Q1, const Matrix& Q2);

/// HOOI's stopping rule after a sweep that moved Q by `change` (tensor_subspace, and the
/// trainer's core sweeps): it converges linearly, at about ρ = σ_{k+1}/σ_k per sweep, so what is
/// left to move is about change·ρ/(1 − ρ). Settled when the change is below options.tolerance,
/// or (`step`: the change was a HOOI step's) what is left is below max(tolerance,
/// noise_tolerance·ρ).
bool hooi_settled(double change, double rho, const SubspaceOptions& options, bool step);

/// "WHO: subspace still moving after N sweeps (sin of largest angle C)".
std::string still_moving(const std::string& who, int sweeps, double change);

}  // namespace nnlift::detail
