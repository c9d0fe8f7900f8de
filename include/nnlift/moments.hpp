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

/// Standardisation x̃ = W (x − μ) with W Σ̂ Wᵀ = I (W = Σ̂^{-1/2}, symmetric). ALGORITHM.md §4.1.
struct Standardizer {
  Vector mean;       ///< μ̂, d
  Matrix W;          ///< Σ̂^{-1/2}, d×d
  Matrix W_inverse;  ///< Σ̂^{1/2}
};

/// Fits μ̂ and Σ̂ (divisor n) from X (n×d). \throws DataError naming the columns involved when
/// Σ̂ is singular (smallest eigenvalue <= 1e-10 × largest): constant or collinear columns.
/// \throws std::invalid_argument if n < 2.
Standardizer fit_standardizer(const Matrix& X,
                              const std::vector<std::string>& names,
                              const ExecutionContext& context);

/// (X − 1μᵀ) Wᵀ, row blocks in parallel.
Matrix standardize(const Standardizer& s, const Matrix& X, const ExecutionContext& context);

/// Which control variate is subtracted from the centred labels before moments (§4.2b).
enum class Residualize {
  None,       ///< the paper's plain estimator: ỹ = y − mean(y)
  Linear,     ///< least squares on [1, x]
  Quadratic,  ///< least squares on [1, x, x_i x_j]
  Auto,       ///< quadratic when the normal equations are affordable, else linear (see
              ///< resolve_residualize)
};
const char* to_string(Residualize r) noexcept;
/// \throws std::invalid_argument listing the accepted names.
Residualize parse_residualize(const std::string& name);

/// What Auto means for n rows (over all parts) of d inputs: Quadratic while the normal equations
/// of p = 1 + d + d(d+1)/2 features cost at most 2e10 multiply-adds (n·p²), else Linear. Any
/// other mode is returned as it is.
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
  /// \throws std::invalid_argument if r.size() != X.rows() or X has no rows.
  MomentTensor3(const Matrix& X, const Vector& r, const ExecutionContext& context);

  Index dim() const override { return m_X.cols(); }
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
  const Matrix& m_X;
  const Vector& m_r;
  ExecutionContext m_context;
  Index m_rows = 0;  // over all parts
  Vector m_first;
};

/// M2 = Xᵀ diag(r) X / n − mean(r) I, the second-order score moment E[r S2(x)] (d×d).
Matrix second_moment(const Matrix& X, const Vector& r, const ExecutionContext& context);

}  // namespace nnlift
