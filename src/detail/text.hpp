// Text for messages, bounded: untrusted text (a field, a header, a JSON value) and lists of
// names, so that a hostile file cannot make a huge message or put control bytes on a terminal.
// SPDX-License-Identifier: MIT
#pragma once

#include <charconv>
#include <string>
#include <string_view>
#include <vector>

#include <nnlift/types.hpp>

namespace nnlift::detail {

/// At most `max` characters of `text` (the last three "..." when cut), control bytes as '?'.
inline std::string excerpt(std::string_view text, std::size_t max = 80) {
  std::string out(text.size() > max ? text.substr(0, max - 3) : text);
  if (text.size() > max) {
    out += "...";
  }
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      c = '?';
    }
  }
  return out;
}

/// Whether `text` equals `lower` (lower case) without regard to the case of ASCII letters.
inline bool equals_ignoring_case(std::string_view text, std::string_view lower) {
  if (text.size() != lower.size()) {
    return false;
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != lower[i]) {
      return false;
    }
  }
  return true;
}

/// "None" in any case: a missing value in a column of numbers, a category in a text column.
inline bool is_none_token(std::string_view text) { return equals_ignoring_case(text, "none"); }

/// Whether `text` is valid UTF-8 (no overlong forms, surrogates or code points above U+10FFFF).
inline bool is_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char c = *p++;
    if (c < 0x80) {
      continue;
    }
    int more = 0;
    unsigned int lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      more = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      more = 2;
      lo = c == 0xE0 ? 0xA0 : 0x80;
      hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
      more = 3;
      lo = c == 0xF0 ? 0x90 : 0x80;
      hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
      return false;
    }
    if (end - p < more || *p < lo || *p > hi) {
      return false;
    }
    for (int i = 1; i < more; ++i) {
      if ((p[i] & 0xC0) != 0x80) {
        return false;
      }
    }
    p += more;
  }
  return true;
}

/// Text from a file as UTF-8: as it is when it is valid UTF-8, else read as Latin-1 (ISO
/// 8859-1, each byte one code point), the usual encoding of a file that is not UTF-8. The same
/// bytes always give the same text, so a category or label read in training is matched when
/// read again for prediction, and model files (JSON) hold valid UTF-8.
inline std::string to_utf8(std::string_view text) {
  if (is_utf8(text)) {
    return std::string(text);
  }
  std::string out;
  out.reserve(text.size() + text.size() / 2);
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out.push_back(ch);
    } else {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

/// A message for one line of diagnostics, at most about `max` characters: a longer one (a name
/// or value of megabytes in it) keeps its start and end around a count of what was left out.
inline std::string clamp_message(const std::string& text, std::size_t max = 4000) {
  if (text.size() <= max) {
    return text;
  }
  const std::size_t tail = max / 4, head = max - tail;
  return text.substr(0, head) + " ... (" + std::to_string(text.size() - head - tail) +
         " characters left out) ... " + text.substr(text.size() - tail);
}

/// The names joined by `separator` ("a,b,c" for a --drop list).
inline std::string join(const std::vector<std::string>& names, const char* separator) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += (i ? separator : "") + names[i];
  }
  return out;
}

/// "a, b, c", or the first `shown` names and "... (N more)".
inline std::string name_list(const std::vector<std::string>& names, std::size_t shown = 20) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < shown; ++i) {
    out += (i ? ", " : "") + excerpt(names[i], 200);  // a name may be a 20 MB category
  }
  if (names.size() > shown) {
    out += ", ... (" + std::to_string(names.size() - shown) + " more)";
  }
  return out;
}

/// "unit 3" or "units 1-3, 5": 0-based unit indices, ascending, named 1-based with runs of
/// consecutive units as "a-b".
inline std::string unit_list(const std::vector<Index>& units) {
  std::string out = units.size() == 1 ? "unit " : "units ";
  for (std::size_t i = 0; i < units.size();) {
    std::size_t last = i;
    while (last + 1 < units.size() && units[last + 1] == units[last] + 1) {
      ++last;
    }
    out += (i > 0 ? ", " : "") + std::to_string(units[i] + 1);
    if (last > i) {
      out += "-" + std::to_string(units[last] + 1);
    }
    i = last + 1;
  }
  return out;
}

/// Appends rows [begin, end) of `values` as CSV lines, each number in the shortest form that
/// reads back exactly.
template <class M>
void append_csv_rows(const M& values, long begin, long end, std::string& out) {
  char buffer[64];
  for (long i = begin; i < end; ++i) {
    for (long j = 0; j < values.cols(); ++j) {
      const std::to_chars_result r = std::to_chars(buffer, buffer + sizeof buffer, values(i, j));
      if (j > 0) {
        out.push_back(',');
      }
      out.append(buffer, r.ptr);
    }
    out.push_back('\n');
  }
}

}  // namespace nnlift::detail
