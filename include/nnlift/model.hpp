// The two-layer network and its JSON model file (docs/model-format.md).
// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <vector>

#include <nnlift/activation.hpp>
#include <nnlift/encoding.hpp>
#include <nnlift/input_map.hpp>
#include <nnlift/types.hpp>

namespace nnlift {

/// What the network predicts.
enum class Task { Regression, Classification };

/// How the output layer's affine value becomes a prediction.
enum class OutputLink {
  Identity,  ///< regression: the value itself
  Logistic,  ///< binary classification: P(y = 1 | x) = 1/(1+e^{-value})
  Softmax,   ///< several classes: softmax over the outputs
};

const char* to_string(Task task) noexcept;
const char* to_string(OutputLink link) noexcept;
/// \throws std::invalid_argument for anything but "regression" or "classification".
Task parse_task(const std::string& name);

/// f(x) = W2 σ(W1 m(x) + b1) + C m(x) + b2 (m the input map, the identity by default, of x
/// clamped to the training range when the network has one), then the output link, with weights
/// in the ORIGINAL input coordinates: prediction needs nothing else.
struct TwoLayerNetwork {
  Task task = Task::Regression;
  Activation activation = Activation::Sigmoid;
  OutputLink link = OutputLink::Identity;
  std::vector<std::string> inputs;  ///< d input column names, the order of W1's columns
  std::string target;               ///< target column name
  Matrix W1;                        ///< k×d: row j holds hidden unit j's weights
  Vector b1;                        ///< k hidden biases
  Matrix W2;                        ///< c×k output weights (c = 1 for regression and binary)
  Vector b2;                        ///< c output biases
  Matrix C;                         ///< c×d linear term (empty: none)
  std::vector<double> classes;      ///< classification: the label value of each class
  /// Classification from text labels: the label of each class, in the order of `classes`
  /// (whose values are then the codes 0, 1, ...); empty: the labels are the numbers in classes.
  /// The command line prints and reads these; the library works with the codes.
  std::vector<std::string> class_names;
  /// How raw CSV columns become `inputs` (categories, missing values); empty: inputs are raw
  /// numeric columns. The library's predict() takes encoded inputs; the command line applies it.
  InputEncoding encoding;
  /// Applied to x before the network (the rank-Gauss score model); empty: none. W1 and C act on
  /// the mapped inputs.
  RankGaussMap input_map;
  /// Bounds on each input (d each; both empty: none): inputs are clamped to [input_low,
  /// input_high] before anything else. nnlift train sets them to the training rows' range
  /// widened by its own width on each side (TrainOptions::clamp_inputs): the linear term and
  /// the units' slopes, fitted where there were rows, extrapolate no further than that.
  Vector input_low, input_high;
  std::string metadata_json = "{}";  ///< provenance and diagnostics (a JSON object), kept as is

  Index num_inputs() const noexcept { return W1.cols(); }
  Index num_hidden() const noexcept { return W1.rows(); }
  Index num_outputs() const noexcept { return W2.rows(); }
};

/// Checks shapes (W1 k×d, b1 k, W2 c×k, b2 c, C empty or c×d, inputs d names, unique), finiteness
/// and that the link fits the task. \throws std::invalid_argument naming the culprit.
void validate(const TwoLayerNetwork& network);

/// Hidden activations σ(X W1ᵀ + 1 b1ᵀ), n×k. X is n×d in the network's input order.
Matrix hidden_layer(const TwoLayerNetwork& network, const Matrix& X);

/// The affine outputs X ↦ W2 σ(W1 x + b1) + C x + b2 before the link, n×c.
Matrix predict_value(const TwoLayerNetwork& network, const Matrix& X);

/// Predictions after the link: values (regression) or class probabilities (n×c; for the
/// logistic link the probability of the second class).
/// \throws std::invalid_argument if X has the wrong number of columns.
Matrix predict(const TwoLayerNetwork& network, const Matrix& X);

/// Writes the model file atomically (temporary file + rename). Doubles are written so that
/// they read back bit for bit. \throws std::invalid_argument for an invalid network or
/// metadata that is not a JSON object; IoError on I/O failure.
void save_model(const std::string& path, const TwoLayerNetwork& network);

/// Reads and validates a model file.
/// \throws IoError naming the file and the offending key for a missing file, malformed JSON, a
///         wrong "format" or unsupported "version", a missing key, wrong shapes or types.
TwoLayerNetwork load_model(const std::string& path);

}  // namespace nnlift
