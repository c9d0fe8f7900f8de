// numpy .npy arrays: the interchange format of numpy, TensorLy and PyTorch users.
// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nnlift/csv.hpp>
#include <nnlift/stream.hpp>
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

/// A 2-D .npy file (float64 or float32, C order) read row block by row block, never whole: the
/// data of `nnlift convert` and of training on data larger than memory. Reads are positioned
/// (pread), so blocks may be read from several threads at once; float32 values are widened to
/// double. Memory held: the header only.
class NpyRows final : public RowSource {
 public:
  /// \throws IoError naming the file for a missing file, a malformed header, a dtype other than
  ///         '<f8' or '<f4', an array that is not 2-D, Fortran order, or a size that does not
  ///         match the shape.
  explicit NpyRows(const std::string& path);
  ~NpyRows() override;
  NpyRows(const NpyRows&) = delete;
  NpyRows& operator=(const NpyRows&) = delete;

  const std::string& path() const noexcept { return m_path; }
  Index rows() const override { return m_rows; }
  Index cols() const override { return m_cols; }
  std::string name() const override { return m_path; }
  bool float32() const noexcept { return m_item == 4; }
  /// Rows [begin, begin + count), all columns, into out (resized to count×cols()).
  /// \throws std::out_of_range for a range outside [0, rows()); IoError if the file has changed.
  void read(Index begin, Index count, Matrix& out) const override;
  /// Called for a value that is not finite, with its row (from `begin`'s 0), column and value.
  using NonFinite = std::function<void(Index row, Index column, double value)>;
  /// Rows [begin, begin + count), column j widened to double into to[j][0, count) (a null
  /// to[j] leaves column j out; to.size() == cols()), transposed straight from the file's rows,
  /// with no block copy: how read_npy_rows fills a data set's columns. Before anything is
  /// written, `non_finite` (if set) is called for each value that is not finite, in row order,
  /// then column order; it may throw to refuse the rows.
  /// \throws std::out_of_range for a range outside [0, rows()) or a wrong to.size(); IoError if
  ///         the file has changed.
  void read_columns(Index begin,
                    Index count,
                    const std::vector<double*>& to,
                    const NonFinite& non_finite = {}) const;

 private:
  template <class Use>
  void with_rows(Index begin, Index count, const char* caller, Use&& use) const;
  struct File;
  std::string m_path;
  std::unique_ptr<File> m_file;
  Index m_rows = 0;
  Index m_cols = 0;
  std::size_t m_item = 8;
  std::uint64_t m_data_start = 0;
};

/// Writes a 2-D C-order .npy file (float64 or float32) row block by row block, in constant
/// memory, with the row count filled in when it is finished: the output of `nnlift convert`.
/// The file appears only when finish() succeeds (a temporary next to it is renamed); a writer
/// destroyed before that removes its temporary.
class NpyWriter {
 public:
  /// \throws IoError naming the path if it cannot be written (a directory, a device, ...).
  NpyWriter(const std::string& path, Index cols, bool float32);
  ~NpyWriter();
  NpyWriter(const NpyWriter&) = delete;
  NpyWriter& operator=(const NpyWriter&) = delete;

  /// Appends the rows of `block` (rows×cols). \throws std::invalid_argument for another column
  /// count; IoError on a write failure (disk full).
  void append(const Matrix& block);
  Index rows() const noexcept { return m_rows; }
  /// Writes the header's row count, flushes and renames the file into place. \throws IoError.
  void finish();

 private:
  std::string m_path;
  std::string m_temp;
  std::ofstream m_out;
  Index m_cols = 0;
  Index m_rows = 0;
  bool m_float32 = false;
  bool m_done = false;
  std::vector<char> m_buffer;
};

/// The column names of a 2-D .npy file: those of its sidecar `path.json`
/// ({"columns": ["a", "b", ...]}, written by `nnlift convert`), else "1", "2", ... .
/// \throws IoError naming the sidecar if it is malformed or names another number of columns.
std::vector<std::string> npy_column_names(const std::string& path, Index cols);

/// Writes the sidecar `path.json` of a .npy file with its column names (atomically).
void write_npy_column_names(const std::string& path, const std::vector<std::string>& names);

/// A data set from a 2-D .npy file, its columns chosen by name as read_csv chooses them (names
/// from npy_column_names; options.share: the part-th of `parts` equal row ranges). Every chosen
/// value must be finite; with options.allow_missing a NaN is a missing value.
/// \throws IoError naming the file, row and column of a non-finite value, and as NpyRows and
///         read_csv for the file and the column choice; std::invalid_argument for text_columns
///         (a .npy file holds numbers only).
Dataset read_npy_dataset(const std::string& path, const CsvOptions& options);

/// Rows [begin, end) of a .npy table, columns chosen as read_npy_dataset chooses them.
/// \throws as read_npy_dataset; std::out_of_range for rows outside the file.
Dataset read_npy_rows(const std::string& path, const CsvOptions& options, Index begin, Index end);

/// A table by its extension: a .npy file by read_npy_dataset, anything else by read_csv.
Dataset read_table(const std::string& path, const CsvOptions& options);

/// True when a path names a .npy file (by its extension, case-insensitively).
bool is_npy_path(const std::string& path);

}  // namespace nnlift
