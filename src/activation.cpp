// Activation functions, their derivatives and their Gaussian moments κ_m(b; s).
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <Eigen/Eigenvalues>

#include <nnlift/activation.hpp>

#include "detail/activation_traits.hpp"

namespace nnlift {
namespace {

double logistic(double t) noexcept {
  if (t >= 0) {
    return 1.0 / (1.0 + std::exp(-t));
  }
  const double e = std::exp(t);
  return e / (1.0 + e);
}

// Probabilists' Gauss–Hermite rule (weight e^{-x²/2}/√(2π)) by Golub–Welsch: the nodes are the
// eigenvalues of the Jacobi matrix with off-diagonal √i, the weights the squared first
// components of its eigenvectors. Computed once; exact for polynomials of degree < 160.
struct GaussHermite {
  static constexpr int kNodes = 80;
  Vector nodes, weights;
  GaussHermite() {
    Matrix jacobi = Matrix::Zero(kNodes, kNodes);
    for (int i = 1; i < kNodes; ++i) {
      jacobi(i, i - 1) = jacobi(i - 1, i) = std::sqrt(static_cast<double>(i));
    }
    Eigen::SelfAdjointEigenSolver<Matrix> solver(jacobi);
    nodes = solver.eigenvalues();
    weights = solver.eigenvectors().row(0).transpose().array().square();
  }
};

const GaussHermite& gauss_hermite() {
  static const GaussHermite rule;
  return rule;
}

}  // namespace

namespace {

constexpr double kPi = 3.14159265358979323846;

// The Fourier phase ∠Σ̃(ξ) for ξ > 0, Σ̃(ξ) = ∫σ(t) e^{−iξt} dt (as a distribution): with m the
// smallest order for which σ^{(m)} is integrable, Σ̃(ξ) = F[σ^{(m)}](ξ) / (iξ)^m, and F[σ^{(m)}]
// is real and positive for these units: logistic and tanh (m = 1, σ' even, F[σ'](ξ) =
// πξ/sinh(πξ) resp. πξ/sinh(πξ/2)) give −π/2; softplus (m = 2, σ'' = logistic') gives π.
const detail::ActivationTraits kTraits[] = {
    {Activation::Sigmoid, "sigmoid", false, -kPi / 2, nullptr},
    {Activation::Tanh, "tanh", false, -kPi / 2, nullptr},
    {Activation::Softplus, "softplus", true, kPi, nullptr},
    {Activation::Relu,
     "relu",
     false,
     0.0,
     "a ReLU unit without bias has no third-order signal (E[relu'''(b + Z)] = -b phi(b) vanishes "
     "at b = 0, ALGORITHM.md §8.1), so NN-LIFT cannot see it; the fourth-order route is not "
     "implemented. Use sigmoid, tanh or softplus."},
};

}  // namespace

const detail::ActivationTraits& detail::traits(Activation activation) noexcept {
  for (const ActivationTraits& t : kTraits) {
    if (t.value == activation) {
      return t;
    }
  }
  return kTraits[0];
}

const char* to_string(Activation activation) noexcept { return detail::traits(activation).name; }

Activation parse_activation(const std::string& name) {
  if (name == "logistic") {
    return Activation::Sigmoid;
  }
  for (const detail::ActivationTraits& t : kTraits) {
    if (name == t.name) {
      return t.value;
    }
  }
  throw std::invalid_argument("unknown activation '" + name +
                              "'; expected sigmoid, tanh, softplus or relu");
}

double activation_derivative(Activation activation, int order, double t) {
  if (order < 0 || order > 3) {
    throw std::invalid_argument("activation_derivative: order = " + std::to_string(order) +
                                "; must be in [0, 3]");
  }
  switch (activation) {
    case Activation::Sigmoid: {
      const double s = logistic(t);
      const double ds = s * (1.0 - s);
      switch (order) {
        case 0:
          return s;
        case 1:
          return ds;
        case 2:
          return ds * (1.0 - 2.0 * s);
        default:
          return ds * (1.0 - 6.0 * s + 6.0 * s * s);
      }
    }
    case Activation::Tanh: {
      const double h = std::tanh(t);
      const double dh = 1.0 - h * h;
      switch (order) {
        case 0:
          return h;
        case 1:
          return dh;
        case 2:
          return -2.0 * h * dh;
        default:
          return -2.0 * dh * (1.0 - 3.0 * h * h);
      }
    }
    case Activation::Softplus:
      if (order == 0) {
        return std::max(t, 0.0) + std::log1p(std::exp(-std::abs(t)));
      }
      return activation_derivative(Activation::Sigmoid, order - 1, t);
    case Activation::Relu:
      if (order == 0) {
        return t > 0 ? t : 0.0;
      }
      return order == 1 ? (t > 0 ? 1.0 : 0.0) : 0.0;
  }
  return 0.0;
}

double activate(Activation activation, double t) noexcept {
  switch (activation) {
    case Activation::Sigmoid:
      return logistic(t);
    case Activation::Tanh:
      return std::tanh(t);
    case Activation::Softplus:
      return std::max(t, 0.0) + std::log1p(std::exp(-std::abs(t)));
    case Activation::Relu:
      return t > 0 ? t : 0.0;
  }
  return 0.0;
}

namespace {

// Eigen's vectorised exp and log over arrays of doubles, in chunks of fixed size (the last one
// padded): every entry takes the same instructions wherever it lies, so the same value gives the
// same bits in any block of rows, any row partition and any thread count. Each activation is
// built from them within a few ulp of activate() (glibc's scalar tanh, log1p and exp cost 5 to 10
// times as much: softplus's bias fit spent a third of its time in log1p).
constexpr Index kChunk = 16;
using ChunkArray = Eigen::Array<double, kChunk, 1>;

// The logistic 1/(1 + e^−t) is safe at both ends: Eigen's exp clamps its argument, so no inf/inf
// appears, and the result keeps its relative accuracy far into the lower tail.
ChunkArray logistic_chunk(const ChunkArray& t) { return (1.0 + (-t).exp()).inverse(); }

// log(1 + e) for e in [0, 1] by Goldberg's correction, log(u)·e/(u − 1) with u = 1 + e rounded:
// the rounding of u cancels, so tiny e keeps its relative accuracy (e where u rounds to 1).
// (Eigen's select is evaluated entry by entry: the logarithm is taken before it, vectorised.)
ChunkArray log1p_chunk(const ChunkArray& e) {
  const ChunkArray u = 1.0 + e;
  const ChunkArray corrected = u.log() * (e / (u - 1.0));
  return (u == 1.0).select(e, corrected);
}

// softplus(t) = max(t, 0) + log1p(e^−|t|), and its slope the logistic: 1/(1 + e) for t >= 0,
// e/(1 + e) below, with the same e.
void softplus_chunk(const ChunkArray& t, ChunkArray& value, ChunkArray& slope) {
  const ChunkArray e = (-t.abs()).exp();
  value = t.max(0.0) + log1p_chunk(e);
  slope = (t >= 0.0).select(1.0, e) / (1.0 + e);
}

// tanh(t) = −m/(2 + m) · sign(t), m = e^{−2|t|} − 1 by Kahan's expm1 (u = e^x rounded, then
// (u − 1)·x/log u), so that small |t| keeps its relative accuracy; m = −1 far out gives ±1.
ChunkArray tanh_chunk(const ChunkArray& t) {
  const ChunkArray x = -2.0 * t.abs();
  const ChunkArray u = x.exp();
  const ChunkArray um1 = u - 1.0;
  const ChunkArray corrected = um1 * (x / u.log());
  const ChunkArray m = (u == 1.0).select(x, (um1 == -1.0).select(-1.0, corrected));
  const ChunkArray h = -m / (2.0 + m);
  return (t < 0.0).select(-h, h);
}

// f(chunk) over `values` in chunks of kChunk entries, in place; the last chunk is padded with
// zeros and only its first entries are written back.
template <class F>
void by_chunks(double* values, Index size, F&& f) {
  Index i = 0;
  for (; i + kChunk <= size; i += kChunk) {
    Eigen::Map<ChunkArray> chunk(values + i);
    chunk = f(ChunkArray(chunk));
  }
  if (i < size) {
    ChunkArray t = ChunkArray::Zero();
    t.head(size - i) = Eigen::Map<const Eigen::ArrayXd>(values + i, size - i);
    Eigen::Map<Eigen::ArrayXd>(values + i, size - i) = f(t).head(size - i);
  }
}

// f(t, value, slope) over `values` (in place) and `slopes`, in the chunks of by_chunks.
template <class F>
void by_chunks_with_slope(double* values, double* slopes, Index size, F&& f) {
  ChunkArray t, value, slope;
  for (Index i = 0; i < size; i += kChunk) {
    const Index c = std::min(kChunk, size - i);
    t.setZero();
    t.head(c) = Eigen::Map<const Eigen::ArrayXd>(values + i, c);
    f(t, value, slope);
    Eigen::Map<Eigen::ArrayXd>(values + i, c) = value.head(c);
    Eigen::Map<Eigen::ArrayXd>(slopes + i, c) = slope.head(c);
  }
}

}  // namespace

void activate_inplace(Activation activation, Matrix& values) {
  double* p = values.data();
  const Index size = values.size();
  switch (activation) {
    case Activation::Sigmoid:
      by_chunks(p, size, logistic_chunk);
      return;
    case Activation::Tanh:
      by_chunks(p, size, tanh_chunk);
      return;
    case Activation::Softplus:
      by_chunks(p, size, [](const ChunkArray& t) -> ChunkArray {
        ChunkArray value, slope;
        softplus_chunk(t, value, slope);
        return value;
      });
      return;
    case Activation::Relu:
      break;
  }
  for (Index i = 0; i < size; ++i) {
    p[i] = activate(activation, p[i]);
  }
}

namespace detail {

void exp_inplace(double* values, Index size) {
  by_chunks(values, size, [](const ChunkArray& t) -> ChunkArray { return t.exp(); });
}

void activate_with_slope(Activation activation, Matrix& values, Matrix& slopes) {
  slopes.resize(values.rows(), values.cols());
  double* v = values.data();
  double* d = slopes.data();
  const Index size = values.size();
  switch (activation) {
    case Activation::Sigmoid:  // products round the same in vector and scalar code
      activate_inplace(activation, values);
      slopes.array() = values.array() * (1.0 - values.array());
      return;
    case Activation::Tanh:
      activate_inplace(activation, values);
      // (1 − σ)(1 + σ): no fused multiply-add can round it otherwise in scalar code
      slopes.array() = (1.0 - values.array()) * (1.0 + values.array());
      return;
    case Activation::Softplus:
      by_chunks_with_slope(v, d, size, softplus_chunk);
      return;
    case Activation::Relu:
      for (Index i = 0; i < size; ++i) {
        d[i] = activation_derivative(activation, 1, v[i]);
        v[i] = activate(activation, v[i]);
      }
  }
}

}  // namespace detail

double activation_moment(Activation activation, int order, double b, double s) {
  if (order < 0 || order > 3) {
    throw std::invalid_argument("activation_moment: order = " + std::to_string(order) +
                                "; must be in [0, 3]");
  }
  if (!(s > 0)) {
    throw std::invalid_argument("activation_moment: scale s = " + std::to_string(s) +
                                "; must be > 0");
  }
  if (activation == Activation::Relu) {
    // Closed forms: the distributional derivatives δ and δ' integrate against the density of
    // b + sZ, which is φ((t − b)/s)/s (ALGORITHM.md §3.2, §8.1).
    const double z = b / s;
    const double pdf = std::exp(-0.5 * z * z) / std::sqrt(2.0 * M_PI);
    const double cdf = 0.5 * std::erfc(-z / std::sqrt(2.0));
    switch (order) {
      case 0:
        return b * cdf + s * pdf;
      case 1:
        return cdf;
      case 2:
        return pdf / s;
      default:
        return -z * pdf / (s * s);
    }
  }
  const GaussHermite& rule = gauss_hermite();
  double sum = 0.0;
  for (Index i = 0; i < rule.nodes.size(); ++i) {
    sum += rule.weights(i) * activation_derivative(activation, order, b + s * rule.nodes(i));
  }
  return sum;
}

}  // namespace nnlift
