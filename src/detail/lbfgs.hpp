// One wrapper for every L-BFGS run (LBFGSpp): its settings outlive the solver, and how it
// stopped is data, never a swallowed exception.
// SPDX-License-Identifier: MIT
#pragma once

#include <LBFGS.h>
#include <exception>
#include <string>

#include <nnlift/types.hpp>

namespace nnlift::detail {

struct LbfgsRun {
  Vector x;                 ///< the last point L-BFGS holds
  double value = 0;         ///< f(x) as last reported by the solver
  int iterations = 0;       ///< iterations done
  std::string stop_reason;  ///< "converged", "iteration limit" or "line search: <why>"
  bool line_search_failed = false;
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

/// Minimises f (double f(const Vector& x, Vector& grad)) from x0 with the given settings. A line
/// search that gives up (LBFGSpp throws) ends the run with line_search_failed and x where the
/// solver left it; numerical outcomes are reported, never thrown.
template <class Objective>
LbfgsRun run_lbfgs(Objective& f, const Vector& x0, const LBFGSpp::LBFGSParam<double>& param) {
  // LBFGSSolver keeps a reference to its settings: `param` outlives it here.
  LBFGSpp::LBFGSSolver<double> solver(param);
  LbfgsRun run;
  run.x = x0;
  try {
    run.iterations = solver.minimize(f, run.x, run.value);
    run.stop_reason = run.iterations >= param.max_iterations ? "iteration limit" : "converged";
  } catch (const std::exception& e) {
    run.line_search_failed = true;
    run.stop_reason = std::string("line search: ") + e.what();
  }
  return run;
}

}  // namespace nnlift::detail
