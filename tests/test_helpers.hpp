// Shared test helpers: temporary folders, planted factors, matching up to sign and permutation.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unistd.h>  // getpid
#include <vector>

#include <Eigen/QR>

#include <nnlift/synth.hpp>
#include <nnlift/types.hpp>

#include "detail/rng.hpp"

namespace test {

using nnlift::Index;
using nnlift::Matrix;
using nnlift::Vector;

/// A fresh, empty folder under the system temp folder, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    m_path = std::filesystem::temp_directory_path() /
             ("nnlift_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(m_path);
    std::filesystem::create_directories(m_path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(m_path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (m_path / name).string(); }
  std::string path() const { return m_path.string(); }
  /// Names of the files in the folder, sorted.
  std::vector<std::string> list() const {
    std::vector<std::string> out;
    for (const auto& entry : std::filesystem::directory_iterator(m_path)) {
      out.push_back(entry.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::filesystem::path m_path;
};

/// A planted teacher: n training rows and `test_samples` held-out ones, noise 0.05.
inline nnlift::SynthData planted_teacher(Index d,
                                         Index k,
                                         Index n,
                                         std::uint64_t seed,
                                         Index test_samples,
                                         nnlift::Activation act = nnlift::Activation::Sigmoid,
                                         bool correlated = false) {
  nnlift::SynthOptions o;
  o.dim = d;
  o.hidden = k;
  o.samples = n;
  o.test_samples = test_samples;
  o.noise = 0.05;
  o.activation = act;
  o.correlated = correlated;
  o.seed = seed;
  return nnlift::make_synthetic(o);
}

/// `text` with its first `from` replaced by `to` (`from` must occur).
inline std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  if (at == std::string::npos) {
    throw std::logic_error("replaced: '" + from + "' does not occur");
  }
  return text.replace(at, from.size(), to);
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

/// d×k with orthonormal columns, from the QR of a seeded Gaussian matrix.
inline Matrix random_orthonormal(Index d, Index k, std::uint64_t seed) {
  nnlift::detail::Rng rng(seed);
  const Matrix G = rng.normal_matrix(d, k);
  return Eigen::HouseholderQR<Matrix>(G).householderQ() * Matrix::Identity(d, k);
}

/// d×k with unit, generally non-orthogonal columns.
inline Matrix random_unit_columns(Index d, Index k, std::uint64_t seed) {
  nnlift::detail::Rng rng(seed);
  Matrix G = rng.normal_matrix(d, k);
  G.colwise().normalize();
  return G;
}

/// d×k unit columns from U diag(linspace(1, kappa)) Wᵀ (U, W random orthonormal), normalised:
/// non-orthogonal with a controlled condition number (about kappa), as in ALGORITHM.md E4.
inline Matrix conditioned_unit_columns(Index d, Index k, double kappa, std::uint64_t seed) {
  const Matrix U = random_orthonormal(d, k, seed);
  const Matrix W = random_orthonormal(k, k, seed + 1);
  Matrix A = U * Vector::LinSpaced(k, 1.0, kappa).asDiagonal() * W.transpose();
  A.colwise().normalize();
  return A;
}

inline double abs_cosine(const Vector& a, const Vector& b) {
  return std::abs(a.dot(b)) / (a.norm() * b.norm());
}

/// Greedy matching of the columns of `estimate` to those of `truth` by |cosine|; returns, for
/// each truth column, the largest sign-aligned distance ‖truth_j − ±estimate_π(j)‖ over j.
/// `perm` receives π.
inline double max_column_error(const Matrix& truth,
                               const Matrix& estimate,
                               std::vector<Index>* perm = nullptr) {
  const Index k = truth.cols();
  std::vector<bool> used(static_cast<std::size_t>(estimate.cols()), false);
  std::vector<Index> match(static_cast<std::size_t>(k), -1);
  Matrix cosines(k, estimate.cols());
  for (Index i = 0; i < k; ++i) {
    for (Index j = 0; j < estimate.cols(); ++j) {
      cosines(i, j) = abs_cosine(truth.col(i), estimate.col(j));
    }
  }
  for (Index step = 0; step < k; ++step) {
    double best = -1;
    Index bi = -1, bj = -1;
    for (Index i = 0; i < k; ++i) {
      if (match[static_cast<std::size_t>(i)] >= 0) {
        continue;
      }
      for (Index j = 0; j < estimate.cols(); ++j) {
        if (!used[static_cast<std::size_t>(j)] && cosines(i, j) > best) {
          best = cosines(i, j);
          bi = i;
          bj = j;
        }
      }
    }
    match[static_cast<std::size_t>(bi)] = bj;
    used[static_cast<std::size_t>(bj)] = true;
  }
  double worst = 0;
  for (Index i = 0; i < k; ++i) {
    const Vector t = truth.col(i).normalized();
    const Vector e = estimate.col(match[static_cast<std::size_t>(i)]).normalized();
    worst = std::max(worst, std::min((t - e).norm(), (t + e).norm()));
  }
  if (perm != nullptr) {
    *perm = match;
  }
  return worst;
}

}  // namespace test

using test::Index;
using test::Matrix;
using test::Vector;
