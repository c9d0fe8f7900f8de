// A strided subsample of rows by global row index, gathered from every part: every part then
// holds the same sample, whatever the partition of the rows.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <vector>

#include <nnlift/execution.hpp>

namespace nnlift::detail {

/// Rows i with global index ≡ 0 (mod ⌈rows/sample_rows⌉): at most about sample_rows of them.
inline Matrix strided_sample(const Matrix& X, const ExecutionContext& context, Index sample_rows) {
  const Index n = X.rows();
  const Index rows = context.global_rows(n);
  const Index first = context.first_row(n);
  const Index stride = std::max<Index>(1, (rows + sample_rows - 1) / sample_rows);
  std::vector<Index> picked;
  for (Index i = (stride - first % stride) % stride; i < n; i += stride) {
    picked.push_back(i);
  }
  return context.reducer().gather_rows(X(picked, Eigen::all));
}

}  // namespace nnlift::detail
