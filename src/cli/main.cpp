// The nnlift executable: hands its arguments to nnlift::cli::run.
// SPDX-License-Identifier: MIT
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.hpp"

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  const std::vector<std::string> args(argv + 1, argv + argc);
  return nnlift::cli::run(args, std::cout, std::cerr);
}
