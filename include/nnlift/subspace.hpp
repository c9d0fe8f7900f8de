// The top-k subspace of an implicit symmetric tensor: sketch, then higher-order orthogonal
// iteration. SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <string>

#include <nnlift/tensor.hpp>
#include <nnlift/types.hpp>

namespace nnlift {

struct SubspaceOptions {
  Index rank = 0;         ///< k, 1 <= k <= d (required)
  int sketch_extra = 10;  ///< the sketch uses k + sketch_extra random pairs (u, v); >= 0
  int max_sweeps = 10;    ///< HOOI sweeps at most; >= 0
  /// Stop when the sine of the largest principal angle between sweeps, or what is left to move
  /// (the change × ρ/(1 − ρ), ρ = σ_{k+1}/σ_k, the linear rate of HOOI), is below it; >= 0
  double tolerance = 1e-8;
  /// Also stop when what is left to move is below noise_tolerance × ρ; >= 0 (0: off). For an
  /// unfolding of rank-k signal plus noise, σ_{k+1} is noise and ρ = σ_{k+1}/σ_k is a floor on
  /// the subspace's own statistical error (Wedin's bound ‖E‖/σ_k ≥ ρ): moving by a tenth of it
  /// changes nothing a later stage can see. train() uses 0.1.
  double noise_tolerance = 0;
  Matrix start;  ///< optional d×m extra start vectors (e.g. M2 eigenvectors × λ)
  /// false: no random sketch; HOOI starts from `start` alone, which must then have rank >= k
  /// (to continue from a subspace already found, as train() does for its second HOOI). The
  /// first sweep's change then counts for the stopping rule, as a HOOI step's.
  bool sketch = true;
  /// Optional d×(k + sketch_extra): the sketch T(I, u_p, v_p) for the pairs sketch_pairs(d,
  /// k + sketch_extra, seed), computed by the caller in a pass it shares with other sums; used
  /// instead of contracting T (the result is the same).
  Matrix sketch_values;
  std::uint64_t seed = 0;
};

/// The random unit pairs (u_p, v_p), p < pairs, of tensor_subspace's sketch for this seed: U and
/// V are d×pairs.
void sketch_pairs(Index d, Index pairs, std::uint64_t seed, Matrix& U, Matrix& V);

/// \throws std::invalid_argument naming the first violated field.
void validate(const SubspaceOptions& options);

struct SubspaceResult {
  Matrix Q;                ///< d×k orthonormal basis
  int sweeps = 0;          ///< HOOI sweeps done
  double last_change = 0;  ///< sin of the largest principal angle between the last two Q
  Vector singular_values;  ///< of the last T(I,Q,Q) unfolding (the first k+1 when available)
  double gap = 0;          ///< σ_k / σ_{k+1} of the last unfolding (infinity when k = d)
  Status status = Status::NotConverged;
  std::string message;
};

/// Top-k subspace of T (ALGORITHM.md §4.3b.1): random sketch [T(I,u_p,v_p)] (plus `start`,
/// each block normalised; or `start` alone when options.sketch is false), top-k left singular
/// vectors, then HOOI sweeps
/// Q ← top-k left singular vectors of the d×k² unfolding T(I,Q,Q) until the subspace settles.
/// \throws std::invalid_argument for invalid options or k > d. Cost per sweep: one
/// contract_block (for implicit tensors k(k+1)/2 contract_pairs) plus an O(d·k⁴) SVD.
SubspaceResult tensor_subspace(const SymmetricTensor3& T, const SubspaceOptions& options);

}  // namespace nnlift
