// numpy .npy reading and writing (float64/float32, little-endian, 1-3 dimensions).
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <ostream>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <type_traits>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <nnlift/npy.hpp>

#include "detail/columns.hpp"
#include "detail/io.hpp"
#include "detail/parallel.hpp"
#include "detail/text.hpp"

namespace nnlift {
namespace {

// Untrusted header text for a message, quoted.
std::string quoted(const std::string& text) { return "'" + detail::excerpt(text) + "'"; }

// The header dictionary of a .npy file, parsed as the Python literal it is:
// {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), } with exactly these three keys.
struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<Index> shape;
};

class HeaderParser {
 public:
  HeaderParser(const std::string& path, const std::string& text) : m_path(path), m_text(text) {}

  NpyHeader parse() {
    NpyHeader h;
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') {
        ++m_at;
        break;
      }
      const std::string key = string_literal();
      expect(':');
      skip_space();
      if (key == "descr" && !have_descr) {
        h.descr = string_literal();
        have_descr = true;
      } else if (key == "fortran_order" && !have_order) {
        h.fortran_order = boolean();
        have_order = true;
      } else if (key == "shape" && !have_shape) {
        h.shape = tuple();
        have_shape = true;
      } else {
        fail("unexpected or repeated key " + quoted(key));
      }
      skip_space();
      if (peek() == ',') {
        ++m_at;
        continue;
      }
      expect('}');
      break;
    }
    skip_space();
    if (m_at != m_text.size()) {
      fail("characters after the dictionary");
    }
    if (!have_descr || !have_order || !have_shape) {
      fail("the keys 'descr', 'fortran_order' and 'shape' are required");
    }
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw IoError(m_path + ": malformed .npy header (" + what + "): " + quoted(m_text));
  }
  char peek() const { return m_at < m_text.size() ? m_text[m_at] : '\0'; }
  void skip_space() {
    while (m_at < m_text.size() && (m_text[m_at] == ' ' || m_text[m_at] == '\n')) {
      ++m_at;
    }
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) {
      fail(std::string("expected '") + c + "'");
    }
    ++m_at;
  }
  std::string string_literal() {
    skip_space();
    const char q = peek();
    if (q != '\'' && q != '"') {
      fail("expected a quoted string");
    }
    const std::size_t close = m_text.find(q, m_at + 1);
    if (close == std::string::npos) {
      fail("unterminated string");
    }
    std::string value = m_text.substr(m_at + 1, close - m_at - 1);
    m_at = close + 1;
    return value;
  }
  bool boolean() {
    for (const char* word : {"True", "False"}) {
      const std::size_t len = std::strlen(word);
      if (m_text.compare(m_at, len, word) == 0) {
        m_at += len;
        return word[0] == 'T';
      }
    }
    fail("fortran_order must be True or False");
  }
  std::vector<Index> tuple() {
    expect('(');
    std::vector<Index> values;
    while (true) {
      skip_space();
      if (peek() == ')') {
        ++m_at;
        return values;
      }
      if (peek() < '0' || peek() > '9') {
        fail("shape entries must be non-negative integers");
      }
      Index v = 0;
      while (peek() >= '0' && peek() <= '9') {
        const int digit = peek() - '0';
        if (v > (std::numeric_limits<Index>::max() - digit) / 10) {
          fail("a shape entry is too large");
        }
        v = v * 10 + digit;
        ++m_at;
      }
      values.push_back(v);
      skip_space();
      if (peek() == ',') {
        ++m_at;
      } else if (peek() != ')') {
        fail("expected ',' or ')' in the shape");
      }
    }
  }

  const std::string& m_path;
  const std::string& m_text;
  std::size_t m_at = 0;
};

bool host_is_little_endian() {
  const std::uint16_t probe = 1;
  unsigned char first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

}  // namespace

Index NpyArray::size() const noexcept {
  Index total = 1;
  for (Index s : shape) {
    if (s != 0 && total > std::numeric_limits<Index>::max() / s) {
      return -1;  // overflow: no array of this shape can exist
    }
    total *= s;
  }
  return total;
}

namespace {

// Where a .npy file's data start, what they hold, and how many elements they are, from the
// file's first bytes (at least the header) and its size.
struct NpyLayout {
  NpyHeader header;
  std::size_t data_start = 0;
  std::size_t item = 0;  // bytes per element: 8 (float64) or 4 (float32)
  std::size_t count = 0;
};

NpyLayout parse_layout(const std::string& path, const std::string& bytes, std::uint64_t size) {
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0) {
    throw IoError(path + ": not a .npy file (missing the \\x93NUMPY magic string)");
  }
  const auto major = static_cast<unsigned char>(bytes[6]);
  std::size_t header_len = 0;
  std::size_t offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) |
                 (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) {
      throw IoError(path + ": truncated .npy header");
    }
    for (int i = 0; i < 4; ++i) {
      header_len |= static_cast<std::size_t>(
                        static_cast<unsigned char>(bytes[8 + static_cast<std::size_t>(i)]))
                    << (8 * i);
    }
    offset = 12;
  } else {
    throw IoError(path + ": unsupported .npy format version " + std::to_string(major));
  }
  if (bytes.size() < offset + header_len) {
    throw IoError(path + ": truncated .npy header");
  }
  NpyLayout layout;
  layout.header = HeaderParser(path, bytes.substr(offset, header_len)).parse();
  const NpyHeader& header = layout.header;
  if (header.descr == "<f8") {
    layout.item = 8;
  } else if (header.descr == "<f4") {
    layout.item = 4;
  } else {
    throw IoError(path + ": unsupported dtype " + quoted(header.descr) +
                  "; expected little-endian float64 ('<f8') or float32 ('<f4')");
  }
  if (!host_is_little_endian()) {
    throw IoError(path + ": reading .npy on a big-endian host is not supported");
  }
  if (header.shape.empty() || header.shape.size() > 3) {
    throw IoError(path + ": array has " + std::to_string(header.shape.size()) +
                  " dimensions; expected 1 to 3");
  }
  // The element count, checked for overflow and against the bytes the file holds before
  // anything is allocated.
  layout.data_start = offset + header_len;
  const std::uint64_t available = size - layout.data_start;
  const std::size_t item = layout.item;
  std::size_t count = 1;
  std::string shape_text;
  for (Index extent : header.shape) {
    shape_text += (shape_text.empty() ? "" : ", ") + std::to_string(extent);
    const auto e = static_cast<std::size_t>(extent);
    if (e != 0 && count > available / item / e) {
      throw IoError(path + ": truncated .npy data: shape (" + shape_text +
                    ", ...) needs more than the " + std::to_string(available) +
                    " bytes the file holds");
    }
    count *= e;
  }
  if (available != count * item) {
    throw IoError(path + ": " + (available < count * item ? "truncated" : "trailing bytes after") +
                  " .npy data: shape (" + shape_text + ") needs " + std::to_string(count * item) +
                  " bytes, the file holds " + std::to_string(available));
  }
  layout.count = count;
  return layout;
}

}  // namespace

NpyArray read_npy(const std::string& path) {
  const std::string bytes = detail::read_file(path);
  const NpyLayout layout = parse_layout(path, bytes, bytes.size());
  const NpyHeader& header = layout.header;
  const std::size_t item = layout.item, count = layout.count, data_start = layout.data_start;
  NpyArray array;
  array.shape = header.shape;
  std::vector<double> values(count);
  const char* src = bytes.data() + data_start;
  for (std::size_t i = 0; i < count; ++i) {
    if (item == 8) {
      std::memcpy(&values[i], src + 8 * i, 8);
    } else {
      float f = 0;
      std::memcpy(&f, src + 4 * i, 4);
      values[i] = f;
    }
  }
  if (header.fortran_order) {
    // Fortran order: the first index varies fastest. Reorder into C order.
    std::vector<Index> s = array.shape;
    while (s.size() < 3) {
      s.push_back(1);
    }
    array.data.resize(count);
    for (Index i = 0; i < s[0]; ++i) {
      for (Index j = 0; j < s[1]; ++j) {
        for (Index l = 0; l < s[2]; ++l) {
          array.data[static_cast<std::size_t>((i * s[1] + j) * s[2] + l)] =
              values[static_cast<std::size_t>(i + s[0] * (j + s[1] * l))];
        }
      }
    }
  } else {
    array.data = std::move(values);
  }
  return array;
}

void write_npy(const std::string& path, const NpyArray& array) {
  if (array.shape.empty() || array.shape.size() > 3) {
    throw std::invalid_argument("write_npy: shape has " + std::to_string(array.shape.size()) +
                                " dimensions; must have 1 to 3");
  }
  if (static_cast<std::size_t>(array.size()) != array.data.size()) {
    throw std::invalid_argument("write_npy: shape holds " + std::to_string(array.size()) +
                                " elements but data has " + std::to_string(array.data.size()));
  }
  std::string shape = "(";
  for (std::size_t i = 0; i < array.shape.size(); ++i) {
    shape += std::to_string(array.shape[i]) +
             (array.shape.size() == 1 || i + 1 < array.shape.size() ? "," : "");
    if (i + 1 < array.shape.size()) {
      shape += " ";
    }
  }
  shape += ")";
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad with spaces so that magic + version + length + header + '\n' is a multiple of 64.
  const std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  detail::write_atomically(path, [&](std::ostream& out) {
    out.write("\x93NUMPY\x01\x00", 8);
    const char len[2] = {static_cast<char>(header.size() & 0xFF),
                         static_cast<char>((header.size() >> 8) & 0xFF)};
    out.write(len, 2);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(reinterpret_cast<const char*>(array.data.data()),
              static_cast<std::streamsize>(array.data.size() * sizeof(double)));
  });
}

NpyArray to_npy(const Matrix& matrix) {
  NpyArray array;
  array.shape = {matrix.rows(), matrix.cols()};
  array.data.resize(static_cast<std::size_t>(matrix.size()));
  for (Index i = 0; i < matrix.rows(); ++i) {
    for (Index j = 0; j < matrix.cols(); ++j) {
      array.data[static_cast<std::size_t>(i * matrix.cols() + j)] = matrix(i, j);
    }
  }
  return array;
}

Matrix to_matrix(const NpyArray& array) {
  if (array.shape.size() == 1) {
    return Eigen::Map<const Vector>(array.data.data(), array.shape[0]);
  }
  if (array.shape.size() != 2) {
    throw std::invalid_argument("to_matrix: array has " + std::to_string(array.shape.size()) +
                                " dimensions; expected 1 or 2");
  }
  Matrix m(array.shape[0], array.shape[1]);
  for (Index i = 0; i < m.rows(); ++i) {
    for (Index j = 0; j < m.cols(); ++j) {
      m(i, j) = array.data[static_cast<std::size_t>(i * m.cols() + j)];
    }
  }
  return m;
}

// ---- row blocks of a 2-D file -------------------------------------------------------------------

struct NpyRows::File {
  explicit File(const std::string& path) : file(path) {}
  detail::ReadOnlyFile file;
};

NpyRows::NpyRows(const std::string& path) : m_path(path), m_file(std::make_unique<File>(path)) {
  // The header is at most 64 KiB (format 1.0) or what format 2.0/3.0 declares; read a prefix
  // large enough for any header this reader accepts.
  const std::uint64_t size = m_file->file.size();
  std::string prefix(static_cast<std::size_t>(std::min<std::uint64_t>(size, 1 << 17)), '\0');
  m_file->file.read_at(0, prefix.size(), prefix.data());
  const NpyLayout layout = parse_layout(path, prefix, size);
  if (layout.header.shape.size() != 2) {
    throw IoError(path + ": array has " + std::to_string(layout.header.shape.size()) +
                  " dimensions; a data set is 2-D (rows x columns)");
  }
  if (layout.header.fortran_order) {
    throw IoError(path +
                  ": Fortran-ordered array; rows are read in blocks from C order (save it with "
                  "numpy.save(path, numpy.ascontiguousarray(X)))");
  }
  m_rows = layout.header.shape[0];
  m_cols = layout.header.shape[1];
  m_item = layout.item;
  m_data_start = layout.data_start;
}

NpyRows::~NpyRows() = default;

// The rows [begin, begin + count) as the file holds them: use(const T* rows) with T float or
// double, row-major, count × cols().
template <class Use>
void NpyRows::with_rows(Index begin, Index count, const char* caller, Use&& use) const {
  if (begin < 0 || count < 0 || begin > m_rows - count) {
    throw std::out_of_range(std::string(caller) + ": rows [" + std::to_string(begin) + ", " +
                            std::to_string(begin + count) + ") outside [0, " +
                            std::to_string(m_rows) + ")");
  }
  // The buffer is kept per thread, grows only, is not zeroed first and is asked for in huge
  // pages: at 16,384 rows of 101 doubles (13 MB) its first touch in 4 kB pages took 3,300 page
  // faults per thread (10 us each on this machine's virtual machine, where a fault is that dear).
  const auto grown = [](auto& buffer, Index values) {
    if (buffer.size() < values) {
      buffer.resize(values);
      detail::advise_huge_pages(buffer.data(),
                                static_cast<std::size_t>(values) *
                                    sizeof(typename std::decay_t<decltype(buffer)>::Scalar));
    }
    return buffer.data();
  };
  const std::uint64_t offset = m_data_start + static_cast<std::uint64_t>(begin) *
                                                  static_cast<std::uint64_t>(m_cols) * m_item;
  const Index values = count * m_cols;
  if (m_item == 4) {
    thread_local Eigen::VectorXf buffer;
    float* data = grown(buffer, values);
    m_file->file.read_at(
        offset, static_cast<std::size_t>(values) * 4, reinterpret_cast<char*>(data));
    use(static_cast<const float*>(data));
  } else {
    thread_local Vector buffer;
    double* data = grown(buffer, values);
    m_file->file.read_at(
        offset, static_cast<std::size_t>(values) * 8, reinterpret_cast<char*>(data));
    use(static_cast<const double*>(data));
  }
}

namespace {
// Rows are widened and transposed to column order in chunks small enough to stay in cache.
constexpr Index kTransposeChunk = 256;
}  // namespace

void NpyRows::read(Index begin, Index count, Matrix& out) const {
  with_rows(begin, count, "NpyRows::read", [&](const auto* buffer) {
    using T = std::decay_t<decltype(*buffer)>;
    if (out.rows() != count || out.cols() != m_cols) {
      out.resize(count, m_cols);
      detail::advise_huge_pages(out);
    }
    const Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> rows(
        buffer, count, m_cols);
    for (Index r = 0; r < count; r += kTransposeChunk) {
      const Index len = std::min(kTransposeChunk, count - r);
      out.middleRows(r, len) = rows.middleRows(r, len).template cast<double>();
    }
  });
}

void NpyRows::read_columns(Index begin,
                           Index count,
                           const std::vector<double*>& to,
                           const NonFinite& non_finite) const {
  if (static_cast<Index>(to.size()) != m_cols) {
    throw std::out_of_range("NpyRows::read_columns: " + std::to_string(to.size()) +
                            " destinations for " + std::to_string(m_cols) + " columns");
  }
  with_rows(begin, count, "NpyRows::read_columns", [&](const auto* buffer) {
    using T = std::decay_t<decltype(*buffer)>;
    const Index values = count * m_cols;
    if (non_finite) {
      // One vectorised pass finds whether any value needs the scan in row order.
      if (!Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(buffer, values).allFinite()) {
        for (Index i = 0; i < values; ++i) {
          if (!std::isfinite(buffer[i])) {
            non_finite(i / m_cols, i % m_cols, static_cast<double>(buffer[i]));
          }
        }
      }
    }
    const Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> rows(
        buffer, count, m_cols);
    for (Index r = 0; r < count; r += kTransposeChunk) {
      const Index len = std::min(kTransposeChunk, count - r);
      for (Index j = 0; j < m_cols; ++j) {
        if (double* column = to[static_cast<std::size_t>(j)]) {
          Eigen::Map<Vector>(column + r, len) = rows.col(j).segment(r, len).template cast<double>();
        }
      }
    }
  });
}

// ---- streamed writing
// -----------------------------------------------------------------------------

namespace {
// The header of a 2-D C-order array, padded to a fixed 128 bytes so that the row count can be
// written over it when the file is finished (any row count up to 19 digits fits).
std::string fixed_header(Index rows, Index cols, bool float32) {
  std::string dict = std::string("{'descr': '") + (float32 ? "<f4" : "<f8") +
                     "', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                     std::to_string(cols) + "), }";
  constexpr std::size_t kTotal = 128;
  if (dict.size() + 11 > kTotal) {
    throw std::invalid_argument("NpyWriter: the shape does not fit the header");
  }
  dict.append(kTotal - 11 - dict.size(), ' ');
  dict.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(dict.size() & 0xFF));
  out.push_back(static_cast<char>((dict.size() >> 8) & 0xFF));
  return out + dict;
}
}  // namespace

NpyWriter::NpyWriter(const std::string& path, Index cols, bool float32)
    : m_path(path), m_cols(cols), m_float32(float32) {
  if (cols < 1) {
    throw std::invalid_argument("NpyWriter: cols must be >= 1");
  }
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0 && !S_ISREG(info.st_mode)) {
    throw IoError(path + ": not a regular file; a .npy output must be one");
  }
  m_temp = path + ".nnlift-partial-" + std::to_string(static_cast<long>(::getpid()));
  m_out.open(m_temp, std::ios::binary | std::ios::trunc);
  if (!m_out) {
    throw IoError(path + ": cannot write: " + std::strerror(errno));
  }
  const std::string header = fixed_header(0, cols, float32);
  m_out.write(header.data(), static_cast<std::streamsize>(header.size()));
}

NpyWriter::~NpyWriter() {
  if (!m_done) {
    m_out.close();
    std::remove(m_temp.c_str());
  }
}

void NpyWriter::append(const Matrix& block) {
  if (block.cols() != m_cols) {
    throw std::invalid_argument("NpyWriter::append: block has " + std::to_string(block.cols()) +
                                " columns; the file has " + std::to_string(m_cols));
  }
  const std::size_t item = m_float32 ? 4 : 8;
  m_buffer.resize(static_cast<std::size_t>(block.size()) * item);
  char* dst = m_buffer.data();
  for (Index i = 0; i < block.rows(); ++i) {
    for (Index j = 0; j < m_cols; ++j, dst += item) {
      if (m_float32) {
        const auto v = static_cast<float>(block(i, j));
        std::memcpy(dst, &v, 4);
      } else {
        const double v = block(i, j);
        std::memcpy(dst, &v, 8);
      }
    }
  }
  m_out.write(m_buffer.data(), static_cast<std::streamsize>(m_buffer.size()));
  if (!m_out) {
    throw IoError(m_path + ": write failed (disk full or file size limit?)");
  }
  m_rows += block.rows();
}

void NpyWriter::finish() {
  const std::string header = fixed_header(m_rows, m_cols, m_float32);
  m_out.seekp(0);
  m_out.write(header.data(), static_cast<std::streamsize>(header.size()));
  m_out.flush();
  m_out.close();
  if (!m_out) {
    throw IoError(m_path + ": write failed (disk full or file size limit?)");
  }
  if (std::rename(m_temp.c_str(), m_path.c_str()) != 0) {
    throw IoError(m_path + ": cannot rename temporary file: " + std::strerror(errno));
  }
  m_done = true;
}

// ---- column names
// ---------------------------------------------------------------------------------

std::vector<std::string> npy_column_names(const std::string& path, Index cols) {
  const std::string sidecar = path + ".json";
  struct stat info {};
  std::vector<std::string> names;
  if (::stat(sidecar.c_str(), &info) != 0) {
    for (Index j = 0; j < cols; ++j) {
      names.push_back(std::to_string(j + 1));
    }
    return names;
  }
  const std::string text = detail::read_file(sidecar, std::uint64_t{1} << 26);
  // {"columns": [names]} is two levels deep; deeper nesting is refused while parsing, so that a
  // hostile sidecar cannot make a document whose destruction overflows the stack.
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text, [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
      if (depth > 4) {
        throw IoError(sidecar + ": nested too deep; expected {\"columns\": [\"name\", ...]}");
      }
      return true;
    });
  } catch (const nlohmann::json::parse_error& e) {
    throw IoError(sidecar + ": not valid JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("columns") || !j["columns"].is_array()) {
    throw IoError(sidecar + ": expected a JSON object {\"columns\": [\"name\", ...]}");
  }
  for (const auto& c : j["columns"]) {
    if (!c.is_string() || c.get<std::string>().empty()) {
      throw IoError(sidecar + ": every column name must be a non-empty string");
    }
    names.push_back(c.get<std::string>());
  }
  if (static_cast<Index>(names.size()) != cols) {
    throw IoError(sidecar + ": names " + std::to_string(names.size()) + " columns; " + path +
                  " has " + std::to_string(cols));
  }
  std::vector<std::string> sorted = names;
  std::sort(sorted.begin(), sorted.end());
  const auto twice = std::adjacent_find(sorted.begin(), sorted.end());
  if (twice != sorted.end()) {
    throw IoError(sidecar + ": column '" + *twice + "' is named twice");
  }
  return names;
}

void write_npy_column_names(const std::string& path, const std::vector<std::string>& names) {
  const nlohmann::json j = {{"columns", names}};
  detail::write_atomically(path + ".json", [&](std::ostream& out) { out << j.dump() << "\n"; });
}

Dataset read_npy_dataset(const std::string& path, const CsvOptions& options) {
  const CsvShare& share = options.share;
  if (share.parts < 1 || share.part < 0 || share.part >= share.parts) {
    throw std::invalid_argument("CsvOptions::share: part " + std::to_string(share.part) + " of " +
                                std::to_string(share.parts));
  }
  const Index n = NpyRows(path).rows();
  const Index begin = n / share.parts * share.part + std::min(share.part, n % share.parts);
  const Index end = begin + n / share.parts + (share.part < n % share.parts ? 1 : 0);
  return read_npy_rows(path, options, begin, end);
}

Dataset read_npy_rows(const std::string& path, const CsvOptions& options, Index begin, Index end) {
  if (!options.text_columns.empty()) {
    throw std::invalid_argument(path + ": a .npy file holds numbers only; it has no text columns");
  }
  const NpyRows file(path);
  if (begin < 0 || begin > end || end > file.rows()) {
    throw std::out_of_range("read_npy_rows: rows [" + std::to_string(begin) + ", " +
                            std::to_string(end) + ") outside [0, " + std::to_string(file.rows()) +
                            ")");
  }
  const std::vector<std::string> names = npy_column_names(path, file.cols());
  Dataset out;
  const std::vector<int> dest = detail::choose_columns(path, names, options, out);
  out.X.resize(end - begin, static_cast<Index>(out.feature_names.size()));
  detail::advise_huge_pages(out.X);
  if (options.has_target) {
    out.y.resize(end - begin);
  }
  // Blocks of rows read and copied in parallel (NpyRows reads by pread, so blocks may be read
  // from several threads at once); each writes its own rows, so the result does not depend on
  // the thread count, and a bad value anywhere is reported as the first one by row.
  constexpr Index kBlock = 1 << 14;
  const Index blocks = (end - begin + kBlock - 1) / kBlock;
  detail::parallel_for(blocks, options.num_threads, [&](Index k) {
    const Index b = begin + k * kBlock;
    const Index c = std::min(kBlock, end - b);
    std::vector<double*> to(dest.size(), nullptr);
    for (std::size_t col = 0; col < dest.size(); ++col) {
      const int where = dest[col];
      if (where == detail::kTarget) {
        to[col] = out.y.data() + (b - begin);
      } else if (where != detail::kSkip) {
        to[col] = out.X.col(where).data() + (b - begin);
      }
    }
    file.read_columns(b, c, to, [&](Index row, Index col, double v) {
      const int where = dest[static_cast<std::size_t>(col)];
      if (where == detail::kSkip ||
          (std::isnan(v) && options.allow_missing && where != detail::kTarget)) {
        return;
      }
      throw IoError(path + ": row " + std::to_string(b + row + 1) + ", column '" +
                    names[static_cast<std::size_t>(col)] +
                    "': " + (std::isnan(v) ? "missing (NaN)" : "infinite") +
                    (std::isnan(v) ? "; use --missing mean or drop-rows" : ""));
    });
  });
  return out;
}

Dataset read_table(const std::string& path, const CsvOptions& options) {
  return is_npy_path(path) ? read_npy_dataset(path, options) : read_csv(path, options);
}

bool is_npy_path(const std::string& path) {
  if (path.size() < 4) {
    return false;
  }
  std::string ext = path.substr(path.size() - 4);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  return ext == ".npy";
}

}  // namespace nnlift
