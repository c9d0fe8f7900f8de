// Small statistics shared by the developer programs.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <vector>

namespace tools {

/// The median (mean of the middle two for an even count). \pre v is not empty.
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

}  // namespace tools
