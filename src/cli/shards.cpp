// Reading training rows from shards, alone or as one of several processes.
// SPDX-License-Identifier: MIT
#include "cli/shards.hpp"

#include <algorithm>
#include <glob.h>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include <nnlift/npy.hpp>
#include <nnlift/types.hpp>

#include "cli/options.hpp"
#include "detail/collective.hpp"
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

// The names of the columns `d` read as text, and "" for a text target.
std::vector<std::string> text_read(const Dataset& d) {
  std::vector<std::string> names;
  for (std::size_t j = 0; j < d.text.size(); ++j) {
    if (!d.text[j].empty()) {
      names.push_back(d.feature_names[j]);
    }
  }
  if (!d.target_text.empty()) {
    names.emplace_back();
  }
  return names;
}

// `csv` with the columns `names` (text_read's) read as text as well.
CsvOptions with_text(CsvOptions csv, const std::set<std::string>& names) {
  for (const std::string& name : names) {
    if (name.empty()) {
      csv.text_target = true;
    } else if (std::find(csv.text_columns.begin(), csv.text_columns.end(), name) ==
               csv.text_columns.end()) {
      csv.text_columns.push_back(name);
    }
  }
  return csv;
}

// Reads `files` whole (or share `part` of `parts` of the only one); checks the columns agree.
// `listed`: they are shards of a list, any of which may hold no rows (an empty partition). A
// column that holds text in one file is read as text in all (as in one file holding all rows).
Dataset read_files(const std::vector<std::string>& files,
                   CsvOptions csv,
                   Index part,
                   Index parts,
                   Index lines_before,
                   bool listed) {
  csv.share = {part, parts, lines_before, listed};
  std::vector<Dataset> sets;
  std::set<std::string> text;
  for (const std::string& f : files) {
    // A shard of a list (`listed`) may be empty, as a partition with no rows; the caller checks
    // the total.
    sets.push_back(read_table(f, csv));
    if (column_list(sets.back()) != column_list(sets.front())) {
      throw IoError(f + ": its columns (" + column_list(sets.back()) + ") differ from those of " +
                    files.front() + " (" + column_list(sets.front()) + ")");
    }
    for (std::string& name : text_read(sets.back())) {
      text.insert(std::move(name));
    }
  }
  for (std::size_t i = 0; i < sets.size(); ++i) {
    if (sets[i].X.rows() > 0 && text_read(sets[i]).size() != text.size()) {
      // Its fields of some text column all read as numbers: read again with it as text (the
      // first read succeeded, and this one reads fewer fields as numbers).
      sets[i] = read_table(files[i], with_text(csv, text));
    }
  }
  // Files without rows have columns that agree and no values whose kind could differ.
  std::vector<Dataset> rows;
  for (Dataset& set : sets) {
    if (set.X.rows() > 0) {
      rows.push_back(std::move(set));
    }
  }
  if (rows.empty()) {
    rows.push_back(std::move(sets.front()));
  }
  return stack(rows);
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
  const std::string first = detail::first_message(reducer, mine);
  if (!first.empty()) {
    throw IoError(first);
  }
}

void require_one_file(const std::string& path, const std::string& command) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 &&
      (path.find(',') != std::string::npos || has_glob_characters(path))) {
    throw UsageError("--data '" + path +
                     "': lists of files and glob patterns are read by 'nnlift train' only; "
                     "'nnlift " +
                     command + "' reads one file");
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
  std::string here = files.front();  // the file this process's messages name
  Index before = 0;
  if (F == 1 && !is_npy_path(files[0])) {  // a .npy file's share is a range of rows
    Index lines = 0;
    throw_first(reducer,
                error_of([&] { lines = csv_share_lines(files[0], r, P, csv.num_threads); }));
    before = reducer.first_row(lines);
  }
  const std::vector<std::string> my_files(files.begin() + F * r / P,
                                          files.begin() + F * (r + 1) / P);
  if (F > 1 && !my_files.empty()) {
    here = my_files.front();
  }
  const auto read_mine = [&](const CsvOptions& options) {
    if (F == 1) {
      return read_files(files, options, r, P, before, false);
    }
    if (!my_files.empty()) {
      return read_files(my_files, options, 0, 1, 0, true);
    }
    // A process without a file takes the columns from the first one, with no row.
    Dataset none = read_files({files[0]}, options, 0, 1, 0, true);
    none.X.resize(0, none.X.cols());
    none.y.resize(0);
    none.text.clear();
    none.target_text.clear();
    return none;
  };
  Dataset mine;
  throw_first(reducer, error_of([&] { mine = read_mine(csv); }));
  // Every process must have read the same columns.
  const std::string columns = column_list(mine);
  const std::string first = detail::first_message(reducer, columns);
  throw_first(reducer,
              first != columns ? here + ": the processes read different columns (" + columns +
                                     " here, " + first + " on rank 0)"
                               : std::string());
  // A column (or the target) is text when any process's share holds text in it: a share whose
  // fields there all read as numbers reads it again as text, as one process reading the whole
  // file would have.
  const std::vector<std::string> text_here = text_read(mine);
  std::set<std::string> text;
  for (std::string& name : detail::gather_strings(reducer, text_here)) {
    text.insert(std::move(name));
  }
  std::string failed;
  if (mine.X.rows() > 0 && text.size() != text_here.size()) {
    failed = error_of([&] { mine = read_mine(with_text(csv, text)); });
  }
  throw_first(reducer, failed);
  if (reducer.global_rows(mine.X.rows()) == 0) {
    throw IoError(files.front() + ": no data rows after the header (header only)");
  }
  return mine;
}

void align_training_rows(Dataset& mine, const Processes& processes) {
  if (processes.size <= 1) {
    return;
  }
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

}  // namespace nnlift::cli
