// Non-orthogonal CP decomposition of a full-rank symmetric k×k×k tensor: Jennrich + CP-ALS.
// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <string>

#include <nnlift/tensor.hpp>
#include <nnlift/types.hpp>

namespace nnlift {

struct JennrichOptions {
  int num_trials = 20;         ///< random (θ1, θ2) pairs; the best by residual wins; > 0
  double max_condition = 1e8;  ///< trials whose factor matrix is worse conditioned are rejected
  std::uint64_t seed = 0;
  int num_threads = 0;  ///< 0 = OpenMP default. Results do not depend on this.
};

struct AlsOptions {
  int max_sweeps = 200;      ///< > 0
  double tolerance = 1e-13;  ///< stop when the relative residual changes by less; >= 0
  double ridge = 1e-14;      ///< relative Tikhonov term in the normal equations; >= 0
};

/// \throws std::invalid_argument naming the first violated field.
void validate(const JennrichOptions& options);
/// \throws std::invalid_argument naming the first violated field.
void validate(const AlsOptions& options);

/// A CP decomposition T ≈ Σ_j λ_j v_j^{⊗3}.
struct CpResult {
  Vector lambda;                 ///< r weights of either sign (fitted by least squares)
  Matrix factors;                ///< k×r unit columns
  double relative_residual = 0;  ///< ‖T − Σ λ v^{⊗3}‖_F / ‖T‖_F
  int iterations = 0;            ///< Jennrich: accepted trials; ALS: sweeps
  Status status = Status::NumericalIssue;
  std::string message;
};

/// Jennrich's simultaneous diagonalisation (ALGORITHM.md §4.3b.3) of a k×k×k tensor of rank k:
/// eigenvectors of T(I,I,θ1) T(I,I,θ2)⁻¹; a complex-conjugate eigenpair (z, z̄) contributes
/// Re z and Im z. Trials with cond(U) > max_condition are rejected; among the rest the one with
/// the smallest least-squares residual wins. Status NumericalIssue if every trial was rejected.
/// Trials run in parallel, bitwise independent of num_threads. Cost O(trials·k⁴).
CpResult jennrich(const DenseSymmetricTensor3& T, const JennrichOptions& options = {});

/// Asymmetric CP-ALS refinement from `initial` (k×r) (ALGORITHM.md §4.3b.4): three factors
/// A = B = C = initial, alternately A ← T_(1) KR(B,C) ((BᵀB)∘(CᵀC))⁻¹ etc.; at the end the factors
/// are normalised, sign-aligned to A and averaged, and λ refitted. Status NotConverged if the
/// sweep limit was reached first. \throws std::invalid_argument if initial.rows() != T.dim().
/// Cost O(sweeps·k³·r).
CpResult cp_als(const DenseSymmetricTensor3& T,
                const Matrix& initial,
                const AlsOptions& options = {});

}  // namespace nnlift
