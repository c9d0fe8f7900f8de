// Local refinement of all network parameters by L-BFGS on the full-batch loss (backpropagation).
// SPDX-License-Identifier: MIT
#pragma once

#include <functional>

#include <nnlift/model.hpp>
#include <nnlift/moments.hpp>

namespace nnlift::detail {

struct RefineReport {
  int iterations = 0;
  double loss_before = 0;  ///< regression: MSE; classification: log-loss
  double loss_after = 0;
  std::string stopped;  ///< why L-BFGS stopped
};

/// Minimises the mean squared error (identity link), the logistic loss (logistic link) or the
/// softmax cross-entropy (softmax link) over (W1, b1, W2, b2) with L-BFGS, from `net` (original
/// coordinates). `targets` is n×c: the labels (c = 1; 0/1 for the logistic link) or one-hot
/// classes (softmax). Works on standardised inputs
/// Xs = (X − μ)W for good scaling and maps the result back. Gradients by backpropagation, summed
/// over row blocks by `reducer` (deterministic for any thread count). `progress`, if set, is
/// called from the calling thread after each loss evaluation with a fraction in [0, 1).
RefineReport refine_lbfgs(const Matrix& Xs,
                          const Matrix& targets,
                          const Standardizer& st,
                          int max_iterations,
                          double tolerance,
                          const RowReducer& reducer,
                          TwoLayerNetwork& net,
                          const std::function<void(double)>& progress = {});

}  // namespace nnlift::detail
