// Gaussian-mixture input densities: fitted by EM, and the mixture's score moments
// (ALGORITHM.md §2.5) as implicit tensors, for inputs that are far from one Gaussian.
// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nnlift/execution.hpp>
#include <nnlift/moments.hpp>
#include <nnlift/tensor.hpp>
#include <nnlift/types.hpp>

namespace nnlift {

/// The covariance form of every component of a mixture.
enum class MixtureCovariance {
  Full,      ///< any symmetric positive definite Σ_c
  Diagonal,  ///< Σ_c diagonal
  Auto,      ///< fit both and keep the lower BIC
};
/// "full", "diagonal", "auto".
const char* to_string(MixtureCovariance covariance) noexcept;
/// \throws std::invalid_argument listing the accepted names.
MixtureCovariance parse_mixture_covariance(const std::string& name);

/// p(x) = Σ_c π_c N(x; μ_c, Σ_c).
struct GaussianMixture {
  Vector weights;                   ///< π_c (C), positive, summing to 1
  Matrix means;                     ///< C×d, row c is μ_c
  std::vector<Matrix> covariances;  ///< Σ_c, d×d each, symmetric positive definite
  Index components() const noexcept { return weights.size(); }
  Index dim() const noexcept { return means.cols(); }
  /// log p(x_i) for the rows of X (n×d).
  Vector log_density(const Matrix& X) const;
  /// The posterior responsibilities r_c(x_i) = π_c N_c(x_i) / p(x_i), n×C (rows sum to 1).
  Matrix responsibilities(const Matrix& X) const;
};

/// \throws std::invalid_argument naming the first problem: sizes that disagree, weights not
/// positive or not summing to 1, a covariance not symmetric positive definite, a value not finite.
void validate(const GaussianMixture& mixture);

/// How fit_gaussian_mixture chooses and fits the mixture.
struct MixtureOptions {
  /// C >= 1, or 0: chosen by BIC among 1..max_components (the search stops after two counts in
  /// a row that do no better than the best so far; with covariance Auto, a form is no longer
  /// fitted after two counts in a row that do no better than its own best). Every form of one
  /// count starts EM from the same k-means clusters.
  Index components = 0;
  Index max_components = 5;  ///< >= 1
  MixtureCovariance covariance = MixtureCovariance::Auto;
  /// EM runs on a strided subsample of at most this many rows (by global row index, gathered
  /// from every part, so every part fits the same mixture); >= 2.
  Index sample_rows = 10000;
  int max_iterations = 100;  ///< EM iterations per candidate; >= 1
  /// EM stops when the mean log-likelihood per row gains less than tolerance · max(1, |it|); > 0.
  double tolerance = 1e-5;
  /// Added to every variance (the inputs are standardised: a discrete column would otherwise
  /// give a component of zero variance); > 0.
  double variance_floor = 1e-3;
  std::uint64_t seed = 0;  ///< k-means++ starts
};
/// \throws std::invalid_argument naming the first field out of range.
void validate(const MixtureOptions& options);

/// One (C, covariance) pair that was fitted.
struct MixtureCandidate {
  Index components = 0;
  MixtureCovariance covariance = MixtureCovariance::Full;
  double log_likelihood = 0;  ///< mean per sample row
  double bic = 0;             ///< −2·Σ log p + parameters · log(rows)
  int iterations = 0;
  bool converged = false;
};

/// The chosen mixture and every candidate fitted (the chosen one among them).
struct MixtureFit {
  GaussianMixture mixture;
  MixtureCandidate chosen;
  Index sample_rows = 0;
  std::vector<MixtureCandidate> candidates;
};

/// Fits a Gaussian mixture to the rows of every part of `context` by EM from k-means++ starts
/// (seeded), for each candidate (C, covariance), and keeps the lowest BIC. Deterministic for
/// any thread count and any partition of the rows.
/// \throws std::invalid_argument for bad options, DataError if fewer than 2 rows or a value is
/// not finite.
MixtureFit fit_gaussian_mixture(const Matrix& X,
                                const ExecutionContext& context,
                                const MixtureOptions& options = {});

/// The score functions of a mixture evaluated on data: S_m(x) = Σ_c r_c(x) S_m^{(c)}(x), with
/// S_m^{(c)} the Gaussian score of component c (ALGORITHM.md §2.4-2.5). Per component it keeps
/// u_c = R_c⁻¹(x − μ_c) (Σ_c = R_c R_cᵀ) for every row, so z_c = Σ_c⁻¹(x − μ_c) = L_c u_c with
/// L_c = R_c⁻ᵀ and the Gaussian identities of §2.4 apply per component: memory C·n·d doubles.
/// Holds copies, not references. \throws std::invalid_argument if X has another column count.
class MixtureScore {
 public:
  MixtureScore(const Matrix& X, const GaussianMixture& mixture, const ExecutionContext& context);

  Index dim() const noexcept { return m_dim; }
  Index components() const noexcept { return static_cast<Index>(m_U.size()); }
  /// E[r S1(x)] = (1/n) Σ_i r_i Σ_c r_c(x_i) z_c(x_i) (d).
  Vector moment1(const Vector& r) const;
  /// E[r S2(x)] = (1/n) Σ_i r_i Σ_c r_c(x_i) (z_c z_cᵀ − Σ_c⁻¹) (d×d).
  Matrix moment2(const Vector& r) const;
  /// The n×C responsibilities.
  const Matrix& responsibilities() const noexcept { return m_resp; }

 private:
  friend class MixtureMomentTensor3;
  Index m_dim = 0;
  std::vector<Matrix> m_U;  ///< per component, n×d rows u_c
  std::vector<Matrix> m_L;  ///< per component, L_c (d×d)
  Matrix m_resp;            ///< n×C
  ExecutionContext m_context;
};

/// T̂ = (1/n) Σ_i r_i S3(x_i) for a mixture's score:
/// S3 = Σ_c r_c(x) [z_c⊗z_c⊗z_c − sym(z_c ⊗ Σ_c⁻¹)], given by contractions:
/// T̂(I, u, v) = Σ_c L_c T̂_c(I, L_cᵀu, L_cᵀv), T̂_c the Gaussian-form moment (MomentTensor3) of the
/// rows u_c with labels r ∘ r_c. Costs C times the Gaussian tensor's. Holds a reference to the
/// score, which must outlive it; neither copyable nor movable.
class MixtureMomentTensor3 final : public SymmetricTensor3 {
 public:
  /// \throws std::invalid_argument if r has another size than the score's rows.
  MixtureMomentTensor3(const MixtureScore& score, const Vector& r);
  MixtureMomentTensor3(const MixtureMomentTensor3&) = delete;
  MixtureMomentTensor3& operator=(const MixtureMomentTensor3&) = delete;

  Index dim() const override { return m_score.dim(); }
  Matrix contract_pairs(const Matrix& U, const Matrix& V) const override;
  double contract(const Vector& u) const override;
  Matrix contract_block(const Matrix& Q) const override;
  DenseSymmetricTensor3 project(const Matrix& Q) const override;

 private:
  const MixtureScore& m_score;
  std::vector<Vector> m_weights;  // r ∘ r_c per component
  std::vector<std::unique_ptr<MomentTensor3>> m_parts;
};

}  // namespace nnlift
