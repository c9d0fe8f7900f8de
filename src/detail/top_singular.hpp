// The HOOI step's top left singular vectors (subspace.cpp), for its tests.
// SPDX-License-Identifier: MIT
#pragma once

#include <nnlift/types.hpp>

namespace nnlift::detail {

/// The top-k left singular vectors of Y (d×k, orthonormal; columns past min(d, cols) zero), and
/// (up to k+1 of) its singular values, descending, through the symmetric eigenproblem of the
/// smaller Gram matrix.
Matrix top_left_singular(const Matrix& Y, Index k, Vector& singular_values);

}  // namespace nnlift::detail
