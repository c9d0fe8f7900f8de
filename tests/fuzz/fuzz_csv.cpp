// libFuzzer harness: the CSV reader, with and without a target, with column choices; and, as
// train reads a file, with text columns, text labels and missing values detected and encoded.
// SPDX-License-Identifier: MIT
#include <cmath>
#include <stdexcept>

#include <nnlift/csv.hpp>
#include <nnlift/encoding.hpp>

#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > fuzz::kMaxInput) {
    return 0;
  }
  const std::string path = fuzz::as_file(data, size);
  for (int variant = 0; variant < 4; ++variant) {
    nnlift::CsvOptions options;
    options.num_threads = 1;
    options.has_target = variant != 1;
    options.reject_constant_features = variant == 2;
    if (variant == 2) {
      options.drop = {"a"};
    }
    if (variant == 3) {
      options.detect_text_columns = true;
      options.detect_text_target = true;
      options.allow_missing = true;
    }
    try {
      nnlift::Dataset d = nnlift::read_csv(path, options);
      const auto rows = static_cast<std::size_t>(d.X.rows());
      if (rows < 1 || (options.has_target && d.y.size() != d.X.rows())) {
        __builtin_trap();  // a successful read always has rows and a matching target
      }
      if (!d.target_text.empty() && d.target_text.size() != rows) {
        __builtin_trap();
      }
      for (const auto& column : d.text) {
        if (!column.empty() && column.size() != rows) {
          __builtin_trap();
        }
      }
      if (variant == 3) {
        nnlift::encode_text_target(d, path);
        nnlift::EncodeOptions encode;
        encode.missing = nnlift::MissingPolicy::Mean;
        const nnlift::Encoded e = nnlift::fit_encoding(d, encode, path);
        if (!e.data.X.allFinite() || e.data.y.hasNaN()) {
          __builtin_trap();  // filled inputs, and the rows without a target left out
        }
      }
    } catch (const nnlift::IoError&) {
    } catch (const nnlift::DataError&) {
    } catch (const std::invalid_argument&) {
    }
  }
  return 0;
}
