// An exact sum of doubles: the same bits for any order, partition or thread count of the terms.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>

#include <nnlift/types.hpp>

namespace nnlift::detail {

/// Accumulates finite doubles exactly, as an integer multiple of 2^-1074 held in 32-bit limbs
/// (signed 64-bit accumulators with room for 2^30 additions between carries). Two sums merge
/// exactly (merge, or the limbs of several parts added as doubles: canonical limbs are integers
/// below 2^32). value() rounds the exact total by one fixed rule, so the same multiset of terms
/// gives the same double however it was split and ordered; a naive sum of the same terms depends
/// on their order in its last bits. Used where a sum over rows must not depend on how the rows
/// are spread over processes that were never aligned to blocks (the encoding's fill values).
class ExactSum {
 public:
  static constexpr int kLimbs = 68;  // 32·68 bits ≥ 1074 + 1024 + 53 + carry room

  /// Adds a finite value (NaN and infinities are the caller's to skip). From its bits: a normal
  /// value is M·2^(p − 1074) with M its 53-bit significand and p its biased exponent − 1, a
  /// subnormal one M·2^-1074.
  void add(double v) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    const auto biased = static_cast<int>((bits >> 52) & 0x7ffu);
    std::uint64_t M = bits & ((std::uint64_t{1} << 52) - 1);
    int p = 0;
    if (biased != 0) {
      M |= std::uint64_t{1} << 52;
      p = biased - 1;
    }
    const int limb = p >> 5, shift = p & 31;
    // M·2^shift < 2^85, in three 32-bit pieces.
    const std::uint64_t low = (M << shift) & 0xffffffffu;
    const std::uint64_t mid = (M >> (32 - shift)) & 0xffffffffu;
    const std::uint64_t high = shift == 0 ? 0 : M >> (64 - shift);
    const std::int64_t sign = (bits >> 63) != 0 ? -1 : 1;
    m_limbs[limb] += sign * static_cast<std::int64_t>(low);
    m_limbs[limb + 1] += sign * static_cast<std::int64_t>(mid);
    m_limbs[limb + 2] += sign * static_cast<std::int64_t>(high);
    if (++m_pending == (std::int64_t{1} << 30)) {
      normalize();
    }
  }

  /// Carries so that every limb but the top one is in [0, 2^32): the one representation of the
  /// total.
  void normalize() {
    for (int i = 0; i + 1 < kLimbs; ++i) {
      const std::int64_t carry =
          m_limbs[i] >= 0 ? m_limbs[i] >> 32 : -((-m_limbs[i] + 0xffffffff) >> 32);
      m_limbs[i] -= carry * (std::int64_t{1} << 32);
      m_limbs[i + 1] += carry;
    }
    m_pending = 0;
  }

  /// The canonical limbs as doubles (exact), for a reducer to add across parts.
  Vector limbs() {
    normalize();
    Vector out(kLimbs);
    for (int i = 0; i < kLimbs; ++i) {
      out(i) = static_cast<double>(m_limbs[i]);
    }
    return out;
  }

  /// The sum of several parts' limbs (each from limbs(), added as doubles: exact).
  static ExactSum from_limbs(const Vector& limbs) {
    ExactSum s;
    for (int i = 0; i < kLimbs; ++i) {
      s.m_limbs[i] = static_cast<std::int64_t>(limbs(i));
    }
    s.normalize();
    return s;
  }

  /// The total as a double: its magnitude's limbs from the most significant down, each added
  /// once. A fixed function of the exact total (within a few ulp of it).
  double value() const {
    ExactSum s = *this;
    s.normalize();
    // Below the top limb every limb is in [0, 2^32): the total is negative when the top one is.
    // Its magnitude is summed from non-negative limbs, without cancellation.
    const bool negative = s.m_limbs[kLimbs - 1] < 0;
    if (negative) {
      for (std::int64_t& limb : s.m_limbs) {
        limb = -limb;
      }
      s.normalize();
    }
    double total = 0;
    for (int i = kLimbs - 1; i >= 0; --i) {
      if (s.m_limbs[i] != 0) {
        total += std::ldexp(static_cast<double>(s.m_limbs[i]), 32 * i - 1074);
      }
    }
    return negative ? -total : total;
  }

 private:
  std::array<std::int64_t, kLimbs> m_limbs{};
  std::int64_t m_pending = 0;
};

}  // namespace nnlift::detail
