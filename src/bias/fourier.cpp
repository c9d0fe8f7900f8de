// The paper's Fourier bias estimator (Procedure 2). ALGORITHM.md §4.4(a).
// SPDX-License-Identifier: MIT
#include "bias/fourier.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

#include "detail/activation_traits.hpp"
#include "detail/check.hpp"
#include "detail/parallel.hpp"
#include "detail/rng.hpp"
#include "train/stages.hpp"

namespace nnlift::detail {
namespace {

constexpr double kPi = 3.14159265358979323846;

// A unit vector uniform on the cap {u : ⟨u, c⟩ >= cos θmax} of the unit sphere around c.
// Polar angle θ has density ∝ sin^{d−2} θ on [0, θmax] (θmax <= π/2): rejection from the
// uniform proposal; the azimuth is the normalised component of a Gaussian vector orthogonal to c.
void cap_direction(const Vector& c, double theta_max, Rng& rng, Vector& g, Vector& out) {
  const Index d = c.size();
  if (d == 1) {
    out = c;
    return;
  }
  const double sin_max = std::sin(theta_max);
  double theta = 0;
  for (;;) {
    theta = theta_max * rng.uniform();
    const double ratio = std::sin(theta) / sin_max;
    if (rng.uniform() <= std::pow(ratio, static_cast<double>(d - 2))) {
      break;
    }
  }
  double norm = 0;
  do {
    for (Index t = 0; t < d; ++t) {
      g(t) = rng.normal();
    }
    g -= g.dot(c) * c;
    norm = g.norm();
  } while (norm < 1e-12);
  out = std::cos(theta) * c + (std::sin(theta) / norm) * g;
}

}  // namespace

Vector fourier_biases(const Matrix& X,
                      const Vector& yc,
                      const Matrix& W1,
                      Activation activation,
                      double radius,
                      double cap,
                      std::uint64_t seed,
                      const ExecutionContext& context) {
  require(radius > 0 && std::isfinite(radius), "fourier_biases", "radius", radius, "> 0");
  require(cap > 0 && cap < std::sqrt(2.0), "fourier_biases", "cap", cap, "in (0, sqrt 2)");
  const Index n = X.rows(), d = X.cols(), k = W1.rows();
  if (traits(activation).refusal != nullptr) {
    fail(std::string("fourier bias: ") + traits(activation).refusal);
  }
  const double phase0 = traits(activation).fourier_phase;
  const double theta_max = std::acos(1.0 - cap * cap / 2.0);
  const Vector scale = W1.rowwise().norm();
  const Matrix directions = scale.cwiseInverse().asDiagonal() * W1;
  // Row 0: Σ ỹ cos⟨ω, x⟩; row 1: −Σ ỹ sin⟨ω, x⟩, per unit.
  const Index first = context.first_row(n);
  const Matrix v = context.sum(n, 2, k, [&](Index begin, Index count) {
    Matrix part = Matrix::Zero(2, k);
    Vector g(d), omega(d);
    for (Index j = 0; j < k; ++j) {
      const Vector c = directions.row(j).transpose();
      for (Index i = begin; i < begin + count; ++i) {
        // The frequency of a row depends only on (seed, unit, global row index).
        Rng rng(derive_seed(
            seed, static_cast<std::uint64_t>(j), static_cast<std::uint64_t>(first + i)));
        cap_direction(c, theta_max, rng, g, omega);
        const double phase = radius * X.row(i).dot(omega);
        part(0, j) += yc(i) * std::cos(phase);
        part(1, j) -= yc(i) * std::sin(phase);
      }
    }
    return part;
  });
  Vector b(k);
  for (Index j = 0; j < k; ++j) {
    double theta = std::atan2(v(1, j), v(0, j)) - phase0;
    theta -= kPi * std::ceil(theta / kPi - 0.5);  // into (−π/2, π/2]: a2_j < 0 adds π
    b(j) = scale(j) * theta / radius;
  }
  return b;
}

double ball_uniformity_distance(const Matrix& X, const ExecutionContext& context) {
  const double d = static_cast<double>(X.cols());
  const Vector mean = context.mean(X.rows(), X.cols(), 1, [&](Index b, Index c) {
    return detail::column_sums(X.middleRows(b, c));
  });
  Vector local(X.rows());
  for (Index i = 0; i < X.rows(); ++i) {
    local(i) = (X.row(i).transpose() - mean).norm();
  }
  const Matrix all = context.reducer().gather_rows(local);
  const Index n = all.rows();
  std::vector<double> r(all.data(), all.data() + n);
  const double r_max = *std::max_element(r.begin(), r.end());
  if (!(r_max > 0)) {
    return 1.0;
  }
  for (double& value : r) {
    value = std::pow(value / r_max, d);
  }
  std::sort(r.begin(), r.end());
  double distance = 0;
  for (std::size_t i = 0; i < r.size(); ++i) {
    const double lo = static_cast<double>(i) / static_cast<double>(n);
    const double hi = static_cast<double>(i + 1) / static_cast<double>(n);
    distance = std::max({distance, std::abs(r[i] - lo), std::abs(hi - r[i])});
  }
  return distance;
}

}  // namespace nnlift::detail

namespace nnlift::detail {
namespace {
constexpr double kBallUniformityLimit = 0.05;  // KS distance; ~1/sqrt(n) on a ball
}  // namespace

BiasFit bias_by_fourier(const BiasProblem& p, const BiasFit& start) {
  BiasFit fit = start;
  const double ks = ball_uniformity_distance(p.X, p.context);
  if (ks > kBallUniformityLimit) {
    std::ostringstream msg;
    msg << "bias fourier: the inputs do not look uniform on a ball (Kolmogorov-Smirnov distance "
        << ks
        << " of (|x - mean| / max)^d from U(0, 1)); the Fourier estimator assumes a constant "
           "input density on a bounded support and has no finite mean under Gaussian inputs "
           "(ALGORITHM.md §4.4a): prefer the lsq or ratio estimator";
    fit.warnings.push_back(msg.str());
  }
  fit.b1 = fourier_biases(p.X,
                          p.yc,
                          p.units.W1,
                          p.activation,
                          p.options.fourier_radius,
                          p.options.fourier_cap,
                          derive_seed(p.seed, 43),
                          p.context);
  // Extra units (no moments of their own) keep the biases they started with.
  const Index m = p.units.moment_units();
  fit.b1.tail(fit.b1.size() - m) = start.b1.tail(start.b1.size() - m);
  // The paper's model, which this estimator's phase assumes, has weight rows of norm 1 in the
  // input coordinates: the units are rescaled to it (map back scales them to norm 1 in the
  // columns' standard deviations), and their biases with them.
  for (Index j = 0; j < m; ++j) {
    const double norm = p.units.W1.row(j).norm();
    if (norm > 0 && std::isfinite(norm)) {
      fit.rescale(j) = 1.0 / norm;
      fit.b1(j) /= norm;
    }
  }
  return fit;
}

}  // namespace nnlift::detail
