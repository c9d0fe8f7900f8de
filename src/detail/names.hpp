// One name table per enum: to_string and parse are generated from it, so the two cannot drift.
// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace nnlift::detail {

template <class Enum>
struct EnumName {
  Enum value;
  const char* name;
};

/// The name of `value` in `table` ("unknown" if absent, which a complete table never is).
template <class Enum, std::size_t N>
const char* name_of(const EnumName<Enum> (&table)[N], Enum value) noexcept {
  for (const EnumName<Enum>& entry : table) {
    if (entry.value == value) {
      return entry.name;
    }
  }
  return "unknown";
}

/// The value named `name` in `table`; `aliases` may map further names. \throws
/// std::invalid_argument "unknown <what> 'name'; expected a, b or c".
template <class Enum, std::size_t N>
Enum parse_name(const EnumName<Enum> (&table)[N], const std::string& name, const char* what) {
  for (const EnumName<Enum>& entry : table) {
    if (name == entry.name) {
      return entry.value;
    }
  }
  std::string list;
  for (std::size_t i = 0; i < N; ++i) {
    list += (i == 0 ? "" : i + 1 == N ? " or " : ", ");
    list += table[i].name;
  }
  throw std::invalid_argument("unknown " + std::string(what) + " '" + name + "'; expected " + list);
}

}  // namespace nnlift::detail
