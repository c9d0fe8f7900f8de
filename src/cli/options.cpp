// Command-line parsing helpers shared by every command.
// SPDX-License-Identifier: MIT
#include "cli/options.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <ostream>

namespace nnlift::cli {

void add_common(po::options_description& desc, CommonFlags& flags, bool with_threads) {
  desc.add_options()("help,h", po::bool_switch(&flags.help), "show this help and exit")(
      "quiet,q", po::bool_switch(&flags.quiet), "print no diagnostics on stderr");
  if (with_threads) {
    desc.add_options()(
        "threads",
        po::value(&flags.threads)->default_value(flags.threads)->notifier([](int threads) {
          if (threads < 0 || threads > kMaxThreads) {
            throw UsageError("--threads = " + std::to_string(threads) + "; must be in [0, " +
                             std::to_string(kMaxThreads) + "]");
          }
        }),
        "worker threads, at most 1024; 0 = OpenMP default. Results do not "
        "depend on it");
  }
}

bool parse_command(const std::string& usage,
                   const std::vector<std::string>& args,
                   po::options_description& desc,
                   std::ostream& out) {
  // Boost.Program_options substitutes "%canonical_option%", "%value%" and the like into its
  // messages and loops forever when an argument contains such a placeholder (found by fuzzing):
  // such an argument is refused before Boost sees it.
  for (const std::string& arg : args) {
    for (const char* placeholder :
         {"%canonical_option%", "%prefix_option%", "%option%", "%value%", "%original_token%"}) {
      if (arg.find(placeholder) != std::string::npos) {
        throw UsageError(std::string("an argument contains '") + placeholder +
                         "', which the option parser cannot report on");
      }
    }
  }
  po::variables_map vm;
  try {
    const po::parsed_options parsed = po::command_line_parser(args).options(desc).run();
    // Checks Boost does not make: it converts "-1" to an unsigned option by wrapping it to
    // 2^64 - 1, and it accepts "nan" and "inf" for a floating option.
    for (const po::option& option : parsed.options) {
      const po::option_description* d = desc.find_nothrow(option.string_key, false);
      const po::value_semantic* semantic = d != nullptr ? d->semantic().get() : nullptr;
      for (const std::string& value : option.value) {
        if (dynamic_cast<const po::typed_value<std::uint64_t>*>(semantic) != nullptr &&
            value.find('-') != std::string::npos) {
          throw UsageError("--" + option.string_key + " = " + value +
                           "; must be an integer in [0, 18446744073709551615]");
        }
        if (dynamic_cast<const po::typed_value<double>*>(semantic) != nullptr &&
            !std::isfinite(std::strtod(value.c_str(), nullptr))) {
          throw UsageError("--" + option.string_key + " = " + value + "; must be a finite number");
        }
      }
    }
    po::store(parsed, vm);
    // --help is checked before notify(), so that required options do not block it.
    if (vm.count("help") && vm["help"].as<bool>()) {
      out << usage << "\n\n" << desc << "\n";
      return false;
    }
    po::notify(vm);
  } catch (const po::required_option& e) {
    // What the missing option is, from its help text (up to "(required)"): "k >= 1, hidden
    // units, or auto: ..." says more than that it is missing.
    std::string name = e.get_option_name();
    name.erase(0, name.find_first_not_of('-'));
    const po::option_description* option = desc.find_nothrow(name, false);
    std::string what = option != nullptr ? option->description() : std::string();
    what = what.substr(0, what.find(" (required)"));
    throw UsageError(std::string(e.what()) + (what.empty() ? "" : ": " + what));
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  return true;
}

std::vector<std::string> split_list(const std::string& text, const char* option) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = text.find(',', start);
    const std::string part =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (part.empty()) {
      throw UsageError(std::string("--") + option + ": empty name in '" + text + "'");
    }
    out.push_back(part);
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  return out;
}

}  // namespace nnlift::cli

namespace nnlift::cli {

std::string with_flag_names(std::string message,
                            const std::vector<std::pair<std::string, std::string>>& names) {
  std::vector<std::pair<std::string, std::string>> sorted = names;
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.first.size() > b.first.size();
  });
  for (const auto& [field, flag] : sorted) {
    for (std::size_t at = message.find(field); at != std::string::npos;
         at = message.find(field, at + flag.size())) {
      message.replace(at, field.size(), flag);
    }
  }
  return message;
}

}  // namespace nnlift::cli
