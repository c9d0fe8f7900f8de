// libFuzzer harness: the whole tool on a fuzzed CSV file, `nnlift train` with flags chosen by the
// first byte and then `predict` and `evaluate` with the model it wrote (see train_input.hpp).
// SPDX-License-Identifier: MIT
#include <cstdio>

#include "fuzz_input.hpp"
#include "train_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 8192) {
    return 0;  // a few hundred rows at most: each input trains a network
  }
  const std::string broken =
      fuzz::train_on_bytes(std::string(reinterpret_cast<const char*>(data), size));
  if (!broken.empty()) {
    std::fprintf(stderr, "fuzz_train: %s\n", broken.c_str());
    __builtin_trap();
  }
  return 0;
}
