// Core aliases, the data-layout convention, Status and IoError.
// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include <Eigen/Core>

namespace nnlift {

/// Data layout convention, used everywhere: a data matrix `X` is n×d with one row per sample,
/// and labels `y` are an n-vector. Matrices are Eigen column-major doubles.
using Index = Eigen::Index;
using Matrix = Eigen::MatrixXd;
using Vector = Eigen::VectorXd;

/// How a numerical computation ended. Numerical outcomes are data, never exceptions.
enum class Status {
  Success,         ///< converged / completed to the requested accuracy
  NotConverged,    ///< hit its iteration limit; the result is the best found
  NumericalIssue,  ///< ill-conditioning or a degenerate input made the result unreliable
  NotDefinite,     ///< a matrix that had to be definite (e.g. for whitening) was not
};

/// "success", "not-converged", "numerical-issue", "not-definite".
const char* to_string(Status status) noexcept;

/// Thrown for unreadable or malformed files. The message names the file, and for text formats
/// the line and column: "train.csv:17:5: field 3 ('x3') is not a number: 'abc'".
class IoError : public std::runtime_error {
 public:
  explicit IoError(const std::string& what) : std::runtime_error(what) {}
};

/// Thrown for input data that is well-formed but unusable (a constant feature column, a
/// singular covariance). Derives from std::runtime_error; the message names the columns.
class DataError : public std::runtime_error {
 public:
  explicit DataError(const std::string& what) : std::runtime_error(what) {}
};

/// The library version, "MAJOR.MINOR.PATCH".
const char* version_string() noexcept;

}  // namespace nnlift
