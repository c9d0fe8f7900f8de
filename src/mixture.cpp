// Gaussian mixtures: EM fit and the mixture score moments (include/nnlift/mixture.hpp).
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <limits>

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>

#include <nnlift/mixture.hpp>

#include "detail/check.hpp"
#include "detail/names.hpp"
#include "detail/parallel.hpp"
#include "detail/rng.hpp"
#include "detail/sample.hpp"

namespace nnlift {
namespace {

const detail::EnumName<MixtureCovariance> kCovarianceNames[] = {
    {MixtureCovariance::Full, "full"},
    {MixtureCovariance::Diagonal, "diagonal"},
    {MixtureCovariance::Auto, "auto"}};

constexpr double kLog2Pi = 1.8378770664093454835606594728112;

// Per component: L_c = R_c⁻ᵀ (Σ_c = R_c R_cᵀ) and log π_c − ½ log det Σ_c − (d/2) log 2π, so
// that log π_c N_c(x) = constant_c − ½ ‖(x − μ_c)ᵀ L_c‖².
struct Factors {
  std::vector<Matrix> L;
  Vector constant;
  // Per component, 1/σ of a diagonal covariance (else empty): L is then diagonal, and
  // (x − μ)ᵀL is taken entry by entry, with the same bits as the product (its other terms are
  // exact zeros).
  std::vector<Eigen::RowVectorXd> inverse_sd;
};

Factors factor(const GaussianMixture& g) {
  const Index C = g.components(), d = g.dim();
  Factors f;
  f.constant.resize(C);
  for (Index c = 0; c < C; ++c) {
    const Matrix& cov = g.covariances[static_cast<std::size_t>(c)];
    Vector root;  // the diagonal of the Cholesky factor R
    if (cov.isDiagonal(0.0)) {
      // Off-diagonal entries exactly 0: R = diag(√σ²) and L = diag(1/√σ²), the bits LLT and
      // the triangular solve give, without their d³ operations.
      if (!(cov.diagonal().array() > 0.0).all()) {
        detail::fail("GaussianMixture: covariance " + std::to_string(c) +
                     " is not positive definite");
      }
      root = cov.diagonal().cwiseSqrt();
      const Eigen::RowVectorXd inverse = root.cwiseInverse().transpose();
      f.L.push_back(inverse.asDiagonal());
      f.inverse_sd.push_back(inverse);
    } else {
      const Eigen::LLT<Matrix> llt(cov);
      if (llt.info() != Eigen::Success) {
        detail::fail("GaussianMixture: covariance " + std::to_string(c) +
                     " is not positive definite");
      }
      const Matrix R = llt.matrixL();
      Matrix Rinv = Matrix::Identity(d, d);
      R.triangularView<Eigen::Lower>().solveInPlace(Rinv);
      f.L.push_back(Rinv.transpose());
      f.inverse_sd.emplace_back();
      root = R.diagonal();
    }
    double logdet = 0;
    for (Index i = 0; i < d; ++i) {
      logdet += 2.0 * std::log(root(i));
    }
    f.constant(c) = std::log(g.weights(c)) - 0.5 * logdet - 0.5 * static_cast<double>(d) * kLog2Pi;
  }
  return f;
}

// log π_c N_c(x_i) for the rows of X (n×C).
Matrix log_joint(const GaussianMixture& g, const Factors& f, const Eigen::Ref<const Matrix>& X) {
  Matrix out(X.rows(), g.components());
  for (Index c = 0; c < g.components(); ++c) {
    const auto& inverse_sd = f.inverse_sd[static_cast<std::size_t>(c)];
    const Matrix U =
        inverse_sd.size() > 0
            ? Matrix((X.rowwise() - g.means.row(c)).array().rowwise() * inverse_sd.array())
            : Matrix((X.rowwise() - g.means.row(c)) *
                     f.L[static_cast<std::size_t>(c)].triangularView<Eigen::Upper>());
    out.col(c) = (f.constant(c) - 0.5 * U.rowwise().squaredNorm().array()).matrix();
  }
  return out;
}

// Row-wise log Σ_c exp, and the joint turned into responsibilities in place.
Vector normalise_rows(Matrix& joint) {
  Vector lse(joint.rows());
  for (Index i = 0; i < joint.rows(); ++i) {
    const double top = joint.row(i).maxCoeff();
    const double s = (joint.row(i).array() - top).exp().sum();
    lse(i) = top + std::log(s);
    joint.row(i) = (joint.row(i).array() - lse(i)).exp();
  }
  return lse;
}

Index parameters(Index C, Index d, MixtureCovariance covariance) {
  const Index per = covariance == MixtureCovariance::Full ? d * (d + 1) / 2 : d;
  return (C - 1) + C * d + C * per;
}

// Σ = S/N − μμᵀ (+ floor), diagonal when asked. The uncentred form can lose positive
// definiteness to rounding when the values are large against their spread: the eigenvalues are
// then lifted to the floor.
Matrix covariance_from(const Matrix& second,
                       const Vector& mu,
                       double weight,
                       MixtureCovariance covariance,
                       double floor) {
  Matrix S = second / weight - mu * mu.transpose();
  if (covariance == MixtureCovariance::Diagonal) {
    S = Matrix(S.diagonal().asDiagonal());
  }
  S = 0.5 * (S + S.transpose()).eval();
  S.diagonal().array() += floor;
  if (Eigen::LLT<Matrix>(S).info() != Eigen::Success || !S.allFinite()) {
    if (!S.allFinite()) {
      throw DataError("Gaussian mixture: a covariance is not finite (a value overflows)");
    }
    const Eigen::SelfAdjointEigenSolver<Matrix> eig(S);
    S = eig.eigenvectors() * eig.eigenvalues().cwiseMax(floor).asDiagonal() *
        eig.eigenvectors().transpose();
    S = 0.5 * (S + S.transpose()).eval();
  }
  return S;
}

// Hard clusters of the sample: their centres and each row's cluster.
struct Clusters {
  Matrix centres;
  std::vector<Index> label;
};

// k-means++ seeding and a few Lloyd iterations (seeded by C: every covariance form of C starts
// from the same clusters).
Clusters kmeans(const Matrix& S, Index C, const MixtureOptions& o) {
  const Index m = S.rows(), d = S.cols();
  detail::Rng rng(detail::derive_seed(o.seed, static_cast<std::uint64_t>(100 + C)));
  Matrix centres(C, d);
  centres.row(0) = S.row(std::min<Index>(m - 1, static_cast<Index>(rng.uniform() * m)));
  Vector nearest = (S.rowwise() - centres.row(0)).rowwise().squaredNorm();
  for (Index c = 1; c < C; ++c) {
    const double total = nearest.sum();
    Index pick = m - 1;
    if (total > 0) {
      const double u = rng.uniform() * total;
      double acc = 0;
      for (Index i = 0; i < m; ++i) {
        acc += nearest(i);
        if (acc > u) {
          pick = i;
          break;
        }
      }
    }
    centres.row(c) = S.row(pick);
    nearest = nearest.cwiseMin((S.rowwise() - centres.row(c)).rowwise().squaredNorm());
  }
  std::vector<Index> label(static_cast<std::size_t>(m), 0);
  for (int it = 0; it < 20; ++it) {
    bool moved = false;
    for (Index i = 0; i < m; ++i) {
      Index best = 0;
      (centres.rowwise() - S.row(i)).rowwise().squaredNorm().minCoeff(&best);
      moved = moved || best != label[static_cast<std::size_t>(i)];
      label[static_cast<std::size_t>(i)] = best;
    }
    Matrix sums = Matrix::Zero(C, d);
    Vector counts = Vector::Zero(C);
    for (Index i = 0; i < m; ++i) {
      sums.row(label[static_cast<std::size_t>(i)]) += S.row(i);
      counts(label[static_cast<std::size_t>(i)]) += 1;
    }
    for (Index c = 0; c < C; ++c) {
      if (counts(c) > 0) {
        centres.row(c) = sums.row(c) / counts(c);
      }
    }
    if (!moved && it > 0) {
      break;
    }
  }
  return {std::move(centres), std::move(label)};
}

// The start of EM: a mixture from the hard clusters.
GaussianMixture mixture_from(const Matrix& S,
                             const Clusters& clusters,
                             MixtureCovariance covariance,
                             const MixtureOptions& o) {
  const Index m = S.rows(), d = S.cols(), C = clusters.centres.rows();
  const Matrix& centres = clusters.centres;
  const std::vector<Index>& label = clusters.label;
  GaussianMixture g;
  g.weights = Vector::Zero(C);
  g.means = centres;
  // Each cluster's second moments Σ x xᵀ from its rows gathered (one product; only the
  // diagonal, Σ x², for the diagonal form): a d×d outer product per row cost m·d² operations,
  // 2 of a 3-second EM search at d = 200.
  std::vector<std::vector<Index>> members(static_cast<std::size_t>(C));
  for (Index i = 0; i < m; ++i) {
    members[static_cast<std::size_t>(label[static_cast<std::size_t>(i)])].push_back(i);
  }
  std::vector<Matrix> second(static_cast<std::size_t>(C));
  for (Index c = 0; c < C; ++c) {
    const std::vector<Index>& rows = members[static_cast<std::size_t>(c)];
    g.weights(c) = static_cast<double>(rows.size());
    Matrix Sc(static_cast<Index>(rows.size()), d);
    for (std::size_t r = 0; r < rows.size(); ++r) {
      Sc.row(static_cast<Index>(r)) = S.row(rows[r]);
    }
    second[static_cast<std::size_t>(c)] =
        covariance == MixtureCovariance::Diagonal
            ? Matrix(Sc.colwise().squaredNorm().transpose().asDiagonal())
            : Matrix(Sc.transpose() * Sc);
  }
  for (Index c = 0; c < C; ++c) {
    const double w = std::max(g.weights(c), 1.0);
    g.covariances.push_back(g.weights(c) >= 2 ? covariance_from(second[static_cast<std::size_t>(c)],
                                                                centres.row(c).transpose(),
                                                                w,
                                                                covariance,
                                                                o.variance_floor)
                                              : Matrix(Matrix::Identity(d, d)));
    g.weights(c) = std::max(g.weights(c), 1.0) / static_cast<double>(m);
  }
  g.weights /= g.weights.sum();
  return g;
}

// EM from a start, on the sample S; every pass's sums combine in the context's block order.
MixtureCandidate run_em(const Matrix& S,
                        MixtureCovariance covariance,
                        const MixtureOptions& o,
                        const ExecutionContext& context,
                        GaussianMixture& g) {
  const Index m = S.rows(), d = S.cols(), C = g.components();
  MixtureCandidate out;
  out.components = C;
  out.covariance = covariance;
  double previous = -std::numeric_limits<double>::infinity();
  const bool diagonal = covariance == MixtureCovariance::Diagonal;
  // Per component, its sums over the rows weighted by the responsibilities r: diagonal, the
  // column [Σ r; Σ r x; Σ r x²] (2d + 1); full, the (d + 1)×(d + 1) block Σ r [1; x][1; x]ᵀ
  // (lower triangle, by a symmetric rank update). Σ log p in the last column's first entry.
  const Index width = diagonal ? 1 : d + 1, height = diagonal ? 2 * d + 1 : d + 1;
  for (int it = 1; it <= o.max_iterations; ++it) {
    const Factors f = factor(g);
    const Matrix acc = context.sum(m, height, C * width + 1, [&](Index b, Index c) {
      const auto Sb = S.middleRows(b, c);
      Matrix resp = log_joint(g, f, Sb);
      const Vector lse = normalise_rows(resp);
      Matrix block = Matrix::Zero(height, C * width + 1);
      if (diagonal) {
        block.row(0).head(C) = resp.colwise().sum();
        block.middleRows(1, d).leftCols(C).noalias() = Sb.transpose() * resp;
        block.middleRows(d + 1, d).leftCols(C).noalias() =
            Sb.array().square().matrix().transpose() * resp;
      } else {
        Matrix weighted(c, width);
        for (Index k = 0; k < C; ++k) {
          const Eigen::ArrayXd root = resp.col(k).array().sqrt();
          weighted.col(0) = root.matrix();
          weighted.rightCols(d) = (Sb.array().colwise() * root).matrix();
          Matrix gram = Matrix::Zero(width, width);
          gram.selfadjointView<Eigen::Lower>().rankUpdate(weighted.transpose());
          block.middleCols(k * width, width) = gram;
        }
      }
      block(0, C * width) = detail::sum_of(lse);
      return block;
    });
    const double ll = acc(0, C * width) / static_cast<double>(m);
    if (!std::isfinite(ll)) {
      throw DataError("Gaussian mixture: the log-likelihood is not finite (a value overflows)");
    }
    out.log_likelihood = ll;
    out.iterations = it;
    if (ll - previous < o.tolerance * std::max(1.0, std::abs(ll))) {
      out.converged = true;
      break;
    }
    previous = ll;
    for (Index k = 0; k < C; ++k) {
      double w = 0;
      Vector first;
      Matrix second;
      if (diagonal) {
        w = acc(0, k);
        first = acc.col(k).segment(1, d);
        second = acc.col(k).segment(d + 1, d).asDiagonal();
      } else {
        const auto blk = acc.middleCols(k * width, width);
        w = blk(0, 0);
        first = blk.col(0).tail(d);
        second = blk.bottomRightCorner(d, d).selfadjointView<Eigen::Lower>();
      }
      if (w < 1e-8 * static_cast<double>(m)) {
        continue;  // an empty component keeps its parameters (and a tiny weight)
      }
      const Vector mu = first / w;
      g.means.row(k) = mu.transpose();
      g.covariances[static_cast<std::size_t>(k)] =
          covariance_from(second, mu, w, covariance, o.variance_floor);
      g.weights(k) = w;
    }
    g.weights = g.weights.cwiseMax(1e-12 * static_cast<double>(m));
    g.weights /= g.weights.sum();
  }
  out.bic = -2.0 * out.log_likelihood * static_cast<double>(m) +
            static_cast<double>(parameters(C, d, covariance)) * std::log(static_cast<double>(m));
  return out;
}

}  // namespace

const char* to_string(MixtureCovariance covariance) noexcept {
  return detail::name_of(kCovarianceNames, covariance);
}

MixtureCovariance parse_mixture_covariance(const std::string& name) {
  return detail::parse_name(kCovarianceNames, name, "mixture covariance");
}

void validate(const GaussianMixture& g) {
  const Index C = g.components(), d = g.dim();
  if (C < 1 || g.means.rows() != C || static_cast<Index>(g.covariances.size()) != C || d < 1) {
    detail::fail("GaussianMixture: " + std::to_string(C) + " weights, " +
                 std::to_string(g.means.rows()) + " means and " +
                 std::to_string(g.covariances.size()) +
                 " covariances; they must agree and be >= 1");
  }
  if (!g.weights.allFinite() || g.weights.minCoeff() <= 0 ||
      std::abs(g.weights.sum() - 1.0) > 1e-9) {
    detail::fail("GaussianMixture::weights must be positive and sum to 1");
  }
  if (!g.means.allFinite()) {
    detail::fail("GaussianMixture::means has a value that is not finite");
  }
  for (Index c = 0; c < C; ++c) {
    const Matrix& S = g.covariances[static_cast<std::size_t>(c)];
    if (S.rows() != d || S.cols() != d || !S.allFinite() ||
        (S - S.transpose()).cwiseAbs().maxCoeff() >
            1e-10 * std::max(1.0, S.cwiseAbs().maxCoeff())) {
      detail::fail("GaussianMixture::covariances[" + std::to_string(c) + "] must be a symmetric " +
                   std::to_string(d) + "x" + std::to_string(d) + " matrix of finite values");
    }
  }
  factor(g);  // throws for a covariance that is not positive definite
}

namespace {
// log π_c N_c(x_i) of a mixture that is first validated, for rows of its dimension.
Matrix checked_joint(const GaussianMixture& g, const Matrix& X, const char* where) {
  validate(g);
  detail::require(X.cols() == g.dim(), where, "X.cols()", X.cols(), "the mixture's dimension");
  return log_joint(g, factor(g), X);
}
}  // namespace

Vector GaussianMixture::log_density(const Matrix& X) const {
  Matrix joint = checked_joint(*this, X, "GaussianMixture::log_density");
  return normalise_rows(joint);
}

Matrix GaussianMixture::responsibilities(const Matrix& X) const {
  Matrix joint = checked_joint(*this, X, "GaussianMixture::responsibilities");
  normalise_rows(joint);
  return joint;
}

void validate(const MixtureOptions& o) {
  const char* where = "MixtureOptions";
  detail::require(o.components >= 0, where, "components", o.components, ">= 1 (or 0: chosen)");
  detail::require(o.max_components >= 1, where, "max_components", o.max_components, ">= 1");
  detail::require(o.sample_rows >= 2, where, "sample_rows", o.sample_rows, ">= 2");
  detail::require(o.max_iterations >= 1, where, "max_iterations", o.max_iterations, ">= 1");
  detail::require_positive(o.tolerance, where, "tolerance");
  detail::require_positive(o.variance_floor, where, "variance_floor");
}

MixtureFit fit_gaussian_mixture(const Matrix& X,
                                const ExecutionContext& context,
                                const MixtureOptions& o) {
  validate(o);
  Matrix S = detail::strided_sample(X, context, o.sample_rows);
  const Index m = S.rows();
  if (m < 2) {
    throw DataError("Gaussian mixture: " + std::to_string(m) + " rows; at least 2 are needed");
  }
  if (!S.allFinite()) {
    throw DataError("Gaussian mixture: an input value is not finite");
  }
  // EM on centred rows: its second moments are uncentred sums, which would cancel badly for
  // values far from 0 against their spread.
  const Eigen::RowVectorXd centre = S.colwise().mean();
  S.rowwise() -= centre;
  // The sample is whole on every part: EM runs locally, in small blocks for the threads.
  const LocalReducer blocks(512);
  const ExecutionContext local(blocks, context.num_threads());
  std::vector<Index> counts;
  if (o.components > 0) {
    counts.push_back(o.components);
  } else {
    for (Index C = 1; C <= o.max_components; ++C) {
      counts.push_back(C);
    }
  }
  std::vector<MixtureCovariance> forms;
  if (o.covariance == MixtureCovariance::Auto) {
    forms = {MixtureCovariance::Diagonal, MixtureCovariance::Full};
  } else {
    forms = {o.covariance};
  }
  MixtureFit fit;
  fit.sample_rows = m;
  double best = std::numeric_limits<double>::infinity();
  int worse = 0;  // counts in a row that did no better than the best so far
  // Per form, its best BIC and the counts in a row that did no better than it: a form is no
  // longer fitted after two (full covariances on many inputs, whose BIC rises with every
  // component, while the diagonal form still improves).
  std::vector<double> form_best(forms.size(), std::numeric_limits<double>::infinity());
  std::vector<int> form_worse(forms.size(), 0);
  for (const Index C : counts) {
    if (C > m || worse >= 2) {
      break;
    }
    bool improved = false;
    const Clusters clusters = kmeans(S, C, o);
    for (std::size_t f = 0; f < forms.size(); ++f) {
      if (form_worse[f] >= 2) {
        continue;
      }
      GaussianMixture g = mixture_from(S, clusters, forms[f], o);
      const MixtureCandidate cand = run_em(S, forms[f], o, local, g);
      fit.candidates.push_back(cand);
      form_worse[f] = cand.bic < form_best[f] ? 0 : form_worse[f] + 1;
      form_best[f] = std::min(form_best[f], cand.bic);
      if (cand.bic < best) {
        best = cand.bic;
        fit.mixture = std::move(g);
        fit.chosen = cand;
        improved = true;
      }
    }
    worse = improved ? 0 : worse + 1;
  }
  if (fit.mixture.components() == 0) {
    throw DataError("Gaussian mixture: more components than the " + std::to_string(m) + " rows");
  }
  fit.mixture.means.rowwise() += centre;
  return fit;
}

MixtureScore::MixtureScore(const Matrix& X,
                           const GaussianMixture& mixture,
                           const ExecutionContext& context)
    : m_dim(mixture.dim()), m_context(context) {
  validate(mixture);
  detail::require(
      X.cols() == m_dim, "MixtureScore", "X.cols()", X.cols(), "the mixture's dimension");
  const Factors f = factor(mixture);
  const Index n = X.rows(), C = mixture.components();
  m_L = f.L;
  for (Index c = 0; c < C; ++c) {
    const Matrix& L = m_L[static_cast<std::size_t>(c)];
    m_U.push_back(context.map_rows(n, m_dim, [&](Index b, Index cnt, Eigen::Ref<Matrix> rows) {
      rows.noalias() = (X.middleRows(b, cnt).rowwise() - mixture.means.row(c)) * L;
    }));
  }
  m_resp = context.map_rows(n, C, [&](Index b, Index cnt, Eigen::Ref<Matrix> rows) {
    Matrix joint(cnt, C);
    for (Index c = 0; c < C; ++c) {
      joint.col(c) =
          (f.constant(c) -
           0.5 *
               m_U[static_cast<std::size_t>(c)].middleRows(b, cnt).rowwise().squaredNorm().array())
              .matrix();
    }
    normalise_rows(joint);
    rows = joint;
  });
}

Vector MixtureScore::moment1(const Vector& r) const {
  const Index n = m_resp.rows(), C = components();
  detail::require(r.size() == n, "MixtureScore::moment1", "r.size()", r.size(), "the rows");
  const Matrix per = m_context.mean(n, m_dim, C, [&](Index b, Index cnt) {
    Matrix out(m_dim, C);
    for (Index c = 0; c < C; ++c) {
      const Vector w = r.segment(b, cnt).cwiseProduct(m_resp.col(c).segment(b, cnt));
      out.col(c).noalias() = m_U[static_cast<std::size_t>(c)].middleRows(b, cnt).transpose() * w;
    }
    return out;
  });
  Vector m1 = Vector::Zero(m_dim);
  for (Index c = 0; c < C; ++c) {
    m1.noalias() += m_L[static_cast<std::size_t>(c)] * per.col(c);
  }
  return m1;
}

Matrix MixtureScore::moment2(const Vector& r) const {
  const Index n = m_resp.rows();
  detail::require(r.size() == n, "MixtureScore::moment2", "r.size()", r.size(), "the rows");
  Matrix M = Matrix::Zero(m_dim, m_dim);
  for (Index c = 0; c < components(); ++c) {
    const std::size_t at = static_cast<std::size_t>(c);
    const Vector w = r.cwiseProduct(m_resp.col(c));
    M.noalias() += m_L[at] * second_moment(m_U[at], w, m_context) * m_L[at].transpose();
  }
  return M;
}

MixtureMomentTensor3::MixtureMomentTensor3(const MixtureScore& score, const Vector& r)
    : m_score(score) {
  detail::require(r.size() == score.m_resp.rows(),
                  "MixtureMomentTensor3",
                  "r.size()",
                  r.size(),
                  "the score's rows");
  const Index C = score.components();
  m_weights.reserve(static_cast<std::size_t>(C));  // the parts hold references into it
  for (Index c = 0; c < C; ++c) {
    m_weights.push_back(r.cwiseProduct(score.m_resp.col(c)));
  }
  for (Index c = 0; c < C; ++c) {
    const std::size_t at = static_cast<std::size_t>(c);
    m_parts.push_back(
        std::make_unique<MomentTensor3>(score.m_U[at], m_weights[at], score.m_context));
  }
}

Matrix MixtureMomentTensor3::contract_pairs(const Matrix& U, const Matrix& V) const {
  if (U.rows() != dim() || V.rows() != dim() || V.cols() != U.cols()) {
    detail::fail("MixtureMomentTensor3::contract_pairs: U and V must both be " +
                 std::to_string(dim()) + "xP");
  }
  Matrix out = Matrix::Zero(dim(), U.cols());
  for (std::size_t c = 0; c < m_parts.size(); ++c) {
    const Matrix& L = m_score.m_L[c];
    out.noalias() += L * m_parts[c]->contract_pairs(L.transpose() * U, L.transpose() * V);
  }
  return out;
}

double MixtureMomentTensor3::contract(const Vector& u) const {
  detail::require(u.size() == dim(), "MixtureMomentTensor3::contract", "u.size()", u.size(), "d");
  double s = 0;
  for (std::size_t c = 0; c < m_parts.size(); ++c) {
    s += m_parts[c]->contract(m_score.m_L[c].transpose() * u);
  }
  return s;
}

Matrix MixtureMomentTensor3::contract_block(const Matrix& Q) const {
  detail::require(
      Q.rows() == dim(), "MixtureMomentTensor3::contract_block", "Q.rows()", Q.rows(), "d");
  Matrix out = Matrix::Zero(dim(), Q.cols() * Q.cols());
  for (std::size_t c = 0; c < m_parts.size(); ++c) {
    const Matrix& L = m_score.m_L[c];
    out.noalias() += L * m_parts[c]->contract_block(L.transpose() * Q);
  }
  return out;
}

DenseSymmetricTensor3 MixtureMomentTensor3::project(const Matrix& Q) const {
  detail::require(Q.rows() == dim(), "MixtureMomentTensor3::project", "Q.rows()", Q.rows(), "d");
  const Index m = Q.cols();
  std::vector<double> sum(static_cast<std::size_t>(m * m * m), 0.0);
  for (std::size_t c = 0; c < m_parts.size(); ++c) {
    const DenseSymmetricTensor3 part = m_parts[c]->project(m_score.m_L[c].transpose() * Q);
    for (std::size_t i = 0; i < sum.size(); ++i) {
      sum[i] += part.data()[i];
    }
  }
  return DenseSymmetricTensor3::symmetrize(m, sum);
}

}  // namespace nnlift
