// Planted ("teacher") two-layer networks and data drawn from them.
// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>

#include <nnlift/dataset.hpp>
#include <nnlift/mixture.hpp>
#include <nnlift/model.hpp>
#include <nnlift/types.hpp>

namespace nnlift {

/// How the teacher's output weights are drawn.
enum class OutputWeights {
  Mixed,     ///< ±U(0.5, 1.5), signs alternating in a random order (both signs when k >= 2)
  Positive,  ///< +U(0.5, 1.5): with negative biases M2 is definite (the whitening route)
  Ones,      ///< all 1 (the teachers of Safran & Shamir and Zhong et al.)
};
/// "mixed", "positive", "ones".
const char* to_string(OutputWeights weights) noexcept;
/// \throws std::invalid_argument listing the accepted names.
OutputWeights parse_output_weights(const std::string& name);

/// Parameters of a planted data set.
/// Independent input coordinates of mean 0 and variance 1.
enum class InputLaw {
  Gaussian,  ///< N(0, 1)
  Uniform,   ///< U(−√3, √3): bounded, flat
  Laplace,   ///< Laplace(0, 1/√2): heavy-tailed, peaked
  Mixture,   ///< "gmm": a mixture of Gaussians (not independent coordinates; see SynthOptions)
};
const char* to_string(InputLaw law) noexcept;
/// \throws std::invalid_argument listing the accepted names.
InputLaw parse_input_law(const std::string& name);

struct SynthOptions {
  Index dim = 10;          ///< d input dimensions; >= 1
  Index hidden = 5;        ///< k hidden units; 1 <= k <= dim
  Index samples = 10000;   ///< n training rows; >= 1
  Index test_samples = 0;  ///< m test rows; >= 0
  Activation activation = Activation::Sigmoid;
  double bias_range = 1.0;   ///< hidden biases ~ bias_offset + U(−r, r); >= 0
  double bias_offset = 0.0;  ///< centre of the hidden biases (all equal to it when r = 0)
  OutputWeights output_weights = OutputWeights::Mixed;
  /// 0: W1 rows Gaussian. > 0: W1ᵀ = U diag(linspace(1, κ, k)) Vᵀ with U, V random
  /// orthonormal, then rows normalised; κ = 1 gives orthonormal rows. >= 1 when set.
  double condition = 0.0;
  double noise = 0.0;       ///< regression label noise standard deviation σ; >= 0
  bool correlated = false;  ///< x ~ N(μ, Σ) with random μ and Σ instead of N(0, I)
  /// > 0: x uniform on the ball of this radius around 0 (bounded inputs with a constant
  /// density, the setting of the Fourier bias estimator). Excludes `correlated`.
  double ball_radius = 0.0;
  /// The law of each input coordinate (independent, mean 0, variance 1): for studying score
  /// models on non-Gaussian inputs. Not Gaussian: excludes `correlated` and `ball_radius`.
  InputLaw inputs = InputLaw::Gaussian;
  /// With inputs = Mixture: C >= 1 components with weights ∝ 1, 2, ..., C (skewed inputs), means
  /// of norm about `mixture_separation` in random directions (Gaussian vectors of variance s²/d
  /// per coordinate), covariances R_c diag(v) R_cᵀ with random rotations R_c and v ~ U(0.2, 1).
  Index mixture_components = 3;
  double mixture_separation = 3.0;  ///< s >= 0; 0: every component centred at 0
  Task task = Task::Regression;
  std::uint64_t seed = 0;  ///< the same seed gives the same data, bit for bit
  int num_threads = 0;     ///< 0 = OpenMP default. The result does not depend on it.
};

/// \throws std::invalid_argument naming the first violated field.
void validate(const SynthOptions& options);

/// A planted network and data drawn from it.
struct SynthData {
  TwoLayerNetwork truth;  ///< the teacher; W1 rows have unit norm
  Vector input_mean;      ///< μ of the input distribution (zeros unless correlated)
  Matrix input_cov;       ///< Σ of the input distribution (R²/(d+2)·I on a ball of radius R)
  GaussianMixture input_mixture;  ///< the input density with inputs = Mixture, else empty
  Matrix X_train, X_test;         ///< n×d and m×d
  Vector y_train, y_test;
};

/// Draws a teacher and data. Teacher: W1 rows Gaussian (or conditioned, see `condition`) then
/// normalised to unit norm; b1 ~ offset + U(−r, r); output weights per `output_weights`;
/// b2 = 0.1. Inputs: N(0, I); with `correlated`, N(μ, Σ) with μ ~ N(0, 0.5² I) and
/// Σ = R diag(linspace(0.5, 2)) Rᵀ for a random rotation R; with `ball_radius`, uniform on a ball.
/// Regression labels: f(x) + N(0, σ²). Classification: the teacher has a logistic output
/// link (b2 = 0), and y ~ Bernoulli(sigmoid(f(x))) in {0, 1}.
/// Rows are drawn in fixed blocks with generators seeded from (seed, block): parallel and
/// independent of the thread count. Cost O((n + m)·d·(d + k)).
SynthData make_synthetic(const SynthOptions& options);

/// The training rows of planted data as a data set (the teacher's column names).
Dataset training_set(const SynthData& data);

}  // namespace nnlift
