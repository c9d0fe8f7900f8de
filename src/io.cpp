// File helpers: whole-file reads and atomic writes.
// SPDX-License-Identifier: MIT
#include "detail/io.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/mman.h>
#include <sys/stat.h>
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

MappedFile::MappedFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    throw IoError(path + ": cannot open: " + std::strerror(errno));
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    throw IoError(path + ": cannot open: not a regular file");
  }
  m_size = static_cast<std::size_t>(info.st_size);
  if (m_size > 0) {
    // MAP_POPULATE faults the whole file in at once: far cheaper than one fault per page.
    m_map = ::mmap(nullptr, m_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (m_map == MAP_FAILED) {
      m_map = nullptr;
      ::close(fd);
      throw IoError(path + ": cannot map: " + std::strerror(errno));
    }
    ::madvise(m_map, m_size, MADV_SEQUENTIAL);
    m_data = static_cast<const char*>(m_map);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (m_map != nullptr) {
    ::munmap(m_map, m_size);
  }
}

void advise_huge_pages(void* data, std::size_t bytes) noexcept {
#ifdef MADV_HUGEPAGE
  const std::size_t page = 4096;
  const auto start = (reinterpret_cast<std::uintptr_t>(data) + page - 1) / page * page;
  const auto stop = (reinterpret_cast<std::uintptr_t>(data) + bytes) / page * page;
  if (stop > start) {
    ::madvise(reinterpret_cast<void*>(start), stop - start, MADV_HUGEPAGE);
  }
#else
  (void)data;
  (void)bytes;
#endif
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
