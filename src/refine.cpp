// Local refinement of all network parameters by L-BFGS (the in-house backpropagation baseline).
// SPDX-License-Identifier: MIT
#include "detail/refine.hpp"

#include <LBFGS.h>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace nnlift::detail {
namespace {

// Parameters in standardised coordinates, packed as [vec(W1) (k×d, column-major), b1, w2, b2].
struct Objective {
  const Matrix& X;
  const Vector& y;
  const RowReducer& reducer;
  Index k;
  Activation act;
  bool logistic;
  Vector best;
  double best_value = std::numeric_limits<double>::infinity();

  double operator()(const Vector& theta, Vector& grad) {
    const Index d = X.cols(), n = X.rows();
    const Eigen::Map<const Matrix> W1(theta.data(), k, d);
    const Eigen::Map<const Vector> b1(theta.data() + k * d, k);
    const Eigen::Map<const Vector> w2(theta.data() + k * d + k, k);
    const double b2 = theta(k * d + 2 * k);
    const Index size = theta.size();
    // One pass: the gradient (size entries) and the loss (last entry).
    const Matrix sum = reducer.sum(n, size + 1, 1, [&](Index b, Index c) {
      const auto Xb = X.middleRows(b, c);
      Matrix Z = Xb * W1.transpose();
      Z.rowwise() += b1.transpose();
      Matrix H = Z;
      Matrix dH = Z;
      for (Index i = 0; i < Z.size(); ++i) {
        H.data()[i] = activate(act, Z.data()[i]);
        dH.data()[i] = activation_derivative(act, 1, Z.data()[i]);
      }
      const Vector f = (H * w2).array() + b2;
      Vector e(c);
      double loss = 0;
      for (Index i = 0; i < c; ++i) {
        const double t = y(b + i);
        if (logistic) {
          const double p = activate(Activation::Sigmoid, f(i));
          e(i) = p - t;
          // log(1 + e^f) − t f, computed stably.
          loss += std::max(f(i), 0.0) + std::log1p(std::exp(-std::abs(f(i)))) - t * f(i);
        } else {
          e(i) = f(i) - t;
          loss += 0.5 * e(i) * e(i);
        }
      }
      const Matrix dZ = (e * w2.transpose()).cwiseProduct(dH);
      Matrix out(size + 1, 1);
      Eigen::Map<Matrix>(out.data(), k, d) = dZ.transpose() * Xb;
      out.col(0).segment(k * d, k) = dZ.colwise().sum().transpose();
      out.col(0).segment(k * d + k, k) = H.transpose() * e;
      out(k * d + 2 * k, 0) = e.sum();
      out(size, 0) = loss;
      return out;
    }) / static_cast<double>(n);
    grad = sum.col(0).head(size);
    const double value = sum(size, 0);
    if (value < best_value) {
      best_value = value;
      best = theta;
    }
    return value;
  }
};

}  // namespace

RefineReport refine_lbfgs(const Matrix& Xs,
                          const Vector& y,
                          const Standardizer& st,
                          int max_iterations,
                          double tolerance,
                          const RowReducer& reducer,
                          TwoLayerNetwork& net) {
  const Index k = net.num_hidden(), d = net.num_inputs();
  // To standardised coordinates: W1s = W1 Σ^{1/2}, b1s = b1 + W1 μ.
  Vector theta(k * d + 2 * k + 1);
  Eigen::Map<Matrix>(theta.data(), k, d) = net.W1 * st.W_inverse;
  theta.segment(k * d, k) = net.b1 + net.W1 * st.mean;
  theta.segment(k * d + k, k) = net.W2.row(0).transpose();
  theta(k * d + 2 * k) = net.b2(0);
  const bool logistic = net.link == OutputLink::Logistic;
  Objective objective{Xs, y, reducer, k, net.activation, logistic, theta};
  Vector grad(theta.size());
  RefineReport report;
  const double start = objective(theta, grad);
  report.loss_before = logistic ? start : 2 * start;
  LBFGSpp::LBFGSParam<double> param;
  param.max_iterations = max_iterations;
  param.epsilon = tolerance;
  param.epsilon_rel = tolerance;
  param.past = 5;
  param.delta = 1e-10;
  LBFGSpp::LBFGSSolver<double> solver(param);
  double value = start;
  Vector x = theta;
  report.stopped = "converged";
  try {
    report.iterations = solver.minimize(objective, x, value);
    if (report.iterations >= max_iterations) {
      report.stopped = "iteration limit";
    }
  } catch (const std::exception& e) {
    report.stopped = std::string("line search stopped: ") + e.what();
  }
  const Vector& best = objective.best;  // the lowest loss evaluated, whatever stopped the search
  const double final_value = objective.best_value;
  report.loss_after = logistic ? final_value : 2 * final_value;
  const Matrix W1s = Eigen::Map<const Matrix>(best.data(), k, d);
  net.W1 = W1s * st.W;
  net.b1 = best.segment(k * d, k) - net.W1 * st.mean;
  net.W2 = best.segment(k * d + k, k).transpose();
  net.b2 = Vector::Constant(1, best(k * d + 2 * k));
  return report;
}

}  // namespace nnlift::detail
