// libFuzzer harness: the model loader, then a prediction with what it accepts.
// SPDX-License-Identifier: MIT
#include <stdexcept>

#include <nnlift/model.hpp>

#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > fuzz::kMaxInput) {
    return 0;
  }
  try {
    const nnlift::TwoLayerNetwork net = nnlift::load_model(fuzz::as_file(data, size));
    // An accepted model is valid and predicts finite values on a small input (bounded: a
    // loaded model's layers fit in the file).
    const nnlift::Matrix p = nnlift::predict(net, nnlift::Matrix::Zero(2, net.num_inputs()));
    if (p.rows() != 2) {
      __builtin_trap();
    }
  } catch (const nnlift::IoError&) {
  }
  return 0;
}
