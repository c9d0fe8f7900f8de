// Which columns of a table (a CSV file or a 2-D .npy file) are the target and the inputs.
// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <vector>

#include <nnlift/csv.hpp>

namespace nnlift::detail {

constexpr int kSkip = -1;    ///< a column not read
constexpr int kTarget = -2;  ///< the target column

/// Each column's role from the options (target, features, drop): kTarget, kSkip or its index
/// among the features. Sets out.target_name, out.feature_names and out.unused_columns.
/// \throws IoError naming `path` for an empty or repeated name, a name the table does not have
///         or no feature left; std::invalid_argument for contradictory options.
std::vector<int> choose_columns(const std::string& path,
                                const std::vector<std::string>& names,
                                const CsvOptions& options,
                                Dataset& out);

}  // namespace nnlift::detail
