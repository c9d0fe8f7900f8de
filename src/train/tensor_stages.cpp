// Stages "residualise", "subspace" and "decompose": the moment tensor's top-k subspace, the CP
// decomposition of its k×k×k core, and the core's noise level (ALGORITHM.md §4.2-4.3).
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include <Eigen/Eigenvalues>

#include "detail/rng.hpp"
#include "train/stages.hpp"

namespace nnlift::detail {
namespace {

// The rows of Xs in the basis Q (n×m), block by block.
Matrix project(const Matrix& Xs, const Matrix& Q, const ExecutionContext& context) {
  return context.map_rows(
      Xs.rows(), Q.cols(), [&](Index b, Index c) { return Matrix(Xs.middleRows(b, c) * Q); });
}

// Noise level of the core by a split-half estimate: cores from alternating blocks of global
// rows, R_e and R_o, each with twice the variance; E = (R_e − R_o)/2 has the noise of R itself.
// Its spectral norm max_u |E(u,u,u)| (by the power method) is what a unit's λ must clear: the
// direction error of unit j scales like ‖E‖/|λ_j| (ALGORITHM.md §4.3a, Thm 5.1).
double core_noise_level(const Matrix& Xs,
                        const Vector& r_core,
                        const Matrix& Q,
                        std::uint64_t seed,
                        const ExecutionContext& context) {
  const Index n = Xs.rows(), k = Q.cols();
  const Index half_block = 8192;
  const Index first = context.first_row(n);
  Vector r_even = Vector::Zero(n), r_odd = Vector::Zero(n);
  for (Index i = 0; i < n; ++i) {
    ((first + i) / half_block % 2 == 0 ? r_even : r_odd)(i) = 2.0 * r_core(i);
  }
  const DenseSymmetricTensor3 even = MomentTensor3(Xs, r_even, context).project(Q);
  const DenseSymmetricTensor3 odd = MomentTensor3(Xs, r_odd, context).project(Q);
  std::vector<double> diff(even.data().size());
  for (std::size_t i = 0; i < diff.size(); ++i) {
    diff[i] = 0.5 * (even.data()[i] - odd.data()[i]);
  }
  PowerMethodOptions po;
  po.rank = 1;
  po.num_restarts = 20;
  po.max_iterations = 50;
  po.seed = seed;
  po.num_threads = context.num_threads();
  const PowerMethodResult noise =
      tensor_power_method(DenseSymmetricTensor3::symmetrize(k, diff), po);
  return std::abs(noise.eigenvalues(0));
}

}  // namespace

Residuals residualize_labels(const Matrix& Xs,
                             const Vector& y,
                             const MomentOptions& options,
                             const ExecutionContext& context) {
  Residuals out;
  out.used = resolve_residualize(options.residualize, context.global_rows(Xs.rows()), Xs.cols());
  out.r_low = residualize(
      Xs, y, out.used == Residualize::None ? Residualize::None : Residualize::Linear, context);
  out.r = out.used == Residualize::Quadratic ? residualize(Xs, y, Residualize::Quadratic, context)
                                             : out.r_low;
  return out;
}

Subspace find_subspace(const Matrix& Xs,
                       const Residuals& labels,
                       Index k,
                       const SubspaceOptions& options,
                       std::uint64_t seed,
                       const ExecutionContext& context) {
  const Index d = Xs.cols();
  const MomentTensor3 T(Xs, labels.r, context);
  const Matrix M2 = second_moment(Xs, labels.r_low, context);
  const Eigen::SelfAdjointEigenSolver<Matrix> eig(M2);
  std::vector<Index> order(static_cast<std::size_t>(d));
  std::iota(order.begin(), order.end(), Index{0});
  std::sort(order.begin(), order.end(), [&](Index a, Index b) {
    return std::abs(eig.eigenvalues()(a)) > std::abs(eig.eigenvalues()(b));
  });
  SubspaceOptions so = options;
  so.rank = k;
  so.seed = seed;
  so.start.resize(d, k);
  for (Index j = 0; j < k; ++j) {
    const Index c = order[static_cast<std::size_t>(j)];
    so.start.col(j) = eig.eigenvectors().col(c) * eig.eigenvalues()(c);
  }
  const SubspaceResult sub = tensor_subspace(T, so);
  Subspace out;
  out.Q = sub.Q;
  out.sweeps = sub.sweeps;
  out.gap = sub.gap;
  // Numerical outcomes are passed on as they are: a subspace still moving after the sweep
  // budget is not-converged (usable; the later stages fit around it), a degenerate sketch a
  // numerical issue. train() reports the first stage that did not succeed.
  out.status = sub.status;
  out.message = sub.message;
  return out;
}

Directions decompose_core(const Matrix& Xs,
                          const Residuals& labels,
                          const Subspace& subspace,
                          const TrainOptions& o,
                          const ExecutionContext& context) {
  const Index k = o.hidden;
  Directions out;
  MomentReport& rep = out.report;
  rep.residualize_used = labels.used;
  rep.subspace_sweeps = subspace.sweeps;
  rep.subspace_gap = subspace.gap;
  // When the quadratic control variate was too costly in all d inputs, it is still cheap in the
  // k projected ones: a quadratic in z = Qᵀx̃ is a quadratic in x, so E[g S3] = 0 still holds,
  // with 1 + k + k(k+1)/2 features.
  const Residualize asked = o.moments.residualize;
  // Auto: only when the rows are many against the k-dimensional quadratic's features (the same
  // rule as for the full one); an explicit Quadratic always takes it.
  const bool core_quadratic =
      labels.used == Residualize::Linear &&
      (asked == Residualize::Quadratic ||
       (asked == Residualize::Auto &&
        resolve_residualize(Residualize::Auto, context.global_rows(Xs.rows()), k) ==
            Residualize::Quadratic));
  Vector r_core =
      core_quadratic
          ? residualize(project(Xs, subspace.Q, context), labels.r, Residualize::Quadratic, context)
          : labels.r;
  Matrix Q = subspace.Q;
  rep.quadratic_in_subspace = core_quadratic;
  if (core_quadratic && o.subspace.max_sweeps > 0) {
    // The lower-variance labels sharpen the subspace too: HOOI again from Q, then refit the
    // control variate in the refined subspace.
    SubspaceOptions again = o.subspace;
    again.rank = k;
    again.seed = derive_seed(o.seed, 21);
    again.start = Q;
    again.sketch_extra = 0;
    const SubspaceResult sub2 = tensor_subspace(MomentTensor3(Xs, r_core, context), again);
    Q = sub2.Q;
    rep.subspace_sweeps += sub2.sweeps;
    rep.subspace_gap = sub2.gap;
    r_core = residualize(project(Xs, Q, context), labels.r, Residualize::Quadratic, context);
  }
  const DenseSymmetricTensor3 core = MomentTensor3(Xs, r_core, context).project(Q);
  DecomposeOptions dopt = o.decompose;
  dopt.rank = k;
  dopt.seed = derive_seed(o.seed, 22);
  dopt.num_threads = context.num_threads();
  const DecomposeResult dr = decompose(core, dopt);
  rep.route = dr.method_used;
  rep.decomposition_residual = dr.relative_residual;
  if (dr.components.size() == 0) {
    out.status = dr.status;
    out.message = "decomposition: " + dr.message;
    return out;
  }
  rep.lambda = dr.lambda;
  out.Ubar = Q * dr.components;
  rep.noise_level = core_noise_level(Xs, r_core, Q, derive_seed(o.seed, 23), context);
  for (Index j = 0; j < k; ++j) {
    if (std::abs(rep.lambda(j)) < o.moments.noise_threshold * rep.noise_level) {
      rep.weak_units.push_back(j);
      std::ostringstream msg;
      msg << "unit " << j + 1 << ": |lambda| = " << std::abs(rep.lambda(j)) << " is within "
          << o.moments.noise_threshold << " x the estimated noise level " << rep.noise_level
          << " of the moment tensor: its direction is unreliable (more data, fewer hidden "
             "units, or a unit in a blind spot of E[sigma'''], ALGORITHM.md §9.8)";
      out.warnings.push_back(msg.str());
    }
  }
  if (static_cast<Index>(rep.weak_units.size()) == k) {
    std::ostringstream msg;
    msg << "no unit's |lambda| is above " << o.moments.noise_threshold
        << " x the moment tensor's noise level: at this n the moment directions are no better "
           "than random; use --refine lbfgs or more data";
    out.warnings.push_back(msg.str());
  }
  // As in `nnlift decompose`: the decomposition's status is the stage's (a decomposition that
  // hit its iteration limit still gave k directions, which the later stages fit around).
  out.status = dr.status;
  out.message = dr.status == Status::Success ? "" : "decomposition: " + dr.message;
  return out;
}

}  // namespace nnlift::detail
