// Small collective exchanges between the parts of a RowReducer: strings, messages, counts.
// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <vector>

#include <nnlift/execution.hpp>

namespace nnlift::detail {

/// Every part's strings, in part order (each part's in its own order); every part receives all.
/// Collective.
std::vector<std::string> gather_strings(const RowReducer& reducer,
                                        const std::vector<std::string>& mine);

/// The first non-empty message of all parts (lowest part first), on every part; "" if none.
/// Collective.
std::string first_message(const RowReducer& reducer, const std::string& mine);

/// The sums over all parts of counts (integers below 2^53, so exact in any order). Collective.
Vector sum_counts(const RowReducer& reducer, const Vector& mine);

}  // namespace nnlift::detail
