// Stage "map back": directions in the original coordinates, their first- and second-order moment
// coefficients, and the orientation of units whose activation needs it (ALGORITHM.md §4.1, §4.4b).
// SPDX-License-Identifier: MIT
#include <Eigen/Cholesky>

#include "detail/activation_traits.hpp"
#include "train/stages.hpp"

namespace nnlift::detail {

Units map_back(const Matrix& Xs,
               const MixtureScore* mixture,
               const Vector& yc,
               const Standardizer& st,
               const Matrix& Ubar,
               Activation activation,
               const ExecutionContext& context) {
  const Index n = Xs.rows(), d = Xs.cols();
  // c1 = (ŪᵀŪ)⁻¹ Ūᵀ M1 and c2 = ((ŪᵀŪ)∘(ŪᵀŪ))⁻¹ (ū_jᵀ M2 ū_j)_j: the coefficients of the
  // label's first and second score moments along the directions.
  // (Under a mixture's score, its S1 and S2.)
  const Vector M1 = mixture != nullptr
                        ? mixture->moment1(yc)
                        : Vector(context.mean(n, d, 1, [&](Index b, Index c) {
                            return Matrix(Xs.middleRows(b, c).transpose() * yc.segment(b, c));
                          }));
  const Matrix M2c = mixture != nullptr ? mixture->moment2(yc) : second_moment(Xs, yc, context);
  return units_from_moments(M1, M2c, st, Ubar, activation);
}

Units units_from_moments(const Vector& M1,
                         const Matrix& M2c,
                         const Standardizer& st,
                         const Matrix& Ubar,
                         Activation activation) {
  const Index k = Ubar.cols();
  Units u;
  u.Ubar = Ubar;
  u.W1.resize(k, st.mean.size());
  u.scale.resize(k);
  for (Index j = 0; j < k; ++j) {
    const Vector w = st.W.transpose() * Ubar.col(j);  // ⟨ū, W(x − μ)⟩ = ⟨Wᵀū, x − μ⟩
    u.scale(j) = 1.0 / w.norm();
    u.W1.row(j) = (w * u.scale(j)).transpose();
  }
  const Matrix gram = Ubar.transpose() * Ubar;
  u.c1 = gram.ldlt().solve(Ubar.transpose() * M1);
  Vector rhs(k);
  for (Index j = 0; j < k; ++j) {
    rhs(j) = Ubar.col(j).dot(M2c * Ubar.col(j));
  }
  u.c2 = gram.cwiseProduct(gram).ldlt().solve(rhs);
  if (traits(activation).needs_orientation) {
    // Orientation (§4.4b step 4): the odd tensor fixes a direction only up to the sign of λ_j.
    // Sigmoid and tanh absorb a flip (σ(−z) = 1 − σ(z), tanh odd) into a2 and b2, but
    // softplus(−z) = softplus(z) − z leaves a linear term no output layer can represent.
    // κ1 = E σ' and κ2 = E σ'' are positive, so c1_j and c2_j share the sign of a2_j: a unit
    // whose c1_j disagrees with c2_j points the wrong way. Flipping it flips c1_j only.
    for (Index j = 0; j < k; ++j) {
      if (u.c1(j) * u.c2(j) < 0) {
        u.Ubar.col(j) *= -1.0;
        u.W1.row(j) *= -1.0;
        u.c1(j) = -u.c1(j);
      }
    }
  }
  return u;
}

}  // namespace nnlift::detail
