// A strided subsample of rows by global row index, gathered from every part: every part then
// holds the same sample, whatever the partition of the rows.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <vector>

#include <nnlift/execution.hpp>

namespace nnlift::detail {

/// This part's local indices of the rows whose global index is ≡ 0 (mod ⌈rows/sample_rows⌉):
/// over all parts, at most about sample_rows rows, the same ones whatever the partition.
inline std::vector<Index> strided_rows(Index n,
                                       const ExecutionContext& context,
                                       Index sample_rows) {
  const Index rows = context.global_rows(n);
  const Index first = context.first_row(n);
  const Index stride = std::max<Index>(1, (rows + sample_rows - 1) / sample_rows);
  std::vector<Index> picked;
  for (Index i = (stride - first % stride) % stride; i < n; i += stride) {
    picked.push_back(i);
  }
  return picked;
}

/// The rows of strided_rows, gathered from every part: every part holds the same sample.
inline Matrix strided_sample(const Matrix& X, const ExecutionContext& context, Index sample_rows) {
  Matrix local = X(strided_rows(X.rows(), context, sample_rows), Eigen::all);
  // Every row is here: the sample as it is, without gather_rows's copy of it.
  return context.reducer().single_part() ? local : context.reducer().gather_rows(local);
}

}  // namespace nnlift::detail
