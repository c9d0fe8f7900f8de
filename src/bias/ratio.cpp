// The moment-ratio bias estimator (ALGORITHM.md §4.4b): s κ2(b; s)/κ1(b; s) = c2/c1 per unit.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <string>

#include "train/stages.hpp"

namespace nnlift::detail {
namespace {

// Solves s·κ2(b; s)/κ1(b; s) = ratio for b on [−6, 6] by bisection. The left side is
// decreasing in b for log-concave σ' (ALGORITHM.md §4.4b), so the root is unique; a ratio
// outside the bracket's range is clamped to the nearer end.
double solve_bias(Activation act, double s, double ratio) {
  auto g = [&](double b) {
    return s * activation_moment(act, 2, b, s) / activation_moment(act, 1, b, s);
  };
  double lo = -6.0, hi = 6.0;
  if (ratio >= g(lo)) {
    return lo;
  }
  if (ratio <= g(hi)) {
    return hi;
  }
  for (int it = 0; it < 80; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (g(mid) > ratio) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return 0.5 * (lo + hi);
}

}  // namespace

BiasFit bias_by_ratio(const BiasProblem& p) {
  const Units& u = p.units;
  const Index k = u.W1.rows();
  BiasFit fit;
  fit.b1.resize(k);
  fit.rescale = Vector::Ones(k);
  const Index m = u.moment_units();
  const double c1_max = m > 0 ? std::max(u.c1.head(m).cwiseAbs().maxCoeff(), 1e-300) : 1.0;
  for (Index j = 0; j < k; ++j) {
    double b_std = 0.0;
    if (j >= m) {
      b_std = u.extra_bias(j - m);  // an extra unit: no moments of its own to take a bias from
    } else if (std::abs(u.c1(j)) > 1e-12 * c1_max) {
      b_std = solve_bias(p.activation, u.scale(j), u.c2(j) / u.c1(j));
    } else {
      fit.warnings.push_back("unit " + std::to_string(j + 1) +
                             ": first-order moment is zero; its bias is set to 0");
    }
    fit.b1(j) = b_std - u.W1.row(j).dot(p.st.mean);
  }
  return fit;
}

}  // namespace nnlift::detail
