// The only place with OpenMP pragmas for reductions: fixed blocks, combined in block order, so
// that results are bitwise independent of the thread count.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <vector>

#include <nnlift/types.hpp>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace nnlift::detail {

/// 0 -> the OpenMP default; otherwise the number asked for (at least 1).
inline int resolve_threads(int num_threads) {
#ifdef _OPENMP
  return num_threads > 0 ? num_threads : omp_get_max_threads();
#else
  (void)num_threads;
  return 1;
#endif
}

/// Runs f(i) for i in [0, count) in parallel. f must write only to its own outputs.
template <class Fn>
void parallel_for(Index count, int num_threads, Fn&& f) {
  const int threads = resolve_threads(num_threads);
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
#endif
  for (Index i = 0; i < count; ++i) {
    f(i);
  }
  (void)threads;
}

/// Σ_b f(begin_b, rows_b) over fixed blocks of `block_rows` rows of [0, n), each f returning a
/// rows×cols matrix; blocks are combined in block order, so the floating-point result depends
/// only on (n, block_rows), never on the thread count.
template <class BlockFn>
Matrix blocked_sum(
    Index n, Index block_rows, int num_threads, Index rows, Index cols, BlockFn&& f) {
  const Index num_blocks = n == 0 ? 0 : (n + block_rows - 1) / block_rows;
  std::vector<Matrix> partial(static_cast<std::size_t>(num_blocks));
  parallel_for(num_blocks, num_threads, [&](Index b) {
    const Index begin = b * block_rows;
    partial[static_cast<std::size_t>(b)] = f(begin, std::min(block_rows, n - begin));
  });
  Matrix total = Matrix::Zero(rows, cols);
  for (const Matrix& p : partial) {
    total += p;
  }
  return total;
}

/// A·B computed in fixed blocks of `block_rows` rows of A, in parallel. Each block is an
/// independent product of fixed shape, so the result does not depend on the thread count.
template <class MatA, class MatB>
Matrix parallel_product(const MatA& A, const MatB& B, int num_threads, Index block_rows = 256) {
  Matrix out(A.rows(), B.cols());
  const Index n = A.rows();
  const Index num_blocks = (n + block_rows - 1) / block_rows;
  parallel_for(num_blocks, num_threads, [&](Index b) {
    const Index begin = b * block_rows;
    const Index rows = std::min(block_rows, n - begin);
    out.middleRows(begin, rows).noalias() = A.middleRows(begin, rows) * B;
  });
  return out;
}

}  // namespace nnlift::detail
