// One wording for every argument check: "<where>: <what> = <value>; must be <condition>".
// SPDX-License-Identifier: MIT
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace nnlift::detail {

template <class T>
[[noreturn]] void fail_field(const char* where,
                             const char* field,
                             const T& value,
                             const char* condition) {
  std::ostringstream msg;
  msg << where << "::" << field << " = " << value << "; must be " << condition;
  throw std::invalid_argument(msg.str());
}

/// Throws "Where::field = value; must be condition" unless ok.
template <class T>
void require(bool ok, const char* where, const char* field, const T& value, const char* condition) {
  if (!ok) {
    fail_field(where, field, value, condition);
  }
}

[[noreturn]] inline void fail(const std::string& message) { throw std::invalid_argument(message); }

}  // namespace nnlift::detail
