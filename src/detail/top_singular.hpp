// The HOOI step's top left singular vectors and its change (subspace.cpp), for its tests and the
// trainer's core sweeps.
// SPDX-License-Identifier: MIT
#pragma once

#include <nnlift/types.hpp>

namespace nnlift::detail {

/// The top-k left singular vectors of Y (d×k, orthonormal; columns past min(d, cols) zero), and
/// (up to k+1 of) its singular values, descending, through the symmetric eigenproblem of the
/// smaller Gram matrix.
Matrix top_left_singular(const Matrix& Y, Index k, Vector& singular_values);

/// The sine of the largest principal angle between span(Q1) and span(Q2) (orthonormal columns):
/// the spectral norm of Q2's part outside span(Q1), accurate to rounding.
double largest_angle_sine(const Matrix& Q1, const Matrix& Q2);

}  // namespace nnlift::detail
