// Jennrich's simultaneous diagonalisation and CP-ALS for full-rank symmetric tensors.
// SPDX-License-Identifier: MIT
#include <cmath>
#include <complex>
#include <limits>
#include <sstream>

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <Eigen/LU>
#include <Eigen/SVD>

#include <nnlift/jennrich.hpp>

#include "detail/check.hpp"
#include "detail/parallel.hpp"
#include "detail/rng.hpp"

namespace nnlift {
namespace {

// Rows j + k·l hold B(j,:) ∘ C(l,:), matching the unfolding's column order.
Matrix khatri_rao(const Matrix& B, const Matrix& C) {
  const Index k = B.rows();
  Matrix out(k * C.rows(), B.cols());
  for (Index l = 0; l < C.rows(); ++l) {
    out.middleRows(k * l, k) = B * C.row(l).asDiagonal();
  }
  return out;
}

Matrix normalized_columns(Matrix M) {
  for (Index j = 0; j < M.cols(); ++j) {
    const double n = M.col(j).norm();
    if (n > 0) {
      M.col(j) /= n;
    }
  }
  return M;
}

double condition_number(const Matrix& U) {
  const Eigen::JacobiSVD<Matrix> svd(U);
  const Vector& s = svd.singularValues();
  const double smallest = s(s.size() - 1);
  return smallest > 0 ? s(0) / smallest : std::numeric_limits<double>::infinity();
}

struct Trial {
  Matrix U;
  double residual = std::numeric_limits<double>::infinity();
  bool accepted = false;
};

Trial jennrich_trial(const DenseSymmetricTensor3& T, std::uint64_t seed, double max_condition) {
  const Index k = T.dim();
  detail::Rng rng(seed);
  const Vector theta1 = rng.normal_vector(k);
  const Vector theta2 = rng.normal_vector(k);
  const Matrix R1 = T.slice(theta1);
  const Matrix R2 = T.slice(theta2);
  Trial trial;
  const Eigen::FullPivLU<Matrix> lu(R2.transpose());
  if (!lu.isInvertible()) {
    return trial;
  }
  const Matrix M = lu.solve(R1.transpose()).transpose();  // R1 R2⁻¹
  const Eigen::EigenSolver<Matrix> eig(M);
  if (eig.info() != Eigen::Success) {
    return trial;
  }
  const Eigen::VectorXcd values = eig.eigenvalues();
  const Eigen::MatrixXcd vectors = eig.eigenvectors();
  const double scale = std::max(values.cwiseAbs().maxCoeff(), 1e-300);
  Matrix U(k, k);
  for (Index i = 0; i < k; ++i) {
    if (std::abs(values(i).imag()) <= 1e-12 * scale || i + 1 == k) {
      U.col(i) = vectors.col(i).real();
    } else {
      // A complex-conjugate pair (z, z̄): Re z and Im z span the same real plane. Taking Re of
      // both would give parallel columns and a singular U.
      U.col(i) = vectors.col(i).real();
      U.col(i + 1) = vectors.col(i).imag();
      ++i;
    }
  }
  U = normalized_columns(U);
  if (!U.allFinite() || condition_number(U) > max_condition) {
    return trial;
  }
  trial.U = U;
  trial.residual = relative_residual(T, fit_weights(T, U), U);
  trial.accepted = std::isfinite(trial.residual);
  return trial;
}

}  // namespace

void validate(const JennrichOptions& o) {
  detail::require(o.num_trials > 0, "JennrichOptions", "num_trials", o.num_trials, "> 0");
  detail::require(o.max_condition > 1, "JennrichOptions", "max_condition", o.max_condition, "> 1");
  detail::require(o.num_threads >= 0, "JennrichOptions", "num_threads", o.num_threads, ">= 0");
}

void validate(const AlsOptions& o) {
  detail::require(o.max_sweeps > 0, "AlsOptions", "max_sweeps", o.max_sweeps, "> 0");
  detail::require(o.tolerance >= 0, "AlsOptions", "tolerance", o.tolerance, ">= 0");
  detail::require(o.ridge >= 0, "AlsOptions", "ridge", o.ridge, ">= 0");
}

CpResult jennrich(const DenseSymmetricTensor3& T, const JennrichOptions& options) {
  validate(options);
  std::vector<Trial> trials(static_cast<std::size_t>(options.num_trials));
  detail::parallel_for(options.num_trials, options.num_threads, [&](Index t) {
    trials[static_cast<std::size_t>(t)] =
        jennrich_trial(T,
                       detail::derive_seed(options.seed, 0x7E4, static_cast<std::uint64_t>(t)),
                       options.max_condition);
  });
  CpResult result;
  std::size_t best = trials.size();
  for (std::size_t t = 0; t < trials.size(); ++t) {
    if (trials[t].accepted) {
      ++result.iterations;
      if (best == trials.size() || trials[t].residual < trials[best].residual) {
        best = t;
      }
    }
  }
  if (best == trials.size()) {
    result.status = Status::NumericalIssue;
    result.message = "jennrich: all " + std::to_string(options.num_trials) +
                     " trials were rejected (singular slices or ill-conditioned factors); the "
                     "tensor may have rank < k";
    return result;
  }
  result.factors = trials[best].U;
  result.lambda = fit_weights(T, result.factors);
  result.relative_residual = trials[best].residual;
  result.status = Status::Success;
  return result;
}

CpResult cp_als(const DenseSymmetricTensor3& T, const Matrix& initial, const AlsOptions& options) {
  validate(options);
  if (initial.rows() != T.dim() || initial.cols() < 1) {
    detail::fail("cp_als: initial factors are " + std::to_string(initial.rows()) + "x" +
                 std::to_string(initial.cols()) + "; expected " + std::to_string(T.dim()) +
                 " rows and at least one column");
  }
  const Eigen::Map<const Matrix> unfolding = T.unfolding();  // the same for all three modes
  const double norm = std::max(T.frobenius_norm(), 1e-300);
  const Index r = initial.cols();
  Matrix A = normalized_columns(initial), B = A, C = A;
  // One factor update: X ← T_(1) KR(Y, Z) ((YᵀY)∘(ZᵀZ) + ridge)⁻¹.
  auto update = [&](const Matrix& Y, const Matrix& Z) {
    Matrix gram = (Y.transpose() * Y).cwiseProduct(Z.transpose() * Z);
    gram.diagonal().array() +=
        options.ridge * std::max(gram.trace() / static_cast<double>(r), 1e-300);
    const Matrix rhs = unfolding * khatri_rao(Y, Z);
    return Matrix(gram.ldlt().solve(rhs.transpose()).transpose());
  };
  CpResult result;
  double previous = std::numeric_limits<double>::infinity();
  bool converged = false;
  for (int sweep = 0; sweep < options.max_sweeps; ++sweep) {
    A = normalized_columns(update(B, C));
    B = normalized_columns(update(A, C));
    C = update(A, B);  // keeps the scale: C KR(A,B)ᵀ is the model's unfolding
    const double residual = (unfolding - C * khatri_rao(A, B).transpose()).norm() / norm;
    C = normalized_columns(C);
    result.iterations = sweep + 1;
    if (!std::isfinite(residual)) {
      break;
    }
    if (std::abs(previous - residual) <= options.tolerance) {
      converged = true;
      break;
    }
    previous = residual;
  }
  // Align B and C to A column by column, average and refit λ.
  for (Index j = 0; j < r; ++j) {
    if (A.col(j).dot(B.col(j)) < 0) {
      B.col(j) = -B.col(j);
    }
    if (A.col(j).dot(C.col(j)) < 0) {
      C.col(j) = -C.col(j);
    }
  }
  result.factors = normalized_columns((A + B + C) / 3.0);
  if (!result.factors.allFinite()) {
    result.status = Status::NumericalIssue;
    result.message = "cp_als: the iteration diverged (non-finite factors)";
    return result;
  }
  result.lambda = fit_weights(T, result.factors);
  result.relative_residual = relative_residual(T, result.lambda, result.factors);
  if (converged) {
    result.status = Status::Success;
  } else {
    std::ostringstream msg;
    msg << "cp_als: residual still changing after " << options.max_sweeps
        << " sweeps (relative residual " << result.relative_residual << ")";
    result.status = Status::NotConverged;
    result.message = msg.str();
  }
  return result;
}

}  // namespace nnlift
