// Score models for non-Gaussian inputs that work by mapping the inputs: the per-column rank-Gauss
// map x ↦ Φ⁻¹(F̂(x)). The network is defined on the mapped inputs; prediction applies the map.
// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <vector>

#include <nnlift/execution.hpp>
#include <nnlift/types.hpp>

namespace nnlift {

/// Which density the score function S3 assumes for the inputs.
enum class ScoreModel {
  Gaussian,   ///< the inputs as they are (standardised): exact for Gaussian inputs
  RankGauss,  ///< each column through its empirical CDF, then Φ⁻¹: marginally Gaussian inputs
  Mixture,    ///< "gmm": a Gaussian mixture fitted to the standardised inputs (nnlift/mixture.hpp)
  Auto,       ///< the best of the three on the validation rows
  /// Gaussian, and RankGauss as well when the inputs are heavy-tailed (InputTails): the better
  /// of the two on the validation rows. Without validation rows (or for Gaussian-tailed inputs)
  /// it is Gaussian.
  Adaptive,
};
const char* to_string(ScoreModel model) noexcept;
/// \throws std::invalid_argument listing the accepted names.
ScoreModel parse_score_model(const std::string& name);

/// The per-column monotone map z = Φ⁻¹(F̂(x)), piecewise linear between knots (x ascending,
/// z = Φ⁻¹ of the knot's mid-rank share); below the first and above the last knot, z is that
/// knot's. Empty: the identity.
struct RankGaussMap {
  std::vector<std::vector<double>> x;  ///< per column, strictly ascending knots
  std::vector<std::vector<double>> z;  ///< per column, the mapped value at each knot
  bool empty() const noexcept { return x.empty(); }
  /// \throws std::invalid_argument if X has another column count than the map.
  Matrix apply(const Matrix& X) const;
};

/// The default strided subsample of fit_rank_gauss and input_tails, in rows.
inline constexpr Index kInputSampleRows = 20000;
/// The default knots per column of fit_rank_gauss.
inline constexpr Index kRankGaussKnots = 1000;

/// Fits the map on the rows of every part of `context`: the knots are order statistics of a
/// strided subsample of at most `sample_rows` rows (by global row index, gathered, so every
/// part fits the same map), at most `max_knots` per column; ties get their mid-rank.
RankGaussMap fit_rank_gauss(const Matrix& X,
                            const ExecutionContext& context,
                            Index sample_rows = kInputSampleRows,
                            Index max_knots = kRankGaussKnots);

/// A median excess kurtosis above kMixtureKurtosis (Laplace: 3, logistic: 1.2, Student's t with
/// 5 degrees of freedom: 6) with a median |skewness| below kMixtureSkewness makes train's
/// --score adaptive try the Gaussian-mixture score as well, from kMixtureRows rows on. Those
/// are the marks of a scale mixture of Gaussians (leptokurtic and symmetric), whose fitted
/// mixture's score is exact.
inline constexpr double kMixtureKurtosis = 1.0;
inline constexpr double kMixtureSkewness = 0.5;
inline constexpr Index kMixtureRows = 10000;

/// How heavy the inputs' tails are, from a strided subsample of the rows (gathered from every
/// part, so every part sees the same): the columns with a spread, and how many of them have an
/// excess kurtosis above a threshold. Heavy tails make the Gaussian score's third-order term,
/// whose variance grows with E[x⁶], noisy, and put outlying rows where a network extrapolates.
struct InputTails {
  /// Columns with more than two values on the sample (a monotone map of a binary column, as a
  /// one-hot category's, is affine: it cannot change the model).
  Index columns = 0;
  Index heavy = 0;  ///< of them, those with an excess kurtosis above the threshold
  double threshold = 0;
  double median_kurtosis = 0;  ///< over the columns counted (0 for none)
  /// |m3| / m2^{3/2} of each column counted, their median (0 for none).
  double median_abs_skewness = 0;
  /// At least half the columns counted are heavy-tailed.
  bool heavy_tailed() const noexcept { return heavy > 0 && 2 * heavy >= columns; }
  /// Leptokurtic and symmetric, as a scale mixture of Gaussians (heavy-tailed or not): median
  /// excess kurtosis above kMixtureKurtosis, median |skewness| below kMixtureSkewness.
  bool scale_mixture() const noexcept {
    return columns > 0 && median_kurtosis > kMixtureKurtosis &&
           median_abs_skewness < kMixtureSkewness;
  }
};

/// The default threshold of input_tails: an excess kurtosis of 5 (Laplace: 3, exponential: 6,
/// Student-t with 5 degrees of freedom: 6, with 4: infinite; Gaussian: 0).
inline constexpr double kHeavyTailKurtosis = 5.0;

/// \throws std::invalid_argument for sample_rows < 2.
InputTails input_tails(const Matrix& X,
                       const ExecutionContext& context,
                       double threshold = kHeavyTailKurtosis,
                       Index sample_rows = kInputSampleRows);

/// Φ⁻¹(p) for p in (0, 1), to about 1e-15 relative (rational start, two Halley steps).
double normal_quantile(double p);

}  // namespace nnlift
