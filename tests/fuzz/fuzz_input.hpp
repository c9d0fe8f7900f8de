// Shared by the libFuzzer harnesses: the fuzzed bytes as a file, since the readers take paths.
// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace fuzz {

/// Inputs larger than this are skipped: a run must not spend its time (or gigabytes) on one.
constexpr std::size_t kMaxInput = 1 << 20;

/// Writes the bytes to a per-process file under /tmp and returns its path.
inline std::string as_file(const std::uint8_t* data, std::size_t size) {
  static const std::string path = "/tmp/nnlift-fuzz-" + std::to_string(::getpid());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f != nullptr) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  return path;
}

}  // namespace fuzz
