// File helpers: whole-file reads and atomic writes (temporary name + rename).
// SPDX-License-Identifier: MIT
#pragma once

#include <functional>
#include <iosfwd>
#include <string>

namespace nnlift::detail {

/// The bytes of a file. \throws IoError "path: cannot open: <reason>".
std::string read_file(const std::string& path);

/// A read-only memory map of a whole file (empty files map to an empty view).
class MappedFile {
 public:
  /// \throws IoError "path: cannot open: <reason>".
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const char* data() const noexcept { return m_data; }
  std::size_t size() const noexcept { return m_size; }

 private:
  const char* m_data = nullptr;
  std::size_t m_size = 0;
  void* m_map = nullptr;
};

/// Asks the kernel to back [data, data + bytes) with transparent huge pages where it can (a
/// large freshly allocated buffer then takes one page fault per 2 MB instead of per 4 KB).
/// A hint only: does nothing where unsupported.
void advise_huge_pages(void* data, std::size_t bytes) noexcept;

/// Calls write(stream) on a temporary file next to `path`, then renames it over `path`. On any
/// failure (including an exception from write) the temporary is removed and `path` is untouched.
/// \throws IoError naming path.
void write_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);

}  // namespace nnlift::detail
