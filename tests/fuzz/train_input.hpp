// The whole tool as the training fuzzer drives it: the first two bytes choose the options, the
// rest is a CSV file that `nnlift train` reads, encodes and trains on; a model it writes must then
// predict and evaluate on the same file. Shared by the harness and the test that replays kept
// inputs. Returns an empty string when every rule held, else what broke:
//   - train exits 0 or 1 (never 2: the flags are valid; never 3: no --strict), and an exit 1
//     says "error:";
//   - a written model predicts on the file it was trained on (exit 0, one finite number or a
//     class name per row) and evaluates on it (exit 0, or exit 1 with an error, as for a row
//     whose target is missing: training left it out);
//   - a failed training leaves no model file.
// SPDX-License-Identifier: MIT
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "cli/commands.hpp"

namespace fuzz {

/// The training flags chosen by two bytes: hidden units, score, activation and start,
/// refinement and the validation share (`choice`); choices made automatically, the control
/// variate, the linear term, the weak units, the encoding, the task and the eigenvalue floor
/// (`more`).
inline std::vector<std::string> train_flags(std::uint8_t choice, std::uint8_t more) {
  static const char* const hidden[] = {"1", "2", "3", "5"};
  static const char* const score[] = {"adaptive", "gaussian", "rankgauss", "gmm"};
  std::vector<std::string> flags = {"--hidden",
                                    hidden[choice & 3u],
                                    "--score",
                                    score[(choice >> 2) & 3u],
                                    "--missing",
                                    "mean",
                                    "--threads",
                                    "1",
                                    "--quiet"};
  switch ((choice >> 4) & 3u) {
    case 1:
      flags.insert(flags.end(), {"--activation", "tanh"});
      break;
    case 2:
      flags.insert(flags.end(), {"--activation", "softplus"});
      break;
    case 3:
      flags.insert(flags.end(), {"--init", "random"});
      break;
    default:
      break;
  }
  const bool refine = (choice >> 6) & 1u || ((choice >> 4) & 3u) == 3u;
  if (refine) {
    flags.insert(flags.end(), {"--refine", "lbfgs", "--refine-max-iterations", "30"});
  }
  if ((choice >> 7) & 1u) {
    flags.insert(flags.end(), {"--validation", "0.3"});
  }
  // Candidates chosen on the validation rows, each refined: too slow an input under ASan (a
  // few hundred rows took 1.5 s optimised, over a minute instrumented), so not with --refine.
  switch (refine && (more & 3u) != 3u ? 0u : more & 3u) {
    case 1:
      flags[1] = "auto";  // --hidden auto
      break;
    case 2:
      flags[3] = "auto";  // --score auto
      break;
    case 3:
      flags.insert(flags.end(), {"--residualize", "quadratic"});
      break;
    default:
      break;
  }
  // Bits 2-7 of `more`, one flag each; the last drops near-collinear directions, along which
  // the refinement holds the linear term fixed.
  static const char* const one_each[][2] = {{"--linear-term", "off"},
                                            {"--weak-units", "replace"},
                                            {"--bias", "ratio"},
                                            {"--categorical", "none"},
                                            {"--task", "regression"},
                                            {"--eigenvalue-floor", "0.01"}};
  for (unsigned bit = 2; bit < 8; ++bit) {
    if ((more >> bit) & 1u) {
      flags.insert(flags.end(), {one_each[bit - 2][0], one_each[bit - 2][1]});
    }
  }
  return flags;
}

namespace detail {

inline bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// Every prediction row (after the header) holds one field: a finite number, or a class name.
inline bool predictions_ok(const std::string& path, bool classes) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) {
    return false;
  }
  while (std::getline(in, line)) {
    if (classes) {
      continue;
    }
    char* end = nullptr;
    const double v = std::strtod(line.c_str(), &end);
    if (end == line.c_str() || !std::isfinite(v)) {
      return false;
    }
  }
  return true;
}

}  // namespace detail

/// Trains on `train_data` (a --data value) with the flags the first two of `bytes` choose, and
/// checks the rules above, predicting and evaluating on the file `data`.
inline std::string check_training(const std::string& bytes,
                                  const std::string& train_data,
                                  const std::string& data,
                                  const std::string& model,
                                  const std::string& out) {
  std::remove(model.c_str());
  std::vector<std::string> args = {"train", "--data", train_data, "--model", model};
  const std::vector<std::string> flags =
      train_flags(static_cast<std::uint8_t>(bytes[0]), static_cast<std::uint8_t>(bytes[1]));
  args.insert(args.end(), flags.begin(), flags.end());
  std::ostringstream o, e;
  const int code = nnlift::cli::run(args, o, e);
  if (code != 0) {
    if (code != 1) {
      return "train exited " + std::to_string(code) + ": " + e.str();
    }
    if (e.str().find("error:") == std::string::npos) {
      return "train exited 1 without an error: " + e.str();
    }
    return detail::exists(model) ? "a failed training left a model file" : "";
  }
  std::ostringstream po, pe;
  if (nnlift::cli::run({"predict", "--data", data, "--model", model, "--out", out}, po, pe) != 0) {
    return "predict on the training file failed: " + pe.str();
  }
  std::ifstream m(model);
  const std::string text((std::istreambuf_iterator<char>(m)), std::istreambuf_iterator<char>());
  if (!detail::predictions_ok(out, text.find("\"classes\"") != std::string::npos)) {
    return "predict wrote a row that is not a finite number";
  }
  std::ostringstream eo, ee;
  const int evaluated = nnlift::cli::run({"evaluate", "--data", data, "--model", model}, eo, ee);
  if (evaluated != 0 && (evaluated != 1 || ee.str().find("error:") == std::string::npos)) {
    return "evaluate on the training file exited " + std::to_string(evaluated) + ": " + ee.str();
  }
  return {};
}

/// check_training on the CSV file after the first two bytes, in files of this process under
/// /tmp, removed afterwards. When the file has an even number of line ends, also on the same
/// file cut in two after the header and half of its lines, each part a shard with the header:
/// a --data list, whose shards may read a column differently (numbers in one, text in the other).
inline std::string train_on_bytes(const std::string& bytes) {
  if (bytes.size() < 2) {
    return {};
  }
  const std::string base = "/tmp/nnlift-fuzz-train-" + std::to_string(::getpid());
  const std::string data = base + ".csv", model = base + ".json", out = base + "-p.csv";
  const std::string first = base + "-a.csv", second = base + "-b.csv";
  const std::string csv = bytes.substr(2);
  const auto write = [](const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary);
    f << text;
  };
  write(data, csv);
  std::string broken = check_training(bytes, data, data, model, out);
  std::vector<std::size_t> ends;
  for (std::size_t i = 0; i < csv.size(); ++i) {
    if (csv[i] == '\n') {
      ends.push_back(i + 1);
    }
  }
  if (broken.empty() && ends.size() >= 4 && ends.size() % 2 == 0) {
    const std::size_t header = ends.front(), cut = ends[ends.size() / 2];
    write(first, csv.substr(0, cut));
    write(second, csv.substr(0, header) + csv.substr(cut));
    broken = check_training(bytes, first + "," + second, data, model, out);
    if (!broken.empty()) {
      broken = "as two shards: " + broken;
    }
  }
  for (const std::string& path : {data, model, out, first, second}) {
    std::remove(path.c_str());
  }
  return broken;
}

}  // namespace fuzz
