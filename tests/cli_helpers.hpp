// Running the command line in-process, for tests.
// SPDX-License-Identifier: MIT
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.hpp"

namespace test {

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

/// `nnlift args...` in-process: exit code, standard output and standard error.
inline Outcome run(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int code = nnlift::cli::run(args, out, err);
  return {code, out.str(), err.str()};
}

}  // namespace test
