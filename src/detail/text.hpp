// Text for messages: lists of names, bounded so that a file with a million columns does not make
// a million-name message.
// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <vector>

namespace nnlift::detail {

/// "a, b, c", or the first `shown` names and "... (N more)".
inline std::string name_list(const std::vector<std::string>& names, std::size_t shown = 20) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < shown; ++i) {
    out += (i ? ", " : "") + names[i];
  }
  if (names.size() > shown) {
    out += ", ... (" + std::to_string(names.size() - shown) + " more)";
  }
  return out;
}

}  // namespace nnlift::detail
