// Stage "biases": the one dispatch point. Adding an estimator: a file here with a function of
// the BiasProblem (train/stages.hpp), a BiasMethod value with its name, and one case below.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>
#include <vector>

#include "detail/names.hpp"
#include "detail/parallel.hpp"
#include "detail/text.hpp"
#include "train/stages.hpp"

namespace nnlift {
namespace {
const detail::EnumName<BiasMethod> kBiasNames[] = {{BiasMethod::Auto, "auto"},
                                                   {BiasMethod::Ratio, "ratio"},
                                                   {BiasMethod::Lsq, "lsq"},
                                                   {BiasMethod::Fourier, "fourier"}};
}  // namespace

const char* to_string(BiasMethod method) noexcept { return detail::name_of(kBiasNames, method); }

BiasMethod parse_bias_method(const std::string& name) {
  return detail::parse_name(kBiasNames, name, "bias method");
}

namespace detail {

namespace {

// A bounded unit (sigmoid, tanh) needs at least this many rows on its slope (activation between
// 10% and 90% of its range), and a tenth of the rows when they are fewer than ten times that ...
constexpr Index kMinSlopeRows = 20;
// Where the activation is 10% (90%) of the way up its range: |z| below this is its slope.
double slope_edge(Activation act) { return act == Activation::Tanh ? 1.0986 : 2.1972; }

}  // namespace

Matrix unit_inputs(const Units& units, const Standardizer& st, const Matrix& t) {
  const Vector offset = units.W1 * st.mean;
  Matrix p = t * units.scale.asDiagonal();
  p.rowwise() += offset.transpose();
  return p;
}

bool saturates(Activation act) { return act == Activation::Sigmoid || act == Activation::Tanh; }

Matrix row_projections(const Matrix& A,
                       const Matrix& X,
                       const std::vector<Index>& rows,
                       int num_threads) {
  // Each sum in column order, one multiply-add per column in a plain loop: the same bits
  // whatever matrix the rows sit in and however they are chunked (a product kernel's rounding
  // depends on where a row falls in its register blocks). A chunk of rows at a time, its
  // entries of each column gathered once and added into every unit's sums as a vector (a k-vector
  // per row and column, one thread: 0.13-0.17 s for 200,000 rows, d = 100, k = 10; this:
  // 0.09-0.10 s, in an instrumented build of tools/bench_train).
  constexpr Index kChunk = 1024;
  const Index k = A.rows(), d = X.cols(), m = static_cast<Index>(rows.size());
  Matrix out = Matrix::Zero(m, k);
  parallel_for((m + kChunk - 1) / kChunk, num_threads, [&](Index chunk) {
    const Index begin = chunk * kChunk, len = std::min(kChunk, m - begin);
    std::vector<double> x(static_cast<std::size_t>(len));
    for (Index c = 0; c < d; ++c) {
      for (Index i = 0; i < len; ++i) {
        x[static_cast<std::size_t>(i)] = X(rows[static_cast<std::size_t>(begin + i)], c);
      }
      for (Index j = 0; j < k; ++j) {
        const double a = A(j, c);
        double* sums = out.col(j).data() + begin;
        for (Index i = 0; i < len; ++i) {
          sums[i] += x[static_cast<std::size_t>(i)] * a;
        }
      }
    }
  });
  return out;
}

std::vector<Index> soften_steps(Activation act, const Matrix& p, BiasFit& fit) {
  std::vector<Index> softened;
  if (!saturates(act)) {
    return softened;
  }
  const Index k = p.cols();
  const Index m = std::min<Index>(kMinSlopeRows, p.rows() / 10);
  if (m < 1) {
    return softened;
  }
  const double edge = slope_edge(act);
  for (Index j = 0; j < k; ++j) {
    const double r = fit.rescale(j), b = fit.b1(j);
    if (!(std::abs(r) > 0) || !std::isfinite(r) || !std::isfinite(b)) {
      continue;
    }
    const Vector z = (r * p.col(j)).array() + b;
    if ((z.array().abs() < edge).count() >= m) {
      continue;
    }
    // Keep the step where it is (z = 0 at p = tau) and widen it until m rows are on its slope.
    const double tau = -b / r;
    std::vector<double> distance(static_cast<std::size_t>(p.rows()));
    for (Index i = 0; i < p.rows(); ++i) {
      distance[static_cast<std::size_t>(i)] = std::abs(p(i, j) - tau);
    }
    std::nth_element(distance.begin(), distance.begin() + (m - 1), distance.end());
    const double delta = distance[static_cast<std::size_t>(m - 1)];
    if (!(delta > 0) || !std::isfinite(delta)) {
      continue;
    }
    const double width = edge / (delta * (1.0 + 1e-9));  // |r'| so that the m-th row is inside
    fit.rescale(j) = std::copysign(width, r);
    fit.b1(j) = -tau * fit.rescale(j);
    softened.push_back(j);
  }
  if (!softened.empty()) {
    std::ostringstream msg;
    // (m is 1 on fewer than 20 rows: "no row", "1 row".)
    msg << "biases: " << unit_list(softened) << " had "
        << (m == 1 ? std::string("no row") : "fewer than " + std::to_string(m) + " rows") << " on "
        << (softened.size() == 1 ? "its" : "their")
        << " slope (a step that singles out a few rows, whose labels it would copy onto every "
           "new row beyond them): widened to "
        << m << (m == 1 ? " row" : " rows") << " at the same threshold";
    fit.warnings.push_back(msg.str());
  }
  return softened;
}

BiasFit fit_biases(const BiasProblem& problem, BiasMethod* used) {
  // The moment-ratio estimate is closed-form and cheap: it is the answer for "ratio" and the
  // start of the iterative estimators.
  const BiasFit ratio = bias_by_ratio(problem);
  BiasMethod method = problem.options.method;
  if (method == BiasMethod::Auto) {
    method = problem.task == Task::Regression ? BiasMethod::Lsq : BiasMethod::Ratio;
  }
  *used = method;
  BiasFit fit = ratio;
  const Index k = problem.units.W1.rows();
  // The least-squares sample's rows, every part's: their projections t and labels, gathered
  // once for the estimator and for soften_steps.
  std::optional<Matrix> sample;
  const auto gathered = [&]() -> const Matrix& {
    if (!sample) {
      sample = lsq_sample(problem);
    }
    return *sample;
  };
  switch (method) {
    case BiasMethod::Lsq:
      fit = bias_by_lsq_on(problem, ratio, gathered().leftCols(k), gathered().col(k));
      break;
    case BiasMethod::Fourier:
      fit = bias_by_fourier(problem, ratio);
      break;
    case BiasMethod::Ratio:
    case BiasMethod::Auto:
      break;
  }
  if (saturates(problem.activation)) {
    // The rows of the least-squares fit's sample (the streamed trainer holds the same ones): from
    // their projections where those are read in the subspace, else (the bits the streamed
    // trainer's row_projections give) from the inputs.
    soften_steps(problem.activation,
                 problem.T.in_basis()
                     ? unit_inputs(problem.units, problem.st, gathered().leftCols(k))
                     : problem.context.reducer().gather_rows(
                           row_projections(problem.units.W1,
                                           problem.X,
                                           lsq_sample_rows(problem.X.rows(), problem.context),
                                           problem.context.num_threads())),
                 fit);
  }
  return fit;
}

}  // namespace detail
}  // namespace nnlift
