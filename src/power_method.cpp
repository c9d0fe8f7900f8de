// The robust tensor power method with implicit deflation, restarts in parallel.
// SPDX-License-Identifier: MIT
#include <cmath>
#include <sstream>

#include <nnlift/power_method.hpp>

#include "detail/check.hpp"
#include "detail/parallel.hpp"
#include "detail/rng.hpp"

namespace nnlift {
namespace {

// T̃ = T − Σ_found λ_f v_f^{⊗3}, applied without forming it.
struct Deflated {
  const SymmetricTensor3& T;
  const Matrix& found;   // d×f
  const Vector& lambda;  // f

  Vector apply(const Vector& u) const {
    Vector out = T.apply(u);
    if (found.cols() > 0) {
      const Vector dots = found.transpose() * u;
      out.noalias() -= found * (lambda.array() * dots.array().square()).matrix();
    }
    return out;
  }
  double contract(const Vector& u) const {
    double value = T.contract(u);
    if (found.cols() > 0) {
      const Vector dots = found.transpose() * u;
      value -= (lambda.array() * dots.array().cube()).sum();
    }
    return value;
  }
};

struct Run {
  Vector theta;
  double lambda = 0;
  int iterations = 0;
  bool converged = false;
};

Run iterate(const Deflated& T, Vector theta, int max_iterations, double tolerance) {
  Run run;
  for (int it = 0; it < max_iterations; ++it) {
    const Vector next_raw = T.apply(theta);
    const double norm = next_raw.norm();
    ++run.iterations;
    if (!(norm > 0) || !std::isfinite(norm)) {
      break;
    }
    const Vector next = next_raw / norm;
    const double change = std::min((next - theta).norm(), (next + theta).norm());
    theta = next;
    if (change < tolerance) {
      run.converged = true;
      break;
    }
  }
  run.lambda = T.contract(theta);
  run.theta = std::move(theta);
  return run;
}

}  // namespace

void validate(const PowerMethodOptions& o) {
  const char* where = "PowerMethodOptions";
  detail::require(o.rank >= 0, where, "rank", o.rank, ">= 0");
  detail::require(o.num_restarts > 0, where, "num_restarts", o.num_restarts, "> 0");
  detail::require(o.max_iterations > 0, where, "max_iterations", o.max_iterations, "> 0");
  detail::require(o.tolerance >= 0, where, "tolerance", o.tolerance, ">= 0");
  detail::require(o.num_threads >= 0, where, "num_threads", o.num_threads, ">= 0");
}

PowerMethodResult tensor_power_method(const SymmetricTensor3& T,
                                      const PowerMethodOptions& options) {
  validate(options);
  const Index d = T.dim();
  const Index k = options.rank == 0 ? d : options.rank;
  detail::require_rank_fits(k, d, "tensor_power_method", "PowerMethodOptions::rank");
  PowerMethodResult result;
  result.eigenvalues.resize(0);
  result.eigenvectors.resize(d, 0);
  result.restart_gap.resize(k);
  std::vector<int> unconverged;
  for (Index c = 0; c < k; ++c) {
    const Deflated deflated{T, result.eigenvectors, result.eigenvalues};
    std::vector<Run> runs(static_cast<std::size_t>(options.num_restarts));
    detail::parallel_for(options.num_restarts, options.num_threads, [&](Index r) {
      detail::Rng rng(detail::derive_seed(
          options.seed, static_cast<std::uint64_t>(c), static_cast<std::uint64_t>(r)));
      const Vector start = rng.normal_vector(d).normalized();
      runs[static_cast<std::size_t>(r)] =
          iterate(deflated, start, options.max_iterations, options.tolerance);
    });
    // Winner by |λ|, ties to the lowest restart index: independent of the thread schedule.
    std::size_t winner = 0;
    for (std::size_t r = 1; r < runs.size(); ++r) {
      if (std::abs(runs[r].lambda) > std::abs(runs[winner].lambda)) {
        winner = r;
      }
    }
    double runner_up = 0.0;
    for (std::size_t r = 0; r < runs.size(); ++r) {
      if (r != winner) {
        runner_up = std::max(runner_up, std::abs(runs[r].lambda));
      }
    }
    result.restart_gap(c) = runs.size() > 1 ? std::abs(runs[winner].lambda) - runner_up : 0.0;
    Vector theta = runs[winner].theta;
    if (runs[winner].lambda < 0) {
      theta = -theta;  // λ is odd in θ: flip so that λ > 0
    }
    Run refined = iterate(deflated, theta, options.max_iterations, options.tolerance);
    if (refined.lambda < 0) {
      refined.theta = -refined.theta;
      refined.lambda = -refined.lambda;
    }
    if (!refined.converged) {
      unconverged.push_back(static_cast<int>(c));
    }
    result.iterations.push_back(runs[winner].iterations + refined.iterations);
    result.eigenvectors.conservativeResize(d, c + 1);
    result.eigenvectors.col(c) = refined.theta;
    result.eigenvalues.conservativeResize(c + 1);
    result.eigenvalues(c) = refined.lambda;
  }
  if (unconverged.empty()) {
    result.status = Status::Success;
  } else {
    std::ostringstream msg;
    msg << "power method: component(s)";
    for (int c : unconverged) {
      msg << " " << c;
    }
    msg << " did not reach tolerance " << options.tolerance << " in " << options.max_iterations
        << " iterations";
    result.status = Status::NotConverged;
    result.message = msg.str();
  }
  return result;
}

}  // namespace nnlift
