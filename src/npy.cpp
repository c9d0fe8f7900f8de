// numpy .npy reading and writing (float64/float32, little-endian, 1-3 dimensions).
// SPDX-License-Identifier: MIT
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <stdexcept>
#include <string>

#include <nnlift/npy.hpp>

#include "detail/io.hpp"

namespace nnlift {
namespace {

// The value text that follows 'key': in the header dictionary, or "" if the key is absent.
std::string header_value(const std::string& header, const std::string& key) {
  const std::string quoted[2] = {"'" + key + "'", "\"" + key + "\""};
  for (const std::string& q : quoted) {
    const std::size_t at = header.find(q);
    if (at == std::string::npos) {
      continue;
    }
    std::size_t p = header.find(':', at + q.size());
    if (p == std::string::npos) {
      return "";
    }
    ++p;
    while (p < header.size() && header[p] == ' ') {
      ++p;
    }
    if (p < header.size() && header[p] == '(') {
      const std::size_t close = header.find(')', p);
      return close == std::string::npos ? "" : header.substr(p, close - p + 1);
    }
    std::size_t stop = p;
    while (stop < header.size() && header[stop] != ',' && header[stop] != '}') {
      ++stop;
    }
    std::string value = header.substr(p, stop - p);
    while (!value.empty() && value.back() == ' ') {
      value.pop_back();
    }
    if (value.size() >= 2 && (value.front() == '\'' || value.front() == '"')) {
      value = value.substr(1, value.size() - 2);
    }
    return value;
  }
  return "";
}

std::vector<Index> parse_shape(const std::string& path, const std::string& text) {
  std::vector<Index> shape;
  if (text.size() < 2 || text.front() != '(' || text.back() != ')') {
    throw IoError(path + ": malformed .npy header: shape '" + text + "'");
  }
  const std::string inner = text.substr(1, text.size() - 2);
  std::size_t p = 0;
  while (p < inner.size()) {
    while (p < inner.size() && (inner[p] == ' ' || inner[p] == ',')) {
      ++p;
    }
    if (p >= inner.size()) {
      break;
    }
    std::size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(inner.substr(p), &used);
    } catch (const std::exception&) {
      throw IoError(path + ": malformed .npy header: shape '" + text + "'");
    }
    if (value < 0 || used == 0) {
      throw IoError(path + ": malformed .npy header: shape '" + text + "'");
    }
    shape.push_back(static_cast<Index>(value));
    p += used;
  }
  return shape;
}

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
  const std::string header = bytes.substr(offset, header_len);
  const std::string descr = header_value(header, "descr");
  const std::string fortran = header_value(header, "fortran_order");
  const std::string shape_text = header_value(header, "shape");
  if (descr.empty() || fortran.empty() || shape_text.empty()) {
    throw IoError(path + ": malformed .npy header: " + header);
  }
  std::size_t item = 0;
  if (descr == "<f8") {
    item = 8;
  } else if (descr == "<f4") {
    item = 4;
  } else {
    throw IoError(path + ": unsupported dtype '" + descr +
                  "'; expected little-endian float64 ('<f8') or float32 ('<f4')");
  }
  if (!host_is_little_endian()) {
    throw IoError(path + ": reading .npy on a big-endian host is not supported");
  }
  NpyArray array;
  array.shape = parse_shape(path, shape_text);
  if (array.shape.empty() || array.shape.size() > 3) {
    throw IoError(path + ": array has " + std::to_string(array.shape.size()) +
                  " dimensions; expected 1 to 3");
  }
  const auto count = static_cast<std::size_t>(array.size());
  const std::size_t data_start = offset + header_len;
  if (bytes.size() - data_start < count * item) {
    throw IoError(path + ": truncated .npy data: shape " + shape_text + " needs " +
                  std::to_string(count * item) + " bytes, file has " +
                  std::to_string(bytes.size() - data_start));
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
  if (fortran == "True") {
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
  } else if (fortran == "False") {
    array.data = std::move(values);
  } else {
    throw IoError(path + ": malformed .npy header: fortran_order '" + fortran + "'");
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
