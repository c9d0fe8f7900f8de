// File helpers: bounded reads, output checks, atomic writes.
// SPDX-License-Identifier: MIT
#include "detail/io.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <limits>
#include <sstream>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nnlift/types.hpp>

namespace nnlift::detail {
namespace {

std::string describe_kind(mode_t mode) {
  if (S_ISDIR(mode)) {
    return "is a directory, not a file";
  }
  if (S_ISFIFO(mode)) {
    return "is a FIFO (pipe), not a regular file: its size is unknown";
  }
  if (S_ISCHR(mode) || S_ISBLK(mode)) {
    return "is a device, not a regular file";
  }
  if (S_ISSOCK(mode)) {
    return "is a socket, not a regular file";
  }
  return "is not a regular file";
}

struct FileId {
  bool exists = false;
  dev_t device = 0;
  ino_t inode = 0;
  mode_t mode = 0;
};

FileId identify(const std::string& path) {
  FileId id;
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0) {
    id.exists = true;
    id.device = info.st_dev;
    id.inode = info.st_ino;
    id.mode = info.st_mode;
  }
  return id;
}

// The directory part of a path ("." when there is none).
std::string directory_of(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) {
    return ".";
  }
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Where writes to `path` land: the target of a symlink, else the path itself.
std::string resolve_output(const std::string& path) {
  struct stat link {};
  if (::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
    char buffer[PATH_MAX];
    if (::realpath(path.c_str(), buffer) == nullptr) {
      throw IoError(path +
                    ": is a symlink whose target cannot be resolved: " + std::strerror(errno));
    }
    return buffer;
  }
  return path;
}

// An absolute, normalised form of a path that may not exist yet (its directory must).
std::string absolute_output(const std::string& path) {
  char buffer[PATH_MAX];
  const std::string dir = directory_of(path);
  if (::realpath(dir.c_str(), buffer) == nullptr) {
    return path;
  }
  const std::size_t slash = path.find_last_of('/');
  return std::string(buffer) + "/" + (slash == std::string::npos ? path : path.substr(slash + 1));
}

// Throws unless `out` (resolved to `target`, described by `id`) can be written: an existing
// regular file, device or FIFO, or a new file in an existing, writable directory.
void check_writable(const std::string& out, const std::string& target, const FileId& id) {
  if (id.exists) {
    if (S_ISDIR(id.mode)) {
      throw IoError(out + ": is a directory; give a file name for the output");
    }
    if (!S_ISREG(id.mode) && !S_ISCHR(id.mode) && !S_ISFIFO(id.mode)) {
      throw IoError(out + ": " + describe_kind(id.mode) + "; refusing to write to it");
    }
    if (S_ISREG(id.mode) && ::access(directory_of(target).c_str(), W_OK) != 0) {
      throw IoError(out + ": cannot write in its directory '" + directory_of(target) +
                    "': " + std::strerror(errno));
    }
    return;
  }
  const std::string dir = directory_of(target);
  struct stat info {};
  if (::stat(dir.c_str(), &info) != 0) {
    throw IoError(out + ": directory '" + dir + "' does not exist");
  }
  if (!S_ISDIR(info.st_mode)) {
    throw IoError(out + ": '" + dir + "' is not a directory");
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    throw IoError(out + ": cannot write in directory '" + dir + "': " + std::strerror(errno));
  }
}

}  // namespace

ReadOnlyFile::ReadOnlyFile(const std::string& path, std::uint64_t max_bytes) : m_path(path) {
  // O_NONBLOCK: opening a FIFO with no writer must not hang; it is refused just below.
  m_fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (m_fd < 0) {
    throw IoError(path + ": cannot open: " + std::strerror(errno));
  }
  struct stat info {};
  if (::fstat(m_fd, &info) != 0) {
    const int e = errno;
    ::close(m_fd);
    throw IoError(path + ": cannot open: " + std::strerror(e));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(m_fd);
    throw IoError(path + ": " + describe_kind(info.st_mode));
  }
  m_size = static_cast<std::uint64_t>(info.st_size);
  // Files are read front to back (in blocks, by several threads): a larger read-ahead. A hint.
  (void)::posix_fadvise(m_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  if (m_size > max_bytes) {
    ::close(m_fd);
    std::ostringstream msg;
    msg << path << ": " << m_size << " bytes is larger than the " << max_bytes
        << " bytes a file of this kind may have";
    throw IoError(msg.str());
  }
}

ReadOnlyFile::~ReadOnlyFile() { ::close(m_fd); }

void ReadOnlyFile::read_at(std::uint64_t offset, std::size_t count, char* out) const {
  std::size_t done = 0;
  while (done < count) {
    const ssize_t got = ::pread(m_fd, out + done, count - done, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw IoError(m_path + ": read error: " + std::strerror(errno));
    }
    if (got == 0) {
      throw IoError(m_path + ": file changed while reading (it is shorter than when opened)");
    }
    done += static_cast<std::size_t>(got);
  }
}

void ReadOnlyFile::check_unchanged() const {
  struct stat info {};
  char extra = 0;
  if (::fstat(m_fd, &info) != 0 || static_cast<std::uint64_t>(info.st_size) != m_size ||
      ::pread(m_fd, &extra, 1, static_cast<off_t>(m_size)) > 0) {
    throw IoError(m_path + ": file changed while reading (its size changed)");
  }
}

std::string read_file(const std::string& path, std::uint64_t max_bytes) {
  const ReadOnlyFile file(path, max_bytes);
  std::string bytes(static_cast<std::size_t>(file.size()), '\0');
  file.read_at(0, bytes.size(), bytes.data());
  file.check_unchanged();
  return bytes;
}

void check_paths(const std::vector<std::string>& inputs, const std::vector<std::string>& outputs) {
  struct Seen {
    std::string name;
    FileId id;
    std::string absolute;  // outputs only: where they will be written
  };
  std::vector<Seen> seen;  // inputs, then the outputs checked so far
  for (const std::string& in : inputs) {
    if (!in.empty()) {
      seen.push_back({in, identify(in), ""});
    }
  }
  for (const std::string& out : outputs) {
    if (out.empty()) {
      continue;
    }
    const std::string target = resolve_output(out);
    const FileId id = identify(target);
    check_writable(out, target, id);
    const std::string absolute = absolute_output(target);
    for (const Seen& other : seen) {
      const bool same_file = id.exists && other.id.exists && id.device == other.id.device &&
                             id.inode == other.id.inode && !S_ISCHR(id.mode) && !S_ISFIFO(id.mode);
      if (same_file || (!other.absolute.empty() && other.absolute == absolute)) {
        throw IoError(out + ": is the same file as " +
                      (other.absolute.empty() ? "the input " : "the output ") + other.name +
                      "; writing it would destroy that file");
      }
    }
    seen.push_back({out, id, absolute});
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
  const std::string target = resolve_output(path);
  const FileId id = identify(target);
  if (id.exists && S_ISDIR(id.mode)) {
    throw IoError(path + ": is a directory; give a file name for the output");
  }
  if (id.exists && (S_ISCHR(id.mode) || S_ISFIFO(id.mode))) {
    // A device or FIFO (/dev/stdout, /dev/null, a pipe) is written through, never replaced.
    std::ofstream out(target, std::ios::binary | std::ios::out);
    if (!out) {
      throw IoError(path + ": cannot write: " + std::strerror(errno));
    }
    write(out);
    out.flush();
    if (!out) {
      throw IoError(path + ": write failed");
    }
    return;
  }
  if (id.exists && !S_ISREG(id.mode)) {
    throw IoError(path + ": " + describe_kind(id.mode) + "; refusing to write to it");
  }
  const std::string temp =
      target + ".nnlift-partial-" + std::to_string(static_cast<long>(::getpid()));
  try {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) {
      throw IoError(path + ": cannot write: " + std::strerror(errno));
    }
    write(out);
    out.flush();
    if (!out) {
      throw IoError(path + ": write failed (disk full or file size limit?)");
    }
    out.close();
    if (std::rename(temp.c_str(), target.c_str()) != 0) {
      throw IoError(path + ": cannot rename temporary file: " + std::strerror(errno));
    }
  } catch (...) {
    std::remove(temp.c_str());
    throw;
  }
}

}  // namespace nnlift::detail
