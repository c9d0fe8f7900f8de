// Score-function cross-moments of data, as implicit tensors (never a d×d×d array).
// SPDX-License-Identifier: MIT
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nnlift/execution.hpp>
#include <nnlift/tensor.hpp>
#include <nnlift/types.hpp>

namespace nnlift {

/// Standardisation x̃ = W (x − μ) with W Σ̂ Wᵀ = I_r. ALGORITHM.md §4.1. The columns are scaled to
/// unit variance first and the correlation matrix R = U Λ Uᵀ is whitened; eigen-directions with
/// λ < eigenvalue_floor · λ_max (collinear columns) and constant columns are dropped, so r <= d.
/// With r = d, W = U Λ^{-1/2} Uᵀ D^{-1/2} (D the column variances), which is Σ̂^{-1/2} when the
/// columns have equal variance; with r < d, W = Λ_r^{-1/2} U_rᵀ D^{-1/2} (r×d).
struct Standardizer {
  Vector mean;       ///< μ̂, d
  Matrix W;          ///< r×d whitening map
  Matrix W_inverse;  ///< d×r with W · W_inverse = I_r (Σ̂^{1/2} when r = d)
  Vector inv_sd;     ///< 1/σ̂_j per column (0 for a constant column)
  /// Σ̂ (d×d, divisor n) of the rows it was fitted on: the output layer's normal equations take
  /// their linear term's block from it instead of summing it again.
  Matrix covariance;
  std::vector<Index> constant_columns;   ///< columns with zero variance (ignored by W)
  std::vector<Index> collinear_columns;  ///< columns carrying a dropped eigen-direction
  /// Directions dropped because a one-hot group sums to one (StandardizerOptions::
  /// one_hot_groups): expected, neither warned about nor refused. Not in collinear_columns
  /// unless other directions were dropped too.
  Index one_hot_directions = 0;
  /// The columns of StandardizerOptions::one_hot_groups, ascending: 0/1 indicators, whose
  /// output-layer weights are penalised as those of 0/1 columns (a rare category's effect is
  /// shrunk more), not as those of unit-variance columns.
  std::vector<Index> one_hot_columns;
  Index rank() const noexcept { return W.rows(); }
};

/// How fit_standardizer treats a degenerate covariance.
struct StandardizerOptions {
  /// Relative floor on the correlation matrix's eigenvalues; in [0, 1).
  double eigenvalue_floor = 1e-6;
  /// Drop constant columns and directions below the floor (true), or refuse them (false).
  bool drop_degenerate = true;
  /// Groups of columns (0-based, disjoint) that sum to one in every row by construction: the
  /// one-hot columns of a categorical input. Each group with two or more varying columns loses
  /// one direction, which is expected: it is dropped without counting as collinearity.
  std::vector<std::vector<Index>> one_hot_groups;
};

/// Fits μ̂ and Σ̂ (divisor n) from X (n×d). \throws DataError naming the columns involved when
/// Σ̂ overflows, when no direction is left, or (drop_degenerate = false) when a column is
/// constant or the correlation matrix has an eigenvalue below the floor.
/// \throws std::invalid_argument if n < 2 or the floor is outside [0, 1).
Standardizer fit_standardizer(const Matrix& X,
                              const std::vector<std::string>& names,
                              const ExecutionContext& context,
                              const StandardizerOptions& options = {});

/// (X − 1μᵀ) Wᵀ, row blocks in parallel.
Matrix standardize(const Standardizer& s, const Matrix& X, const ExecutionContext& context);

/// Which control variate is subtracted from the centred labels before moments (§4.2b).
enum class Residualize {
  None,       ///< the paper's plain estimator: ỹ = y − mean(y)
  Linear,     ///< least squares on [1, x]
  Quadratic,  ///< least squares on [1, x, x_i x_j]
  Auto,       ///< quadratic when the rows are many against its features and the normal
              ///< equations are affordable, else linear (see resolve_residualize)
};
const char* to_string(Residualize r) noexcept;
/// \throws std::invalid_argument listing the accepted names.
Residualize parse_residualize(const std::string& name);

/// What Auto means for n rows (over all parts) of d inputs: Quadratic when n >= 20·p for its
/// p = 1 + d + d(d+1)/2 features (fewer rows make the fit's residual mostly its own noise) and
/// the normal equations cost at most 2e10 multiply-adds (n·p²); else Linear. Any other mode is
/// returned as it is.
Residualize resolve_residualize(Residualize mode, Index n, Index d);

/// Residual of y on the chosen polynomial of standardised inputs Xs (n×d, mean 0, covariance I).
/// Quadratic uses 1 + d + d(d+1)/2 features and costs O(n·p²). E[(y − g) S3] = E[y S3] for every
/// polynomial g of degree <= 2, so the third-order moment keeps its expectation. The degree-0
/// and degree-1 cases leave E[y S2] unchanged as well; the quadratic case does not.
Vector residualize(const Matrix& Xs,
                   const Vector& y,
                   Residualize mode,
                   const ExecutionContext& context);

/// The empirical third-order score moment of standardised data,
/// T̂ = (1/n) Σ_i r_i S3(x_i),  S3(x)_ijl = x_i x_j x_l − δ_ij x_l − δ_il x_j − δ_jl x_i,
/// given only by contractions computed in passes over the rows (ALGORITHM.md §4.2):
/// T̂(I,u,v) = Xᵀ[r ∘ (Xu ∘ Xv)]/n − m (u·v) − u (rᵀXv/n) − v (rᵀXu/n), m = Xᵀr/n.
/// Holds references: X (n×d) and r (n) must outlive the tensor.
/// Cost: contract_pairs O(n·d·P); project O(n·(d·m + m³)).
class MomentTensor3 final : public SymmetricTensor3 {
 public:
  /// Rows given block by block: fills X (count×d standardised rows) and r (count labels) for
  /// this part's local rows [begin, begin + count). Called from several threads at once.
  using BlockSource = std::function<void(Index begin, Index count, Matrix& X, Vector& r)>;

  /// \throws std::invalid_argument if r.size() != X.rows() or X has no rows.
  MomentTensor3(const Matrix& X, const Vector& r, const ExecutionContext& context);
  /// The same for the standardised rows x̃ = W(x − μ) of raw rows X (n×d) and their
  /// standardiser `st` (r×d), never stored: each pass centres the raw rows in chunks that stay in
  /// cache and folds W into its own products (X̃G = (X − 1μᵀ)(WᵀG), X̃ᵀH = W(X − 1μᵀ)ᵀH),
  /// which saves the n×r copy and its n·d·r multiply-adds. dim() is r. X, r and st must outlive
  /// the tensor. \throws std::invalid_argument as above, or if st does not have X's d columns.
  MomentTensor3(const Matrix& X,
                const Standardizer& st,
                const Vector& r,
                const ExecutionContext& context);
  /// Over rows never held whole (data larger than memory): `local_rows` rows of `dim` inputs,
  /// read through `source` in every pass. `first_moment`, when given, is E[r x] already summed
  /// in a pass the caller shared (as first_moment() would compute it); otherwise a pass computes
  /// it. With `st` (which must outlive the tensor), the source gives raw rows of `dim` = d
  /// columns, standardised in each pass as by the constructor above, and dim() is r.
  /// \throws std::invalid_argument if there is no row, first_moment is not dim() long, or st
  /// is not for d columns.
  MomentTensor3(Index local_rows,
                Index dim,
                BlockSource source,
                const ExecutionContext& context,
                Vector first_moment = Vector(),
                const Standardizer* st = nullptr);

  Index dim() const override { return m_dim; }
  Matrix contract_pairs(const Matrix& U, const Matrix& V) const override;
  double contract(const Vector& u) const override;
  /// T(I, Q, Q) from Z = XQ in one pass: O(n·d·(m + m(m+1)/2)) instead of the default's
  /// O(n·d·3m(m+1)/2) through contract_pairs.
  Matrix contract_block(const Matrix& Q) const override;
  /// R = (1/n) Σ r_i z_i^{⊗3} − sym(m_z ⊗ QᵀQ), z = Qᵀx: one pass, O(n(dm + m³)).
  DenseSymmetricTensor3 project(const Matrix& Q) const override;

  /// m = Xᵀr/n, the first moment of the labels (d).
  const Vector& first_moment() const noexcept { return m_first; }

 private:
  // Σ over this part's blocks of kernel(X block, r block), combined over all parts.
  template <class Kernel>
  Matrix pass(Index rows, Index cols, const Kernel& kernel) const;

  // Rows in memory: raw rows standardised in each pass by st, or (st null) the rows as they are.
  MomentTensor3(const Matrix& X,
                const Standardizer* st,
                const Vector& r,
                const ExecutionContext& context);

  // A product's left factor G (dim()×m) as it applies to the rows the passes read: WᵀG for
  // raw rows, G itself otherwise; and a pass's sums Xᵀ(...) (one row per column read) as sums
  // over the standardised rows: W·S, or S.
  Matrix fold(const Matrix& G) const;
  Matrix unfold(const Matrix& S) const;

  const Matrix* m_X = nullptr;  // in memory, or
  const Vector* m_r = nullptr;
  BlockSource m_source;                // read block by block
  const Standardizer* m_st = nullptr;  // with m_X: raw rows, standardised in each pass
  Index m_local = 0;
  Index m_dim = 0;
  ExecutionContext m_context;
  Index m_rows = 0;  // over all parts
  Vector m_first;
};

/// M2 = Xᵀ diag(r) X / n − mean(r) I, the second-order score moment E[r S2(x)] (d×d).
Matrix second_moment(const Matrix& X, const Vector& r, const ExecutionContext& context);
/// The same for the standardised rows W(x − μ) of raw rows X (n×d) and their standardiser
/// (r×d), never stored (as MomentTensor3's): W [(X − 1μᵀ)ᵀ diag(r) (X − 1μᵀ)] Wᵀ / n − mean(r) I.
Matrix second_moment(const Matrix& X,
                     const Standardizer& st,
                     const Vector& r,
                     const ExecutionContext& context);
/// The same over `local_rows` rows of `dim` inputs read block by block.
Matrix second_moment(Index local_rows,
                     Index dim,
                     const MomentTensor3::BlockSource& source,
                     const ExecutionContext& context);

}  // namespace nnlift
