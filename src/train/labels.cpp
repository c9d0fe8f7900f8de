// Stage "labels": the working labels of the moments and the output layer's targets.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <set>
#include <sstream>

#include "detail/rng.hpp"
#include "train/stages.hpp"

namespace nnlift::detail {
namespace {

// More distinct labels than this is a numeric target, not classes.
constexpr std::size_t kMaxClasses = 100;

// The distinct labels over all parts (at most kMaxClasses + 1 of them are collected).
std::set<double> distinct_labels(const Vector& y, const ExecutionContext& context) {
  std::set<double> local;
  for (Index i = 0; i < y.size() && local.size() <= kMaxClasses; ++i) {
    local.insert(y(i));
  }
  Vector mine(static_cast<Index>(local.size()));
  std::copy(local.begin(), local.end(), mine.data());
  const Matrix all = context.reducer().gather_rows(mine);
  std::set<double> out;
  for (Index i = 0; i < all.rows() && out.size() <= kMaxClasses; ++i) {
    out.insert(all(i, 0));
  }
  return out;
}

}  // namespace

Labels encode_labels(const Dataset& data,
                     const LabelOptions& options,
                     std::uint64_t seed,
                     const ExecutionContext& context) {
  Labels out;
  out.y = data.y;
  if (options.task != Task::Classification) {
    return out;
  }
  const Index n = data.y.size();
  const std::set<double> distinct = distinct_labels(data.y, context);
  if (distinct.size() > kMaxClasses || distinct.size() < 2) {
    std::ostringstream msg;
    msg << "classification: target '" << data.target_name << "' has "
        << (distinct.size() < 2 ? "a single value" : "more than 100 distinct values")
        << "; a numeric target is regression";
    throw DataError(msg.str());
  }
  out.classes.assign(distinct.begin(), distinct.end());
  const Index c = static_cast<Index>(out.classes.size());
  if (c == 2) {
    out.y = (data.y.array() == out.classes[1]).cast<double>();
    out.codes = (Vector(2) << 0.0, 1.0).finished();
    return out;
  }
  out.onehot = Matrix::Zero(n, c);
  for (Index i = 0; i < n; ++i) {
    const auto at = std::lower_bound(out.classes.begin(), out.classes.end(), data.y(i));
    out.onehot(i, static_cast<Index>(at - out.classes.begin())) = 1.0;
  }
  Rng rng(derive_seed(seed, 41));
  out.codes = rng.normal_vector(c);
  out.y = out.onehot * out.codes;
  return out;
}

Matrix encode_targets(const Vector& y, const Labels& labels) {
  if (labels.classes.empty()) {
    return Matrix(y);
  }
  const Index n = y.size();
  if (!labels.multiclass()) {
    return Matrix((y.array() == labels.classes[1]).cast<double>());
  }
  Matrix T = Matrix::Zero(n, static_cast<Index>(labels.classes.size()));
  for (Index i = 0; i < n; ++i) {
    const auto at = std::lower_bound(labels.classes.begin(), labels.classes.end(), y(i));
    if (at != labels.classes.end() && *at == y(i)) {
      T(i, at - labels.classes.begin()) = 1.0;
    }
  }
  return T;
}

}  // namespace nnlift::detail
