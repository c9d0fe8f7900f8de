// File helpers: whole-file reads and atomic writes (temporary name + rename).
// SPDX-License-Identifier: MIT
#pragma once

#include <functional>
#include <iosfwd>
#include <string>

namespace nnlift::detail {

/// The bytes of a file. \throws IoError "path: cannot open: <reason>".
std::string read_file(const std::string& path);

/// Calls write(stream) on a temporary file next to `path`, then renames it over `path`. On any
/// failure (including an exception from write) the temporary is removed and `path` is untouched.
/// \throws IoError naming path.
void write_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);

}  // namespace nnlift::detail
