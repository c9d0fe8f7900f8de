// Status names and the version string.
// SPDX-License-Identifier: MIT
#include <nnlift/types.hpp>

namespace nnlift {

const char* to_string(Status status) noexcept {
  switch (status) {
    case Status::Success:
      return "success";
    case Status::NotConverged:
      return "not-converged";
    case Status::NumericalIssue:
      return "numerical-issue";
    case Status::NotDefinite:
      return "not-definite";
  }
  return "unknown";
}

const char* version_string() noexcept { return "0.1.0"; }

}  // namespace nnlift
