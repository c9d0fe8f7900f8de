// The nnlift command-line tool as a testable function.
// SPDX-License-Identifier: MIT
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace nnlift::cli {

struct Processes;  // cli/shards.hpp

/// Exit codes of the tool.
enum ExitCode : int {
  kOk = 0,
  kRuntimeError = 1,    ///< I/O, bad data
  kUsageError = 2,      ///< bad flags or option values
  kNumericalError = 3,  ///< a numerical status other than success, with --strict
};

/// Runs `nnlift args...` (args excludes the program name): results to `out`, diagnostics and
/// errors to `err`. Returns the exit code; never throws and never calls exit().
/// `processes`: the processes of an mpirun launch (only `train` then runs; see shards.hpp).
int run(const std::vector<std::string>& args,
        std::ostream& out,
        std::ostream& err,
        const Processes* processes = nullptr);

/// The value of glibc's glibc.malloc.hugetlb tunable in GLIBC_TUNABLES, if it is set there: the
/// executable restarts itself with it set to 1 (src/cli/main.cpp), and `--version` reports it.
std::optional<std::string> hugetlb_tunable();

}  // namespace nnlift::cli
