// Local refinement of all network parameters by L-BFGS (the in-house backpropagation baseline).
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>

#include "detail/check.hpp"
#include "detail/glm.hpp"
#include "detail/lbfgs.hpp"
#include "train/stages.hpp"

namespace nnlift::detail {
namespace {

// Parameters in standardised coordinates, packed as [vec(W1) (k×d), b1 (k), vec(W2) (c×k), b2 (c)].
struct Objective {
  const Matrix& X;
  const Matrix& T;  // n×c targets
  const ExecutionContext& context;
  Index k;
  Activation act;
  OutputLink link;
  Vector best;
  double best_value = std::numeric_limits<double>::infinity();
  const std::function<void(double)>* progress = nullptr;  // fraction of the iteration budget
  int max_iterations = 1;
  int evaluations = 0;

  double operator()(const Vector& theta, Vector& grad) {
    const Index d = X.cols(), n = X.rows(), c = T.cols();
    const Eigen::Map<const Matrix> W1(theta.data(), k, d);
    const Eigen::Map<const Vector> b1(theta.data() + k * d, k);
    const Eigen::Map<const Matrix> W2(theta.data() + k * d + k, c, k);
    const Eigen::Map<const Vector> b2(theta.data() + k * d + k + c * k, c);
    const Index size = theta.size();
    // One pass: the gradient (size entries) and the loss (last entry).
    const Matrix sum = context.mean(n, size + 1, 1, [&](Index b, Index cnt) {
      const auto Xb = X.middleRows(b, cnt);
      Matrix Z = Xb * W1.transpose();
      Z.rowwise() += b1.transpose();
      Matrix H = Z;
      Matrix dH = Z;
      for (Index i = 0; i < Z.size(); ++i) {
        H.data()[i] = activate(act, Z.data()[i]);
        dH.data()[i] = activation_derivative(act, 1, Z.data()[i]);
      }
      Matrix F = H * W2.transpose();  // cnt×c
      F.rowwise() += b2.transpose();
      const auto Tb = T.middleRows(b, cnt);
      Matrix E(cnt, c);  // ∂loss/∂F per row
      double loss = 0;
      for (Index i = 0; i < cnt; ++i) {
        if (link == OutputLink::Identity) {
          E.row(i) = F.row(i) - Tb.row(i);
          loss += 0.5 * E.row(i).squaredNorm();
        } else if (link == OutputLink::Logistic) {
          const double f = F(i, 0);
          E(i, 0) = activate(Activation::Sigmoid, f) - Tb(i, 0);
          loss += logistic_loss(f, Tb(i, 0));
        } else {
          Eigen::RowVectorXd p = F.row(i);
          const double log_normaliser = softmax_inplace(p);
          E.row(i) = p - Tb.row(i);
          loss += (Tb.row(i).array() * (log_normaliser - F.row(i).array())).sum();
        }
      }
      const Matrix dZ = (E * W2).cwiseProduct(dH);
      Matrix out(size + 1, 1);
      Eigen::Map<Matrix>(out.data(), k, d) = dZ.transpose() * Xb;
      out.col(0).segment(k * d, k) = dZ.colwise().sum().transpose();
      Eigen::Map<Matrix>(out.data() + k * d + k, c, k) = E.transpose() * H;
      out.col(0).segment(k * d + k + c * k, c) = E.colwise().sum().transpose();
      out(size, 0) = loss;
      return out;
    });
    grad = sum.col(0).head(size);
    const double value = sum(size, 0);
    if (value < best_value) {
      best_value = value;
      best = theta;
    }
    if (progress != nullptr && *progress) {
      // Each iteration evaluates at least once, so this over-states progress; capped below 1.
      (*progress)(std::min(0.99, ++evaluations / static_cast<double>(max_iterations)));
    }
    return value;
  }
};

}  // namespace

RefineReport refine_network(const Matrix& Xs,
                            const Matrix& targets,
                            const Standardizer& st,
                            const RefineOptions& options,
                            const ExecutionContext& context,
                            TwoLayerNetwork& net,
                            const std::function<void(double)>& progress) {
  const Index k = net.num_hidden(), d = net.num_inputs(), c = net.num_outputs();
  if (targets.rows() != Xs.rows() || targets.cols() != c) {
    fail("refine_network: targets are " + std::to_string(targets.rows()) + "x" +
         std::to_string(targets.cols()) + "; expected n x " + std::to_string(c));
  }
  // To standardised coordinates: W1s = W1 Σ^{1/2}, b1s = b1 + W1 μ.
  Vector theta(k * d + k + c * k + c);
  Eigen::Map<Matrix>(theta.data(), k, d) = net.W1 * st.W_inverse;
  theta.segment(k * d, k) = net.b1 + net.W1 * st.mean;
  Eigen::Map<Matrix>(theta.data() + k * d + k, c, k) = net.W2;
  theta.segment(k * d + k + c * k, c) = net.b2;
  const bool squared = net.link == OutputLink::Identity;
  Objective objective{Xs, targets, context, k, net.activation, net.link, theta};
  objective.progress = &progress;
  objective.max_iterations = options.max_iterations;
  Vector grad(theta.size());
  RefineReport report;
  const double start = objective(theta, grad);
  report.loss_before = squared ? 2 * start : start;
  LBFGSpp::LBFGSParam<double> param;
  param.max_iterations = options.max_iterations;
  param.epsilon = options.tolerance;
  param.epsilon_rel = options.tolerance;
  param.past = 5;
  param.delta = 1e-10;
  const LbfgsRun run = run_lbfgs(objective, theta, param);
  report.iterations = run.iterations;
  report.stop_reason = run.stop_reason;
  const Vector& best = objective.best;  // the lowest loss evaluated, whatever stopped the search
  const Matrix W1s = Eigen::Map<const Matrix>(best.data(), k, d);
  net.W1 = W1s * st.W;
  net.b1 = best.segment(k * d, k) - net.W1 * st.mean;
  net.W2 = Eigen::Map<const Matrix>(best.data() + k * d + k, c, k);
  net.b2 = best.segment(k * d + k + c * k, c);
  return report;
}

}  // namespace nnlift::detail
