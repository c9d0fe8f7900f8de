// One wrapper for every L-BFGS run (LBFGSpp): its settings outlive the solver, and how it
// stopped is data, never a swallowed exception.
// SPDX-License-Identifier: MIT
#pragma once

#include <LBFGS.h>
#include <algorithm>
#include <exception>
#include <limits>
#include <string>

#include <nnlift/types.hpp>

namespace nnlift::detail {

struct LbfgsRun {
  Vector x;                 ///< the lowest point evaluated (never a rejected line-search trial)
  double value = 0;         ///< f(x)
  int iterations = 0;       ///< iterations done (see run_lbfgs for a failed line search's count)
  std::string stop_reason;  ///< "converged", "iteration limit" or "line search: <why>"
  bool line_search_failed = false;  ///< the last restart's line search gave up too
  int restarts = 0;  ///< fresh starts after a line search gave up (at most kLbfgsRestarts)
};

/// Settings for the small, smooth fits (output layer, biases): tight gradient tolerances and a
/// stop when the loss has not moved over 5 iterations.
inline LBFGSpp::LBFGSParam<double> tight_lbfgs(int max_iterations) {
  LBFGSpp::LBFGSParam<double> param;
  param.max_iterations = max_iterations;
  param.epsilon = 1e-9;
  param.epsilon_rel = 1e-9;
  param.past = 5;
  param.delta = 1e-12;
  return param;
}

/// How many times run_lbfgs starts afresh after a line search gives up.
inline constexpr int kLbfgsRestarts = 5;

/// Minimises f (double f(const Vector& x, Vector& grad)) from x0 with the given settings.
///
/// A line search can give up far from the optimum: the quasi-Newton memory (curvature pairs
/// taken under the backtracking line search's Armijo rule) may point uphill, or the search runs
/// out of steps. LBFGSpp then throws with x at its last trial, which may be worse than the
/// points before it. Here the run continues from the lowest point evaluated with an empty memory
/// (a steepest-descent step first), as long as the failed stretch went below the value it
/// started from, at most kLbfgsRestarts times; a failure with no progress (from x0, or since the
/// last start) ends the run with line_search_failed. Numerical outcomes are reported, never thrown.
/// A stretch that ended in a failed line search counts its evaluations after the first as
/// iterations (each iteration takes at least one): an upper bound, so that max_iterations still
/// bounds the whole run.
template <class Objective>
LbfgsRun run_lbfgs(Objective& f, const Vector& x0, const LBFGSpp::LBFGSParam<double>& param) {
  // The lowest point evaluated; the first evaluation is f(x0) (LBFGSpp evaluates its start
  // first), and every later stretch starts from `best`.
  struct Tracked {
    Objective& f;
    Vector best;
    double best_value = std::numeric_limits<double>::infinity();
    double first_value = std::numeric_limits<double>::quiet_NaN();
    int evaluations = 0;
    double operator()(const Vector& x, Vector& grad) {
      const double v = f(x, grad);
      if (evaluations++ == 0) {
        first_value = v;
      }
      if (v < best_value) {  // false for NaN
        best_value = v;
        best = x;
      }
      return v;
    }
  };
  Tracked tracked{f, x0};
  LbfgsRun run;
  run.x = x0;
  for (;;) {
    // f where this stretch starts: f(best) after a restart; f(x0), its first evaluation, before.
    const double restart_value = tracked.best_value;
    LBFGSpp::LBFGSParam<double> stretch = param;
    if (param.max_iterations > 0) {
      stretch.max_iterations = std::max(1, param.max_iterations - run.iterations);
    }
    // LBFGSSolver keeps a reference to its settings: `stretch` outlives it here.
    LBFGSpp::LBFGSSolver<double> solver(stretch);
    Vector x = run.x;
    double value = 0;
    const int evaluations_before = tracked.evaluations;
    try {
      run.iterations += solver.minimize(tracked, x, value);
      run.x = std::move(x);
      run.value = value;
      run.line_search_failed = false;
      run.stop_reason = param.max_iterations > 0 && run.iterations >= param.max_iterations
                            ? "iteration limit"
                            : "converged";
      return run;
    } catch (const std::exception& e) {
      run.iterations += std::max(0, tracked.evaluations - evaluations_before - 1);
      run.line_search_failed = true;
      run.stop_reason = std::string("line search: ") + e.what();
    }
    // NaN when f(x0) is not finite: no progress, no restart.
    const double start_value = run.restarts == 0 ? tracked.first_value : restart_value;
    const bool progress = tracked.best_value < start_value;
    run.x = tracked.best;
    run.value = tracked.best_value;
    const bool budget_left = param.max_iterations <= 0 || run.iterations < param.max_iterations;
    if (!progress || run.restarts == kLbfgsRestarts || !budget_left) {
      return run;
    }
    ++run.restarts;
  }
}

}  // namespace nnlift::detail
