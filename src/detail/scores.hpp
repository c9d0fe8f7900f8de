// What a block of labelled rows contributes to a classifier's scores, shared by score() and the
// streamed trainer's training loss. SPDX-License-Identifier: MIT
#pragma once

#include <vector>

#include <nnlift/model.hpp>

namespace nnlift::detail {

/// The label value of each class: net.classes, or 0 and 1 for a logistic model without them.
inline std::vector<double> class_values(const TwoLayerNetwork& net) {
  return net.classes.empty() ? std::vector<double>{0.0, 1.0} : net.classes;
}

/// The index of the class predicted for row i of p (as class_score_sums takes p): the second
/// class when a logistic model's probability is at least 1/2, else the most probable.
inline Index predicted_class(const TwoLayerNetwork& net, const Matrix& p, Index i) {
  if (net.link == OutputLink::Logistic) {
    return p(i, 0) >= 0.5 ? 1 : 0;
  }
  Index best = 0;
  p.row(i).maxCoeff(&best);
  return best;
}

/// [number correct; log-loss summed] of a classifier's predicted probabilities p (rows × 1 for
/// a logistic model, rows × c for softmax) against the class labels y (the values in
/// net.classes; a label outside them counts as wrong with probability 1e-15).
Matrix class_score_sums(const TwoLayerNetwork& net,
                        const Matrix& p,
                        const Eigen::Ref<const Vector>& y);

}  // namespace nnlift::detail
