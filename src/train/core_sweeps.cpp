// HOOI sweeps directed by the core: each sweep contracts the moment tensor with k quadratic forms
// in z = Qᵀx̃ (the core's right singular vectors) instead of all k(k+1)/2 pairs z_a z_b.
// SPDX-License-Identifier: MIT
#include <algorithm>

#include <Eigen/SVD>

#include "detail/moment_kernels.hpp"
#include "detail/top_singular.hpp"
#include "train/stages.hpp"

namespace nnlift::detail {

Matrix core_from_sums(Index k, const Matrix& S, const Vector& m) {
  Matrix t = S;  // k×k²: column b + k·c holds the sums for (·, b, c)
  for (Index c = 0; c < k; ++c) {
    for (Index b = 0; b < k; ++b) {
      for (Index a = 0; a < k; ++a) {
        t(a, b + k * c) -= (b == c ? m(a) : 0.0) + (a == c ? m(b) : 0.0) + (a == b ? m(c) : 0.0);
      }
    }
  }
  return t;
}

Matrix transform_core(const Matrix& C, const Matrix& R) {
  const Index k = C.rows(), m = R.cols();
  // (R ⊗ R): row b' + k c', column b + m c holds R(b', b) R(c', c).
  Matrix RR(k * k, m * m);
  for (Index c = 0; c < m; ++c) {
    for (Index b = 0; b < m; ++b) {
      RR.col(b + m * c) =
          Eigen::Map<const Vector>(Matrix(R.col(b) * R.col(c).transpose()).data(), k * k);
    }
  }
  return R.transpose() * C * RR;
}

void pairs_of(const Matrix& z, Matrix& P) {
  const Index k = z.cols();
  P.resize(z.rows(), k * (k + 1) / 2);
  Index p = 0;
  for (Index b = 0; b < k; ++b) {
    for (Index a = 0; a <= b; ++a, ++p) {
      P.col(p) = z.col(a).cwiseProduct(z.col(b));
    }
  }
}

void add_core_sums(const Matrix& z,
                   const Eigen::Ref<const Vector>& r,
                   const Matrix& P,
                   Eigen::Ref<Matrix> acc) {
  thread_local Matrix RZ;
  const Index pairs = P.cols();
  RZ = z.array().colwise() * r.array();
  acc.leftCols(pairs).noalias() += RZ.transpose() * P;
  acc.col(pairs) += RZ.colwise().sum().transpose();
}

Matrix core_from_pair_sums(const Matrix& sums) {
  const Index k = sums.rows(), pairs = sums.cols() - 1;
  Matrix full(k, k * k);
  Index p = 0;
  for (Index b = 0; b < k; ++b) {
    for (Index a = 0; a <= b; ++a, ++p) {
      full.col(a + k * b) = sums.col(p);
      full.col(b + k * a) = sums.col(p);
    }
  }
  return core_from_sums(k, full, sums.col(pairs));
}

namespace {

// The weights of the quadratic forms z ↦ zᵀΩ_j z on the pairs z_a z_b (a <= b, b-major as
// contract_block's): Ω_j(a, a), and Ω_j(a, b) + Ω_j(b, a) for a < b. Ω is k²×m, column j the
// k×k matrix Ω_j in column-major order.
Matrix pair_weights(const Matrix& Omega, Index k) {
  const Index pairs = k * (k + 1) / 2;
  Matrix w(pairs, Omega.cols());
  Index p = 0;
  for (Index b = 0; b < k; ++b) {
    for (Index a = 0; a <= b; ++a, ++p) {
      w.row(p) = a == b ? Omega.row(a + k * a)
                        : Eigen::RowVectorXd(Omega.row(a + k * b) + Omega.row(b + k * a));
    }
  }
  return w;
}

// The constant shift's part in T(I)[Q Ω_j Qᵀ] for a cubic control variate: B D (P ⊗ P) vec(Ω_j)
// with P = BᵀQ (its part in the core T(Q, Q, Q) is D(P, P, P), transform_core).
Matrix shift_forms(const CoreShift& shift, const Matrix& Q, const Matrix& Omega) {
  const Matrix P = shift.basis.transpose() * Q;
  const Index k = shift.basis.cols(), m = Q.cols();
  Matrix mapped(k * k, Omega.cols());  // vec(P Ω_j Pᵀ)
  for (Index j = 0; j < Omega.cols(); ++j) {
    const Matrix om = Eigen::Map<const Matrix>(Omega.col(j).data(), m, m);
    mapped.col(j) = Eigen::Map<const Vector>(Matrix(P * om * P.transpose()).data(), k * k);
  }
  return shift.basis * (shift.D * mapped);
}

}  // namespace

CoreSweepsResult core_sweeps(const StandardRows& Xs,
                             Vector& r,
                             const Vector* quadratic,
                             const CoreShift* shift,
                             const Matrix& Q0,
                             const Matrix& C0,
                             double rho,
                             const SubspaceOptions& options,
                             const ExecutionContext& context) {
  const Index k = Q0.cols(), pairs = k * (k + 1) / 2;
  const Index read = Xs.read_cols();
  CoreSweepsResult out;
  out.Q = Q0;
  Matrix C = C0;  // T(Q, Q, Q) for the current Q, or an estimate of it
  Vector first;   // E[r x̃]: the labels are fixed after the first sweep's pass, and so is it
  out.status = options.max_sweeps == 0 ? Status::Success : Status::NotConverged;
  for (int sweep = 0; sweep < options.max_sweeps; ++sweep) {
    // Ω: the top-k right singular vectors of the core's k×k² unfolding. With Q spanning the
    // unfolding A = T(I, Q, Q)'s top-k left singular vectors, C = QᵀA, and AΩ = UΣ: HOOI's step.
    const Eigen::JacobiSVD<Matrix> svd(C.transpose(), Eigen::ComputeThinU);
    const Matrix Omega = svd.matrixU();  // k²×k
    const Matrix weights = pair_weights(Omega, k);
    const Matrix Qf = Xs.fold(out.Q);
    // One pass: rows 0..read−1 hold X̃ᵀ[r ∘ zᵀΩ_j z] (columns 0..k−1) and, in the first
    // sweep, X̃ᵀr (column k); rows read..read+k−1 hold Σ r z_a' z_a z_b (columns 0..pairs−1) and
    // Σ r z (column pairs).
    const Index h = sweep == 0 ? k + 1 : k;
    const Index cols = std::max(h, pairs + 1);
    const Matrix S = context.mean(Xs.rows(), read + k, cols, [&](Index b, Index c) -> Matrix {
      Matrix acc = Matrix::Zero(read + k, cols);
      thread_local Matrix Z, P, H;
      for_centred_chunks(
          Xs.read_rows(b, c), Xs.centre(), [&](Index s, Index len, const Matrix& rows) {
            auto rb = r.segment(b + s, len);
            Z.noalias() = rows * Qf;
            if (sweep == 0 && quadratic != nullptr) {
              rb -= quadratic_features(Z) * *quadratic;
            }
            pairs_of(Z, P);
            H.resize(len, h);
            H.leftCols(k).noalias() = P * weights;
            H.leftCols(k).array().colwise() *= rb.array();
            if (h > k) {
              H.col(k) = rb;
            }
            acc.topLeftCorner(read, h).noalias() += rows.transpose() * H;
            add_core_sums(Z, rb, P, acc.bottomLeftCorner(k, pairs + 1));
          });
      return acc;
    });
    const Matrix sums = Xs.unfold(S.topLeftCorner(read, h));  // d×h
    if (h > k) {
      first = sums.col(k);
    }
    const Vector rz = S.bottomRows(k).col(pairs);  // E[r z]
    // T(I)[Q Ω_j Qᵀ] = X̃ᵀ[r ∘ zᵀΩ_j z]/n − E[r x̃] tr Ω_j − Q (Ω_j + Ω_jᵀ) E[r z] (QᵀQ = I).
    Matrix Y = sums.leftCols(k);
    for (Index j = 0; j < k; ++j) {
      const auto om = Eigen::Map<const Matrix>(Omega.col(j).data(), k, k);
      Y.col(j) -= first * om.trace() + out.Q * ((om + om.transpose()) * rz);
    }
    if (shift != nullptr) {
      Y += shift_forms(*shift, out.Q, Omega);
    }
    // The core at this sweep's Q, from the same pass.
    C = core_from_pair_sums(S.bottomLeftCorner(k, pairs + 1));
    if (shift != nullptr) {
      C += transform_core(shift->D, shift->basis.transpose() * out.Q);
    }
    if (!Y.allFinite() || !(Y.norm() > 0)) {
      out.status = Status::NumericalIssue;
      out.message = "core sweeps: the contracted tensor is zero or not finite";
      return out;
    }
    Vector singular_values;
    const Matrix next = detail::top_left_singular(Y, k, singular_values);
    out.last_change = largest_angle_sine(out.Q, next);
    // The next sweep's core: this one's, turned into next's coordinates.
    C = transform_core(C, out.Q.transpose() * next);
    out.Q = next;
    out.sweeps = sweep + 1;
    // tensor_subspace's rule, at the rate ρ of the last unfolding HOOI formed in full.
    if (hooi_settled(out.last_change, rho, options, true)) {
      out.status = Status::Success;
      break;
    }
  }
  if (out.status == Status::NotConverged) {
    out.message = still_moving("core sweeps", options.max_sweeps, out.last_change);
  }
  return out;
}

}  // namespace nnlift::detail
