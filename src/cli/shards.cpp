// Reading training rows from shards, alone or as one of several processes.
// SPDX-License-Identifier: MIT
#include "cli/shards.hpp"

#include <algorithm>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nnlift/npy.hpp>
#include <nnlift/types.hpp>

#include "detail/io.hpp"
#include "detail/text.hpp"

namespace nnlift::cli {
namespace {

bool has_glob_characters(const std::string& s) {
  return s.find_first_of("*?[") != std::string::npos;
}

void require_readable(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw IoError(path + ": no such file");
  }
  if (S_ISDIR(st.st_mode)) {
    throw IoError(path + ": is a directory, not a CSV file");
  }
  if (::access(path.c_str(), R_OK) != 0) {
    throw IoError(path + ": not readable");
  }
}

// Rows of several data sets with the same columns, stacked in order.
Dataset stack(std::vector<Dataset>& parts) {
  Dataset out = std::move(parts.front());
  if (parts.size() == 1) {
    return out;  // one file: its rows as read, not a copy (n×d doubles, the largest allocation)
  }
  Index rows = out.X.rows();
  for (std::size_t i = 1; i < parts.size(); ++i) {
    rows += parts[i].X.rows();
  }
  Matrix X(rows, out.X.cols());
  detail::advise_huge_pages(X);
  Vector y(out.y.size() > 0 ? rows : 0);
  Index at = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const Dataset& p = i == 0 ? out : parts[i];
    X.middleRows(at, p.X.rows()) = p.X;
    if (y.size() > 0) {
      y.segment(at, p.y.size()) = p.y;
    }
    for (std::size_t j = 0; j < out.text.size() && i > 0; ++j) {
      out.text[j].insert(out.text[j].end(), p.text[j].begin(), p.text[j].end());
    }
    if (i > 0) {
      out.target_text.insert(out.target_text.end(), p.target_text.begin(), p.target_text.end());
    }
    at += p.X.rows();
  }
  out.X = std::move(X);
  out.y = std::move(y);
  return out;
}

// The columns of a data set as one line, to compare files and processes.
std::string column_list(const Dataset& d) {
  return detail::name_list(d.feature_names) + " -> " + d.target_name;
}

// Reads `files` whole (or share `part` of `parts` of the only one); checks the columns agree.
// `listed`: they are shards of a list, any of which may hold no rows (an empty partition).
Dataset read_files(const std::vector<std::string>& files,
                   CsvOptions csv,
                   Index part,
                   Index parts,
                   Index lines_before,
                   bool listed) {
  std::vector<Dataset> sets;
  for (const std::string& f : files) {
    // A shard of a list (`listed`) may be empty, as a partition with no rows; the caller checks
    // the total.
    csv.share = {part, parts, lines_before, listed};
    sets.push_back(read_table(f, csv));
    if (column_list(sets.back()) != column_list(sets.front())) {
      throw IoError(f + ": its columns (" + column_list(sets.back()) + ") differ from those of " +
                    files.front() + " (" + column_list(sets.front()) + ")");
    }
    if (sets.back().X.rows() == 0 && sets.size() > 1) {
      sets.pop_back();  // its columns agree; it has no values whose kind could differ
      continue;
    }
    if (sets.front().X.rows() == 0 && sets.size() > 1) {
      sets.erase(sets.begin());  // the same for an empty first shard
    }
    if (sets.back().text.empty() != sets.front().text.empty()) {
      throw IoError(f + ": text (categorical) columns differ from those of " + files.front());
    }
    if (sets.back().target_text.empty() != sets.front().target_text.empty()) {
      throw IoError(f + ": its target holds " +
                    (sets.back().target_text.empty() ? "numbers" : "text (class labels)") +
                    ", that of " + files.front() + " does not");
    }
  }
  return stack(sets);
}

template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

void throw_first(const RowReducer& reducer, const std::string& mine) {
  const std::string first = first_error(reducer, mine);
  if (!first.empty()) {
    throw IoError(first);
  }
}

std::vector<std::string> expand_data_paths(const std::string& spec) {
  std::vector<std::string> files;
  std::size_t begin = 0;
  for (;;) {
    const std::size_t comma = spec.find(',', begin);
    const std::string item = spec.substr(begin, comma == std::string::npos ? comma : comma - begin);
    if (has_glob_characters(item)) {
      glob_t g{};
      const int rc = ::glob(item.c_str(), 0, nullptr, &g);
      std::vector<std::string> matches;
      for (std::size_t i = 0; rc == 0 && i < g.gl_pathc; ++i) {
        matches.emplace_back(g.gl_pathv[i]);
      }
      ::globfree(&g);
      if (matches.empty()) {
        throw IoError(item + ": no file matches this pattern");
      }
      std::sort(matches.begin(), matches.end());
      files.insert(files.end(), matches.begin(), matches.end());
    } else if (!item.empty()) {
      files.push_back(item);
    }
    if (comma == std::string::npos) {
      break;
    }
    begin = comma + 1;
  }
  if (files.empty()) {
    throw IoError("--data '" + spec + "' names no file");
  }
  for (const std::string& f : files) {
    require_readable(f);
  }
  return files;
}

std::string first_error(const RowReducer& reducer, const std::string& mine) {
  // Each process's message as a column of character codes, stacked in rank order, with the
  // lengths gathered first.
  const Matrix lengths =
      reducer.gather_rows(Matrix::Constant(1, 1, static_cast<double>(mine.size())));
  Matrix codes(static_cast<Index>(mine.size()), 1);
  for (std::size_t i = 0; i < mine.size(); ++i) {
    codes(static_cast<Index>(i), 0) = static_cast<unsigned char>(mine[i]);
  }
  const Matrix all = reducer.gather_rows(codes);
  Index at = 0;
  for (Index r = 0; r < lengths.rows(); ++r) {
    const auto n = static_cast<Index>(lengths(r, 0));
    if (n > 0) {
      std::string message(static_cast<std::size_t>(n), ' ');
      for (Index i = 0; i < n; ++i) {
        message[static_cast<std::size_t>(i)] = static_cast<char>(all(at + i, 0));
      }
      return message;
    }
  }
  return "";
}

Dataset read_training_rows(const std::vector<std::string>& files,
                           const CsvOptions& csv,
                           const Processes& processes) {
  if (processes.reducer == nullptr) {
    Dataset all = read_files(files, csv, 0, 1, 0, files.size() > 1);
    if (all.X.rows() == 0) {
      throw IoError(files.front() + ": no data rows after the header (header only), nor in the " +
                    std::to_string(files.size() - 1) + " other file(s)");
    }
    return all;
  }
  const RowReducer& reducer = *processes.reducer;
  const Index P = processes.size, r = processes.rank;
  const Index F = static_cast<Index>(files.size());
  // One file: byte shares, numbered from the lines of the shares before. Several: whole files.
  Dataset mine;
  std::string here = files.front();  // the file this process's messages name
  if (F == 1) {
    Index lines = 0;
    if (!is_npy_path(files[0])) {  // a .npy file's share is a range of rows
      throw_first(reducer,
                  error_of([&] { lines = csv_share_lines(files[0], r, P, csv.num_threads); }));
    }
    const Index before = reducer.first_row(lines);
    throw_first(reducer, error_of([&] { mine = read_files(files, csv, r, P, before, false); }));
  } else {
    const std::vector<std::string> my_files(files.begin() + F * r / P,
                                            files.begin() + F * (r + 1) / P);
    here = my_files.empty() ? here : my_files.front();
    throw_first(reducer, error_of([&] {
                  // A process without a file takes the columns from the first one, with no row.
                  mine = my_files.empty() ? read_files({files[0]}, csv, 0, 1, 0, true)
                                          : read_files(my_files, csv, 0, 1, 0, true);
                  if (my_files.empty()) {
                    mine.X.resize(0, mine.X.cols());
                    mine.y.resize(0);
                    mine.text.clear();
                    mine.target_text.clear();
                  }
                }));
  }
  // Every process must have read the same columns, and no text.
  std::string disagreement;
  const std::string columns = column_list(mine);
  const std::string first = first_error(reducer, columns);
  if (first != columns) {
    disagreement = here + ": the processes read different columns (" + columns + " here, " + first +
                   " on rank 0)";
  } else if (!mine.text.empty()) {
    std::vector<std::string> text_columns;
    for (std::size_t j = 0; j < mine.text.size(); ++j) {
      if (!mine.text[j].empty()) {
        text_columns.push_back(mine.feature_names[j]);
      }
    }
    disagreement = here + ": column(s) " + detail::name_list(text_columns) +
                   " hold text (categorical values, or a field that is not a number); text "
                   "columns are not supported across several processes: encode them as numbers "
                   "first, or train in one process";
  } else if (!mine.target_text.empty()) {
    disagreement = here + ": target '" + detail::excerpt(mine.target_name) +
                   "' holds text (class labels); text labels are not supported across several "
                   "processes: encode them as numbers 0, 1, ... first, or train in one process";
  }
  throw_first(reducer, disagreement);
  if (P > 1) {
    const Index d = mine.X.cols();
    Matrix both(mine.X.rows(), d + 1);
    both.leftCols(d) = mine.X;
    both.col(d) = mine.y.size() > 0 ? mine.y : Vector::Zero(mine.X.rows());
    const Matrix aligned = processes.align_rows(both);
    mine.X = aligned.leftCols(d);
    if (mine.y.size() > 0 || aligned.rows() > 0) {
      mine.y = aligned.col(d);
    }
  }
  if (reducer.global_rows(mine.X.rows()) == 0) {
    throw IoError(files.front() + ": no data rows after the header (header only)");
  }
  return mine;
}

}  // namespace nnlift::cli
