// libFuzzer harness: the .npy reader (whole, and in row blocks as a table), and the consistency
// of what it accepts.
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
  try {
    // The block reader of data larger than memory: whatever it accepts reads back whole, as a
    // table and as its first and last rows.
    const std::string path = fuzz::as_file(data, size);
    const nnlift::NpyRows rows(path);
    if (rows.rows() < 0 || rows.cols() < 0) {
      __builtin_trap();
    }
    if (rows.rows() > 0 && rows.cols() > 0) {
      nnlift::Matrix block;
      rows.read(rows.rows() - 1, 1, block);
      rows.read(0, 1, block);
      if (block.rows() != 1 || block.cols() != rows.cols()) {
        __builtin_trap();
      }
      if (rows.cols() >= 2) {
        nnlift::CsvOptions all;
        all.allow_missing = true;
        (void)nnlift::read_npy_dataset(path, all);
      }
    }
  } catch (const nnlift::IoError&) {
  } catch (const nnlift::DataError&) {
  } catch (const std::out_of_range&) {
  }
  return 0;
}
