// What a text column's values look like, as train's encoding (encoding.cpp) names them; describe
// says the same.
// SPDX-License-Identifier: MIT
#pragma once

#include <map>
#include <string>

#include <nnlift/types.hpp>

namespace nnlift::detail {

/// What the distinct values of a text column (value -> count) look like, in a few words: "dates",
/// "numbers written with a currency sign, thousands separators or a percent sign", "mostly
/// numbers", or "" for text that is none of these.
std::string text_column_kind(const std::map<std::string, Index>& counts);

}  // namespace nnlift::detail
