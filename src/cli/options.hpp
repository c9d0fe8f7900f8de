// Command-line parsing helpers shared by every command (Boost.Program_options).
// SPDX-License-Identifier: MIT
#pragma once

#include <iosfwd>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

namespace nnlift::cli {

namespace po = boost::program_options;

/// A bad command line: exit code 2 with a one-line hint.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Flags every command has.
struct CommonFlags {
  bool help = false;
  bool quiet = false;
  int threads = 0;
};

/// Adds --help, --quiet and (if with_threads) --threads to desc, bound to flags.
void add_common(po::options_description& desc, CommonFlags& flags, bool with_threads);

/// Parses args against desc. Prints "usage" and desc to out and returns false for --help;
/// otherwise checks required options and returns true.
/// \throws UsageError for unknown options, missing values, positional words or missing flags.
bool parse_command(const std::string& usage,
                   const std::vector<std::string>& args,
                   po::options_description& desc,
                   std::ostream& out);

/// Splits "a,b,c" into names (empty parts are an error naming the option).
std::vector<std::string> split_list(const std::string& text, const char* option);

}  // namespace nnlift::cli
