// libFuzzer harness: the command-line parser. The input is split at newlines into arguments
// and parsed by the flag sets of `nnlift synth` and `nnlift train` (and the option checks of
// every command); nothing is run, so no file is written.
// SPDX-License-Identifier: MIT
#include <sstream>

#include "cli/flags.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) {
    return 0;
  }
  std::vector<std::string> args;
  std::string current;
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == '\n') {
      args.push_back(current);
      current.clear();
    } else {
      current.push_back(static_cast<char>(data[i]));
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
  return 0;
}
