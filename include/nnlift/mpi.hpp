// Rows spread over the processes of an MPI communicator (CMake option NNLIFT_MPI; link
// nnlift::mpi). SPDX-License-Identifier: MIT
#pragma once

#include <mpi.h>

#include <nnlift/execution.hpp>

namespace nnlift {

/// The reducer of an MPI program: every process of `comm` holds some of the rows, in rank order
/// (rank 0 the first rows), and calls nnlift::train on its own rows with
/// ExecutionContext(reducer, threads). Each pass's block partials are summed by the block tree
/// (block_tree): every process sums its whole tree nodes, rank 0 finishes the tree from all
/// processes' nodes (at most 2·log2(N) + 1 each, N blocks in all) and broadcasts the total. The
/// model is bitwise the same for any number of processes and threads when every process's rows
/// start on a block boundary (align_rows makes them so); otherwise it is still deterministic.
///
/// Every call is collective: all processes of `comm` make the same calls in the same order.
/// The communicator must outlive the reducer; MPI must be initialised (MPI_THREAD_FUNNELED is
/// enough: only the calling thread communicates).
class MpiReducer final : public RowReducer {
 public:
  /// \throws std::invalid_argument if block_rows < 1 (on every process alike).
  explicit MpiReducer(MPI_Comm comm, Index block_rows = 8192);

  Index block_rows() const override { return m_block_rows; }
  Index first_row(Index local_rows) const override;
  Index global_rows(Index local_rows) const override;
  Matrix combine(const std::vector<Matrix>& local_partials, Index rows, Index cols) const override;
  Matrix gather_rows(const Matrix& local) const override;

  /// Wall time this process has spent in the reducer's communication so far (waiting for the
  /// other processes included): subtract two readings for a stage's share.
  double communication_seconds() const noexcept { return m_seconds; }

  int rank() const noexcept { return m_rank; }
  int size() const noexcept { return m_size; }

  /// The rows of all processes (each `local`, cols equal everywhere), moved so that process r
  /// holds the global rows of blocks [r·N/P, (r+1)·N/P) (N blocks, P processes): every range
  /// starts on a block boundary, and the global row order is kept. Returns this process's rows.
  Matrix align_rows(const Matrix& local) const;

 private:
  MPI_Comm m_comm;
  Index m_block_rows;
  int m_rank = 0;
  int m_size = 1;
  mutable double m_seconds = 0;
};

}  // namespace nnlift
