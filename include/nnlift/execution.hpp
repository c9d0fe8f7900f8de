// Where the rows are and how sums over them are combined: the execution context every data pass
// runs in. SPDX-License-Identifier: MIT
#pragma once

#include <functional>
#include <vector>

#include <nnlift/types.hpp>

namespace nnlift {

/// The one seam through which rows held in several places (MPI ranks, threads of a test) are
/// combined. Every pass over the data is a sum of fixed-shape block partials; the blocks are
/// fixed by GLOBAL row index (block b holds global rows [b·B, (b+1)·B), B = block_rows()), and
/// combine() adds all blocks of all parts in global block order. A part that starts at a multiple
/// of B therefore produces exactly the blocks a single process would, and the model is bitwise
/// the same for any partition into such parts (any other partition is still deterministic).
///
/// A reducer for P parts implements the four collective calls below; every part must make the
/// same calls in the same order (as nnlift::train does: its control flow depends only on
/// reduced values). LocalReducer is the one-part reducer.
class RowReducer {
 public:
  virtual ~RowReducer() = default;
  /// Rows per block, B >= 1. The same on every part.
  virtual Index block_rows() const = 0;
  /// Global index of this part's first row, given that it holds `local_rows` rows.
  virtual Index first_row(Index local_rows) const = 0;
  /// Rows over all parts, given that this part holds `local_rows` rows.
  virtual Index global_rows(Index local_rows) const = 0;
  /// The sum of every part's block partials (rows×cols each), this part's given in increasing
  /// block order; the blocks of all parts are added in global block order, starting from zero.
  /// Every part receives the total.
  virtual Matrix combine(const std::vector<Matrix>& local_partials,
                         Index rows,
                         Index cols) const = 0;
  /// Every part's rows stacked in part order (the parts' row ranges are in that order); every
  /// part receives the whole matrix. Used for small per-row data (subsamples, distinct labels).
  virtual Matrix gather_rows(const Matrix& local) const = 0;
  /// The local row indices where this part's blocks begin, ascending, starting with 0 (empty
  /// when local_rows is 0). The default cuts where the global row index crosses a multiple of
  /// block_rows(); a reducer over a subset of another's rows (a validation split) cuts where the
  /// rows' index in the full set does, so that the blocks do not depend on the partition.
  virtual std::vector<Index> block_starts(Index local_rows) const;
  /// The index in the full set (the root of any subsets) of each of this part's `local_rows`
  /// rows, ascending: where blocks are cut. Collective. The default: first_row + i.
  virtual std::vector<Index> root_rows(Index local_rows) const;
  /// True when this part holds every row (no other part takes part in the collective calls):
  /// independent passes may then run at the same time from several threads, each through its
  /// own calls. The default: false.
  virtual bool single_part() const { return false; }
};

/// The canonical sum of N block partials, the one every reducer computes: a pairwise tree over
/// the global block index. Node (level l, index i) covers blocks [i·2^l, (i+1)·2^l) ∩ [0, N);
/// a leaf is a block's partial; an inner node is left + right, or left alone when the right
/// child starts at or past N. The total is the node of the lowest level that covers [0, N).
/// Every node's value depends only on its blocks, so parts holding any ranges of blocks can sum
/// their whole nodes locally and one place finish the tree (BlockTree::pieces, BlockTree::total)
/// with the same bits as one process. Pairwise summation also bounds the rounding error by
/// O(log N) instead of O(N) block additions.
struct BlockTreeNode {
  int level = 0;
  Index index = 0;
  Matrix sum;
};

namespace block_tree {
/// The maximal tree nodes inside blocks [first, first + partials.size()), each with its sum, in
/// block order: at most 2·log2(N) + 1 of them.
std::vector<BlockTreeNode> pieces(const std::vector<Matrix>& partials, Index first);
/// The total of N blocks from nodes that tile [0, N) (every part's pieces); Zero(rows, cols) when
/// N = 0. \throws std::invalid_argument if the nodes do not tile [0, N).
Matrix total(const std::vector<BlockTreeNode>& nodes, Index blocks, Index rows, Index cols);
}  // namespace block_tree

/// All rows are held here: combine sums the partials by the block tree, gather_rows returns its
/// input.
class LocalReducer final : public RowReducer {
 public:
  /// \throws std::invalid_argument if block_rows < 1.
  explicit LocalReducer(Index block_rows = 8192);
  Index block_rows() const override { return m_block_rows; }
  Index first_row(Index /*local_rows*/) const override { return 0; }
  Index global_rows(Index local_rows) const override { return local_rows; }
  Matrix combine(const std::vector<Matrix>& local_partials, Index rows, Index cols) const override;
  Matrix gather_rows(const Matrix& local) const override { return local; }
  bool single_part() const override { return true; }

 private:
  Index m_block_rows;
};

/// The rows of a subset of another reducer's rows (this part keeps its local rows
/// `parent_rows`, ascending, of its `parent_local_rows`): combined through the parent, with
/// blocks cut where the full set's are (through any depth of subsets), and numbered 0.. over
/// the subsets of all parts in part order. Construction is collective (every part constructs
/// its subsets in the same order).
class SubsetReducer final : public RowReducer {
 public:
  /// \throws std::invalid_argument if parent_rows is not ascending within [0, parent_local_rows).
  SubsetReducer(const RowReducer& parent, Index parent_local_rows, std::vector<Index> parent_rows);
  Index block_rows() const override { return m_parent.block_rows(); }
  Index first_row(Index /*local_rows*/) const override { return m_first; }
  Index global_rows(Index /*local_rows*/) const override { return m_total; }
  Matrix combine(const std::vector<Matrix>& local_partials, Index rows, Index cols) const override {
    return m_parent.combine(local_partials, rows, cols);
  }
  Matrix gather_rows(const Matrix& local) const override { return m_parent.gather_rows(local); }
  std::vector<Index> block_starts(Index local_rows) const override;
  std::vector<Index> root_rows(Index local_rows) const override;
  bool single_part() const override { return m_parent.single_part(); }

 private:
  const RowReducer& m_parent;
  std::vector<Index> m_parent_rows;
  std::vector<Index> m_root_rows;     // each local row's index in the full set
  std::vector<Index> m_block_starts;  // where the full set's blocks begin among the local rows
  Index m_first = 0;
  Index m_total = 0;
};

/// Thread count and reducer: everything a data pass needs to know about where it runs. Passed
/// to every function that reads rows; results are bitwise independent of num_threads.
class ExecutionContext {
 public:
  /// A function of a LOCAL row range [begin, begin + count) returning a fixed-shape partial.
  using BlockFn = std::function<Matrix(Index begin, Index count)>;

  /// All rows local (a LocalReducer with 8192-row blocks). num_threads 0 = OpenMP default.
  /// \throws std::invalid_argument if num_threads < 0.
  explicit ExecutionContext(int num_threads = 0);
  /// Rows combined through `reducer`, which must outlive the context.
  /// \throws std::invalid_argument if num_threads < 0.
  ExecutionContext(const RowReducer& reducer, int num_threads);

  int num_threads() const noexcept { return m_threads; }
  const RowReducer& reducer() const noexcept { return m_reducer != nullptr ? *m_reducer : m_local; }

  /// Σ of f over the global blocks that this part's `local_rows` rows fall into, computed in
  /// parallel and combined through the reducer: the same total on every part.
  Matrix sum(Index local_rows, Index rows, Index cols, const BlockFn& f) const;
  /// Runs f(begin, count) over this part's blocks (those of sum) in parallel: for row-wise maps,
  /// each block writing only its own rows. A row-wise product computed block by block gives
  /// the same bits however the rows are split among parts; one over a whole local matrix would
  /// not (its kernel treats the matrix's last rows apart). Collective, as sum.
  void for_each_block(Index local_rows, const std::function<void(Index, Index)>& f) const;
  /// f(begin, count, rows) writes a block's rows of the result (rows is count×cols).
  using RowsFn = std::function<void(Index begin, Index count, Eigen::Ref<Matrix> rows)>;
  /// The local_rows×cols matrix whose rows [begin, begin + count) f writes, block by block
  /// (for_each_block). f writes in place: a temporary per block would cost a fresh allocation.
  Matrix map_rows(Index local_rows, Index cols, const RowsFn& f) const;
  /// Σ of f over all rows of all parts, divided by the global row count: a mean.
  Matrix mean(Index local_rows, Index rows, Index cols, const BlockFn& f) const;
  /// The mean of a column whose entries are this part's rows, over all parts.
  double mean_of(const Vector& column) const;
  /// The global row count.
  Index global_rows(Index local_rows) const { return reducer().global_rows(local_rows); }
  /// Global index of local row 0.
  Index first_row(Index local_rows) const { return reducer().first_row(local_rows); }
  /// A context with the same threads whose rows are all local: for data every part already
  /// holds whole (a gathered subsample).
  ExecutionContext local() const { return ExecutionContext(m_threads); }

 private:
  LocalReducer m_local;
  const RowReducer* m_reducer = nullptr;
  int m_threads = 0;
};

}  // namespace nnlift
