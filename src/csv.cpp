// CSV reading (parallel, std::from_chars) and writing.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <charconv>  // std::from_chars, std::to_chars
#include <cmath>
#include <cstdint>
#include <cstring>  // std::memchr
#include <limits>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include <nnlift/csv.hpp>

#include "detail/columns.hpp"
#include "detail/io.hpp"
#include "detail/parallel.hpp"
#include "detail/text.hpp"

namespace nnlift {
namespace {

using detail::kSkip;
using detail::kTarget;
// The text slot of the target column, among the feature indices of the text slots.
constexpr Index kTargetSlot = -1;
constexpr std::size_t kChunkBytes = std::size_t{1} << 20;
// The first bytes of a file, checked before anything else is read.
constexpr std::uint64_t kPrefixBytes = std::uint64_t{1} << 16;

bool is_space(char c) noexcept { return c == ' ' || c == '\t'; }

// A line without its terminator: [begin, end) with a trailing '\r' removed.
struct Line {
  const char* begin;
  const char* end;
};

Line make_line(const char* begin, const char* end) noexcept {
  if (end > begin && end[-1] == '\r') {
    --end;
  }
  return {begin, end};
}

bool is_blank(Line line) noexcept {
  for (const char* p = line.begin; p < line.end; ++p) {
    if (!is_space(*p)) {
      return false;
    }
  }
  return true;
}

// End of the field that starts at p: the next ',' outside double quotes, or the line end.
const char* field_end(const char* p, const char* end) noexcept {
  bool quoted = false;
  for (; p < end; ++p) {
    if (*p == '"') {
      quoted = !quoted;
    } else if (*p == ',' && !quoted) {
      return p;
    }
  }
  return end;
}

// Whether the number text [b, e), which from_chars found out of the range of double, is out of
// it by being too small: a negative exponent, or no exponent and only zeros before the point.
bool underflows(const char* b, const char* e) {
  const char* exponent = std::find_if(b, e, [](char ch) { return ch == 'e' || ch == 'E'; });
  if (exponent != e) {
    return exponent + 1 < e && exponent[1] == '-';
  }
  const char* point = std::find(b, e, '.');
  return std::all_of(b, point, [](char ch) { return ch == '0' || ch == '-' || ch == '+'; });
}

std::string field_text(const char* p, const char* end) {
  return detail::excerpt(std::string_view(p, static_cast<std::size_t>(field_end(p, end) - p)), 40);
}

// Where a "None" was read (RowParser::parse): 0-based line within the chunk (-1: none), 1-based
// character column, and its spelling.
struct DeferredNone {
  Index line = -1;
  Index column = 0;
  std::string text;
};

struct ParseError {
  Index line = -1;   // 0-based line within the chunk
  Index column = 0;  // 1-based character column
  std::string message;
  int text_field = -1;       // a feature field that is neither a number nor missing: its index
  bool text_target = false;  // the target's field is neither a number nor missing
};

// The spellings of a missing value (compared without case).
bool is_missing_token(const char* p, const char* end) {
  static const char* const kTokens[] = {"na", "n/a", "nan", "?", "null", "none"};
  const std::string_view field(p, static_cast<std::size_t>(end - p));
  return field.empty() || std::any_of(std::begin(kTokens), std::end(kTokens), [&](const char* t) {
           return detail::equals_ignoring_case(field, t);
         });
}

// "None" (any case): a missing value in a column of numbers, where it cannot be a value, but a
// category in a text column (no exercise, no smoking: surveys have such categories), and a class
// in a column of text labels.
bool is_none_token(const char* p, const char* end) {
  return detail::is_none_token(std::string_view(p, static_cast<std::size_t>(end - p)));
}

// The error for a missing value where none is accepted.
std::string missing_value_error(std::size_t field,
                                const std::string& name,
                                std::string_view text,
                                const std::string& hint = CsvOptions().missing_hint) {
  return "field " + std::to_string(field + 1) + " ('" + name + "') is " +
         (text.empty() ? std::string("empty") : "'" + std::string(text) + "'") + hint;
}

// [begin, end) of a field's content: spaces and one pair of quotes removed.
std::pair<const char*, const char*> field_content(const char* p, const char* end) {
  while (p < end && is_space(*p)) {
    ++p;
  }
  while (end > p && is_space(end[-1])) {
    --end;
  }
  if (end - p >= 2 && *p == '"' && end[-1] == '"') {
    ++p;
    --end;
  }
  return {p, end};
}

// A text field's value: trimmed, its quotes removed, a doubled quote inside a quoted field read
// as one ("a ""b"" c" is a "b" c, as spreadsheets write it), and as UTF-8 (detail::to_utf8).
std::string text_value(const char* p, const char* end) {
  const auto [b, e] = field_content(p, end);
  const bool quoted = b > p && b[-1] == '"';  // field_content removed a quote
  std::string out(b, e);
  if (quoted) {
    std::size_t at = 0;
    while ((at = out.find("\"\"", at)) != std::string::npos) {
      out.erase(at, 1);
      ++at;
    }
  }
  return detail::to_utf8(out);
}

// Splits the header into its names, read as text fields are (text_value).
std::vector<std::string> split_header(Line line) {
  std::vector<std::string> names;
  for (const char* p = line.begin;;) {
    const char* e = field_end(p, line.end);
    names.push_back(text_value(p, e));
    if (e == line.end) {
      return names;
    }
    p = e + 1;
  }
}

struct Chunk {
  std::uint64_t begin = 0;  // byte offsets in the file
  std::uint64_t end = 0;
  Index lines = 0;  // lines that start in the chunk
  Index rows = 0;   // non-blank lines
  Index first_row = 0;
  Index first_line = 0;   // 1-based file line number of the chunk's first line
  Index short_line = -1;  // 0-based line within the chunk too short for the header's fields
  ParseError error;
  std::vector<char> taken;  // per field: a value taken as text (RowParser::parse)
  // Per field: the first "None" read as missing where missing values are an error, while the
  // column may still turn out to be text (where "None" is a category): the error is the
  // reader's once the column is known to hold numbers.
  std::vector<DeferredNone> none;
};

// Refuses what is plainly not a comma-separated text file, from its first bytes.
void check_text_prefix(const std::string& path, const std::string& prefix) {
  if (prefix.size() >= 6 && prefix.compare(0, 6, "\x93NUMPY") == 0) {
    throw IoError(path + ": is a .npy array file, not CSV text");
  }
  if (prefix.size() >= 2 && ((static_cast<unsigned char>(prefix[0]) == 0xFF &&
                              static_cast<unsigned char>(prefix[1]) == 0xFE) ||
                             (static_cast<unsigned char>(prefix[0]) == 0xFE &&
                              static_cast<unsigned char>(prefix[1]) == 0xFF))) {
    throw IoError(path + ": is UTF-16 text (byte-order mark " +
                  (static_cast<unsigned char>(prefix[0]) == 0xFF ? "FF FE" : "FE FF") +
                  "); save it as UTF-8");
  }
  const std::size_t nul = prefix.find('\0');
  if (nul != std::string::npos) {
    throw IoError(path + ": looks like a binary file, not CSV text (a NUL byte at offset " +
                  std::to_string(nul) + ")");
  }
}

// A header that split into one name but holds tabs or semicolons is another separator.
void check_separator(const std::string& path, const std::vector<std::string>& names, Line header) {
  if (names.size() != 1) {
    return;
  }
  const std::string_view text(header.begin, static_cast<std::size_t>(header.end - header.begin));
  const char* kind = text.find('\t') != std::string_view::npos  ? "tab-separated"
                     : text.find(';') != std::string_view::npos ? "semicolon-separated"
                                                                : nullptr;
  if (kind != nullptr) {
    throw IoError(path + ":1: the header looks " + kind +
                  "; nnlift reads comma-separated files (convert the separators to commas)");
  }
}

// A hint for a line whose quotes do not pair up: a quoted field that continues on the next line.
std::string quote_hint(Line line) {
  const auto quotes = std::count(line.begin, line.end, '"');
  return quotes % 2 == 1 ? " (a quoted field runs past the end of the line; quoted fields with "
                           "line breaks are not supported)"
                         : "";
}

// Parses data lines into a row-major buffer of `width` values per row (features, then the
// target): a chunk's rows stay in cache, and are copied into the column-major matrix afterwards
// one column at a time. Writing straight into an n×d column-major matrix touches d pages per row.
class RowParser {
 public:
  RowParser(const std::vector<int>& dest,
            const std::vector<std::string>& names,
            Index width,
            const std::vector<int>& text_slot,
            const CsvOptions& options)
      : m_dest(dest),
        m_names(names),
        m_width(width),
        m_text_slot(text_slot),
        m_allow_missing(options.allow_missing),
        m_detect_text(options.detect_text_columns),
        m_text_hint(options.text_hint),
        m_detect_target(options.detect_text_target),
        m_target_hint(options.target_hint),
        m_missing_hint(options.missing_hint),
        m_na_values(options.na_values) {}

  // Parses one data line into values[0, width) (and its text fields into texts[0, slots)); on
  // failure fills `error` (column and message). A field that is not a number, in a column that
  // is detected as text (detect_text_columns, detect_text_target), reads as NaN and sets
  // taken[field]: the caller reads such columns as text in a second pass.
  // A "None" in a column that may turn out to be text, where missing values are an error, reads
  // as NaN and is recorded in none[field] (the first one only) with `index`, the line's.
  bool parse(Line line,
             Index index,
             double* values,
             std::string* texts,
             ParseError& error,
             char* taken,
             DeferredNone* none) const {
    const char* p = line.begin;
    const std::size_t num_fields = m_dest.size();
    for (std::size_t c = 0; c < num_fields; ++c) {
      const char* field_start = p;
      const int dest = m_dest[c];
      if (dest == kSkip) {
        p = field_end(p, line.end);
      } else if (m_text_slot[c] >= 0) {
        p = field_end(p, line.end);
        const auto [b, e] = field_content(field_start, p);
        std::string& text = texts[m_text_slot[c]];
        const bool missing = (is_missing_token(b, e) && !is_none_token(b, e)) || is_na_value(b, e);
        text = missing ? std::string() : text_value(field_start, p);
        values[dest == kTarget ? m_width - 1 : dest] = std::numeric_limits<double>::quiet_NaN();
      } else if (!parse_number(
                     p, line.end, c, values, error, none[c].line < 0 ? &none[c] : nullptr)) {
        if (!take_as_text(c, error, values, taken)) {
          error.column = (field_start - line.begin) + 1;
          return false;
        }
        p = field_end(field_start, line.end);
      } else if (p != line.end && *p != ',') {
        // A date, a percentage, a unit: not a number, so text (categories) when detecting.
        not_a_number(
            c, "has trailing characters: '" + field_text(field_start, line.end) + "'", error);
        if (!take_as_text(c, error, values, taken)) {
          error.column = (p - line.begin) + 1;
          return false;
        }
        p = field_end(field_start, line.end);
      }
      if (none[c].line < 0 && !none[c].text.empty()) {  // a "None" deferred in this line
        none[c].line = index;
        none[c].column = (field_start - line.begin) + 1;
      }
      const bool last = c + 1 == num_fields;
      if (p == line.end) {
        if (!last) {
          error.column = (p - line.begin) + 1;
          error.message =
              "expected " + std::to_string(num_fields) + " fields, found " + std::to_string(c + 1);
          return false;
        }
      } else if (*p == ',') {
        if (last) {
          std::size_t found = num_fields;
          for (const char* q = p; q < line.end; q = field_end(q + 1, line.end)) {
            ++found;
          }
          error.column = (p - line.begin) + 1;
          error.message =
              "expected " + std::to_string(num_fields) + " fields, found " + std::to_string(found);
          return false;
        }
        ++p;
      }
    }
    return true;
  }

 private:
  // Whether the failed field c is taken as text (its column detected as text): then it reads as
  // NaN, taken[c] is set and the error is cleared.
  bool take_as_text(std::size_t c, ParseError& error, double* values, char* taken) const {
    const bool text = (m_detect_text && error.text_field == static_cast<int>(c)) ||
                      (m_detect_target && error.text_target);
    if (!text) {
      return false;
    }
    taken[c] = 1;
    error = ParseError();
    const int dest = m_dest[c];
    values[dest == kTarget ? m_width - 1 : dest] = std::numeric_limits<double>::quiet_NaN();
    return true;
  }

  // Field c is not a number (`what` says how): the error, with the caller's hint for a column
  // not detected as text, and the column marked as one that may be read as text.
  bool not_a_number(std::size_t c, const std::string& what, ParseError& error) const {
    error.message = "field " + std::to_string(c + 1) + " ('" + m_names[c] + "') " + what;
    if (m_dest[c] >= 0) {
      error.text_field = static_cast<int>(c);
      error.message += m_detect_text ? "" : m_text_hint;
    } else if (m_dest[c] == kTarget) {
      error.text_target = true;
      error.message += m_detect_target ? "" : m_target_hint;
    }
    return false;
  }

  // Parses field c starting at p into its destination; on failure sets error.message only.
  // A deferred "None" (see parse) fills none->text; the caller its line and column.
  bool parse_number(const char*& p,
                    const char* end,
                    std::size_t c,
                    double* values,
                    ParseError& error,
                    DeferredNone* none) const {
    const char* start = p;
    while (p < end && is_space(*p)) {
      ++p;
    }
    const bool quoted = p < end && *p == '"';
    if (quoted) {
      ++p;
      while (p < end && is_space(*p)) {
        ++p;
      }
    }
    // A missing value: NaN when allowed, else an error that says so.
    {
      const auto [b, e] = field_content(start, field_end(start, end));
      const bool named = is_na_value(b, e);
      if (named || is_missing_token(b, e)) {
        const bool may_be_text =
            (m_dest[c] >= 0 && m_detect_text) || (m_dest[c] == kTarget && m_detect_target);
        if (!m_allow_missing && !(may_be_text && !named && is_none_token(b, e))) {
          error.message = missing_value_error(
              c, m_names[c], std::string_view(b, static_cast<std::size_t>(e - b)), m_missing_hint);
          return false;
        }
        if (!m_allow_missing && none != nullptr) {
          none->text.assign(b, e);
        }
        p = field_end(start, end);
        const int dest = m_dest[c];
        values[dest == kTarget ? m_width - 1 : dest] = std::numeric_limits<double>::quiet_NaN();
        return true;
      }
    }
    const char* number = p;
    // p may be at the end: a lone quote and spaces (`" `) leave nothing after them.
    if (p < end && *p == '+' && p + 1 < end && p[1] != '-' && p[1] != '+') {
      ++p;
    }
    double value = 0.0;
    std::from_chars_result r = std::from_chars(p, end, value);
    if (r.ec == std::errc::result_out_of_range && underflows(p, r.ptr)) {
      // Smaller than the least double (5e-400): zero, as numpy and pandas read it.
      value = *p == '-' ? -0.0 : 0.0;
      r.ec = std::errc();
    }
    if (r.ec == std::errc::result_out_of_range) {
      error.message = "field " + std::to_string(c + 1) + " ('" + m_names[c] +
                      "') is out of the range of double: '" + field_text(number, end) + "'";
      return false;
    }
    if (r.ec != std::errc()) {
      return not_a_number(c, "is not a number: '" + field_text(start, end) + "'", error);
    }
    p = r.ptr;
    while (p < end && is_space(*p)) {
      ++p;
    }
    if (quoted) {
      if (p == end || *p != '"') {  // "1,234.5" or "12 kg": text when detecting
        return not_a_number(c, "is not a number: '" + field_text(start, end) + "'", error);
      }
      ++p;
      while (p < end && is_space(*p)) {
        ++p;
      }
    }
    if (!std::isfinite(value)) {
      if (p != end && *p != ',') {
        // A word that begins like inf or nan ("Infiniti", "Information Economics"): text, not
        // an infinite number (from_chars stops after "Inf").
        return not_a_number(c, "is not a number: '" + field_text(start, end) + "'", error);
      }
      error.message = "field " + std::to_string(c + 1) + " ('" + m_names[c] + "') is " +
                      (std::isnan(value) ? "NaN" : "infinite") +
                      "; only finite numbers are accepted";
      return false;
    }
    const int dest = m_dest[c];
    values[dest == kTarget ? m_width - 1 : dest] = value;
    return true;
  }

  const std::vector<int>& m_dest;
  const std::vector<std::string>& m_names;
  Index m_width;
  const std::vector<int>& m_text_slot;  // per field: its slot among the text fields, or -1
  bool m_allow_missing;
  bool m_detect_text;
  const std::string& m_text_hint;
  bool m_detect_target;
  const std::string& m_target_hint;
  const std::string& m_missing_hint;
  const std::vector<std::string>& m_na_values;  // CsvOptions::na_values

  // One of CsvOptions::na_values, as written (after trimming and unquoting).
  bool is_na_value(const char* b, const char* e) const {
    const std::size_t size = static_cast<std::size_t>(e - b);
    for (const std::string& v : m_na_values) {
      if (v.size() == size && std::equal(v.begin(), v.end(), b)) {
        return true;
      }
    }
    return false;
  }
};

// A CSV file read with pread, a chunk at a time into per-thread buffers (twice: to count, then
// to parse): memory is X plus a few MB, and a file changed while it is read is an error, not a
// SIGBUS as with a mapping.
class CsvSource {
 public:
  // Opens the file and refuses what its first bytes show is not CSV text.
  explicit CsvSource(const std::string& path) : m_path(path), m_file(path) {
    std::string prefix(static_cast<std::size_t>(std::min(m_file.size(), kPrefixBytes)), '\0');
    m_file.read_at(0, prefix.size(), prefix.data());
    check_text_prefix(path, prefix);
    // Line endings: LF and CRLF; a file whose first bytes hold CRs but no LF uses CR alone.
    if (prefix.find('\n') == std::string::npos && prefix.find('\r') != std::string::npos) {
      m_eol = '\r';
    }
    m_start = prefix.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;  // UTF-8 byte-order mark
  }

  const std::string& path() const { return m_path; }

  // The first non-blank line: its text, its 1-based line number, and where the body starts.
  struct Header {
    std::string text;
    Index line = 0;
    std::uint64_t body = 0;
  };
  Header read_header() const {
    Header h;
    for (std::uint64_t at = m_start; at < m_file.size();) {
      const std::uint64_t stop = find_eol(at);
      h.text.resize(static_cast<std::size_t>(stop - at));
      m_file.read_at(at, h.text.size(), h.text.data());
      ++h.line;
      at = h.body = stop < m_file.size() ? stop + 1 : m_file.size();
      if (!is_blank(line_of(h.text))) {
        return h;
      }
    }
    throw IoError(m_path + ": empty file (expected a header row of column names)");
  }

  // The byte range [begin, end) of share `part` of `parts` of the body: the lines that start in
  // the part-th of `parts` equal byte ranges. The shares tile the body.
  std::pair<std::uint64_t, std::uint64_t> share(std::uint64_t body, Index part, Index parts) const {
    const std::uint64_t bytes = m_file.size() - body;
    const auto cut = [&](Index i) -> std::uint64_t {
      if (i <= 0) {
        return body;
      }
      if (i >= parts) {
        return m_file.size();
      }
      // The first line start at or after the nominal cut.
      const std::uint64_t nominal =
          body + static_cast<std::uint64_t>(static_cast<double>(bytes) * static_cast<double>(i) /
                                            static_cast<double>(parts));
      const std::uint64_t nl = find_eol(nominal - 1);
      return nl < m_file.size() ? nl + 1 : m_file.size();
    };
    return {cut(part), std::max(cut(part), cut(part + 1))};
  }

  // The range [body, size) split at line boundaries into chunks of about kChunkBytes. The split
  // depends only on the bytes, so results and error reports do not depend on the thread count.
  std::vector<Chunk> split(std::uint64_t body, std::uint64_t size) const {
    std::vector<Chunk> chunks;
    for (std::uint64_t p = body; p < size;) {
      std::uint64_t stop = size;
      if (size - p > kChunkBytes) {
        const std::uint64_t nl = find_eol(p + kChunkBytes);
        stop = nl < size ? nl + 1 : size;
      }
      Chunk chunk;
      chunk.begin = p;
      chunk.end = stop;
      chunks.push_back(chunk);
      p = stop;
    }
    return chunks;
  }

  // A chunk's bytes, in a per-thread buffer reused across chunks.
  std::pair<const char*, const char*> load(const Chunk& chunk) const {
    thread_local std::vector<char> bytes;
    bytes.resize(static_cast<std::size_t>(chunk.end - chunk.begin));
    m_file.read_at(chunk.begin, bytes.size(), bytes.data());
    return {bytes.data(), bytes.data() + bytes.size()};
  }

  // Calls f(line, local line index) for every line of a loaded chunk; f returns false to stop.
  template <class Fn>
  void for_each_line(const char* begin, const char* end, Fn&& f) const {
    Index index = 0;
    for (const char* p = begin; p < end; ++index) {
      const char* nl =
          static_cast<const char*>(std::memchr(p, m_eol, static_cast<std::size_t>(end - p)));
      if (!f(make_line(p, nl ? nl : end), index)) {
        return;
      }
      p = nl ? nl + 1 : end;
    }
  }

  void check_unchanged() const { m_file.check_unchanged(); }

 private:
  static Line line_of(const std::string& text) {
    return make_line(text.data(), text.data() + text.size());
  }

  // The offset of the first terminator at or after `from`, or the file size.
  std::uint64_t find_eol(std::uint64_t from) const {
    std::string window;
    for (std::uint64_t at = from; at < m_file.size(); at += window.size()) {
      window.resize(static_cast<std::size_t>(std::min<std::uint64_t>(m_file.size() - at, 1 << 16)));
      m_file.read_at(at, window.size(), window.data());
      const std::size_t hit = window.find(m_eol);
      if (hit != std::string::npos) {
        return at + hit;
      }
    }
    return m_file.size();
  }

  std::string m_path;
  detail::ReadOnlyFile m_file;
  char m_eol = '\n';
  std::uint64_t m_start = 0;
};

// Counts each chunk's lines and rows, and notes the first row too short to hold the header's
// fields (N fields need N - 1 commas), so that a ragged file fails before X is allocated.
void count_rows(const CsvSource& source,
                std::vector<Chunk>& chunks,
                std::size_t fields,
                int threads) {
  const auto min_length = static_cast<std::ptrdiff_t>(fields) - 1;
  detail::parallel_for(static_cast<Index>(chunks.size()), threads, [&](Index i) {
    Chunk& chunk = chunks[static_cast<std::size_t>(i)];
    const auto [begin, end] = source.load(chunk);
    source.for_each_line(begin, end, [&](Line line, Index index) {
      ++chunk.lines;
      if (!is_blank(line)) {
        ++chunk.rows;
        if (line.end - line.begin < min_length && chunk.short_line < 0) {
          chunk.short_line = index;
        }
      }
      return true;
    });
  });
}

// Numbers the chunks' rows and lines from `first_line` on; returns the row count.
Index number_rows(const std::string& path,
                  std::vector<Chunk>& chunks,
                  Index first_line,
                  bool whole_file) {
  Index rows = 0;
  Index line = first_line;
  for (Chunk& chunk : chunks) {
    chunk.first_row = rows;
    chunk.first_line = line;
    rows += chunk.rows;
    line += chunk.lines;
  }
  if (rows == 0 && whole_file) {
    throw IoError(path + ": no data rows after the header (header only)");
  }
  return rows;
}

// Throws for the first row too short for the header's fields, naming its fields.
void refuse_short_rows(const CsvSource& source,
                       const std::vector<Chunk>& chunks,
                       std::size_t fields) {
  for (const Chunk& chunk : chunks) {
    if (chunk.short_line < 0) {
      continue;
    }
    const auto [begin, end] = source.load(chunk);
    source.for_each_line(begin, end, [&](Line bad, Index index) {
      if (index < chunk.short_line) {
        return true;
      }
      std::size_t found = 1;
      for (const char* q = field_end(bad.begin, bad.end); q < bad.end;
           q = field_end(q + 1, bad.end)) {
        ++found;
      }
      throw IoError(source.path() + ":" + std::to_string(chunk.first_line + index) + ":" +
                    std::to_string(bad.end - bad.begin + 1) + ": expected " +
                    std::to_string(fields) + " fields, found " + std::to_string(found) +
                    quote_hint(bad));
    });
  }
}

// X (rows × d) and y, or an "out of memory" error that says how much was needed.
void allocate(const std::string& path, Index rows, bool has_target, Dataset& out) {
  const Index d = static_cast<Index>(out.feature_names.size());
  try {
    out.X.resize(rows, d);
    out.y.resize(has_target ? rows : 0);
  } catch (const std::bad_alloc&) {
    std::ostringstream msg;
    msg << path << ": out of memory: needs "
        << static_cast<double>(rows) * static_cast<double>(d + 1) * 8e-9 << " GB for " << rows
        << " rows x " << d + 1 << " columns";
    throw IoError(msg.str());
  }
  detail::advise_huge_pages(out.X);
}

// Parses every chunk into a row-major buffer and copies it into X and y; a chunk that fails
// records its first error and stops.
// The first failing chunk's error, if any.
const Chunk* first_error(const std::vector<Chunk>& chunks) {
  for (const Chunk& chunk : chunks) {
    if (chunk.error.line >= 0) {
      return &chunk;
    }
  }
  return nullptr;
}

void parse_rows(const CsvSource& source,
                std::vector<Chunk>& chunks,
                const RowParser& parser,
                Index width,
                const std::vector<Index>& text_columns,  // feature index of each text slot
                int threads,
                Dataset& out) {
  const Index d = out.X.cols();
  detail::parallel_for(static_cast<Index>(chunks.size()), threads, [&](Index i) {
    Chunk& chunk = chunks[static_cast<std::size_t>(i)];
    const auto [begin, end] = source.load(chunk);
    // One buffer per thread, reused across chunks: a fresh 1 MB allocation per chunk costs a
    // page fault per 4 KB.
    thread_local std::vector<double> values;
    values.resize(static_cast<std::size_t>(chunk.rows * width));
    std::vector<std::string> texts(static_cast<std::size_t>(chunk.rows * text_columns.size()));
    const Index slots = static_cast<Index>(text_columns.size());
    Index row = 0;
    bool failed = false;
    source.for_each_line(begin, end, [&](Line line, Index index) {
      if (is_blank(line)) {
        return true;
      }
      if (row >= chunk.rows) {
        throw IoError(source.path() + ": file changed while reading");
      }
      if (!parser.parse(line,
                        index,
                        values.data() + row * width,
                        texts.data() + row * slots,
                        chunk.error,
                        chunk.taken.data(),
                        chunk.none.data())) {
        chunk.error.line = index;
        chunk.error.message += quote_hint(line);
        failed = true;
        return false;
      }
      ++row;
      return true;
    });
    if (failed) {
      return;
    }
    if (row != chunk.rows) {
      throw IoError(source.path() + ": file changed while reading");
    }
    // Row-major chunk buffer -> column-major X and y, one column at a time.
    const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>
        block(values.data(), chunk.rows, width);
    out.X.middleRows(chunk.first_row, chunk.rows) = block.leftCols(d);
    if (width > d) {
      out.y.segment(chunk.first_row, chunk.rows) = block.col(d);
    }
    for (Index s = 0; s < slots; ++s) {
      std::vector<std::string>& column = text_columns[s] == kTargetSlot
                                             ? out.target_text
                                             : out.text[static_cast<std::size_t>(text_columns[s])];
      for (Index r = 0; r < chunk.rows; ++r) {
        column[static_cast<std::size_t>(chunk.first_row + r)] =
            std::move(texts[static_cast<std::size_t>(r * slots + s)]);
      }
    }
  });
  if (const Chunk* chunk = first_error(chunks)) {
    throw IoError(source.path() + ":" + std::to_string(chunk->first_line + chunk->error.line) +
                  ":" + std::to_string(chunk->error.column) + ": " + chunk->error.message);
  }
}

// A "None" deferred (see RowParser::parse) in a column that holds numbers after all: the
// missing-value error, at the first one in the file.
void throw_deferred_none(const std::string& path,
                         const std::vector<std::string>& names,
                         const std::vector<int>& dest,
                         const std::vector<std::string>& text_columns,
                         bool text_target,
                         const std::vector<Chunk>& chunks) {
  for (const Chunk& chunk : chunks) {
    const DeferredNone* first = nullptr;
    std::size_t field = 0;
    for (std::size_t c = 0; c < names.size(); ++c) {
      const DeferredNone& none = chunk.none[c];
      const bool text =
          dest[c] == kTarget
              ? text_target
              : std::find(text_columns.begin(), text_columns.end(), names[c]) != text_columns.end();
      if (none.line >= 0 && !text &&
          (first == nullptr ||
           std::make_pair(none.line, none.column) < std::make_pair(first->line, first->column))) {
        first = &none;
        field = c;
      }
    }
    if (first != nullptr) {
      throw IoError(path + ":" + std::to_string(chunk.first_line + first->line) + ":" +
                    std::to_string(first->column) + ": " +
                    missing_value_error(field, names[field], first->text));
    }
  }
}

// The text slot of each field (-1 for a numeric or unused one) and the feature index of each
// slot (kTargetSlot for the target), for the text columns named in the options.
std::vector<int> text_slots(const std::string& path,
                            const std::vector<std::string>& names,
                            const std::vector<int>& dest,
                            const std::vector<std::string>& text_columns,
                            bool text_target,
                            std::vector<Index>& features) {
  std::vector<int> slot(names.size(), -1);
  features.clear();
  if (text_target) {
    const auto at = std::find(dest.begin(), dest.end(), kTarget);
    if (at != dest.end()) {
      slot[static_cast<std::size_t>(at - dest.begin())] = 0;
      features.push_back(kTargetSlot);
    }
  }
  for (const std::string& name : text_columns) {
    const auto at = std::find(names.begin(), names.end(), name);
    if (at == names.end()) {
      throw IoError(path + ": no categorical column named '" + name +
                    "'; columns are: " + detail::name_list(names));
    }
    const std::size_t c = static_cast<std::size_t>(at - names.begin());
    if (dest[c] < 0) {
      throw std::invalid_argument(path + ": categorical column '" + name +
                                  "' is not an input column");
    }
    if (slot[c] < 0) {
      slot[c] = static_cast<int>(features.size());
      features.push_back(dest[c]);
    }
  }
  return slot;
}

}  // namespace

// Column roles from the options: kTarget, kSkip or the feature index.
std::vector<int> detail::choose_columns(const std::string& path,
                                        const std::vector<std::string>& names,
                                        const CsvOptions& options,
                                        Dataset& out) {
  std::unordered_map<std::string, int> index;
  const bool default_target = options.has_target && options.target.empty();
  for (std::size_t c = 0; c < names.size(); ++c) {
    if (names[c].empty()) {
      // An unnamed column (pandas writes its row index so) is not read, unless it would be the
      // default target: a column of data may not silently stop being the target.
      if (default_target && c + 1 == names.size()) {
        throw IoError(path + ":1: column " + std::to_string(c + 1) +
                      ", the last, has an empty name and would be the target: name it, or "
                      "name the target (--target; a comma at the end of every line makes such a "
                      "column)");
      }
      continue;
    }
    if (!index.emplace(names[c], static_cast<int>(c)).second) {
      throw IoError(path + ":1: duplicate column name '" + names[c] + "' (columns " +
                    std::to_string(index[names[c]] + 1) + " and " + std::to_string(c + 1) + ")");
    }
  }
  auto find = [&](const std::string& name, const char* what) {
    auto it = index.find(name);
    if (it == index.end()) {
      throw IoError(path + ": no " + what + " column named '" + name +
                    "'; columns are: " + detail::name_list(names));
    }
    return it->second;
  };
  std::vector<int> dest(names.size(), kSkip);
  int target = -1;
  if (options.has_target) {
    target = options.target.empty() ? static_cast<int>(names.size()) - 1
                                    : find(options.target, "target");
    dest[static_cast<std::size_t>(target)] = kTarget;
    out.target_name = names[static_cast<std::size_t>(target)];
  }
  if (!options.features.empty()) {
    if (!options.drop.empty()) {
      throw std::invalid_argument("read_csv: give either features or drop, not both");
    }
    for (const std::string& name : options.features) {
      const int c = find(name, "feature");
      if (c == target) {
        throw std::invalid_argument(path + ": column '" + name +
                                    "' cannot be both the target and a feature");
      }
      if (dest[static_cast<std::size_t>(c)] != kSkip) {
        throw std::invalid_argument(path + ": feature '" + name + "' is listed twice");
      }
      dest[static_cast<std::size_t>(c)] = static_cast<int>(out.feature_names.size());
      out.feature_names.push_back(name);
    }
  } else {
    std::vector<bool> dropped(names.size(), false);
    for (const std::string& name : options.drop) {
      dropped[static_cast<std::size_t>(find(name, "drop"))] = true;
    }
    for (std::size_t c = 0; c < names.size(); ++c) {
      if (static_cast<int>(c) != target && !dropped[c] && !names[c].empty()) {
        dest[c] = static_cast<int>(out.feature_names.size());
        out.feature_names.push_back(names[c]);
      }
    }
  }
  if (out.feature_names.empty()) {
    throw IoError(path + ": no feature columns selected");
  }
  for (std::size_t c = 0; c < names.size(); ++c) {
    if (dest[c] == kSkip) {
      out.unused_columns.push_back(
          names[c].empty() ? "(column " + std::to_string(c + 1) + ", no name)" : names[c]);
    }
  }
  return dest;
}

Dataset read_csv(const std::string& path, const CsvOptions& options) {
  const CsvSource source(path);
  const CsvSource::Header header = source.read_header();
  const Line header_line = make_line(header.text.data(), header.text.data() + header.text.size());
  const std::vector<std::string> names = split_header(header_line);
  check_separator(path, names, header_line);
  Dataset out;
  const std::vector<int> dest = detail::choose_columns(path, names, options, out);

  const CsvShare& share = options.share;
  if (share.parts < 1 || share.part < 0 || share.part >= share.parts || share.lines_before < 0) {
    throw std::invalid_argument("CsvOptions::share: part " + std::to_string(share.part) + " of " +
                                std::to_string(share.parts) + ", lines_before " +
                                std::to_string(share.lines_before) +
                                "; must be 0 <= part < parts, lines_before >= 0");
  }
  const auto [share_begin, share_end] = source.share(header.body, share.part, share.parts);
  std::vector<Chunk> chunks = source.split(share_begin, share_end);
  count_rows(source, chunks, names.size(), options.num_threads);
  const Index rows = number_rows(
      path, chunks, header.line + 1 + share.lines_before, share.parts == 1 && !share.may_be_empty);
  refuse_short_rows(source, chunks, names.size());
  allocate(path, rows, options.has_target, out);
  const Index width = out.X.cols() + (options.has_target ? 1 : 0);
  // With detect_text_columns (detect_text_target), the columns found to hold text join the text
  // columns (the target is read as text) and the rows are parsed once more: a numeric file
  // parses once, any other twice.
  std::vector<std::string> text_columns = options.text_columns;
  bool text_target = options.text_target && options.has_target;
  for (;;) {
    std::vector<Index> text_features;
    const std::vector<int> slots =
        text_slots(path, names, dest, text_columns, text_target, text_features);
    out.text.assign(out.feature_names.size(), {});
    out.target_text.clear();
    for (const Index j : text_features) {
      (j == kTargetSlot ? out.target_text : out.text[static_cast<std::size_t>(j)])
          .resize(static_cast<std::size_t>(rows));
    }
    for (Chunk& chunk : chunks) {
      chunk.error = ParseError();
      chunk.taken.assign(names.size(), 0);
      chunk.none.assign(names.size(), DeferredNone());
    }
    parse_rows(source,
               chunks,
               RowParser(dest, names, width, slots, options),
               width,
               text_features,
               options.num_threads,
               out);
    // The columns detected as text in any chunk are read again, as text, in one more pass.
    bool more = false;
    for (std::size_t c = 0; c < names.size(); ++c) {
      const bool found = std::any_of(
          chunks.begin(), chunks.end(), [&](const Chunk& chunk) { return chunk.taken[c] != 0; });
      if (!found) {
        continue;
      }
      more = true;
      if (dest[c] == kTarget) {
        text_target = true;
      } else {
        text_columns.push_back(names[c]);
      }
    }
    if (!more) {
      throw_deferred_none(path, names, dest, text_columns, text_target, chunks);
      break;
    }
  }
  if (std::all_of(out.text.begin(), out.text.end(), [](const auto& t) { return t.empty(); })) {
    out.text.clear();
  }
  source.check_unchanged();
  if (options.reject_constant_features) {
    const std::vector<std::string> constant = constant_columns(out.X, out.feature_names);
    if (!constant.empty()) {
      throw DataError(path + ": constant feature column(s) carry no information: " +
                      detail::name_list(constant) + " (leave them out of the inputs)");
    }
  }
  return out;
}

Index csv_share_lines(const std::string& path, Index part, Index parts, int num_threads) {
  if (parts < 1 || part < 0 || part >= parts) {
    throw std::invalid_argument("csv_share_lines: part " + std::to_string(part) + " of " +
                                std::to_string(parts) + "; must be 0 <= part < parts");
  }
  const CsvSource source(path);
  const CsvSource::Header header = source.read_header();
  const auto [begin, end] = source.share(header.body, part, parts);
  std::vector<Chunk> chunks = source.split(begin, end);
  count_rows(source, chunks, 0, num_threads);
  Index lines = 0;
  for (const Chunk& chunk : chunks) {
    lines += chunk.lines;
  }
  return lines;
}

std::vector<std::string> constant_columns(const Matrix& X, const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (Index j = 0; j < X.cols(); ++j) {
    if (X.rows() > 0 && X.col(j).maxCoeff() == X.col(j).minCoeff()) {
      out.push_back(static_cast<std::size_t>(j) < names.size() ? names[static_cast<std::size_t>(j)]
                                                               : "column " + std::to_string(j + 1));
    }
  }
  return out;
}

void write_csv(const std::string& path,
               const std::vector<std::string>& names,
               const Matrix& values,
               int num_threads) {
  if (static_cast<Index>(names.size()) != values.cols()) {
    throw std::invalid_argument("write_csv: " + std::to_string(names.size()) + " names for " +
                                std::to_string(values.cols()) + " columns");
  }
  const Index n = values.rows();
  const Index block_rows = 4096;
  const Index num_blocks = (n + block_rows - 1) / block_rows;
  std::vector<std::string> text(static_cast<std::size_t>(num_blocks));
  detail::parallel_for(num_blocks, num_threads, [&](Index b) {
    detail::append_csv_rows(values,
                            b * block_rows,
                            std::min(n, (b + 1) * block_rows),
                            text[static_cast<std::size_t>(b)]);
  });
  detail::write_atomically(path, [&](std::ostream& out) {
    for (std::size_t j = 0; j < names.size(); ++j) {
      out << (j ? "," : "") << names[j];
    }
    out << '\n';
    for (const std::string& s : text) {
      out.write(s.data(), static_cast<std::streamsize>(s.size()));
    }
  });
}

}  // namespace nnlift
