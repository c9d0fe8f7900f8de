// A numeric data set: inputs, target and their column names.
// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <vector>

#include <nnlift/types.hpp>

namespace nnlift {

/// X is n×d (one row per sample), y the target column (empty if none).
struct Dataset {
  std::vector<std::string> feature_names;  ///< d names, the columns of X
  std::string target_name;                 ///< "" when read without a target
  Matrix X;
  Vector y;
  std::vector<std::string> unused_columns;  ///< columns of the source that were not read
  /// Text feature columns (CsvOptions::text_columns): text[j] holds column j's fields by row
  /// ("" for a missing value) and X's column j is NaN; empty for a numeric column (or all).
  std::vector<std::vector<std::string>> text;
  /// The target's fields by row when it was read as text (CsvOptions::text_target; "" for a
  /// missing value; y is NaN): class labels. Empty for a numeric target.
  std::vector<std::string> target_text;
};

}  // namespace nnlift
