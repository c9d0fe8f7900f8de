// The robust tensor power method with implicit deflation.
// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nnlift/tensor.hpp>
#include <nnlift/types.hpp>

namespace nnlift {

/// Options of tensor_power_method(). Defaults follow ALGORITHM.md §4.3a ("practice").
struct PowerMethodOptions {
  Index rank = 0;            ///< k; 0 = T.dim(). Must be in [0, dim].
  int num_restarts = 30;     ///< L random starts per component; > 0
  int max_iterations = 100;  ///< N power updates per start, and N more after the winner; > 0
  double tolerance = 1e-12;  ///< stop a start when min(‖θ−θ'‖, ‖θ+θ'‖) < tolerance; >= 0
  std::uint64_t seed = 0;  ///< start (c, r) is seeded from (seed, c, r): deterministic
  int num_threads = 0;     ///< 0 = OpenMP default. Results do not depend on this.
};

/// \throws std::invalid_argument naming the first violated field, e.g.
/// "PowerMethodOptions::num_restarts = 0; must be > 0".
void validate(const PowerMethodOptions& options);

struct PowerMethodResult {
  Vector eigenvalues;           ///< λ̂_j > 0, in the order found (deflation order)
  Matrix eigenvectors;          ///< d×k, unit columns, sign chosen so that λ̂_j > 0
  std::vector<int> iterations;  ///< per component: iterations of the winning start + refinement
  Vector restart_gap;           ///< per component: |λ| of the winner minus |λ| of the runner-up
  Status status = Status::NotConverged;
  std::string message;  ///< why, when status != Success
};

/// Robust tensor power method (Anandkumar et al. 2014, Algorithm 1; ALGORITHM.md §4.3a) for an
/// orthogonally decomposable T ≈ Σ λ_j v_j^{⊗3} (whiten first otherwise). For each component:
/// L restarts from Gaussian directions, each iterating θ ← T̃(I,θ,θ)/‖·‖ on the deflated tensor
/// T̃ = T − Σ_{found} λ̂ v̂^{⊗3} (applied implicitly: no new tensor is built); the winner is the
/// start with the largest |T̃(θ,θ,θ)| (ties: lowest restart index), its sign is fixed so that
/// λ̂ > 0, and it is refined by N more updates. Status is NotConverged if a winner did not reach
/// the tolerance. Restarts run in parallel (OpenMP); the result is bitwise identical for any
/// num_threads. \throws std::invalid_argument for invalid options or k > dim.
/// Cost: (L+1)·N·k contractions T(I,θ,θ).
PowerMethodResult tensor_power_method(const SymmetricTensor3& T,
                                      const PowerMethodOptions& options = {});

}  // namespace nnlift
