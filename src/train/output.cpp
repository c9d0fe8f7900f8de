// Stage "output layer" (ALGORITHM.md §4.5): ridge regression, or logistic / softmax regression
// for classes, of the targets on the design F = [H, x̃, 1] (hidden activations, the standardised
// inputs when the network has a linear term, an intercept). The ridge is chosen by generalised
// cross-validation (regression) or 3-fold cross-validation (classes) unless given.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>

#include "detail/activation_traits.hpp"
#include "detail/glm.hpp"
#include "detail/lbfgs.hpp"
#include "detail/parallel.hpp"
#include "detail/sample.hpp"
#include "detail/scratch.hpp"
#include "train/stages.hpp"

namespace nnlift::detail {
namespace {

// The relative ridges tried when the ridge is chosen: λ · mean(F_j²) is added to column j, and
// the hidden units' columns get it times a factor. The factor kUnitsLeftOut is the linear model
// alone (the units' columns are zeros), so that a model with a linear term is chosen over it
// only where the hidden units help.
constexpr double kUnitsLeftOut = std::numeric_limits<double>::infinity();
// The regression's ridges: four a decade (10^(j/4)) from 1e-4 to 10, where the leave-one-out and
// GCV minima of real data lie, and three near-zero ones. Each costs O(q) a row in the exact
// leave-one-out; a grid of 3 a decade (1e-3, 1e-2, 3e-2, 0.1, ...) left the chosen ridge up to
// a factor 1.8 from the criterion's minimum, and on a few dozen rows the test error moves with it
// (tools/bench_smalldata, session 25 in docs/benchmarks.md). Written out, not computed by
// std::pow, whose last bit may differ between libm builds: the ridges are part of the model.
const double kRidgeGrid[] = {1e-8,
                             1e-6,
                             1e-5,
                             1e-4,
                             1.7782794100389227e-4,
                             3.1622776601683794e-4,
                             5.623413251903491e-4,
                             1e-3,
                             1.7782794100389228e-3,
                             3.1622776601683794e-3,
                             5.623413251903491e-3,
                             1e-2,
                             1.778279410038923e-2,
                             3.162277660168379e-2,
                             5.623413251903491e-2,
                             0.1,
                             0.1778279410038923,
                             0.31622776601683794,
                             0.5623413251903491,
                             1.0,
                             1.7782794100389228,
                             3.1622776601683795,
                             5.623413251903491,
                             10.0};
const double kHiddenFactors[] = {1.0, 10.0, 100.0, kUnitsLeftOut};
const double kClassRidgeGrid[] = {1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0};
const double kClassHiddenFactors[] = {1.0, kUnitsLeftOut};

// The hidden factors a fit chooses among, in the order of `grid`: all of them with a linear term
// (r inputs), else the units as they are (no linear model to fall back on); only kUnitsLeftOut
// where the units are not to be used (OutputOptions::hidden_units). With a given ridge, the
// first is the fit's factor.
template <std::size_t N>
std::vector<double> hidden_factors(const double (&grid)[N], Index r, bool units) {
  if (!units) {
    return {kUnitsLeftOut};
  }
  return r > 0 ? std::vector<double>(std::begin(grid), std::end(grid)) : std::vector<double>{1.0};
}

// Rows of the design [H, z, 1] with z = (x − μ)/σ the column-standardised inputs, only when the
// linear term is on. (Standardised, not whitened: a ridge on whitened inputs would not shrink
// the directions of collinear columns, which is what it is for.)
struct Design {
  const Matrix& H;
  const Matrix* X;  // original inputs; nullptr: no linear term
  const Standardizer& st;
  // false: the hidden units' columns are zeros (the linear model alone). Their weights then have
  // no gradient and stay at 0, where a huge penalty instead would make the problem so
  // ill-conditioned that L-BFGS stops far from the optimum.
  bool hidden = true;
  // Non-null: these rows' whole design, built once (rows_of() then views its rows).
  const Matrix* built = nullptr;
  // st was fitted on exactly these rows: st.covariance is their inputs' covariance.
  bool covariance_known = false;
  // The design for a hidden factor: without the units' columns for kUnitsLeftOut.
  Design with_factor(double factor) const {
    Design out = *this;
    out.hidden = std::isfinite(factor);
    return out;
  }
  Index k() const { return H.cols(); }
  Index r() const { return X != nullptr ? X->cols() : 0; }
  Index p() const { return k() + r() + 1; }
  Index rows() const { return H.rows(); }
  // Rows [b, b + c): a view of `built`, else built into a matrix of `scratch` (the fits' passes
  // keep one per thread: they run hundreds of times).
  Eigen::Ref<const Matrix> rows_of(Index b, Index c, BlockScratch<>& scratch) const {
    if (built != nullptr) {
      return built->middleRows(b, c);
    }
    Matrix& F = scratch.get(c, p());
    block_into(b, c, F);
    return F;
  }
  // The linear term's columns of rows [b, b + c): the standardised inputs, as an expression over
  // X and st (evaluated where it is assigned, with no block matrix of its own).
  auto linear_block(Index b, Index c) const {
    return (X->middleRows(b, c).rowwise() - st.mean.transpose()) * st.inv_sd.asDiagonal();
  }
  // Rows [b, b + c) of the design into F (resized).
  void block_into(Index b, Index c, Matrix& F) const {
    F.resize(c, p());
    if (hidden) {
      F.leftCols(k()) = H.middleRows(b, c);
    } else {
      F.leftCols(k()).setZero();
    }
    if (X != nullptr) {
      F.middleCols(k(), r()) = linear_block(b, c);
    }
    F.col(p() - 1).setOnes();
  }
  Matrix block(Index b, Index c) const {
    Matrix F;
    block_into(b, c, F);
    return F;
  }
};

// Column j's penalty λ · mean(F_j²) for the weights, times `hidden_factor` for the k hidden
// units (the intercept is free; units left out have zero columns and need no factor); the floor
// keeps a column of zeros (a dead unit) well posed.
Vector column_penalties(const Vector& energy, double ridge, Index k, double hidden_factor = 1.0) {
  Vector pen = (ridge * energy.array().max(1e-12)).matrix();
  pen.head(k) *= std::isfinite(hidden_factor) ? hidden_factor : 1.0;
  pen(pen.size() - 1) = 0;
  return pen;
}

// mean(F_j²) per column over all rows of all parts.
Vector column_energy(const Design& D, const ExecutionContext& context) {
  return context.mean(D.rows(), D.p(), 1, [&](Index b, Index c) {
    return Matrix(D.block(b, c).colwise().squaredNorm().transpose());
  });
}

// Each design column's penalty base: mean(F_j²), and for a one-hot column of the linear term
// that times 1/σ_j², so that its weight is penalised as a 0/1 column's would be (λ on the
// category's effect, as scikit-learn's ridge on one-hot columns does) and not as a unit-variance
// column's: a rare category's effect, seen in few rows, is then shrunk more, not less.
Vector penalty_base(Vector energy, Index k, Index r, const Standardizer& st) {
  if (r > 0) {
    for (const Index j : st.one_hot_columns) {
      energy(k + j) *= st.inv_sd(j) * st.inv_sd(j);
    }
  }
  return energy;
}

// ---- regression: ridge with the penalty chosen by leave-one-out or GCV ------------------------

struct RidgeChoice {
  Vector beta;
  double ridge = 0;
  double hidden_factor = 1;
  double train_mse = std::numeric_limits<double>::quiet_NaN();  ///< regression (normal_mse)
};

// The normal equations [FᵀF | Fᵀy | yᵀy] / n of a design with k unit columns, and the ridge
// solution for a penalty (λ, hidden factor).
struct NormalEquations {
  NormalEquations(const Matrix& normal, Index k_, const Standardizer& st, bool units_ = true)
      : units(units_),
        p(normal.rows() - 1),
        k(k_),
        r(p - k_ - 1),
        A(normal.topLeftCorner(p, p)),
        g(normal.col(p).head(p)),
        yy(normal(p, p)),
        base(penalty_base(normal.diagonal().head(p), k_, r, st)),
        A_linear(A),
        g_linear(g) {
    // The normal equations of the design with the units left out: their rows and columns zero.
    A_linear.topRows(k).setZero();
    A_linear.leftCols(k).setZero();
    g_linear.head(k).setZero();
  }
  std::pair<Vector, Eigen::LDLT<Matrix>> solve(double lambda, double factor) const {
    const bool with_units = std::isfinite(factor);
    Matrix M = with_units ? A : A_linear;
    M.diagonal() += column_penalties(base, lambda, k, factor);
    M.diagonal().array() += 1e-13 * A.diagonal().maxCoeff();
    const Eigen::LDLT<Matrix> ldlt(M);
    return std::make_pair(ldlt.solve(with_units ? g : g_linear).eval(), ldlt);
  }
  // The first-layer parameters charged per unit (unit_charge_factor): r + 1 with a linear term
  // (its direction and bias), none without (no linear model to fall back on).
  double unit_params() const { return r > 0 ? static_cast<double>(r) + 1.0 : 0.0; }
  // The hidden factors tried (hidden_factors of kHiddenFactors).
  std::vector<double> factors() const { return hidden_factors(kHiddenFactors, r, units); }
  bool units;     // OutputOptions::hidden_units
  Index p, k, r;  // columns (units, linear term, intercept), units, inputs
  Matrix A;
  Vector g;
  double yy;
  Vector base;  // penalty_base of the columns
  Matrix A_linear;
  Vector g_linear;
};

// The hidden units' directions and biases were fitted to these labels too (by the moments),
// which neither a ridge's degrees of freedom nor its leave-one-out residuals see: each unit is
// charged its share s_j = [(A + λP)⁻¹A]_jj of a degree of freedom times its r + 1 first-layer
// parameters, so that on data where the units only fit noise the linear model alone wins. The
// score is multiplied by 1/(1 − charge/n)², as GCV's is by its degrees of freedom.
double unit_charge_factor(double charge, Index rows) {
  const double denominator = 1.0 - charge / static_cast<double>(rows);
  return denominator > 1e-9 ? 1.0 / (denominator * denominator)
                            : std::numeric_limits<double>::infinity();
}

// The eigenpairs of W^{-1/2} C W^{-1/2} that leave_one_out needs, from the rows when they are
// fewer than the q columns: with Z the rows centred and scaled by W^{-1/2} (n × q), C's scaled form
// is ZᵀZ/n, whose nonzero eigenvalues are those of ZZᵀ/n = U Λ Uᵀ with eigenvectors
// Zᵀu_m / √(nλ_m). The others are zero, and every row's t_i is zero along them (its centred row
// lies in the span of the rows), so they add nothing to a fit, a leverage or a unit's charge. Kept:
// λ_m above 1e-12 of the largest (below it, Zᵀu_m is rounding). `rows`: every row of the design
// (gathered in global row order), `s` = W^{-1/2}; writes μ (ascending) and V (q × kept).
void wide_spectrum(const Matrix& rows,
                   const std::vector<Index>& cols,
                   const Vector& m,
                   const Vector& s,
                   Vector& mu,
                   Matrix& V) {
  const Index q = static_cast<Index>(cols.size());
  const double n = static_cast<double>(rows.rows());
  const Matrix Z = (rows.middleCols(cols.front(), q).rowwise() - m.transpose()) * s.asDiagonal();
  Matrix G(Z.rows(), Z.rows());
  G.setZero();
  G.selfadjointView<Eigen::Lower>().rankUpdate(Z, 1.0 / n);
  const Eigen::SelfAdjointEigenSolver<Matrix> eig(G);
  const Vector& lambda = eig.eigenvalues();
  const double top = lambda.size() > 0 ? lambda(lambda.size() - 1) : 0.0;
  Index first = 0;
  while (first < lambda.size() && !(lambda(first) > 1e-12 * top && lambda(first) > 0.0)) {
    ++first;
  }
  const Index kept = lambda.size() - first;
  mu = lambda.tail(kept);
  V.noalias() = Z.transpose() * eig.eigenvectors().rightCols(kept);
  for (Index j = 0; j < kept; ++j) {
    V.col(j) /= std::sqrt(n * mu(j));
  }
}

// The exact leave-one-out mean squared error (PRESS / n) of every ridge on kRidgeGrid, with the
// units' charge, for each hidden factor in `factors`, from one pass over the rows. The intercept
// is free, so the columns are centred; with the columns' penalties P = λ W,
// W^{-1/2} C W^{-1/2} = V M Vᵀ (C the centred covariance) gives every ridge's fit and leverages
// from t_i = Vᵀ W^{-1/2} (f_i − m): h_i = (1 + Σ_m t_im² / (μ_m + λ)) / n.
// With fewer rows than columns (a wide file: spectra, genes) the eigenpairs with μ_m > 0 come from
// the rows' n × n Gram matrix instead (wide_spectrum), O(n²q) for O(q³).
std::vector<std::vector<double>> leave_one_out(const Design& D,
                                               const Vector& y,
                                               const NormalEquations& ne,
                                               const std::vector<double>& factors,
                                               const ExecutionContext& context) {
  const Index p = ne.p, k = ne.k;
  const double ybar = ne.g(p - 1);
  // Per factor: its columns, their means, the whitening T and the spectrum μ.
  struct Basis {
    std::vector<Index> cols;  // the penalised columns in the model: units (if any), linear term
    Vector m, w, mu, gt;
    Matrix T;
    Matrix inv, B;  // 1/(μ_m + λ_g) and gt_m/(μ_m + λ_g): a column per ridge
  };
  constexpr Index kGrid = static_cast<Index>(std::size(kRidgeGrid));
  std::vector<Basis> bases;
  const Index rows = context.global_rows(D.rows());
  Matrix all_rows;  // gathered (collectively: the test below is the same on every part) once
  bool gathered = false;
  for (const double factor : factors) {
    Basis v;
    const bool units = std::isfinite(factor);
    for (Index j = units ? 0 : k; j < p - 1; ++j) {
      v.cols.push_back(j);
    }
    v.m = ne.A.col(p - 1)(v.cols);  // column means (the intercept column is ones)
    v.w = ne.base(v.cols).cwiseMax(1e-12);
    if (units) {
      v.w.head(k) *= factor;
    }
    const Vector s = v.w.cwiseSqrt().cwiseInverse();
    if (rows < static_cast<Index>(v.cols.size())) {
      if (!gathered) {
        Matrix local(D.rows(), D.p());
        D.block_into(0, D.rows(), local);
        all_rows = context.reducer().gather_rows(local);
        gathered = true;
      }
      Matrix V;
      wide_spectrum(all_rows, v.cols, v.m, s, v.mu, V);
      v.T = s.asDiagonal() * V;  // t_i = Tᵀ (f_i − m)
    } else {
      const Matrix C = ne.A(v.cols, v.cols) - v.m * v.m.transpose();
      const Eigen::SelfAdjointEigenSolver<Matrix> eig(s.asDiagonal() * C * s.asDiagonal());
      v.mu = eig.eigenvalues().cwiseMax(0.0);
      v.T = s.asDiagonal() * eig.eigenvectors();  // t_i = Tᵀ (f_i − m)
    }
    v.gt = v.T.transpose() * (ne.g(v.cols) - v.m * ybar);
    v.inv.resize(v.mu.size(), kGrid);
    for (Index g = 0; g < kGrid; ++g) {
      v.inv.col(g) = (v.mu.array() + kRidgeGrid[g]).inverse().matrix();
    }
    v.B = v.inv.array().colwise() * v.gt.array();
    bases.push_back(std::move(v));
  }
  const auto nf = static_cast<Index>(factors.size());
  const double n = static_cast<double>(rows);
  const Matrix press = context.mean(D.rows(), kGrid, nf, [&](Index b, Index c) {
    thread_local BlockScratch<> scratch, centred_scratch, t_scratch, t2_scratch, e_scratch,
        h_scratch;
    Matrix& F = scratch.get(c, D.p());
    D.block_into(b, c, F);
    const Vector yc = (y.segment(b, c).array() - ybar).matrix();
    Matrix out(kGrid, nf);
    for (Index f = 0; f < nf; ++f) {
      const Basis& v = bases[static_cast<std::size_t>(f)];
      const Index q = v.m.size();
      // c×q (the columns are contiguous: the units', if any, then the linear term's)
      Matrix& centred = centred_scratch.get(c, q);
      centred = F.middleCols(v.cols.front(), q).rowwise() - v.m.transpose();
      Matrix& t = t_scratch.get(c, q);
      t.noalias() = centred * v.T;
      // Every ridge at once: residuals E = yc − t (gt ∘ inv_g) and leverages from t² inv_g.
      Matrix& E = e_scratch.get(c, kGrid);
      E.noalias() = -t * v.B;
      E.colwise() += yc;
      Matrix& t2 = t2_scratch.get(c, q);
      t2 = t.cwiseAbs2();
      Matrix& h = h_scratch.get(c, kGrid);
      h.noalias() = t2 * v.inv;
      h = (h.array() + 1.0) / n;
      for (Index g = 0; g < kGrid; ++g) {
        double sum = 0;
        // A row whose leverage is within 1e-6 of 1 is fitted by itself (more columns than rows,
        // a near-zero ridge): its held-out error is not defined, and this ridge is not chosen.
        for (Index i = 0; i < c; ++i) {
          const double keep = 1.0 - h(i, g), e = E(i, g);
          sum += keep > 1e-6 ? (e / keep) * (e / keep) : std::numeric_limits<double>::infinity();
        }
        out(g, f) = sum;
      }
    }
    return out;
  });
  std::vector<std::vector<double>> scores(factors.size(),
                                          std::vector<double>(static_cast<std::size_t>(kGrid)));
  for (Index f = 0; f < nf; ++f) {
    const Basis& v = bases[static_cast<std::size_t>(f)];
    for (Index g = 0; g < kGrid; ++g) {
      double charge = 0;
      if (std::isfinite(factors[static_cast<std::size_t>(f)])) {
        // s_j = Σ_m T_jm² w_j μ_m/(μ_m + λ) for the unit columns (the diagonal of (C + λW)⁻¹C).
        const Vector shrink = v.mu.array() / (v.mu.array() + kRidgeGrid[g]);
        for (Index j = 0; j < k; ++j) {
          charge += std::max(v.w(j) * v.T.row(j).cwiseAbs2().dot(shrink), 0.0);
        }
      }
      scores[static_cast<std::size_t>(f)][static_cast<std::size_t>(g)] =
          press(g, f) * unit_charge_factor(ne.unit_params() * charge, rows);
    }
  }
  return scores;
}

// At most this many multiply-adds (rows × p²) for the leave-one-out choice; beyond, GCV (whose
// choice the leave-one-out one approaches as the rows grow, every leverage near p/n).
constexpr double kLeaveOneOutCost = 1e9;

RidgeChoice ridge_from_normal(const NormalEquations& ne,
                              Index rows,
                              const std::optional<double>& ridge,
                              const std::vector<std::vector<double>>& exact);
OutputFit set_output_weights(
    const RidgeChoice& fit, Index k, Index r, const Standardizer& st, TwoLayerNetwork& net);

// normal_equations with a linear term whose standardiser was fitted on these rows: the
// standardised inputs' block of FᵀF/n is D_σ Σ̂ D_σ (D_σ = diag(1/σ̂)), from its covariance; only
// the units' columns, the intercept and y are summed, with their products with the inputs,
// (k + 2)(r + k + 2) numbers a row instead of (p + 1)²/2 (tools/bench_train, d = 100, k = 10,
// n = 10⁶: the output layer stage 0.26 s → 0.12–0.13 s).
Matrix normal_equations_from_covariance(const Design& D,
                                        const Vector& y,
                                        const ExecutionContext& context) {
  const Index k = D.k(), r = D.r(), p = D.p();
  // Rows 0..k+1: the Gram matrix of G = [H, 1, y]; rows k+2..: (standardised X)ᵀ G.
  const Matrix sums = context.mean(D.rows(), k + 2 + r, k + 2, [&](Index b, Index c) {
    Matrix G(c, k + 2);
    if (D.hidden) {
      G.leftCols(k) = D.H.middleRows(b, c);
    } else {
      G.leftCols(k).setZero();
    }
    G.col(k).setOnes();
    G.col(k + 1) = y.segment(b, c);
    Matrix out(k + 2 + r, k + 2);
    Matrix gram = Matrix::Zero(k + 2, k + 2);
    gram.selfadjointView<Eigen::Lower>().rankUpdate(G.transpose());
    out.topRows(k + 2) = gram.selfadjointView<Eigen::Lower>();
    out.bottomRows(r).noalias() = Matrix(D.linear_block(b, c)).transpose() * G;
    return out;
  });
  // Design column of each column of G: the units, the intercept (p − 1), y (p).
  const auto column = [&](Index g) { return g < k ? g : (g == k ? p - 1 : p); };
  Matrix normal(p + 1, p + 1);
  normal.block(k, k, r, r) = D.st.inv_sd.asDiagonal() * D.st.covariance * D.st.inv_sd.asDiagonal();
  for (Index a = 0; a < k + 2; ++a) {
    for (Index b = 0; b < k + 2; ++b) {
      normal(column(a), column(b)) = sums(a, b);
    }
    normal.col(column(a)).segment(k, r) = sums.col(a).tail(r);
    normal.row(column(a)).segment(k, r) = sums.col(a).tail(r).transpose();
  }
  return normal;
}

// [FᵀF | Fᵀy | yᵀy] / n of the design and labels, in one pass: the Gram matrix of [F, y], its
// lower triangle by a symmetric rank update (half the multiply-adds of a general product), then
// mirrored; from the covariance where it is known (normal_equations_from_covariance).
Matrix normal_equations(const Design& D, const Vector& y, const ExecutionContext& context) {
  const Index p = D.p();
  if (D.X != nullptr && D.covariance_known && D.st.covariance.rows() == D.r()) {
    return normal_equations_from_covariance(D, y, context);
  }
  return context.mean(D.rows(), p + 1, p + 1, [&](Index b, Index c) {
    Matrix Fy(c, p + 1);
    Fy.leftCols(p) = D.block(b, c);
    Fy.col(p) = y.segment(b, c);
    Matrix out = Matrix::Zero(p + 1, p + 1);
    out.selfadjointView<Eigen::Lower>().rankUpdate(Fy.transpose());
    return Matrix(out.selfadjointView<Eigen::Lower>());
  });
}

// The training rows' mean squared error of the fit β, from the normal equations [A | g | yy]
// (no pass over the rows); NaN where it is within the cancellation's rounding of yy.
double normal_mse(const Matrix& normal, const Vector& beta) {
  const Index p = normal.rows() - 1;
  const double yy = normal(p, p);
  const double mse =
      yy - 2.0 * beta.dot(normal.col(p).head(p)) + beta.dot(normal.topLeftCorner(p, p) * beta);
  return beta.size() == p && mse > 1e-10 * yy ? mse : std::numeric_limits<double>::quiet_NaN();
}

RidgeChoice fit_ridge(const Design& D,
                      const Vector& y,
                      const std::optional<double>& ridge,
                      bool units,
                      const ExecutionContext& context) {
  const Index p = D.p();
  const Index rows = context.global_rows(D.rows());
  const Matrix normal = normal_equations(D, y, context);
  const NormalEquations ne(normal, D.k(), D.st, units);
  const bool exact = static_cast<double>(rows) * static_cast<double>(p * p) <= kLeaveOneOutCost;
  RidgeChoice fit =
      ridge_from_normal(ne,
                        rows,
                        ridge,
                        exact && !ridge ? leave_one_out(D, y, ne, ne.factors(), context)
                                        : std::vector<std::vector<double>>());
  fit.train_mse = normal_mse(normal, fit.beta);
  return fit;
}

// The ridge given, or chosen on the grid: by `exact`, the leave-one-out scores of each of
// ne.factors() (leave_one_out), or by GCV where it is empty.
RidgeChoice ridge_from_normal(const NormalEquations& ne,
                              Index rows,
                              const std::optional<double>& ridge,
                              const std::vector<std::vector<double>>& exact) {
  const Index k = ne.k;
  RidgeChoice best;
  if (ridge) {
    best.ridge = *ridge;
    best.hidden_factor = ne.factors().front();
    best.beta = ne.solve(*ridge, best.hidden_factor).first;
    return best;
  }
  // GCV(λ) = (RSS/n) / (1 − df/n)², df = tr((A + λP)⁻¹ A); RSS/n = yᵀy/n − 2βᵀg + βᵀAβ, with
  // the units' charge (unit_charge_factor) in df.
  double best_score = std::numeric_limits<double>::infinity();
  const std::vector<double> factors = ne.factors();
  for (std::size_t f = 0; f < factors.size(); ++f) {
    const double factor = factors[f];
    for (std::size_t g = 0; g < std::size(kRidgeGrid); ++g) {
      const double lambda = kRidgeGrid[g];
      double score = 0;
      if (!exact.empty()) {
        score = exact[f][g];
      } else {
        const auto [beta, ldlt] = ne.solve(lambda, factor);
        // (β's units' entries are 0 without them, so A and g give the same RSS as A_linear.)
        const double rss = std::max(ne.yy - 2 * beta.dot(ne.g) + beta.dot(ne.A * beta), 0.0);
        const Matrix share = ldlt.solve(std::isfinite(factor) ? ne.A : ne.A_linear);
        const double df =
            share.trace() + ne.unit_params() * share.diagonal().head(k).cwiseMax(0.0).sum();
        const double denominator = 1.0 - df / static_cast<double>(rows);
        score = denominator > 1e-9 ? rss / (denominator * denominator)
                                   : std::numeric_limits<double>::infinity();
      }
      if (!std::isfinite(best_score) || score < best_score) {
        best_score = score;
        best.ridge = lambda;
        best.hidden_factor = factor;
      }
    }
  }
  best.beta = ne.solve(best.ridge, best.hidden_factor).first;
  return best;
}

// ---- classification: logistic (Newton) and softmax (L-BFGS) -----------------------------------

// The L-BFGS settings of the classes' convex fits. A line search that gives up on such a problem
// stops at its numerical optimum: the point it holds is the answer. Stop when the loss has moved
// less than 1e-10 (relative) over 5 iterations: far below what the data's noise makes of it
// (`loose`: the cross-validation fits, which only rank the penalties, stop at 1e-7).
LBFGSpp::LBFGSParam<double> class_fit_param(bool loose) {
  LBFGSpp::LBFGSParam<double> param = tight_lbfgs(loose ? 100 : 500);
  param.delta = loose ? 1e-7 : 1e-10;
  if (loose) {
    param.epsilon = param.epsilon_rel = 1e-5;
  }
  return param;
}

// Above this many design columns the logistic fit takes L-BFGS steps (n p per pass) instead of
// Newton's (n p² for the Hessian and p³ for its factor): kernlab's ticdata (9,822 rows, 569
// columns) spent 52 s of a 54 s training in Newton fits of the output layer.
constexpr Index kNewtonLogisticColumns = 256;

// The logistic fit by L-BFGS (the convex objective of fit_logistic), to the same tolerances as
// the softmax fit's (`loose`: the cross-validation's).
Vector fit_logistic_lbfgs(const Design& D,
                          const Vector& y,
                          const Vector& penalty,
                          const Vector& start,
                          const ExecutionContext& context,
                          bool loose) {
  const Index n = D.rows(), p = D.p();
  auto objective = [&](const Vector& beta, Vector& grad) {
    const Matrix sum = context.sum(n, p + 2, 1, [&](Index b, Index cnt) {
      thread_local BlockScratch<> scratch;
      const Eigen::Ref<const Matrix> F = D.rows_of(b, cnt, scratch);
      const Matrix f = F * beta;
      Matrix E;
      const Vector row_loss = logistic_losses(f, y.segment(b, cnt), E);
      Matrix out(p + 2, 1);
      out.col(0).head(p).noalias() = F.transpose() * E.col(0);
      out(p, 0) = row_loss.sum();
      out(p + 1, 0) = static_cast<double>(cnt);
      return out;
    });
    const double count = std::max(sum(p + 1, 0), 1.0);
    grad = sum.col(0).head(p) / count + penalty.cwiseProduct(beta);
    return sum(p, 0) / count + 0.5 * beta.dot(penalty.cwiseProduct(beta));
  };
  return run_lbfgs(objective, start, class_fit_param(loose)).x;
}

// L2-penalised logistic regression of 0/1 labels on the design by Newton's method (L-BFGS above
// kNewtonLogisticColumns columns). Returns [weights; intercept].
Vector fit_logistic(const Design& D,
                    const Vector& y,
                    const Vector& penalty,
                    const Vector& start,
                    const ExecutionContext& context,
                    bool loose) {
  const Index n = D.rows(), p = D.p();
  if (p > kNewtonLogisticColumns) {
    return fit_logistic_lbfgs(D, y, penalty, start, context, loose);
  }
  Vector beta = start;
  for (int it = 0; it < 100; ++it) {
    const Matrix gh = context.sum(n, p, p + 2, [&](Index b, Index c) {
      thread_local BlockScratch<> scratch;
      const Eigen::Ref<const Matrix> F = D.rows_of(b, c, scratch);
      Vector weight(c), residual(c);
      const Vector f = F * beta;
      for (Index i = 0; i < c; ++i) {
        const double q = activate(Activation::Sigmoid, f(i));
        weight(i) = q * (1.0 - q);
        residual(i) = q - y(b + i);
      }
      Matrix out = Matrix::Zero(p, p + 2);
      // The Hessian's lower triangle (what its factors read): half the general product's work.
      thread_local BlockScratch<> g_scratch;
      Matrix& G = g_scratch.get(c, p);
      G = weight.cwiseSqrt().asDiagonal() * F;
      out.leftCols(p).selfadjointView<Eigen::Lower>().rankUpdate(G.transpose());
      out.col(p).noalias() = F.transpose() * residual;
      out(0, p + 1) = static_cast<double>(c);
      return out;
    });
    const double count = std::max(gh(0, p + 1), 1.0);
    Matrix hess = gh.leftCols(p) / count;
    Vector grad = gh.col(p) / count;
    hess.diagonal() += penalty;
    grad += penalty.cwiseProduct(beta);
    hess.diagonal().array() += 1e-12;
    // Positive definite (a ridge on every weight, 1e-12 on the intercept): a Cholesky factor,
    // blocked in Eigen where LDLT is not (with 755 columns on 252 rows, LDLT took 57% of a
    // training); LDLT where rounding makes a pivot non-positive.
    const Eigen::LLT<Matrix> llt(hess);
    const Vector step =
        llt.info() == Eigen::Success ? Vector(llt.solve(grad)) : Vector(hess.ldlt().solve(grad));
    if (!step.allFinite()) {
      break;
    }
    beta -= step;
    // Converged: a step that no longer moves the weights; in cross-validation, already a step
    // whose Newton decrement (the loss it gains, to second order) is below 1e-8: the step taken
    // leaves the loss within rounding of its minimum, and the penalties' ranking cannot change
    // (a chain of warm-started fits took 6.3 steps a fit on dhfr's 243 rows, and 4.5 so).
    if (step.norm() < 1e-10 * (1.0 + beta.norm()) || (loose && grad.dot(step) < 1e-8)) {
      break;
    }
  }
  return beta;
}

// Multinomial logistic regression of one-hot targets Y (local rows × c) by L-BFGS (convex).
// Returns vec([W | b]) (c × p, column-major).
Vector fit_softmax(const Design& D,
                   const Matrix& Y,
                   const Vector& penalty,
                   const Vector& start,
                   const ExecutionContext& context,
                   bool loose) {
  const Index n = D.rows(), p = D.p(), c = Y.cols();
  auto objective = [&](const Vector& theta, Vector& grad) {
    const Eigen::Map<const Matrix> W(theta.data(), c, p);
    const Matrix sum = context.sum(n, c * p + 2, 1, [&](Index b, Index cnt) {
      thread_local BlockScratch<> scratch;
      const Eigen::Ref<const Matrix> F = D.rows_of(b, cnt, scratch);
      thread_local BlockScratch<> logit_scratch, p_scratch;
      Matrix& logits = logit_scratch.get(cnt, c);
      Matrix& P = p_scratch.get(cnt, c);
      logits.noalias() = F * W.transpose();  // cnt×c
      const Vector row_loss = softmax_losses(logits, Y.middleRows(b, cnt), P);
      Matrix out(c * p + 2, 1);
      Eigen::Map<Matrix>(out.data(), c, p) = P.transpose() * F;
      out(c * p, 0) = row_loss.sum();
      out(c * p + 1, 0) = static_cast<double>(cnt);
      return out;
    });
    const double count = std::max(sum(c * p + 1, 0), 1.0);
    grad = sum.col(0).head(c * p) / count;
    Eigen::Map<Matrix> G(grad.data(), c, p);
    G += W * penalty.asDiagonal();
    return sum(c * p, 0) / count + 0.5 * (W * penalty.cwiseSqrt().asDiagonal()).squaredNorm();
  };
  return run_lbfgs(objective, start, class_fit_param(loose)).x;
}

// The mean log-loss and the share of misclassified rows of [weights; intercept] (one output) or
// vec([W | b]).
struct ClassScore {
  double loss = 0;
  double error = 0;
};

ClassScore class_score(const Design& D,
                       const Labels& labels,
                       const Vector& beta,
                       const ExecutionContext& context) {
  const Index n = D.rows(), p = D.p();
  const Matrix total = context.sum(n, 3, 1, [&](Index b, Index cnt) {
    thread_local BlockScratch<> scratch;
    const Eigen::Ref<const Matrix> F = D.rows_of(b, cnt, scratch);
    double loss = 0, errors = 0;
    if (labels.multiclass()) {
      const Index c = labels.onehot.cols();
      const Eigen::Map<const Matrix> W(beta.data(), c, p);
      thread_local BlockScratch<> p_scratch;
      Matrix& P = p_scratch.get(cnt, c);
      P.noalias() = F * W.transpose();
      for (Index i = 0; i < cnt; ++i) {
        Index cls = 0, predicted = 0;
        labels.onehot.row(b + i).maxCoeff(&cls);
        P.row(i).maxCoeff(&predicted);
        const double logit = P(i, cls);
        loss += softmax_inplace(P.row(i)) - logit;
        errors += predicted != cls ? 1.0 : 0.0;
      }
    } else {
      const Vector f = F * beta;
      for (Index i = 0; i < cnt; ++i) {
        loss += logistic_loss(f(i), labels.y(b + i));
        errors += (f(i) > 0) != (labels.y(b + i) > 0.5) ? 1.0 : 0.0;
      }
    }
    return Matrix((Matrix(3, 1) << loss, errors, static_cast<double>(cnt)).finished());
  });
  const double count = std::max(total(2, 0), 1.0);
  return {total(0, 0) / count, total(1, 0) / count};
}

// `loose`: the cross-validation fits, which only rank the penalties, stop earlier.
Vector fit_classes(const Design& D,
                   const Labels& labels,
                   const Vector& penalty,
                   const Vector& start,
                   const ExecutionContext& context,
                   bool loose = false) {
  return labels.multiclass() ? fit_softmax(D, labels.onehot, penalty, start, context, loose)
                             : fit_logistic(D, labels.y, penalty, start, context, loose);
}

// The cross-validation's rows, gathered from every part (at most kClassChoiceRows of them): every
// part holds all of them in global row order and runs the cross-validation on its own copy,
// through local sums only. No collective call is made inside, so its chains of fits run in
// parallel threads, and every part computes the same choice, bit for bit, for any partition of
// the rows and any thread count.
struct GatheredRows {
  GatheredRows(const Design& D, const Labels& all, const ExecutionContext& context)
      : H(context.reducer().gather_rows(D.H)),
        X(D.X != nullptr ? context.reducer().gather_rows(*D.X) : Matrix()),
        st(D.st),
        has_x(D.X != nullptr) {
    labels.y = context.reducer().gather_rows(Matrix(all.y)).col(0);
    labels.classes = all.classes;
    if (all.multiclass()) {
      labels.onehot = context.reducer().gather_rows(all.onehot);
    }
  }
  Index rows() const { return H.rows(); }
  Matrix H, X;
  const Standardizer& st;
  bool has_x;
  Labels labels;
};

// The gathered rows that `keep(row)` picks, their design with all columns built once (each fit
// evaluates it many times), and their labels.
struct FoldRows {
  template <class Keep>
  FoldRows(const GatheredRows& all, double factor, Keep&& keep) {
    std::vector<Index> rows;
    for (Index i = 0; i < all.rows(); ++i) {
      if (keep(i)) {
        rows.push_back(i);
      }
    }
    H = all.H(rows, Eigen::all);
    if (all.has_x) {
      X = all.X(rows, Eigen::all);
    }
    F = Design{H, all.has_x ? &X : nullptr, all.st}.with_factor(factor).block(0, H.rows());
    labels.y = all.labels.y(rows);
    labels.classes = all.labels.classes;
    if (all.labels.multiclass()) {
      labels.onehot = all.labels.onehot(rows, Eigen::all);
    }
  }
  FoldRows(const FoldRows&) = delete;
  FoldRows& operator=(const FoldRows&) = delete;
  // The design of these rows (every block copied from F).
  Design design(const GatheredRows& all) const {
    Design D{H, all.has_x ? &X : nullptr, all.st};
    D.built = &F;
    return D;
  }
  Matrix H, X, F;  // F = [H or zeros, z, 1]
  Labels labels;
};

// The ridge and hidden factor for classes by 3-fold cross-validation on the rows of D, for a
// final fit on `fit_rows` rows: folds by global row index (any partition of the rows gives the
// same folds), each grid warm-started from large to small ridges.
RidgeChoice choose_class_ridge(const Design& D,
                               const Labels& labels,
                               const Vector& energy,
                               Index fit_rows,
                               bool units,
                               const ExecutionContext& context,
                               LinearOnlyScores* linear_only) {
  const Index n = D.rows();
  const Index outputs = labels.multiclass() ? labels.onehot.cols() : 1;
  const Vector zero = Vector::Zero(outputs * D.p());
  RidgeChoice best;
  constexpr int kFolds = 3;
  // As in the regression's GCV: the units' first-layer parameters were fitted to these labels,
  // which the folds do not see; a model that uses them is charged k (r + 1) / n per row
  // (Akaike's correction for a log-likelihood), so that the linear model alone wins where the
  // units only fit noise.
  const double unit_charge =
      D.r() > 0 ? static_cast<double>(D.k() * (D.r() + 1)) / static_cast<double>(fit_rows) : 0.0;
  struct Candidate {
    ClassScore cv;
    double ridge, factor;
  };
  std::vector<Candidate> tried;
  // The hidden factors whose folds are fitted here: the linear model alone may have its scores
  // already (linear_only), and without a linear term there is no linear model to fall back on.
  const std::vector<double> considered = hidden_factors(kClassHiddenFactors, D.r(), units);
  std::vector<double> factors;
  for (const double factor : considered) {
    const bool shared =
        !std::isfinite(factor) && linear_only != nullptr && !linear_only->loss.empty();
    if (!shared) {
      factors.push_back(factor);
    }
  }
  // One chain of fits per (fold, factor), each warm-started from large to small ridges on the
  // fold's rows, in parallel (a chain's sums are local: see GatheredRows); the scores are added
  // in fold order afterwards.
  const GatheredRows all(D, labels, context);
  const LocalReducer local(context.reducer().block_rows());
  const ExecutionContext one(local, 1);
  constexpr Index kRidges = static_cast<Index>(std::size(kClassRidgeGrid));
  const Index chains = kFolds * static_cast<Index>(factors.size());
  std::vector<std::vector<ClassScore>> by_chain(static_cast<std::size_t>(chains));
  std::vector<std::vector<Vector>> fits(static_cast<std::size_t>(chains));  // each ridge's
  parallel_for(chains, context.num_threads(), [&](Index chain) {
    const int fold = static_cast<int>(chain / static_cast<Index>(factors.size()));
    const double factor =
        factors[static_cast<std::size_t>(chain % static_cast<Index>(factors.size()))];
    const FoldRows train(all, factor, [&](Index i) { return i % kFolds != fold; });
    const FoldRows held(all, factor, [&](Index i) { return i % kFolds == fold; });
    std::vector<ClassScore>& out = by_chain[static_cast<std::size_t>(chain)];
    Vector start = zero;
    for (Index g = 0; g < kRidges; ++g) {
      const Vector penalty =
          column_penalties(energy, kClassRidgeGrid[kRidges - 1 - g], D.k(), factor);
      start = fit_classes(train.design(all), train.labels, penalty, start, one, true);
      out.push_back(class_score(held.design(all), held.labels, start, one));
      fits[static_cast<std::size_t>(chain)].push_back(start);
    }
  });
  std::vector<std::vector<ClassScore>> cv(
      factors.size(), std::vector<ClassScore>(static_cast<std::size_t>(kRidges)));
  for (Index chain = 0; chain < chains; ++chain) {
    const auto f = static_cast<std::size_t>(chain % static_cast<Index>(factors.size()));
    for (Index g = 0; g < kRidges; ++g) {
      const ClassScore& score =
          by_chain[static_cast<std::size_t>(chain)][static_cast<std::size_t>(g)];
      cv[f][static_cast<std::size_t>(g)].loss += score.loss / kFolds;
      cv[f][static_cast<std::size_t>(g)].error += score.error / kFolds;
    }
  }
  // The folds' mean fit of factor f at ridge step g (the largest ridge first).
  const auto mean_fit = [&](std::size_t f, std::size_t g) {
    Vector mean = zero;
    for (Index fold = 0; fold < kFolds; ++fold) {
      const Index chain = fold * static_cast<Index>(factors.size()) + static_cast<Index>(f);
      mean += fits[static_cast<std::size_t>(chain)][g] / kFolds;
    }
    return mean;
  };
  const auto linear_columns = [&](const Vector& beta) -> Matrix {
    return Eigen::Map<const Matrix>(beta.data(), outputs, D.p()).rightCols(D.p() - D.k());
  };
  // The candidates in the order of kClassHiddenFactors (the first of equal scores wins), the
  // largest ridge first.
  for (const double factor : considered) {
    const auto at = std::find(factors.begin(), factors.end(), factor);
    if (at == factors.end()) {
      if (!std::isfinite(factor) && linear_only != nullptr && D.r() > 0) {
        // The linear model alone does not see the units: its scores are those already taken.
        for (std::size_t i = 0; i < linear_only->loss.size(); ++i) {
          tried.push_back({{linear_only->loss[i], linear_only->error[i]},
                           kClassRidgeGrid[std::size(kClassRidgeGrid) - 1 - i],
                           factor});
        }
      }
      continue;
    }
    const std::vector<ClassScore>& scores = cv[static_cast<std::size_t>(at - factors.begin())];
    for (Index g = 0; g < kRidges; ++g) {
      ClassScore score = scores[static_cast<std::size_t>(g)];
      score.loss += factor == 1.0 ? unit_charge : 0.0;
      tried.push_back({score, kClassRidgeGrid[kRidges - 1 - g], factor});
      if (!std::isfinite(factor) && linear_only != nullptr) {
        linear_only->loss.push_back(score.loss);
        linear_only->error.push_back(score.error);
        linear_only->fits.push_back(linear_columns(
            mean_fit(static_cast<std::size_t>(at - factors.begin()), static_cast<std::size_t>(g))));
      }
    }
  }
  // Whether the hidden units are used: by the lowest cross-validated log-loss with the units'
  // charge (the folds do not see that the units were fitted to these labels, so an error count
  // without that charge would favour them on noise). The ridge for that choice: the lowest
  // log-loss among the ridges whose error rate is within one standard error of the fewest
  // errors. Where the rows are many, the error rate (what a classifier is judged by) decides;
  // where they are few, its noise is large and the smoother log-loss decides.
  const Candidate* by_loss = &tried.front();
  for (const Candidate& c : tried) {
    by_loss = c.cv.loss < by_loss->cv.loss ? &c : by_loss;
  }
  best.hidden_factor = by_loss->factor;
  double fewest = 1.0;
  for (const Candidate& c : tried) {
    fewest = c.factor == best.hidden_factor ? std::min(fewest, c.cv.error) : fewest;
  }
  const double cv_rows = static_cast<double>(std::max<Index>(context.global_rows(n), 1));
  const double band = fewest + std::sqrt(fewest * (1.0 - fewest) / cv_rows) + 1e-12;
  double best_loss = std::numeric_limits<double>::infinity();
  for (const Candidate& c : tried) {
    if (c.factor == best.hidden_factor && c.cv.error <= band && c.cv.loss < best_loss) {
      best_loss = c.cv.loss;
      best.ridge = c.ridge;
    }
  }
  // The final fit's start: the folds' mean fit at the choice. For the linear model alone, only
  // its columns after the units' can be nonzero, and a shared score list holds those.
  const auto at = std::find(factors.begin(), factors.end(), best.hidden_factor);
  const auto found = std::find(std::begin(kClassRidgeGrid), std::end(kClassRidgeGrid), best.ridge);
  if (found == std::end(kClassRidgeGrid)) {
    return best;  // no ridge was chosen (no finite score): the final fit starts from zero
  }
  const auto step = static_cast<std::size_t>(std::end(kClassRidgeGrid) - 1 - found);
  if (at != factors.end()) {
    best.beta = mean_fit(static_cast<std::size_t>(at - factors.begin()), step);
  } else if (!std::isfinite(best.hidden_factor) && linear_only != nullptr &&
             step < linear_only->fits.size()) {
    best.beta = zero;
    Eigen::Map<Matrix>(best.beta.data(), outputs, D.p()).rightCols(D.p() - D.k()) =
        linear_only->fits[step];
  }
  return best;
}

// At most this many rows (a strided subsample by global row index) choose the classes' ridge.
constexpr Index kClassChoiceRows = 10000;

RidgeChoice fit_class_output(const Design& D,
                             const Labels& labels,
                             const std::optional<double>& ridge,
                             bool units,
                             const ExecutionContext& context,
                             LinearOnlyScores* linear_only) {
  const Index n = D.rows();
  const Index outputs = labels.multiclass() ? labels.onehot.cols() : 1;
  const Vector energy = penalty_base(column_energy(D, context), D.k(), D.r(), D.st);
  const Vector zero = Vector::Zero(outputs * D.p());
  RidgeChoice best;
  if (ridge) {
    best.ridge = std::max(*ridge, 1e-8);  // separable classes still have a finite optimum
    best.hidden_factor = hidden_factors(kClassHiddenFactors, D.r(), units).front();
  } else {
    const Index rows = context.global_rows(n);
    if (rows <= kClassChoiceRows) {
      best = choose_class_ridge(D, labels, energy, rows, units, context, linear_only);
    } else {
      // The cross-validation on a strided subsample (the same for any partition of the rows),
      // the final fit on all rows.
      const std::vector<Index> picked = strided_rows(n, context, kClassChoiceRows);
      const SubsetReducer subset(context.reducer(), n, picked);
      const ExecutionContext sub_context(subset, context.num_threads());
      const Matrix H = D.H(picked, Eigen::all);
      const Matrix X = D.X != nullptr ? Matrix((*D.X)(picked, Eigen::all)) : Matrix();
      Labels sub;
      sub.y = labels.y(picked);
      sub.classes = labels.classes;
      if (labels.multiclass()) {
        sub.onehot = labels.onehot(picked, Eigen::all);
      }
      best = choose_class_ridge(Design{H, D.X != nullptr ? &X : nullptr, D.st},
                                sub,
                                energy,
                                rows,
                                units,
                                sub_context,
                                linear_only);
    }
  }
  best.beta = fit_classes(D.with_factor(best.hidden_factor),
                          labels,
                          column_penalties(energy, best.ridge, D.k(), best.hidden_factor),
                          best.beta.size() == zero.size() ? best.beta : zero,
                          context);
  return best;
}

}  // namespace

std::vector<double> regression_ridge_grid() {
  return std::vector<double>(std::begin(kRidgeGrid), std::end(kRidgeGrid));
}

std::vector<double> leave_one_out_scores(const Matrix& H,
                                         const Matrix* X,
                                         const Standardizer& st,
                                         const Vector& y,
                                         double hidden_factor,
                                         const ExecutionContext& context) {
  const Design D{H, X, st};
  const NormalEquations ne(normal_equations(D, y, context), D.k(), st);
  return leave_one_out(D, y, ne, {hidden_factor}, context).front();
}

RidgeFit solve_ridge(Index n,
                     Index k,
                     double ridge,
                     const Vector& y,
                     const ExecutionContext& context,
                     const std::function<void(Index, Index, Matrix&)>& design) {
  const Matrix normal = context.mean(n, k + 1, k + 2, [&](Index b, Index c) {
    // The L-BFGS fit of the biases solves this hundreds of times in every training.
    thread_local BlockScratch<> scratch;
    Matrix& F = scratch.get(c, k + 1);
    design(b, c, F);
    Matrix out(k + 1, k + 2);
    out.leftCols(k + 1).noalias() = F.transpose() * F;
    out.col(k + 1).noalias() = F.transpose() * y.segment(b, c);
    return out;
  });
  Matrix A = normal.leftCols(k + 1);
  RidgeFit fit;
  fit.penalty = ridge * std::max(A.topLeftCorner(k, k).trace() / static_cast<double>(k), 1e-300);
  A.diagonal().head(k).array() += fit.penalty;
  fit.beta = A.ldlt().solve(normal.col(k + 1));
  return fit;
}

OutputFit fit_output_layer(const Matrix& H,
                           const Matrix* X,
                           const Standardizer& st,
                           const Labels& labels,
                           Task task,
                           const OutputOptions& options,
                           const ExecutionContext& context,
                           TwoLayerNetwork& net,
                           LinearOnlyScores* linear_only,
                           bool st_fitted_here) {
  Design D{H, X, st};
  D.covariance_known = st_fitted_here;
  const RidgeChoice fit =
      task == Task::Regression
          ? fit_ridge(D, labels.y, options.ridge, options.hidden_units, context)
          : fit_class_output(D, labels, options.ridge, options.hidden_units, context, linear_only);
  OutputFit out = set_output_weights(fit, D.k(), D.r(), st, net);
  out.train_mse = fit.train_mse;
  return out;
}

OutputFit output_from_normal(const Matrix& normal,
                             Index k,
                             Index rows,
                             const Standardizer& st,
                             const OutputOptions& options,
                             TwoLayerNetwork& net) {
  const Index r = normal.rows() - 2 - k;
  const RidgeChoice fit = ridge_from_normal(NormalEquations(normal, k, st, options.hidden_units),
                                            rows,
                                            options.ridge,
                                            std::vector<std::vector<double>>());
  OutputFit out = set_output_weights(fit, k, r, st, net);
  out.train_mse = normal_mse(normal, fit.beta);
  return out;
}

namespace {
OutputFit set_output_weights(
    const RidgeChoice& fit, Index k, Index r, const Standardizer& st, TwoLayerNetwork& net) {
  const Index p = k + r + 1;
  const Index outputs = fit.beta.size() / p;
  const Eigen::Map<const Matrix> B(fit.beta.data(), outputs, p);  // [W2 | Cs | b2] per output
  net.W2 = B.leftCols(k);
  net.b2 = B.col(p - 1);
  if (r > 0) {
    // Cz z = Cz diag(1/σ) (x − μ): C = Cz diag(1/σ), and b2 absorbs −C μ.
    net.C = B.middleCols(k, r) * st.inv_sd.asDiagonal();
    net.b2 -= net.C * st.mean;
  } else {
    net.C.resize(0, 0);
  }
  OutputFit report;
  report.ridge = fit.ridge;
  report.hidden_factor = fit.hidden_factor;
  if (!(net.W2.allFinite() && net.b2.allFinite() && net.C.allFinite())) {
    report.status = Status::NumericalIssue;
    report.message = "output layer: the fit produced non-finite weights";
  }
  return report;
}

}  // namespace

}  // namespace nnlift::detail
