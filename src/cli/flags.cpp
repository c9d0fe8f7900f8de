// The flag sets of `nnlift synth` and `nnlift train`.
// SPDX-License-Identifier: MIT
#include "cli/flags.hpp"

#include <cmath>
#include <optional>

namespace nnlift::cli {
namespace {

// Parses one named value; an unknown name is a command-line mistake naming its flag.
template <class Parse>
auto parse_flag(const char* flag, const std::string& value, Parse&& parse) {
  try {
    return parse(value);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--") + flag + ": " + e.what());
  }
}

// "auto" (nullopt) or a number, for flags whose value the library may choose.
std::optional<double> parse_auto_number(const char* flag, const std::string& value) {
  if (value == "auto") {
    return std::nullopt;
  }
  std::size_t used = 0;
  double number = 0;
  try {
    number = std::stod(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value.size()) {
    throw UsageError(std::string("--") + flag + ": '" + value + "' is neither auto nor a number");
  }
  return number;
}

// "auto" (nullopt) or an integer in [1, most].
std::optional<Index> parse_auto_count(const char* flag, const std::string& value, Index most) {
  const std::optional<double> k = parse_auto_number(flag, value);
  if (!k) {
    return std::nullopt;
  }
  if (*k < 1 || *k != std::floor(*k) || *k > static_cast<double>(most)) {
    throw UsageError(std::string("--") + flag + ": '" + value +
                     "'; expected auto or an integer in [1, " + std::to_string(most) + "]");
  }
  return static_cast<Index>(*k);
}

bool parse_on_off(const char* flag, const std::string& value) {
  if (value != "on" && value != "off") {
    throw UsageError(std::string("--") + flag + ": '" + value + "'; expected on or off");
  }
  return value == "on";
}

}  // namespace

void add_synth_flags(po::options_description& desc, SynthFlags& f) {
  SynthOptions& o = f.options;
  desc.add_options()("dim", with_default(&o.dim), "d, input dimensions")(
      "hidden", with_default(&o.hidden), "k, hidden units (k <= d)")(
      "samples", with_default(&o.samples), "n, training rows")(
      "test-samples", with_default(&o.test_samples), "m, test rows (written with --test-out)")(
      "activation", with_default(&f.activation), "sigmoid | tanh | softplus | relu")(
      "bias-range", with_default(&o.bias_range), "hidden biases ~ offset + U(-r, r)")(
      "bias-offset",
      with_default(&o.bias_offset),
      "centre of the hidden biases (all equal to it with --bias-range 0)")(
      "output-weights",
      with_default(&f.output_weights),
      "mixed (+-U(0.5,1.5)) | positive (+U(0.5,1.5)) | ones")(
      "condition",
      with_default(&o.condition),
      "0: Gaussian first-layer rows; K >= 1: singular values linspace(1, K) before the rows "
      "are normalised (1 = orthonormal rows)")(
      "ball-radius",
      with_default(&o.ball_radius),
      "R > 0: inputs uniform on the ball of radius R (bounded inputs, for --bias fourier)")(
      "noise", with_default(&o.noise), "regression label noise standard deviation")(
      "inputs",
      with_default(&f.inputs),
      "gaussian | uniform | laplace: the law of each input coordinate (independent, mean 0, "
      "variance 1), for non-Gaussian teachers; gmm[:C]: a mixture of C (default 3) Gaussians "
      "with random means and covariances (the true mixture goes into the model's metadata)")(
      "mixture-separation",
      with_default(&o.mixture_separation),
      "with --inputs gmm: the norm of the components' means (larger: tighter, more separated "
      "clusters)")("correlated",
                   po::bool_switch(&o.correlated),
                   "inputs ~ N(mu, Sigma) with random mean and covariance (default N(0, I))")(
      "task", with_default(&f.task), "regression | classification (0/1 labels, logistic output)")(
      "seed", with_default(&o.seed), "random seed; same seed, same bytes");
}

SynthOptions to_synth_options(const SynthFlags& f, int threads) {
  SynthOptions o = f.options;
  o.activation = parse_flag("activation", f.activation, parse_activation);
  o.task = parse_flag("task", f.task, parse_task);
  o.output_weights = parse_flag("output-weights", f.output_weights, parse_output_weights);
  // "gmm:C" names the mixture's component count with the law.
  const std::size_t colon = f.inputs.find(':');
  o.inputs = parse_flag("inputs", f.inputs.substr(0, colon), parse_input_law);
  if (colon != std::string::npos) {
    const std::string count = f.inputs.substr(colon + 1);
    if (o.inputs != InputLaw::Mixture || count.empty() ||
        count.find_first_not_of("0123456789") != std::string::npos || count.size() > 6) {
      throw UsageError("--inputs: '" + f.inputs +
                       "': only gmm takes a component count (gmm:C, C a whole number)");
    }
    o.mixture_components = std::stoi(count);
  }
  o.num_threads = threads;
  validate_as_flags(synth_flag_names(), [&] { validate(o); });
  return o;
}

const std::vector<std::pair<std::string, std::string>>& synth_flag_names() {
  static const std::vector<std::pair<std::string, std::string>> names = {
      {"SynthOptions::dim", "--dim"},
      {"SynthOptions::hidden", "--hidden"},
      {"SynthOptions::samples", "--samples"},
      {"SynthOptions::test_samples", "--test-samples"},
      {"SynthOptions::activation", "--activation"},
      {"SynthOptions::bias_range", "--bias-range"},
      {"SynthOptions::bias_offset", "--bias-offset"},
      {"SynthOptions::output_weights", "--output-weights"},
      {"SynthOptions::condition", "--condition"},
      {"SynthOptions::noise", "--noise"},
      {"SynthOptions::correlated", "--correlated"},
      {"SynthOptions::ball_radius", "--ball-radius"},
      {"SynthOptions::inputs", "--inputs"},
      {"SynthOptions::mixture_components", "--inputs gmm:C"},
      {"SynthOptions::mixture_separation", "--mixture-separation"},
      {"SynthOptions::task", "--task"},
      {"SynthOptions::seed", "--seed"},
      {"SynthOptions::num_threads", "--threads"},
  };
  return names;
}

// The moment stages' flags of train (score model, residualisation, weak units, subspace,
// decomposition, biases).
namespace {
void add_moment_flags(po::options_description& desc, TrainFlags& f);
void add_output_flags(po::options_description& desc, TrainFlags& f);
void add_refine_flags(po::options_description& desc, TrainFlags& f);
}  // namespace

void add_train_flags(po::options_description& desc, TrainFlags& f, bool shared_with_synth) {
  TrainOptions& o = f.options;
  if (shared_with_synth) {
    desc.add_options()("train-seed", with_default(&o.seed), "random seed of the training");
  } else {
    desc.add_options()(
        "hidden",
        po::value(&f.hidden)->required(),
        "k >= 1, hidden units, or auto: chosen on the validation rows from 1, 2, 4, ... up "
        "to min(32, max(d, 8)) (required). The moments give at most one unit per independent "
        "input direction; units beyond that (up to max(d, 1024) units) are extra units from "
        "seeded random directions, fitted by the later stages (and trained by --refine)")(
        "activation", with_default(&f.activation), "sigmoid | tanh | softplus")(
        "task",
        with_default(&f.task),
        "auto | regression | classification (auto: classification for a target with "
        "two integer values, e.g. 0/1 or -1/1, or of text labels such as yes/no, whose names "
        "the model keeps for predict and evaluate)")("seed", with_default(&o.seed), "random seed");
  }
  add_moment_flags(desc, f);
  add_output_flags(desc, f);
  add_refine_flags(desc, f);
}

namespace {

void add_moment_flags(po::options_description& desc, TrainFlags& f) {
  TrainOptions& o = f.options;
  desc.add_options()(
      "score",
      with_default(&f.score),
      "adaptive | gaussian | rankgauss | gmm | auto: the input density the moments assume. "
      "rankgauss maps each column through its empirical CDF to a Gaussian (for skewed, bounded "
      "or heavy-tailed inputs; the map is stored in the model and applied by predict); gmm fits "
      "a Gaussian mixture to the standardised inputs by EM and uses its score (for clustered, "
      "multimodal inputs; the mixture goes into the model's metadata); auto: the best of the "
      "three on the validation rows; adaptive: gaussian, and rankgauss as well when at least "
      "half the columns with more than two values are heavy-tailed (excess kurtosis above 5), "
      "and gmm as well when their median excess kurtosis is above 1 and their median "
      "|skewness| below 0.5 (leptokurtic and symmetric, as a scale mixture of Gaussians) and "
      "there are at least 10000 rows; the best of them on the validation rows")(
      "mixture-components",
      with_default(&f.mixture_components),
      "with --score gmm: C >= 1 mixture components, or auto: the lowest BIC among 1..5")(
      "mixture-covariance",
      with_default(&f.mixture_covariance),
      "with --score gmm: full | diagonal | auto (the lower BIC) covariance of each component; "
      "the mixture candidate of --score adaptive is diagonal unless full is given")(
      "residualize",
      with_default(&f.residualize),
      "none | linear | quadratic | auto: control variate subtracted from the labels (auto: "
      "quadratic where the rows are many against its features; see also "
      "--cubic-control-variate)")(
      "cubic-control-variate",
      with_default(&f.cubic_control_variate),
      "on | off: with --residualize auto, a cubic in the subspace's k coordinates for the "
      "second HOOI and (Gaussian score) the core, where the rows are at least 20 per feature "
      "(C(k + 3, 3) of them): E[(r - g) S3] + grad^3 g, the same moment with less noise")(
      "noise-threshold",
      with_default(&o.moments.noise_threshold),
      "a unit whose |lambda| is below this many times the moment tensor's noise level is "
      "reported as within noise")(
      "weak-units",
      with_default(&f.weak_units),
      "auto | keep | replace: units within the noise level (see --second-order-threshold) take "
      "their directions from the second score moment E[r S2(x)] (it sees units in a blind spot "
      "of the third moment, and curvature such as a squared input). replace: always; auto: when "
      "that network fits the training rows better; keep: never")(
      "second-order-threshold",
      with_default(&o.moments.second_order_threshold),
      "--weak-units tries second-moment directions for the units whose |lambda| is below this "
      "many times the noise level (never fewer than --noise-threshold's weak units)")(
      "subspace-sweeps",
      with_default(&o.subspace.max_sweeps),
      "HOOI sweeps at most when finding the top-k subspace")(
      "subspace-sample-rows",
      with_default(&o.moments.subspace_sample_rows),
      "where HOOI runs twice (the quadratic control variate in the subspace's coordinates), "
      "both find the subspace on a strided sample of about this many rows when there are at "
      "least 4 times as many, and one or two sweeps over all rows polish it (unless the "
      "sample's subspace is too noisy: then all rows); 0: all rows")(
      "method",
      with_default(&f.method),
      "auto | power | jennrich | als: decomposition of the k x k x k core")(
      "bias",
      with_default(&f.bias),
      "auto (lsq for regression, ratio for classification) | ratio (moment ratios, closed "
      "form) | lsq (least squares over biases and scales with the directions fixed; "
      "regression) | fourier (the paper's Procedure 2; only for inputs uniform on a ball)")(
      "fourier-radius",
      with_default(&o.bias.fourier_radius),
      "--bias fourier: frequency radius r (angular); assumes |b_j| < pi / (2 r)")(
      "fourier-cap",
      with_default(&o.bias.fourier_cap),
      "--bias fourier: frequencies within this distance eps of each direction");
}

// The output layer's and the start's flags of train.
void add_output_flags(po::options_description& desc, TrainFlags& f) {
  TrainOptions& o = f.options;
  desc.add_options()(
      "ridge",
      with_default(&f.ridge),
      "auto | lambda >= 0: output-layer ridge; column j of [hidden units, inputs] gets the "
      "penalty lambda x mean(column_j^2) (a one-hot column: lambda on its 0/1 weight, so a rare "
      "category is shrunk more). auto: chosen by exact leave-one-out (regression; generalised "
      "cross-validation when rows x columns^2 exceeds 1e9) or 3-fold cross-validation "
      "(classification)")(
      "linear-term",
      with_default(&f.linear_term),
      "auto | on | off: a linear term C x beside the hidden units, fitted with the output "
      "layer and kept by the refinement (with --init random: starting at zero). auto: on, and "
      "off with --init random (plain backprop training)")(
      "clamp-inputs",
      with_default(&f.clamp_inputs),
      "on | off: the model stores bounds for each input, the training rows' range widened by "
      "its own width on each side, and predict clamps inputs to them: the linear term and the "
      "units' slopes extrapolate that far and no further (a row far beyond the training rows, "
      "a data error or an outlier, is predicted as at the bounds). off: no bounds")(
      "eigenvalue-floor",
      with_default(&o.inputs.eigenvalue_floor),
      "input directions whose correlation-matrix eigenvalue is below this fraction of the "
      "largest (collinear columns) are dropped with a warning; constant columns too "
      "(refused instead with --strict)")(
      "init",
      with_default(&f.init),
      "tensor (method of moments) | random (needs --refine lbfgs: plain backprop training)");
}

// The refinement's and the validation's flags of train.
void add_refine_flags(po::options_description& desc, TrainFlags& f) {
  TrainOptions& o = f.options;
  desc.add_options()(
      "refine",
      with_default(&f.refine),
      "none | lbfgs: polish all parameters by L-BFGS on the training loss (backpropagation), "
      "with weight decay and early stopping on the validation rows; the point of lowest "
      "validation loss is kept, so never one worse there than the start")(
      "refine-max-iterations", with_default(&o.refine.max_iterations), "L-BFGS iterations at most")(
      "refine-tolerance", with_default(&o.refine.tolerance), "L-BFGS gradient-norm tolerance")(
      "weight-decay",
      with_default(&f.weight_decay),
      "auto | alpha >= 0: the refinement's L2 penalty alpha/2 |theta - theta0|^2 on W1, W2 "
      "and C (standardised units), theta0 the moment estimate (zero with --init random); "
      "auto: the best of c/n for c = 0.01, 0.1, ..., 1000 up to 0.1 (n training rows; the start "
      "weighs like c rows) on the validation loss, tried weakest first and stopped at the first "
      "that does no better; c = 1 alone with at least 100 training rows per parameter")(
      "refine-patience",
      with_default(&o.refine.patience),
      "early stopping: iterates without a validation loss lower by 1e-5 of itself before the "
      "refinement stops: as many as that point took to reach, at least this many and at most "
      "twice this many")(
      "refine-min-improvement",
      with_default(&o.refine.min_improvement),
      "the refined network is kept only when its validation loss beats the moment model's by "
      "at least this many standard errors of the per-row difference; else the moment model "
      "is kept, refitted on all rows (0: any improvement)")(
      "refine-random-start",
      with_default(&f.refine_random_start),
      "on | off: with 200 validation rows or more and a weak or extra unit, the refinement "
      "also runs from a seeded random start (as --init random: plain backprop, without the "
      "linear term) and keeps that network when it "
      "beats the moment start's on the validation rows by 2 standard errors of the per-row "
      "difference (a moment start can sit in a worse basin). Under cross-validation (fewer "
      "than 1,000 rows), with 40 rows or more: the chosen candidate is cross-validated from "
      "the random start too, and kept when its held-out losses beat the moment start's by 2 "
      "standard errors")(
      "refine-all-rows",
      with_default(&f.refine_all_rows),
      "on | off: once the validation rows have chosen and scored the refined network, it goes "
      "on training on all rows (the validation rows too) until its loss on the validation rows "
      "is down to its loss on the fit rows at the stopping point, or for half as many iterates "
      "again as the "
      "early-stopped run took; "
      "off: the early-stopped network")(
      "validation",
      with_default(&f.validation),
      "auto | fraction in [0, 1): training rows held out (seeded) to choose the weight decay "
      "and stopping point and to report a validation score; auto: 0.2 when something is chosen "
      "on them (--refine lbfgs, --hidden auto, --score auto, --score adaptive on heavy-tailed "
      "or leptokurtic inputs), else 0. The model is then refitted on all rows (with refinement: "
      "--refine-all-rows)")(
      "validation-folds",
      with_default(&f.validation_folds),
      "auto | K >= 1: K >= 2 chooses what the validation rows would (the refinement's weight "
      "decay and number of iterates, --hidden auto, the score model) by K-fold "
      "cross-validation: each candidate trained K times, each fold held out once, scored on "
      "all the held-out rows together; the model is then trained on all rows with those "
      "choices. The linear term alone is a candidate too (with --refine: first, without the "
      "refinement), and a network is kept only where it beats it by one standard error of the "
      "paired held-out losses (with --refine, where it does not: a refined network by two). "
      "1: one "
      "held-out share (--validation). auto: 5 when --validation is auto and its share would "
      "hold fewer than 200 rows (fewer than 1,000 training rows), else 1. "
      "--refine-all-rows applies to one held-out share");
}

}  // namespace

TrainOptions to_train_options(const TrainFlags& f) {
  TrainOptions o = f.options;
  o.activation = parse_flag("activation", f.activation, parse_activation);
  o.moments.residualize = parse_flag("residualize", f.residualize, parse_residualize);
  o.moments.weak_units = parse_flag("weak-units", f.weak_units, parse_weak_units);
  o.decompose.method = parse_flag("method", f.method, parse_decompose_method);
  o.bias.method = parse_flag("bias", f.bias, parse_bias_method);
  o.init = parse_flag("init", f.init, parse_init);
  if (f.refine != "none" && f.refine != "lbfgs") {
    throw UsageError("--refine: unknown refinement '" + f.refine + "'; expected none or lbfgs");
  }
  o.refine.enabled = f.refine == "lbfgs";
  o.output.ridge = parse_auto_number("ridge", f.ridge);
  // auto: on, and off with --init random (the baseline: plain backprop training).
  if (f.linear_term == "auto") {
    o.output.linear_term = o.init != Init::Random;
  } else if (f.linear_term == "on" || f.linear_term == "off") {
    o.output.linear_term = f.linear_term == "on";
  } else {
    throw UsageError("--linear-term: '" + f.linear_term + "'; expected auto, on or off");
  }
  o.clamp_inputs = parse_on_off("clamp-inputs", f.clamp_inputs);
  o.moments.cubic_control_variate = parse_on_off("cubic-control-variate", f.cubic_control_variate);
  o.refine.random_start = parse_on_off("refine-random-start", f.refine_random_start);
  o.refine.all_rows = parse_on_off("refine-all-rows", f.refine_all_rows);
  o.refine.weight_decay = parse_auto_number("weight-decay", f.weight_decay);
  o.score = parse_flag("score", f.score, parse_score_model);
  o.mixture.covariance =
      parse_flag("mixture-covariance", f.mixture_covariance, parse_mixture_covariance);
  if (const std::optional<Index> c =
          parse_auto_count("mixture-components", f.mixture_components, 1000)) {
    o.mixture.components = *c;
  }
  if (!f.hidden.empty()) {
    if (f.hidden == "auto") {
      o.hidden = 0;
    } else {
      const std::optional<double> k = parse_auto_number("hidden", f.hidden);
      if (!k || *k < 1 || *k != std::floor(*k) || *k > 1e9) {
        throw UsageError("--hidden: '" + f.hidden + "'; expected auto or an integer >= 1");
      }
      o.hidden = static_cast<Index>(*k);
    }
  }
  o.validation.fraction = parse_auto_number("validation", f.validation);
  if (const std::optional<Index> k =
          parse_auto_count("validation-folds", f.validation_folds, 1000)) {
    o.validation.folds = static_cast<int>(*k);
  }
  if (f.task != "auto") {
    o.labels.task = parse_flag("task", f.task, parse_task);
  }
  validate_as_flags(train_flag_names(), [&] { validate(o); });
  return o;
}

const std::vector<std::pair<std::string, std::string>>& train_flag_names() {
  static const std::vector<std::pair<std::string, std::string>> names = {
      {"TrainOptions::hidden", "--hidden"},
      {"TrainOptions::activation", "--activation"},
      {"TrainOptions::init", "--init"},
      {"TrainOptions::labels.task", "--task"},
      {"TrainOptions::moments.residualize", "--residualize"},
      {"TrainOptions::moments.noise_threshold", "--noise-threshold"},
      {"TrainOptions::moments.second_order_threshold", "--second-order-threshold"},
      {"TrainOptions::moments.weak_units", "--weak-units"},
      {"TrainOptions::moments.cubic_control_variate", "--cubic-control-variate"},
      {"TrainOptions::subspace.max_sweeps", "--subspace-sweeps"},
      {"TrainOptions::moments.subspace_sample_rows", "--subspace-sample-rows"},
      {"TrainOptions::decompose.method", "--method"},
      {"TrainOptions::bias.method", "--bias"},
      {"TrainOptions::bias.fourier_radius", "--fourier-radius"},
      {"TrainOptions::bias.fourier_cap", "--fourier-cap"},
      {"TrainOptions::output.ridge", "--ridge"},
      {"TrainOptions::inputs.eigenvalue_floor", "--eigenvalue-floor"},
      {"StandardizerOptions::eigenvalue_floor", "--eigenvalue-floor"},
      {"TrainOptions::refine.enabled", "--refine lbfgs"},
      {"TrainOptions::refine.max_iterations", "--refine-max-iterations"},
      {"TrainOptions::refine.tolerance", "--refine-tolerance"},
      {"TrainOptions::refine.weight_decay", "--weight-decay"},
      {"TrainOptions::refine.patience", "--refine-patience"},
      {"TrainOptions::refine.min_improvement", "--refine-min-improvement"},
      {"TrainOptions::validation.fraction", "--validation"},
      {"TrainOptions::validation.folds", "--validation-folds"},
      {"TrainOptions::score", "--score"},
      {"TrainOptions::mixture.components", "--mixture-components"},
      {"TrainOptions::mixture.covariance", "--mixture-covariance"},
      {"TrainOptions::seed", "--seed"},
  };
  return names;
}

}  // namespace nnlift::cli
