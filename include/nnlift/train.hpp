// Training a two-layer network by the method of moments (NN-LIFT), without backpropagation.
// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nnlift/csv.hpp>
#include <nnlift/decompose.hpp>
#include <nnlift/model.hpp>
#include <nnlift/moments.hpp>

namespace nnlift {

/// How the first-layer biases are estimated once the directions are known.
enum class BiasMethod {
  Auto,   ///< lsq for regression (the more accurate on planted data), ratio for classification
  Ratio,  ///< moment-ratio estimator (ALGORITHM.md §4.4b): s κ2(b)/κ1(b) = c2/c1 per unit
  Lsq,    ///< least squares with fixed directions (§4.4c): L-BFGS on (b_j, s_j), output layer
          ///< solved in closed form at each step; starts from the ratio estimate. Regression only.
  Fourier,  ///< the paper's Procedure 2 (§4.4a): phase of the label's Fourier transform on a
            ///< cap of frequencies around each direction. Needs a constant input density on a
            ///< bounded support (uniform on a ball); under Gaussian inputs the estimator has no
            ///< finite mean, and train() warns when the inputs do not look uniform on a ball.
};
const char* to_string(BiasMethod method) noexcept;
/// \throws std::invalid_argument listing the accepted names.
BiasMethod parse_bias_method(const std::string& name);

/// Where the parameters start.
enum class Init {
  Tensor,  ///< the method-of-moments estimate (NN-LIFT)
  Random,  ///< random weights: with refine, plain backpropagation training (the baseline)
};
const char* to_string(Init init) noexcept;
/// \throws std::invalid_argument listing the accepted names.
Init parse_init(const std::string& name);

/// A report from a stage: its name and the fraction done. Called with 1 when each stage ends, and
/// with fractions in [0, 1) during the L-BFGS refinement (an upper bound: the share of the
/// iteration budget its loss evaluations have used).
using ProgressFn = std::function<void(const std::string& stage, double fraction)>;

struct TrainOptions {
  Index hidden = 0;                                ///< k hidden units, 1 <= k <= d (required)
  Activation activation = Activation::Sigmoid;     ///< sigmoid, tanh or softplus (not relu)
  Task task = Task::Regression;                    ///< classification: 0/1 labels, logistic output
  Residualize residualize = Residualize::Auto;     ///< control variate for the moments (§4.2b)
  DecomposeMethod method = DecomposeMethod::Auto;  ///< decomposition of the k×k×k core
  BiasMethod bias = BiasMethod::Auto;
  int hooi_sweeps = 10;            ///< HOOI sweeps at most (stops when the subspace settles)
  Init init = Init::Tensor;        ///< Random requires refine
  bool refine = false;             ///< L-BFGS on all parameters after the initial estimate
  int refine_iterations = 500;     ///< L-BFGS iterations at most; > 0
  double refine_tolerance = 1e-7;  ///< gradient-norm tolerance of L-BFGS; > 0
  double ridge = 1e-6;             ///< output-layer ridge, relative to trace(HᵀH/n)/k; >= 0
  double noise_threshold = 3.0;    ///< a unit is "within noise" if |λ_j| < this × noise_level
  double fourier_radius = 0.5;     ///< Fourier bias: frequency radius r (angular); > 0
  double fourier_cap = 0.3;        ///< Fourier bias: cap of unit directions within ε; (0, √2)
  /// Optional k×d first-layer directions (rows, original coordinates) to use instead of the
  /// tensor stage: for studying the bias and output steps on their own (reproduction E8).
  Matrix directions;
  std::uint64_t seed = 0;
  int num_threads = 0;  ///< 0 = OpenMP default. Results do not depend on this.
  ProgressFn progress;  ///< optional; called from the calling thread only
};

/// \throws std::invalid_argument naming the first violated field.
void validate(const TrainOptions& options);

struct StageTime {
  std::string name;
  double seconds = 0;
};

struct TrainResult {
  TwoLayerNetwork network;  ///< weights in the original input coordinates
  Status status = Status::NumericalIssue;
  std::string message;
  std::vector<StageTime> stages;  ///< wall time per stage, in order
  Vector lambda;                  ///< tensor weight λ_j per unit (standardised coordinates)
  double noise_level = 0;         ///< estimated spectral norm of the core tensor's noise
  std::vector<Index> weak_units;  ///< units with |λ_j| < noise_threshold × noise_level
  Residualize residualize_used = Residualize::None;
  BiasMethod bias_used = BiasMethod::Ratio;  ///< the bias estimator actually used
  bool quadratic_in_subspace =
      false;  ///< the core also used a quadratic control variate in z = Qᵀx
  DecomposeMethod route = DecomposeMethod::Auto;  ///< the decomposition route taken
  int hooi_sweeps = 0;
  double subspace_gap = 0;            ///< σ_k/σ_{k+1} of the last HOOI unfolding
  double decomposition_residual = 0;  ///< relative residual of the k×k×k core fit
  double train_loss = 0;              ///< regression: MSE; classification: log-loss
  double train_accuracy = 0;          ///< classification only
  int refine_iterations = 0;          ///< L-BFGS iterations done (0 without refinement)
  double loss_before_refine = 0;      ///< training loss of the initial estimate
  std::string refine_stopped;         ///< why L-BFGS stopped
  std::vector<std::string> warnings;
};

/// Trains f(x) = W2 σ(W1 x + b1) + b2 on a data set by NN-LIFT (ALGORITHM.md §4.7):
/// standardise; residualise the centred labels; top-k subspace of the data-backed third-order
/// score moment (M2 + random sketch, then HOOI); decompose the k×k×k core; map the directions
/// back; biases by the moment-ratio estimator; output layer by ridge regression (or logistic
/// regression for classification). No backpropagation anywhere, unless `refine` asks for a local
/// L-BFGS polish of all parameters (gradients by backpropagation); with init = Random that is
/// plain backpropagation training, the baseline NN-LIFT is compared against.
/// \throws std::invalid_argument for invalid options, k > d, ReLU, or a target that does not fit
///         the task; DataError for a singular input covariance or non-0/1 classification labels.
/// Threads: bitwise identical results for any num_threads.
TrainResult train(const Dataset& data, const TrainOptions& options);

}  // namespace nnlift
