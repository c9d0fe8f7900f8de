// Status names and the version string.
// SPDX-License-Identifier: MIT
#include <nnlift/types.hpp>

#include "detail/names.hpp"
#include "nnlift_version.hpp"

namespace nnlift {

namespace {
const detail::EnumName<Status> kStatusNames[] = {{Status::Success, "success"},
                                                 {Status::NotConverged, "not-converged"},
                                                 {Status::NumericalIssue, "numerical-issue"},
                                                 {Status::NotDefinite, "not-definite"}};
}  // namespace

const char* to_string(Status status) noexcept { return detail::name_of(kStatusNames, status); }

const char* version_string() noexcept { return NNLIFT_VERSION_STRING; }

}  // namespace nnlift
