// Experimental API: pieces of the library's internals that its developer tools (tools/) use and
// that are not yet a stable interface. They may change between minor versions.
//
// Portable, seedable random numbers: splitmix64 seed derivation, xoshiro256** and our own
// Box–Muller normals (std::normal_distribution differs between standard libraries). The library
// draws every random number from these, so a tool can reproduce its streams.
// SPDX-License-Identifier: MIT
#pragma once

#include <cmath>
#include <cstdint>

#include <nnlift/types.hpp>

namespace nnlift::experimental {

inline std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// A seed for the stream identified by (seed, a, b): distinct tuples give unrelated streams.
inline std::uint64_t derive_seed(std::uint64_t seed,
                                 std::uint64_t a,
                                 std::uint64_t b = 0) noexcept {
  std::uint64_t s = seed;
  std::uint64_t h = splitmix64(s);
  s = h ^ (a * 0xD1B54A32D192ED03ULL);
  h = splitmix64(s);
  s = h ^ (b * 0x8CB92BA72F3D8DD7ULL);
  return splitmix64(s);
}

class Rng {
 public:
  explicit Rng(std::uint64_t seed) noexcept {
    std::uint64_t s = seed;
    for (auto& word : m_s) {
      word = splitmix64(s);
    }
  }

  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(m_s[1] * 5, 7) * 9;
    const std::uint64_t t = m_s[1] << 17;
    m_s[2] ^= m_s[0];
    m_s[3] ^= m_s[1];
    m_s[1] ^= m_s[2];
    m_s[0] ^= m_s[3];
    m_s[2] ^= t;
    m_s[3] = rotl(m_s[3], 45);
    return result;
  }

  /// Uniform in [0, 1), 53 random bits.
  double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  /// Uniform in [lo, hi).
  double uniform(double lo, double hi) noexcept { return lo + (hi - lo) * uniform(); }

  /// Standard normal by Box–Muller (the second value of each pair is kept for the next call).
  double normal() noexcept {
    if (m_has_spare) {
      m_has_spare = false;
      return m_spare;
    }
    double u1 = uniform();
    while (u1 <= 0.0) {
      u1 = uniform();
    }
    const double u2 = uniform();
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = 6.283185307179586476925 * u2;
    m_spare = radius * std::sin(angle);
    m_has_spare = true;
    return radius * std::cos(angle);
  }

  /// A vector of independent standard normals.
  Vector normal_vector(Index size) {
    Vector v(size);
    for (Index i = 0; i < size; ++i) {
      v(i) = normal();
    }
    return v;
  }

  /// A rows×cols matrix of independent standard normals, filled column by column.
  Matrix normal_matrix(Index rows, Index cols) {
    Matrix m(rows, cols);
    for (Index j = 0; j < cols; ++j) {
      for (Index i = 0; i < rows; ++i) {
        m(i, j) = normal();
      }
    }
    return m;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t m_s[4]{};
  double m_spare = 0.0;
  bool m_has_spare = false;
};

}  // namespace nnlift::experimental
