// NN-LIFT training: the stages composed (train/stages.hpp; docs/architecture.md).
// SPDX-License-Identifier: MIT
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include <nnlift/evaluate.hpp>

#include "detail/activation_traits.hpp"
#include "detail/check.hpp"
#include "detail/column_range.hpp"
#include "detail/input_map.hpp"
#include "detail/io.hpp"
#include "detail/mixture_json.hpp"
#include "detail/names.hpp"
#include "detail/parallel.hpp"
#include "detail/rng.hpp"
#include "detail/sample.hpp"
#include "detail/scores.hpp"
#include "detail/text.hpp"
#include "train/stages.hpp"

namespace nnlift {
namespace {

using detail::absorb;
using detail::StageClock;

const detail::EnumName<Init> kInitNames[] = {{Init::Tensor, "tensor"}, {Init::Random, "random"}};
const detail::EnumName<WeakUnits> kWeakUnitsNames[] = {
    {WeakUnits::Auto, "auto"}, {WeakUnits::Keep, "keep"}, {WeakUnits::Replace, "replace"}};

// Unit-norm random directions in standardised coordinates (pre-activations of unit variance),
// biases U(−1, 1), small output weights, output bias at the label mean.
void random_init(const Standardizer& st,
                 Index k,
                 Index outputs,
                 double label_mean,
                 std::uint64_t seed,
                 TwoLayerNetwork& net) {
  detail::Rng rng(detail::derive_seed(seed, 31));
  Matrix W1s = rng.normal_matrix(k, st.rank());
  W1s.rowwise().normalize();
  net.W1 = W1s * st.W;
  net.b1.resize(k);
  for (Index j = 0; j < k; ++j) {
    net.b1(j) = rng.uniform(-1.0, 1.0) - net.W1.row(j).dot(st.mean);
  }
  net.W2 = rng.normal_matrix(outputs, k) / std::sqrt(static_cast<double>(k));
  net.b2 = Vector::Constant(outputs, label_mean);
}

// Training loss and accuracy over all parts: MSE (regression) or log-loss.
void training_scores(const TwoLayerNetwork& net,
                     const Matrix& X,
                     const Vector& y,
                     const ExecutionContext& context,
                     TrainResult& result) {
  const Scores s = score(net, X, y, context);
  result.train_loss = net.task == Task::Regression ? s.mse : s.log_loss;
  result.train_accuracy = s.accuracy;
}

// Unit numbers as the summary prints them (1-based).
std::vector<Index> one_based(std::vector<Index> units) {
  for (Index& j : units) {
    ++j;
  }
  return units;
}

// The input mixture of score = gmm, in standardised coordinates x̃ = W(x − μ), and its fit.
nlohmann::json mixture_metadata(const GaussianMixture& g, const MixtureCandidate& fit) {
  nlohmann::json j = detail::mixture_json(g);
  j["coordinates"] = "standardised";
  j["covariance"] = to_string(fit.covariance);
  j["log_likelihood"] = fit.log_likelihood;
  j["bic"] = fit.bic;
  j["iterations"] = fit.iterations;
  return j;
}

}  // namespace

std::string detail::metadata(const TrainOptions& o,
                             const TrainResult& r,
                             Index rows,
                             Index inputs,
                             const std::string& target,
                             double label_mean) {
  const MomentReport& m = r.moments;
  nlohmann::json meta;
  meta["trainer"] = "nnlift train (NN-LIFT, method of moments)";
  meta["seed"] = o.seed;
  meta["options"] = {{"hidden", o.hidden},
                     {"activation", to_string(o.activation)},
                     {"init", to_string(o.init)},
                     {"residualize", to_string(m.residualize_used)},
                     {"cubic_in_subspace", m.cubic_in_subspace},
                     {"method", to_string(o.decompose.method)},
                     {"route", to_string(m.route)},
                     {"bias", to_string(r.bias_used)},
                     {"ridge", r.output_ridge},
                     {"linear_term", r.network.C.size() > 0},
                     {"linear_only", r.output_linear_only},
                     {"refine", o.refine.enabled},
                     {"weak_units", to_string(o.moments.weak_units)},
                     {"score", to_string(o.score)}};
  if (r.mixture.components() > 0) {
    meta["score_mixture"] = mixture_metadata(r.mixture, r.mixture_fit);
  }
  meta["data"] = {
      {"rows", rows}, {"inputs", inputs}, {"target", target}, {"target_mean", label_mean}};
  meta["diagnostics"] = {
      {"lambda", std::vector<double>(m.lambda.data(), m.lambda.data() + m.lambda.size())},
      {"refine_iterations", r.refine.iterations},
      {"refine_random_start", r.refine.random_start},
      {"refine_all_rows_iterates", r.refine.all_rows_iterates},
      {"noise_level", m.noise_level},
      {"subspace_sweeps", m.subspace_sweeps},
      {"subspace_sample_rows", m.subspace_sample_rows},
      {"subspace_sample_sweeps", m.subspace_sample_sweeps},
      {"decomposition_residual", m.decomposition_residual},
      {"weak_units", one_based(m.weak_units)},
      {"second_order_candidates", one_based(m.second_order_candidates)},
      {"second_order_units", one_based(m.second_order_units)},
      {"degenerate_units", one_based(m.degenerate_units)},
      {"extra_units", r.extra_units},
      {"train_loss", r.train_loss}};
  return meta.dump();
}

void detail::require_min_rows(Index rows) {
  if (rows < kMinTrainRows) {
    throw DataError("train: " + std::to_string(rows) + " rows are too few to train on (at least " +
                    std::to_string(kMinTrainRows) + " are needed)");
  }
}

namespace {

// A validation split's fit part must be trainable; said of the whole file (`all_rows`) and the
// split (`split`: "the validation share 0.2"), since the fit part's own count alone ("3 rows are
// too few") names a number of rows the file does not have. `remedy`: the option that avoids it.
void require_fit_rows(Index fit_rows,
                      Index all_rows,
                      const std::string& split,
                      const std::string& remedy) {
  if (fit_rows < detail::kMinTrainRows) {
    throw DataError("train: " + split + " of " + std::to_string(all_rows) + " rows leaves " +
                    std::to_string(fit_rows) + " to fit, too few (at least " +
                    std::to_string(detail::kMinTrainRows) + " are needed); use more rows or " +
                    remedy);
  }
}

}  // namespace

void detail::report_standardizer(const Standardizer& st,
                                 const std::vector<std::string>& feature_names,
                                 Index rows,
                                 Index k,
                                 TrainResult& result) {
  const Index d = st.mean.size();
  const auto column_names = [&](const std::vector<Index>& columns) {
    std::vector<std::string> names;
    for (const Index j : columns) {
      names.push_back(static_cast<std::size_t>(j) < feature_names.size()
                          ? feature_names[static_cast<std::size_t>(j)]
                          : std::to_string(j + 1));
    }
    return detail::name_list(names);
  };
  if (!st.constant_columns.empty()) {
    result.warnings.push_back("constant input column(s) " + column_names(st.constant_columns) +
                              " carry nothing and are ignored");
  }
  if (!st.collinear_columns.empty()) {
    // With no more rows than inputs, the rows span at most rows − 1 centred directions.
    const std::string why = rows <= d ? " (the " + std::to_string(rows) + " rows span at most " +
                                            std::to_string(rows - 1) + " directions of the " +
                                            std::to_string(d) + " inputs)"
                                      : "";
    result.warnings.push_back(
        std::to_string(d - st.rank() - static_cast<Index>(st.constant_columns.size()) -
                       st.one_hot_directions) +
        " direction(s) of the inputs are (nearly) collinear" + why + ", among column(s) " +
        column_names(st.collinear_columns) + "; they are dropped (" + std::to_string(st.rank()) +
        " independent directions remain)");
  }
  if (k > st.rank()) {
    throw DataError("train: " + std::to_string(k) + " hidden units exceed the " +
                    std::to_string(st.rank()) +
                    " independent directions of the inputs; use --hidden " +
                    std::to_string(st.rank()) + " or fewer");
  }
}

namespace {

// Stage "standardise": the whitening map, with a warning for each kind of column it drops, and
// the number of extra units (hidden units beyond the inputs' independent directions).
// \throws DataError when given directions outnumber the independent directions.
Standardizer standardise_stage(const Dataset& data,
                               const Vector& y,
                               const TrainOptions& o,
                               const ExecutionContext& context,
                               detail::LabelMoments& labels,
                               TrainResult& result) {
  // The working labels' E[y] and E[(x − μ) y] come from the same pass, for the linear control
  // variate (residualize_labels).
  const Standardizer st = detail::fit_standardizer_and_labels(
      data.X, &y, data.feature_names, context, o.inputs, &labels);
  // Given directions fix k <= rank; otherwise units beyond the rank are extra units.
  const Index k_fixed = o.directions.size() > 0 ? o.hidden : std::min(o.hidden, st.rank());
  detail::report_standardizer(
      st, data.feature_names, context.global_rows(data.X.rows()), k_fixed, result);
  if (o.init == Init::Tensor && o.directions.size() == 0) {
    result.extra_units = o.hidden - k_fixed;
  }
  return st;
}

// Stage "mixture" (score = gmm, for a tensor start): the input mixture fitted to the
// standardised inputs, reported in the result, and its score on the rows; else null.
std::unique_ptr<MixtureScore> mixture_stage(const Matrix& Xs,
                                            const TrainOptions& o,
                                            const ExecutionContext& context,
                                            TrainResult& result) {
  if (o.score != ScoreModel::Mixture || o.init != Init::Tensor || o.directions.size() > 0) {
    return nullptr;
  }
  MixtureOptions mo = o.mixture;
  mo.seed = detail::derive_seed(o.seed, 51);
  const MixtureFit fit = fit_gaussian_mixture(Xs, context, mo);
  result.mixture = fit.mixture;
  result.mixture_fit = fit.chosen;
  return std::make_unique<MixtureScore>(Xs, fit.mixture, context);
}

// What the stages after the directions read.
struct LayerInputs {
  const Dataset& data;
  const detail::StandardRows& Xs;
  const detail::Labels& labels;
  double ybar;
  const MixtureScore* mixture;
  const Standardizer& st;
  const TrainOptions& o;
  const ExecutionContext& context;
  detail::LinearOnlyScores* linear_only;  ///< shared by the fits of other directions
  const detail::ExtraUnits& extra;        ///< appended to each start's units
  const detail::RowsInBasis* basis;       ///< the rows in the directions' subspace, or null
};

// Map back, then biases (§4.4) and the output layer (§4.5), for the directions Ubar (d×k,
// standardised coordinates) and the extra units after them: the network's layers and the
// stages' reports in `result`; with a clock, a lap after each stage. Returns whether the output
// layer gave the training loss (regression's, from its normal equations) in result.train_loss.
bool fit_layers(const LayerInputs& in, const Matrix& Ubar, TrainResult& result, StageClock* clock) {
  const Matrix& X = in.data.X;
  const Vector& y = in.labels.y;
  const TrainOptions& o = in.o;
  TwoLayerNetwork& net = result.network;
  const Vector yc = (y.array() - in.ybar).matrix();
  // The rows' projections on the directions come from the rows in the subspace where the
  // directions lie in it (detail::Projections): then no stage below reads X but the output
  // layer's linear term.
  detail::Units units = detail::map_back(in.Xs,
                                         in.mixture,
                                         yc,
                                         in.st,
                                         Ubar,
                                         detail::Projections(in.Xs, in.basis, Ubar),
                                         o.activation,
                                         in.context);
  if (o.directions.size() > 0) {
    detail::keep_row_norms(o.directions, units);
  }
  detail::append_extra_units(in.extra, in.st, units);
  const detail::Projections T(in.Xs, in.basis, units.Ubar);
  const detail::BiasProblem problem =
      detail::bias_problem(X, in.Xs, T, y, yc, in.st, units, o, in.context);
  const detail::BiasFit biases = detail::fit_biases(problem, &result.bias_used);
  absorb(result, biases);
  detail::set_first_layer(units, biases, net);
  if (clock != nullptr) {
    clock->lap("biases");
  }
  const Matrix H = detail::hidden_layer_of(X, T, units, biases, in.st, net, in.context);
  const detail::OutputFit output = detail::fit_output_layer(H,
                                                            o.output.linear_term ? &X : nullptr,
                                                            in.st,
                                                            in.labels,
                                                            o.labels.task,
                                                            o.output,
                                                            in.context,
                                                            net,
                                                            in.linear_only,
                                                            true);
  result.output_ridge = output.ridge;
  result.output_linear_only = output.linear_only();
  absorb(result, output);
  if (clock != nullptr) {
    clock->lap("output layer");
  }
  if (std::isfinite(output.train_mse)) {
    result.train_loss = output.train_mse;  // no pass over the rows
    return true;
  }
  return false;
}

// The standard errors by which the random start's refinement must beat the moment start's: the
// moment start is the method's, and a random start wins one standard error by chance (at 1, with
// no minimum of rows, tools/bench_realdata's breast_cancer fell from 0.972 to 0.960 and diabetes
// from 0.417 to 0.395; at 2, breast_cancer was back at 0.972) ...
constexpr double kRandomStartMargin = 2.0;
// ... and only with this many validation rows: below, the rows that chose the random run's
// stopping point and weight decay also judge it (diabetes, 55-62 validation rows, stayed at 0.395
// with the margin of 2; split 0 gave a test R^2 of 0.313 with the random start kept).
constexpr Index kRandomStartMinRows = 200;
// The same in cross-validation, where every row is held out once: all the rows.
constexpr double kRandomStartMinFoldedRows = 40;

// The validation share when something is chosen and ValidationOptions::fraction is unset.
constexpr double kChoiceShare = 0.2;

// The refinement's random start: `net` with seeded random weights and no linear term (plain
// backprop, as cross-validation's random start). With the term at zero beside them, the tool's
// L-BFGS runs on the 30 sets of tools/bench_smalldata with 1,000 rows or more scored 0.0013
// lower on average (modeldata's mortality 0.818 against 0.800, plm's Males 0.276 against 0.260,
// mlbench's Satellite 0.872 against 0.864; ks's cardio 0.899 against 0.908; session 29).
TwoLayerNetwork random_start(TwoLayerNetwork net,
                             const Standardizer& st,
                             const TrainOptions& o,
                             double ybar) {
  random_init(st,
              net.num_hidden(),
              net.num_outputs(),
              o.labels.task == Task::Regression ? ybar : 0.0,
              detail::derive_seed(o.seed, 71),
              net);
  net.C.resize(0, 0);
  return net;
}

// RefineOptions::random_start: whether the refinement also runs from a seeded random start (no
// linear term), to be kept when it beats the refined moment start on the validation rows
// by kRandomStartMargin standard errors. Tried for a tensor start with kRandomStartMinRows
// validation rows or more, and only where the moments vouch for fewer than all units (weak
// units, extra units): with every unit above the noise level the moment start is in the right
// basin.
bool tries_random_start(const detail::RefineData& rows_seen,
                        const TrainOptions& o,
                        const TrainResult& result) {
  return o.refine.random_start && rows_seen.Xv != nullptr && o.init == Init::Tensor &&
         o.directions.size() == 0 &&
         (!result.moments.weak_units.empty() || result.extra_units > 0) &&
         rows_seen.valid_context->global_rows(rows_seen.Xv->rows()) >= kRandomStartMinRows;
}

// The random start's refined network `net` (its report `report`) replaces `result`'s when it
// beats it on the validation rows by kRandomStartMargin standard errors.
void keep_random_start(const detail::RefineData& rows_seen,
                       const Standardizer& st,
                       TwoLayerNetwork net,
                       RefineReport report,
                       TrainResult& result) {
  result.refine.random_tried = true;
  if (!report.start_kept && !report.diverged &&
      detail::beats_on_validation(result.network, net, rows_seen, st, kRandomStartMargin)) {
    report.random_start = true;
    report.random_tried = true;
    report.loss_before = result.refine.loss_before;
    report.validation_before = result.refine.validation_before;
    result.refine = report;
    result.network = std::move(net);  // a copy of result's network with new weights
  }
}

ValidationReport validation_scores(const TwoLayerNetwork& net,
                                   const Dataset& valid,
                                   const ExecutionContext& context) {
  ValidationReport v;
  v.rows = context.global_rows(valid.X.rows());
  const Scores s = score(net, valid.X, valid.y, context);
  v.mse = s.mse;
  v.r2 = s.r2;
  v.accuracy = s.accuracy;
  v.log_loss = s.log_loss;
  return v;
}

// Each of this part's rows under the network: [loss, 1 if classified right]; the loss is the
// squared error (regression) or the negative log-likelihood of its class (probabilities clipped
// at 1e-15, as in `score`).
Matrix held_out_rows(const TwoLayerNetwork& net, const Dataset& valid) {
  const Index n = valid.X.rows();
  Matrix rows = Matrix::Zero(n, 2);
  if (n == 0) {
    return rows;
  }
  const Matrix p = predict(net, valid.X);
  for (Index i = 0; i < n; ++i) {
    if (net.link == OutputLink::Identity) {
      rows(i, 0) = (p(i, 0) - valid.y(i)) * (p(i, 0) - valid.y(i));
    } else {
      const Matrix sums = detail::class_score_sums(net, p.row(i), valid.y.segment(i, 1));
      rows(i, 0) = sums(1, 0);
      rows(i, 1) = sums(0, 0);
    }
  }
  return rows;
}

// Validation rows and the context their passes run in.
struct HeldOut {
  const Dataset& data;
  const ExecutionContext& context;
  // Cross-validation: the refinement records its curves here at these weight decays instead
  // of refining (the network stays the moment model).
  detail::RefineCurves* curves = nullptr;
  std::vector<double> decays{};
};

// Stage "refine": `result`'s network refined (and the weak units' alternative, the lower
// validation loss kept), then, where the moments do not vouch for every unit, from a random start.
void refine_stage(const Matrix& Xs,
                  const Matrix& X,
                  const detail::Labels& labels,
                  const Standardizer& st,
                  const HeldOut* validation,
                  const TrainOptions& o,
                  double ybar,
                  const ExecutionContext& context,
                  std::optional<TrainResult> alternative,
                  int stop_after,
                  TrainResult& result) {
  const Matrix targets = labels.multiclass() ? labels.onehot : Matrix(labels.y);
  const std::function<void(double)> refine_progress = [&](double fraction) {
    if (o.progress) {
      o.progress("refine (L-BFGS)", fraction);
    }
  };
  detail::RefineData rows_seen{Xs, targets};
  rows_seen.decay_to_start = o.init == Init::Tensor;
  rows_seen.stop_after = stop_after;
  rows_seen.inputs = &X;  // the linear term along dropped input directions (RefineData::inputs)
  Matrix Xv, Tv;
  if (validation != nullptr) {
    Xv = standardize(st, validation->data.X, validation->context);
    Tv = detail::encode_targets(validation->data.y, labels);
    rows_seen.Xv = &Xv;
    rows_seen.Tv = &Tv;
    rows_seen.valid_inputs = &validation->data.X;
    rows_seen.valid_context = &validation->context;
    if (validation->curves != nullptr) {
      *validation->curves = detail::refine_curves(
          rows_seen, st, o.refine, validation->decays, context, result.network);
      return;
    }
  }
  const auto refine = [&](TrainResult& r, const std::function<void(double)>& progress) {
    r.refine = detail::refine_network(rows_seen, st, o.refine, context, r.network, progress);
    if (r.refine.diverged) {
      r.warnings.push_back("refinement: " + r.refine.stop_reason);
    }
  };
  // The runs from the moment start, the weak units' alternative and the random start are
  // independent: they may run at the same time (run_independent), and are compared after.
  // The starts, kept as the continuation's anchors (RefineOptions::all_rows).
  const TwoLayerNetwork moment_start = result.network;
  const std::optional<TwoLayerNetwork> other_start =
      alternative ? std::optional<TwoLayerNetwork>(alternative->network) : std::nullopt;
  const bool random = tries_random_start(rows_seen, o, result);
  detail::RefineData from_zero = rows_seen;
  from_zero.decay_to_start = false;
  TwoLayerNetwork random_net = random ? random_start(result.network, st, o, ybar) : result.network;
  // Refined without a linear term, the random start's network then gets a zero one in the moment
  // network's shape, to be compared with it and to replace it.
  const Index linear_outputs = result.network.C.rows(), linear_inputs = result.network.C.cols();
  RefineReport random_report;
  using Progress = std::function<void(double)>;
  std::vector<std::function<void(const Progress&)>> runs{
      [&](const Progress& p) { refine(result, p); }};
  if (alternative) {
    runs.emplace_back([&](const Progress& p) { refine(*alternative, p); });
  }
  if (random) {
    runs.emplace_back([&](const Progress& p) {
      random_report = detail::refine_network(from_zero, st, o.refine, context, random_net, p);
      random_net.C = Matrix::Zero(linear_outputs, linear_inputs);
    });
  }
  const Progress silent;
  detail::run_independent(static_cast<Index>(runs.size()),
                          context,
                          rows_seen.valid_context,
                          [&](Index i, bool reports) {
                            runs[static_cast<std::size_t>(i)](reports ? refine_progress : silent);
                          });
  const TwoLayerNetwork* anchor = &moment_start;
  if (alternative && alternative->refine.validation_after < result.refine.validation_after) {
    std::vector<StageTime> stages = std::move(result.stages);
    result = std::move(*alternative);
    result.stages = std::move(stages);
    anchor = &*other_start;
  }
  if (random) {
    keep_random_start(rows_seen, st, std::move(random_net), std::move(random_report), result);
  }
  if (validation != nullptr) {
    // The validation rows' scores are the early-stopped network's, taken before they are spent.
    result.validation = validation_scores(result.network, validation->data, validation->context);
    if (o.refine.all_rows && !result.refine.start_kept && !result.refine.diverged) {
      const detail::Continuation how{result.refine.weight_decay,
                                     result.refine.random_start ? nullptr : anchor,
                                     std::max(1, result.refine.best_iterate / 2)};
      detail::continue_on_all_rows(
          rows_seen, st, o.refine, how, context, result.network, result.refine);
    }
  }
}

// The moment models of one training's cross-validation folds, kept for the fits of the same
// candidate on the same fold that follow: the linear term's choice, the refinement's curves, the
// paired comparisons (fold_row_losses) and the random start's each train the same fold's moment
// model, and on few rows the output layer's cross-validated ridge is most of its cost (on dhfr's
// 243 rows, `--refine lbfgs` made 610 Newton fits of the logistic output layer, and 305 with
// the memo). An entry is the pipeline's state before the refinement, so a fold's refined and
// unrefined runs start from the same bits.
class PipelineMemo {
 public:
  // What identifies a fold's moment model within one training: the fold (its index, the fold
  // count and its local fit rows) and the candidate's options that differ between the calls
  // (everything else is the training's own options, the same in every call).
  struct Key {
    int fold = 0, folds = 0;
    std::vector<Index> rows;
    Index hidden = 0;
    ScoreModel score = ScoreModel::Gaussian;
    Init init = Init::Tensor;
    bool hidden_units = true, linear_term = true;
    bool operator==(const Key& other) const {
      return fold == other.fold && folds == other.folds && hidden == other.hidden &&
             score == other.score && init == other.init && hidden_units == other.hidden_units &&
             linear_term == other.linear_term && rows == other.rows;
    }
  };
  struct Entry {
    Key key;
    TrainResult result;                // after the output layer and the weak units' candidate
    std::optional<TrainResult> other;  // that candidate's network, not chosen between yet
    bool scored = false;               // result's training scores are its network's
    // The linear term alone's cross-validated scores on the fold (classes), which the linear
    // candidate (OutputOptions::hidden_units off) of the same units and fold takes as its own.
    detail::LinearOnlyScores linear_only;
  };
  // The entry for `key`, copied, or nothing. Every part of a distributed run makes the same calls
  // with the same keys (the fold is part of the key), so all find an entry or none do.
  std::optional<Entry> find(const Key& key) const {
    const std::lock_guard<std::mutex> lock(m_mutex);
    for (const Entry& e : m_entries) {
      if (e.key == key) {
        return e;
      }
    }
    return std::nullopt;
  }
  void add(Entry entry) {
    const std::lock_guard<std::mutex> lock(m_mutex);
    m_entries.push_back(std::move(entry));
  }

 private:
  mutable std::mutex m_mutex;
  std::vector<Entry> m_entries;
};

// The stages from the directions to the output layer (§4.2-§4.5; or the random start), and the
// weak units' second candidate in `other`, not chosen between yet; `scored`: result's training
// scores are its network's. False: there are no directions (the status says why).
bool moment_stages(const Dataset& data,
                   const detail::StandardRows& standard,
                   const Matrix& Xs,
                   const detail::Labels& labels,
                   const detail::LabelMoments& label_moments,
                   double ybar,
                   const Standardizer& st,
                   const TrainOptions& o,
                   const ExecutionContext& context,
                   StageClock& clock,
                   detail::LinearOnlyScores& linear_only,
                   std::optional<TrainResult>& other,
                   bool& scored,
                   TrainResult& result) {
  const Matrix& X = data.X;
  const Index d = X.cols(), k = o.hidden;
  const Index rows = context.global_rows(X.rows());
  TwoLayerNetwork& net = result.network;
  // The mixture score (score = gmm): a mixture fitted to the standardised inputs.
  const std::unique_ptr<MixtureScore> mixture = mixture_stage(Xs, o, context, result);
  if (mixture) {
    clock.lap("mixture (EM)");
  }
  if (o.init == Init::Random) {
    const Index outputs = labels.multiclass() ? labels.onehot.cols() : 1;
    random_init(st, k, outputs, o.labels.task == Task::Regression ? ybar : 0.0, o.seed, net);
    if (o.output.linear_term) {
      net.C = Matrix::Zero(outputs, d);  // as the refinement's random start (random_start)
    }
    clock.lap("random init");
    return true;
  }
  Matrix Ubar;                // d×k unit directions in standardised coordinates
  detail::RowsInBasis basis;  // the rows in their subspace
  std::vector<detail::SecondOrderStart> second_order;  // some units' directions from M2
  if (o.directions.size() > 0) {
    // Given directions a_j (original coordinates): ⟨a, x⟩ = ⟨Σ̂^{1/2} a, x̃⟩ + const.
    Ubar = (st.W_inverse.transpose() * o.directions.transpose()).colwise().normalized();
    clock.lap("given directions");
  } else {
    // The moments give at most one unit per independent direction; the rest are extra units.
    TrainOptions om = o;
    om.hidden = k - result.extra_units;
    const detail::Residuals residuals =
        detail::residualize_labels(standard, labels.y, st, label_moments, o.moments, context);
    clock.lap("residualise");
    detail::Subspace subspace =
        detail::find_subspace(standard,
                              mixture.get(),
                              residuals,
                              om.hidden,
                              o.subspace,
                              detail::core_quadratic(residuals, o.moments, rows, om.hidden),
                              o.moments.subspace_sample_rows,
                              detail::derive_seed(o.seed, 21),
                              context);
    clock.lap("subspace");
    absorb(result, subspace);
    detail::Directions directions =
        detail::decompose_core(standard, mixture.get(), residuals, subspace, om, context);
    if (subspace.sample_rows > 0 && detail::second_moment_used(directions.report, o.moments)) {
      // The sample's M2 found the start; units that take their directions from it take them
      // from all rows'.
      subspace.M2 = standard.second_moment(residuals.r_low, context);
    }
    detail::replace_degenerate_units(subspace.M2, directions);
    clock.lap("decompose");
    absorb(result, directions);
    if (o.moments.weak_units != WeakUnits::Keep) {
      second_order = detail::second_order_starts(subspace.M2, directions.Ubar, directions.report);
    }
    result.moments = std::move(directions.report);
    if (directions.Ubar.size() == 0) {
      return false;
    }
    Ubar = std::move(directions.Ubar);
    basis = std::move(directions.basis);
  }

  const detail::ExtraUnits extra =
      detail::extra_units(st.rank(), result.extra_units, detail::derive_seed(o.seed, 61));
  const LayerInputs in{
      data, standard, labels, ybar, mixture.get(), st, o, context, &linear_only, extra, &basis};
  // The state before the layers, for the second candidate (its own warnings, not these).
  const std::optional<TrainResult> before =
      second_order.empty() ? std::nullopt : std::optional<TrainResult>(result);
  scored = fit_layers(in, Ubar, result, &clock);
  if (before) {
    other = *detail::best_second_order(second_order, *before, [&](const Matrix& U, TrainResult& r) {
      if (!fit_layers(in, U, r, nullptr)) {
        training_scores(r.network, X, data.y, context, r);
      }
    });
    if (!scored) {
      training_scores(net, X, data.y, context, result);
    }
    scored = true;
  }
  return true;
}

// A fold's place in a PipelineMemo: run_pipeline on that fold's fit rows reads and fills it.
struct MemoSlot {
  PipelineMemo* memo = nullptr;
  int fold = 0, folds = 0;
  const std::vector<Index>* rows = nullptr;
  PipelineMemo::Key key(const TrainOptions& o) const {
    return {
        fold, folds, *rows, o.hidden, o.score, o.init, o.output.hidden_units, o.output.linear_term};
  }
};

// The stages on `data`; with `validation`, the refinement stops early on those rows (or records
// its curves there, HeldOut::curves); stop_after > 0: the refinement ends at that iterate.
TrainResult run_pipeline(const Dataset& data,
                         const TrainOptions& o,
                         const ExecutionContext& context,
                         const HeldOut* validation,
                         int stop_after = 0,
                         const MemoSlot* slot = nullptr) {
  const Matrix& X = data.X;
  const Index n = X.rows(), d = X.cols(), k = o.hidden;
  if (k > max_hidden_units(d)) {
    detail::fail("TrainOptions::hidden = " + std::to_string(k) + " exceeds max(d, " +
                 std::to_string(kMaxHiddenUnits) + ") = " + std::to_string(max_hidden_units(d)) +
                 ": units beyond the inputs' directions are extra units, at most " +
                 std::to_string(kMaxHiddenUnits) + " units in all");
  }
  if (o.directions.size() > 0 && (o.directions.rows() != k || o.directions.cols() != d)) {
    detail::fail("TrainOptions::directions is " + std::to_string(o.directions.rows()) + "x" +
                 std::to_string(o.directions.cols()) +
                 "; expected hidden x inputs = " + std::to_string(k) + "x" + std::to_string(d));
  }
  if (data.y.size() != n) {
    throw DataError("train: the data set has no target column");
  }
  const Index rows = context.global_rows(n);
  // More inputs than rows is allowed (as in ridge regression): whitening keeps the at most
  // rows − 1 directions the rows span and says which columns it dropped; the output layer's
  // ridge handles the rest.
  detail::require_min_rows(rows);
  TrainResult result;
  StageClock clock(result.stages, o.progress);
  TwoLayerNetwork& net = result.network;
  std::optional<TrainResult> alternative;  // the other weak units' network, refined too
  bool scored = false;                     // result's training scores are those of its network
  net.task = o.labels.task;
  net.activation = o.activation;
  net.inputs = data.feature_names;
  net.target = data.target_name;

  // Labels: classes become 0/1 or projected labels; the output targets follow.
  const detail::Labels labels = detail::encode_labels(data, o.labels, o.seed, context);
  absorb(result, labels);
  net.link = o.labels.task == Task::Regression ? OutputLink::Identity
             : labels.multiclass()             ? OutputLink::Softmax
                                               : OutputLink::Logistic;
  net.classes = labels.classes;
  const Vector& y = labels.y;
  const double ybar = context.mean_of(y);
  if (o.labels.task == Task::Regression &&
      context.mean_of((y.array() - ybar).abs().matrix()) <= 1e-14 * std::abs(ybar)) {
    std::ostringstream msg;
    msg << "the target '" << data.target_name << "' is constant (" << ybar
        << " in every row): there is nothing to learn, and the model predicts that value";
    result.warnings.push_back(msg.str());
  }

  // Standardise (§4.1).
  detail::LabelMoments label_moments;
  const Standardizer st = standardise_stage(data, y, o, context, label_moments, result);
  // The standardised rows are stored only for the stages that need them whole: the mixture
  // score's EM, the quadratic control variate in all inputs, the refinement. Elsewhere every pass
  // standardises the raw rows as it reads them (detail::StandardRows).
  const bool tensor = o.init == Init::Tensor && o.directions.size() == 0;
  // The moment stages read the rows the same way with the refinement and without (the refinement
  // starts from the moment model the same options give without it, bit for bit).
  const bool moments_store =
      tensor &&
      (o.score == ScoreModel::Mixture ||
       resolve_residualize(o.moments.residualize, rows, st.rank()) == Residualize::Quadratic);
  const Matrix Xs = o.refine.enabled || moments_store ? standardize(st, X, context) : Matrix();
  const detail::StandardRows standard =
      moments_store ? detail::StandardRows(Xs) : detail::StandardRows(X, st);
  clock.lap("standardise");

  std::optional<TrainResult> other;  // the weak units' second candidate, not chosen between yet
  const std::optional<PipelineMemo::Key> key =
      slot != nullptr ? std::optional<PipelineMemo::Key>(slot->key(o)) : std::nullopt;
  std::optional<PipelineMemo::Entry> kept = key ? slot->memo->find(*key) : std::nullopt;
  if (kept) {
    result = std::move(kept->result);  // the same stages, already run on these rows
    other = std::move(kept->other);
    scored = kept->scored;
  } else {
    detail::LinearOnlyScores linear_only;
    if (key && !key->hidden_units) {
      // The linear term alone, as the candidate with the units fitted it on this fold: the
      // same design columns (the units' are zeros), rows and labels, so the same bits.
      PipelineMemo::Key with_units = *key;
      with_units.hidden_units = true;
      if (const std::optional<PipelineMemo::Entry> network = slot->memo->find(with_units)) {
        linear_only = network->linear_only;
      }
    }
    if (!moment_stages(data,
                       standard,
                       Xs,
                       labels,
                       label_moments,
                       ybar,
                       st,
                       o,
                       context,
                       clock,
                       linear_only,
                       other,
                       scored,
                       result)) {
      return result;  // no directions: the status says why, and there is no network
    }
    if (key) {
      slot->memo->add({*key, result, other, scored, std::move(linear_only)});
    }
  }
  if (other) {
    // Units from M2 (--weak-units; stages.hpp). With weak units, the refinement and validation
    // rows, auto refines both: the better start need not refine to the better network.
    if (o.refine.enabled && validation != nullptr && validation->curves == nullptr &&
        o.moments.weak_units == WeakUnits::Auto && !result.moments.weak_units.empty()) {
      alternative = std::move(other);
    } else {
      detail::choose_weak_units(o, std::move(*other), result);
    }
    clock.lap("second-order units");
  }

  if (o.refine.enabled) {
    refine_stage(Xs,
                 X,
                 labels,
                 st,
                 validation,
                 o,
                 ybar,
                 context,
                 std::move(alternative),
                 stop_after,
                 result);
    clock.lap("refine (L-BFGS)");
  }

  // Else the output layer (regression) or the weak units' choice scored the network kept.
  if (o.refine.enabled || !scored) {
    training_scores(net, X, data.y, context, result);
  }
  net.metadata_json = detail::metadata(o, result, rows, d, data.target_name, ybar);
  return result;
}

// `validated` (trained on the fit rows, the refinement's choices made on the validation rows)
// replaced by the pipeline `o` on all rows, with the validated run's refinement report and stage
// times (the new run's time as one stage).
TrainResult refit_on_all_rows(const Dataset& data,
                              const TrainOptions& o,
                              const ExecutionContext& context,
                              TrainResult validated) {
  TrainResult result = run_pipeline(data, o, context, nullptr);
  double seconds = 0;
  for (const StageTime& stage : result.stages) {
    seconds += stage.seconds;
  }
  result.stages = std::move(validated.stages);
  result.stages.push_back({"refit on all rows", seconds});
  result.refine = validated.refine;
  return result;
}

// The validation share: as given, else 0.2 when something is chosen on it (the refinement's
// weight decay and stopping point), else 0.
double validation_share(const TrainOptions& o) {
  if (o.validation.fraction) {
    return *o.validation.fraction;
  }
  return o.refine.enabled ? 0.2 : 0.0;
}

// The training rows split in two, with this part's local row indices of each.
struct Split {
  Dataset fit, valid;
  std::vector<Index> fit_rows, valid_rows;
};

// The rows `idx` of a data set, gathered a column per thread into memory asked for in huge pages
// (a share of 10⁶ × 100 rows took 2.2 s on one thread, most of it first touches of its pages).
Dataset take_rows(const Dataset& data, const std::vector<Index>& idx, int num_threads) {
  Dataset part;
  part.feature_names = data.feature_names;
  part.target_name = data.target_name;
  const auto m = static_cast<Index>(idx.size());
  part.X.resize(m, data.X.cols());
  detail::advise_huge_pages(part.X);
  detail::parallel_for(data.X.cols(), num_threads, [&](Index j) {
    const double* from = data.X.col(j).data();
    double* to = part.X.col(j).data();
    for (Index i = 0; i < m; ++i) {
      to[i] = from[idx[static_cast<std::size_t>(i)]];
    }
  });
  part.y = data.y(idx);
  return part;
}

// Rows split by a uniform draw u from a hash of (seed, global row index), held out where
// held(u): the same split for any partition of rows.
template <class Held>
Split split_by(const Dataset& data,
               std::uint64_t seed,
               const ExecutionContext& context,
               Held&& held) {
  const Index n = data.X.rows();
  const Index first = context.first_row(n);
  const std::uint64_t key = detail::derive_seed(seed, 41);
  std::vector<Index> train_rows, valid_rows;
  for (Index i = 0; i < n; ++i) {
    std::uint64_t state = key ^ static_cast<std::uint64_t>(first + i);
    const std::uint64_t h = detail::splitmix64(state);
    const double u = static_cast<double>(h >> 11) * 0x1.0p-53;
    (held(u) ? valid_rows : train_rows).push_back(i);
  }
  return {take_rows(data, train_rows, context.num_threads()),
          take_rows(data, valid_rows, context.num_threads()),
          train_rows,
          valid_rows};
}

// A share `fraction` of the rows held out.
Split split_rows(const Dataset& data,
                 double fraction,
                 std::uint64_t seed,
                 const ExecutionContext& context) {
  return split_by(data, seed, context, [&](double u) { return u < fraction; });
}

// Fold `fold` of `folds` held out.
Split split_fold(
    const Dataset& data, int fold, int folds, std::uint64_t seed, const ExecutionContext& context) {
  return split_by(data, seed, context, [&](double u) {
    return std::min(static_cast<int>(u * folds), folds - 1) == fold;
  });
}

// The hidden-unit counts tried: k itself, or 1, 2, 4, ... up to min(32, max(d, 8)) for k = 0
// (auto); units beyond the inputs' independent directions are extra units.
std::vector<Index> hidden_candidates(Index hidden, Index d) {
  if (hidden > 0) {
    return {hidden};
  }
  std::vector<Index> grid;
  for (Index k = 1; k <= std::min<Index>(32, std::max<Index>(d, 8)); k *= 2) {
    grid.push_back(k);
  }
  return grid;
}

// The score models tried: all three for Auto, the one asked for, or what Adaptive tries from the
// inputs' tails: the Gaussian score, and its alternatives where validation rows can choose
// among them (not for given directions).
// - Heavy tails (half the columns above kHeavyTailKurtosis): the rank-Gauss map, for inputs
//   that are a monotone warp of Gaussian ones (log-normal: skewed and heavy).
// - Leptokurtic and symmetric columns (InputTails::scale_mixture: median excess kurtosis
//   above kMixtureKurtosis, median |skewness| below kMixtureSkewness; Laplace has 3 and 0,
//   Student's t with 5 degrees of freedom 6 and 0): the marks of a scale mixture of Gaussians.
//   There the fitted mixture's score is the right one and the Gaussian score's is biased
//   (docs/reproduction.md, E11: on Laplace inputs min |cos| 0.86 flat in n against 0.99; on t
//   inputs relMSE 6 times lower, docs/benchmarks.md, session 27). Its variance is larger, so it
//   is tried only from kMixtureRows rows on. Skewed columns are left out: on ggplot2's diamonds
//   (median |skewness| 0.97) the mixture lost on validation and cost 2.7 times the training time.
std::vector<ScoreModel> score_candidates(const InputTails& tails,
                                         Index rows,
                                         const TrainOptions& o,
                                         bool no_validation) {
  if (o.score == ScoreModel::Auto) {
    return {ScoreModel::Gaussian, ScoreModel::RankGauss, ScoreModel::Mixture};
  }
  if (o.score != ScoreModel::Adaptive) {
    return {o.score};
  }
  std::vector<ScoreModel> out{ScoreModel::Gaussian};
  if (no_validation || o.directions.size() > 0) {
    return out;
  }
  if (tails.heavy_tailed()) {
    out.push_back(ScoreModel::RankGauss);
  }
  if (tails.scale_mixture() && rows >= kMixtureRows && o.init == Init::Tensor) {
    out.push_back(ScoreModel::Mixture);
  }
  return out;
}

// Adaptive's mixture candidate is there for scale mixtures of Gaussians. On the whitened inputs
// EM sees, an elliptical one (Student's t, correlated or not) has isotropic components, and
// independent Laplace or t columns diagonal ones: its covariance form is diagonal unless one was
// asked for. The full form's EM costs d² per row and component for a candidate it cannot improve
// there (d = 200, 20,000 Laplace rows: EM 5.8 s of a 7.4 s training).
TrainOptions adaptive_mixture_form(const TrainOptions& o, const std::vector<ScoreModel>& scores) {
  TrainOptions out = o;
  if (o.score == ScoreModel::Adaptive && o.mixture.covariance == MixtureCovariance::Auto &&
      std::find(scores.begin(), scores.end(), ScoreModel::Mixture) != scores.end()) {
    out.mixture.covariance = MixtureCovariance::Diagonal;
  }
  return out;
}

// The score models tried, with what chose them: the inputs' tails (Adaptive) and the rank-Gauss
// map (fitted on all rows: it does not see the labels). Both are taken on one strided sample,
// gathered once.
struct ScorePlan {
  InputTails tails;
  std::vector<ScoreModel> scores;
  RankGaussMap map;  // empty unless RankGauss is among the scores
};

ScorePlan plan_scores(const Dataset& data, const TrainOptions& o, const ExecutionContext& context) {
  std::optional<Matrix> sample;
  const auto gathered = [&]() -> const Matrix& {
    if (!sample) {
      sample = detail::strided_sample(data.X, context, kInputSampleRows);
    }
    return *sample;
  };
  ScorePlan plan;
  if (o.score == ScoreModel::Adaptive) {
    plan.tails = detail::tails_of_sample(gathered(), kHeavyTailKurtosis);
  }
  // Given directions are in the original coordinates, which the rank-Gauss map would change.
  const bool no_validation = o.validation.fraction && *o.validation.fraction == 0;
  plan.scores = score_candidates(plan.tails, context.global_rows(data.X.rows()), o, no_validation);
  if (std::find(plan.scores.begin(), plan.scores.end(), ScoreModel::RankGauss) !=
      plan.scores.end()) {
    plan.map = detail::rank_gauss_of_sample(gathered(), kRankGaussKnots);
  }
  return plan;
}

// The validation scores (those of the task), the candidates tried (if any) and the score model,
// in the network's metadata.
void add_validation_metadata(double share,
                             const ValidationReport& best_v,
                             const std::vector<CandidateScore>& curve,
                             Task task,
                             ScoreModel chosen_score,
                             TwoLayerNetwork& net) {
  nlohmann::json meta = nlohmann::json::parse(net.metadata_json);
  nlohmann::json& v = meta["validation"];
  v = {{"rows", best_v.rows}};
  if (best_v.folds > 1) {
    v["folds"] = best_v.folds;
  } else {
    v["fraction"] = share;
  }
  if (task == Task::Regression) {
    v["r2"] = best_v.r2;
    v["mse"] = best_v.mse;
  } else {
    v["accuracy"] = best_v.accuracy;
    v["log_loss"] = best_v.log_loss;
  }
  if (!curve.empty()) {
    nlohmann::json c = nlohmann::json::array();
    for (const CandidateScore& cs : curve) {
      nlohmann::json entry = {
          {"hidden", cs.hidden}, {"score", to_string(cs.score)}, {"loss", cs.loss}};
      if (!cs.hidden_units) {
        entry["hidden_units"] = false;  // the linear term alone
      }
      c.push_back(std::move(entry));
    }
    v["candidates"] = c;
  }
  meta["options"]["score"] = to_string(chosen_score);
  net.metadata_json = meta.dump();
}

// The inputs a score model sees: the rank-Gauss map's (`mapped`) or the data's own.
const Dataset& inputs_of(ScoreModel s, const Dataset& data, const Dataset& mapped) {
  return s == ScoreModel::RankGauss ? mapped : data;
}

// ValidationOptions::folds: as given, else kCrossValidationFolds when the automatic share of
// `rows` would hold fewer than kCrossValidationRows rows.
int fold_count(const TrainOptions& o, double share, Index rows) {
  if (o.validation.folds) {
    return *o.validation.folds;
  }
  if (o.validation.fraction) {
    return 1;
  }
  return share * static_cast<double>(rows) < static_cast<double>(kCrossValidationRows)
             ? kCrossValidationFolds
             : 1;
}

// One fold of the cross-validation: its split and the contexts of its two parts.
struct Fold {
  Fold(const Dataset& data, int fold, int folds, std::uint64_t seed, const ExecutionContext& c)
      : split(split_fold(data, fold, folds, seed, c)),
        fit_reducer(c.reducer(), data.X.rows(), split.fit_rows),
        valid_reducer(c.reducer(), data.X.rows(), split.valid_rows),
        fit_context(fit_reducer, c.num_threads()),
        valid_context(valid_reducer, c.num_threads()) {}
  Split split;
  SubsetReducer fit_reducer, valid_reducer;
  ExecutionContext fit_context, valid_context;
};

// One candidate's held-out points, summed over the folds: without the refinement its moment
// model's (`plain`), with it every decay's and iterate's (runs[g][t], each fold's run padded with
// its last point); the choice is the decay and iterate of the lowest pooled loss.
struct Pooled {
  std::vector<std::vector<detail::CurvePoint>> runs;
  detail::CurvePoint plain;
  double rows = 0;
  std::size_t strength = 0, iterate = 0;
  double loss = std::numeric_limits<double>::infinity();  // per held-out row
  double gain = 0, se = 0;  // the chosen point's mean per-row gain on the start, its error
  // Without the refinement: each fold's held-out rows' losses (local rows, fold order), for the
  // paired comparison with the linear term alone (network_beats_linear).
  std::vector<Vector> row_losses;
  // Some fold's moments did not vouch for every unit (weak or extra units): the refinement's
  // random start is worth trying (tries_random_start).
  bool weak = false;
  const detail::CurvePoint& chosen() const {
    return runs.empty() ? plain : runs[strength][iterate];
  }
};

void pool_curves(const std::vector<detail::RefineCurves>& folds, bool from_random, Pooled& p) {
  std::size_t strengths = 0, length = 0;
  for (const detail::RefineCurves& f : folds) {
    strengths = std::max(strengths, f.runs.size());
    for (const auto& run : f.runs) {
      length = std::max(length, run.size());
    }
  }
  p.runs.assign(strengths, std::vector<detail::CurvePoint>(length));
  for (std::size_t g = 0; g < strengths; ++g) {
    bool complete = true;
    for (const detail::RefineCurves& f : folds) {
      complete = complete && g < f.runs.size() && !f.runs[g].empty();
    }
    if (!complete) {
      continue;  // a fold's start had no finite loss: this decay is not scored
    }
    for (const detail::RefineCurves& f : folds) {
      const std::vector<detail::CurvePoint>& run = f.runs[g];
      for (std::size_t t = 0; t < length; ++t) {
        const detail::CurvePoint& q = run[std::min(t, run.size() - 1)];
        detail::CurvePoint& sum = p.runs[g][t];
        sum.loss += q.loss;
        sum.gain += q.gain;
        sum.gain2 += q.gain2;
        sum.correct += q.correct;
      }
    }
    // The lowest loss, the earliest iterate and weakest decay among equals; a random start is
    // no model, so its iterate 0 is not a choice.
    for (std::size_t t = from_random ? 1 : 0; t < length; ++t) {
      const double loss = p.runs[g][t].loss / p.rows;
      if (!std::isfinite(p.loss) || loss < p.loss - 1e-12 * std::abs(p.loss)) {
        p.loss = loss;
        p.strength = g;
        p.iterate = t;
      }
    }
  }
}

// The refinement's choice kept only where it beats the moment model (iterate 0) by
// min_improvement standard errors of the pooled per-row difference (a random start, no model,
// is always refined); else the choice is the start, and so is the candidate's loss.
void settle(const TrainOptions& o, Pooled& p) {
  if (!std::isfinite(p.loss)) {
    return;
  }
  const detail::CurvePoint& at = p.runs[p.strength][p.iterate];
  p.gain = at.gain / p.rows;
  p.se = std::sqrt(std::max(0.0, at.gain2 / p.rows - p.gain * p.gain) / p.rows);
  if (o.init != Init::Random && p.iterate > 0 && !(p.gain > o.refine.min_improvement * p.se)) {
    p.iterate = 0;
    p.loss = p.runs[p.strength][0].loss / p.rows;
  }
}

// The choice among candidates (hidden units × score models) by their validation loss, in either
// kind of validation: the curve of their losses, the lowest (a tie, to rounding, goes to the
// earlier candidate: fewer units, the Gaussian score), and why the first candidate that could
// not be trained failed.
struct CandidateChoice {
  std::vector<CandidateScore> curve;
  TrainOptions chosen;
  double best_loss = std::numeric_limits<double>::infinity();
  bool have = false;
  std::string first_error;
  // Records a trained candidate's loss; true when it is the lowest so far.
  bool offer(const TrainOptions& candidate, double loss) {
    curve.push_back({candidate.hidden, candidate.score, loss, candidate.output.hidden_units});
    if (have && !(loss < best_loss - 1e-9 * std::abs(best_loss))) {
      return false;
    }
    best_loss = loss;
    chosen = candidate;
    have = true;
    return true;
  }
  // A candidate that could not be trained (e.g. more units than independent input directions).
  void failed(const std::string& what) {
    if (first_error.empty()) {
      first_error = what;
    }
  }
  // \throws DataError when no candidate could be trained.
  void require_one() const {
    if (!have) {
      throw DataError("train: no candidate (hidden units, score model) could be trained" +
                      (first_error.empty() ? std::string() : "; the first: " + first_error));
    }
  }
};

// What validation (cross-validation or one held-out share) chose: the score model, the curve of
// candidates, and the network trained with the choice, its validation scores set.
struct Validated {
  TrainResult result;
  ScoreModel score = ScoreModel::Gaussian;
  std::vector<CandidateScore> curve;
  /// Where the linear term alone was chosen: the best network it was weighed against (hidden
  /// 0: none could be trained), and the linear term's held-out losses on the folds.
  Index network_hidden = 0;
  ScoreModel network_score = ScoreModel::Gaussian;
  Pooled linear{};
};

// The folds of ValidationOptions::folds that hold out some row, and the fewest rows any of them
// leaves to fit.
struct Folds {
  std::vector<std::unique_ptr<Fold>> parts;
  double fewest_fit = 0;
};

Folds make_folds(const Dataset& data, int folds, std::uint64_t seed, const ExecutionContext& c) {
  const Index all_rows = c.global_rows(data.X.rows());
  Folds out;
  out.fewest_fit = static_cast<double>(all_rows);
  for (int f = 0; f < folds; ++f) {
    auto part = std::make_unique<Fold>(data, f, folds, seed, c);
    const Split& sp = part->split;
    if (part->valid_context.global_rows(sp.valid.X.rows()) == 0) {
      continue;  // few rows: this fold drew none
    }
    const Index fit_rows = part->fit_context.global_rows(sp.fit.X.rows());
    require_fit_rows(
        fit_rows,
        all_rows,
        "fold " + std::to_string(f + 1) + " of " + std::to_string(folds) + "-fold cross-validation",
        "--validation-folds 1");
    out.fewest_fit = std::min(out.fewest_fit, static_cast<double>(fit_rows));
    out.parts.push_back(std::move(part));
  }
  if (out.parts.size() < 2) {
    throw DataError("train: " + std::to_string(folds) + "-fold cross-validation of " +
                    std::to_string(all_rows) +
                    " rows holds out rows in fewer than two folds; use more rows or "
                    "--validation-folds 1");
  }
  return out;
}

// What cross-validation needs besides the candidate: the folds, the decay strengths each fold's
// refinement tries, and whether candidates are chosen among (else a candidate's failure is the
// training's).
struct CrossValidation {
  const Folds& folds;
  const TrainOptions& o;
  const ExecutionContext& context;
  std::vector<double> strengths;  // the grid's c (decay c / fit rows); unused with a given decay
  bool choosing = false;
  PipelineMemo& memo;  // the folds' moment models, shared by every call of a training
  // The fold f's place in the memo.
  MemoSlot slot(std::size_t f) const {
    return {&memo,
            static_cast<int>(f),
            static_cast<int>(folds.parts.size()),
            &folds.parts[f]->split.fit_rows};
  }
  // The decays one fold's refinement tries: the given one, or c / its fit rows.
  std::vector<double> decays_for(const Fold& part) const {
    if (o.refine.weight_decay) {
      return {*o.refine.weight_decay};
    }
    const auto rows = static_cast<double>(part.fit_context.global_rows(part.split.fit.X.rows()));
    std::vector<double> decays;
    for (const double c : strengths) {
      decays.push_back(c / rows);
    }
    return decays;
  }
};

// fn(f, part, fit, valid, reports) for every fold f, at the same time where run_independent
// allows (the passes inside then run serially; only fold 0 reports progress): `fit` and `valid`
// its rows of `source`, gathered by the fold's row indices where the inputs are mapped (the
// rank-Gauss map), else the fold's own split.
template <class Fn>
void for_each_fold(const CrossValidation& cv, const Dataset& source, bool mapped, Fn&& fn) {
  const std::vector<std::unique_ptr<Fold>>& parts = cv.folds.parts;
  const int threads = cv.context.num_threads();
  detail::run_independent(
      static_cast<Index>(parts.size()), cv.context, nullptr, [&](Index fi, bool reports) {
        const auto f = static_cast<std::size_t>(fi);
        const Fold& part = *parts[f];
        const Split rows = mapped ? Split{take_rows(source, part.split.fit_rows, threads),
                                          take_rows(source, part.split.valid_rows, threads),
                                          {},
                                          {}}
                                  : Split{};
        fn(f,
           part,
           mapped ? rows.fit : part.split.fit,
           mapped ? rows.valid : part.split.valid,
           reports);
      });
}

// One candidate's folds, pooled and settled. A candidate that cannot be trained has an infinite
// loss (its error goes to choice.failed); without choosing, its DataError is rethrown, and a run
// without a network is moved to `stopped`.
Pooled cross_validate_candidate(const CrossValidation& cv,
                                const Dataset& source,
                                const TrainOptions& candidate,
                                CandidateChoice& choice,
                                std::optional<TrainResult>& stopped) {
  const TrainOptions& o = cv.o;
  const std::vector<std::unique_ptr<Fold>>& parts = cv.folds.parts;
  const bool mapped = candidate.score == ScoreModel::RankGauss;
  Pooled pooled;
  std::vector<detail::RefineCurves> curves(parts.size());
  // The folds are independent: at the same time where run_independent allows (the passes
  // inside then run serially; only fold 0 reports progress), then taken in fold order.
  struct FoldRun {
    std::exception_ptr error;  // a DataError
    std::string what;
    TrainResult result;  // kept when it has no network: its status says why
    bool has_network = false;
    double held_rows = 0;
    Matrix scored;  // each held-out row's [loss, right] (without the refinement)
    Matrix sums;    // their sums over the fold's held-out rows of every part
    bool weak = false;
  };
  std::vector<FoldRun> runs(parts.size());
  for_each_fold(
      cv,
      source,
      mapped,
      [&](std::size_t f, const Fold& part, const Dataset& fit, const Dataset& valid, bool reports) {
        HeldOut held{valid, part.valid_context, &curves[f], cv.decays_for(part)};
        TrainOptions fold_options = candidate;
        if (!reports) {
          fold_options.progress = nullptr;
        }
        FoldRun& run = runs[f];
        TrainResult r;
        try {
          const MemoSlot slot = cv.slot(f);
          r = run_pipeline(
              fit, fold_options, part.fit_context, o.refine.enabled ? &held : nullptr, 0, &slot);
        } catch (const DataError& e) {
          run.error = std::current_exception();
          run.what = e.what();
          return;
        }
        run.has_network = r.network.W2.size() > 0;
        if (!run.has_network) {
          run.result = std::move(r);
          return;
        }
        run.weak = !r.moments.weak_units.empty() || r.extra_units > 0;
        run.held_rows = static_cast<double>(part.valid_context.global_rows(valid.X.rows()));
        if (!o.refine.enabled) {
          run.scored = held_out_rows(r.network, valid);
          run.sums = part.valid_context.sum(run.scored.rows(), 1, 2, [&](Index b, Index c) {
            return Matrix(detail::column_sums(run.scored.middleRows(b, c)).transpose());
          });
        }
      });
  for (FoldRun& run : runs) {
    if (run.error) {
      if (!cv.choosing) {
        std::rethrow_exception(run.error);
      }
      choice.failed(run.what);
      return {};
    }
    if (!run.has_network) {
      if (!cv.choosing) {
        stopped = std::move(run.result);  // no network: the status says why
      }
      return {};
    }
    pooled.rows += run.held_rows;
    pooled.weak = pooled.weak || run.weak;
    if (!o.refine.enabled) {
      pooled.plain.loss += run.sums(0, 0);
      pooled.plain.correct += run.sums(0, 1);
      pooled.row_losses.push_back(run.scored.col(0));
    }
  }
  if (o.refine.enabled) {
    pool_curves(curves, o.init == Init::Random, pooled);
    settle(o, pooled);
  } else {
    pooled.loss = pooled.plain.loss / pooled.rows;
  }
  return pooled;
}

// The candidate cross-validation chose (`best`, options `chosen`) trained on all rows, refined
// for the chosen iterates at the chosen decay (or not at all), with the pooled scores as its
// validation report and the refinement's choice as its refinement report.
TrainResult train_as_chosen(const CrossValidation& cv,
                            const Pooled& best,
                            const TrainOptions& chosen,
                            const Dataset& source) {
  const TrainOptions& o = cv.o;
  const ExecutionContext& context = cv.context;
  const Index n = source.X.rows();
  TrainOptions final_options = chosen;
  int stop_after = 0;
  RefineReport report;
  if (o.refine.enabled) {
    report.validation_before = best.runs[best.strength].front().loss / best.rows;
    report.validation_after = best.chosen().loss / best.rows;
    report.improvement = best.gain;
    report.improvement_se = best.se;
    report.weight_decay = o.refine.weight_decay ? *o.refine.weight_decay
                                                : cv.strengths[best.strength] /
                                                      static_cast<double>(context.global_rows(n));
    if (best.iterate > 0) {
      final_options.refine.weight_decay = report.weight_decay;
      stop_after = static_cast<int>(best.iterate);
    } else {
      final_options.refine.enabled = false;
    }
  }
  TrainResult result = run_pipeline(source, final_options, context, nullptr, stop_after);
  if (o.refine.enabled) {
    if (best.iterate > 0) {
      report.iterations = result.refine.iterations;
      report.stop_reason = result.refine.stop_reason;
      report.loss_before = result.refine.loss_before;
      report.diverged = result.refine.diverged;
      report.best_iterate = result.refine.best_iterate;
    } else {
      report.start_kept = true;
      report.loss_before = result.train_loss;
      report.stop_reason = "cross-validation kept the moment model";
    }
    result.refine = report;
  }
  // The pooled scores; R² against the labels' spread about their mean over all rows.
  const detail::CurvePoint& point = best.chosen();
  ValidationReport& v = result.validation;
  v.rows = static_cast<Index>(best.rows);
  v.folds = static_cast<int>(cv.folds.parts.size());
  if (o.labels.task == Task::Regression) {
    const double ybar = context.mean_of(source.y);
    const double sst = context.sum(n, 1, 1, [&](Index b, Index cnt) {
      return Matrix::Constant(1, 1, (source.y.segment(b, cnt).array() - ybar).square().sum());
    })(0, 0);
    v.mse = point.loss / best.rows;
    v.r2 = sst > 0 ? 1.0 - point.loss / sst : 0.0;
  } else {
    v.log_loss = point.loss / best.rows;
    v.accuracy = point.correct / best.rows;
  }
  return result;
}

// Whether held-out losses `first` beat `second` by `margin` standard errors of their paired per-row
// difference, pooled over the folds (each fold's local rows; its sums over the held-out rows of
// every part, in fold order).
bool beats_paired(const std::vector<Vector>& first,
                  const std::vector<Vector>& second,
                  double rows,
                  const Folds& parts,
                  double margin) {
  double sum = 0, sum2 = 0;
  for (std::size_t f = 0; f < parts.parts.size(); ++f) {
    const Vector d = first.at(f) - second.at(f);
    const Matrix s = parts.parts[f]->valid_context.sum(d.size(), 2, 1, [&](Index b, Index c) {
      const auto db = d.segment(b, c);
      return Matrix((Matrix(2, 1) << detail::sum_of(db), db.squaredNorm()).finished());
    });
    sum += s(0, 0);
    sum2 += s(1, 0);
  }
  const double mean = sum / rows;
  const double se = std::sqrt(std::max(0.0, sum2 / rows - mean * mean) / rows);
  return mean < -margin * se;
}

// Whether the network's held-out losses beat the linear model's by `margin` standard errors.
bool network_beats_linear(const Pooled& network,
                          const Pooled& linear,
                          const Folds& parts,
                          double margin) {
  return beats_paired(network.row_losses, linear.row_losses, network.rows, parts, margin);
}

// Each fold's held-out rows' losses (local rows, fold order) under `candidate` trained on the
// fold's fit rows and refined at decay strength `strength` for `iterate` iterates (0: the moment
// model, unrefined), as train_as_chosen would train it on all rows.
std::vector<Vector> fold_row_losses(const CrossValidation& cv,
                                    const Dataset& source,
                                    TrainOptions candidate,
                                    std::size_t strength,
                                    std::size_t iterate) {
  candidate.progress = nullptr;
  std::vector<Vector> out(cv.folds.parts.size());
  for_each_fold(
      cv,
      source,
      candidate.score == ScoreModel::RankGauss,
      [&](std::size_t f, const Fold& part, const Dataset& fit, const Dataset& valid, bool) {
        TrainOptions one = candidate;
        if (iterate == 0) {
          one.refine.enabled = false;
        } else if (!one.refine.weight_decay) {
          one.refine.weight_decay = cv.decays_for(part).at(strength);
        }
        const MemoSlot slot = cv.slot(f);
        const TrainResult r = run_pipeline(fit,
                                           one,
                                           part.fit_context,
                                           nullptr,
                                           iterate == 0 ? 0 : static_cast<int>(iterate),
                                           &slot);
        out[f] = held_out_rows(r.network, valid).col(0);
      });
  return out;
}

// ValidationOptions::folds > 1: every candidate (hidden units × score models) cross-validated,
// the lowest pooled held-out loss chosen (regression: MSE; classes: log-loss), and the chosen
// candidate trained on all rows, with the refinement (when on) at the cross-validated decay for
// the cross-validated number of iterates, or not at all when it did not beat the moment model.
// With `linear_candidate`, the linear term alone is weighed against the best network too;
// with `only_linear` as well, nothing is trained on all rows unless it wins (std::nullopt).
// With `linear_last` (and the refinement: the linear term alone's held-out losses on the same
// folds, Validated::linear of the linear-first call), the linear term alone is weighed against
// the final choice, refined or from the random start, which must beat it by kRandomStartMargin
// standard errors (its decay and iterate were chosen on the same held-out rows); else
// std::nullopt.
std::optional<Validated> cross_validate(const Dataset& data,
                                        const Dataset& mapped,
                                        const TrainOptions& o,
                                        const ExecutionContext& context,
                                        const std::vector<Index>& hidden_grid,
                                        const std::vector<ScoreModel>& scores,
                                        int folds,
                                        PipelineMemo& memo,
                                        bool linear_candidate,
                                        bool only_linear = false,
                                        const Pooled* linear_last = nullptr) {
  const Folds parts = make_folds(data, folds, o.seed, context);
  const CrossValidation cv{
      parts,
      o,
      context,
      o.refine.weight_decay ? std::vector<double>{} : detail::decay_strengths(parts.fewest_fit),
      hidden_grid.size() * scores.size() > 1,
      memo};
  CandidateChoice choice;
  Pooled best;
  for (const ScoreModel s : scores) {
    for (const Index k : hidden_grid) {
      TrainOptions candidate = o;
      candidate.hidden = k;
      candidate.score = s;
      std::optional<TrainResult> stopped;
      Pooled pooled =
          cross_validate_candidate(cv, inputs_of(s, data, mapped), candidate, choice, stopped);
      if (stopped) {  // no network: its status says why (but it is no linear model)
        return only_linear ? std::nullopt
                           : std::optional<Validated>(Validated{std::move(*stopped), s, {}});
      }
      if (std::isfinite(pooled.loss) && choice.offer(candidate, pooled.loss)) {
        best = std::move(pooled);
      }
    }
  }
  // The linear term alone (its units fitted, given no output weights) on the same folds. A
  // failure of its own leaves the networks' choice as it was.
  TrainOptions linear = o;
  linear.hidden = hidden_grid.front();
  linear.score = ScoreModel::Gaussian;
  linear.output.hidden_units = false;
  TrainOptions best_network = choice.chosen;
  best_network.hidden = choice.have ? best_network.hidden : 0;
  Pooled linear_pooled;
  if (linear_candidate) {
    // It is kept unless the best network beats it by kLinearCandidateMargin standard errors.
    CrossValidation quiet = cv;
    quiet.choosing = true;
    CandidateChoice own;
    std::optional<TrainResult> stopped;
    linear_pooled = cross_validate_candidate(quiet, data, linear, own, stopped);
    const Pooled& pooled = linear_pooled;
    if (std::isfinite(pooled.loss)) {
      choice.curve.push_back({linear.hidden, linear.score, pooled.loss, false});
      if (!choice.have || !network_beats_linear(best, pooled, parts, kLinearCandidateMargin)) {
        choice.chosen = linear;
        choice.best_loss = pooled.loss;
        choice.have = true;
        best = pooled;
      }
    }
  }
  choice.require_one();
  if (only_linear && choice.chosen.output.hidden_units) {
    return std::nullopt;
  }
  const ScoreModel score = choice.chosen.score;
  // The refinement's random start, as with one held-out share (tries_random_start): the chosen
  // candidate cross-validated again from a seeded random start, and kept where its held-out
  // losses beat the moment start's (at each one's chosen decay and iterate, refitted in every
  // fold) by kRandomStartMargin standard errors of the paired per-row difference. This random
  // start is plain backprop (no linear term), as the one share's is (since session 29):
  // on few rows the extra parameters cost more than they give (tools/bench_smalldata, 3 seeds,
  // with the term: MASS's Rabbit 0.859 -> 0.636, painters 0.262 -> 0.405, the mean over the 59
  // sets 0.002 lower; docs/benchmarks.md, session 26).
  TrainOptions from_random = o;
  from_random.init = Init::Random;
  from_random.output.linear_term = false;
  const CrossValidation random_cv{parts, from_random, context, cv.strengths, true, memo};
  bool random_tried = false, random_won = false;
  if (o.refine.enabled && o.refine.random_start && o.init == Init::Tensor &&
      o.directions.size() == 0 && choice.chosen.output.hidden_units && best.weak &&
      best.rows >= kRandomStartMinFoldedRows) {
    TrainOptions candidate = choice.chosen;
    candidate.init = Init::Random;
    candidate.output.linear_term = false;
    CandidateChoice own;
    std::optional<TrainResult> stopped;
    Pooled pooled = cross_validate_candidate(
        random_cv, inputs_of(score, data, mapped), candidate, own, stopped);
    random_tried = true;
    if (std::isfinite(pooled.loss) && pooled.loss < best.loss) {
      const Dataset& source = inputs_of(score, data, mapped);
      const std::vector<Vector> moment =
          fold_row_losses(cv, source, choice.chosen, best.strength, best.iterate);
      const std::vector<Vector> random =
          fold_row_losses(random_cv, source, candidate, pooled.strength, pooled.iterate);
      if (beats_paired(random, moment, best.rows, parts, kRandomStartMargin)) {
        choice.chosen = candidate;
        best = std::move(pooled);
        random_won = true;
      }
    }
  }
  if (linear_last != nullptr && o.refine.enabled && choice.chosen.output.hidden_units) {
    choice.curve.push_back({linear.hidden, linear.score, linear_last->loss, false});
    const std::vector<Vector> network = fold_row_losses(random_won ? random_cv : cv,
                                                        inputs_of(score, data, mapped),
                                                        choice.chosen,
                                                        best.strength,
                                                        best.iterate);
    if (!beats_paired(network, linear_last->row_losses, best.rows, parts, kRandomStartMargin)) {
      return std::nullopt;
    }
  }
  TrainResult result = train_as_chosen(
      random_won ? random_cv : cv, best, choice.chosen, inputs_of(score, data, mapped));
  result.units_left_out = !choice.chosen.output.hidden_units;
  result.refine.random_tried = random_tried;
  result.refine.random_start = random_won;
  if (random_won && !result.network.metadata_json.empty()) {
    nlohmann::json meta = nlohmann::json::parse(result.network.metadata_json);
    meta["diagnostics"]["refine_random_start"] = true;
    result.network.metadata_json = meta.dump();
  }
  return Validated{std::move(result),
                   score,
                   std::move(choice.curve),
                   choice.chosen.output.hidden_units ? 0 : best_network.hidden,
                   best_network.score,
                   std::move(linear_pooled)};
}

// One held-out share of the rows (ValidationOptions::fraction): each candidate trained on the
// rest and scored there; the chosen candidate refitted on all rows, or its refined network kept
// (early stopping on the share).
Validated hold_out_share(const Dataset& data,
                         const Dataset& mapped,
                         const TrainOptions& o,
                         const ExecutionContext& context,
                         const std::vector<Index>& hidden_grid,
                         const std::vector<ScoreModel>& scores,
                         double share) {
  const bool choosing = hidden_grid.size() * scores.size() > 1;
  const Split split = split_rows(data, share, o.seed, context);
  // The parts' passes over each subset combine through subset reducers, whose blocks are cut
  // where the full set's are: the result does not depend on how the rows are partitioned.
  const Index n = data.X.rows();
  const SubsetReducer fit_reducer(context.reducer(), n, split.fit_rows);
  const SubsetReducer valid_reducer(context.reducer(), n, split.valid_rows);
  const ExecutionContext fit_context(fit_reducer, context.num_threads());
  const ExecutionContext valid_context(valid_reducer, context.num_threads());
  if (valid_context.global_rows(split.valid.X.rows()) < 1) {
    std::ostringstream msg;
    msg << "train: the validation share " << share << " of " << context.global_rows(data.X.rows())
        << " rows holds no row; use more rows or --validation 0";
    throw DataError(msg.str());
  }
  std::ostringstream what;
  what << "the validation share " << share;
  require_fit_rows(fit_context.global_rows(split.fit.X.rows()),
                   context.global_rows(data.X.rows()),
                   what.str(),
                   "--validation 0");
  // Each candidate on the fit part, scored on the held-out rows (regression: MSE; classes:
  // log-loss). With the refinement (its weight decay and stopping point chosen on them) the
  // early-stopped model is the estimator, as in any early stopping; without, the estimator is
  // defined on all rows, so the chosen candidate is refitted on them. The validation scores are
  // those of the fit without the validation rows.
  CandidateChoice choice;
  TrainResult best;
  ValidationReport best_v;
  for (const ScoreModel s : scores) {
    const Dataset& source = inputs_of(s, data, mapped);
    // The same rows (by index) of the inputs this score model sees (the split itself, not a
    // copy of it, for the original inputs).
    const int threads = context.num_threads();
    const Split mapped_part = s == ScoreModel::RankGauss
                                  ? Split{take_rows(source, split.fit_rows, threads),
                                          take_rows(source, split.valid_rows, threads),
                                          {},
                                          {}}
                                  : Split{};
    const Split& part = s == ScoreModel::RankGauss ? mapped_part : split;
    const HeldOut held_out{part.valid, valid_context};
    for (const Index k : hidden_grid) {
      TrainOptions candidate = o;
      candidate.hidden = k;
      candidate.score = s;
      TrainResult r;
      try {
        r = run_pipeline(part.fit, candidate, fit_context, &held_out);
      } catch (const DataError& e) {
        if (!choosing) {
          throw;
        }
        choice.failed(e.what());
        continue;
      }
      if (r.network.W2.size() == 0) {
        if (!choosing) {
          return {std::move(r), s, {}};  // no network: the status says why
        }
        continue;
      }
      // With the refinement, the validation scores were taken before its continuation on all
      // rows (RefineOptions::all_rows).
      const ValidationReport v = r.validation.rows > 0
                                     ? r.validation
                                     : validation_scores(r.network, part.valid, valid_context);
      if (choice.offer(candidate, o.labels.task == Task::Regression ? v.mse : v.log_loss)) {
        best = std::move(r);
        best_v = v;
      }
    }
  }
  choice.require_one();
  TrainOptions chosen = choice.chosen;
  if (chosen.score == ScoreModel::Mixture && best.mixture.components() > 0) {
    // The mixture's components and covariance were chosen (by BIC) with the rest on the fit
    // rows; a refit on all rows fits that mixture alone, as it refits the chosen k.
    chosen.mixture.components = best.mixture_fit.components;
    chosen.mixture.covariance = best.mixture_fit.covariance;
  }
  const Dataset& source = inputs_of(chosen.score, data, mapped);
  TrainResult result = std::move(best);
  if (!o.refine.enabled) {
    result = run_pipeline(source, chosen, context, nullptr);
  } else if (result.refine.start_kept) {
    // The refinement kept its start, the moment model: that estimator is defined on all rows.
    TrainOptions again = chosen;
    again.refine.enabled = false;
    result = refit_on_all_rows(source, again, context, std::move(result));
  }
  result.validation = best_v;
  return {std::move(result), chosen.score, std::move(choice.curve)};
}

}  // namespace

const char* to_string(WeakUnits w) noexcept { return detail::name_of(kWeakUnitsNames, w); }

WeakUnits parse_weak_units(const std::string& name) {
  return detail::parse_name(kWeakUnitsNames, name, "weak-units mode");
}

const char* to_string(Init init) noexcept { return detail::name_of(kInitNames, init); }

Init parse_init(const std::string& name) { return detail::parse_name(kInitNames, name, "init"); }

void validate(const TrainOptions& o) {
  const char* where = "TrainOptions";
  detail::require(o.hidden >= 0, where, "hidden", o.hidden, ">= 1 (or 0: chosen)");
  if (const char* refusal = detail::traits(o.activation).refusal) {
    detail::fail(std::string("TrainOptions::activation = ") + to_string(o.activation) + ": " +
                 refusal);
  }
  if (o.directions.size() > 0 &&
      (o.score == ScoreModel::RankGauss || o.score == ScoreModel::Auto)) {
    detail::fail(std::string("TrainOptions::score = ") + to_string(o.score) +
                 " with directions: the directions are in the original coordinates, which the "
                 "rank-Gauss map changes");
  }
  if (o.init == Init::Random && !o.refine.enabled) {
    detail::fail(
        "TrainOptions::init = random needs refine.enabled (random weights alone are no "
        "model)");
  }
  if (o.bias.method == BiasMethod::Lsq && o.labels.task == Task::Classification) {
    detail::fail("TrainOptions::bias.method = lsq fits a squared loss: regression only");
  }
  detail::require_nonnegative(o.moments.noise_threshold, where, "moments.noise_threshold");
  detail::require_nonnegative(
      o.moments.second_order_threshold, where, "moments.second_order_threshold");
  detail::require(o.moments.subspace_sample_rows >= 0,
                  where,
                  "moments.subspace_sample_rows",
                  o.moments.subspace_sample_rows,
                  ">= 0");
  detail::require(o.inputs.eigenvalue_floor >= 0 && o.inputs.eigenvalue_floor < 1,
                  where,
                  "inputs.eigenvalue_floor",
                  o.inputs.eigenvalue_floor,
                  "in [0, 1)");
  detail::require_derived(o.subspace.rank, where, "subspace.rank", "TrainOptions::hidden");
  detail::require_derived(o.subspace.seed, where, "subspace.seed", "TrainOptions::seed");
  detail::require(o.subspace.start.size() == 0,
                  where,
                  "subspace.start",
                  "set",
                  "empty (the pipeline starts HOOI from the second moment)");
  SubspaceOptions so = o.subspace;
  so.rank = 1;
  validate(so);
  detail::require_derived(o.mixture.seed, where, "mixture.seed", "TrainOptions::seed");
  validate(o.mixture);
  detail::require_derived(o.decompose.rank, where, "decompose.rank", "TrainOptions::hidden");
  detail::require_derived(o.decompose.seed, where, "decompose.seed", "TrainOptions::seed");
  detail::require_derived(
      o.decompose.num_threads, where, "decompose.num_threads", "the execution context");
  DecomposeOptions dopt = o.decompose;
  dopt.rank = 1;
  validate(dopt);
  detail::require_positive(o.bias.fourier_radius, where, "bias.fourier_radius");
  detail::require(o.bias.fourier_cap > 0 && o.bias.fourier_cap < std::sqrt(2.0),
                  where,
                  "bias.fourier_cap",
                  o.bias.fourier_cap,
                  "in (0, sqrt 2)");
  if (o.output.ridge) {
    detail::require_nonnegative(*o.output.ridge, where, "output.ridge");
  }
  if (!o.output.hidden_units && !o.output.linear_term) {
    detail::fail(
        "TrainOptions::output.hidden_units = false needs output.linear_term (without both the "
        "model is a constant)");
  }
  if (!o.output.hidden_units && o.refine.enabled) {
    detail::fail(
        "TrainOptions::output.hidden_units = false with refine.enabled: the refinement would "
        "train the units the output layer leaves out");
  }
  detail::require(
      o.refine.max_iterations > 0, where, "refine.max_iterations", o.refine.max_iterations, "> 0");
  detail::require(o.refine.patience > 0, where, "refine.patience", o.refine.patience, "> 0");
  detail::require_nonnegative(o.refine.min_improvement, where, "refine.min_improvement");
  if (o.refine.weight_decay) {
    detail::require_nonnegative(*o.refine.weight_decay, where, "refine.weight_decay");
  }
  if (o.validation.fraction) {
    detail::require(*o.validation.fraction >= 0 && *o.validation.fraction < 1,
                    where,
                    "validation.fraction",
                    *o.validation.fraction,
                    "in [0, 1)");
  }
  detail::require_positive(o.refine.tolerance, where, "refine.tolerance");
  if (o.validation.folds) {
    detail::require(
        *o.validation.folds >= 1, where, "validation.folds", *o.validation.folds, ">= 1");
    if (*o.validation.folds > 1 && o.validation.fraction) {
      detail::fail("TrainOptions::validation.folds = " + std::to_string(*o.validation.folds) +
                   " with TrainOptions::validation.fraction set: cross-validation holds out "
                   "each fold in turn, not a share; set one of them");
    }
  }
}

namespace {

// A value that is not finite (a missing value read as NaN, text read as NaN) in the inputs or
// the target, or (unless the task is classes) a target too large to square: every process
// throws the same error, naming the first such value's global row (the target after a row's
// inputs). One scan of the rows, only where a vectorised test found something, and one gather.
void refuse_bad_values(const Dataset& data,
                       const TrainOptions& options,
                       const ExecutionContext& context,
                       bool inputs_finite) {
  enum Kind { kNonFinite = 1, kTooLarge = 2 };
  const bool regression = options.labels.task != Task::Classification;
  const auto kind = [regression](double v, bool target) {
    return !std::isfinite(v)                                              ? kNonFinite
           : target && regression && std::abs(v) > detail::kLargestTarget ? kTooLarge
                                                                          : 0;
  };
  // This part's first bad row, its column and its kind (−1: none).
  Matrix mine = Matrix::Constant(1, 3, -1.0);
  const bool suspect =
      !inputs_finite || !data.y.allFinite() ||
      (regression && data.y.size() > 0 && data.y.cwiseAbs().maxCoeff() > detail::kLargestTarget);
  const Index d = data.X.cols();
  for (Index i = 0; suspect && i < data.X.rows() && mine(0, 0) < 0; ++i) {
    for (Index j = 0; j <= d; ++j) {
      if (const int k = j < d ? kind(data.X(i, j), false) : kind(data.y(i), true)) {
        mine << static_cast<double>(i), static_cast<double>(j), static_cast<double>(k);
        break;
      }
    }
  }
  const Index first = context.first_row(data.X.rows());
  Matrix at(1, 4);
  at << static_cast<double>(first) + mine(0, 0), mine;
  const Matrix all = context.reducer().gather_rows(at);
  for (Index r = 0; r < all.rows(); ++r) {
    if (all(r, 1) < 0) {
      continue;
    }
    const auto j = static_cast<Index>(all(r, 2));
    const auto named = static_cast<std::size_t>(j) < data.feature_names.size();
    const std::string column =
        j == data.X.cols() ? "the target"
        : named            ? "input '" + data.feature_names[static_cast<std::size_t>(j)] + "'"
                           : "input " + std::to_string(j + 1);
    std::ostringstream msg;
    msg << "train: row " << static_cast<Index>(all(r, 0)) + 1 << ", " << column;
    if (all(r, 3) == kNonFinite) {
      msg << ": a value that is not finite (NaN or infinite; a missing value needs an encoding: "
             "fit_encoding, or train --missing)";
    } else {
      msg << ": a value over " << detail::kLargestTarget
          << " in magnitude, too large for a regression target (its square overflows); rescale "
             "the target";
    }
    throw DataError(msg.str());
  }
}

}  // namespace

TrainResult train(const Dataset& data,
                  const TrainOptions& options,
                  const ExecutionContext& context) {
  validate(options);
  const detail::ThreadBudget threads(context.num_threads());
  if (data.y.size() != data.X.rows()) {
    throw DataError("train: the data set has no target column");
  }
  // One parallel read of the inputs: their range (the clamp bounds, TrainOptions::clamp_inputs)
  // and whether refuse_bad_values must scan them (d = 100, 10⁶ rows: 0.17 s in two reads, the
  // first on one thread, in an instrumented build of tools/bench_train).
  detail::ColumnRange range(data.X.cols());
  detail::parallel_rows(data.X.rows(), context.num_threads(), [&](Index b, Index c) {
    range.add(data.X.middleRows(b, c));
  });
  refuse_bad_values(data, options, context, range.sums_finite());
  Vector input_low, input_high;
  range.total(context.reducer(), input_low, input_high);
  // Too few rows is what to say, before any split of them holds no row.
  detail::require_min_rows(context.global_rows(data.X.rows()));
  // The candidates chosen among on the validation rows: the hidden-unit counts (--hidden auto)
  // times the score models (--score auto, or adaptive on heavy-tailed or leptokurtic inputs).
  const std::vector<Index> hidden_grid = hidden_candidates(options.hidden, data.X.cols());
  const ScorePlan plan = plan_scores(data, options, context);
  const TrainOptions o = adaptive_mixture_form(options, plan.scores);
  const InputTails& tails = plan.tails;
  const std::vector<ScoreModel>& scores = plan.scores;
  const RankGaussMap& map = plan.map;
  const bool choosing = hidden_grid.size() * scores.size() > 1;
  // Where candidates are cross-validated (few rows), the networks are weighed against the linear
  // term alone too (TrainResult::units_left_out). With the refinement that choice comes first,
  // as without it: the refinement's cross-validation scores its own curves, and a network it
  // keeps unrefined (the moment model) would otherwise be kept where, without --refine, the
  // linear term alone is (MASS's mammals, session 25 in docs/benchmarks.md).
  const bool linear_candidate =
      choosing && o.output.linear_term && o.output.hidden_units && o.directions.size() == 0;
  Dataset mapped;  // the inputs through the rank-Gauss map
  if (!map.empty()) {
    mapped = data;
    mapped.X = map.apply(data.X);
  }
  auto finish = [&](TrainResult r, ScoreModel s) {
    if (s == ScoreModel::RankGauss && r.network.W2.size() > 0) {
      r.network.input_map = map;
    }
    if (o.clamp_inputs && r.network.W2.size() > 0) {
      r.network.input_low = input_low;
      r.network.input_high = input_high;
      detail::widen_to_clamp_bounds(r.network.input_low, r.network.input_high);
    }
    r.score_used = s;
    r.input_tails = tails;
    return r;
  };
  double share = validation_share(o);
  if (choosing && !o.validation.fraction) {
    share = kChoiceShare;
  }
  if (choosing && share == 0) {
    throw std::invalid_argument(
        "TrainOptions::validation.fraction = 0: hidden = auto and score = auto choose on the "
        "validation rows; give a fraction in (0, 1)");
  }
  if (share == 0) {
    TrainOptions one = o;
    one.hidden = hidden_grid.front();
    one.score = scores.front();
    return finish(run_pipeline(inputs_of(scores.front(), data, mapped), one, context, nullptr),
                  scores.front());
  }
  const int folds = fold_count(o, share, context.global_rows(data.X.rows()));
  std::string fallback;  // why the automatic cross-validation gave way to one held-out share
  std::optional<Validated> chosen;
  PipelineMemo memo;  // the folds' moment models, for every cross-validation below
  if (folds > 1) {
    try {
      if (linear_candidate && o.refine.enabled) {
        TrainOptions plain = o;
        plain.refine.enabled = false;
        // Only where the linear term alone wins is anything trained on all rows here.
        chosen = cross_validate(
            data, mapped, plain, context, hidden_grid, scores, folds, memo, true, true);
        if (chosen) {
          // The networks unrefined did not beat the linear term alone; refined, or from the
          // random start, they may (an interaction that the moments do not see, as the class
          // of a Titanic passenger with their sex). The best of them unrefined is refined (not
          // every candidate again: on a 43-row file of the training fuzzer that took the
          // command from 0.4 s to 1.0 s); a failure of its own leaves the linear term alone.
          std::optional<Validated> refined;
          if (chosen->network_hidden > 0) {
            try {
              refined = cross_validate(data,
                                       mapped,
                                       o,
                                       context,
                                       {chosen->network_hidden},
                                       {chosen->network_score},
                                       folds,
                                       memo,
                                       false,
                                       false,
                                       &chosen->linear);
            } catch (const DataError&) {
              refined.reset();
            }
            if (refined && refined->result.network.W2.size() == 0) {
              refined.reset();  // no network (its status would say why): the linear term stays
            }
          }
          if (refined) {
            chosen = std::move(refined);
          } else {
            chosen->result.refine.start_kept = true;
            chosen->result.refine.stop_reason =
                "not run: cross-validation chose the linear term alone, which has no units to "
                "refine (no refined network beat it by 2 standard errors either)";
          }
        }
      }
      if (!chosen) {
        chosen = cross_validate(data,
                                mapped,
                                o,
                                context,
                                hidden_grid,
                                scores,
                                folds,
                                memo,
                                linear_candidate && !o.refine.enabled);
      }
    } catch (const DataError& e) {
      if (o.validation.folds) {
        throw;  // asked for: its failure stands
      }
      // Too few rows for some fold (a few rows left to fit): one share, as asked for by 1.
      fallback = "validation: " + std::to_string(folds) + "-fold cross-validation failed (" +
                 e.what() + "); one held-out share was used instead";
    }
  }
  if (!chosen) {
    chosen = hold_out_share(data, mapped, o, context, hidden_grid, scores, share);
  }
  TrainResult result = finish(std::move(chosen->result), chosen->score);
  // The curve only when candidates were chosen among (TrainResult::candidates).
  result.candidates = choosing ? std::move(chosen->curve) : std::vector<CandidateScore>{};
  if (result.network.W2.size() > 0) {
    add_validation_metadata(
        share, result.validation, result.candidates, o.labels.task, chosen->score, result.network);
  }
  if (!fallback.empty()) {
    result.warnings.push_back(fallback);
  }
  return result;
}

}  // namespace nnlift
