// Top-k subspace of an implicit symmetric tensor: random sketch, then HOOI sweeps.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include <Eigen/Eigenvalues>
#include <Eigen/QR>
#include <Eigen/SVD>

#include <nnlift/subspace.hpp>

#include "detail/check.hpp"
#include "detail/rng.hpp"
#include "detail/top_singular.hpp"

namespace nnlift {

// Top-k left singular vectors of Y, and (up to k+1 of) its singular values, from the symmetric
// eigenproblem of the smaller Gram matrix: Y Yᵀ gives them directly; from YᵀY = V Σ² Vᵀ they
// are Y V Σ⁻¹, orthonormalised once more (a QR) against the rounding of small σ. Eigen 3.4's
// BDCSVD was used before and segfaulted on a finite 200×100 unfolding of a mixture-score run
// built with -O3 and AVX-512 (an index of -1 in its deflation; a standalone program with the
// same matrix and flags crashes too); the eigensolver has no such step.
Matrix detail::top_left_singular(const Matrix& Y, Index k, Vector& singular_values) {
  const Index d = Y.rows(), m = Y.cols(), r = std::min(d, m);
  const bool left = d <= m;
  const Matrix gram = left ? Matrix(Y * Y.transpose()) : Matrix(Y.transpose() * Y);
  const Eigen::SelfAdjointEigenSolver<Matrix> eig(gram);
  // Ascending eigenvalues: the largest r, descending.
  const Vector values = eig.eigenvalues().tail(r).reverse().cwiseMax(0.0);
  singular_values = values.head(std::min<Index>(k + 1, r)).cwiseSqrt();
  const Index kk = std::min(k, r);
  const Matrix top = eig.eigenvectors().rightCols(kk).rowwise().reverse();
  Matrix U = Matrix::Zero(d, k);
  if (left) {
    U.leftCols(kk) = top;
  } else {
    const Matrix projected = Y * top;
    const Eigen::HouseholderQR<Matrix> qr(projected);
    U.leftCols(kk) = qr.householderQ() * Matrix::Identity(d, kk);
    // The QR keeps each column's span but may flip its sign: align with Y v / σ.
    for (Index j = 0; j < kk; ++j) {
      if (U.col(j).dot(projected.col(j)) < 0) {
        U.col(j) = -U.col(j);
      }
    }
  }
  return U;
}

// (Through the cosine, sqrt(1 - c²), it cannot go below about 1.5e-8: a converged sweep then
// missed a 1e-8 tolerance, depending on how the products rounded.)
double detail::largest_angle_sine(const Matrix& Q1, const Matrix& Q2) {
  const Matrix outside = Q2 - Q1 * (Q1.transpose() * Q2);
  const Eigen::JacobiSVD<Matrix> svd(outside);
  return std::min(1.0, svd.singularValues().size() > 0 ? svd.singularValues()(0) : 0.0);
}

bool detail::hooi_settled(double change, double rho, const SubspaceOptions& options, bool step) {
  const double left = rho < 0.9 ? change * rho / (1.0 - rho) : change;
  const double tolerance = std::max(options.tolerance, options.noise_tolerance * rho);
  return change < options.tolerance || (step && left < tolerance);
}

std::string detail::still_moving(const std::string& who, int sweeps, double change) {
  std::ostringstream msg;
  msg << who << ": subspace still moving after " << sweeps << " sweeps (sin of largest angle "
      << change << ")";
  return msg.str();
}

void validate(const SubspaceOptions& o) {
  detail::require(o.rank >= 1, "SubspaceOptions", "rank", o.rank, ">= 1");
  detail::require(o.sketch_extra >= 0, "SubspaceOptions", "sketch_extra", o.sketch_extra, ">= 0");
  detail::require(o.max_sweeps >= 0, "SubspaceOptions", "max_sweeps", o.max_sweeps, ">= 0");
  detail::require(o.tolerance >= 0, "SubspaceOptions", "tolerance", o.tolerance, ">= 0");
  detail::require(
      o.noise_tolerance >= 0, "SubspaceOptions", "noise_tolerance", o.noise_tolerance, ">= 0");
}

void sketch_pairs(Index d, Index pairs, std::uint64_t seed, Matrix& U, Matrix& V) {
  detail::Rng rng(detail::derive_seed(seed, 0x5B5));
  U = rng.normal_matrix(d, pairs).colwise().normalized();
  V = rng.normal_matrix(d, pairs).colwise().normalized();
}

SubspaceResult tensor_subspace(const SymmetricTensor3& T, const SubspaceOptions& options) {
  validate(options);
  const Index d = T.dim();
  const Index k = options.rank;
  detail::require_rank_fits(k, d, "tensor_subspace", "SubspaceOptions::rank");
  if (options.start.size() > 0 && options.start.rows() != d) {
    detail::fail("tensor_subspace: start has " + std::to_string(options.start.rows()) +
                 " rows; expected d = " + std::to_string(d));
  }
  SubspaceResult result;
  if (k == d) {
    result.Q = Matrix::Identity(d, d);
    result.gap = std::numeric_limits<double>::infinity();
    result.status = Status::Success;
    return result;
  }
  Matrix sketch;
  if (options.sketch) {
    // Sketch: T(I, u_p, v_p) for random unit pairs, plus the caller's start vectors, each block
    // scaled to unit Frobenius norm so that neither drowns the other.
    const Index pairs = k + options.sketch_extra;
    if (options.sketch_values.size() > 0) {
      if (options.sketch_values.rows() != d || options.sketch_values.cols() != pairs) {
        detail::fail("tensor_subspace: sketch_values is " +
                     std::to_string(options.sketch_values.rows()) + "x" +
                     std::to_string(options.sketch_values.cols()) + "; expected " +
                     std::to_string(d) + "x" + std::to_string(pairs) + " (d x (k + sketch_extra))");
      }
      sketch = options.sketch_values;
    } else {
      Matrix U, V;
      sketch_pairs(d, pairs, options.seed, U, V);
      sketch = T.contract_pairs(U, V);
    }
    const double sketch_norm = sketch.norm();
    if (!(sketch_norm > 0) || !sketch.allFinite()) {
      result.Q = Matrix::Identity(d, k);
      result.status = Status::NumericalIssue;
      result.message = "tensor_subspace: the random sketch is zero or not finite";
      return result;
    }
    sketch /= sketch_norm;
    if (options.start.size() > 0 && options.start.norm() > 0) {
      Matrix both(d, sketch.cols() + options.start.cols());
      both << sketch, options.start / options.start.norm();
      sketch = both;
    }
  } else {
    if (options.start.cols() < k || !options.start.allFinite()) {
      detail::fail("tensor_subspace: without the sketch, start must be finite with at least k = " +
                   std::to_string(k) + " columns; it has " + std::to_string(options.start.cols()));
    }
    sketch = options.start;
  }
  Matrix Q = detail::top_left_singular(sketch, k, result.singular_values);
  // HOOI: Q ← top-k left singular vectors of the d×k² unfolding T(I, Q, Q).
  result.status = options.max_sweeps == 0 ? Status::Success : Status::NotConverged;
  for (int sweep = 0; sweep < options.max_sweeps; ++sweep) {
    const Matrix Y = T.contract_block(Q);
    const Matrix next = detail::top_left_singular(Y, k, result.singular_values);
    result.last_change = detail::largest_angle_sine(Q, next);
    Q = next;
    result.sweeps = sweep + 1;
    // From a sketch the first change is not a HOOI step's (the sketch is not a HOOI iterate);
    // from a given start (options.sketch false: a subspace HOOI found) it is.
    const Vector& sv = result.singular_values;
    const double rho = sv.size() > k && sv(k - 1) > 0 ? sv(k) / sv(k - 1) : 1.0;
    if (detail::hooi_settled(result.last_change, rho, options, sweep > 0 || !options.sketch)) {
      result.status = Status::Success;
      break;
    }
  }
  const Vector& s = result.singular_values;
  result.gap = s.size() > k && s(k) > 0 ? s(k - 1) / s(k) : std::numeric_limits<double>::infinity();
  result.Q = Q;
  if (result.status != Status::Success) {
    result.message =
        detail::still_moving("tensor_subspace", options.max_sweeps, result.last_change);
  }
  return result;
}

}  // namespace nnlift
