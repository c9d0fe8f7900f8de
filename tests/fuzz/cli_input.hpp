// The command-line parser as the fuzzer drives it: bytes split at newlines into arguments, parsed
// by the flag sets of `nnlift synth` and `nnlift train` and converted to options; nothing runs,
// so no file is written. Shared by the harness and the test that replays kept inputs.
// SPDX-License-Identifier: MIT
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "cli/flags.hpp"

namespace fuzz {

inline void parse_as_command_line(const std::string& bytes) {
  std::vector<std::string> args;
  std::string current;
  for (char c : bytes) {
    if (c == '\n') {
      args.push_back(current);
      current.clear();
    } else {
      current.push_back(c);
    }
  }
  args.push_back(current);
  namespace cli = nnlift::cli;
  std::ostringstream out;
  try {
    cli::SynthFlags synth;
    cli::CommonFlags common;
    cli::po::options_description desc("options");
    cli::add_synth_flags(desc, synth);
    cli::add_common(desc, common, true);
    if (cli::parse_command("usage", args, desc, out)) {
      (void)cli::to_synth_options(synth, common.threads);
    }
  } catch (const cli::UsageError&) {
  }
  try {
    cli::TrainFlags train;
    cli::CommonFlags common;
    cli::po::options_description desc("options");
    cli::add_train_flags(desc, train);
    cli::add_common(desc, common, true);
    if (cli::parse_command("usage", args, desc, out)) {
      (void)cli::to_train_options(train);
    }
  } catch (const cli::UsageError&) {
  }
}

}  // namespace fuzz
