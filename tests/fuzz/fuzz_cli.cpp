// libFuzzer harness: the command-line parser (see cli_input.hpp).
// SPDX-License-Identifier: MIT
#include "cli_input.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) {
    return 0;
  }
  fuzz::parse_as_command_line(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
