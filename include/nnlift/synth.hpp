// Planted ("teacher") two-layer networks and data drawn from them.
// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>

#include <nnlift/model.hpp>
#include <nnlift/types.hpp>

namespace nnlift {

/// Parameters of a planted data set.
struct SynthOptions {
  Index dim = 10;          ///< d input dimensions; >= 1
  Index hidden = 5;        ///< k hidden units; 1 <= k <= dim
  Index samples = 10000;   ///< n training rows; >= 1
  Index test_samples = 0;  ///< m test rows; >= 0
  Activation activation = Activation::Sigmoid;
  double bias_range = 1.0;  ///< hidden biases ~ U(−r, r); >= 0
  double noise = 0.0;       ///< regression label noise standard deviation σ; >= 0
  bool correlated = false;  ///< x ~ N(μ, Σ) with random μ and Σ instead of N(0, I)
  Task task = Task::Regression;
  std::uint64_t seed = 0;  ///< the same seed gives the same data, bit for bit
  int num_threads = 0;     ///< 0 = OpenMP default. The result does not depend on it.
};

/// \throws std::invalid_argument naming the first violated field.
void validate(const SynthOptions& options);

/// A planted network and data drawn from it.
struct SynthData {
  TwoLayerNetwork truth;   ///< the teacher; W1 rows have unit norm
  Vector input_mean;       ///< μ of the input distribution (zeros unless correlated)
  Matrix input_cov;        ///< Σ of the input distribution (identity unless correlated)
  Matrix X_train, X_test;  ///< n×d and m×d
  Vector y_train, y_test;
};

/// Draws a teacher and data. Teacher: W1 rows Gaussian then normalised to unit norm; b1 ~
/// U(−r, r); output weights ±U(0.5, 1.5) with alternating signs in a random order (so both signs
/// occur when k >= 2); b2 = 0.1. Inputs: N(0, I) or, with `correlated`, N(μ, Σ) with
/// μ ~ N(0, 0.5² I) and Σ = R diag(linspace(0.5, 2)) Rᵀ for a random rotation R.
/// Regression labels: f(x) + N(0, σ²). Classification: the teacher has a logistic output
/// link (b2 = 0), and y ~ Bernoulli(sigmoid(f(x))) in {0, 1}.
/// Rows are drawn in fixed blocks with generators seeded from (seed, block): parallel and
/// independent of the thread count. Cost O((n + m)·d·(d + k)).
SynthData make_synthetic(const SynthOptions& options);

}  // namespace nnlift
