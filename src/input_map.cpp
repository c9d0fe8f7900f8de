// The rank-Gauss input map (include/nnlift/input_map.hpp).
// SPDX-License-Identifier: MIT
#include "detail/input_map.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include <nnlift/input_map.hpp>

#include "detail/check.hpp"
#include "detail/names.hpp"
#include "detail/sample.hpp"

namespace nnlift {
namespace {

const detail::EnumName<ScoreModel> kScoreNames[] = {{ScoreModel::Gaussian, "gaussian"},
                                                    {ScoreModel::RankGauss, "rankgauss"},
                                                    {ScoreModel::Mixture, "gmm"},
                                                    {ScoreModel::Auto, "auto"},
                                                    {ScoreModel::Adaptive, "adaptive"}};

// Standard normal CDF.
double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

// Whether a column holds at most two distinct values.
bool at_most_two_values(const Eigen::Ref<const Vector>& v) {
  if (v.size() == 0) {
    return true;
  }
  const double a = v(0);
  bool have_b = false;
  double b = a;
  for (Index i = 1; i < v.size(); ++i) {
    if (v(i) == a || (have_b && v(i) == b)) {
      continue;
    }
    if (have_b) {
      return false;
    }
    b = v(i);
    have_b = true;
  }
  return true;
}

}  // namespace

const char* to_string(ScoreModel model) noexcept { return detail::name_of(kScoreNames, model); }

ScoreModel parse_score_model(const std::string& name) {
  return detail::parse_name(kScoreNames, name, "score model");
}

double normal_quantile(double p) {
  detail::require(p > 0 && p < 1, "normal_quantile", "p", p, "in (0, 1)");
  // Start: the logistic-tail approximation, then Halley's method on Φ(z) − p.
  const double q = std::min(p, 1.0 - p);
  const double t = std::sqrt(-2.0 * std::log(q));
  double z = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) /
                     (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
  if (p < 0.5) {
    z = -z;
  }
  for (int it = 0; it < 3; ++it) {
    const double e = normal_cdf(z) - p;
    const double density = std::exp(-0.5 * z * z) / std::sqrt(2.0 * M_PI);
    const double u = e / density;
    z -= u / (1.0 + 0.5 * z * u);
  }
  return z;
}

Matrix RankGaussMap::apply(const Matrix& X) const {
  if (X.cols() != static_cast<Index>(x.size())) {
    detail::fail("RankGaussMap::apply: X has " + std::to_string(X.cols()) +
                 " columns; the map has " + std::to_string(x.size()));
  }
  Matrix out(X.rows(), X.cols());
  for (Index j = 0; j < X.cols(); ++j) {
    const std::vector<double>& kx = x[static_cast<std::size_t>(j)];
    const std::vector<double>& kz = z[static_cast<std::size_t>(j)];
    for (Index i = 0; i < X.rows(); ++i) {
      const double v = X(i, j);
      const auto hi = std::upper_bound(kx.begin(), kx.end(), v);
      if (hi == kx.begin()) {
        out(i, j) = kz.front();
      } else if (hi == kx.end()) {
        out(i, j) = kz.back();
      } else {
        const std::size_t b = static_cast<std::size_t>(hi - kx.begin());
        const double w = (v - kx[b - 1]) / (kx[b] - kx[b - 1]);
        out(i, j) = kz[b - 1] + w * (kz[b] - kz[b - 1]);
      }
    }
  }
  return out;
}

double detail::median_of(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t half = values.size() / 2;
  return values.size() % 2 == 1 ? values[half] : 0.5 * (values[half - 1] + values[half]);
}

InputTails detail::tails_of_sample(const Matrix& sample, double threshold) {
  InputTails tails;
  tails.threshold = threshold;
  std::vector<double> kurtosis, skewness;
  for (Index j = 0; j < sample.cols(); ++j) {
    if (at_most_two_values(sample.col(j))) {
      continue;  // constant or binary: a monotone map of it is affine, and changes nothing
    }
    const Eigen::ArrayXd centred = sample.col(j).array() - sample.col(j).mean();
    const double m2 = centred.square().mean();
    if (!(m2 > 0) || !std::isfinite(m2)) {
      continue;  // the values overflow: no kurtosis to take
    }
    const double excess = centred.square().square().mean() / (m2 * m2) - 3.0;
    kurtosis.push_back(excess);
    skewness.push_back(std::abs(centred.cube().mean()) / (m2 * std::sqrt(m2)));
    tails.heavy += excess > threshold ? 1 : 0;
  }
  tails.columns = static_cast<Index>(kurtosis.size());
  if (!kurtosis.empty()) {
    tails.median_kurtosis = detail::median_of(kurtosis);
    tails.median_abs_skewness = detail::median_of(skewness);
  }
  return tails;
}

InputTails input_tails(const Matrix& X,
                       const ExecutionContext& context,
                       double threshold,
                       Index sample_rows) {
  detail::require(sample_rows >= 2, "input_tails", "sample_rows", sample_rows, ">= 2");
  return detail::tails_of_sample(detail::strided_sample(X, context, sample_rows), threshold);
}

RankGaussMap fit_rank_gauss(const Matrix& X,
                            const ExecutionContext& context,
                            Index sample_rows,
                            Index max_knots) {
  detail::require(sample_rows >= 2, "fit_rank_gauss", "sample_rows", sample_rows, ">= 2");
  detail::require(max_knots >= 2, "fit_rank_gauss", "max_knots", max_knots, ">= 2");
  return detail::rank_gauss_of_sample(detail::strided_sample(X, context, sample_rows), max_knots);
}

RankGaussMap detail::rank_gauss_of_sample(const Matrix& sample, Index max_knots) {
  const Index d = sample.cols();
  const Index m = sample.rows();
  if (m < 1) {
    throw DataError("rank-Gauss map: no rows");
  }
  RankGaussMap map;
  map.x.resize(static_cast<std::size_t>(d));
  map.z.resize(static_cast<std::size_t>(d));
  std::vector<double> v(static_cast<std::size_t>(m));
  for (Index j = 0; j < d; ++j) {
    for (Index i = 0; i < m; ++i) {
      v[static_cast<std::size_t>(i)] = sample(i, j);
    }
    std::sort(v.begin(), v.end());
    // Distinct values with their mid-rank shares, clipped away from 0 and 1.
    std::vector<double> kx, share;
    for (std::size_t i = 0; i < v.size();) {
      std::size_t e = i;
      while (e < v.size() && v[e] == v[i]) {
        ++e;
      }
      kx.push_back(v[i]);
      share.push_back((static_cast<double>(i) + 0.5 * static_cast<double>(e - i)) /
                      static_cast<double>(m));
      i = e;
    }
    // At most max_knots of them, evenly spaced in rank, keeping both ends.
    std::vector<double>& outx = map.x[static_cast<std::size_t>(j)];
    std::vector<double>& outz = map.z[static_cast<std::size_t>(j)];
    const std::size_t count = kx.size();
    const std::size_t keep = std::min<std::size_t>(count, static_cast<std::size_t>(max_knots));
    const double lo = 0.5 / static_cast<double>(m), hi = 1.0 - lo;
    for (std::size_t t = 0; t < keep; ++t) {
      const std::size_t at = keep == 1 ? 0 : t * (count - 1) / (keep - 1);
      if (!outx.empty() && outx.back() == kx[at]) {
        continue;
      }
      outx.push_back(kx[at]);
      outz.push_back(count == 1 ? 0.0 : normal_quantile(std::clamp(share[at], lo, hi)));
    }
  }
  return map;
}

}  // namespace nnlift
