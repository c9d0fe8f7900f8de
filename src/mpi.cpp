// The MPI reducer: block-tree pieces gathered to rank 0, the total broadcast.
// SPDX-License-Identifier: MIT
#include <climits>
#include <cstdint>
#include <string>

#include <nnlift/mpi.hpp>

#include "detail/check.hpp"

namespace nnlift {
namespace {

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

int checked_int(Index value, const char* what) {
  if (value < 0 || value > INT_MAX) {
    detail::fail(std::string("MpiReducer: ") + what + " = " + std::to_string(value) +
                 " does not fit an MPI count");
  }
  return static_cast<int>(value);
}

// One int64 per process, gathered everywhere.
std::vector<std::int64_t> all_counts(MPI_Comm comm, int size, std::int64_t mine) {
  std::vector<std::int64_t> all(static_cast<std::size_t>(size));
  MPI_Allgather(&mine, 1, MPI_INT64_T, all.data(), 1, MPI_INT64_T, comm);
  return all;
}

// Adds the wall time of its scope to a counter.
class Timed {
 public:
  explicit Timed(double& total) : m_total(total), m_start(MPI_Wtime()) {}
  ~Timed() { m_total += MPI_Wtime() - m_start; }
  Timed(const Timed&) = delete;
  Timed& operator=(const Timed&) = delete;

 private:
  double& m_total;
  double m_start;
};

}  // namespace

MpiReducer::MpiReducer(MPI_Comm comm, Index block_rows) : m_comm(comm), m_block_rows(block_rows) {
  detail::require(block_rows >= 1, "MpiReducer", "block_rows", block_rows, ">= 1");
  MPI_Comm_rank(comm, &m_rank);
  MPI_Comm_size(comm, &m_size);
}

Index MpiReducer::first_row(Index local_rows) const {
  const Timed timed(m_seconds);
  const std::vector<std::int64_t> all = all_counts(m_comm, m_size, local_rows);
  Index first = 0;
  for (int r = 0; r < m_rank; ++r) {
    first += all[static_cast<std::size_t>(r)];
  }
  return first;
}

Index MpiReducer::global_rows(Index local_rows) const {
  const Timed timed(m_seconds);
  std::int64_t mine = local_rows, total = 0;
  MPI_Allreduce(&mine, &total, 1, MPI_INT64_T, MPI_SUM, m_comm);
  return total;
}

Matrix MpiReducer::combine(const std::vector<Matrix>& local_partials,
                           Index rows,
                           Index cols) const {
  const Timed timed(m_seconds);
  // This process's blocks are [first, first + count) of the global block sequence.
  const std::vector<std::int64_t> counts =
      all_counts(m_comm, m_size, static_cast<std::int64_t>(local_partials.size()));
  Index first = 0, blocks = 0;
  for (int r = 0; r < m_size; ++r) {
    first += r < m_rank ? counts[static_cast<std::size_t>(r)] : 0;
    blocks += counts[static_cast<std::size_t>(r)];
  }
  const Index size = rows * cols;
  checked_int(size + 2, "partial size");
  // Pieces packed as (level, index, sum...) and gathered to rank 0.
  std::vector<double> packed;
  for (const BlockTreeNode& node : block_tree::pieces(local_partials, first)) {
    packed.push_back(node.level);
    packed.push_back(static_cast<double>(node.index));
    packed.insert(packed.end(), node.sum.data(), node.sum.data() + size);
  }
  const int mine = checked_int(static_cast<Index>(packed.size()), "packed pieces");
  std::vector<int> lengths(static_cast<std::size_t>(m_size)), offsets(lengths.size());
  MPI_Gather(&mine, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, m_comm);
  std::vector<double> all;
  if (m_rank == 0) {
    Index at = 0;
    for (std::size_t r = 0; r < lengths.size(); ++r) {
      offsets[r] = checked_int(at, "gathered pieces");
      at += lengths[r];
    }
    all.resize(static_cast<std::size_t>(at));
  }
  MPI_Gatherv(packed.data(),
              mine,
              MPI_DOUBLE,
              all.data(),
              lengths.data(),
              offsets.data(),
              MPI_DOUBLE,
              0,
              m_comm);
  Matrix total(rows, cols);
  if (m_rank == 0) {
    std::vector<BlockTreeNode> nodes;
    for (std::size_t at = 0; at < all.size(); at += static_cast<std::size_t>(size + 2)) {
      BlockTreeNode node;
      node.level = static_cast<int>(all[at]);
      node.index = static_cast<Index>(all[at + 1]);
      node.sum = Eigen::Map<const Matrix>(all.data() + at + 2, rows, cols);
      nodes.push_back(std::move(node));
    }
    total = block_tree::total(nodes, blocks, rows, cols);
  }
  MPI_Bcast(total.data(), checked_int(size, "total size"), MPI_DOUBLE, 0, m_comm);
  return total;
}

Matrix MpiReducer::gather_rows(const Matrix& local) const {
  const Timed timed(m_seconds);
  const Index cols = local.cols();
  const std::vector<std::int64_t> counts = all_counts(m_comm, m_size, local.rows());
  std::vector<int> lengths(static_cast<std::size_t>(m_size)), offsets(lengths.size());
  Index total = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    offsets[r] = checked_int(total * cols, "gathered entries");
    lengths[r] = checked_int(counts[r] * cols, "gathered entries");
    total += counts[r];
  }
  const RowMajor mine = local;
  RowMajor out(total, cols);
  MPI_Allgatherv(mine.data(),
                 lengths[static_cast<std::size_t>(m_rank)],
                 MPI_DOUBLE,
                 out.data(),
                 lengths.data(),
                 offsets.data(),
                 MPI_DOUBLE,
                 m_comm);
  return out;
}

Matrix MpiReducer::align_rows(const Matrix& local) const {
  const Timed timed(m_seconds);
  const Index cols = local.cols();
  detail::require(cols >= 1, "MpiReducer::align_rows", "local.cols()", cols, ">= 1");
  const std::vector<std::int64_t> counts = all_counts(m_comm, m_size, local.rows());
  // Where every process's rows are now (`from`) and will be (`to`): contiguous, in rank order.
  std::vector<Index> from(static_cast<std::size_t>(m_size) + 1, 0), to(from.size(), 0);
  for (std::size_t r = 0; r < counts.size(); ++r) {
    from[r + 1] = from[r] + counts[r];
  }
  const Index rows = from.back();
  const Index blocks = (rows + m_block_rows - 1) / m_block_rows;
  for (std::size_t r = 0; r <= counts.size(); ++r) {
    const Index first_block = blocks * static_cast<Index>(r) / m_size;
    to[r] = std::min(rows, first_block * m_block_rows);
  }
  // Rows sent to / received from each process: overlaps of the old and new ranges.
  const auto overlap = [](Index a0, Index a1, Index b0, Index b1) {
    return std::max<Index>(0, std::min(a1, b1) - std::max(a0, b0));
  };
  const auto me = static_cast<std::size_t>(m_rank);
  std::vector<int> send(counts.size()), send_at(counts.size()), recv(counts.size()),
      recv_at(counts.size());
  Index sent = 0, received = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    send[r] = checked_int(overlap(from[me], from[me + 1], to[r], to[r + 1]), "rows sent");
    recv[r] = checked_int(overlap(from[r], from[r + 1], to[me], to[me + 1]), "rows received");
    send_at[r] = checked_int(sent, "rows sent");
    recv_at[r] = checked_int(received, "rows received");
    sent += send[r];
    received += recv[r];
  }
  // One row of `cols` doubles is one element, so that counts are rows.
  MPI_Datatype row_type;
  MPI_Type_contiguous(checked_int(cols, "columns"), MPI_DOUBLE, &row_type);
  MPI_Type_commit(&row_type);
  const RowMajor mine = local;
  RowMajor out(received, cols);
  MPI_Alltoallv(mine.data(),
                send.data(),
                send_at.data(),
                row_type,
                out.data(),
                recv.data(),
                recv_at.data(),
                row_type,
                m_comm);
  MPI_Type_free(&row_type);
  return out;
}

}  // namespace nnlift
