// Stage "output layer" (ALGORITHM.md §4.5): ridge regression, or logistic / softmax regression
// for classes, of the targets on the hidden activations [H, 1].
// SPDX-License-Identifier: MIT
#include <Eigen/Cholesky>

#include "detail/glm.hpp"
#include "detail/lbfgs.hpp"
#include "train/stages.hpp"

namespace nnlift::detail {
namespace {

// The ridge term: `ridge` relative to the mean diagonal of the hidden block of the Gram matrix.
double ridge_penalty(const Matrix& gram, Index k, double ridge) {
  return ridge * std::max(gram.topLeftCorner(k, k).trace() / static_cast<double>(k), 1e-300);
}

// The same for the iterative output fits, which hold H: at least 1e-8, so that separable
// classes still have a finite optimum.
double stored_ridge_penalty(const Matrix& H, double ridge, const ExecutionContext& context) {
  const Index n = H.rows();
  const double energy = context.mean(n, 1, 1, [&](Index b, Index c) {
    return Matrix::Constant(1, 1, H.middleRows(b, c).squaredNorm());
  })(0, 0) / static_cast<double>(H.cols());
  return std::max(ridge, 1e-8) * std::max(energy, 1e-300);
}

// W2 and b2 from the solution [weights; intercept] of a single-output fit.
void set_single_output(const Vector& beta, Index k, TwoLayerNetwork& net) {
  net.W2 = beta.head(k).transpose();
  net.b2 = Vector::Constant(1, beta(k));
}

void fit_ridge(const Matrix& H,
               const Vector& y,
               double ridge,
               const ExecutionContext& context,
               TwoLayerNetwork& net) {
  const Index k = H.cols();
  const Vector beta = solve_ridge(H.rows(), k, ridge, y, context, [&](Index b, Index c) -> Matrix {
                        return H.middleRows(b, c);
                      }).beta;
  set_single_output(beta, k, net);
}

// L2-penalised logistic regression of 0/1 labels on [H, 1] by Newton's method.
void fit_logistic(const Matrix& H,
                  const Vector& y,
                  double ridge,
                  const ExecutionContext& context,
                  TwoLayerNetwork& net) {
  const Index n = H.rows(), k = H.cols();
  Vector beta = Vector::Zero(k + 1);
  const double penalty = stored_ridge_penalty(H, ridge, context);
  for (int it = 0; it < 100; ++it) {
    const Matrix gh = context.mean(n, k + 1, k + 2, [&](Index b, Index c) {
      const Matrix F = with_intercept(H.middleRows(b, c));
      const Vector p =
          (F * beta).unaryExpr([](double t) { return activate(Activation::Sigmoid, t); });
      const Vector w = p.array() * (1.0 - p.array());
      Matrix out(k + 1, k + 2);
      out.leftCols(k + 1).noalias() = F.transpose() * (w.asDiagonal() * F);
      out.col(k + 1).noalias() = F.transpose() * (p - y.segment(b, c));
      return out;
    });
    Matrix hess = gh.leftCols(k + 1);
    Vector grad = gh.col(k + 1);
    hess.diagonal().head(k).array() += penalty;
    grad.head(k) += penalty * beta.head(k);
    const Vector step = hess.ldlt().solve(grad);
    beta -= step;
    if (step.norm() < 1e-10 * (1.0 + beta.norm())) {
      break;
    }
  }
  set_single_output(beta, k, net);
}

// Multinomial logistic regression of one-hot targets Y (local rows × c) on [H, 1] by L-BFGS
// (convex), with the ridge on the weights.
void fit_softmax(const Matrix& H,
                 const Matrix& Y,
                 double ridge,
                 const ExecutionContext& context,
                 TwoLayerNetwork& net) {
  const Index n = H.rows(), k = H.cols(), c = Y.cols();
  const double penalty = stored_ridge_penalty(H, ridge, context);
  auto objective = [&](const Vector& theta, Vector& grad) {
    const Eigen::Map<const Matrix> W(theta.data(), c, k + 1);  // [W2 | b2]
    const Matrix sum = context.mean(n, c * (k + 1) + 1, 1, [&](Index b, Index cnt) {
      const Matrix F = with_intercept(H.middleRows(b, cnt));
      Matrix P = F * W.transpose();  // cnt×c logits
      double loss = 0;
      for (Index i = 0; i < cnt; ++i) {
        softmax_inplace(P.row(i));
        loss -= (Y.row(b + i).array() * (P.row(i).array().max(1e-300)).log()).sum();
      }
      const Matrix E = P - Y.middleRows(b, cnt);
      Matrix out(c * (k + 1) + 1, 1);
      Eigen::Map<Matrix>(out.data(), c, k + 1) = E.transpose() * F;
      out(c * (k + 1), 0) = loss;
      return out;
    });
    grad = sum.col(0).head(c * (k + 1));
    Eigen::Map<Matrix>(grad.data(), c, k + 1).leftCols(k) += penalty * W.leftCols(k);
    return sum(c * (k + 1), 0) + 0.5 * penalty * W.leftCols(k).squaredNorm();
  };
  const LBFGSpp::LBFGSParam<double> param = tight_lbfgs(500);
  const LbfgsRun run = run_lbfgs(objective, Vector::Zero(c * (k + 1)), param);
  // A line search that gives up on this convex problem stops at its numerical optimum: the
  // point it holds is the answer, so that is no warning.
  const Eigen::Map<const Matrix> W(run.x.data(), c, k + 1);
  net.W2 = W.leftCols(k);
  net.b2 = W.col(k);
}

}  // namespace

RidgeFit solve_ridge(Index n,
                     Index k,
                     double ridge,
                     const Vector& y,
                     const ExecutionContext& context,
                     const std::function<Matrix(Index, Index)>& hidden) {
  const Matrix normal = context.mean(n, k + 1, k + 2, [&](Index b, Index c) {
    const Matrix F = with_intercept(hidden(b, c));
    Matrix out(k + 1, k + 2);
    out.leftCols(k + 1).noalias() = F.transpose() * F;
    out.col(k + 1).noalias() = F.transpose() * y.segment(b, c);
    return out;
  });
  Matrix A = normal.leftCols(k + 1);
  RidgeFit fit;
  fit.penalty = ridge_penalty(A, k, ridge);
  A.diagonal().head(k).array() += fit.penalty;
  fit.beta = A.ldlt().solve(normal.col(k + 1));
  return fit;
}

StageReport fit_output_layer(const Matrix& H,
                             const Labels& labels,
                             Task task,
                             const OutputOptions& options,
                             const ExecutionContext& context,
                             TwoLayerNetwork& net) {
  if (task == Task::Regression) {
    fit_ridge(H, labels.y, options.ridge, context, net);
  } else if (labels.multiclass()) {
    fit_softmax(H, labels.onehot, options.ridge, context, net);
  } else {
    fit_logistic(H, labels.y, options.ridge, context, net);
  }
  StageReport report;
  if (!(net.W2.allFinite() && net.b2.allFinite())) {
    report.status = Status::NumericalIssue;
    report.message = "output layer: the fit produced non-finite weights";
  }
  return report;
}

}  // namespace nnlift::detail
