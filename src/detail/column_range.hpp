// Each column's smallest and largest value over rows seen block by block, then over every part:
// the training range, from which the bounds a network clamps its inputs to are taken
// (TwoLayerNetwork::input_low, input_high).
// SPDX-License-Identifier: MIT
#pragma once

#include <cmath>
#include <limits>
#include <mutex>

#include <nnlift/execution.hpp>

#include "detail/parallel.hpp"

namespace nnlift::detail {

/// Blocks may be added from any threads in any order: the minimum and maximum are exact, so the
/// range is the same for any order, partition and thread count.
class ColumnRange {
 public:
  explicit ColumnRange(Index d)
      : m_low(Vector::Constant(d, std::numeric_limits<double>::infinity())),
        m_high(Vector::Constant(d, -std::numeric_limits<double>::infinity())) {}

  void add(const Eigen::Ref<const Matrix>& X) {
    if (X.rows() == 0) {
      return;
    }
    // A column at a time: its second and third reads come from cache.
    Vector low(X.cols()), high(X.cols());
    bool finite = true;
    for (Index j = 0; j < X.cols(); ++j) {
      low(j) = X.col(j).minCoeff();
      high(j) = X.col(j).maxCoeff();
      finite = finite && std::isfinite(X.col(j).sum());
    }
    const std::lock_guard<std::mutex> lock(m_mutex);
    m_low = m_low.cwiseMin(low);
    m_high = m_high.cwiseMax(high);
    m_sums_finite = m_sums_finite && finite;
  }

  /// Whether each column's sum over every block added was finite: false where a value is NaN
  /// or infinite (the minimum and maximum are then meaningless), and where finite values' sum
  /// overflowed. A test for an exact scan of the rows to follow, not a verdict.
  bool sums_finite() const { return m_sums_finite; }

  /// The range over every part's rows (collective: gather_rows); `low` and `high` d each.
  void total(const RowReducer& reducer, Vector& low, Vector& high) const {
    Matrix local(2, m_low.size());
    local.row(0) = m_low.transpose();
    local.row(1) = m_high.transpose();
    const Matrix all = reducer.gather_rows(local);
    low = m_low;
    high = m_high;
    for (Index i = 0; i + 1 < all.rows(); i += 2) {
      low = low.cwiseMin(all.row(i).transpose());
      high = high.cwiseMax(all.row(i + 1).transpose());
    }
  }

 private:
  Vector m_low, m_high;
  bool m_sums_finite = true;
  std::mutex m_mutex;
};

/// The bounds a network clamps its inputs to (TrainOptions::clamp_inputs): the training range
/// [low, high] widened by its own width on each side, so that the linear term and the units'
/// slopes still extrapolate near the rows, and a row further out (a data error, or Cook County
/// among the counties of ggplot2's midwest) is held there. Finite (at most the largest double).
inline void widen_to_clamp_bounds(Vector& low, Vector& high) {
  constexpr double kLargest = std::numeric_limits<double>::max();
  for (Index j = 0; j < low.size(); ++j) {
    const double width = high(j) - low(j);
    const double below = low(j) - width, above = high(j) + width;
    low(j) = std::isfinite(below) ? below : -kLargest;
    high(j) = std::isfinite(above) ? above : kLargest;
  }
}

}  // namespace nnlift::detail
