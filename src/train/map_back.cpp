// Stage "map back": directions in the original coordinates, their first- and second-order moment
// coefficients, and the orientation of units whose activation needs it (ALGORITHM.md §4.1, §4.4b).
// SPDX-License-Identifier: MIT
#include <Eigen/Cholesky>

#include "detail/activation_traits.hpp"
#include "detail/parallel.hpp"
#include "detail/rng.hpp"
#include "train/stages.hpp"

namespace nnlift::detail {

namespace {

// Ū lies in span(Q) when what is left of it after projecting on Q is rounding: decompose_core's
// directions are Q times the core's components; M2's (weak and degenerate units) and extra
// units' are not.
constexpr double kInSpan = 1e-10;

}  // namespace

Projections::Projections(const StandardRows& Xs, const RowsInBasis* basis, const Matrix& Ubar)
    : m_Xs(Xs) {
  if (basis != nullptr && basis->Z.rows() == Xs.rows() && basis->Q.rows() == Ubar.rows() &&
      basis->Z.cols() == basis->Q.cols() && Ubar.size() > 0) {
    Matrix G = basis->Q.transpose() * Ubar;
    if ((Ubar - basis->Q * G).norm() <= kInSpan * Ubar.norm()) {
      m_Z = &basis->Z;
      m_G = std::move(G);
      return;
    }
  }
  m_G = Xs.fold(Ubar);
}

Matrix Projections::block(Index b, Index c) const {
  return m_Z != nullptr ? Matrix(m_Z->middleRows(b, c) * m_G) : m_Xs.times_folded(b, c, m_G);
}

Eigen::RowVectorXd Projections::row(Index i) const {
  return m_Z != nullptr ? Eigen::RowVectorXd(m_Z->row(i) * m_G) : m_Xs.row_times_folded(i, m_G);
}

Matrix hidden_layer_of(const Matrix& X,
                       const Projections& T,
                       const Units& units,
                       const BiasFit& biases,
                       const Standardizer& st,
                       const TwoLayerNetwork& net,
                       const ExecutionContext& context) {
  if (!T.in_basis()) {
    return context.map_rows(X.rows(), net.b1.size(), [&](Index b, Index c, Eigen::Ref<Matrix> out) {
      out = hidden_layer(net, X.middleRows(b, c));
    });
  }
  const Vector a = units.scale.cwiseProduct(biases.rescale);
  const Vector offset = net.W1 * st.mean + net.b1;
  return context.map_rows(X.rows(), net.b1.size(), [&](Index b, Index c, Eigen::Ref<Matrix> out) {
    Matrix z = T.block(b, c) * a.asDiagonal();
    z.rowwise() += offset.transpose();
    activate_inplace(net.activation, z);
    out = z;
  });
}

Units map_back(const StandardRows& Xs,
               const MixtureScore* mixture,
               const Vector& yc,
               const Standardizer& st,
               const Matrix& Ubar,
               const Projections& T,
               Activation activation,
               const ExecutionContext& context) {
  const Index n = Xs.rows(), k = Ubar.cols();
  // c1 = (ŪᵀŪ)⁻¹ Ūᵀ M1 and c2 = ((ŪᵀŪ)∘(ŪᵀŪ))⁻¹ (ū_jᵀ M2 ū_j)_j: the coefficients of the
  // label's first and second score moments along the directions.
  if (mixture != nullptr) {
    // Under a mixture's score, its S1 and S2.
    const Matrix M2c = mixture->moment2(yc);
    Vector q(k);
    for (Index j = 0; j < k; ++j) {
      q(j) = Ubar.col(j).dot(M2c * Ubar.col(j));
    }
    return units_from_moments(Ubar.transpose() * mixture->moment1(yc), q, st, Ubar, activation);
  }
  if (T.in_basis()) {
    // [Σ yc t_j | Σ yc t_j² | Σ yc] from the rows in the subspace: no pass over the inputs.
    const Matrix means = context.mean(n, 2 * k + 1, 1, [&](Index b, Index c) {
      const Matrix t = T.block(b, c);
      const auto y = yc.segment(b, c);
      Matrix out(2 * k + 1, 1);
      out.col(0).head(k).noalias() = t.transpose() * y;
      out.col(0).segment(k, k).noalias() = t.cwiseAbs2().transpose() * y;
      out(2 * k, 0) = sum_of(y);
      return out;
    });
    const Vector q =
        means.col(0).segment(k, k) - means(2 * k, 0) * Ubar.colwise().squaredNorm().transpose();
    return units_from_moments(means.col(0).head(k), q, st, Ubar, activation);
  }
  const Matrix Uf = Xs.fold(Ubar);
  const Matrix sums = context.mean(n, Xs.read_cols() + k + 1, 1, [&](Index b, Index c) {
    return map_back_raw_block(Xs.read_rows(b, c), Xs.centre(), yc.segment(b, c), Uf);
  });
  // Sums over stored rows are already the standardised rows' means.
  return Xs.standardizer() != nullptr ? units_from_raw_means(sums, st, Ubar, activation)
                                      : units_from_block_means(sums, st, Ubar, activation);
}

Matrix map_back_raw_block(const Eigen::Ref<const Matrix>& X,
                          const Vector& mean,
                          const Eigen::Ref<const Vector>& yc,
                          const Matrix& Uf) {
  const Index d = X.cols(), k = Uf.cols();
  Matrix out(d + k + 1, 1);
  out.topRows(d) = centred_sums(X, mean, yc);
  out.col(0).segment(d, k).noalias() = centred_times(X, mean, Uf).cwiseAbs2().transpose() * yc;
  out(d + k, 0) = sum_of(yc);
  return out;
}

// The norm of a weight row w of the original coordinates measured in the columns' standard
// deviations, ‖diag(σ̂) w‖: the units' scale convention. A unit's row has norm 1 in it, which for
// inputs of unit variance (nnlift synth's teachers) is norm 1 in the original coordinates, and
// which does not depend on the units a column is written in: with ‖w‖ itself, a column written
// in 1e-5 of its units made every unit along it nearly linear (its scale 1e-5 in standardised
// coordinates), and one written in thousands a step.
namespace {

double column_scaled_norm(const Vector& w, const Standardizer& st) {
  if (st.inv_sd.size() != w.size()) {
    return w.norm();
  }
  double sum = 0;
  for (Index i = 0; i < w.size(); ++i) {
    if (st.inv_sd(i) > 0) {
      const double v = w(i) / st.inv_sd(i);
      sum += v * v;
    }
  }
  return std::sqrt(sum);
}

}  // namespace

Units units_from_raw_means(const Matrix& sums,
                           const Standardizer& st,
                           const Matrix& Ubar,
                           Activation activation) {
  const Index d = st.W.cols(), k = Ubar.cols();
  Matrix means(st.rank() + k + 1, 1);
  means << unfold(st, sums.topRows(d)), sums.bottomRows(k + 1);
  return units_from_block_means(means, st, Ubar, activation);
}

Units units_from_block_means(const Matrix& means,
                             const Standardizer& st,
                             const Matrix& Ubar,
                             Activation activation) {
  const Index k = Ubar.cols(), d = Ubar.rows();
  // ū_jᵀ (E[yc x̃x̃ᵀ] − E[yc] I) ū_j.
  const Vector q =
      means.col(0).segment(d, k) - means(d + k, 0) * Ubar.colwise().squaredNorm().transpose();
  return units_from_moments(Ubar.transpose() * means.col(0).head(d), q, st, Ubar, activation);
}

Units units_from_moments(const Vector& UtM1,
                         const Vector& q,
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
    u.scale(j) = 1.0 / column_scaled_norm(w, st);
    u.W1.row(j) = (w * u.scale(j)).transpose();
  }
  const Matrix gram = Ubar.transpose() * Ubar;
  u.c1 = gram.ldlt().solve(UtM1);
  u.c2 = gram.cwiseProduct(gram).ldlt().solve(q);
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

void keep_row_norms(const Matrix& rows, Units& u) {
  for (Index j = 0; j < std::min(rows.rows(), u.W1.rows()); ++j) {
    const double factor = rows.row(j).norm() / u.W1.row(j).norm();
    if (factor > 0 && std::isfinite(factor)) {
      u.W1.row(j) *= factor;
      u.scale(j) *= factor;
    }
  }
}

void append_extra_units(const ExtraUnits& extra, const Standardizer& st, Units& u) {
  const Index k = u.W1.rows(), e = extra.E.cols(), d = st.mean.size();
  u.Ubar.conservativeResize(Eigen::NoChange, k + e);
  u.W1.conservativeResize(k + e, d);
  u.scale.conservativeResize(k + e);
  u.c1.conservativeResize(k + e);
  u.c2.conservativeResize(k + e);
  u.extra_bias = extra.b;
  for (Index j = 0; j < e; ++j) {
    const Vector w = st.W.transpose() * extra.E.col(j);
    u.Ubar.col(k + j) = extra.E.col(j);
    u.scale(k + j) = 1.0 / column_scaled_norm(w, st);
    u.W1.row(k + j) = (w * u.scale(k + j)).transpose();
    u.c1(k + j) = u.c2(k + j) = 0.0;
  }
}

ExtraUnits extra_units(Index r, Index e, std::uint64_t seed) {
  Rng rng(seed);
  ExtraUnits out{rng.normal_matrix(r, e), Vector(e)};
  out.E.colwise().normalize();
  for (Index j = 0; j < e; ++j) {
    out.b(j) = rng.uniform(-1.5, 1.5);
  }
  return out;
}

}  // namespace nnlift::detail
