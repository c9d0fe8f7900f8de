// Training on rows that are never held in memory: read block by block in every pass.
// SPDX-License-Identifier: MIT
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include <nnlift/execution.hpp>
#include <nnlift/train.hpp>
#include <nnlift/types.hpp>

namespace nnlift {

/// Rows kept in storage and read a block at a time (NpyRows, a .npy file, is one): what
/// train_streamed reads in each of its passes. read() is called from several threads at once.
class RowSource {
 public:
  virtual ~RowSource() = default;
  /// This part's rows.
  virtual Index rows() const = 0;
  virtual Index cols() const = 0;
  /// Rows [begin, begin + count) into out (resized to count×cols()).
  virtual void read(Index begin, Index count, Matrix& out) const = 0;
  /// Where the rows are, for messages (a file name).
  virtual std::string name() const = 0;
};

/// A source that counts the rows read through it: the passes a streamed training made (the
/// command line reports them), thread-safe as the source it wraps.
class CountingSource final : public RowSource {
 public:
  explicit CountingSource(const RowSource& source) : m_source(source) {}
  Index rows() const override { return m_source.rows(); }
  Index cols() const override { return m_source.cols(); }
  std::string name() const override { return m_source.name(); }
  void read(Index begin, Index count, Matrix& out) const override {
    m_source.read(begin, count, out);
    m_read += count;
  }
  Index rows_read() const { return m_read.load(); }

 private:
  const RowSource& m_source;
  mutable std::atomic<Index> m_read{0};
};

/// The columns of a RowSource that training uses: the inputs in order, and the target.
struct StreamedColumns {
  std::vector<Index> features;
  Index target = -1;
  std::vector<std::string> feature_names;  ///< one per feature
  std::string target_name;
};

/// validate(options), and that train_streamed covers them.
/// \throws std::invalid_argument naming the first option it does not cover.
void validate_streamed(const TrainOptions& options);

/// Trains as train() does, but reads the rows from `source` in every pass instead of holding
/// them: memory is O(B·d + d² + k³) for B-row blocks, and a sample of at most 200,000 rows,
/// whatever the number of rows. 6 passes plus one per HOOI sweep: mean and covariance (about the
/// first block's mean, read once more); the linear control variate; the labels' first moment,
/// M2 and the subspace sketch; the sweeps; the core; the map-back moments; the output layer's
/// normal equations (regression, whose training MSE comes from them) or the training loss
/// (classes); and the sample's rows, read one by one.
///
/// What it covers (the rest is refused before any pass, naming the option): regression and
/// 2 to 100 classes (the classes read from a strided sample of up to 200,000 rows; a class met
/// in a pass but not in the sample is a DataError naming its row); k >= 1 hidden units given (no
/// --hidden auto, which needs candidates and validation rows); the tensor start under the Gaussian
/// score; the linear control variate (residualize auto means linear here) or none; the ratio or
/// least-squares biases (auto: least squares for regression, the ratio for classes; least squares
/// on the sample); the output layer's ridge by GCV over all rows (regression), or the logistic
/// (softmax, for three or more classes) output layer with its cross-validated ridge on the
/// sample (classes); no refinement and no
/// validation split.
/// \throws std::invalid_argument for an option it does not cover or a column outside the source;
///         DataError naming the source, row and column for a value that is not finite, and as
///         train() otherwise.
TrainResult train_streamed(const RowSource& source,
                           const StreamedColumns& columns,
                           const TrainOptions& options,
                           const ExecutionContext& context = ExecutionContext());

}  // namespace nnlift
