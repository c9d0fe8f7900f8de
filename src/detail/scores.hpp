// What a block of labelled rows contributes to a classifier's scores, shared by score() and the
// streamed trainer's training loss. SPDX-License-Identifier: MIT
#pragma once

#include <nnlift/model.hpp>

namespace nnlift::detail {

/// [number correct; log-loss summed] of a classifier's predicted probabilities p (rows × 1 for
/// a logistic model, rows × c for softmax) against the class labels y (the values in
/// net.classes; a label outside them counts as wrong with probability 1e-15).
Matrix class_score_sums(const TwoLayerNetwork& net,
                        const Matrix& p,
                        const Eigen::Ref<const Vector>& y);

}  // namespace nnlift::detail
