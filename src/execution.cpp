// The execution context: local blocks at global row positions, combined through the reducer.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include <nnlift/execution.hpp>

#include "detail/check.hpp"
#include "detail/collective.hpp"
#include "detail/io.hpp"
#include "detail/parallel.hpp"

namespace nnlift {

LocalReducer::LocalReducer(Index block_rows) : m_block_rows(block_rows) {
  detail::require(block_rows >= 1, "LocalReducer", "block_rows", block_rows, ">= 1");
}

Matrix LocalReducer::combine(const std::vector<Matrix>& local_partials,
                             Index rows,
                             Index cols) const {
  return block_tree::total(
      block_tree::pieces(local_partials, 0), static_cast<Index>(local_partials.size()), rows, cols);
}

namespace {

// The sum of node (level, index) over the blocks [first, first + count) that `at` returns,
// computed by the tree's rule; blocks at or past `end` are absent.
template <class Leaf>
Matrix node_sum(int level, Index index, Index end, const Leaf& at) {
  if (level == 0) {
    return at(index);
  }
  Matrix sum = node_sum(level - 1, 2 * index, end, at);
  const Index right_start = (2 * index + 1) << (level - 1);
  if (right_start < end) {
    sum += node_sum(level - 1, 2 * index + 1, end, at);
  }
  return sum;
}

}  // namespace

namespace block_tree {

std::vector<BlockTreeNode> pieces(const std::vector<Matrix>& partials, Index first) {
  const Index end = first + static_cast<Index>(partials.size());
  std::vector<BlockTreeNode> out;
  for (Index at = first; at < end;) {
    // The highest node that starts at `at` and ends within the range.
    int level = 0;
    while ((at & ((Index{1} << (level + 1)) - 1)) == 0 && at + (Index{1} << (level + 1)) <= end) {
      ++level;
    }
    const Index index = at >> level;
    out.push_back({level, index, node_sum(level, index, end, [&](Index leaf) -> const Matrix& {
                     return partials[static_cast<std::size_t>(leaf - first)];
                   })});
    at += Index{1} << level;
  }
  return out;
}

Matrix total(const std::vector<BlockTreeNode>& nodes, Index blocks, Index rows, Index cols) {
  if (blocks == 0) {
    return Matrix::Zero(rows, cols);
  }
  // Index the nodes by their first block; a node is used where the recursion meets its level.
  std::vector<const BlockTreeNode*> by_start(static_cast<std::size_t>(blocks), nullptr);
  Index covered = 0;
  for (const BlockTreeNode& n : nodes) {
    const Index start = n.index << n.level;
    if (start < 0 || start >= blocks || n.sum.rows() != rows || n.sum.cols() != cols) {
      detail::fail("block_tree::total: a node outside the blocks or of another shape");
    }
    by_start[static_cast<std::size_t>(start)] = &n;
    covered += std::min(blocks, start + (Index{1} << n.level)) - start;
  }
  if (covered != blocks) {
    detail::fail("block_tree::total: the nodes do not tile the blocks");
  }
  int top = 0;
  while ((Index{1} << top) < blocks) {
    ++top;
  }
  // Recursion down to a given node; a leaf without one is a tiling error.
  std::function<Matrix(int, Index)> sum = [&](int level, Index index) -> Matrix {
    const Index start = index << level;
    const BlockTreeNode* given = by_start[static_cast<std::size_t>(start)];
    if (given != nullptr && given->level == level) {
      return given->sum;
    }
    if (level == 0) {
      detail::fail("block_tree::total: the nodes do not tile the blocks");
    }
    Matrix s = sum(level - 1, 2 * index);
    const Index right_start = (2 * index + 1) << (level - 1);
    if (right_start < blocks) {
      s += sum(level - 1, 2 * index + 1);
    }
    return s;
  };
  return sum(top, 0);
}

}  // namespace block_tree

std::vector<Index> RowReducer::block_starts(Index local_rows) const {
  const Index block = block_rows();
  const Index first = first_row(local_rows);
  std::vector<Index> begins;
  for (Index local = 0; local < local_rows;) {
    begins.push_back(local);
    const Index global = first + local;
    local += (global / block + 1) * block - global;
  }
  return begins;
}

SubsetReducer::SubsetReducer(const RowReducer& parent,
                             Index parent_local_rows,
                             std::vector<Index> parent_rows)
    : m_parent(parent), m_parent_rows(std::move(parent_rows)) {
  const Index n = static_cast<Index>(m_parent_rows.size());
  for (Index i = 0; i < n; ++i) {
    const Index row = m_parent_rows[static_cast<std::size_t>(i)];
    if (row < 0 || row >= parent_local_rows ||
        (i > 0 && row <= m_parent_rows[static_cast<std::size_t>(i - 1)])) {
      detail::fail("SubsetReducer: parent_rows must be ascending local rows of the parent");
    }
  }
  // Where this part's rows are in the full set; each part's first row in the parent and its
  // subset size: this part's subset rows follow those of the parts before it.
  const std::vector<Index> parent_root = m_parent.root_rows(parent_local_rows);
  for (const Index row : m_parent_rows) {
    m_root_rows.push_back(parent_root[static_cast<std::size_t>(row)]);
  }
  const Index mine = m_parent.first_row(parent_local_rows);
  const Matrix counts = m_parent.gather_rows(
      (Matrix(1, 2) << static_cast<double>(mine), static_cast<double>(n)).finished());
  for (Index p = 0; p < counts.rows(); ++p) {
    const Index size = static_cast<Index>(counts(p, 1));
    m_total += size;
    if (static_cast<Index>(counts(p, 0)) < mine) {
      m_first += size;
    }
  }
  // Blocks of the full set's row index, found once: every pass over the subset asks for them
  // (a refinement on a few thousand rows asks thousands of times).
  const Index block = block_rows();
  for (Index i = 0; i < n; ++i) {
    const auto at = static_cast<std::size_t>(i);
    if (i == 0 || m_root_rows[at] / block != m_root_rows[at - 1] / block) {
      m_block_starts.push_back(i);
    }
  }
}

std::vector<Index> SubsetReducer::block_starts(Index local_rows) const {
  if (local_rows != static_cast<Index>(m_parent_rows.size())) {
    detail::fail("SubsetReducer: " + std::to_string(local_rows) + " local rows for a subset of " +
                 std::to_string(m_parent_rows.size()));
  }
  return m_block_starts;
}

std::vector<Index> RowReducer::root_rows(Index local_rows) const {
  const Index first = first_row(local_rows);
  std::vector<Index> rows(static_cast<std::size_t>(local_rows));
  for (Index i = 0; i < local_rows; ++i) {
    rows[static_cast<std::size_t>(i)] = first + i;
  }
  return rows;
}

std::vector<Index> SubsetReducer::root_rows(Index local_rows) const {
  if (local_rows != static_cast<Index>(m_root_rows.size())) {
    detail::fail("SubsetReducer: " + std::to_string(local_rows) + " local rows for a subset of " +
                 std::to_string(m_root_rows.size()));
  }
  return m_root_rows;
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
  // Local ranges cut where the reducer's blocks begin (for the default: where the global row
  // index crosses a multiple of the block size).
  std::vector<Index> begins = r.block_starts(local_rows);
  begins.push_back(local_rows);
  const Index blocks = static_cast<Index>(begins.size()) - 1;
  const auto block = [&](Index b) {
    const auto i = static_cast<std::size_t>(b);
    const Index begin = begins[i];
    return f(begin, std::min(begins[i + 1], local_rows) - begin);
  };
  if (&r != &m_local && dynamic_cast<const LocalReducer*>(&r) == nullptr) {
    std::vector<Matrix> partial(static_cast<std::size_t>(blocks));
    detail::parallel_for(
        blocks, m_threads, [&](Index b) { partial[static_cast<std::size_t>(b)] = block(b); });
    return r.combine(partial, rows, cols);
  }
  // All rows here: the block tree built as the partials come, a wave of blocks at a time, so
  // that memory holds a wave and O(log N) tree nodes instead of every block's partial (data
  // streamed from disk have millions of blocks). Each node is left + right of the same two
  // children as in block_tree::pieces, so the total has the same bits as LocalReducer::combine.
  const Index wave = detail::sum_wave(detail::resolve_threads(m_threads), rows, cols);
  std::vector<BlockTreeNode> stack;
  std::vector<Matrix> partial;
  for (Index first = 0; first < blocks; first += wave) {
    const Index count = std::min(wave, blocks - first);
    partial.assign(static_cast<std::size_t>(count), Matrix());
    detail::parallel_for(count, m_threads, [&](Index b) {
      partial[static_cast<std::size_t>(b)] = block(first + b);
    });
    for (Index b = 0; b < count; ++b) {
      stack.push_back({0, first + b, std::move(partial[static_cast<std::size_t>(b)])});
      while (stack.size() >= 2) {
        BlockTreeNode& right = stack.back();
        BlockTreeNode& left = stack[stack.size() - 2];
        if (left.level != right.level || left.index % 2 != 0 || right.index != left.index + 1) {
          break;
        }
        left.sum += right.sum;
        left.level += 1;
        left.index /= 2;
        stack.pop_back();
      }
    }
  }
  return block_tree::total(stack, blocks, rows, cols);
}

void ExecutionContext::for_each_block(Index local_rows,
                                      const std::function<void(Index, Index)>& f) const {
  std::vector<Index> begins = reducer().block_starts(local_rows);
  begins.push_back(local_rows);
  detail::parallel_for(static_cast<Index>(begins.size()) - 1, m_threads, [&](Index b) {
    const auto i = static_cast<std::size_t>(b);
    f(begins[i], begins[i + 1] - begins[i]);
  });
}

Matrix ExecutionContext::map_rows(Index local_rows, Index cols, const RowsFn& f) const {
  Matrix out(local_rows, cols);
  // Before the first touch: on a machine whose fresh pages are slow to fault in, 2 MB pages
  // make an n-row output a few hundred faults instead of one per 4 kB.
  detail::advise_huge_pages(out);
  for_each_block(local_rows,
                 [&](Index begin, Index count) { f(begin, count, out.middleRows(begin, count)); });
  return out;
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
    return Matrix::Constant(1, 1, detail::sum_of(column.segment(b, c)));
  })(0, 0);
}

}  // namespace nnlift

namespace nnlift::detail {

std::vector<std::string> gather_strings(const RowReducer& reducer,
                                        const std::vector<std::string>& mine) {
  // The lengths, then every character as a row of codes, both stacked in part order.
  Matrix lengths(static_cast<Index>(mine.size()), 1);
  Index chars = 0;
  for (std::size_t i = 0; i < mine.size(); ++i) {
    lengths(static_cast<Index>(i), 0) = static_cast<double>(mine[i].size());
    chars += static_cast<Index>(mine[i].size());
  }
  Matrix codes(chars, 1);
  Index at = 0;
  for (const std::string& s : mine) {
    for (const char c : s) {
      codes(at++, 0) = static_cast<unsigned char>(c);
    }
  }
  const Matrix all_lengths = reducer.gather_rows(lengths);
  const Matrix all_codes = reducer.gather_rows(codes);
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(all_lengths.rows()));
  at = 0;
  for (Index i = 0; i < all_lengths.rows(); ++i) {
    const auto n = static_cast<Index>(all_lengths(i, 0));
    std::string s(static_cast<std::size_t>(n), ' ');
    for (Index c = 0; c < n; ++c) {
      s[static_cast<std::size_t>(c)] =
          static_cast<char>(static_cast<unsigned char>(all_codes(at + c, 0)));
    }
    at += n;
    out.push_back(std::move(s));
  }
  return out;
}

std::string first_message(const RowReducer& reducer, const std::string& mine) {
  for (std::string& message : gather_strings(reducer, {mine})) {
    if (!message.empty()) {
      return message;
    }
  }
  return "";
}

Vector sum_counts(const RowReducer& reducer, const Vector& mine) {
  return reducer.combine({Matrix(mine)}, mine.size(), 1).col(0);
}

}  // namespace nnlift::detail
