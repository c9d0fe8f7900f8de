// Training a two-layer network by the method of moments (NN-LIFT), without backpropagation.
// The pipeline and where to extend it: docs/architecture.md.
// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nnlift/dataset.hpp>
#include <nnlift/decompose.hpp>
#include <nnlift/execution.hpp>
#include <nnlift/input_map.hpp>
#include <nnlift/mixture.hpp>
#include <nnlift/model.hpp>
#include <nnlift/moments.hpp>

namespace nnlift {

/// How the first-layer biases are estimated once the directions are known.
enum class BiasMethod {
  Auto,   ///< lsq for regression (the more accurate on planted data), ratio for classification
  Ratio,  ///< moment-ratio estimator (ALGORITHM.md §4.4b): s κ2(b)/κ1(b) = c2/c1 per unit
  Lsq,    ///< least squares with fixed directions (§4.4c): L-BFGS on (b_j, s_j), output layer
          ///< solved in closed form at each step; starts from the ratio estimate. Regression only.
  Fourier,  ///< the paper's Procedure 2 (§4.4a): phase of the label's Fourier transform on a
            ///< cap of frequencies around each direction. Needs a constant input density on a
            ///< bounded support (uniform on a ball); under Gaussian inputs the estimator has no
            ///< finite mean, and train() warns when the inputs do not look uniform on a ball.
};
const char* to_string(BiasMethod method) noexcept;
/// \throws std::invalid_argument listing the accepted names.
BiasMethod parse_bias_method(const std::string& name);

/// What becomes of units whose tensor weight is within the moment tensor's noise (weak units).
enum class WeakUnits {
  /// Both ways, and the one whose network fits the training rows better (the same number of
  /// parameters either way).
  Auto,
  Keep,     ///< the tensor's directions, as they are
  Replace,  ///< directions from the second score moment (see MomentOptions::weak_units)
};
const char* to_string(WeakUnits w) noexcept;
/// \throws std::invalid_argument listing the accepted names.
WeakUnits parse_weak_units(const std::string& name);

/// Where the parameters start.
enum class Init {
  Tensor,  ///< the method-of-moments estimate (NN-LIFT)
  /// Random weights, and with OutputOptions::linear_term the linear term at zero; with refine
  /// and without the linear term, plain backpropagation training (the baseline).
  Random,
};
const char* to_string(Init init) noexcept;
/// \throws std::invalid_argument listing the accepted names.
Init parse_init(const std::string& name);

/// A report from a stage: its name and the fraction done. Called with 1 when each stage ends, and
/// with fractions in [0, 1) during the L-BFGS refinement (an upper bound: the share of the
/// iteration budget its loss evaluations have used).
using ProgressFn = std::function<void(const std::string& stage, double fraction)>;

/// Stage "labels": what the target means.
struct LabelOptions {
  Task task = Task::Regression;  ///< classification: the distinct labels (2..100) are classes
};

/// Stage "moments": the control variate subtracted from the labels before the moments (§4.2b).
struct MomentOptions {
  Residualize residualize = Residualize::Auto;
  /// With residualize = Auto, a cubic control variate g in the subspace's coordinates z = Qᵀx̃
  /// where the rows are many against its C(k + 3, 3) features (n >= 20 of them per feature,
  /// n C(k + 3, 3)² <= 2·10¹⁰): the second HOOI and (under the Gaussian score) the core then use
  /// E[(r − g) S3] + ∇³g, an identity (E[g S3] = E[∇³g]) with the noise of r − g.
  bool cubic_control_variate = true;
  /// A unit is reported weak when |λ_j| < noise_threshold × the core's estimated noise level.
  double noise_threshold = 3.0;  ///< >= 0
  /// Weak units can take their directions from the second score moment M2 = E[r S2(x̃)] of the
  /// linearly residualised labels instead: for a network M2 = Σ_j a2_j κ2(b_j) ū_j ū_jᵀ, and κ2
  /// is large where κ3 vanishes (a unit in a blind spot of the third moment), and it sees what
  /// is even in x, such as a squared input. The weak units take the top eigenvectors (by
  /// |eigenvalue|) of M2 less the strong units' least-squares share.
  WeakUnits weak_units = WeakUnits::Auto;
  /// The units tried with directions from M2 (weak_units = Auto or Replace): those with |λ_j| <
  /// max(noise_threshold, second_order_threshold) × the noise level, the weak units and those
  /// near them, whose tensor directions are still noisy (planted d = 50 teachers with a unit
  /// at 4-5× the noise level: min |cos| 0.949-0.985 with the tensor's directions, 0.983-0.995
  /// with these, docs/benchmarks.md); the weak units alone when that would be every unit (M2
  /// less the other units' share needs some).
  /// >= 0.
  double second_order_threshold = 6.0;
  /// Where HOOI runs twice (the quadratic control variate in z = Qᵀx̃; Gaussian score), both
  /// find the subspace on a strided sample of about this many rows when there are at least four
  /// times as many, and a last HOOI on all rows only polishes it (the tail rule stops it after
  /// one or two sweeps). The same rows for any partition of them. 0: all rows. >= 0.
  /// (200,000 before session 41: d = 100, k = 10, 10⁶ rows, the subspace stage took 0.43 s in
  /// place of 0.21 s, at the same sweeps over all rows and the same min |cos| and test error.)
  Index subspace_sample_rows = 100000;
};

/// Stage "biases".
struct BiasOptions {
  BiasMethod method = BiasMethod::Auto;
  double fourier_radius = 0.5;  ///< Fourier: frequency radius r (angular); finite, > 0
  double fourier_cap = 0.3;     ///< Fourier: cap of unit directions within ε; in (0, √2)
};

/// Stage "output layer": ridge (regression), logistic or softmax regression (classification) of
/// the targets on [σ(W1 x + b1), x, 1].
struct OutputOptions {
  /// λ: column j of the design gets the penalty λ · mean(F_j²), and a one-hot column of the
  /// inputs (Standardizer::one_hot_columns) λ on its weight in 0/1 units. Unset: chosen by exact
  /// leave-one-out (regression; grid 1e-8 … 10; generalised cross-validation when rows × p²
  /// exceeds 1e9) or 3-fold cross-validation (classification; grid 1e-5 … 1): whether the hidden
  /// units are used by the log-loss with their parameters charged, then the lowest log-loss
  /// among the ridges whose error rate is within one standard error of the fewest errors.
  /// Finite, >= 0 when set.
  std::optional<double> ridge;
  /// Fit a linear term C x beside the hidden units (f = W2 σ(W1 x + b1) + C x + b2).
  bool linear_term = true;
  /// false: the hidden units get no output weights (W2 = 0), so f is the linear term alone, in
  /// the network's shape; the ridge is chosen as above for that model. This is the candidate
  /// that cross-validation weighs the network against on few rows (TrainResult::units_left_out).
  /// Needs linear_term.
  bool hidden_units = true;
};

/// Stage "refine": optional L-BFGS on all parameters (backpropagation gradients).
struct RefineOptions {
  bool enabled = false;
  int max_iterations = 500;  ///< L-BFGS iterations at most; > 0
  double tolerance = 1e-7;   ///< gradient-norm tolerance; finite, > 0
  /// L2 weight decay α: the objective adds α/2 ‖θ − θ0‖² over the weights W1, W2 and C (in
  /// standardised coordinates and standardised regression targets), θ0 the start: the moment
  /// estimate (so the decay pulls toward it), or zero with init = Random. Unset: chosen from
  /// c / n for c = 0.01, 0.1, ..., 1000, up to 0.1 (n the training rows: the start weighs like c
  /// rows), on the validation loss, weakest first, stopping at the first that does no better
  /// than the one before; c = 1 alone where there are at least 100 training rows per parameter
  /// (the grid's runs there end within the validation loss's noise of one another). Finite,
  /// >= 0 when set.
  std::optional<double> weight_decay;
  /// Early stopping: the search stops after max(patience, min(i, 2 patience)) iterates (points
  /// that lowered the training objective) without progress, a validation loss lower by 10⁻⁵ of
  /// itself than the last progress's, i the last progress's iterate, so that the wait grows with
  /// the run up to twice the patience; > 0. The point kept is the lowest validation loss seen.
  /// Only with validation rows.
  int patience = 50;
  /// With validation rows: the refined point is kept only when it beats the start there by at
  /// least this many standard errors of the paired per-row loss difference; else the start is
  /// kept (RefineReport::start_kept), and train() refits the moment model on all rows as it does
  /// without refinement. The refined point is the lowest validation loss over every decay and
  /// iterate tried, so its own score there is optimistic: 2, the random start's margin too
  /// (docs/benchmarks.md, session 16: ten splits of wine gave 0.967 at 1 and 0.976 at 2).
  /// 0: any improvement. Finite, >= 0.
  double min_improvement = 2.0;
  /// With at least 200 validation rows, a tensor start and some unit the moments do not vouch for
  /// (a weak unit, within the noise level, or an extra unit): the refinement also runs from a
  /// seeded random start (plain backprop: init = Random without the linear term, which the network
  /// kept gets at zero), and that network is kept
  /// when it beats the moment start's on the validation rows by 2 standard errors of the paired
  /// per-row loss difference (RefineReport::random_start). A moment start can sit in a worse basin
  /// than a random one; on fewer rows the comparison picks the random run by chance.
  bool random_start = true;
  /// With validation rows, when the refined network is kept (not its start): it goes on training
  /// from where it stopped on all rows, the validation rows too, with the same weight decay,
  /// until its loss on the validation rows is down to its loss on the fit rows at the stopping
  /// point, or for half as many iterates again as the early-stopped run took (at least one;
  /// RefineReport::all_rows).
  /// The early-stopped network is the one the validation rows chose and scored; this spends them
  /// on the fit, as the moment model is refitted on all rows.
  bool all_rows = true;
};

/// The validation split: a seeded share of the training rows (chosen by a hash of the row's
/// global index, so any partition of the rows gives the same split) held out to choose what is
/// chosen automatically and to report a validation score.
struct ValidationOptions {
  /// In [0, 1). Unset: 0.2 when the refinement is on (its weight decay and stopping point are
  /// chosen on it), else 0. After the validation score is taken the rows are used for the fit:
  /// without refinement the model is refitted on all rows; with it, the refined network goes on
  /// training on all rows (RefineOptions::all_rows), or the moment model is refitted when the
  /// refinement kept it.
  std::optional<double> fraction;
  /// K-fold cross-validation instead of one held-out share, for few rows, where one share's
  /// choice is noise (docs/benchmarks.md, session 20: nine held-out rows kept a refinement that
  /// took a test R² from 0.65 to −0.58). Rows go to K folds by a hash of (seed, global row index);
  /// each candidate (hidden = auto, the score models) is trained K times, each fold held out
  /// once, and scored on the pooled held-out rows. With the refinement, each fold's run records
  /// the held-out loss of every iterate at every weight decay of the grid, and the decay and
  /// iterate count of the lowest pooled loss are chosen; the refinement is kept when it beats the
  /// moment model there by RefineOptions::min_improvement standard errors of the pooled per-row
  /// difference. The model is then trained on all rows with those choices (the refinement for
  /// exactly that many iterates, without early stopping). 1: one held-out share (`fraction`).
  /// Unset: kCrossValidationFolds when `fraction` is unset and its share would hold fewer than
  /// kCrossValidationRows rows, else 1 (and 1, with a warning, when the automatic folds fail:
  /// some fold leaves too few rows to fit). Only used when something is chosen. >= 1 when set;
  /// not with `fraction` unless 1.
  std::optional<int> folds;
};

/// ValidationOptions::folds unset: the folds of cross-validation, used when the automatic
/// validation share would hold fewer than kCrossValidationRows rows (fewer than 1,000 training
/// rows at the share 0.2).
inline constexpr int kCrossValidationFolds = 5;
inline constexpr Index kCrossValidationRows = 200;
/// How many standard errors of the paired per-row difference of held-out losses a network must
/// beat the linear term alone by, where cross-validation weighs the two (TrainResult::
/// units_left_out). tools/bench_smalldata (60 sets, 5 seeds): at 1, MASS's mammals went from
/// R² −0.178 to 0.138 (ridge 0.001) and no set lost more than 0.001; at 2, cpus lost 0.039
/// (docs/benchmarks.md, session 24).
inline constexpr double kLinearCandidateMargin = 1.0;

/// With extra units (k > d), at most this many hidden units in all (TrainOptions::hidden <=
/// max(d, kMaxHiddenUnits)): the classes' output layer costs O(n k²) per Newton step (k = 1,024 on
/// 2,000 rows: 20 s), and k = 100,000 failed for memory after 21 s (in an 8 GB address space).
inline constexpr Index kMaxHiddenUnits = 1024;
/// The most hidden units on d inputs: max(d, kMaxHiddenUnits).
inline Index max_hidden_units(Index d) { return d > kMaxHiddenUnits ? d : kMaxHiddenUnits; }

/// Options by stage. Fields that the pipeline derives (the ranks, seeds and thread counts of the
/// sub-options) are not user fields: leave them at their defaults, or validate() names them.
struct TrainOptions {
  /// k hidden units, k >= 1; 0: chosen on the validation rows from 1, 2, 4, ... up to
  /// min(32, max(d, 8)) (every candidate is reported in TrainResult::candidates). The moments give
  /// at most one unit per independent input direction; units beyond are extra units
  /// (TrainResult::extra_units).
  Index hidden = 0;
  Activation activation = Activation::Sigmoid;  ///< sigmoid, tanh or softplus (not relu)
  Init init = Init::Tensor;                     ///< Random requires refine.enabled
  /// The input density the score function assumes: Gaussian (as they are), RankGauss (each
  /// column mapped to marginally Gaussian; the map is stored in the network) or Auto (the better
  /// on the validation rows).
  /// Mixture: a Gaussian mixture fitted by EM to the standardised inputs (options in `mixture`),
  /// whose score S3 = Σ_c r_c(x)[z_c^{⊗3} − sym(z_c ⊗ Σ_c⁻¹)] replaces the Gaussian one in every
  /// moment (ALGORITHM.md §2.5); the mixture goes into the model's metadata.
  ScoreModel score = ScoreModel::Adaptive;
  /// The mixture of score = Mixture (its seed is derived from `seed`: leave it 0).
  MixtureOptions mixture;
  LabelOptions labels;
  /// Stage "standardise": constant columns and collinear directions (correlation eigenvalue
  /// below the floor) are dropped with a warning, or refused when drop_degenerate is false.
  StandardizerOptions inputs;
  MomentOptions moments;
  /// HOOI subspace of the moment tensor. rank, seed and start are derived (rank = hidden).
  /// Defaults here: max_sweeps 10, tolerance 1e-3, noise_tolerance 0.1.
  SubspaceOptions subspace = default_subspace();
  /// Decomposition of the k×k×k core. rank and seed are derived, and its own subspace options
  /// are unused (the core is already k×k×k).
  DecomposeOptions decompose;
  BiasOptions bias;
  OutputOptions output;
  RefineOptions refine;
  ValidationOptions validation;
  /// Optional k×d first-layer directions (rows, original coordinates) to use instead of the
  /// tensor stages: for studying the bias and output steps on their own (reproduction E8).
  Matrix directions;
  std::uint64_t seed = 0;  ///< every stage's seed is derived from it
  ProgressFn progress;     ///< optional; called from the calling thread only
  /// The trained network clamps its inputs to the training rows' range widened by its own
  /// width on each side (TwoLayerNetwork::input_low, input_high; one more read of the rows in
  /// memory, none when streaming). Without it, the linear term and the units' slopes
  /// extrapolate without end: one test county of ggplot2's midwest, Cook, with 2.4 times the
  /// training rows' largest population, got a college share of -53% from a refined network
  /// (collinear count columns whose large coefficients cancel on the training rows); MASS's
  /// road gave a test R² of -8.4. Within one width of the range the network still extrapolates
  /// (MASS's trees and Insurance need it). false: no bounds.
  bool clamp_inputs = true;

  static SubspaceOptions default_subspace() {
    SubspaceOptions s;
    s.tolerance = 1e-3;
    s.noise_tolerance = 0.1;
    return s;
  }
};

/// \throws std::invalid_argument naming the first violated field ("TrainOptions::refine.
/// max_iterations = 0; must be > 0").
void validate(const TrainOptions& options);

struct StageTime {
  std::string name;
  double seconds = 0;
};

/// What the tensor stages (subspace, core decomposition, noise level) found.
struct MomentReport {
  Residualize residualize_used = Residualize::None;
  bool quadratic_in_subspace = false;  ///< the core also used a quadratic control variate in Qᵀx
  /// The core also used a cubic control variate in z = Qᵀx̃ (residualize = Auto, where the rows
  /// are many against its features): E[r S3](Q, Q, Q) = E[(r − g) S3](Q, Q, Q) + ∇³g.
  bool cubic_in_subspace = false;
  int subspace_sweeps = 0;  ///< HOOI sweeps over all rows
  /// Rows of the sample the subspace's start was found on (MomentOptions::subspace_sample_rows;
  /// 0: none), and the HOOI sweeps over it.
  Index subspace_sample_rows = 0;
  int subspace_sample_sweeps = 0;
  /// σ_k/σ_{k+1} of the last HOOI unfolding formed in full: decompose's sweeps under the
  /// Gaussian score, directed by the core, form only its top k (the gap is then the sample's, or
  /// the subspace stage's first sweep's)
  double subspace_gap = 0;
  DecomposeMethod route = DecomposeMethod::Auto;  ///< the decomposition route taken
  double decomposition_residual = 0;              ///< relative residual of the core fit
  Vector lambda;                                  ///< tensor weight λ_j per unit (standardised)
  double noise_level = 0;         ///< estimated spectral norm of the core tensor's noise
  std::vector<Index> weak_units;  ///< units with |λ_j| < noise_threshold × noise_level
  /// The units tried with directions from the second moment (MomentOptions::
  /// second_order_threshold): those with |λ_j| < max(noise_threshold, second_order_threshold) ×
  /// noise_level, or the weak units when that is every unit.
  std::vector<Index> second_order_candidates;
  /// The units whose directions came from the second moment instead (MomentOptions::
  /// weak_units): empty, or second_order_candidates.
  std::vector<Index> second_order_units;
  /// Units of a CP degeneracy: each nearly parallel (|cos| > 0.95) to a stronger unit whose λ
  /// it nearly cancelled. The pair is merged into the stronger unit (λ_j = 0 here), and these
  /// units' directions come from the second moment instead (as for weak units).
  std::vector<Index> degenerate_units;
};

/// What the refinement did.
struct RefineReport {
  int iterations = 0;            ///< L-BFGS iterations done, or loss evaluations when stopped early
  double loss_before = 0;        ///< training loss of the initial estimate
  std::string stop_reason;       ///< why L-BFGS stopped
  double weight_decay = 0;       ///< the weight decay of the run kept
  bool diverged = false;         ///< the kept run met a non-finite loss (its best point is kept)
  int best_iterate = 0;          ///< the iterate kept (0: the start)
  double validation_before = 0;  ///< validation loss of the initial estimate (with validation)
  double validation_after = 0;   ///< validation loss of the point kept
  /// With validation rows: the best refined point's mean per-row validation-loss improvement on
  /// the start, and its standard error.
  double improvement = 0;
  double improvement_se = 0;
  /// The start was kept: no refined point beat it on the validation rows by
  /// RefineOptions::min_improvement standard errors.
  bool start_kept = false;
  /// RefineOptions::random_start: the network kept was refined from the random start, which beat
  /// the moment start's refinement on the validation rows; `random_tried`: that start was run.
  bool random_start = false;
  bool random_tried = false;
  /// RefineOptions::all_rows: the network went on training on all rows for all_rows_iterates
  /// iterates, and why that stopped. The other fields describe the early-stopped run.
  bool all_rows = false;
  int all_rows_iterates = 0;
  std::string all_rows_stop;
};

/// One candidate tried on the validation rows (hidden = auto or score = auto).
struct CandidateScore {
  Index hidden = 0;
  ScoreModel score = ScoreModel::Gaussian;
  double loss = 0;           ///< validation MSE (regression) or log-loss (classification)
  bool hidden_units = true;  ///< false: the linear term alone (OutputOptions::hidden_units)
};

/// Scores on the validation rows (all zero when there were none).
struct ValidationReport {
  Index rows = 0;       ///< validation rows over all parts (0: no validation)
  int folds = 1;        ///< > 1: cross-validation, its held-out rows pooled (all rows)
  double r2 = 0;        ///< regression
  double mse = 0;       ///< regression
  double accuracy = 0;  ///< classification
  double log_loss = 0;  ///< classification
};

struct TrainResult {
  TwoLayerNetwork network;  ///< weights in the original input coordinates
  /// Success unless a stage reported otherwise; the first such stage's status and message.
  Status status = Status::Success;
  std::string message;
  std::vector<StageTime> stages;             ///< wall time per stage, in order
  MomentReport moments;                      ///< empty with init = Random or given directions
  BiasMethod bias_used = BiasMethod::Ratio;  ///< the bias estimator actually used
  RefineReport refine;
  double output_ridge = 0;  ///< the output layer's λ (chosen or given)
  /// The cross-validation found that the hidden units do not help: their output weights are
  /// zero and the model is the linear term.
  bool output_linear_only = false;
  /// Hidden units beyond the inputs' independent directions (k > rank; the moments give at most
  /// one unit per direction): they start from seeded random directions and biases, and the
  /// bias estimator, the output layer and the refinement fit them with the others.
  Index extra_units = 0;
  double train_loss = 0;      ///< regression: MSE; classification: log-loss
  double train_accuracy = 0;  ///< classification only
  ValidationReport validation;
  std::vector<CandidateScore> candidates;  ///< the curve, when something was chosen
  /// Cross-validation chose the linear term alone over every network (the network's hidden
  /// units have zero output weights). Where candidates are cross-validated (hidden = 0 or
  /// score = Auto, or Adaptive on heavy-tailed inputs, on few rows: ValidationOptions::folds),
  /// without the refinement and with the linear term, the linear term alone is a candidate too,
  /// and the best network is kept only where it beats it by kLinearCandidateMargin standard
  /// errors of the paired per-row difference of held-out losses.
  bool units_left_out = false;
  ScoreModel score_used = ScoreModel::Gaussian;
  /// score = Adaptive: the inputs' tails, which decide whether the rank-Gauss map is tried.
  InputTails input_tails;
  /// score = Mixture: the mixture fitted to the standardised inputs, and its fit.
  GaussianMixture mixture;
  MixtureCandidate mixture_fit;
  std::vector<std::string> warnings;
};

/// Trains f(x) = W2 σ(W1 x + b1) + b2 on a data set by NN-LIFT (ALGORITHM.md §4.7), as a
/// sequence of stages (docs/architecture.md): labels → standardise → residualise → subspace →
/// decompose → map back → biases → output layer → refine. No backpropagation anywhere, unless
/// `refine` asks for a local L-BFGS polish of all parameters; with init = Random that is plain
/// backpropagation training, the baseline NN-LIFT is compared against.
///
/// `data` holds this part's rows; `context` says how they combine with other parts' rows (MPI
/// ranks): every pass over rows goes through it, so each part returns the same model.
/// \throws std::invalid_argument for invalid options (naming the field);
///         DataError for data that cannot be trained on (a singular input covariance, too few
///         rows, a target that does not fit the task, no target column).
/// Threads: bitwise identical results for any context.num_threads().
TrainResult train(const Dataset& data,
                  const TrainOptions& options,
                  const ExecutionContext& context = ExecutionContext());

}  // namespace nnlift
