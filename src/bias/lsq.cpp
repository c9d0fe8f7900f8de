// Least-squares biases with the directions fixed (ALGORITHM.md §4.4c), by variable projection.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "detail/activation_traits.hpp"
#include "detail/io.hpp"
#include "detail/lbfgs.hpp"
#include "detail/parallel.hpp"
#include "detail/sample.hpp"
#include "detail/scratch.hpp"
#include "detail/text.hpp"
#include "train/stages.hpp"

namespace nnlift::detail {
namespace {

// The fit uses a strided subsample of at most this many rows: only 2k numbers are fitted.
constexpr Index kBiasRows = 200000;
// The fitted scale of a unit stays within this factor of the moment estimate's, or the unit
// keeps its start.
constexpr double kMaxRescale = 1e6;
// The scales' pull toward the moment estimate's, in rows' worth of Var(y) (bias_by_lsq_on).
constexpr double kScalePull = 0.25;

// Variable projection: with the directions fixed, unit j is σ(s_j t_j + b_j) with t = Xs Ū. For
// given (b, s) the output layer is a ridge solve; L-BFGS moves (b, log s) using the
// envelope-theorem gradient −(1/n) Σ_i e_i a2_j σ'(z_ij) (× s_j t_ij for log s_j).
struct BiasObjective {
  const Matrix& t;  // m×k projections ⟨ū_j, x̃_i⟩ of the subsample (every part holds it whole)
  const Vector& y;
  Activation act;
  double ridge;
  ExecutionContext context;
  // ½ scale_penalty ‖log s − log_scale0‖²: the scales' pull toward the moment estimate's.
  Vector log_scale0;
  double scale_penalty = 0;
  // σ(z) and σ'(z) of the last evaluation, written by the ridge pass (each block its own rows)
  // and read by the gradient pass: one transcendental per entry instead of three.
  mutable Matrix H, dH;

  double operator()(const Vector& theta, Vector& grad) const {
    const Index n = t.rows(), k = t.cols();
    const Vector b = theta.head(k);
    const Vector s = theta.tail(k).array().exp();
    if (H.rows() != n || H.cols() != k) {
      H.resize(n, k);
      dH.resize(n, k);
      // Before the first touch: with fresh 4 kB pages the first evaluation took 77 ms at
      // n = 200,000, the others 7-8 ms (an instrumented build of tools/bench_train).
      advise_huge_pages(H);
      advise_huge_pages(dH);
    }
    // Each thread's block temporaries are kept from block to block and call to call
    // (BlockScratch): this objective is evaluated hundreds of times in every training.
    const RidgeFit fit =
        solve_ridge(n, k, ridge, y, context, [&](Index begin, Index count, Matrix& F) {
          thread_local BlockScratch<> z_scratch, slope_scratch;
          Matrix& Z = z_scratch.get(count, k);
          Matrix& slopes = slope_scratch.get(count, k);
          Z = t.middleRows(begin, count) * s.asDiagonal();
          Z.rowwise() += b.transpose();
          activate_with_slope(act, Z, slopes);
          H.middleRows(begin, count) = Z;
          dH.middleRows(begin, count) = slopes;
          F.leftCols(k) = Z;
          F.col(k).setOnes();
        });
    const Vector a2 = fit.beta.head(k);
    const double b2 = fit.beta(k);
    const Matrix g = context.mean(n, 4 * k + 1, 1, [&](Index begin, Index count) {
      thread_local BlockScratch<Vector> e_scratch;
      thread_local BlockScratch<> w_scratch, hdh_scratch;
      Vector& e = e_scratch.get(count);
      Matrix& w = w_scratch.get(count, k);
      Matrix& hdh = hdh_scratch.get(count, k);
      const auto Hb = H.middleRows(begin, count);
      e = y.segment(begin, count) - Hb * a2 - Vector::Constant(count, b2);
      w = (dH.middleRows(begin, count).array().colwise() * e.array()).matrix() * a2.asDiagonal();
      const auto tb = t.middleRows(begin, count);
      hdh = Hb.cwiseProduct(dH.middleRows(begin, count));
      Matrix out(4 * k + 1, 1);
      out.col(0).head(k) = -w.colwise().sum().transpose();
      out.col(0).segment(k, k) =
          -(w.cwiseProduct(tb).colwise().sum().transpose().array() * s.array()).matrix();
      out(2 * k, 0) = 0.5 * e.squaredNorm();
      // For the penalty's own derivative: Σ σ σ' and Σ σ σ' t per unit.
      out.col(0).segment(2 * k + 1, k) = hdh.colwise().sum().transpose();
      out.col(0).segment(3 * k + 1, k) =
          (hdh.cwiseProduct(tb).colwise().sum().transpose().array() * s.array()).matrix();
      return out;
    });
    // The penalty is ridge × mean_j E[σ_j²] (solve_ridge), so it moves with θ too: its term
    // ½‖a2‖² d(penalty)/dθ makes the gradient exact. Without it the gradient was off by ~1e-7,
    // as large as the true one near the optimum, and every run ended in a failed line search.
    const double slope = a2.squaredNorm() * ridge / static_cast<double>(k);
    grad = g.col(0).head(2 * k) + slope * g.col(0).segment(2 * k + 1, 2 * k);
    const Vector drift = theta.tail(k) - log_scale0;
    grad.tail(k) += scale_penalty * drift;
    return g(2 * k, 0) + 0.5 * fit.penalty * a2.squaredNorm() +
           0.5 * scale_penalty * drift.squaredNorm();
  }
};

}  // namespace

Matrix lsq_sample(const BiasProblem& p) {
  const Index k = p.units.W1.rows();
  const std::vector<Index> picked = lsq_sample_rows(p.Xs.rows(), p.context);
  const Index m = static_cast<Index>(picked.size());
  Matrix local(m, k + 1);
  // Row by row (each row's product as it always was: on a few dozen rows the fit's outcome can
  // turn on the last bit of its inputs), a chunk of rows per task.
  constexpr Index kChunk = 4096;
  parallel_for((m + kChunk - 1) / kChunk, p.context.num_threads(), [&](Index chunk) {
    const Index end = std::min(m, (chunk + 1) * kChunk);
    for (Index i = chunk * kChunk; i < end; ++i) {
      const Index row = picked[static_cast<std::size_t>(i)];
      local.row(i).head(k) = p.T.row(row);
      local(i, k) = p.y(row);
    }
  });
  return p.context.reducer().gather_rows(local);
}

double bias_lsq_objective(const Matrix& t,
                          const Vector& y,
                          Activation activation,
                          double ridge,
                          const Vector& log_scale0,
                          double pull,
                          const Vector& theta,
                          Vector& grad) {
  const BiasObjective objective{
      t, y, activation, ridge, ExecutionContext(1), log_scale0, pull, {}, {}};
  return objective(theta, grad);
}

std::vector<Index> lsq_sample_rows(Index n, const ExecutionContext& context) {
  // A strided subsample by global row index (strided rather than leading rows, so that a sorted
  // file does not bias it), gathered so that every part fits the same 2k numbers.
  return detail::strided_rows(n, context, kBiasRows);
}

BiasFit bias_by_lsq_on(const BiasProblem& p,
                       const BiasFit& start,
                       const Matrix& t,
                       const Vector& y_fit) {
  const Units& u = p.units;
  const Index k = u.W1.rows();

  // θ = (b̃, log s) in standardised coordinates, from the start's estimate.
  Vector theta(2 * k);
  for (Index j = 0; j < k; ++j) {
    theta(j) = start.b1(j) + u.W1.row(j).dot(p.st.mean);
    theta(k + j) = std::log(u.scale(j));
  }
  // The labels in units of their standard deviation: (b, s) do not depend on y's units, but
  // L-BFGS's stopping tests do (a loss change below delta × max(|f|, 1) stops it), so labels in
  // small units (y × 1e-4) stopped the fit after a few steps at the moment-ratio biases.
  const double m = static_cast<double>(y_fit.size());
  // (Divided by the largest |y| first, so that squares of labels near 1e300 do not overflow.)
  Vector y_unit = y_fit;
  const double top = m > 0 ? y_unit.cwiseAbs().maxCoeff() : 0.0;
  if (top > 0 && std::isfinite(top)) {
    y_unit /= top;
    const double sd = std::sqrt((y_unit.array() - y_unit.mean()).square().mean());
    if (sd > 0) {
      y_unit /= sd;
    }
  }
  // On few rows the scales can run off to fit a handful of them (a step), and where they end
  // turned on the last bits of the inputs: a pull toward the moment estimate's scale worth
  // Var(y) per unit of log-scale² over the sample's rows, nothing on many rows.
  const double var_y = (y_unit.array() - y_unit.mean()).square().mean();
  BiasObjective objective{t,
                          y_unit,
                          p.activation,
                          p.ridge,
                          p.context.local(),
                          theta.tail(k),
                          kScalePull * var_y / std::max(m, 1.0),
                          {},
                          {}};
  const LBFGSpp::LBFGSParam<double> param = tight_lbfgs(200);
  const LbfgsRun run = run_lbfgs(objective, theta, param);
  BiasFit fit = start;
  if (run.line_search_failed) {
    // The line search gave up even after a fresh start: x holds the lowest point evaluated.
    fit.warnings.push_back("bias least squares: " + run.stop_reason);
  }
  if (!run.x.allFinite()) {
    fit.warnings.push_back(
        "bias least squares: non-finite parameters; the moment-ratio "
        "biases are kept");
    return fit;
  }
  // A unit whose scale ran off (the fit can lower the loss by saturating a unit without bound:
  // scales of e^665 and more on a set with columns of very different units) keeps its start:
  // a step function is no start for the output layer or the refinement, and e^x overflows.
  std::vector<Index> ran_off;
  for (Index j = 0; j < k; ++j) {
    // Row j of the map-back is W ū_j · scale_j; the fitted scale is s_j.
    const double rescale = std::exp(run.x(k + j)) / u.scale(j);
    if (!(rescale >= 1.0 / kMaxRescale && rescale <= kMaxRescale)) {
      ran_off.push_back(j);
      continue;
    }
    fit.rescale(j) = rescale;
    fit.b1(j) = run.x(j) - (u.W1.row(j) * fit.rescale(j)).dot(p.st.mean);
  }
  if (!ran_off.empty()) {
    std::ostringstream msg;
    msg << "bias least squares: the scale of " << unit_list(ran_off) << " left [1/" << kMaxRescale
        << ", " << kMaxRescale << "] of the moment estimate's; the moment-ratio bias and scale "
        << "are kept";
    fit.warnings.push_back(msg.str());
  }
  return fit;
}

}  // namespace nnlift::detail
