// Symmetric third-order tensors, seen by algorithms only through contractions.
// SPDX-License-Identifier: MIT
#pragma once

#include <functional>
#include <vector>

#include <nnlift/types.hpp>

namespace nnlift {

class DenseSymmetricTensor3;

/// A symmetric tensor T ∈ R^{d×d×d}, given implicitly by its contractions. Decomposition
/// algorithms use nothing else, so T may be an explicit array or a moment computed from data
/// (ALGORITHM.md §4.2), which is never formed.
///
/// Implementers provide dim() and contract_pairs(); the other contractions have defaults built
/// on contract_pairs() and may be overridden when a cheaper formula exists.
/// Thread safety: all members are const and must be safe to call concurrently.
class SymmetricTensor3 {
 public:
  virtual ~SymmetricTensor3() = default;

  /// d, the size of each mode.
  virtual Index dim() const = 0;

  /// T(I, u_p, v_p) for p = 1..P, stacked as columns: U, V are d×P, the result is d×P.
  virtual Matrix contract_pairs(const Matrix& U, const Matrix& V) const = 0;

  /// T(I, u, u) ∈ R^d.
  Vector apply(const Vector& u) const;

  /// T(u, u, u). Default: uᵀ T(I, u, u).
  virtual double contract(const Vector& u) const;

  /// The d×d slice T(I, I, u). Default: contract_pairs(I, u 1ᵀ).
  virtual Matrix slice(const Vector& u) const;

  /// T(I, Q, Q) as a d×(m·m) matrix whose column a + m·b is T(I, q_a, q_b), for Q d×m.
  /// Default: contract_pairs on the m(m+1)/2 pairs a <= b, mirrored.
  virtual Matrix contract_block(const Matrix& Q) const;

  /// The m×m×m tensor T(Q, Q, Q) for Q d×m. Default: Qᵀ contract_block(Q).
  virtual DenseSymmetricTensor3 project(const Matrix& Q) const;
};

/// An explicit symmetric tensor, stored as d³ doubles: element (i, j, l) at i + d·j + d²·l
/// (equivalently the d×d² mode-1 unfolding with column j + d·l). For small d, tests and files.
/// Contractions run in parallel with the calling thread's budget: the num_threads of the
/// decomposition or training that uses the tensor (serially inside another parallel region).
class DenseSymmetricTensor3 final : public SymmetricTensor3 {
 public:
  DenseSymmetricTensor3() = default;

  /// From d³ values in the storage order above (C-order data of a symmetric array has the same
  /// values). \throws std::invalid_argument if data.size() != d³, an entry is not finite, or
  /// the largest asymmetry max |T_ijl − T_σ(ijl)| exceeds symmetry_tolerance·max(1, max |T|);
  /// the message reports the largest asymmetry and where it is.
  DenseSymmetricTensor3(Index d, std::vector<double> data, double symmetry_tolerance = 1e-10);

  /// The nearest symmetric tensor to raw d³ values (storage order above): the average over the
  /// six index permutations. \throws std::invalid_argument if data.size() != d³.
  static DenseSymmetricTensor3 symmetrize(Index d, const std::vector<double>& data);

  /// Σ_j λ_j v_j⊗v_j⊗v_j for V d×r (columns v_j) and λ of size r.
  /// \throws std::invalid_argument if the sizes differ or a value is not finite.
  static DenseSymmetricTensor3 from_factors(const Vector& lambda, const Matrix& V);

  Index dim() const override { return m_dim; }
  Matrix contract_pairs(const Matrix& U, const Matrix& V) const override;
  double contract(const Vector& u) const override;
  Matrix slice(const Vector& u) const override;
  /// By mode products, O(d³m + d²m²) instead of the default's O(d³m²).
  Matrix contract_block(const Matrix& Q) const override;
  DenseSymmetricTensor3 project(const Matrix& Q) const override;

  /// T_ijl. No bounds check beyond an assert.
  double operator()(Index i, Index j, Index l) const noexcept {
    return m_data[static_cast<std::size_t>(i + m_dim * (j + m_dim * l))];
  }
  /// The d×d² mode-1 unfolding (column j + d·l), a view of the storage.
  Eigen::Map<const Matrix> unfolding() const;
  /// The raw values, i + d·j + d²·l.
  const std::vector<double>& data() const noexcept { return m_data; }
  /// ‖T‖_F.
  double frobenius_norm() const;

 private:
  struct Trusted {};
  // For tensors the library builds symmetric by construction: no O(d³) symmetry scan.
  DenseSymmetricTensor3(Index d, std::vector<double> data, Trusted) noexcept
      : m_dim(d), m_data(std::move(data)) {}
  friend class SymmetricTensor3;

  Index m_dim = 0;
  std::vector<double> m_data;
};

/// An adapter that makes any contraction routine a SymmetricTensor3: the training pipeline
/// plugs its data-backed moment operator in here, and user code can do the same.
class CallbackSymmetricTensor3 final : public SymmetricTensor3 {
 public:
  using PairsFn = std::function<Matrix(const Matrix& U, const Matrix& V)>;
  using ContractFn = std::function<double(const Vector& u)>;

  /// \param d the dimension, >= 1. \param pairs computes T(I, u_p, v_p) column by column.
  /// \param contract optional T(u, u, u); when empty the default uᵀT(I,u,u) is used.
  /// \throws std::invalid_argument if d < 1 or pairs is empty.
  CallbackSymmetricTensor3(Index d, PairsFn pairs, ContractFn contract = {});

  Index dim() const override { return m_dim; }
  Matrix contract_pairs(const Matrix& U, const Matrix& V) const override;
  double contract(const Vector& u) const override;

 private:
  Index m_dim;
  PairsFn m_pairs;
  ContractFn m_contract;
};

/// Least-squares weights λ for fixed unit components V (d×r):
/// argmin ‖T − Σ λ_j v_j^{⊗3}‖_F, from the r×r Gram system ((v_iᵀv_j)³) λ = (T(v_j,v_j,v_j)).
/// Works for implicit tensors. Cost: r contractions + O(r³).
Vector fit_weights(const SymmetricTensor3& T, const Matrix& V);

/// ‖T − Σ_j λ_j v_j^{⊗3}‖_F / ‖T‖_F for an explicit tensor (0/0 is reported as 0).
double relative_residual(const DenseSymmetricTensor3& T, const Vector& lambda, const Matrix& V);

}  // namespace nnlift
