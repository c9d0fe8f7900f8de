// The only place with OpenMP pragmas: fixed blocks, combined in block order, so that results are
// bitwise independent of the thread count. No exception escapes a parallel region, and a region
// inside another runs serially.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <vector>

#include <nnlift/types.hpp>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace nnlift::detail {

/// 0 -> the calling thread's OpenMP budget (see ThreadBudget); otherwise the number asked for.
/// Inside a parallel region: 1 (nested regions run serially).
inline int resolve_threads(int num_threads) {
#ifdef _OPENMP
  if (omp_in_parallel() != 0) {
    return 1;
  }
  return num_threads > 0 ? num_threads : omp_get_max_threads();
#else
  (void)num_threads;
  return 1;
#endif
}

/// How many block partials of `rows` x `cols` doubles ExecutionContext::sum keeps at a time
/// (a wave): 16 per thread (at least 64), fewer where they would take more than 256 MB (wide
/// d x d sums), but at least 2 per thread. The wave does not change the total's bits.
inline Index sum_wave(int threads, Index rows, Index cols) {
  const double bytes = 8.0 * static_cast<double>(std::max<Index>(rows, 1)) *
                       static_cast<double>(std::max<Index>(cols, 1));
  const auto fit = static_cast<Index>(256e6 / bytes);
  return std::max<Index>(2 * threads, std::min<Index>(std::max<Index>(64, 16 * threads), fit));
}

/// Sets the calling thread's OpenMP thread budget for its lifetime (0 leaves it as it is), so
/// that the library's own parallel regions started below a public entry point (tensor
/// contractions inside a decomposition) use the caller's num_threads. The budget is an OpenMP
/// per-thread setting: other threads are not affected.
class ThreadBudget {
 public:
  explicit ThreadBudget(int num_threads) {
#ifdef _OPENMP
    m_saved = omp_get_max_threads();
    if (num_threads > 0 && omp_in_parallel() == 0) {
      omp_set_num_threads(num_threads);
    }
#else
    (void)num_threads;
#endif
  }
  ~ThreadBudget() {
#ifdef _OPENMP
    if (omp_in_parallel() == 0) {
      omp_set_num_threads(m_saved);
    }
#endif
  }
  ThreadBudget(const ThreadBudget&) = delete;
  ThreadBudget& operator=(const ThreadBudget&) = delete;

 private:
  [[maybe_unused]] int m_saved = 1;  // unread when a file including this is built without OpenMP
};

/// Runs f(i) for i in [0, count) in parallel. f must write only to its own outputs. An exception
/// thrown by f stops the remaining iterations and is rethrown here, after the region (the first
/// by index when several threads throw).
template <class Fn>
void parallel_for(Index count, int num_threads, Fn&& f) {
  const int threads = resolve_threads(num_threads);
  if (count <= 1 || threads <= 1) {
    // On the calling thread, without entering the OpenMP runtime: libgomp's region with an
    // if-clause false, or with one thread, still ends in a futex wake, a system call (on this
    // machine's virtual CPUs about a microsecond), and an L-BFGS fit on a small set ran tens of
    // thousands of them. The first exception by index is the one thrown, as below.
    for (Index i = 0; i < count; ++i) {
      f(i);
    }
    return;
  }
  // Only iterations after one that threw are skipped: every earlier one still runs, so the first
  // iteration by index that throws is always the one reported. (Skipping all the iterations
  // not yet started, as before, lost it whenever a later one threw first: built by clang, on
  // LLVM's OpenMP runtime, a .npy file with bad values in blocks 1 to 9 was reported at a later
  // block in 186 of 200 reads on two threads; built by GCC, on libgomp, in none.)
  std::atomic<Index> first_failed{count};
  std::exception_ptr error;
  std::mutex guard;  // taken only when an iteration throws
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
#endif
  for (Index i = 0; i < count; ++i) {
    if (i > first_failed.load(std::memory_order_relaxed)) {
      continue;
    }
    try {
      f(i);
    } catch (...) {
      const std::lock_guard<std::mutex> lock(guard);
      if (i < first_failed.load(std::memory_order_relaxed)) {
        first_failed.store(i, std::memory_order_relaxed);
        error = std::current_exception();
      }
    }
  }
  (void)threads;
  if (error) {
    std::rethrow_exception(error);
  }
}

/// A·B computed in fixed blocks of `block_rows` rows of A, in parallel. Each block is an
/// independent product of fixed shape, so the result does not depend on the thread count.
template <class MatA, class MatB>
Matrix parallel_product(const MatA& A, const MatB& B, int num_threads, Index block_rows = 256) {
  Matrix out(A.rows(), B.cols());
  const Index n = A.rows();
  const Index num_blocks = (n + block_rows - 1) / block_rows;
  // A product of a few hundred thousand multiply-adds (a k×k×k core's, thousands of times in a
  // decomposition) takes less time than waking a second thread: its blocks run in turn here,
  // with the same bits.
  constexpr double kMinParallelWork = 262144;
  const bool small =
      static_cast<double>(n) * static_cast<double>(A.cols()) * static_cast<double>(B.cols()) <
      kMinParallelWork;
  parallel_for(num_blocks, small ? 1 : num_threads, [&](Index b) {
    const Index begin = b * block_rows;
    const Index rows = std::min(block_rows, n - begin);
    out.middleRows(begin, rows).noalias() = A.middleRows(begin, rows) * B;
  });
  return out;
}

/// Runs f(begin, count) over [0, n) in blocks of `block_rows` rows in parallel: for row-wise maps
/// (each block writes only its own rows).
template <class Fn>
void parallel_rows(Index n, int num_threads, Fn&& f, Index block_rows = 8192) {
  const Index num_blocks = n == 0 ? 0 : (n + block_rows - 1) / block_rows;
  parallel_for(num_blocks, num_threads, [&](Index b) {
    const Index begin = b * block_rows;
    f(begin, std::min(block_rows, n - begin));
  });
}

// Sums over rows of a block that do not depend on where the block lies in memory. Eigen sums a
// directly addressed vector (a column segment) from its first vector-aligned element, adding
// the unaligned head apart: the same rows held at another address (by a part whose matrix has
// another length) would round differently, and models trained on a partition of the rows would
// not be bitwise the same. An expression has no address, so Eigen sums it from its first
// element; a matrix-vector product does not peel either.

/// Σ of the entries of a vector (segment), independent of its address.
template <class V>
double sum_of(const Eigen::MatrixBase<V>& v) {
  return (v.derived().array() + 0.0).sum();
}

/// The column sums (as a column) of a block of rows, independent of its address.
template <class M>
Matrix column_sums(const Eigen::MatrixBase<M>& block) {
  return block.derived().transpose() * Vector::Ones(block.rows());
}

}  // namespace nnlift::detail
