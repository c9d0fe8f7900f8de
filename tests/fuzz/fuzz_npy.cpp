// libFuzzer harness: the .npy reader, and a round trip of what it accepts.
// SPDX-License-Identifier: MIT
#include <nnlift/npy.hpp>

#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > fuzz::kMaxInput) {
    return 0;
  }
  try {
    const nnlift::NpyArray a = nnlift::read_npy(fuzz::as_file(data, size));
    if (a.size() < 0 || static_cast<std::size_t>(a.size()) != a.data.size() || a.shape.empty() ||
        a.shape.size() > 3) {
      __builtin_trap();  // an accepted array is consistent with its shape
    }
  } catch (const nnlift::IoError&) {
  }
  return 0;
}
