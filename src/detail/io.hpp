// File helpers: bounded whole-file reads, output checks, and atomic writes (temporary + rename).
// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

namespace nnlift::detail {

/// Model files and tensors larger than this are refused before they are read (1 GiB).
constexpr std::uint64_t kMaxReadBytes = std::uint64_t{1} << 30;

/// The bytes of a regular file of at most `max_bytes`. Directories, FIFOs, devices and larger
/// files are refused before anything is read, so an endless stream cannot exhaust memory.
/// \throws IoError "path: <reason>".
std::string read_file(const std::string& path, std::uint64_t max_bytes = kMaxReadBytes);

/// The bytes of a regular file, read with pread into memory (no mapping: a file truncated while
/// it is read is an error, not SIGBUS). `check_prefix` sees the first bytes (up to 64 KiB)
/// before the rest is read, so that a binary file is refused before it fills memory.
/// \throws IoError "path: <reason>", including "file changed while reading".
std::string read_regular_file(const std::string& path,
                              const std::function<void(const std::string& prefix)>& check_prefix);

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

/// Calls write(stream) on a temporary file "NAME.nnlift-partial-PID" next to `path` (or next to
/// the target of a symlink at `path`), then renames it over that file. On any failure (including
/// an exception from write) the temporary is removed and the target is untouched. A character
/// device or FIFO at `path` is written through instead (it is never replaced).
/// \throws IoError naming path.
void write_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);

}  // namespace nnlift::detail
