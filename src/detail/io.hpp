// File helpers: bounded whole-file reads, output checks, and atomic writes (temporary + rename).
// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <limits>
#include <string>
#include <vector>

#include <nnlift/types.hpp>

namespace nnlift::detail {

/// Model files and tensors larger than this are refused before they are read (1 GiB).
constexpr std::uint64_t kMaxReadBytes = std::uint64_t{1} << 30;

/// The bytes of a regular file of at most `max_bytes`. Directories, FIFOs, devices and larger
/// files are refused before anything is read, so an endless stream cannot exhaust memory.
/// \throws IoError "path: <reason>".
std::string read_file(const std::string& path, std::uint64_t max_bytes = kMaxReadBytes);

/// A regular file open for reading at offsets (pread). Directories, FIFOs and devices are
/// refused when it is opened (a FIFO without a writer does not block). A read past the end of
/// the file as it was when opened means the file changed: an IoError, never a signal.
class ReadOnlyFile {
 public:
  /// \throws IoError "path: <reason>", also for a file larger than max_bytes.
  explicit ReadOnlyFile(const std::string& path,
                        std::uint64_t max_bytes = std::numeric_limits<std::uint64_t>::max());
  ~ReadOnlyFile();
  ReadOnlyFile(const ReadOnlyFile&) = delete;
  ReadOnlyFile& operator=(const ReadOnlyFile&) = delete;

  /// The size when opened.
  std::uint64_t size() const noexcept { return m_size; }
  /// Reads [offset, offset + count) into out. Safe to call from several threads.
  /// \throws IoError "path: file changed while reading" when the file has become shorter.
  void read_at(std::uint64_t offset, std::size_t count, char* out) const;
  /// \throws IoError "path: file changed while reading" unless the size is still the same.
  void check_unchanged() const;

 private:
  std::string m_path;
  int m_fd = -1;
  std::uint64_t m_size = 0;
};

/// Checks, before any work is done, that every output can be written and that no output is the
/// same file as an input or as another output (same device and inode, or the same path once
/// resolved). An output that does not exist needs an existing, writable directory; one that
/// exists may be a regular file (replaced atomically), a symlink to one (its target is replaced),
/// or a character device or FIFO (written through, e.g. /dev/stdout); a directory is refused.
/// Empty paths are ignored. \throws IoError naming the path.
void check_paths(const std::vector<std::string>& inputs, const std::vector<std::string>& outputs);

/// Asks the kernel to back [data, data + bytes) with transparent huge pages where it can (a
/// large freshly allocated buffer then takes one page fault per 2 MB instead of per 4 KB).
/// A hint only: does nothing where unsupported.
void advise_huge_pages(void* data, std::size_t bytes) noexcept;
/// The same for a matrix's storage, before its first touch.
inline void advise_huge_pages(Matrix& m) noexcept {
  advise_huge_pages(m.data(), static_cast<std::size_t>(m.size()) * sizeof(double));
}

/// Calls write(stream) on a temporary file "NAME.nnlift-partial-PID" next to `path` (or next to
/// the target of a symlink at `path`), then renames it over that file. On any failure (including
/// an exception from write) the temporary is removed and the target is untouched. A character
/// device or FIFO at `path` is written through instead (it is never replaced).
/// \throws IoError naming path.
void write_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);

}  // namespace nnlift::detail
