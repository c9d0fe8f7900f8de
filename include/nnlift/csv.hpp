// Reading numeric CSV files into (X, y) and writing matrices as CSV.
// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <vector>

#include <nnlift/dataset.hpp>

namespace nnlift {

/// One process's share of a CSV file's rows (distributed training): the data lines that start in
/// the part-th of `parts` equal byte ranges of the body (the bytes after the header). The shares
/// of parts 0..parts-1 tile the body in order; a share may hold no row.
struct CsvShare {
  Index part = 0;
  Index parts = 1;
  /// The lines of the body before this share (csv_share_lines of the shares before it, summed),
  /// so that messages name the file's own line numbers.
  Index lines_before = 0;
  /// The whole file may hold no data rows (a shard among several, as a partitioned export
  /// writes them): the caller checks the total. A share of several parts always may.
  bool may_be_empty = false;
};

/// How read_csv chooses the columns. Every field of a chosen column must be a finite number:
/// integers, decimals and exponents, optionally with surrounding spaces and quotes ("1.5").
struct CsvOptions {
  std::string target;                 ///< target column name; "" = the last column
  bool has_target = true;             ///< false: no target (prediction input); y is empty
  std::vector<std::string> features;  ///< input columns in this order; empty = all but target/drop
  std::vector<std::string> drop;      ///< columns to ignore (only when features is empty)
  bool reject_constant_features = false;  ///< throw DataError if a feature column is constant
  /// Missing values (an empty field, NA, N/A, NaN, ?, null; any case) read as NaN instead of an
  /// error. An error names them as missing either way. "None" is missing in a column of numbers,
  /// but a category (a class) in a text column: in a column that may be detected as text, a
  /// "None" without allow_missing is an error only once the column turns out to hold numbers.
  bool allow_missing = false;
  /// More spellings of a missing value ('.', '-', '-999'), compared with a field as written
  /// (spaces and quotes around it removed), in every column: text and target too.
  std::vector<std::string> na_values;
  /// Feature columns read as text (Dataset::text) instead of numbers: categorical columns. Their
  /// X column is NaN; a missing value is the empty string ("None" is a category).
  std::vector<std::string> text_columns;
  /// A feature column with a field that is neither a number nor missing is read as text (it is
  /// added to text_columns) instead of an error.
  bool detect_text_columns = false;
  /// The target column read as text (Dataset::target_text; y is NaN): class labels.
  bool text_target = false;
  /// A target field that is neither a number nor missing makes the target text (as text_target)
  /// instead of an error.
  bool detect_text_target = false;
  /// Appended to the error for an input field that is neither a number nor missing (without
  /// detect_text_columns): what the caller offers for text columns.
  std::string text_hint;
  /// The same for a target field (without detect_text_target).
  std::string target_hint;
  /// Appended to the error for a missing value (without allow_missing): what the caller offers.
  std::string missing_hint = " (a missing value; --missing mean or drop-rows to accept them)";
  int num_threads = 0;  ///< 0 = OpenMP default. The result does not depend on it.
  CsvShare share;       ///< the rows to read: all of them by default
};

/// Reads a CSV file with a header row of column names. Lines may end in LF or CRLF; blank lines
/// are skipped. A column with an empty name (a row index written by pandas) is not read; it is
/// listed in Dataset::unused_columns as "(column N, no name)". Parsing uses std::from_chars and
/// runs in parallel over chunks of the file. Columns that are not selected are split but not
/// parsed (they may hold text).
/// \throws IoError (file, line and column in the message) for a missing or empty file, a file with
///         a header only, a ragged row, an empty, non-numeric, NaN or infinite field, duplicate
///         column names, an unnamed last column that would be the default target, a
///         target/feature/drop name the file does not have, or no feature column left;
///         std::invalid_argument for contradictory options (features and drop, a column
///         both target and feature, a feature listed twice);
///         DataError for a constant feature column when options.reject_constant_features.
/// Cost: one pass over the file, O(bytes / threads).
Dataset read_csv(const std::string& path, const CsvOptions& options = {});

/// The lines (blank ones included) of share `part` of `parts` of a CSV file's body (CsvShare).
/// Reads only that share's bytes (and the header).
/// \throws IoError as read_csv for a missing, empty or non-text file; std::invalid_argument for
///         a part outside [0, parts).
Index csv_share_lines(const std::string& path, Index part, Index parts, int num_threads = 0);

/// Writes a header row and the rows of `values` (n×names.size()) with the shortest decimal
/// representation that round-trips. Atomic: writes `path`.tmp-XXXX, then renames it.
/// \throws std::invalid_argument if the column count differs from names.size(); IoError on I/O.
void write_csv(const std::string& path,
               const std::vector<std::string>& names,
               const Matrix& values,
               int num_threads = 0);

/// Names of the columns of X that are constant (max == min); empty if none.
std::vector<std::string> constant_columns(const Matrix& X, const std::vector<std::string>& names);

}  // namespace nnlift
