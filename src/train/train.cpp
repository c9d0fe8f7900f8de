// NN-LIFT training: the stages composed (train/stages.hpp; docs/architecture.md).
// SPDX-License-Identifier: MIT
#include <chrono>

#include <nlohmann/json.hpp>

#include <nnlift/evaluate.hpp>

#include "detail/activation_traits.hpp"
#include "detail/check.hpp"
#include "detail/names.hpp"
#include "detail/parallel.hpp"
#include "detail/rng.hpp"
#include "train/stages.hpp"

namespace nnlift {
namespace {

const detail::EnumName<Init> kInitNames[] = {{Init::Tensor, "tensor"}, {Init::Random, "random"}};

using Clock = std::chrono::steady_clock;

// Wall time per stage, reported through the progress callback as each one ends.
class StageClock {
 public:
  StageClock(std::vector<StageTime>& times, const ProgressFn& progress)
      : m_times(times), m_progress(progress) {}
  void lap(const char* name) {
    const auto now = Clock::now();
    m_times.push_back({name, std::chrono::duration<double>(now - m_start).count()});
    m_start = now;
    if (m_progress) {
      m_progress(name, 1.0);
    }
  }

 private:
  std::vector<StageTime>& m_times;
  const ProgressFn& m_progress;
  Clock::time_point m_start = Clock::now();
};

// The first stage that did not succeed sets the result's status; every stage's warnings are kept.
void absorb(TrainResult& result, const detail::StageReport& stage) {
  if (stage.status != Status::Success && result.status == Status::Success) {
    result.status = stage.status;
    result.message = stage.message;
  }
  result.warnings.insert(result.warnings.end(), stage.warnings.begin(), stage.warnings.end());
}

// Unit-norm random directions in standardised coordinates (pre-activations of unit variance),
// biases U(−1, 1), small output weights, output bias at the label mean.
void random_init(const Standardizer& st,
                 Index k,
                 Index outputs,
                 double label_mean,
                 std::uint64_t seed,
                 TwoLayerNetwork& net) {
  const Index d = st.mean.size();
  detail::Rng rng(detail::derive_seed(seed, 31));
  Matrix W1s = rng.normal_matrix(k, d);
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

std::string metadata(const TrainOptions& o,
                     const TrainResult& r,
                     Index rows,
                     const Dataset& data,
                     double label_mean) {
  const MomentReport& m = r.moments;
  nlohmann::json meta;
  meta["trainer"] = "nnlift train (NN-LIFT, method of moments)";
  meta["seed"] = o.seed;
  meta["options"] = {{"hidden", o.hidden},
                     {"activation", to_string(o.activation)},
                     {"init", to_string(o.init)},
                     {"residualize", to_string(m.residualize_used)},
                     {"method", to_string(o.decompose.method)},
                     {"route", to_string(m.route)},
                     {"bias", to_string(r.bias_used)},
                     {"ridge", o.output.ridge},
                     {"refine", o.refine.enabled}};
  meta["data"] = {{"rows", rows},
                  {"inputs", data.X.cols()},
                  {"target", data.target_name},
                  {"target_mean", label_mean}};
  meta["diagnostics"] = {
      {"lambda", std::vector<double>(m.lambda.data(), m.lambda.data() + m.lambda.size())},
      {"refine_iterations", r.refine.iterations},
      {"noise_level", m.noise_level},
      {"subspace_sweeps", m.subspace_sweeps},
      {"decomposition_residual", m.decomposition_residual},
      {"train_loss", r.train_loss}};
  return meta.dump();
}

}  // namespace

const char* to_string(Init init) noexcept { return detail::name_of(kInitNames, init); }

Init parse_init(const std::string& name) { return detail::parse_name(kInitNames, name, "init"); }

void validate(const TrainOptions& o) {
  const char* where = "TrainOptions";
  detail::require(o.hidden >= 1, where, "hidden", o.hidden, ">= 1");
  if (const char* refusal = detail::traits(o.activation).refusal) {
    detail::fail(std::string("TrainOptions::activation = ") + to_string(o.activation) + ": " +
                 refusal);
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
  detail::require_nonnegative(o.output.ridge, where, "output.ridge");
  detail::require(
      o.refine.max_iterations > 0, where, "refine.max_iterations", o.refine.max_iterations, "> 0");
  detail::require_positive(o.refine.tolerance, where, "refine.tolerance");
}

TrainResult train(const Dataset& data, const TrainOptions& o, const ExecutionContext& context) {
  validate(o);
  const detail::ThreadBudget threads(context.num_threads());
  const Matrix& X = data.X;
  const Index n = X.rows(), d = X.cols(), k = o.hidden;
  detail::require_rank_fits(k, d, "train", "TrainOptions::hidden");
  if (o.directions.size() > 0 && (o.directions.rows() != k || o.directions.cols() != d)) {
    detail::fail("TrainOptions::directions is " + std::to_string(o.directions.rows()) + "x" +
                 std::to_string(o.directions.cols()) +
                 "; expected hidden x inputs = " + std::to_string(k) + "x" + std::to_string(d));
  }
  if (data.y.size() != n) {
    throw DataError("train: the data set has no target column");
  }
  const Index rows = context.global_rows(n);
  if (rows < d + 2) {
    throw DataError("train: " + std::to_string(rows) + " rows are too few for " +
                    std::to_string(d) + " inputs (at least " + std::to_string(d + 2) +
                    " are needed)");
  }
  TrainResult result;
  StageClock clock(result.stages, o.progress);
  TwoLayerNetwork& net = result.network;
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

  // Standardise (§4.1).
  const Standardizer st = fit_standardizer(X, data.feature_names, context);
  const Matrix Xs = standardize(st, X, context);
  clock.lap("standardise");

  if (o.init == Init::Random) {
    const Index outputs = labels.multiclass() ? labels.onehot.cols() : 1;
    random_init(st, k, outputs, o.labels.task == Task::Regression ? ybar : 0.0, o.seed, net);
    clock.lap("random init");
  } else {
    Matrix Ubar;  // d×k unit directions in standardised coordinates
    if (o.directions.size() > 0) {
      // Given directions a_j (original coordinates): ⟨a, x⟩ = ⟨Σ̂^{1/2} a, x̃⟩ + const.
      Ubar = (st.W_inverse * o.directions.transpose()).colwise().normalized();
      clock.lap("given directions");
    } else {
      const detail::Residuals residuals = detail::residualize_labels(Xs, y, o.moments, context);
      clock.lap("residualise");
      const detail::Subspace subspace = detail::find_subspace(
          Xs, residuals, k, o.subspace, detail::derive_seed(o.seed, 21), context);
      clock.lap("subspace");
      absorb(result, subspace);
      detail::Directions directions = detail::decompose_core(Xs, residuals, subspace, o, context);
      clock.lap("decompose");
      absorb(result, directions);
      result.moments = std::move(directions.report);
      if (directions.Ubar.size() == 0) {
        return result;  // no directions: the status says why, and there is no network
      }
      Ubar = std::move(directions.Ubar);
    }

    // Map back, then biases (§4.4) and the output layer (§4.5).
    const Vector yc = (y.array() - ybar).matrix();
    const detail::Units units = detail::map_back(Xs, yc, st, Ubar, o.activation, context);
    const detail::BiasProblem problem{X,
                                      Xs,
                                      y,
                                      yc,
                                      st,
                                      units,
                                      o.activation,
                                      o.labels.task,
                                      o.bias,
                                      o.output.ridge,
                                      o.seed,
                                      context};
    const detail::BiasFit biases = detail::fit_biases(problem, &result.bias_used);
    absorb(result, biases);
    net.W1 = units.W1;
    for (Index j = 0; j < k; ++j) {
      net.W1.row(j) *= biases.rescale(j);
    }
    net.b1 = biases.b1;
    clock.lap("biases");
    const detail::StageReport output = detail::fit_output_layer(
        hidden_layer(net, X), labels, o.labels.task, o.output, context, net);
    absorb(result, output);
    clock.lap("output layer");
  }

  if (o.refine.enabled) {
    const Matrix targets = labels.multiclass() ? labels.onehot : Matrix(y);
    const std::function<void(double)> refine_progress = [&](double fraction) {
      if (o.progress) {
        o.progress("refine (L-BFGS)", fraction);
      }
    };
    result.refine =
        detail::refine_network(Xs, targets, st, o.refine, context, net, refine_progress);
    clock.lap("refine (L-BFGS)");
  }

  training_scores(net, X, data.y, context, result);
  net.metadata_json = metadata(o, result, rows, data, ybar);
  return result;
}

}  // namespace nnlift
