// Training on rows read block by block in every pass (data larger than memory): the stages of
// train.cpp over a RowSource, each per-row quantity (standardised rows, residual labels, the rows
// in the subspace, the hidden layer) recomputed from the block it needs instead of stored.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include <nnlift/stream.hpp>

#include "detail/check.hpp"
#include "detail/column_range.hpp"
#include "detail/moment_kernels.hpp"
#include "detail/parallel.hpp"
#include "detail/rng.hpp"
#include "detail/scores.hpp"
#include "detail/standard_rows.hpp"
#include "train/stages.hpp"

namespace nnlift {
namespace {

using detail::absorb;
using detail::StageClock;

}  // namespace

void validate_streamed(const TrainOptions& o) {
  validate(o);
  const auto refuse = [](const std::string& what) {
    throw std::invalid_argument(what + ": not available when training streams its rows");
  };
  if (o.hidden < 1) {
    throw std::invalid_argument(
        "TrainOptions::hidden = auto chooses among candidates on validation rows: not available "
        "when training streams its rows; give the number of units");
  }
  if (o.init != Init::Tensor || o.directions.size() > 0) {
    refuse("TrainOptions::init = random or given directions");
  }
  // Adaptive is the Gaussian score here: its alternative is chosen on validation rows.
  if (o.score != ScoreModel::Gaussian && o.score != ScoreModel::Adaptive) {
    refuse(std::string("TrainOptions::score = ") + to_string(o.score));
  }
  if (o.refine.enabled) {
    refuse("TrainOptions::refine.enabled (L-BFGS)");
  }
  if (o.validation.fraction && *o.validation.fraction > 0) {
    refuse("TrainOptions::validation.fraction > 0");
  }
  if (o.moments.residualize == Residualize::Quadratic) {
    refuse("TrainOptions::moments.residualize = quadratic");
  }
  if (o.bias.method == BiasMethod::Fourier) {
    refuse("TrainOptions::bias.method = fourier");
  }
}

namespace {

// The rows of a source as the stages see them: the chosen columns, checked, and derived
// quantities computed per block.
class StreamedRows {
 public:
  StreamedRows(const RowSource& source,
               const StreamedColumns& columns,
               const ExecutionContext& context)
      : m_source(source), m_columns(columns), m_first(context.first_row(source.rows())) {}

  Index rows() const { return m_source.rows(); }
  std::string name() const { return m_source.name(); }
  Index inputs() const { return static_cast<Index>(m_columns.features.size()); }

  // The inputs X (count×d) and target y of local rows [b, b + c); a value that is not finite
  // is an error naming the source, the row (1-based, over all parts) and the column.
  void load(Index b, Index c, Matrix& X, Vector& y) const {
    thread_local Matrix raw;
    m_source.read(b, c, raw);
    const Index d = inputs();
    X.resize(c, d);
    for (Index j = 0; j < d; ++j) {
      X.col(j) = raw.col(m_columns.features[static_cast<std::size_t>(j)]);
    }
    y = raw.col(m_columns.target);
    if (!m_classes.empty()) {
      for (Index i = 0; i < c; ++i) {
        const auto at = std::lower_bound(m_classes.begin(), m_classes.end(), y(i));
        if (at != m_classes.end() && *at == y(i)) {
          y(i) = m_codes(at - m_classes.begin());
        } else if (std::isfinite(y(i))) {
          std::ostringstream msg;
          msg << m_source.name() << ": row " << m_first + b + i + 1 << ", target '"
              << m_columns.target_name << "': " << y(i) << " is a class not seen in a sample of "
              << "the rows (" << m_classes.size() << " classes there); streamed training takes "
              << "the classes of its sample (nnlift train --stream off for more)";
          throw DataError(msg.str());
        }
      }
    }
    // The first value in row order that is not finite, or (regression) a target too large to
    // square (the output layer sums its squares); one scan, only where a vectorised test found
    // one, as train's refusal of rows in memory.
    const bool regression = m_classes.empty();
    const auto too_large = [regression](double v) {
      return regression && std::abs(v) > detail::kLargestTarget;
    };
    if (!X.allFinite() || !y.allFinite() || (c > 0 && too_large(y.cwiseAbs().maxCoeff()))) {
      for (Index i = 0; i < c; ++i) {
        for (Index j = 0; j <= d; ++j) {
          const double v = j < d ? X(i, j) : y(i);
          const bool finite = std::isfinite(v);
          if (finite && !(j == d && too_large(v))) {
            continue;
          }
          std::ostringstream msg;
          msg << m_source.name() << ": row " << m_first + b + i + 1 << ", ";
          if (!finite) {
            msg << "column '"
                << (j < d ? m_columns.feature_names[static_cast<std::size_t>(j)]
                          : m_columns.target_name)
                << "': " << v << " is not a finite number";
          } else {
            msg << "target '" << m_columns.target_name << "': " << v
                << " is too large for a regression target (over " << detail::kLargestTarget
                << " in magnitude, its square overflows); rescale the target";
          }
          throw DataError(msg.str());
        }
      }
    }
  }

  // From now on the target's classes (ascending) are read as their working labels `codes` (two
  // classes: 0 and 1; more: the projected labels of encode_labels); any other value is an error
  // naming its row.
  void set_classes(std::vector<double> classes, Vector codes) {
    m_classes = std::move(classes);
    m_codes = std::move(codes);
  }
  const Vector& codes() const { return m_codes; }

  // Local rows `picked` (one read each, in parallel): their inputs and targets.
  void read_rows(const std::vector<Index>& picked, int threads, Matrix& X, Vector& y) const {
    const auto m = static_cast<Index>(picked.size());
    X.resize(m, inputs());
    y.resize(m);
    const Index chunk = 256;
    detail::parallel_for((m + chunk - 1) / chunk, threads, [&](Index t) {
      thread_local Matrix Xi;
      thread_local Vector yi;
      for (Index i = t * chunk; i < std::min(m, (t + 1) * chunk); ++i) {
        load(picked[static_cast<std::size_t>(i)], 1, Xi, yi);
        X.row(i) = Xi.row(0);
        y(i) = yi(0);
      }
    });
  }

 private:
  const RowSource& m_source;
  const StreamedColumns& m_columns;
  Index m_first;
  std::vector<double> m_classes;
  Vector m_codes;
};

// The distinct values of a matrix's entries, ascending.
std::vector<double> distinct_values(const Matrix& values) {
  std::vector<double> out(values.data(), values.data() + values.size());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Every part's rows of the strided sample (detail::lsq_sample_rows, at most 200,000 rows),
// gathered: their inputs X and targets y.
void gather_sample(const StreamedRows& data,
                   const ExecutionContext& context,
                   Matrix& X,
                   Vector& y) {
  const Index d = data.inputs();
  data.read_rows(detail::lsq_sample_rows(data.rows(), context), context.num_threads(), X, y);
  Matrix both(X.rows(), d + 1);
  both << X, y;
  const Matrix all = context.reducer().gather_rows(both);
  X = all.leftCols(d);
  y = all.col(d);
}

// A target with two integer values in a sample of 1,000 rows spread over the file is likely a
// class label, which the streamed trainer fits as a number: said, with what to do instead.
void warn_if_two_valued(const StreamedRows& data,
                        Index n,
                        const ExecutionContext& context,
                        TrainResult& result) {
  const Index m = std::min<Index>(n, 1000);
  Matrix X;
  Vector y, local(m);
  for (Index i = 0; i < m; ++i) {
    data.load(i * n / m, 1, X, y);
    local(i) = y(0);
  }
  const std::vector<double> values = distinct_values(context.reducer().gather_rows(local));
  if (values.size() == 2 && values[0] == std::round(values[0]) &&
      values[1] == std::round(values[1])) {
    std::ostringstream msg;
    msg << "the target takes only the values " << values[0] << " and " << values[1]
        << " in a sample of its rows: it is fitted as a number (regression); set the task to "
           "classification (--task classification) to fit two classes";
    result.warnings.push_back(msg.str());
  }
}

void check_columns(const RowSource& source, const StreamedColumns& c) {
  const auto inside = [&](Index j) { return j >= 0 && j < source.cols(); };
  if (c.features.empty() || c.feature_names.size() != c.features.size() || !inside(c.target)) {
    detail::fail(
        "StreamedColumns: give at least one feature, a name for each, and a target "
        "inside the source's " +
        std::to_string(source.cols()) + " columns");
  }
  for (const Index j : c.features) {
    if (!inside(j) || j == c.target) {
      detail::fail("StreamedColumns: feature column " + std::to_string(j) +
                   " is outside the source or is the target");
    }
  }
}

// Stage "standardise" over the rows: the inputs' mean and covariance, and the working labels'
// mean and E[(x − μ) y] for the linear control variate (`labels`), in one pass
// (detail::mean_and_covariance); warnings as for rows in memory.
Standardizer standardise(const StreamedRows& data,
                         const StreamedColumns& columns,
                         const TrainOptions& o,
                         const ExecutionContext& context,
                         detail::LabelMoments& labels,
                         detail::ColumnRange& range,
                         TrainResult& result) {
  const Index n = data.rows(), d = data.inputs();
  // Mean, covariance and the labels' E[y] and E[(x − μ) y] in one pass (each thread's block and
  // its labels), as in memory (detail::fit_standardizer_and_labels).
  thread_local Matrix block_X;
  thread_local Vector block_y;
  Vector mu;
  Matrix cov;
  detail::mean_and_covariance(
      n,
      d,
      [&](Index b, Index c) {
        data.load(b, c, block_X, block_y);
        range.add(block_X);  // the inputs' range, for TrainOptions::clamp_inputs
        return Eigen::Ref<const Matrix>(block_X);
      },
      context,
      mu,
      cov,
      0,
      nullptr,
      [&](Index, Index) { return Eigen::Ref<const Vector>(block_y); },
      &labels);
  if (o.labels.task == Task::Regression) {
    warn_if_two_valued(data, n, context, result);
  }
  const Standardizer st =
      detail::standardizer_from_moments(mu, cov, columns.feature_names, o.inputs);
  detail::report_standardizer(st, columns.feature_names, context.global_rows(n), o.hidden, result);
  return st;
}

// Stage "output layer" (§4.5). Regression: the normal equations of [σ(W1 x + b1), z, 1] (z the
// column-standardised inputs, with the linear term) in one pass, the ridge by GCV as for rows
// in memory. Classes: logistic regression with its cross-validated ridge, as in memory, on the
// strided sample (k + d + 1 weights from up to 200,000 rows; in memory it takes every row).
detail::OutputFit output_layer(const StreamedRows& data,
                               const Standardizer& st,
                               const Matrix& sample_X,
                               const detail::Labels& sample_labels,
                               const TrainOptions& o,
                               const ExecutionContext& context,
                               TwoLayerNetwork& net,
                               detail::LinearOnlyScores* linear_only) {
  const Index n = data.rows(), k = o.hidden;
  const Index lin = o.output.linear_term ? data.inputs() : 0;
  if (o.labels.task == Task::Classification) {
    return detail::fit_output_layer(hidden_layer(net, sample_X),
                                    lin > 0 ? &sample_X : nullptr,
                                    st,
                                    sample_labels,
                                    Task::Classification,
                                    o.output,
                                    context.local(),
                                    net,
                                    linear_only);
  }
  const Index p = k + lin + 1;
  const Matrix normal = context.mean(n, p + 1, p + 1, [&](Index b, Index c) {
    thread_local Matrix X;
    thread_local Vector y;
    data.load(b, c, X, y);
    Matrix F(c, p);
    F.leftCols(k) = hidden_layer(net, X);
    if (lin > 0) {
      F.middleCols(k, lin) = (X.rowwise() - st.mean.transpose()) * st.inv_sd.asDiagonal();
    }
    F.col(p - 1).setOnes();
    Matrix out = Matrix::Zero(p + 1, p + 1);
    out.topLeftCorner(p, p).noalias() = F.transpose() * F;
    out.col(p).head(p).noalias() = F.transpose() * y;
    out(p, p) = y.squaredNorm();
    return out;
  });
  return detail::output_from_normal(normal, k, context.global_rows(n), st, o.output, net);
}

// The training loss, one more pass: MSE, or log-loss (probabilities clipped at 1e-15) and
// accuracy.
void training_scores(const StreamedRows& data,
                     const ExecutionContext& context,
                     TrainResult& result) {
  const TwoLayerNetwork& net = result.network;
  const bool classes = net.task == Task::Classification;
  const Matrix loss = context.mean(data.rows(), 2, 1, [&](Index b, Index c) {
    thread_local Matrix X;
    thread_local Vector y;
    data.load(b, c, X, y);
    if (!classes) {
      Matrix out = Matrix::Zero(2, 1);  // as class_score_sums: [0; loss]
      out(1, 0) = (y - predict(net, X).col(0)).squaredNorm();
      return out;
    }
    // Classes: y holds each row's working label, the code of its class; scored as score() does.
    const Vector& codes = data.codes();
    Vector labels(c);
    for (Index i = 0; i < c; ++i) {
      Index t = 0;
      while (t + 1 < codes.size() && codes(t) != y(i)) {
        ++t;
      }
      labels(i) = net.classes[static_cast<std::size_t>(t)];
    }
    return detail::class_score_sums(net, predict(net, X), labels);
  });
  result.train_accuracy = loss(0, 0);
  result.train_loss = loss(1, 0);
}

// What the stages after the directions read.
struct StreamedFit {
  const StreamedRows& data;
  const Standardizer& st;
  double ybar;
  const Matrix& sample_X;  ///< the strided sample (least-squares biases, class output layer)
  const Vector& sample_y;
  const detail::Labels& sample_labels;
  bool lsq;  ///< least-squares biases
  const TrainOptions& o;
  const ExecutionContext& context;
  detail::LinearOnlyScores* linear_only;  ///< shared by the fits of other directions
};

// Map back, biases, the output layer and the training loss for the directions Ubar (d×k,
// standardised coordinates), into `result`; with a clock, a lap after each stage.
void fit_layers(const StreamedFit& f, const Matrix& Ubar, TrainResult& result, StageClock* clock) {
  const StreamedRows& data = f.data;
  const Standardizer& st = f.st;
  const TrainOptions& o = f.o;
  const Index n = data.rows(), k = Ubar.cols();
  TwoLayerNetwork& net = result.network;
  // Map back (§4.1, §4.4b): the centred labels' first and second score moments in one pass.
  // As in memory, each block's raw rows are standardised as they are read (W folded in).
  const Matrix Uf = detail::fold(st, Ubar);
  const Matrix sums = f.context.mean(n, data.inputs() + k + 1, 1, [&](Index b, Index c) {
    thread_local Matrix X;
    thread_local Vector y;
    data.load(b, c, X, y);
    y.array() -= f.ybar;
    return detail::map_back_raw_block(X, st.mean, y, Uf);
  });
  const detail::Units units = detail::units_from_raw_means(sums, st, Ubar, o.activation);

  // Biases (§4.4): the moment ratio, then (least squares) a fit on a strided subsample of rows.
  const Matrix none;
  const Vector no_rows;
  const detail::StandardRows no_standard(none);
  const detail::Projections no_projections(no_standard, nullptr, Matrix());
  const detail::BiasProblem problem = detail::bias_problem(
      none, no_standard, no_projections, no_rows, no_rows, st, units, o, f.context);
  detail::BiasFit biases = detail::bias_by_ratio(problem);
  result.bias_used = BiasMethod::Ratio;
  if (f.lsq) {
    const Matrix t = detail::centred_times(f.sample_X, st.mean, detail::fold(st, units.Ubar));
    biases = detail::bias_by_lsq_on(problem, biases, t, f.sample_y);
    result.bias_used = BiasMethod::Lsq;
  }
  if (detail::saturates(o.activation)) {
    std::vector<Index> every(static_cast<std::size_t>(f.sample_X.rows()));
    std::iota(every.begin(), every.end(), Index{0});
    detail::soften_steps(
        o.activation,
        detail::row_projections(units.W1, f.sample_X, every, f.context.num_threads()),
        biases);
  }
  absorb(result, biases);
  detail::set_first_layer(units, biases, net);
  if (clock != nullptr) {
    clock->lap("biases");
  }

  const detail::OutputFit output =
      output_layer(data, st, f.sample_X, f.sample_labels, o, f.context, net, f.linear_only);
  result.output_ridge = output.ridge;
  result.output_linear_only = output.linear_only();
  absorb(result, output);
  if (clock != nullptr) {
    clock->lap("output layer");
  }
  if (std::isfinite(output.train_mse)) {
    result.train_loss = output.train_mse;  // regression: from the normal equations, no pass
  } else {
    training_scores(data, f.context, result);
  }
}

// Labels (§8.3): the classes of the sample, and from now on their working labels in every pass,
// as in memory (two classes 0/1; more, the one-hot rows projected on a seeded direction).
detail::Labels class_labels(StreamedRows& data,
                            const StreamedColumns& columns,
                            const Vector& sample_y,
                            const TrainOptions& o,
                            const ExecutionContext& context) {
  Dataset sample;
  sample.y = sample_y;
  sample.target_name = columns.target_name;
  detail::Labels labels;
  try {
    labels = detail::encode_labels(sample, o.labels, o.seed, context.local());
  } catch (const DataError& e) {
    throw DataError(data.name() + ", in a sample of " + std::to_string(sample_y.size()) +
                    " rows: " + e.what());
  }
  data.set_classes(labels.classes, labels.codes);
  return labels;
}

// The subspace (§4.3b.1) with the tensor's first moment, M2 and HOOI's sketch summed in one pass
// over the residualised rows: the same sums as the in-memory trainer's three passes.
detail::Subspace subspace_in_one_pass(Index n,
                                      const Standardizer& st,
                                      const MomentTensor3::BlockSource& residuals,
                                      const TrainOptions& o,
                                      const ExecutionContext& context) {
  const std::uint64_t seed = detail::derive_seed(o.seed, 21);
  const Index d = st.W.cols();
  Matrix U, V;
  sketch_pairs(st.rank(), o.hidden + o.subspace.sketch_extra, seed, U, V);
  const Matrix Uf = detail::fold(st, U), Vf = detail::fold(st, V);
  const Index pairs = U.cols();
  // Each sum chunk by chunk over the block's centred raw rows, as the in-memory passes take it.
  const Matrix S = context.mean(n, d + 2, 1 + (d + 1) + pairs, [&](Index b, Index c) {
    thread_local Matrix X;
    thread_local Vector res;
    residuals(b, c, X, res);
    Matrix first = Matrix::Zero(d, 1), m2 = Matrix::Zero(d, d + 1),
           sketch = Matrix::Zero(d + 2, pairs);
    detail::add_centred_chunks(X, res, st.mean, detail::first_moment_block, first);
    detail::add_centred_chunks(X, res, st.mean, detail::second_moment_block, m2);
    detail::add_centred_chunks(
        X,
        res,
        st.mean,
        [&](const auto& Xb, const auto& rb) {
          return detail::contract_pairs_block(Xb, rb, Uf, Vf);
        },
        sketch);
    Matrix out = Matrix::Zero(d + 2, 1 + (d + 1) + pairs);
    out.col(0).head(d) = first;
    out.block(0, 1, d, d + 1) = m2;
    out.rightCols(pairs) = sketch;
    return out;
  });
  const Vector first = detail::unfold(st, S.col(0).head(d));
  const MomentTensor3 T(n, d, residuals, context, first, &st);
  SubspaceOptions options = o.subspace;
  options.sketch_values =
      detail::pairs_from_means(detail::unfold_pairs(st, S.rightCols(pairs)), first, U, V);
  return detail::subspace_from(
      T, detail::second_moment_from(S.block(0, 1, d, d + 1), st), o.hidden, options, seed);
}

}  // namespace

TrainResult train_streamed(const RowSource& source,
                           const StreamedColumns& columns,
                           const TrainOptions& o,
                           const ExecutionContext& context) {
  validate_streamed(o);
  check_columns(source, columns);
  const detail::ThreadBudget threads(context.num_threads());
  StreamedRows data(source, columns, context);
  const Index n = data.rows(), d = data.inputs(), k = o.hidden;
  detail::require_rank_fits(k, d, "train_streamed", "TrainOptions::hidden");
  const Index rows = context.global_rows(n);
  detail::require_min_rows(rows);
  TrainResult result;
  StageClock clock(result.stages, o.progress);
  TwoLayerNetwork& net = result.network;
  const bool classes = o.labels.task == Task::Classification;
  net.task = o.labels.task;
  net.activation = o.activation;
  net.link = classes ? OutputLink::Logistic : OutputLink::Identity;
  net.inputs = columns.feature_names;
  net.target = columns.target_name;
  // A strided sample of at most 200,000 rows, held by every part: the classes are read from it,
  // and the least-squares biases (regression) and the class output layer are fitted on it.
  Matrix sample_X;
  Vector sample_y;
  const auto take_sample = [&] {
    if (sample_X.rows() == 0) {
      gather_sample(data, context, sample_X, sample_y);
    }
  };
  detail::Labels sample_labels;  // classes: the sample's working labels and one-hot targets
  if (classes) {
    take_sample();
    sample_labels = class_labels(data, columns, sample_y, o, context);
    net.classes = sample_labels.classes;
    net.link = sample_labels.multiclass() ? OutputLink::Softmax : OutputLink::Logistic;
    sample_y = sample_labels.y;
    clock.lap("labels");
  }

  // Standardise (§4.1).
  detail::LabelMoments label_moments;
  detail::ColumnRange range(d);
  const Standardizer st = standardise(data, columns, o, context, label_moments, range, result);
  const double ybar = label_moments.mean;
  clock.lap("standardise");

  // Residualise (§4.2b): the labels less their least-squares fit on [1, x̃] (x̃ is white over
  // these rows, so the fit is ȳ + x̃ᵀ E[x̃ y]), or only centred.
  const bool linear = o.moments.residualize != Residualize::None;
  // The source gives each block's raw rows; the passes standardise them as they read them.
  // Wᵀβ, the fit on x̃ as it applies to raw rows (β = W E[(x − μ) y], from the standardising
  // pass), as in memory.
  const Matrix beta_f =
      linear ? detail::fold(st, detail::unfold(st, label_moments.cross)) : Matrix::Zero(d, 1);
  const MomentTensor3::BlockSource residuals = [&](Index b, Index c, Matrix& X, Vector& res) {
    data.load(b, c, X, res);
    res.array() -= ybar;
    if (linear) {
      res -= detail::centred_times(X, st.mean, beta_f);
    }
  };
  clock.lap("residualise");

  // Subspace (§4.3b.1) and decomposition of the core (§4.3).
  const detail::Subspace subspace = subspace_in_one_pass(n, st, residuals, o, context);
  absorb(result, subspace);
  clock.lap("subspace");
  MomentReport report;
  report.residualize_used = linear ? Residualize::Linear : Residualize::None;
  report.subspace_sweeps = subspace.sweeps;
  report.subspace_gap = subspace.gap;
  const Matrix& Q = subspace.Q;
  const Matrix Qf = detail::fold(st, Q);
  detail::Directions directions = detail::directions_from_blocks(
      n,
      Q,
      [&](Index b, Index c, Matrix& Z, Vector& res) {
        thread_local Matrix X;
        residuals(b, c, X, res);
        Z = detail::centred_times(X, st.mean, Qf);
      },
      report,
      o,
      context);
  detail::replace_degenerate_units(subspace.M2, directions);
  absorb(result, directions);
  result.moments = std::move(directions.report);
  clock.lap("decompose");
  if (directions.Ubar.size() == 0) {
    return result;  // no directions: the status says why, and there is no network
  }

  const bool lsq =
      o.bias.method == BiasMethod::Lsq || (o.bias.method == BiasMethod::Auto && !classes);
  if (lsq) {
    take_sample();
  }
  detail::LinearOnlyScores linear_only;
  const StreamedFit fit{
      data, st, ybar, sample_X, sample_y, sample_labels, lsq, o, context, &linear_only};
  const std::vector<detail::SecondOrderStart> second_order =
      o.moments.weak_units == WeakUnits::Keep
          ? std::vector<detail::SecondOrderStart>()
          : detail::second_order_starts(subspace.M2, directions.Ubar, result.moments);
  // The state before the layers, for the other starts (their own warnings only).
  const std::optional<TrainResult> before =
      second_order.empty() ? std::nullopt : std::optional<TrainResult>(result);
  fit_layers(fit, directions.Ubar, result, &clock);
  if (before) {
    detail::choose_weak_units(o,
                              *detail::best_second_order(second_order,
                                                         *before,
                                                         [&](const Matrix& U, TrainResult& fitted) {
                                                           fit_layers(fit, U, fitted, nullptr);
                                                         }),
                              result);
    clock.lap("second-order units");
  }
  net.metadata_json = detail::metadata(o, result, rows, d, columns.target_name, ybar);
  if (o.clamp_inputs) {
    range.total(context.reducer(), net.input_low, net.input_high);
    detail::widen_to_clamp_bounds(net.input_low, net.input_high);
  }
  return result;
}

}  // namespace nnlift
