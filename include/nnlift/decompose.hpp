// One entry point for symmetric CP decomposition, explicit or implicit.
// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nnlift/jennrich.hpp>
#include <nnlift/power_method.hpp>
#include <nnlift/subspace.hpp>
#include <nnlift/tensor.hpp>
#include <nnlift/whiten.hpp>

namespace nnlift {

enum class DecomposeMethod {
  Auto,      ///< ALS, and the whitened power method when a definite whitening exists; best residual
  Power,     ///< sign-agnostic whitening + robust tensor power method + un-whitening (route a)
  Jennrich,  ///< Jennrich's simultaneous diagonalisation, best of several trials (route b, raw)
  Als,       ///< Jennrich then CP-ALS refinement (route b)
};

const char* to_string(DecomposeMethod method) noexcept;
/// \throws std::invalid_argument listing the accepted names.
DecomposeMethod parse_decompose_method(const std::string& name);

struct DecomposeOptions {
  Index rank = 0;  ///< k, 1 <= k <= d (required)
  DecomposeMethod method = DecomposeMethod::Auto;
  /// The sub-options' rank, seed and num_threads fields are derived from the three fields of
  /// this struct: leave them 0 (validate() refuses anything else).
  PowerMethodOptions power;       ///< for Power
  SignAgnosticOptions whitening;  ///< for Power
  JennrichOptions jennrich;       ///< for Jennrich and Als
  AlsOptions als;                 ///< for Als
  SubspaceOptions subspace;       ///< when k < d
  std::uint64_t seed = 0;         ///< every sub-option's seed is derived from it
  int num_threads = 0;            ///< 0 = OpenMP default. Results do not depend on this.
};

/// \throws std::invalid_argument naming the first violated field.
void validate(const DecomposeOptions& options);

struct DecomposeResult {
  Vector lambda;      ///< k weights, λ_j > 0 (sign moved into the component), descending
  Matrix components;  ///< d×k unit columns
  DecomposeMethod method_used = DecomposeMethod::Auto;
  std::vector<int> iterations;  ///< per component (power) or one entry: ALS sweeps / trials
  Vector restart_gap;           ///< power method only: per component, winner − runner-up |λ|
  double relative_residual = 0;  ///< ‖T − Σλv^{⊗3}‖_F/‖T‖_F (of the projected core if implicit)
  bool residual_is_exact = false;       ///< true when computed on the full explicit tensor
  double whitening_min_eigenvalue = 0;  ///< power: λ_min(T(I,I,θ)) of the whitening used
  int subspace_sweeps = 0;              ///< HOOI sweeps when k < d
  double subspace_gap = 0;              ///< σ_k/σ_{k+1} of the subspace step when k < d
  Status status = Status::NumericalIssue;
  std::string message;
};

/// Decomposes a symmetric tensor T ≈ Σ_{j=1..k} λ_j v_j^{⊗3} (ALGORITHM.md §4.3). When k < d it
/// first finds the top-k subspace Q (tensor_subspace) and decomposes the k×k×k core T(Q,Q,Q);
/// components are mapped back and normalised. Mixed-sign λ are supported by every method.
/// \throws std::invalid_argument for invalid options or k > d; DataError for a zero tensor.
DecomposeResult decompose(const SymmetricTensor3& T, const DecomposeOptions& options);

}  // namespace nnlift
