// The stages of NN-LIFT training, each a function with its own options and a small result.
// train() (train.cpp) composes them; docs/architecture.md draws the pipeline.
// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <nnlift/train.hpp>

#include "detail/standard_rows.hpp"

namespace nnlift::detail {

/// Regression targets at most this large in magnitude: the output layer sums their squares
/// (train and the streamed trainer refuse larger ones, naming the row).
inline constexpr double kLargestTarget = 1e150;

/// What every stage reports besides its product: a status (Success unless something went
/// wrong), a message for a non-success status, and warnings.
struct StageReport {
  Status status = Status::Success;
  std::string message;
  std::vector<std::string> warnings;
};

// ---- around the stages (train.cpp) ------------------------------------------------------------

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
inline void absorb(TrainResult& result, const detail::StageReport& stage) {
  if (stage.status != Status::Success && result.status == Status::Success) {
    result.status = stage.status;
    result.message = stage.message;
  }
  result.warnings.insert(result.warnings.end(), stage.warnings.begin(), stage.warnings.end());
}

/// The fewest rows a training (or the fit part of a validation split) takes.
constexpr Index kMinTrainRows = 4;

/// \throws DataError when `rows` (over all parts) are too few to train on (fewer than
/// kMinTrainRows).
void require_min_rows(Index rows);

/// The network's metadata: options, the data's shape and the diagnostics of the run.
std::string metadata(const TrainOptions& o,
                     const TrainResult& r,
                     Index rows,
                     Index inputs,
                     const std::string& target,
                     double label_mean);

/// Warnings for the columns the standardisation dropped (constant, collinear), in the result.
/// \throws DataError when fewer independent directions than the k units that need one remain.
void report_standardizer(const Standardizer& st,
                         const std::vector<std::string>& feature_names,
                         Index rows,
                         Index k,
                         TrainResult& result);

// ---- labels (labels.cpp) ----------------------------------------------------------------------

struct Labels : StageReport {
  Vector y;                     ///< working labels: y, 0/1 for two classes, y_θ for c >= 3
  Matrix onehot;                ///< local rows × c one-hot targets when c >= 3, else empty
  std::vector<double> classes;  ///< classification: the distinct label values, ascending
  Vector codes;                 ///< classification: each class's working label (0/1, or θ)
  /// c >= 3 classes: on every part, also one holding no rows (its one-hot block is 0 × c).
  bool multiclass() const noexcept { return onehot.cols() > 0; }
};

/// Classification: the distinct labels (over all parts) are the classes. Two classes become 0/1
/// labels; for c >= 3 the moments see y_θ = θ_class for a random θ ∈ R^c (ALGORITHM.md §8.3 (i)).
/// \throws DataError for fewer than 2 or more than 100 distinct labels.
Labels encode_labels(const Dataset& data,
                     const LabelOptions& options,
                     std::uint64_t seed,
                     const ExecutionContext& context);

/// Targets for rows labelled y under an existing encoding: y (regression or two classes: 1 for
/// the second class), or one-hot rows (a label outside the classes: a row of zeros).
Matrix encode_targets(const Vector& y, const Labels& labels);

// ---- tensor stages (tensor_stages.cpp) ---------------------------------------------------------

/// Residualise: centred labels with a control variate subtracted (§4.2b). r_low has degree <= 1
/// (for M2, which may not see a quadratic), r the chosen degree (for T).
struct Residuals : StageReport {
  Residualize used = Residualize::None;
  Vector r_low;
  Vector r;
};
/// `labels`: E[y] and E[(x − μ) y] of y over these rows, from the standardising pass
/// (detail::fit_standardizer_and_labels); `st` the standardiser of that pass.
Residuals residualize_labels(const StandardRows& Xs,
                             const Vector& y,
                             const Standardizer& st,
                             const LabelMoments& labels,
                             const MomentOptions& options,
                             const ExecutionContext& context);

/// Subspace: M2's top-k eigenvectors (× eigenvalue) plus a random sketch, then HOOI (§4.3b.1).
struct Subspace : StageReport {
  Matrix Q;        ///< d×k orthonormal
  Matrix M2;       ///< d×d second score moment E[r_low S2(x̃)] that started HOOI
  int sweeps = 0;  ///< HOOI sweeps over all rows
  double gap = 0;
  Index sample_rows = 0;  ///< rows of the sample Q and M2 come from (0: all rows)
  int sample_sweeps = 0;  ///< HOOI sweeps over the sample
  /// From a sample: the coefficients of the quadratic control variate in z = Qᵀx̃ fitted on its
  /// rows (detail::quadratic_coefficients), and the core T(Q, Q, Q) of its rows under their labels
  /// less it (k×k²), for decompose_core's first sweep.
  Vector quadratic_beta;
  Matrix core;
};
/// find_subspace samples its rows only when they are at least this many times sample_rows.
inline constexpr Index kSampleFactor = 4;
/// `mixture`: the score of a fitted input mixture; null: the standard Gaussian's (here and below).
/// `first_sweep_only` (core_quadratic: decompose_core's HOOI follows): one HOOI sweep, and not
/// converging is no failure. Then, under the Gaussian score and with at least kSampleFactor ×
/// `sample_rows` rows (MomentOptions::subspace_sample_rows; 0: never), Q comes from a strided
/// sample of about sample_rows rows, HOOI under the quadratic control variate in z included,
/// and so does M2 (second_moment_used says when to compute it on all rows).
Subspace find_subspace(const StandardRows& Xs,
                       const MixtureScore* mixture,
                       const Residuals& labels,
                       Index k,
                       const SubspaceOptions& options,
                       bool first_sweep_only,
                       Index sample_rows,
                       std::uint64_t seed,
                       const ExecutionContext& context);

/// The subspace from a moment tensor T and the second moment M2 whose top-k eigenvectors start
/// HOOI (the part of find_subspace after the moments).
Subspace subspace_from(const SymmetricTensor3& T,
                       const Matrix& M2,
                       Index k,
                       const SubspaceOptions& options,
                       std::uint64_t seed);

/// Whether M2 gives some units their directions (replace_degenerate_units, second_order_starts):
/// a sampled subspace's M2 is then computed again on all rows.
bool second_moment_used(const MomentReport& report, const MomentOptions& options);

/// Whether the core takes a quadratic control variate in z = Qᵀx̃ (the full quadratic was too
/// costly, and the rows are many against the k-dimensional one's features, or it was asked for).
/// Then HOOI runs again under those lower-variance labels, and find_subspace's HOOI before it
/// needs only its first sweep.
bool core_quadratic(const Residuals& labels, const MomentOptions& options, Index rows, Index k);

// ---- the units' projections (map_back.cpp) -----------------------------------------------------

/// The rows in the decompose stage's subspace basis: Z = X̃Q (local rows × k), which the stages
/// after the directions read instead of the inputs where the units' directions lie in span(Q).
struct RowsInBasis {
  Matrix Q;  ///< d×k, orthonormal columns
  Matrix Z;  ///< local rows × k
};

/// The rows' projections T = X̃Ū on unit directions Ū (d×m, standardised coordinates): from
/// Z = X̃Q as Z·(QᵀŪ) when every direction lies in span(Q), n·k·m multiply-adds in place of a
/// pass over the inputs' n·d·m (d = 100, k = 10: a tenth); else from the rows themselves.
class Projections {
 public:
  /// `basis` may be null (no subspace: given directions, the streamed trainer); it and Xs must
  /// outlive this.
  Projections(const StandardRows& Xs, const RowsInBasis* basis, const Matrix& Ubar);
  /// Whether they are read from Z.
  bool in_basis() const { return m_Z != nullptr; }
  /// Local rows [b, b + c), as a block product: blocks of the context's global grid give the same
  /// bits for any partition.
  Matrix block(Index b, Index c) const;
  /// Local row i, as a single-row product: the same bits wherever the row sits.
  Eigen::RowVectorXd row(Index i) const;

 private:
  const StandardRows& m_Xs;
  const Matrix* m_Z = nullptr;
  Matrix m_G;  ///< QᵀŪ (from Z), or Ū folded into the coordinates the rows are read in
};

/// Decompose: the k×k×k core (with a quadratic control variate in z = Qᵀx̃ when the full one
/// was too costly), its CP decomposition and its noise level (from groups of row blocks).
struct Directions : StageReport {
  Matrix Ubar;  ///< d×k unit directions in standardised coordinates (empty on failure)
  MomentReport report;
  /// The rows in the subspace the directions came from (decompose_core; empty when the labels
  /// vanish), for the later stages' projections.
  RowsInBasis basis;
};
/// Units within the tensor's noise (`weak`, columns of Ubar) take their directions from the second
/// score moment instead: for a network M2 = Σ_j a2_j κ2(b_j) ū_j ū_jᵀ, and κ2 is large where κ3
/// vanishes (blind units), so M2 less the strong units' share points along what the third
/// moment does not see. Returns the directions with the weak units' replaced, or an empty matrix
/// when no unit, or every unit, is weak.
Matrix second_order_directions(const Matrix& M2,
                               const Matrix& Ubar,
                               const std::vector<Index>& weak);

/// CP degeneracy: pairs of units with |cos| > 0.95 of the directions (the larger |λ| first) are
/// merged into the larger (λ_i + c³ λ_j, c the cosine); the others get λ = 0 and are returned,
/// ascending.
std::vector<Index> merge_degenerate_pairs(const Matrix& Ubar, Vector& lambda);

/// The degenerate units (MomentReport::degenerate_units) take their directions from M2 as
/// second_order_directions gives them; unchanged when it gives none or M2 is empty.
void replace_degenerate_units(const Matrix& M2, Directions& directions);

/// Directions with some units' taken from M2, and which units.
struct SecondOrderStart {
  Matrix Ubar;
  std::vector<Index> units;
};

/// The starts tried with directions from M2: the weak units', then the candidates' (MomentOptions
/// ::second_order_threshold) when they are other units; each only where second_order_directions
/// gives one.
std::vector<SecondOrderStart> second_order_starts(const Matrix& M2,
                                                  const Matrix& Ubar,
                                                  const MomentReport& report);

/// The start whose network fits the training rows best, each fitted by fit(Ubar, result) (which
/// sets result.train_loss) from `before`, with its second_order_units set; nothing for no start.
template <class Fit>
std::optional<TrainResult> best_second_order(const std::vector<SecondOrderStart>& starts,
                                             const TrainResult& before,
                                             Fit&& fit) {
  std::optional<TrainResult> best;
  for (const SecondOrderStart& s : starts) {
    TrainResult other = before;
    fit(s.Ubar, other);
    other.moments.second_order_units = s.units;
    if (!best || other.train_loss < best->train_loss) {
      best = std::move(other);
    }
  }
  return best;
}

/// MomentOptions::weak_units between `result` (the tensor's directions) and `other` (the best
/// start from M2), both fitted with their train_loss from the same state: `other` replaces
/// `result` always (Replace) or when its training loss is lower (Auto), with the run's stage
/// times kept.
inline void choose_weak_units(const TrainOptions& o, TrainResult&& other, TrainResult& result) {
  if (o.moments.weak_units == WeakUnits::Replace || other.train_loss < result.train_loss) {
    other.stages = std::move(result.stages);
    result = std::move(other);
  }
}

/// A cubic control variate's constant part in the moment tensor, Σ D_abc b_a ⊗ b_b ⊗ b_c: its
/// basis B (d×k, orthonormal) and D's k×k² unfolding (column b + k·c holds D(·, b, c)).
struct CoreShift {
  Matrix basis;
  Matrix D;
};
struct CoreSweepsResult {
  Matrix Q;                ///< d×k orthonormal
  int sweeps = 0;          ///< sweeps done
  double last_change = 0;  ///< sin of the largest principal angle between the last two Q
  Status status = Status::NotConverged;
  std::string message;
};
/// HOOI from Q0 under the Gaussian score of labels r (local rows) over the rows Xs, each sweep
/// directed by the core: Q ← the top-k left singular vectors of T(I, Q, Q)·Ω, Ω (k²×k) the top-k
/// right singular vectors of the core's unfolding C = T(Q, Q, Q) = QᵀT(I, Q, Q). At HOOI's fixed
/// point Q spans T(I, Q, Q)'s top-k left singular vectors, so C's right singular vectors are the
/// unfolding's and T(I, Q, Q)·Ω = UΣ: the same fixed point. A sweep contracts the tensor with k
/// quadratic forms zᵀΩ_j z (z = Qᵀx̃) in place of HOOI's k(k+1)/2 products z_a z_b (k = 10: 10
/// columns of X̃ᵀ[·] instead of 55), and sums the core at Q in the same pass; the next sweep's Ω
/// comes from it, turned into the new Q's coordinates. C0: the core at Q0 (k×k² unfolding).
/// `quadratic` (optional): the coefficients β of a quadratic control variate g in z = Q0ᵀx̃
/// (quadratic_coefficients' order), subtracted from r in the first sweep's pass (r ← r − g(z)):
/// its labels are then r less g, and C0 may be an estimate of their core (a sample's).
/// `shift` (optional): a cubic control variate's constant part, added to the tensor. `rho`:
/// σ_{k+1}/σ_k of the last unfolding formed in full (the stopping rule's rate; the sweeps form
/// only its top k). Stops as tensor_subspace does from a given start (options.tolerance,
/// noise_tolerance, max_sweeps).
CoreSweepsResult core_sweeps(const StandardRows& Xs,
                             Vector& r,
                             const Vector* quadratic,
                             const CoreShift* shift,
                             const Matrix& Q0,
                             const Matrix& C0,
                             double rho,
                             const SubspaceOptions& options,
                             const ExecutionContext& context);
/// E[r z⊗z⊗z] − sym(E[r z] ⊗ I) as a k×k² unfolding, from the means S = E[r z ⊗ z ⊗ z] (k×k²)
/// and m = E[r z] (the Gaussian score's core in an orthonormal basis).
Matrix core_from_sums(Index k, const Matrix& S, const Vector& m);
/// P: the products z_a z_b (a <= b, b-major) of a chunk's rows z (len×k), len×k(k+1)/2.
void pairs_of(const Matrix& z, Matrix& P);
/// Adds a chunk's sums for the core to acc (k×(pairs + 1)): Σ r z ⊗ (z_a z_b) over its rows in
/// columns 0..pairs−1 (P = pairs_of(z)), Σ r z in column `pairs`.
void add_core_sums(const Matrix& z,
                   const Eigen::Ref<const Vector>& r,
                   const Matrix& P,
                   Eigen::Ref<Matrix> acc);
/// The core's k×k² unfolding from the means of add_core_sums' sums (k×(pairs + 1)).
Matrix core_from_pair_sums(const Matrix& sums);
/// The k×k×k tensor C (k×k² unfolding) in new coordinates: C(R, R, R), R k×m; m×m².
Matrix transform_core(const Matrix& C, const Matrix& R);

Directions decompose_core(const StandardRows& Xs,
                          const MixtureScore* mixture,
                          const Residuals& labels,
                          const Subspace& subspace,
                          const TrainOptions& options,
                          const ExecutionContext& context);

/// The directions from rows already in the subspace Q, given block by block (z_source fills
/// Z = Xs Q and the labels r of local rows [begin, begin + count)): the core, its noise level and
/// its decomposition, as decompose_core without a quadratic control variate in the subspace.
Directions directions_from_blocks(Index n,
                                  const Matrix& Q,
                                  const MomentTensor3::BlockSource& z_source,
                                  MomentReport report,
                                  const TrainOptions& o,
                                  const ExecutionContext& context);

// ---- map back (map_back.cpp) -------------------------------------------------------------------

/// Map back (§4.1): unit j is σ(scale_j ⟨ū_j, x̃⟩ + b̃_j) = σ(⟨W1_j, x⟩ + b1_j) with
/// W1_j = scale_j (W ū_j)ᵀ, scale_j = 1/‖W ū_j‖; c1, c2 are the first- and second-order
/// moment coefficients of the centred labels along each direction (§4.4b), and units of an
/// activation that needs it are oriented by their signs (step 4).
struct Units : StageReport {
  Matrix Ubar;  ///< d×k, oriented
  Matrix W1;    ///< k×d, original coordinates, rows of norm 1 in the columns' standard deviations
  Vector scale;
  Vector c1, c2;
  /// The trailing units beyond the inputs' independent directions (append_extra_units): their
  /// biases in standardised coordinates, which the moment-ratio estimator keeps (c1, c2 are 0).
  Vector extra_bias;
  Index moment_units() const { return W1.rows() - extra_bias.size(); }
};
/// `T`: the rows' projections on Ubar (read only under the Gaussian score).
Units map_back(const StandardRows& Xs,
               const MixtureScore* mixture,
               const Vector& yc,
               const Standardizer& st,
               const Matrix& Ubar,
               const Projections& T,
               Activation activation,
               const ExecutionContext& context);

/// Given directions (TrainOptions::directions, rows in the original coordinates): unit j's row
/// of W1, and its scale, take the norm of row j of `rows` (map back's own convention is norm 1
/// in the columns' standard deviations). The bias estimators then fit σ(⟨a_j, x⟩ + b_j) for the
/// rows a_j as given, which for a planted teacher's rows is its own parametrisation.
void keep_row_norms(const Matrix& rows, Units& u);

/// Extra units (k > the inputs' rank: the moments give at most one unit per independent
/// direction), as σ(⟨ē_j, x̃⟩ + b_j).
struct ExtraUnits {
  Matrix E;  ///< r×e unit directions, standardised coordinates
  Vector b;  ///< e standardised biases
};
/// Seeded extra units in r standardised dimensions: directions uniform on the sphere, biases
/// U(−1.5, 1.5) (pre-activations of unit variance).
ExtraUnits extra_units(Index r, Index e, std::uint64_t seed);
/// The extra units appended to `u` after its moment units.
void append_extra_units(const ExtraUnits& extra, const Standardizer& st, Units& u);

/// The same from the centred labels' first score moment along the directions, ŪᵀM1 with
/// M1 = E[yc x̃] (k), and their second one along each direction, q_j = ū_jᵀ E[yc S2(x̃)] ū_j (k):
/// only these 2k numbers of the moments are used.
Units units_from_moments(const Vector& UtM1,
                         const Vector& q,
                         const Standardizer& st,
                         const Matrix& Ubar,
                         Activation activation);
/// A block's share of the Gaussian map-back moments, as a (d + k + 1)×1 column:
/// [x̃ᵀ yc | Σ yc ⟨ū_j, x̃⟩² | Σ yc] with x̃ = W(x − mean), for raw rows X (c×d) and Uf = WᵀŪ
/// (stored standardised rows: mean 0 and Uf = Ū). One X·Ū product, not the d×d second
/// moment. units_from_raw_means: units_from_block_means from their mean over all raw rows.
Matrix map_back_raw_block(const Eigen::Ref<const Matrix>& X,
                          const Vector& mean,
                          const Eigen::Ref<const Vector>& yc,
                          const Matrix& Uf);
Units units_from_raw_means(const Matrix& sums,
                           const Standardizer& st,
                           const Matrix& Ubar,
                           Activation activation);
/// units_from_moments from the mean of map_back_raw_block over all rows of standardised x̃
/// (S2(x̃) = x̃x̃ᵀ − I).
Units units_from_block_means(const Matrix& means,
                             const Standardizer& st,
                             const Matrix& Ubar,
                             Activation activation);

// ---- biases (src/bias/) ------------------------------------------------------------------------

/// Everything a bias estimator may use.
struct BiasProblem {
  const Matrix& X;         ///< original inputs (local rows)
  const StandardRows& Xs;  ///< standardised inputs
  const Projections& T;    ///< the rows' projections on units.Ubar
  const Vector& y;         ///< working labels
  const Vector& yc;        ///< centred working labels
  const Standardizer& st;
  const Units& units;
  Activation activation;
  Task task;
  const BiasOptions& options;
  double ridge;  ///< the output layer's, for estimators that solve it inside
  std::uint64_t seed;
  const ExecutionContext& context;
};

/// The problem of the training options `o`: their activation, task, bias options, seed, and the
/// output layer's ridge (or 1e-6 when it is chosen).
inline BiasProblem bias_problem(const Matrix& X,
                                const StandardRows& Xs,
                                const Projections& T,
                                const Vector& y,
                                const Vector& yc,
                                const Standardizer& st,
                                const Units& units,
                                const TrainOptions& o,
                                const ExecutionContext& context) {
  return {X,
          Xs,
          T,
          y,
          yc,
          st,
          units,
          o.activation,
          o.labels.task,
          o.bias,
          o.output.ridge.value_or(1e-6),
          o.seed,
          context};
}

/// An estimator's answer: b1 in original coordinates, and a factor per unit by which the row
/// W1_j of the map-back is rescaled (1 when only the bias is estimated).
struct BiasFit : StageReport {
  Vector b1;
  Vector rescale;
};

/// The network's first layer from the map-back and the biases: row j of W1 rescaled by the
/// estimator's factor, and b1.
inline void set_first_layer(const Units& units, const BiasFit& biases, TwoLayerNetwork& net) {
  net.W1 = biases.rescale.asDiagonal() * units.W1;
  net.b1 = biases.b1;
}

/// The hidden layer σ(X W1ᵀ + 1b1ᵀ) of `net`, whose first layer set_first_layer set from `units`
/// and `biases`, on the local rows X: from the projections T on units.Ubar where they are read in
/// the subspace (unit j's pre-activation is a_j t_j + c_j, a_j its map-back scale times the
/// estimator's rescale, c_j = ⟨W1_j, μ⟩ + b1_j), else from X.
Matrix hidden_layer_of(const Matrix& X,
                       const Projections& T,
                       const Units& units,
                       const BiasFit& biases,
                       const Standardizer& st,
                       const TwoLayerNetwork& net,
                       const ExecutionContext& context);

/// The one dispatch point: ratio always (the start of the others), then the chosen estimator,
/// then soften_steps.
BiasFit fit_biases(const BiasProblem& problem, BiasMethod* used);

/// Sigmoid and tanh saturate: a unit of theirs can be a step (soften_steps).
bool saturates(Activation act);

/// The rows `rows` of X (local indices) times Aᵀ (A k×d): m×k, each entry summed in column
/// order, so its bits do not depend on where the row sits or how the rows are split. With
/// A = W1 of the map-back: the units' projections p_ij = ⟨W1_j, x_i⟩ before the bias
/// estimator's rescale.
Matrix row_projections(const Matrix& A,
                       const Matrix& X,
                       const std::vector<Index>& rows,
                       int num_threads);

/// The units' inputs p_ij = ⟨W1_j, x_i⟩ (W1 of the map-back) from the rows' projections
/// t_ij = ⟨ū_j, x̃_i⟩: scale_j t_ij + ⟨W1_j, μ⟩.
Matrix unit_inputs(const Units& units, const Standardizer& st, const Matrix& t);

/// A bounded unit (sigmoid, tanh) with fewer than min(20, rows/10) rows of a sample (p: its
/// row_projections of W1, the same on every part: lsq_sample_rows's) on its slope (activation
/// between 10% and 90% of its range) is a step that singles out a few rows: on a small set it
/// copies their labels onto every new row beyond them. Its scale is lowered until that many rows
/// are on its slope, its threshold (where the activation is half-way) kept. Returns those units,
/// with a warning in `fit`.
std::vector<Index> soften_steps(Activation act, const Matrix& p, BiasFit& fit);

BiasFit bias_by_ratio(const BiasProblem& problem);  // bias/ratio.cpp
/// The least-squares fit's subsample (lsq_sample_rows), every part's rows: [t | y], t its rows'
/// projections ⟨ū_j, x̃⟩ (problem.T, row by row) and y their working labels.
Matrix lsq_sample(const BiasProblem& problem);  // bias/lsq.cpp
/// Least squares on a subsample every part holds whole: t = its rows' projections ⟨ū_j, x̃⟩
/// (m×k) and y_fit their working labels (lsq_sample's columns).
BiasFit bias_by_lsq_on(const BiasProblem& problem,
                       const BiasFit& start,
                       const Matrix& t,
                       const Vector& y_fit);
/// The least-squares biases' objective at θ = (b̃, log s) (its gradient in `grad`), for its
/// tests: ½ mean residual² of the ridge fit of y on σ(t diag(s) + b̃) (envelope gradient), plus
/// ½ pull ‖log s − log_scale0‖², the scales' pull toward the moment estimate's.
double bias_lsq_objective(const Matrix& t,
                          const Vector& y,
                          Activation activation,
                          double ridge,
                          const Vector& log_scale0,
                          double pull,
                          const Vector& theta,
                          Vector& grad);
/// The rows of the least-squares bias fit's subsample: every stride-th global row, with stride
/// chosen for at most 200,000 rows; the local indices of this part's rows among them.
std::vector<Index> lsq_sample_rows(Index local_rows, const ExecutionContext& context);
BiasFit bias_by_fourier(const BiasProblem& problem, const BiasFit& start);  // bias/fourier.cpp

// ---- output layer (output.cpp) -----------------------------------------------------------------

/// Fits W2, b2 (and C when X, the original inputs, is given: the linear term, fitted on the
/// column-standardised inputs and mapped to original coordinates through st) of `net` on the
/// hidden activations H (local rows × k): ridge regression of y (regression), logistic regression
/// of 0/1 labels, or softmax regression of one-hot targets. The ridge is options.ridge, or chosen
/// by GCV (regression) or 3-fold cross-validation (classes), together with a factor on the hidden
/// units' penalty (infinite: the units left out, the linear model alone, chosen when the hidden
/// units do not help; their output weights are then exactly 0).
struct OutputFit : StageReport {
  double ridge = 0;
  double hidden_factor = 1;
  /// Regression: the training MSE from the normal equations, yᵀy/n − 2βᵀFᵀy/n + βᵀFᵀFβ/n, when
  /// that difference keeps at least 6 digits (MSE > 1e-10 · yᵀy/n); else (and for classes) NaN.
  double train_mse = std::numeric_limits<double>::quiet_NaN();
  bool linear_only() const { return !std::isfinite(hidden_factor); }
};
/// Classes: the cross-validated scores of the linear model alone (the units left out), one per
/// ridge of the grid. They do not depend on the hidden units, so fits of the same rows with other
/// units can share them: empty, the first fit fills them; filled, the next ones reuse them.
struct LinearOnlyScores {
  std::vector<double> loss, error;
  /// Classes: per ridge (largest first), the folds' mean fit of the linear model, its columns
  /// after the units' (outputs × (r + 1)): the final fit's start when that model is chosen.
  std::vector<Matrix> fits;
};
/// `st_fitted_here`: st was fitted on exactly these rows (of every part), so that regression's
/// normal equations take the linear term's block from st.covariance instead of summing it.
OutputFit fit_output_layer(const Matrix& H,
                           const Matrix* X,
                           const Standardizer& st,
                           const Labels& labels,
                           Task task,
                           const OutputOptions& options,
                           const ExecutionContext& context,
                           TwoLayerNetwork& net,
                           LinearOnlyScores* linear_only = nullptr,
                           bool st_fitted_here = false);

/// Regression's ridge choice, exposed for its tests: the grid of λ, and for each λ the exact
/// leave-one-out mean squared error of the design [H, z, 1] (z the column-standardised X, or
/// none) with the hidden units' penalty times hidden_factor (infinite: the units left out),
/// times the units' charge for their first-layer parameters (with X and the units in).
std::vector<double> regression_ridge_grid();
std::vector<double> leave_one_out_scores(const Matrix& H,
                                         const Matrix* X,
                                         const Standardizer& st,
                                         const Vector& y,
                                         double hidden_factor,
                                         const ExecutionContext& context);

/// The ridge solve of y on [H, 1] (intercept unpenalised) for H given by row blocks, so that it
/// need not be stored: design(begin, count, F) writes rows [begin, begin + count) of [H, 1] into
/// F (count × (k + 1), sized by the caller). beta = k weights then the intercept, and the
/// absolute penalty used.
struct RidgeFit {
  Vector beta;
  double penalty = 0;
};
RidgeFit solve_ridge(Index n,
                     Index k,
                     double ridge,
                     const Vector& y,
                     const ExecutionContext& context,
                     const std::function<void(Index, Index, Matrix&)>& design);

/// Regression's output layer from the normal equations of its design F = [H, z, 1] (k hidden
/// units, z the r column-standardised inputs or none): `normal` is [FᵀF Fᵀy; yᵀF yᵀy] / n
/// ((p+1)×(p+1), p = k + r + 1) over `rows` rows. The ridge as fit_output_layer chooses it.
OutputFit output_from_normal(const Matrix& normal,
                             Index k,
                             Index rows,
                             const Standardizer& st,
                             const OutputOptions& options,
                             TwoLayerNetwork& net);

// ---- refine (refine.cpp) -----------------------------------------------------------------------

/// The rows the refinement sees: training rows (standardised) and their targets (local rows ×
/// c), and optionally validation rows and targets for early stopping.
struct RefineData {
  const Matrix& Xs;
  const Matrix& targets;
  const Matrix* Xv = nullptr;
  const Matrix* Tv = nullptr;
  const ExecutionContext* valid_context = nullptr;  ///< where the validation rows' passes run
  bool decay_to_start = true;  ///< the decay pulls toward the start (else toward zero)
  /// > 0: the run ends at this iterate (a point that lowered the training objective; the start
  /// is iterate 0), the count that cross-validation chose (refine_curves).
  int stop_after = 0;
  /// The fit rows' and the validation rows' original inputs, or nullptr. Where the standardiser
  /// dropped input directions (rank r < d: collinear columns) the standardised rows cannot carry
  /// the network's linear term along them, C − C W⁺ W, which the output layer fitted on every
  /// column: with these rows that part is held fixed during the refinement, as a per-row offset
  /// of the outputs, and kept in the refined network. Without them it is lost (the refinement
  /// then starts from, and compares with, a network without it).
  const Matrix* inputs = nullptr;
  const Matrix* valid_inputs = nullptr;
};

/// The weight decays' strengths c that RefineOptions::weight_decay unset tries (α = c / n on n
/// training rows), weakest first: 0.01, 0.1, ..., 1000, up to c / n = 0.1. With `params` > 0
/// parameters and at least kRowsPerParameterForOneDecay rows per parameter, c = 1 alone: there a
/// prior worth at most 1,000 rows moves the fit by at most 1,000 / (100 p) of the way to the
/// start, and the runs of the grid end within the validation loss's noise of one another (at
/// n = 10⁶, d = 100, k = 10: five runs, 136 s, for the test error one run reached in 28 s).
constexpr double kRowsPerParameterForOneDecay = 100.0;
std::vector<double> decay_strengths(double rows, Index params = 0);

/// One iterate of a refinement run on its validation rows, summed over them in the labels'
/// units (regression: squared errors; classes: log-losses): the loss, the gain on the start
/// (the start's loss − this point's, per row) and its square, and the rows classified right.
struct CurvePoint {
  double loss = 0, gain = 0, gain2 = 0, correct = 0;
};

/// The validation curves of refinements from one start: runs[g][t] is the point of iterate t
/// (t = 0: the start) of the run at weight decay decays[g].
struct RefineCurves {
  std::vector<double> decays;
  std::vector<std::vector<CurvePoint>> runs;
};

/// Cross-validation of the refinement (train() on few rows): from `net`, one run per decay,
/// each iterate's point on data's validation rows recorded; each run stops early as
/// refine_network's does (a point after the stop is taken as the last one's). The runs go at
/// the same time where run_independent allows.
RefineCurves refine_curves(const RefineData& data,
                           const Standardizer& st,
                           const RefineOptions& options,
                           const std::vector<double>& decays,
                           const ExecutionContext& context,
                           const TwoLayerNetwork& net);

/// Minimises the mean squared error (identity link, on standardised targets), the logistic loss
/// or the softmax cross-entropy, plus weight decay on W1, W2 and C, over all parameters with
/// The refinement's data term as L-BFGS sees it, for tests: the mean loss over data's fit rows
/// (regression: squared error / 2 on standardised targets; classes: log-loss) at packed
/// parameters θ, with its gradient when `grad` is given, and θ at `net` (standardised
/// coordinates, the layout refine_network packs).
struct RefineObjective {
  std::function<double(const Vector& theta, Vector* grad)> loss;
  Vector theta;
};
RefineObjective refine_objective(const RefineData& data,
                                 const Standardizer& st,
                                 const ExecutionContext& context,
                                 const TwoLayerNetwork& net);

/// L-BFGS from `net`, on standardised inputs. With validation rows, the search stops when the
/// validation loss has not improved over `patience` loss evaluations, and the point of lowest
/// validation loss is kept (the start is one of the points, so the result is never worse on the
/// validation rows); without, the point of lowest training objective. A weight decay left unset
/// is chosen from a grid on the validation loss (on the training objective without validation
/// rows). A non-finite loss ends the search with `diverged`. `progress` gets fractions in [0, 1).
RefineReport refine_network(const RefineData& data,
                            const Standardizer& st,
                            const RefineOptions& options,
                            const ExecutionContext& context,
                            TwoLayerNetwork& net,
                            const std::function<void(double)>& progress = {});

/// Runs job(i, reports) for i in [0, count): at the same time on the context's threads when it
/// has two or more and its rows and `other`'s (when given) are all here
/// (RowReducer::single_part), else one after another. When they run together only job 0 has
/// `reports` true (progress comes from one thread). Each job must write only its own outputs;
/// the passes inside run serially there, and their results do not depend on the thread count,
/// so the outcome is the same either way.
void run_independent(Index count,
                     const ExecutionContext& context,
                     const ExecutionContext* other,
                     const std::function<void(Index, bool)>& job);

/// How the continuation on all rows goes on from a refined network: the chosen run's weight
/// decay, toward its anchor (the start it was refined from; nullptr: zero, as for a random start),
/// for at most max_iterates iterates.
struct Continuation {
  double decay = 0;
  const TwoLayerNetwork* anchor = nullptr;
  int max_iterates = 0;
};

/// RefineOptions::all_rows: `net`, refined on data's fit rows and early-stopped on its validation
/// rows, trained on from where it stopped on the fit and validation rows together (the mean loss
/// over all of them plus the weight decay), until its mean loss on the validation rows is down to
/// its mean loss on the fit rows at the start (Goodfellow, Bengio and Courville, Deep Learning,
/// §7.8, algorithm 7.3), or for how.max_iterates iterates at most. Fills report.all_rows,
/// all_rows_iterates and all_rows_stop; `net` changes only when an iterate was taken.
void continue_on_all_rows(const RefineData& data,
                          const Standardizer& st,
                          const RefineOptions& options,
                          const Continuation& how,
                          const ExecutionContext& context,
                          TwoLayerNetwork& net,
                          RefineReport& report);

/// Whether network b has the lower validation loss than network a (the refinement's losses, on
/// data's validation rows) by at least `min_improvement` standard errors of the paired per-row
/// difference. The two must have the same shape (hidden units, outputs, linear term or not).
bool beats_on_validation(const TwoLayerNetwork& a,
                         const TwoLayerNetwork& b,
                         const RefineData& data,
                         const Standardizer& st,
                         double min_improvement);

}  // namespace nnlift::detail
