// The nnlift executable: hands its arguments to nnlift::cli::run.
// SPDX-License-Identifier: MIT
#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.hpp"

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  // Past a file-size limit (ulimit -f) a write then fails with EFBIG, which nnlift reports and
  // cleans up after, instead of the process being killed mid-write by SIGXFSZ.
  std::signal(SIGXFSZ, SIG_IGN);
  const std::vector<std::string> args(argv + 1, argv + argc);
  return nnlift::cli::run(args, std::cout, std::cerr);
}
