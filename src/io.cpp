// File helpers: whole-file reads and atomic writes.
// SPDX-License-Identifier: MIT
#include "detail/io.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include <nnlift/types.hpp>

namespace nnlift::detail {

std::string read_file(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    throw IoError(path + ": cannot open: " + std::strerror(errno));
  }
  std::string bytes;
  if (std::fseek(file, 0, SEEK_END) == 0) {
    const long size = std::ftell(file);
    if (size > 0) {
      bytes.resize(static_cast<std::size_t>(size));
    }
    std::rewind(file);
  }
  std::size_t got = bytes.empty() ? 0 : std::fread(bytes.data(), 1, bytes.size(), file);
  bytes.resize(got);
  // Streams without a known size (pipes): read the rest in chunks.
  char buffer[1 << 16];
  std::size_t more = 0;
  while ((more = std::fread(buffer, 1, sizeof buffer, file)) > 0) {
    bytes.append(buffer, more);
  }
  const bool failed = std::ferror(file) != 0;
  std::fclose(file);
  if (failed) {
    throw IoError(path + ": read error");
  }
  return bytes;
}

void write_atomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
  const std::string temp = path + ".tmp-" + std::to_string(static_cast<long>(::getpid()));
  try {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) {
      throw IoError(path + ": cannot write: " + std::strerror(errno));
    }
    write(out);
    out.flush();
    if (!out) {
      throw IoError(path + ": write failed (disk full?)");
    }
    out.close();
    if (std::rename(temp.c_str(), path.c_str()) != 0) {
      throw IoError(path + ": cannot rename temporary file: " + std::strerror(errno));
    }
  } catch (...) {
    std::remove(temp.c_str());
    throw;
  }
}

}  // namespace nnlift::detail
