// Planted two-layer networks and data drawn from them.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <numeric>

#include <Eigen/Cholesky>
#include <Eigen/QR>
#include <nlohmann/json.hpp>

#include <nnlift/synth.hpp>

#include "detail/check.hpp"
#include "detail/mixture_json.hpp"
#include "detail/names.hpp"
#include "detail/parallel.hpp"
#include "detail/rng.hpp"

namespace nnlift {

namespace {
const detail::EnumName<OutputWeights> kOutputWeightNames[] = {{OutputWeights::Mixed, "mixed"},
                                                              {OutputWeights::Positive, "positive"},
                                                              {OutputWeights::Ones, "ones"}};
}  // namespace

const detail::EnumName<InputLaw> kInputLawNames[] = {{InputLaw::Gaussian, "gaussian"},
                                                     {InputLaw::Uniform, "uniform"},
                                                     {InputLaw::Laplace, "laplace"},
                                                     {InputLaw::Mixture, "gmm"}};

const char* to_string(InputLaw law) noexcept { return detail::name_of(kInputLawNames, law); }

InputLaw parse_input_law(const std::string& name) {
  return detail::parse_name(kInputLawNames, name, "input law");
}

const char* to_string(OutputWeights weights) noexcept {
  return detail::name_of(kOutputWeightNames, weights);
}

OutputWeights parse_output_weights(const std::string& name) {
  return detail::parse_name(kOutputWeightNames, name, "output weights");
}
namespace {

constexpr Index kBlockRows = 4096;
constexpr std::uint64_t kStreamParameters = 0;
constexpr std::uint64_t kStreamTrain = 1;
constexpr std::uint64_t kStreamTest = 2;

// Draws `rows` samples of the planted model; block b uses the stream (seed, stream, b).
void draw_rows(const SynthOptions& o,
               const SynthData& s,
               const Matrix& L,
               std::uint64_t stream,
               Index rows,
               Matrix& X,
               Vector& y) {
  X.resize(rows, o.dim);
  y.resize(rows);
  // Mixture inputs: each component's Cholesky factor, and the cumulative weights.
  std::vector<Matrix> chol;
  Vector cumulative;
  if (o.inputs == InputLaw::Mixture) {
    for (const Matrix& S : s.input_mixture.covariances) {
      chol.push_back(Eigen::LLT<Matrix>(S).matrixL());
    }
    cumulative = s.input_mixture.weights;
    std::partial_sum(cumulative.begin(), cumulative.end(), cumulative.begin());
  }
  const Index num_blocks = (rows + kBlockRows - 1) / kBlockRows;
  detail::parallel_for(num_blocks, o.num_threads, [&](Index b) {
    detail::Rng rng(detail::derive_seed(o.seed, stream, static_cast<std::uint64_t>(b)));
    const Index begin = b * kBlockRows;
    const Index count = std::min(kBlockRows, rows - begin);
    Matrix G(count, o.dim);
    for (Index i = 0; i < count; ++i) {
      for (Index j = 0; j < o.dim; ++j) {
        if (o.inputs == InputLaw::Uniform) {
          G(i, j) = std::sqrt(3.0) * (2.0 * rng.uniform() - 1.0);
        } else if (o.inputs == InputLaw::Laplace) {
          const double u = rng.uniform() - 0.5;  // inverse CDF, scale 1/√2
          G(i, j) = -std::copysign(1.0, u) * std::log1p(-2.0 * std::abs(u)) / std::sqrt(2.0);
        } else {
          G(i, j) = rng.normal();
        }
      }
      if (o.inputs == InputLaw::Mixture) {  // a component, then its mean and covariance
        const double u = rng.uniform() * cumulative(cumulative.size() - 1);
        Index c = 0;
        while (c + 1 < cumulative.size() && u >= cumulative(c)) {
          ++c;
        }
        G.row(i) = s.input_mixture.means.row(c) +
                   (chol[static_cast<std::size_t>(c)] * G.row(i).transpose()).transpose();
      }
      if (o.ball_radius > 0) {  // uniform on the ball: uniform direction, radius R·U^(1/d)
        const double radius =
            o.ball_radius * std::pow(rng.uniform(), 1.0 / static_cast<double>(o.dim));
        G.row(i) *= radius / G.row(i).norm();
      }
    }
    Matrix Xb = o.correlated ? Matrix(G * L.transpose()) : G;
    if (o.correlated) {
      Xb.rowwise() += s.input_mean.transpose();
    }
    const Vector f = predict_value(s.truth, Xb).col(0);
    for (Index i = 0; i < count; ++i) {
      if (o.task == Task::Regression) {
        y(begin + i) = f(i) + (o.noise > 0 ? o.noise * rng.normal() : 0.0);
      } else {
        y(begin + i) = rng.uniform() < activate(Activation::Sigmoid, f(i)) ? 1.0 : 0.0;
      }
    }
    X.middleRows(begin, count) = Xb;
  });
}

// The input mixture of SynthOptions::mixture_components.
GaussianMixture draw_mixture(const SynthOptions& o, detail::Rng& rng) {
  const Index C = o.mixture_components, d = o.dim;
  GaussianMixture g;
  g.weights.resize(C);  // π_c ∝ c + 1: unequal weights make the inputs skewed
  for (Index c = 0; c < C; ++c) {
    g.weights(c) = static_cast<double>(c + 1);
  }
  g.weights /= g.weights.sum();
  g.means = rng.normal_matrix(C, d) * (o.mixture_separation / std::sqrt(static_cast<double>(d)));
  for (Index c = 0; c < C; ++c) {
    const Matrix R = Eigen::HouseholderQR<Matrix>(rng.normal_matrix(d, d)).householderQ();
    Vector v(d);
    for (Index j = 0; j < d; ++j) {
      v(j) = rng.uniform(0.2, 1.0);
    }
    Matrix S = R * v.asDiagonal() * R.transpose();
    g.covariances.push_back(0.5 * (S + S.transpose()));
  }
  return g;
}

}  // namespace

void validate(const SynthOptions& o) {
  const char* where = "SynthOptions";
  detail::require(o.dim >= 1, where, "dim", o.dim, ">= 1");
  detail::require(o.hidden >= 1, where, "hidden", o.hidden, ">= 1");
  detail::require(o.hidden <= o.dim, where, "hidden", o.hidden, "<= dim (k <= d)");
  detail::require(o.samples >= 1, where, "samples", o.samples, ">= 1");
  detail::require(o.test_samples >= 0, where, "test_samples", o.test_samples, ">= 0");
  detail::require(std::isfinite(o.bias_range) && o.bias_range >= 0,
                  where,
                  "bias_range",
                  o.bias_range,
                  "finite and >= 0");
  detail::require(std::isfinite(o.bias_offset), where, "bias_offset", o.bias_offset, "finite");
  detail::require(o.condition == 0 || (std::isfinite(o.condition) && o.condition >= 1),
                  where,
                  "condition",
                  o.condition,
                  "0 (Gaussian rows) or finite and >= 1");
  detail::require(std::isfinite(o.ball_radius) && o.ball_radius >= 0,
                  where,
                  "ball_radius",
                  o.ball_radius,
                  "finite and >= 0");
  detail::require(o.inputs == InputLaw::Gaussian || (!o.correlated && o.ball_radius == 0),
                  "SynthOptions",
                  "inputs",
                  to_string(o.inputs),
                  "gaussian when correlated or ball_radius is set (choose one input distribution)");
  detail::require(
      o.mixture_components >= 1, where, "mixture_components", o.mixture_components, ">= 1");
  detail::require(std::isfinite(o.mixture_separation) && o.mixture_separation >= 0,
                  where,
                  "mixture_separation",
                  o.mixture_separation,
                  "finite and >= 0");
  detail::require(!(o.correlated && o.ball_radius > 0),
                  where,
                  "ball_radius",
                  o.ball_radius,
                  "0 when correlated is set (choose one input distribution)");
  detail::require(
      std::isfinite(o.noise) && o.noise >= 0, where, "noise", o.noise, "finite and >= 0");
  detail::require(o.num_threads >= 0, where, "num_threads", o.num_threads, ">= 0");
}

SynthData make_synthetic(const SynthOptions& o) {
  validate(o);
  SynthData s;
  detail::Rng rng(detail::derive_seed(o.seed, kStreamParameters));
  const Index d = o.dim;
  const Index k = o.hidden;
  TwoLayerNetwork& net = s.truth;
  net.task = o.task;
  net.activation = o.activation;
  net.link = o.task == Task::Regression ? OutputLink::Identity : OutputLink::Logistic;
  for (Index j = 0; j < d; ++j) {
    net.inputs.push_back("x" + std::to_string(j + 1));
  }
  net.target = "y";
  net.W1 = rng.normal_matrix(k, d);
  if (o.condition > 0) {
    const Matrix U = Eigen::HouseholderQR<Matrix>(rng.normal_matrix(d, k)).householderQ() *
                     Matrix::Identity(d, k);
    const Matrix V = Eigen::HouseholderQR<Matrix>(rng.normal_matrix(k, k)).householderQ();
    Vector spectrum(k);
    for (Index j = 0; j < k; ++j) {
      spectrum(j) =
          k == 1 ? 1.0
                 : 1.0 + (o.condition - 1.0) * static_cast<double>(j) / static_cast<double>(k - 1);
    }
    net.W1 = (U * spectrum.asDiagonal() * V.transpose()).transpose();
  }
  for (Index j = 0; j < k; ++j) {
    net.W1.row(j).normalize();
  }
  net.b1.resize(k);
  for (Index j = 0; j < k; ++j) {
    net.b1(j) = o.bias_offset + rng.uniform(-o.bias_range, o.bias_range);
  }
  // Output weights: magnitudes U(0.5, 1.5), signs alternating, then shuffled (Fisher–Yates).
  std::vector<double> signs(static_cast<std::size_t>(k));
  for (Index j = 0; j < k; ++j) {
    signs[static_cast<std::size_t>(j)] = (j % 2 == 0) ? 1.0 : -1.0;
  }
  for (Index j = k - 1; j > 0; --j) {
    const auto r = static_cast<Index>(rng.uniform() * static_cast<double>(j + 1));
    std::swap(signs[static_cast<std::size_t>(j)], signs[static_cast<std::size_t>(std::min(r, j))]);
  }
  net.W2.resize(1, k);
  for (Index j = 0; j < k; ++j) {
    const double magnitude = rng.uniform(0.5, 1.5);
    switch (o.output_weights) {
      case OutputWeights::Mixed:
        net.W2(0, j) = signs[static_cast<std::size_t>(j)] * magnitude;
        break;
      case OutputWeights::Positive:
        net.W2(0, j) = magnitude;
        break;
      case OutputWeights::Ones:
        net.W2(0, j) = 1.0;
        break;
    }
  }
  net.b2 = Vector::Constant(1, o.task == Task::Regression ? 0.1 : 0.0);
  if (o.task == Task::Classification) {
    net.classes = {0.0, 1.0};
  }

  s.input_mean = Vector::Zero(d);
  s.input_cov = Matrix::Identity(d, d);
  Matrix L = Matrix::Identity(d, d);
  if (o.correlated) {
    for (Index j = 0; j < d; ++j) {
      s.input_mean(j) = 0.5 * rng.normal();
    }
    const Matrix R = Eigen::HouseholderQR<Matrix>(rng.normal_matrix(d, d)).householderQ();
    Vector spectrum(d);
    for (Index j = 0; j < d; ++j) {
      spectrum(j) = d == 1 ? 1.0 : 0.5 + 1.5 * static_cast<double>(j) / static_cast<double>(d - 1);
    }
    L = R * spectrum.cwiseSqrt().asDiagonal();
    s.input_cov = R * spectrum.asDiagonal() * R.transpose();
  }
  if (o.ball_radius > 0) {
    s.input_cov *= o.ball_radius * o.ball_radius / static_cast<double>(d + 2);
  }
  if (o.inputs == InputLaw::Mixture) {
    s.input_mixture = draw_mixture(o, rng);
    const GaussianMixture& g = s.input_mixture;
    s.input_mean = g.means.transpose() * g.weights;
    s.input_cov.setZero();
    for (Index c = 0; c < g.components(); ++c) {
      const Vector mu = g.means.row(c).transpose();
      s.input_cov +=
          g.weights(c) * (g.covariances[static_cast<std::size_t>(c)] + mu * mu.transpose());
    }
    s.input_cov -= s.input_mean * s.input_mean.transpose();
  }
  nlohmann::json meta;
  meta["generator"] = "nnlift synth";
  meta["seed"] = o.seed;
  meta["samples"] = o.samples;
  meta["test_samples"] = o.test_samples;
  meta["bias_range"] = o.bias_range;
  meta["noise"] = o.noise;
  meta["correlated"] = o.correlated;
  meta["inputs"] = to_string(o.inputs);
  if (o.inputs == InputLaw::Mixture) {
    meta["mixture_separation"] = o.mixture_separation;
    meta["input_mixture"] = detail::mixture_json(s.input_mixture);
  }
  if (o.ball_radius > 0) {
    meta["ball_radius"] = o.ball_radius;
  }
  if (o.condition > 0) {
    meta["condition"] = o.condition;
  }
  if (o.bias_offset != 0) {
    meta["bias_offset"] = o.bias_offset;
  }
  if (o.output_weights != OutputWeights::Mixed) {
    meta["output_weights"] = to_string(o.output_weights);
  }
  net.metadata_json = meta.dump();

  draw_rows(o, s, L, kStreamTrain, o.samples, s.X_train, s.y_train);
  draw_rows(o, s, L, kStreamTest, o.test_samples, s.X_test, s.y_test);
  return s;
}

Dataset training_set(const SynthData& data) {
  Dataset d;
  d.feature_names = data.truth.inputs;
  d.target_name = data.truth.target;
  d.X = data.X_train;
  d.y = data.y_train;
  return d;
}

}  // namespace nnlift
