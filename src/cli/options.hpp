// Command-line parsing helpers shared by every command (Boost.Program_options).
// SPDX-License-Identifier: MIT
#pragma once

#include <iosfwd>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <boost/program_options.hpp>

namespace nnlift::cli {

namespace po = boost::program_options;

/// A bad command line: exit code 2 with a one-line hint.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The largest --threads accepted.
constexpr int kMaxThreads = 1024;

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

namespace nnlift::cli {

/// A default value as a user would write it: 0.3, 1e-06 (not 0.29999999999999999).
template <class T>
po::typed_value<T>* with_default(T* target) {
  std::ostringstream text;
  text << *target;
  return po::value(target)->default_value(*target, text.str());
}

/// `message` with each library field name replaced by its flag: "TrainOptions::hidden = 0; must
/// be >= 1" → "--hidden = 0; must be >= 1". Names are tried longest first.
std::string with_flag_names(std::string message,
                            const std::vector<std::pair<std::string, std::string>>& names);

}  // namespace nnlift::cli
