// The pieces of the moment passes that the in-memory pipeline and the streamed one share: what a
// block of rows contributes, and what the sums become. SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include <nnlift/moments.hpp>

namespace nnlift::detail {

/// Rows per chunk where a pass standardises raw rows as it reads them: a chunk and its products
/// stay in cache.
constexpr Index kChunkRows = 1024;

/// Standardised rows W(x − μ) never stored: a product's factor G (r×m) as it applies to the raw
/// rows, WᵀG; and sums over the raw rows S (d×m) as sums over the standardised ones, W·S.
/// These and the block functions below are compiled once (not inline): the in-memory and the
/// streamed trainers call the same code, so that their sums have the same bits. (Inline, they
/// gave the two trainers weights that differed in the last bits; likely the compiler fusing a
/// small product's multiply-adds differently in each file.)
Matrix fold(const Standardizer& st, const Matrix& G);
Matrix unfold(const Standardizer& st, const Matrix& S);
/// contract_pairs_block's means over raw rows ((d + 2)×P) as over the standardised rows.
Matrix unfold_pairs(const Standardizer& st, const Matrix& S);
/// (Xb − 1μᵀ)·Gf for raw rows Xb (c×d) and a folded G (d×m), chunk by chunk: c×m.
Matrix centred_times(const Eigen::Ref<const Matrix>& Xb, const Vector& mean, const Matrix& Gf);
/// (Xb − 1μᵀ)ᵀ H for raw rows Xb (c×d) and H (c×m), chunk by chunk: d×m.
Matrix centred_sums(const Eigen::Ref<const Matrix>& Xb,
                    const Vector& mean,
                    const Eigen::Ref<const Matrix>& H);
/// A block's Xbᵀ rb (d×1): its share of the first moment E[r x].
Matrix first_moment_block(const Eigen::Ref<const Matrix>& Xb, const Eigen::Ref<const Vector>& rb);

/// Calls f(first row, row count, centred rows) for the chunks of kChunkRows rows of a block Xb,
/// each centred about `mean` in a thread's buffer.
template <class F>
void for_centred_chunks(const Eigen::Ref<const Matrix>& Xb, const Vector& mean, const F& f) {
  thread_local Matrix centred;
  for (Index s = 0; s < Xb.rows(); s += kChunkRows) {
    const Index len = std::min(kChunkRows, Xb.rows() - s);
    centred = Xb.middleRows(s, len).rowwise() - mean.transpose();
    f(s, len, static_cast<const Matrix&>(centred));
  }
}

/// Adds kernel(chunk rows, chunk labels) to `out` for the centred chunks of a block (Xb, rb).
template <class Kernel>
void add_centred_chunks(const Eigen::Ref<const Matrix>& Xb,
                        const Eigen::Ref<const Vector>& rb,
                        const Vector& mean,
                        const Kernel& kernel,
                        Matrix& out) {
  for_centred_chunks(Xb, mean, [&](Index s, Index len, const Matrix& centred) {
    out += kernel(Eigen::Ref<const Matrix>(centred), Eigen::Ref<const Vector>(rb.segment(s, len)));
  });
}

/// Rows of the quadratic design [1, x, x_a x_b (a <= b)] for a block of rows.
Matrix quadratic_features(const Matrix& Xb);
/// A block's least-squares normal equations [FᵀF | Fᵀy] (p×(p + 1)) for its design F (c×p) and
/// labels y: FᵀF by a symmetric rank update (half the multiply-adds), then mirrored.
Matrix normal_block(const Matrix& F, const Eigen::Ref<const Vector>& y);
/// The coefficients from summed (or averaged) normal equations [A | b], with a relative ridge of
/// 1e-12 of A's mean diagonal that keeps the LDLT well posed.
Vector solve_normal(const Matrix& normal);

/// The coefficients β of residualize's quadratic control variate
/// g(x) = β₀ + xᵀβ₁ + Σ_{a<=b} β_ab x_a x_b, by least squares on the rows Xs and labels y.
Vector quadratic_coefficients(const Matrix& Xs, const Vector& y, const ExecutionContext& context);
/// y − g(x) on every row of Xs, for g's coefficients β (quadratic_coefficients).
Vector subtract_quadratic(const Matrix& Xs,
                          const Vector& y,
                          const Vector& beta,
                          const ExecutionContext& context);

/// (Xb − 1 meanᵀ)ᵀ (Xb − 1 meanᵀ): a block's contribution to the covariance (times its rows).
Matrix centred_gram(const Eigen::Ref<const Matrix>& Xb, const Vector& mean);

// Throws DataError when `d` input columns' d x d covariance (its sums with `extra` more rows, over
// this part's `local_rows` rows) and its whitening would not fit in memory, on this machine or
// on any other part's (collective: every part decides alike). Before, such a file ran until the
// kernel killed the process, or failed later with a bare "out of memory".
void require_room_for_covariance(Index local_rows,
                                 Index d,
                                 Index extra,
                                 const ExecutionContext& context);

/// The inputs' mean and covariance (divisor n) in one pass over rows given block by block:
/// `rows(b, c)` is local rows [b, b + c) (count × d; it may refer to a thread's own buffer). The
/// sums are taken about a shift, the mean of the global first block's rows (that block is read
/// once more), so that the one-pass E[(x − s)(x − s)ᵀ] − (μ − s)(μ − s)ᵀ loses no digits to a
/// mean far from zero. `extra` (optional, called after `rows` on the same thread and block) adds
/// e sums to the pass; their means over the rows are returned.
/// With `labels` (a block's labels, called after `rows` on the same thread and block) and
/// `moments`, the same pass also sums what the linear control variate needs: E[y] and
/// E[(x − μ) y] (about the same shift), into `moments`.
using BlockRowsFn = std::function<Eigen::Ref<const Matrix>(Index begin, Index count)>;
using BlockExtraFn = std::function<Vector(Index begin, Index count)>;
using BlockLabelsFn = std::function<Eigen::Ref<const Vector>(Index begin, Index count)>;
struct LabelMoments {
  double mean = 0;  ///< E[y]
  Vector cross;     ///< E[(x − μ) y], d
};
Vector mean_and_covariance(Index local_rows,
                           Index d,
                           const BlockRowsFn& rows,
                           const ExecutionContext& context,
                           Vector& mean,
                           Matrix& cov,
                           Index e = 0,
                           const BlockExtraFn& extra = nullptr,
                           const BlockLabelsFn& labels = nullptr,
                           LabelMoments* moments = nullptr);

/// fit_standardizer, and with labels y (one per row of X) and `moments`, the labels' E[y] and
/// E[(x − μ) y] from the same pass (mean_and_covariance).
Standardizer fit_standardizer_and_labels(const Matrix& X,
                                         const Vector* y,
                                         const std::vector<std::string>& names,
                                         const ExecutionContext& context,
                                         const StandardizerOptions& options,
                                         LabelMoments* moments);

/// A block's share of MomentTensor3::contract_pairs, (d + 2)×P: Xᵀ[r ∘ XU ∘ XV], rᵀXV, rᵀXU.
Matrix contract_pairs_block(const Eigen::Ref<const Matrix>& Xb,
                            const Eigen::Ref<const Vector>& rb,
                            const Matrix& U,
                            const Matrix& V);
/// T(I, u_p, v_p) from the means of contract_pairs_block and the first moment E[r x].
Matrix pairs_from_means(const Matrix& S, const Vector& first, const Matrix& U, const Matrix& V);
/// A block's [Xbᵀ diag(rb) Xb | Σ rb] (the sum in entry (0, d)), d×(d + 1), and M2 from its mean.
Matrix second_moment_block(const Eigen::Ref<const Matrix>& Xb, const Eigen::Ref<const Vector>& rb);
Matrix second_moment_from(const Matrix& S);
/// The same for sums over raw rows (d×(d + 1), centred about st.mean): the M2 of the rows
/// standardised by st, W S Wᵀ − mean(r) I (r×r).
Matrix second_moment_from(const Matrix& S, const Standardizer& st);

/// The standardisation from the inputs' mean and covariance (divisor n), as fit_standardizer.
Standardizer standardizer_from_moments(const Vector& mean,
                                       const Matrix& cov,
                                       const std::vector<std::string>& names,
                                       const StandardizerOptions& options);

}  // namespace nnlift::detail
