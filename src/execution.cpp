// The execution context: local blocks at global row positions, combined through the reducer.
// SPDX-License-Identifier: MIT
#include <nnlift/execution.hpp>

#include "detail/check.hpp"
#include "detail/parallel.hpp"

namespace nnlift {

LocalReducer::LocalReducer(Index block_rows) : m_block_rows(block_rows) {
  detail::require(block_rows >= 1, "LocalReducer", "block_rows", block_rows, ">= 1");
}

Matrix LocalReducer::combine(const std::vector<Matrix>& local_partials,
                             Index rows,
                             Index cols) const {
  Matrix total = Matrix::Zero(rows, cols);
  for (const Matrix& p : local_partials) {
    total += p;
  }
  return total;
}

ExecutionContext::ExecutionContext(int num_threads) : m_threads(num_threads) {
  detail::require(num_threads >= 0, "ExecutionContext", "num_threads", num_threads, ">= 0");
}

ExecutionContext::ExecutionContext(const RowReducer& reducer, int num_threads)
    : m_reducer(&reducer), m_threads(num_threads) {
  detail::require(num_threads >= 0, "ExecutionContext", "num_threads", num_threads, ">= 0");
}

Matrix ExecutionContext::sum(Index local_rows, Index rows, Index cols, const BlockFn& f) const {
  const RowReducer& r = reducer();
  const Index block = r.block_rows();
  const Index first = r.first_row(local_rows);
  // Local ranges cut where the global row index crosses a multiple of the block size.
  std::vector<Index> begins;
  for (Index local = 0; local < local_rows;) {
    begins.push_back(local);
    const Index global = first + local;
    local += (global / block + 1) * block - global;
  }
  begins.push_back(local_rows);
  const Index blocks = static_cast<Index>(begins.size()) - 1;
  std::vector<Matrix> partial(static_cast<std::size_t>(blocks));
  detail::parallel_for(blocks, m_threads, [&](Index b) {
    const auto i = static_cast<std::size_t>(b);
    const Index begin = begins[i];
    const Index count = std::min(begins[i + 1], local_rows) - begin;
    partial[i] = f(begin, count);
  });
  return r.combine(partial, rows, cols);
}

Matrix ExecutionContext::mean(Index local_rows, Index rows, Index cols, const BlockFn& f) const {
  const Index n = global_rows(local_rows);
  if (n < 1) {
    detail::fail("ExecutionContext::mean: no rows");
  }
  return sum(local_rows, rows, cols, f) / static_cast<double>(n);
}

double ExecutionContext::mean_of(const Vector& column) const {
  return mean(column.size(), 1, 1, [&](Index b, Index c) {
    return Matrix::Constant(1, 1, column.segment(b, c).sum());
  })(0, 0);
}

}  // namespace nnlift
