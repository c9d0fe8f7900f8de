// Scores on labelled data, the Hungarian algorithm and recovery against a planted network.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include <nnlift/evaluate.hpp>

#include "detail/check.hpp"
#include "detail/parallel.hpp"
#include "detail/scores.hpp"

namespace nnlift {

Matrix detail::class_score_sums(const TwoLayerNetwork& net,
                                const Matrix& p,
                                const Eigen::Ref<const Vector>& y) {
  // The positive class of a logistic model is the second label (1 for 0/1 labels).
  const std::vector<double> classes = class_values(net);
  const double negative_label = classes.front();
  const double positive_label = classes.size() == 2 ? classes[1] : 1.0;
  double correct = 0, loss = 0;
  for (Index i = 0; i < y.size(); ++i) {
    const double label = y(i);
    if (net.link == OutputLink::Logistic) {
      const bool positive = label == positive_label;
      const double q = std::clamp(p(i, 0), 1e-15, 1.0 - 1e-15);
      if (!positive && label != negative_label) {  // neither class: wrong, as for softmax
        loss -= std::log(1e-15);
        continue;
      }
      correct += (predicted_class(net, p, i) == 1) == positive ? 1 : 0;
      loss -= positive ? std::log(q) : std::log(1.0 - q);
    } else {
      const Index best = predicted_class(net, p, i);
      Index truth = -1;
      for (std::size_t k = 0; k < net.classes.size(); ++k) {
        if (net.classes[k] == label) {
          truth = static_cast<Index>(k);
        }
      }
      correct += best == truth ? 1 : 0;
      loss -= truth >= 0 ? std::log(std::max(p(i, truth), 1e-15)) : std::log(1e-15);
    }
  }
  Matrix out(2, 1);
  out << correct, loss;
  return out;
}

Scores score(const TwoLayerNetwork& net,
             const Matrix& X,
             const Vector& y,
             const ExecutionContext& context) {
  if (X.rows() != y.size()) {
    detail::fail("score: X has " + std::to_string(X.rows()) + " rows but y has " +
                 std::to_string(y.size()));
  }
  Scores s;
  const Index n = y.size();
  if (net.link == OutputLink::Identity) {
    // Σ (f − y)² and Σ y in one pass, then Σ (y − ȳ)² (two passes: no cancellation).
    const Matrix sums = context.mean(n, 2, 1, [&](Index b, Index c) {
      const Vector p = predict(net, X.middleRows(b, c)).col(0);
      const auto yb = y.segment(b, c);
      Matrix out(2, 1);
      out << (p - yb).squaredNorm(), detail::sum_of(yb);
      return out;
    });
    s.mse = sums(0, 0);
    const double mean = sums(1, 0);
    const double var = context.mean(n, 1, 1, [&](Index b, Index c) {
      return Matrix::Constant(1, 1, (y.segment(b, c).array() - mean).square().sum());
    })(0, 0);
    s.r2 = var > 0 ? 1.0 - s.mse / var : 0.0;
    return s;
  }
  const Matrix sums = context.mean(n, 2, 1, [&](Index b, Index c) {
    return detail::class_score_sums(net, predict(net, X.middleRows(b, c)), y.segment(b, c));
  });
  s.accuracy = sums(0, 0);
  s.log_loss = sums(1, 0);
  return s;
}

std::vector<Index> hungarian(const Matrix& cost) {
  if (cost.rows() != cost.cols()) {
    detail::fail("hungarian: the cost matrix is " + std::to_string(cost.rows()) + "x" +
                 std::to_string(cost.cols()) + "; it must be square");
  }
  // Shortest augmenting paths with row/column potentials (1-based arrays, column 0 virtual).
  const Index n = cost.rows();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(static_cast<std::size_t>(n + 1), 0.0),
      v(static_cast<std::size_t>(n + 1), 0.0);
  std::vector<Index> p(static_cast<std::size_t>(n + 1), 0), way(static_cast<std::size_t>(n + 1), 0);
  auto at = [](auto& vec, Index i) -> auto& { return vec[static_cast<std::size_t>(i)]; };
  for (Index i = 1; i <= n; ++i) {
    at(p, 0) = i;
    Index j0 = 0;
    std::vector<double> minv(static_cast<std::size_t>(n + 1), inf);
    std::vector<char> used(static_cast<std::size_t>(n + 1), 0);
    do {
      at(used, j0) = 1;
      const Index i0 = at(p, j0);
      double delta = inf;
      Index j1 = 0;
      for (Index j = 1; j <= n; ++j) {
        if (!at(used, j)) {
          const double cur = cost(i0 - 1, j - 1) - at(u, i0) - at(v, j);
          if (cur < at(minv, j)) {
            at(minv, j) = cur;
            at(way, j) = j0;
          }
          if (at(minv, j) < delta) {
            delta = at(minv, j);
            j1 = j;
          }
        }
      }
      for (Index j = 0; j <= n; ++j) {
        if (at(used, j)) {
          at(u, at(p, j)) += delta;
          at(v, j) -= delta;
        } else {
          at(minv, j) -= delta;
        }
      }
      j0 = j1;
    } while (at(p, j0) != 0);
    do {
      const Index j1 = at(way, j0);
      at(p, j0) = at(p, j1);
      j0 = j1;
    } while (j0 != 0);
  }
  std::vector<Index> assignment(static_cast<std::size_t>(n), -1);
  for (Index j = 1; j <= n; ++j) {
    assignment[static_cast<std::size_t>(at(p, j) - 1)] = j - 1;
  }
  return assignment;
}

Recovery recovery(const TwoLayerNetwork& truth, const TwoLayerNetwork& estimate) {
  if (truth.num_inputs() != estimate.num_inputs()) {
    detail::fail("recovery: the truth has " + std::to_string(truth.num_inputs()) +
                 " inputs, the estimate " + std::to_string(estimate.num_inputs()));
  }
  const Index k = truth.num_hidden();
  const Index m = estimate.num_hidden();
  if (m < k) {
    detail::fail("recovery: the estimate has " + std::to_string(m) +
                 " hidden units, fewer than the " + std::to_string(k) + " of the truth");
  }
  Matrix cosines(k, m);
  for (Index i = 0; i < k; ++i) {
    for (Index j = 0; j < m; ++j) {
      cosines(i, j) = std::abs(truth.W1.row(i).normalized().dot(estimate.W1.row(j).normalized()));
    }
  }
  // Square cost matrix: padding rows cost nothing.
  Matrix cost = Matrix::Zero(m, m);
  cost.topRows(k) = -cosines;
  const std::vector<Index> assignment = hungarian(cost);
  Recovery r;
  r.cosine.resize(k);
  for (Index i = 0; i < k; ++i) {
    r.match.push_back(assignment[static_cast<std::size_t>(i)]);
    r.cosine(i) = cosines(i, r.match.back());
  }
  r.min_cosine = r.cosine.minCoeff();
  r.mean_cosine = r.cosine.mean();
  return r;
}

}  // namespace nnlift
