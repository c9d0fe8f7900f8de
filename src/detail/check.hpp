// One wording for every argument check: "<Where>::<field> = <value>; must be <condition>".
// The library names API fields; the command line adds its own flag hints.
// SPDX-License-Identifier: MIT
#pragma once

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

#include <nnlift/types.hpp>

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

/// value >= lo.
template <class T>
void require_at_least(const T& value, const T& lo, const char* where, const char* field) {
  if (!(value >= lo)) {
    fail_field(where, field, value, (">= " + std::to_string(lo)).c_str());
  }
}

/// A field the library derives from another (`from`): it must keep its default, 0.
template <class T>
void require_derived(const T& value, const char* where, const char* field, const char* from) {
  if (value != T{}) {
    fail_field(where, field, value, (std::string("0 (derived from ") + from + ")").c_str());
  }
}

/// A finite value > 0.
inline void require_positive(double value, const char* where, const char* field) {
  require(std::isfinite(value) && value > 0, where, field, value, "finite and > 0");
}

/// A finite value >= 0.
inline void require_nonnegative(double value, const char* where, const char* field) {
  require(std::isfinite(value) && value >= 0, where, field, value, "finite and >= 0");
}

/// A rank (components, hidden units) that fits the dimension: 1 <= k <= d. `what` names the
/// caller ("decompose", "train").
inline void require_rank_fits(Index k, Index d, const char* what, const char* field) {
  if (k > d) {
    std::ostringstream msg;
    msg << what << ": " << field << " = " << k << " exceeds the dimension d = " << d
        << " (needs k <= d)";
    throw std::invalid_argument(msg.str());
  }
}

[[noreturn]] inline void fail(const std::string& message) { throw std::invalid_argument(message); }

}  // namespace nnlift::detail
