// numpy .npy reading and writing (float64/float32, little-endian, 1-3 dimensions).
// SPDX-License-Identifier: MIT
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <ostream>
#include <stdexcept>
#include <string>

#include <nnlift/npy.hpp>

#include "detail/io.hpp"
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

NpyArray read_npy(const std::string& path) {
  const std::string bytes = detail::read_file(path);
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
  const NpyHeader header = HeaderParser(path, bytes.substr(offset, header_len)).parse();
  std::size_t item = 0;
  if (header.descr == "<f8") {
    item = 8;
  } else if (header.descr == "<f4") {
    item = 4;
  } else {
    throw IoError(path + ": unsupported dtype " + quoted(header.descr) +
                  "; expected little-endian float64 ('<f8') or float32 ('<f4')");
  }
  if (!host_is_little_endian()) {
    throw IoError(path + ": reading .npy on a big-endian host is not supported");
  }
  NpyArray array;
  array.shape = header.shape;
  if (array.shape.empty() || array.shape.size() > 3) {
    throw IoError(path + ": array has " + std::to_string(array.shape.size()) +
                  " dimensions; expected 1 to 3");
  }
  // The element count, checked for overflow and against the bytes the file holds before
  // anything is allocated.
  const std::size_t data_start = offset + header_len;
  const std::size_t available = bytes.size() - data_start;
  std::size_t count = 1;
  std::string shape_text;
  for (Index extent : array.shape) {
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

}  // namespace nnlift
