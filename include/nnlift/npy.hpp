// numpy .npy arrays: the interchange format of numpy, TensorLy and PyTorch users.
// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <vector>

#include <nnlift/types.hpp>

namespace nnlift {

/// A dense array of 1 to 3 dimensions, stored in C (row-major) order as doubles:
/// element (i, j, l) of a shape (a, b, c) array is data[(i*b + j)*c + l].
struct NpyArray {
  std::vector<Index> shape;
  std::vector<double> data;

  /// Product of the shape entries; -1 if it overflows Index.
  Index size() const noexcept;
};

/// Reads a .npy file (format 1.0, 2.0 or 3.0) holding little-endian float64 ('<f8') or float32
/// ('<f4') with 1 to 3 dimensions. Fortran-ordered arrays are converted to C order.
/// \throws IoError naming the file for a missing file, a bad magic string or header, an
///         unsupported dtype (e.g. '<i8', '>f8'), a dimension count outside 1..3, or data shorter
///         than the shape requires (truncated file).
NpyArray read_npy(const std::string& path);

/// Writes a little-endian float64 C-order .npy file (format 1.0). Atomic (temporary + rename).
/// \throws std::invalid_argument if shape has 0 or more than 3 entries or does not match
///         data.size(); IoError on I/O failure.
void write_npy(const std::string& path, const NpyArray& array);

/// A 2-D NpyArray (rows×cols) from a matrix, in C order.
NpyArray to_npy(const Matrix& matrix);

/// The matrix of a 1-D (as a column) or 2-D array.
/// \throws std::invalid_argument for a 3-D array.
Matrix to_matrix(const NpyArray& array);

}  // namespace nnlift
