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

/// The per-process file under /tmp that holds the current input; removed when the fuzzer exits
/// normally (at the end of -runs or -max_total_time), kept after a crash.
class InputFile {
 public:
  InputFile() : path_("/tmp/nnlift-fuzz-" + std::to_string(::getpid())) {}
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Writes the bytes to the per-process file under /tmp and returns its path.
inline std::string as_file(const std::uint8_t* data, std::size_t size) {
  static const InputFile file;
  std::FILE* f = std::fopen(file.path().c_str(), "wb");
  if (f != nullptr) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  return file.path();
}

}  // namespace fuzz
