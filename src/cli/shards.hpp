// Training rows from one CSV file or a list of shards, read by one process or by each process
// of a distributed run (its share). SPDX-License-Identifier: MIT
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nnlift/csv.hpp>
#include <nnlift/execution.hpp>

namespace nnlift::cli {

/// The processes a command runs on together (mpirun), or this process alone.
struct Processes {
  const RowReducer* reducer = nullptr;  ///< nullptr: this process alone
  int rank = 0;
  int size = 1;
  /// Moves rows between processes so that each holds whole blocks (MpiReducer::align_rows).
  std::function<Matrix(const Matrix&)> align_rows;
  /// Seconds spent communicating so far (MpiReducer::communication_seconds).
  std::function<double()> communication_seconds;
};

/// The files of a --data value: a comma-separated list of paths and glob patterns (each
/// pattern's matches sorted by name). Every file must exist and be readable.
/// \throws IoError naming a missing file or a pattern that matches nothing.
std::vector<std::string> expand_data_paths(const std::string& spec);

/// For a command that reads one file (all but train): a --data value that names no file and
/// is a list or a glob pattern, train's syntax, is refused as such.
/// \throws UsageError naming the value and `command`.
void require_one_file(const std::string& path, const std::string& command);

/// Throws IoError with the first process's error on every process, if any has one. Collective.
void throw_first(const RowReducer& reducer, const std::string& mine);

/// This process's training rows, as read (text and missing values not yet encoded). Alone:
/// every file, in order. Among P processes: one file is cut into P byte shares at line starts;
/// several files go to the processes in contiguous groups, in order. Every file must have the
/// chosen columns; an error on any process is thrown on every process with its message
/// (file:line:column). A column (or the target) that holds text in any process's share is read
/// as text by every process, as one process would read the whole file.
Dataset read_training_rows(const std::vector<std::string>& files,
                           const CsvOptions& csv,
                           const Processes& processes);

/// Among several processes, moves the (encoded) rows so that every process holds whole blocks
/// (MpiReducer::align_rows), keeping their global order: the model is then bitwise the one
/// process's. Alone: nothing to do.
void align_training_rows(Dataset& mine, const Processes& processes);

}  // namespace nnlift::cli
