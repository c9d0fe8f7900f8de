// One entry point for symmetric CP decomposition: subspace, core decomposition, map back.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <numeric>  // std::iota
#include <sstream>

#include <nnlift/decompose.hpp>

#include "detail/check.hpp"
#include "detail/names.hpp"
#include "detail/parallel.hpp"
#include "detail/rng.hpp"

namespace nnlift {
namespace {

// Factors of the k×k×k core with their fit, as found by one route.
struct CoreFit {
  Vector lambda;
  Matrix U;  // k×k unit columns
  double residual = std::numeric_limits<double>::infinity();
  std::vector<int> iterations;
  Vector restart_gap;
  double whitening_min_eigenvalue = 0;
  Status status = Status::NumericalIssue;
  std::string message;
};

CoreFit power_route(const DenseSymmetricTensor3& core, const DecomposeOptions& o) {
  CoreFit fit;
  SignAgnosticOptions wo = o.whitening;
  wo.seed = detail::derive_seed(o.seed, 13);
  const SignAgnosticWhitening w = sign_agnostic_whitening(core, wo);
  fit.whitening_min_eigenvalue = w.min_eigenvalue;
  if (w.status != Status::Success) {
    fit.status = w.status;
    fit.message = w.message;
    return fit;
  }
  PowerMethodOptions po = o.power;
  po.rank = core.dim();
  po.seed = detail::derive_seed(o.seed, 12);
  po.num_threads = o.num_threads;
  const DenseSymmetricTensor3 whitened = core.project(w.W);
  const PowerMethodResult pm = tensor_power_method(whitened, po);
  fit.U = w.unwhiten * pm.eigenvectors;
  fit.U.colwise().normalize();
  fit.lambda = fit_weights(core, fit.U);
  fit.residual = relative_residual(core, fit.lambda, fit.U);
  fit.iterations = pm.iterations;
  fit.restart_gap = pm.restart_gap;
  fit.status = pm.status;
  fit.message = pm.message;
  return fit;
}

CoreFit cp_route(const DenseSymmetricTensor3& core, const DecomposeOptions& o, bool refine) {
  CoreFit fit;
  JennrichOptions jo = o.jennrich;
  jo.seed = detail::derive_seed(o.seed, 14);
  jo.num_threads = o.num_threads;
  CpResult cp = jennrich(core, jo);
  if (cp.status == Status::Success && refine) {
    cp = cp_als(core, cp.factors, o.als);
  }
  fit.status = cp.status;
  fit.message = cp.message;
  if (cp.factors.size() == 0) {
    return fit;
  }
  fit.U = cp.factors;
  fit.lambda = cp.lambda;
  fit.residual = cp.relative_residual;
  fit.iterations = {cp.iterations};
  return fit;
}

}  // namespace

namespace {
const detail::EnumName<DecomposeMethod> kMethodNames[] = {{DecomposeMethod::Auto, "auto"},
                                                          {DecomposeMethod::Power, "power"},
                                                          {DecomposeMethod::Jennrich, "jennrich"},
                                                          {DecomposeMethod::Als, "als"}};
}  // namespace

const char* to_string(DecomposeMethod method) noexcept {
  return detail::name_of(kMethodNames, method);
}

DecomposeMethod parse_decompose_method(const std::string& name) {
  return detail::parse_name(kMethodNames, name, "decomposition method");
}

void validate(const DecomposeOptions& o) {
  detail::require(o.rank >= 1, "DecomposeOptions", "rank", o.rank, ">= 1");
  detail::require(o.num_threads >= 0, "DecomposeOptions", "num_threads", o.num_threads, ">= 0");
  // Derived fields: decompose() sets them from rank, seed and num_threads, so a value set by the
  // caller would be ignored; it is refused instead.
  const char* where = "DecomposeOptions";
  const char* from = "DecomposeOptions::rank, seed and num_threads";
  detail::require_derived(o.power.rank, where, "power.rank", from);
  detail::require_derived(o.power.seed, where, "power.seed", from);
  detail::require_derived(o.power.num_threads, where, "power.num_threads", from);
  detail::require_derived(o.whitening.seed, where, "whitening.seed", from);
  detail::require_derived(o.jennrich.seed, where, "jennrich.seed", from);
  detail::require_derived(o.jennrich.num_threads, where, "jennrich.num_threads", from);
  detail::require_derived(o.subspace.rank, where, "subspace.rank", from);
  detail::require_derived(o.subspace.seed, where, "subspace.seed", from);
  validate(o.power);
  validate(o.whitening);
  validate(o.jennrich);
  validate(o.als);
  SubspaceOptions so = o.subspace;
  so.rank = o.rank;
  validate(so);
}

DecomposeResult decompose(const SymmetricTensor3& T, const DecomposeOptions& options) {
  validate(options);
  const Index d = T.dim();
  const Index k = options.rank;
  detail::require_rank_fits(k, d, "decompose", "DecomposeOptions::rank");
  const detail::ThreadBudget threads(options.num_threads);
  const auto* dense = dynamic_cast<const DenseSymmetricTensor3*>(&T);
  if (dense != nullptr) {
    double largest = 0;
    for (double v : dense->data()) {
      largest = std::max(largest, std::abs(v));
    }
    if (!(largest > 0)) {
      throw DataError("decompose: the tensor is zero; there is nothing to decompose");
    }
    // Entries far from 1 would underflow or overflow in the squares of the norms and residuals:
    // decompose 2^-e·T instead (exact scaling by a power of two) and scale λ back.
    if (largest < 1e-100 || largest > 1e100) {
      int exponent = 0;
      std::frexp(largest, &exponent);
      std::vector<double> scaled = dense->data();
      for (double& v : scaled) {
        v = std::ldexp(v, -exponent);
      }
      DecomposeResult r = decompose(DenseSymmetricTensor3::symmetrize(d, scaled), options);
      r.lambda *= std::ldexp(1.0, exponent);
      return r;
    }
  }
  DecomposeResult result;
  Matrix Q = Matrix::Identity(d, k);
  if (k < d) {
    SubspaceOptions so = options.subspace;
    so.rank = k;
    so.seed = detail::derive_seed(options.seed, 11);
    const SubspaceResult sub = tensor_subspace(T, so);
    Q = sub.Q;
    result.subspace_sweeps = sub.sweeps;
    result.subspace_gap = sub.gap;
  }
  const DenseSymmetricTensor3 core = T.project(Q);
  if (!(core.frobenius_norm() > 0)) {
    throw DataError(
        "decompose: the tensor is zero on its top-k subspace; there is nothing to decompose");
  }

  CoreFit fit;
  switch (options.method) {
    case DecomposeMethod::Power:
      fit = power_route(core, options);
      break;
    case DecomposeMethod::Jennrich:
      fit = cp_route(core, options, false);
      break;
    case DecomposeMethod::Als:
      fit = cp_route(core, options, true);
      break;
    case DecomposeMethod::Auto: {
      fit = cp_route(core, options, true);
      result.method_used = DecomposeMethod::Als;
      CoreFit power = power_route(core, options);
      if (power.U.size() > 0 && power.residual < fit.residual) {
        fit = power;
        result.method_used = DecomposeMethod::Power;
      }
      break;
    }
  }
  if (options.method != DecomposeMethod::Auto) {
    result.method_used = options.method;
  }
  result.whitening_min_eigenvalue = fit.whitening_min_eigenvalue;
  result.status = fit.status;
  result.message = fit.message;
  if (fit.U.size() == 0) {
    return result;  // the route refused (e.g. no definite whitening) and said why
  }
  // Map back, make λ > 0 by flipping components (odd order), sort by λ descending.
  Matrix V = Q * fit.U;
  Vector lambda = fit.lambda;
  for (Index j = 0; j < k; ++j) {
    const double n = V.col(j).norm();
    V.col(j) /= n;
    lambda(j) *= n * n * n;
    if (lambda(j) < 0) {
      lambda(j) = -lambda(j);
      V.col(j) = -V.col(j);
    }
  }
  std::vector<Index> order(static_cast<std::size_t>(k));
  std::iota(order.begin(), order.end(), Index{0});
  std::stable_sort(
      order.begin(), order.end(), [&](Index a, Index b) { return lambda(a) > lambda(b); });
  result.lambda.resize(k);
  result.components.resize(d, k);
  if (fit.restart_gap.size() == k) {
    result.restart_gap.resize(k);
  }
  for (Index j = 0; j < k; ++j) {
    const Index from = order[static_cast<std::size_t>(j)];
    result.lambda(j) = lambda(from);
    result.components.col(j) = V.col(from);
    if (fit.restart_gap.size() == k) {
      result.restart_gap(j) = fit.restart_gap(from);
    }
    if (fit.iterations.size() == static_cast<std::size_t>(k)) {
      result.iterations.push_back(fit.iterations[static_cast<std::size_t>(from)]);
    }
  }
  if (fit.iterations.size() != static_cast<std::size_t>(k)) {
    result.iterations = fit.iterations;
  }
  if (dense != nullptr) {
    result.relative_residual = relative_residual(*dense, result.lambda, result.components);
    result.residual_is_exact = true;
  } else {
    result.relative_residual = fit.residual;
  }
  if (!std::isfinite(result.relative_residual) || !result.components.allFinite()) {
    result.status = Status::NumericalIssue;
    result.message = "decompose: the result is not finite";
  }
  return result;
}

}  // namespace nnlift
