// From a raw table (numbers with missing values, text columns) to the numeric inputs a network
// takes, and back again at prediction time: one-hot categories and imputation values, fitted on
// the training rows and stored in the model.
// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <vector>

#include <nnlift/dataset.hpp>
#include <nnlift/execution.hpp>

namespace nnlift {

/// What to do with a missing value (an empty field, NA, NaN, ?, ...).
enum class MissingPolicy {
  Error,     ///< refuse it, naming the first one
  Mean,      ///< the training mean of its column (a category column: the categories' shares)
  DropRows,  ///< leave the row out of training (at prediction: refused, as there is no row to drop)
};
const char* to_string(MissingPolicy policy) noexcept;
/// \throws std::invalid_argument listing the accepted names (error, mean, drop-rows).
MissingPolicy parse_missing_policy(const std::string& name);

/// How one raw input column becomes network inputs.
struct ColumnEncoding {
  std::string name;
  /// Categorical: one input per category, named "name=category", 1 for the row's category and
  /// 0 otherwise (all 0 for a category not seen in training). Empty: a numeric column.
  std::vector<std::string> categories;
  /// Imputation for a missing value: one value (numeric) or one per category (their training
  /// shares); empty when the training rows had none to fill (Error / DropRows).
  std::vector<double> fill;
  bool categorical() const noexcept { return !categories.empty(); }
};

/// The raw columns in input order; empty() when the inputs are used as they are.
struct InputEncoding {
  std::vector<ColumnEncoding> columns;
  MissingPolicy missing = MissingPolicy::Error;
  /// The spellings of a missing value given in training beyond the usual ones
  /// (CsvOptions::na_values), read the same way when the model predicts.
  std::vector<std::string> na_values;
  bool empty() const noexcept { return columns.empty(); }
  /// The network's input names: numeric columns as they are, categories as "name=category".
  std::vector<std::string> input_names() const;
  /// The raw columns that are categorical.
  std::vector<std::string> categorical_names() const;
  /// Each categorical column's inputs (indices into input_names()): one-hot groups that sum to
  /// one in every row (StandardizerOptions::one_hot_groups).
  std::vector<std::vector<Index>> one_hot_groups() const;
};

/// Limits of the encoder.
struct EncodeOptions {
  MissingPolicy missing = MissingPolicy::Error;
  /// A text column with more distinct values than this is refused (a numeric column with stray
  /// text, or an identifier): > 0.
  std::size_t max_categories = 100;
};

/// The result of encoding training rows: the numeric data set, its encoding, what happened.
struct Encoded {
  Dataset data;
  InputEncoding encoding;
  Index dropped_rows = 0;  ///< rows left out (missing values under DropRows, missing targets)
  std::vector<std::string> warnings;
};

/// Fits the encoding on raw training rows (CsvOptions::allow_missing and text_columns) and
/// applies it. `source` names the file in messages. Rows with a missing target are dropped with
/// a warning (there is nothing to learn from them) unless the policy is Error.
/// \throws DataError naming the column (and data row) for a missing value under Error, a text
///         column with more than max_categories distinct values, or no row left.
Encoded fit_encoding(const Dataset& raw, const EncodeOptions& options, const std::string& source);

/// The same over the rows of every part of `reducer` (an MPI program's processes, each with its
/// share of the raw rows in part order): categories, counts and fill values are those of all
/// parts' rows together, the same on every part, and the same bits for any split of the rows
/// (a numeric column's mean comes from an exact sum). Each part gets its own rows encoded;
/// `dropped_rows` and the warnings count all parts' rows, and a data row in a message is counted
/// over all parts. Parts with rows must read each column alike (text or numbers). Collective:
/// every part calls it, and an error on any part is thrown on every part with its message.
Encoded fit_encoding(const Dataset& raw,
                     const EncodeOptions& options,
                     const std::string& source,
                     const RowReducer& reducer);

/// Applies a fitted encoding to raw rows read with the encoding's categorical columns as text
/// and missing values allowed. Unseen categories become all-zero rows (one warning with their
/// count); missing values take the fill values.
/// \throws DataError for a missing value the encoding has no fill for, naming column and row;
///         std::invalid_argument if raw lacks a column of the encoding.
Dataset apply_encoding(const Dataset& raw,
                       const InputEncoding& encoding,
                       const std::string& source,
                       std::vector<std::string>& warnings);

/// Class labels read as text (Dataset::target_text) as numbers: returns the sorted distinct
/// labels, and sets y to each row's index among them (NaN for a missing label) and clears
/// target_text. A data set without text labels is left as it is (returns none).
/// \throws DataError naming the target and `source` for more than max_classes distinct labels.
std::vector<std::string> encode_text_target(Dataset& data,
                                            const std::string& source,
                                            std::size_t max_classes = 100);

/// The same over the rows of every part of `reducer`: the labels of all parts, sorted, the
/// same list on every part. Collective, as fit_encoding's reducer variant.
std::vector<std::string> encode_text_target(Dataset& data,
                                            const std::string& source,
                                            const RowReducer& reducer,
                                            std::size_t max_classes = 100);

/// Text labels of rows to score against a model's classes: y(i) = classes[c] for the label
/// class_names[c]; a label not among class_names gets a value below every class (scored as
/// wrong). Returns how many labels were unknown; clears target_text. `first` numbers the rows
/// in messages (data row first + i + 1).
/// \throws DataError naming `source` and the row for a missing label; std::invalid_argument if
///         the two lists differ in size or are empty, or data has no text labels.
Index apply_class_names(Dataset& data,
                        const std::vector<std::string>& class_names,
                        const std::vector<double>& classes,
                        const std::string& source,
                        Index first = 0);

}  // namespace nnlift
