// Whitening from a symmetric matrix (dense or Spectra) and the sign-agnostic whitening.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <numeric>  // std::iota
#include <sstream>

#include <Eigen/Eigenvalues>
#include <Spectra/MatOp/DenseSymMatProd.h>
#include <Spectra/SymEigsSolver.h>

#include <nnlift/whiten.hpp>

#include "detail/check.hpp"
#include "detail/rng.hpp"

namespace nnlift {
namespace {

void require_symmetric(const Matrix& M) {
  if (M.rows() != M.cols() || M.rows() < 1) {
    detail::fail("whiten: M is " + std::to_string(M.rows()) + "x" + std::to_string(M.cols()) +
                 "; must be square and non-empty");
  }
  if (!M.allFinite()) {
    detail::fail("whiten: M has non-finite entries");
  }
  const double asym = (M - M.transpose()).cwiseAbs().maxCoeff();
  const double scale = std::max(1.0, M.cwiseAbs().maxCoeff());
  if (asym > 1e-10 * scale) {
    std::ostringstream msg;
    msg << "whiten: M is not symmetric (largest |M_ij - M_ji| = " << asym << ")";
    detail::fail(msg.str());
  }
}

// Top-k eigenpairs of M by magnitude, largest magnitude first.
void top_eigenpairs(const Matrix& M, Index k, bool use_spectra, Vector& values, Matrix& vectors) {
  if (use_spectra) {
    Spectra::DenseSymMatProd<double> op(M);
    const Index ncv = std::min<Index>(std::max<Index>(2 * k + 1, 20), M.rows());
    Spectra::SymEigsSolver<Spectra::DenseSymMatProd<double>> solver(op, k, ncv);
    solver.init();
    solver.compute(Spectra::SortRule::LargestMagn, 1000, 1e-12);
    if (solver.info() == Spectra::CompInfo::Successful) {
      values = solver.eigenvalues();
      vectors = solver.eigenvectors();
      return;
    }
    // Lanczos did not converge: fall through to the dense solver, which always does.
  }
  Eigen::SelfAdjointEigenSolver<Matrix> solver(M);
  std::vector<Index> order(static_cast<std::size_t>(M.rows()));
  std::iota(order.begin(), order.end(), Index{0});
  const Vector& ev = solver.eigenvalues();
  std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) {
    return std::abs(ev(a)) > std::abs(ev(b));
  });
  values.resize(k);
  vectors.resize(M.rows(), k);
  for (Index j = 0; j < k; ++j) {
    values(j) = ev(order[static_cast<std::size_t>(j)]);
    vectors.col(j) = solver.eigenvectors().col(order[static_cast<std::size_t>(j)]);
  }
}

}  // namespace

void validate(const WhitenOptions& o) {
  detail::require(o.rank >= 1, "WhitenOptions", "rank", o.rank, ">= 1");
  detail::require(o.relative_floor >= 0 && o.relative_floor < 1,
                  "WhitenOptions",
                  "relative_floor",
                  o.relative_floor,
                  "in [0, 1)");
}

Whitening whiten(const Matrix& M, const WhitenOptions& options) {
  validate(options);
  require_symmetric(M);
  const Index d = M.rows();
  const Index k = options.rank;
  detail::require_rank_fits(k, d, "whiten", "WhitenOptions::rank");
  bool use_spectra = false;
  switch (options.solver) {
    case EigenSolverKind::Auto:
      use_spectra = d >= 4 * k + 20;
      break;
    case EigenSolverKind::Dense:
      break;
    case EigenSolverKind::Spectra:
      use_spectra = k < d;  // Spectra needs k <= d − 1
      break;
  }
  Whitening w;
  w.solver = use_spectra ? "spectra" : "dense";
  Matrix U;
  top_eigenpairs(M, k, use_spectra, w.eigenvalues, U);
  const double top = w.eigenvalues.cwiseAbs().maxCoeff();
  const double smallest = w.eigenvalues.cwiseAbs().minCoeff();
  const bool all_positive = (w.eigenvalues.array() > 0).all();
  const bool all_negative = (w.eigenvalues.array() < 0).all();
  if (!(top > 0) || smallest <= options.relative_floor * top) {
    std::ostringstream msg;
    msg << "whiten: the top-" << k << " eigenvalues include (near) zero: |λ_k| = " << smallest
        << " vs |λ_1| = " << top << "; M has rank < k on this subspace";
    w.status = Status::NumericalIssue;
    w.message = msg.str();
    return w;
  }
  if (!all_positive && !all_negative) {
    std::ostringstream msg;
    msg << "whiten: M is indefinite on its top-" << k << " eigenspace (eigenvalues";
    for (Index j = 0; j < k; ++j) {
      msg << (j ? ", " : " ") << w.eigenvalues(j);
    }
    msg << "); whitening by |λ| would be silently wrong (ALGORITHM.md §3.3)";
    w.status = Status::NotDefinite;
    w.message = msg.str();
    return w;
  }
  w.sign = all_positive ? 1.0 : -1.0;
  const Vector magnitude = w.eigenvalues.cwiseAbs();
  w.W = U * magnitude.cwiseSqrt().cwiseInverse().asDiagonal();
  w.unwhiten = U * magnitude.cwiseSqrt().asDiagonal();
  w.status = Status::Success;
  return w;
}

void validate(const SignAgnosticOptions& o) {
  detail::require(
      o.max_iterations > 0, "SignAgnosticOptions", "max_iterations", o.max_iterations, "> 0");
  detail::require(o.num_starts > 0, "SignAgnosticOptions", "num_starts", o.num_starts, "> 0");
  detail::require(o.patience > 0, "SignAgnosticOptions", "patience", o.patience, "> 0");
}

SignAgnosticWhitening sign_agnostic_whitening(const SymmetricTensor3& T,
                                              const SignAgnosticOptions& options) {
  validate(options);
  const Index k = T.dim();
  // M(θ) = Σ_i θ_i S_i with the slices S_i = T(I, I, e_i).
  std::vector<Matrix> slices(static_cast<std::size_t>(k));
  double scale = 0.0;
  for (Index i = 0; i < k; ++i) {
    slices[static_cast<std::size_t>(i)] = T.slice(Vector::Unit(k, i));
    scale = std::max(scale, slices[static_cast<std::size_t>(i)].norm());
  }
  auto matrix_at = [&](const Vector& theta) {
    Matrix M = Matrix::Zero(k, k);
    for (Index i = 0; i < k; ++i) {
      M += theta(i) * slices[static_cast<std::size_t>(i)];
    }
    return M;
  };
  SignAgnosticWhitening best;
  best.min_eigenvalue = -std::numeric_limits<double>::infinity();
  detail::Rng rng(detail::derive_seed(options.seed, 0x5A6));
  Eigen::SelfAdjointEigenSolver<Matrix> solver;
  for (int start = 0; start < options.num_starts; ++start) {
    Vector theta = rng.normal_vector(k).normalized();
    Vector local_best = theta;
    double local_value = -std::numeric_limits<double>::infinity();
    int since_improvement = 0;
    for (int it = 0; it < options.max_iterations && since_improvement < options.patience; ++it) {
      solver.compute(matrix_at(theta));
      const double value = solver.eigenvalues()(0);
      if (value > local_value) {
        local_value = value;
        local_best = theta;
        since_improvement = 0;
      } else {
        ++since_improvement;
      }
      // Supergradient of λ_min at θ: (vᵀ S_i v)_i = T(v, v, e_i) for the bottom eigenvector v.
      const Vector v = solver.eigenvectors().col(0);
      Vector g(k);
      for (Index i = 0; i < k; ++i) {
        g(i) = v.dot(slices[static_cast<std::size_t>(i)] * v);
      }
      const double gnorm = g.norm();
      if (!(gnorm > 0)) {
        break;
      }
      // Diminishing steps on the unit ball: the optimum of a concave λ_min over ‖θ‖ <= 1 lies on
      // the sphere whenever it is positive (λ_min is positively homogeneous).
      theta += (0.5 / std::sqrt(1.0 + it)) * g / gnorm;
      const double tn = theta.norm();
      if (tn > 1.0) {
        theta /= tn;
      }
      best.iterations += 1;
    }
    if (local_value > best.min_eigenvalue) {
      best.min_eigenvalue = local_value;
      best.theta = local_best;
    }
  }
  if (!(best.min_eigenvalue > 1e-12 * std::max(scale, 1e-300))) {
    std::ostringstream msg;
    msg << "sign-agnostic whitening: no θ with T(I,I,θ) positive definite was found (best "
           "λ_min = "
        << best.min_eigenvalue
        << "); the tensor has rank < k, or its components are not linearly independent";
    best.status = Status::NotDefinite;
    best.message = msg.str();
    return best;
  }
  solver.compute(matrix_at(best.theta));
  const Vector values = solver.eigenvalues();
  const Matrix& U = solver.eigenvectors();
  best.W = U * values.cwiseSqrt().cwiseInverse().asDiagonal() * U.transpose();
  best.unwhiten = U * values.cwiseSqrt().asDiagonal() * U.transpose();
  best.status = Status::Success;
  return best;
}

}  // namespace nnlift
