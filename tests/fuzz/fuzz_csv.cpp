// libFuzzer harness: the CSV reader, with and without a target, with column choices.
// SPDX-License-Identifier: MIT
#include <stdexcept>

#include <nnlift/csv.hpp>

#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > fuzz::kMaxInput) {
    return 0;
  }
  const std::string path = fuzz::as_file(data, size);
  for (int variant = 0; variant < 3; ++variant) {
    nnlift::CsvOptions options;
    options.num_threads = 1;
    options.has_target = variant != 1;
    options.reject_constant_features = variant == 2;
    if (variant == 2) {
      options.drop = {"a"};
    }
    try {
      const nnlift::Dataset d = nnlift::read_csv(path, options);
      if (d.X.rows() < 1 || (options.has_target && d.y.size() != d.X.rows())) {
        __builtin_trap();  // a successful read always has rows and a matching target
      }
    } catch (const nnlift::IoError&) {
    } catch (const nnlift::DataError&) {
    } catch (const std::invalid_argument&) {
    }
  }
  return 0;
}
