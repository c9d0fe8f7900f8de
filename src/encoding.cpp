// One-hot categories and missing-value imputation (include/nnlift/encoding.hpp).
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <utility>

#include <nnlift/encoding.hpp>
#include <nnlift/execution.hpp>
#include <nnlift/types.hpp>

#include "detail/check.hpp"
#include "detail/collective.hpp"
#include "detail/exact_sum.hpp"
#include "detail/names.hpp"
#include "detail/text.hpp"
#include "detail/text_columns.hpp"

namespace nnlift {
namespace {

const detail::EnumName<MissingPolicy> kMissingNames[] = {{MissingPolicy::Error, "error"},
                                                         {MissingPolicy::Mean, "mean"},
                                                         {MissingPolicy::DropRows, "drop-rows"}};

bool is_text(const Dataset& raw, std::size_t j) {
  return j < raw.text.size() && !raw.text[j].empty();
}

bool missing_at(const Dataset& raw, std::size_t j, Index i) {
  return is_text(raw, j) ? raw.text[j][static_cast<std::size_t>(i)].empty()
                         : std::isnan(raw.X(i, static_cast<Index>(j)));
}

// Whether the whole text reads as a number.
bool parses_as_number(const std::string& text) {
  double value = 0;
  const char* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, value);
  return r.ec == std::errc() && r.ptr == end;
}

// Whether a value reads as a date or a time stamp: 2012-01-31, 2012/1/31, 31.01.2012, 1/31/12,
// each optionally followed by a time (T or a space, then 12:30, 12:30:05.5, a zone).
bool looks_like_date(const std::string& v) {
  std::size_t at = 0;
  const auto digits = [&](std::size_t least, std::size_t most) {
    std::size_t count = 0;
    while (at < v.size() && count < most && std::isdigit(static_cast<unsigned char>(v[at]))) {
      ++at;
      ++count;
    }
    return count >= least;
  };
  const auto separator = [&](const char* any) {
    if (at < v.size() && v[at] != '\0' && std::strchr(any, v[at]) != nullptr) {
      ++at;
      return true;
    }
    return false;
  };
  // A year of four digits, or of two.
  const auto year = [&] {
    const std::size_t from = at;
    digits(1, 4);
    return at - from == 4 || at - from == 2;
  };
  const bool year_first = v.size() >= 5 && std::isdigit(static_cast<unsigned char>(v[0])) &&
                          std::isdigit(static_cast<unsigned char>(v[3])) &&
                          std::isdigit(static_cast<unsigned char>(v[1])) &&
                          std::isdigit(static_cast<unsigned char>(v[2])) && v[4] != '\0' &&
                          std::strchr("-/.", v[4]) != nullptr;
  const bool date =
      year_first
          ? digits(4, 4) && separator("-/.") && digits(1, 2) && separator("-/.") && digits(1, 2)
          : digits(1, 2) && separator("-/.") && digits(1, 2) && separator("-/.") && year();
  if (!date) {
    return false;
  }
  if (at == v.size()) {
    return true;
  }
  if (!separator("T ") || !digits(1, 2) || !separator(":") || !digits(2, 2)) {
    return false;
  }
  if (separator(":") && (!digits(2, 2) || (separator(".") && !digits(1, 9)))) {
    return false;
  }
  return at == v.size() || v.compare(at, std::string::npos, "Z") == 0 ||
         ((v[at] == '+' || v[at] == '-') && v.size() - at <= 6);
}

// Whether most of a column's distinct values are dates.
bool holds_dates(const std::map<std::string, Index>& counts) {
  std::size_t dates = 0;
  for (const auto& entry : counts) {
    dates += looks_like_date(entry.first) ? 1 : 0;
  }
  return !counts.empty() && 10 * dates >= 9 * counts.size();
}

// Whether a value is a number written with decorations a spreadsheet adds: a currency sign in
// front ($, €, £, ¥; after a sign, if any), thousands separators (a ',' between digits) or a
// percent sign at the end: "$2,302.51", "-€5", "42.4%", "1,234". A plain number is not.
bool decorated_number(const std::string& v) {
  std::string plain;
  std::size_t at = 0;
  if (at < v.size() && (v[at] == '-' || v[at] == '+')) {
    if (v[at] == '-') {
      plain += '-';  // (from_chars takes no '+')
    }
    ++at;
  }
  bool decorated = false;
  for (const char* sign : {"$", "\xE2\x82\xAC", "\xC2\xA3", "\xC2\xA5"}) {  // $ € £ ¥
    const std::size_t len = std::strlen(sign);
    if (v.compare(at, len, sign) == 0) {
      at += len;
      decorated = true;
      break;
    }
  }
  std::size_t end = v.size();
  if (end > at && v[end - 1] == '%') {
    --end;
    decorated = true;
  }
  const auto digit = [&](std::size_t i) {
    return i < v.size() && std::isdigit(static_cast<unsigned char>(v[i])) != 0;
  };
  for (std::size_t i = at; i < end; ++i) {
    if (v[i] == ',' && i > at && digit(i - 1) && digit(i + 1)) {
      decorated = true;  // a thousands separator
    } else {
      plain += v[i];
    }
  }
  return decorated && parses_as_number(plain);
}

// Whether most of a column's distinct values are decorated numbers (decorated_number). Named
// with an example, since read as text they would be categories, or too many of them.
std::string decorated_numbers(const std::string& name, const std::map<std::string, Index>& counts) {
  std::size_t decorated = 0;
  const std::string* example = nullptr;
  for (const auto& entry : counts) {
    if (decorated_number(entry.first)) {
      ++decorated;
      example = example != nullptr ? example : &entry.first;
    }
  }
  if (counts.empty() || 10 * decorated < 9 * counts.size()) {
    return "";
  }
  return "column '" + name +
         "' holds numbers written with a currency sign, thousands separators "
         "or a percent sign (e.g. '" +
         detail::excerpt(*example, 40) +
         "'), which read as text: write them as plain numbers in the file (2302.51, not "
         "$2,302.51), or --drop it";
}

// A text column whose values are mostly numbers (a score with '.' or '-' for a missing value, a
// count with a stray word): read as categories all the same, which loses the numbers' order, so
// the warning names the values that are not numbers. Empty when the column is not such.
std::string mostly_numbers(const std::string& name, const std::map<std::string, Index>& counts) {
  Index numbers = 0, others = 0;
  std::vector<std::pair<Index, std::string>> words;
  for (const auto& [value, count] : counts) {
    if (parses_as_number(value)) {
      numbers += count;
    } else {
      others += count;
      words.emplace_back(-count, value);
    }
  }
  if (others == 0 || numbers <= others) {
    return "";
  }
  std::sort(words.begin(), words.end());
  std::string listed;
  for (std::size_t i = 0; i < words.size() && i < 3; ++i) {
    listed += (i > 0 ? ", '" : "'") + detail::excerpt(words[i].second, 20) + "' in " +
              std::to_string(-words[i].first) + " row(s)";
  }
  if (words.size() > 3) {
    listed += ", and " + std::to_string(words.size() - 3) + " more";
  }
  return "column '" + name + "': " + std::to_string(numbers) + " of " +
         std::to_string(numbers + others) + " values are numbers, the others not (" + listed +
         "), so its " + std::to_string(counts.size()) +
         " distinct values are read as categories. If such a value marks a missing one, name it "
         "in --na-values (with --missing mean or drop-rows); if it is a typo, fix it";
}

std::string where(const std::string& source, const std::string& column, Index row) {
  return source + ": column '" + column + "', data row " + std::to_string(row + 1);
}

// A "None" the model has no category for, where it has fill values: a missing value, as such a
// model read it in training (a model trained before "None" in a text column was a category).
bool unseen_none(const Dataset& raw, const ColumnEncoding& col, std::size_t j, Index i) {
  if (!col.categorical() || col.fill.empty() || !is_text(raw, j)) {
    return false;
  }
  const std::string& value = raw.text[j][static_cast<std::size_t>(i)];
  return detail::is_none_token(value) &&
         !std::binary_search(col.categories.begin(), col.categories.end(), value);
}

// Fills the encoded row i of X from raw row `from`; returns false for an unseen category.
bool encode_row(const Dataset& raw,
                const InputEncoding& enc,
                Index from,
                Matrix& X,
                Index i,
                const std::string& source) {
  bool seen = true;
  Index at = 0;
  for (std::size_t j = 0; j < enc.columns.size(); ++j) {
    const ColumnEncoding& col = enc.columns[j];
    const bool missing = missing_at(raw, j, from) || unseen_none(raw, col, j, from);
    if (missing && col.fill.empty()) {
      throw DataError(where(source, col.name, from) +
                      ": missing value, and the model has no fill value for it (it was trained "
                      "with --missing " +
                      to_string(enc.missing) + ")");
    }
    if (!col.categorical()) {
      X(i, at++) = missing ? col.fill[0] : raw.X(from, static_cast<Index>(j));
      continue;
    }
    const Index width = static_cast<Index>(col.categories.size());
    if (missing) {
      for (Index c = 0; c < width; ++c) {
        X(i, at + c) = col.fill[static_cast<std::size_t>(c)];
      }
    } else {
      X.row(i).segment(at, width).setZero();
      const std::string& value = raw.text[j][static_cast<std::size_t>(from)];
      const auto it = std::lower_bound(col.categories.begin(), col.categories.end(), value);
      if (it != col.categories.end() && *it == value) {
        X(i, at + (it - col.categories.begin())) = 1.0;
      } else {
        seen = false;
      }
    }
    at += width;
  }
  return seen;
}

// A refusal found in this part's rows, with where it is among all parts' (column, then data
// row): the one found first by a single part reading all rows.
struct Refusal {
  Index column = 0;
  Index row = 0;
  std::string message;  // "" for none
};

// Throws DataError on every part with the message of the lowest (column, row), if any part has
// one. Collective.
void agree(const RowReducer& reducer, const Refusal& mine) {
  const double none = std::numeric_limits<double>::infinity();
  Matrix key(1, 2);
  key << (mine.message.empty() ? none : static_cast<double>(mine.column)),
      (mine.message.empty() ? none : static_cast<double>(mine.row));
  const Matrix keys = reducer.gather_rows(key);  // one row per part, in part order
  const std::vector<std::string> messages = detail::gather_strings(reducer, {mine.message});
  Index lowest = 0;
  for (Index p = 1; p < keys.rows(); ++p) {
    if (std::make_pair(keys(p, 0), keys(p, 1)) < std::make_pair(keys(lowest, 0), keys(lowest, 1))) {
      lowest = p;
    }
  }
  if (std::isfinite(keys(lowest, 0))) {
    throw DataError(messages[static_cast<std::size_t>(lowest)]);
  }
}

// Whether each of a part's columns reads as text over all parts: `mine` holds, per column, 't'
// (text here), 'n' (numbers here) or '-' (no row here to tell). Parts with rows must agree (the
// CSV shares of one file read with the same options may not: a share whose fields of a column
// all parse as numbers reads it as numbers; the command line reads such a share again with the
// column named as text); else DataError naming `what[j]`, the same on every part. Collective.
std::vector<char> text_over_parts(const RowReducer& reducer,
                                  const std::string& mine,
                                  const std::vector<std::string>& what,
                                  const std::string& source) {
  const std::vector<std::string> all = detail::gather_strings(reducer, {mine});
  std::vector<char> text(mine.size(), 0);
  for (std::size_t j = 0; j < mine.size(); ++j) {
    bool numbers = false;
    for (const std::string& part : all) {
      text[j] = static_cast<char>(text[j] || part[j] == 't');
      numbers = numbers || part[j] == 'n';
    }
    if (text[j] && numbers) {
      throw DataError(source + ": " + what[j] +
                      " was read as text by one process and as numbers by another: read every "
                      "share with it as text");
    }
  }
  return text;
}

// Which raw columns are text over all parts (text_over_parts). Collective.
std::vector<char> text_flags(const Dataset& raw,
                             const RowReducer& reducer,
                             const std::string& source) {
  const std::size_t d = raw.feature_names.size();
  std::string mine(d, '-');
  std::vector<std::string> what(d);
  for (std::size_t j = 0; j < d; ++j) {
    if (raw.X.rows() > 0) {
      mine[j] = is_text(raw, j) ? 't' : 'n';
    }
    what[j] = "column '" + raw.feature_names[j] + "'";
  }
  return text_over_parts(reducer, mine, what, source);
}

// The categories of one text column with their counts over the kept rows of all parts, in
// order: the union of the parts' values, each part's counts added. Collective.
std::map<std::string, Index> merged_counts(const std::map<std::string, Index>& local,
                                           const RowReducer& reducer) {
  std::vector<std::string> values;
  for (const auto& entry : local) {
    values.push_back(entry.first);
  }
  std::map<std::string, Index> merged;
  for (std::string& v : detail::gather_strings(reducer, values)) {
    merged.emplace(std::move(v), 0);
  }
  Vector counts = Vector::Zero(static_cast<Index>(merged.size()));
  Index at = 0;
  for (const auto& entry : merged) {
    const auto it = local.find(entry.first);
    counts(at++) = it != local.end() ? static_cast<double>(it->second) : 0.0;
  }
  counts = detail::sum_counts(reducer, counts);
  at = 0;
  for (auto& entry : merged) {
    entry.second = static_cast<Index>(counts(at++));
  }
  return merged;
}

// The text columns' categories (with their counts) over the kept rows of all parts; every
// column with more than options.max_categories is refused, all of them in one message, or,
// when most of a column's values are numbers, naming its first value that is not (its data row
// counted over all parts, from `first`: the index of this part's row 0). Collective.
std::vector<std::map<std::string, Index>> text_categories(const Dataset& raw,
                                                          const std::vector<char>& text,
                                                          const std::vector<Index>& rows,
                                                          const EncodeOptions& options,
                                                          const std::string& source,
                                                          const RowReducer& reducer,
                                                          Index first) {
  const std::size_t d = raw.feature_names.size();
  std::vector<std::map<std::string, Index>> categories(d);
  std::vector<std::size_t> too_many;
  for (std::size_t j = 0; j < d; ++j) {
    if (!text[j]) {
      continue;
    }
    std::map<std::string, Index> local;
    for (const Index i : rows) {
      const std::string& v = raw.text[j][static_cast<std::size_t>(i)];
      if (!v.empty()) {
        ++local[v];
      }
    }
    categories[j] = merged_counts(local, reducer);
    if (categories[j].size() > options.max_categories) {
      too_many.push_back(j);
    }
  }
  const auto holds = [&](std::size_t j) {
    return std::to_string(categories[j].size()) + " distinct text values, e.g. '" +
           detail::excerpt(categories[j].begin()->first, 40) + "'";
  };
  const std::string limit = std::to_string(options.max_categories);
  // A column of numbers with a few that are not (a typo, a unit): not categories. Named where:
  // by the part that holds the first such value.
  for (const std::size_t j : too_many) {
    Index numbers = 0, others = 0;
    for (const auto& [value, count] : categories[j]) {
      (parses_as_number(value) ? numbers : others) += count;
    }
    if (numbers < others) {
      continue;
    }
    if (others == 0) {  // named as categorical (--categorical a,b), yet numbers only
      throw DataError(source + ": column '" + raw.feature_names[j] + "' holds " +
                      std::to_string(categories[j].size()) + " distinct numbers, more than " +
                      limit + " categories: read it as numbers (leave it out of --categorical)");
    }
    Refusal mine;
    for (const Index i : rows) {
      const std::string& v = raw.text[j][static_cast<std::size_t>(i)];
      if (v.empty() || parses_as_number(v)) {
        continue;
      }
      mine.row = first + i;
      mine.message =
          where(source, raw.feature_names[j], first + i) + ": '" + detail::excerpt(v) +
          "' is not a number" +
          (others == 1 ? ", and the column's " + std::to_string(numbers) +
                             " other values are: fix it (or make it missing, NA, for --missing)"
                       : ", nor are " + std::to_string(others - 1) + " other values, among " +
                             std::to_string(numbers) +
                             " numbers: fix them (or make them missing, NA, for --missing)");
      break;
    }
    agree(reducer, mine);
  }
  for (const std::size_t j : too_many) {
    if (const std::string why = decorated_numbers(raw.feature_names[j], categories[j]);
        !why.empty()) {
      throw DataError(source + ": " + why);
    }
    if (holds_dates(categories[j])) {
      throw DataError(source + ": column '" + raw.feature_names[j] + "' holds dates (" +
                      std::to_string(categories[j].size()) + " distinct values, e.g. '" +
                      detail::excerpt(categories[j].begin()->first) +
                      "'), which are no categories: --drop it, or add columns of numbers "
                      "derived from it (year, month, day of the year) to the file");
    }
  }
  if (too_many.size() == 1) {
    const std::size_t j = too_many[0];
    throw DataError(source + ": column '" + raw.feature_names[j] + "' holds " +
                    std::to_string(categories[j].size()) + " distinct text values (e.g. '" +
                    detail::excerpt(categories[j].begin()->first) + "'), more than " + limit +
                    " categories: if it is numeric, fix those values; if it is an identifier, "
                    "--drop it");
  }
  if (!too_many.empty()) {
    std::vector<std::string> described, names;
    for (const std::size_t j : too_many) {
      described.push_back("'" + raw.feature_names[j] + "' (" + holds(j) + ")");
      names.push_back(raw.feature_names[j]);
    }
    throw DataError(source + ": columns " + detail::name_list(described, 5) + ": more than " +
                    limit +
                    " categories each. Identifiers and free text are no categories: --drop " +
                    detail::excerpt(detail::join(names, ","), 200) +
                    "; a numeric column among them needs its values that are not numbers fixed");
  }
  return categories;
}

}  // namespace

std::string detail::text_column_kind(const std::map<std::string, Index>& counts) {
  // In the order of fit_column's warnings, so that describe names what train warns of.
  if (!mostly_numbers("", counts).empty()) {
    return "mostly numbers";
  }
  if (!decorated_numbers("", counts).empty()) {
    return "numbers written with a currency sign, thousands separators or a percent sign";
  }
  return holds_dates(counts) ? "dates" : "";
}

const char* to_string(MissingPolicy policy) noexcept {
  return detail::name_of(kMissingNames, policy);
}

MissingPolicy parse_missing_policy(const std::string& name) {
  return detail::parse_name(kMissingNames, name, "missing-value policy");
}

std::vector<std::string> InputEncoding::input_names() const {
  std::vector<std::string> out;
  for (const ColumnEncoding& c : columns) {
    if (!c.categorical()) {
      out.push_back(c.name);
    }
    for (const std::string& category : c.categories) {
      out.push_back(c.name + "=" + category);
    }
  }
  return out;
}

std::vector<std::string> InputEncoding::categorical_names() const {
  std::vector<std::string> out;
  for (const ColumnEncoding& c : columns) {
    if (c.categorical()) {
      out.push_back(c.name);
    }
  }
  return out;
}

std::vector<std::vector<Index>> InputEncoding::one_hot_groups() const {
  std::vector<std::vector<Index>> out;
  Index at = 0;
  for (const ColumnEncoding& c : columns) {
    if (!c.categorical()) {
      ++at;
      continue;
    }
    std::vector<Index> group;
    for (std::size_t k = 0; k < c.categories.size(); ++k) {
      group.push_back(at++);
    }
    out.push_back(std::move(group));
  }
  return out;
}

namespace {

// The training rows an encoding is fitted on, and what was left out.
struct KeptRows {
  std::vector<Index> rows;     // kept, in order
  std::vector<Index> missing;  // per column: missing values among the rows with a target
  Index missing_targets = 0;
  // The columns with the most missing values, "'a' (400 missing), 'b' (12 missing)".
  std::string most_missing(const Dataset& raw) const {
    std::vector<std::size_t> order;
    for (std::size_t j = 0; j < missing.size(); ++j) {
      if (missing[j] > 0) {
        order.push_back(j);
      }
    }
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return missing[a] > missing[b];
    });
    std::vector<std::string> named;
    for (const std::size_t j : order) {
      named.push_back("'" + raw.feature_names[j] + "' (" + std::to_string(missing[j]) +
                      " missing)");
    }
    return detail::name_list(named, 3);
  }
};

// Which rows are kept: a missing target never trains; under DropRows neither does a row with a
// missing input. Under Error the first missing value of all parts is refused (its data row
// counted from `first`, the index of row 0 among all parts' rows): targets first, then column
// by column. This part's rows; missing counts local. Collective.
KeptRows kept_rows(const Dataset& raw,
                   MissingPolicy policy,
                   const std::string& source,
                   Index first,
                   const RowReducer& reducer) {
  const Index n = raw.X.rows();
  const std::size_t d = raw.feature_names.size();
  KeptRows out;
  std::vector<char> keep(static_cast<std::size_t>(n), 1);
  Refusal refused;
  for (Index i = 0; i < n; ++i) {
    if (raw.y.size() == n && std::isnan(raw.y(i))) {
      if (policy == MissingPolicy::Error) {
        refused = {0,
                   first + i,
                   where(source, raw.target_name, first + i) +
                       ": missing target value (--missing mean or drop-rows leave such rows out)"};
        break;
      }
      keep[static_cast<std::size_t>(i)] = 0;
      ++out.missing_targets;
    }
  }
  agree(reducer, refused);
  const std::vector<char> labelled = keep;
  out.missing.assign(d, 0);
  for (std::size_t j = 0; j < d && refused.message.empty(); ++j) {
    for (Index i = 0; i < n; ++i) {
      if (!labelled[static_cast<std::size_t>(i)] || !missing_at(raw, j, i)) {
        continue;
      }
      if (policy == MissingPolicy::Error) {
        refused = {static_cast<Index>(j),
                   first + i,
                   where(source, raw.feature_names[j], first + i) +
                       ": missing value (--missing mean fills it, --missing drop-rows leaves the "
                       "row out)"};
        break;
      }
      ++out.missing[j];
      if (policy == MissingPolicy::DropRows) {
        keep[static_cast<std::size_t>(i)] = 0;
      }
    }
  }
  agree(reducer, refused);
  for (Index i = 0; i < n; ++i) {
    if (keep[static_cast<std::size_t>(i)]) {
      out.rows.push_back(i);
    }
  }
  return out;
}

// The counts of `kept` over all parts: its missing counts summed in place; returns the kept
// rows and the rows with a missing target, over all parts. Collective.
std::pair<Index, Index> merge_kept(KeptRows& kept, const RowReducer& reducer) {
  const std::size_t d = kept.missing.size();
  Vector counts(static_cast<Index>(d) + 2);
  counts(0) = static_cast<double>(kept.rows.size());
  counts(1) = static_cast<double>(kept.missing_targets);
  for (std::size_t j = 0; j < d; ++j) {
    counts(static_cast<Index>(j) + 2) = static_cast<double>(kept.missing[j]);
  }
  counts = detail::sum_counts(reducer, counts);
  for (std::size_t j = 0; j < d; ++j) {
    kept.missing[j] = static_cast<Index>(counts(static_cast<Index>(j) + 2));
  }
  return {static_cast<Index>(counts(0)), static_cast<Index>(counts(1))};
}

// The numeric columns' fill values over the kept rows of all parts: each column's mean, from
// an exact sum (the same bits for any split of the rows among parts and any order), and how
// many values were present. Collective.
void numeric_means(const Dataset& raw,
                   const std::vector<char>& text,
                   const std::vector<Index>& rows,
                   const RowReducer& reducer,
                   std::vector<double>& means,
                   std::vector<Index>& present) {
  const std::size_t d = raw.feature_names.size();
  const Index L = detail::ExactSum::kLimbs;
  Vector local = Vector::Zero(static_cast<Index>(d) * (L + 1));
  for (std::size_t j = 0; j < d; ++j) {
    if (text[j]) {
      continue;
    }
    detail::ExactSum sum;
    Index count = 0;
    for (const Index i : rows) {
      const double v = raw.X(i, static_cast<Index>(j));
      if (!std::isnan(v)) {
        sum.add(v);
        ++count;
      }
    }
    local.segment(static_cast<Index>(j) * (L + 1), L) = sum.limbs();
    local(static_cast<Index>(j) * (L + 1) + L) = static_cast<double>(count);
  }
  const Vector total = detail::sum_counts(reducer, local);
  means.assign(d, 0.0);
  present.assign(d, 0);
  for (std::size_t j = 0; j < d; ++j) {
    const Index at = static_cast<Index>(j) * (L + 1);
    present[j] = static_cast<Index>(total(at + L));
    if (!text[j] && present[j] > 0) {
      means[j] = detail::ExactSum::from_limbs(total.segment(at, L)).value() /
                 static_cast<double>(present[j]);
    }
  }
}

// Column j's encoding from the counts over all parts: its categories (text, with their shares
// as the fill) or its mean (numbers); the fill kept only under Mean. Warnings about the column
// go to `warnings`.
ColumnEncoding fit_column(const std::string& name,
                          bool text,
                          const std::map<std::string, Index>& counts,
                          double mean,
                          Index present,
                          MissingPolicy policy,
                          const std::string& source,
                          std::vector<std::string>& warnings) {
  ColumnEncoding col;
  col.name = name;
  if (text) {
    present = 0;
    for (const auto& [value, count] : counts) {
      present += count;
    }
  }
  if (present == 0) {
    throw DataError(source + ": column '" + col.name + "' has no value in any kept row: --drop it");
  }
  if (text) {
    for (const auto& [value, count] : counts) {
      col.categories.push_back(value);
      col.fill.push_back(static_cast<double>(count) / static_cast<double>(present));
    }
    if (const std::string w = mostly_numbers(col.name, counts); !w.empty()) {
      warnings.push_back(source + ": " + w);
    } else if (const std::string why = decorated_numbers(col.name, counts); !why.empty()) {
      warnings.push_back(source + ": " + why + "; read as " + std::to_string(counts.size()) +
                         " categories until then");
    } else if (holds_dates(counts)) {
      warnings.push_back(source + ": column '" + col.name + "' holds dates, read as " +
                         std::to_string(counts.size()) +
                         " categories: a date seen in training says nothing about a new one; "
                         "--drop it, or add columns of numbers derived from it (year, month, "
                         "day of the year) to the file");
    }
  } else {
    col.fill.push_back(mean);
  }
  if (policy != MissingPolicy::Mean) {
    col.fill.clear();  // nothing may be filled at prediction either
  }
  return col;
}

}  // namespace

Encoded fit_encoding(const Dataset& raw, const EncodeOptions& options, const std::string& source) {
  return fit_encoding(raw, options, source, LocalReducer());
}

Encoded fit_encoding(const Dataset& raw,
                     const EncodeOptions& options,
                     const std::string& source,
                     const RowReducer& reducer) {
  detail::require(options.max_categories > 0,
                  "EncodeOptions",
                  "max_categories",
                  static_cast<double>(options.max_categories),
                  "> 0");
  const Index n_local = raw.X.rows();
  const Index first = reducer.first_row(n_local);
  const Index n = reducer.global_rows(n_local);
  const std::vector<char> text = text_flags(raw, reducer, source);
  Encoded out;
  InputEncoding& enc = out.encoding;
  enc.missing = options.missing;
  KeptRows kept = kept_rows(raw, options.missing, source, first, reducer);
  const std::vector<Index>& rows = kept.rows;
  const auto [kept_total, missing_targets] = merge_kept(kept, reducer);
  out.dropped_rows = n - kept_total;
  if (n > 0 && missing_targets == n) {
    throw DataError(source + ": no row has a target value: the target '" + raw.target_name +
                    "' is missing in all " + std::to_string(n) + " rows");
  }
  if (kept_total == 0) {
    throw DataError(source + ": no row is left once the rows with missing values are dropped; " +
                    "the columns with most: " + kept.most_missing(raw) + " of the " +
                    std::to_string(n - missing_targets) +
                    " rows with a target (--drop such a column, or --missing mean)");
  }
  if (missing_targets > 0) {
    out.warnings.push_back(std::to_string(missing_targets) +
                           " row(s) with a missing target value were left out");
  }
  if (out.dropped_rows > missing_targets) {
    out.warnings.push_back(std::to_string(out.dropped_rows - missing_targets) +
                           " row(s) with missing input values were left out (--missing "
                           "drop-rows); the columns with most: " +
                           kept.most_missing(raw));
  }
  const std::vector<std::map<std::string, Index>> categories =
      text_categories(raw, text, rows, options, source, reducer, first);
  std::vector<double> means;
  std::vector<Index> present;
  numeric_means(raw, text, rows, reducer, means, present);
  for (std::size_t j = 0; j < raw.feature_names.size(); ++j) {
    enc.columns.push_back(fit_column(raw.feature_names[j],
                                     text[j] != 0,
                                     categories[j],
                                     means[j],
                                     present[j],
                                     options.missing,
                                     source,
                                     out.warnings));
  }
  const std::vector<std::string> names = enc.input_names();
  Dataset& data = out.data;
  data.feature_names = names;
  data.target_name = raw.target_name;
  data.unused_columns = raw.unused_columns;
  data.X.resize(static_cast<Index>(rows.size()), static_cast<Index>(names.size()));
  if (raw.y.size() == n_local) {
    data.y = raw.y(rows);
  }
  for (std::size_t r = 0; r < rows.size(); ++r) {
    encode_row(raw, enc, rows[r], data.X, static_cast<Index>(r), source);
  }
  return out;
}

Dataset apply_encoding(const Dataset& raw,
                       const InputEncoding& enc,
                       const std::string& source,
                       std::vector<std::string>& warnings) {
  if (raw.feature_names.size() != enc.columns.size()) {
    detail::fail("apply_encoding: " + std::to_string(raw.feature_names.size()) +
                 " raw columns for an encoding of " + std::to_string(enc.columns.size()));
  }
  for (std::size_t j = 0; j < enc.columns.size(); ++j) {
    if (raw.feature_names[j] != enc.columns[j].name ||
        enc.columns[j].categorical() != is_text(raw, j)) {
      detail::fail("apply_encoding: raw column " + std::to_string(j + 1) + " is '" +
                   raw.feature_names[j] + "'; the encoding expects '" + enc.columns[j].name +
                   (enc.columns[j].categorical() ? "' as text" : "' as numbers"));
    }
  }
  const Index n = raw.X.rows();
  Dataset data;
  data.feature_names = enc.input_names();
  data.target_name = raw.target_name;
  data.unused_columns = raw.unused_columns;
  data.y = raw.y;
  data.X.resize(n, static_cast<Index>(data.feature_names.size()));
  Index unseen = 0;
  for (Index i = 0; i < n; ++i) {
    unseen += encode_row(raw, enc, i, data.X, i, source) ? 0 : 1;
  }
  if (unseen > 0) {
    warnings.push_back(source + ": " + std::to_string(unseen) +
                       " row(s) hold a category not seen in training; its inputs are all 0");
  }
  return data;
}

std::vector<std::string> encode_text_target(Dataset& data,
                                            const std::string& source,
                                            std::size_t max_classes) {
  return encode_text_target(data, source, LocalReducer(), max_classes);
}

std::vector<std::string> encode_text_target(Dataset& data,
                                            const std::string& source,
                                            const RowReducer& reducer,
                                            std::size_t max_classes) {
  // The rows: the labels' (a caller may pass the labels alone, without inputs).
  const Index n =
      data.target_text.empty() ? data.X.rows() : static_cast<Index>(data.target_text.size());
  const Index first = reducer.first_row(n);
  const std::string kind(1, n == 0 ? '-' : data.target_text.empty() ? 'n' : 't');
  if (!text_over_parts(reducer, kind, {"target '" + data.target_name + "'"}, source)[0]) {
    return {};
  }
  std::map<std::string, Index> index;
  std::size_t first_text = data.target_text.size();  // the first label that is not a number
  bool numbers = false;
  for (std::size_t i = 0; i < data.target_text.size(); ++i) {
    const std::string& label = data.target_text[i];
    if (label.empty()) {
      continue;
    }
    index.emplace(label, 0);
    if (parses_as_number(label)) {
      numbers = true;
    } else if (first_text == data.target_text.size()) {
      first_text = i;
    }
  }
  Vector kinds(2);
  kinds << (numbers ? 1.0 : 0.0), (first_text < data.target_text.size() ? 1.0 : 0.0);
  kinds = detail::sum_counts(reducer, kinds);
  if (kinds(0) > 0 && kinds(1) > 0) {
    // Numbers with a stray word among them: a typo in a numeric target, not class labels. Named
    // by the part that holds the first word.
    Refusal mine;
    if (first_text < data.target_text.size()) {
      mine.row = first + static_cast<Index>(first_text);
      mine.message = where(source, data.target_name, mine.row) + ": '" +
                     detail::excerpt(data.target_text[first_text]) +
                     "' is not a number, and other rows' targets are (text labels are classes, "
                     "but not mixed with numbers)";
    }
    agree(reducer, mine);
  }
  std::vector<std::string> mine;
  for (const auto& entry : index) {
    mine.push_back(entry.first);
  }
  index.clear();
  for (std::string& label : detail::gather_strings(reducer, mine)) {
    index.emplace(std::move(label), 0);
  }
  if (index.size() > max_classes) {
    throw DataError(source + ": target '" + data.target_name + "' holds " +
                    std::to_string(index.size()) + " distinct text values (e.g. '" +
                    detail::excerpt(index.begin()->first) + "'), more than " +
                    std::to_string(max_classes) +
                    " classes: a numeric target must hold numbers only (fix the values that are "
                    "not)");
  }
  std::vector<std::string> names;
  for (auto& [label, at] : index) {
    at = static_cast<Index>(names.size());
    names.push_back(label);
  }
  data.y.resize(n);
  for (Index i = 0; i < n; ++i) {
    const std::string& label = data.target_text[static_cast<std::size_t>(i)];
    data.y(i) = label.empty() ? std::numeric_limits<double>::quiet_NaN()
                              : static_cast<double>(index[label]);
  }
  data.target_text.clear();
  return names;
}

Index apply_class_names(Dataset& data,
                        const std::vector<std::string>& class_names,
                        const std::vector<double>& classes,
                        const std::string& source,
                        Index first) {
  if (class_names.size() != classes.size() || classes.empty()) {
    detail::fail("apply_class_names: " + std::to_string(class_names.size()) + " names for " +
                 std::to_string(classes.size()) + " classes");
  }
  if (data.target_text.size() != static_cast<std::size_t>(data.X.rows())) {
    detail::fail("apply_class_names: the data set has no text labels");
  }
  std::map<std::string, double> value;
  for (std::size_t c = 0; c < classes.size(); ++c) {
    value.emplace(class_names[c], classes[c]);
  }
  const double outside = *std::min_element(classes.begin(), classes.end()) - 1.0;
  const Index n = data.X.rows();
  data.y.resize(n);
  Index unknown = 0;
  for (Index i = 0; i < n; ++i) {
    const std::string& label = data.target_text[static_cast<std::size_t>(i)];
    if (label.empty()) {
      throw DataError(source + ": target '" + data.target_name + "' is missing in data row " +
                      std::to_string(first + i + 1));
    }
    const auto it = value.find(label);
    data.y(i) = it != value.end() ? it->second : outside;
    unknown += it == value.end() ? 1 : 0;
  }
  data.target_text.clear();
  return unknown;
}

}  // namespace nnlift
