// Whitening: from a second-order matrix, and the sign-agnostic whitening from the tensor itself.
// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <string>

#include <nnlift/tensor.hpp>
#include <nnlift/types.hpp>

namespace nnlift {

/// Which symmetric eigensolver whiten() uses.
enum class EigenSolverKind {
  Auto,     ///< Spectra when k is much smaller than d (d >= 4k + 20), dense otherwise
  Dense,    ///< Eigen::SelfAdjointEigenSolver, O(d³)
  Spectra,  ///< Spectra::SymEigsSolver (Lanczos) for the k eigenvalues of largest magnitude
};

struct WhitenOptions {
  Index rank = 0;  ///< k, 1 <= k <= d (required)
  EigenSolverKind solver = EigenSolverKind::Auto;
  double relative_floor = 1e-12;  ///< eigenvalues below floor·max|λ| count as zero
};

/// \throws std::invalid_argument naming the first violated field (rank must be >= 1).
void validate(const WhitenOptions& options);

/// A whitening of the definite part of M: WᵀMW = s·I_k, where s = ±1 is the common sign of the
/// top-k eigenvalues. If a = unwhiten·v then Wᵀa = v: unwhiten = U|Λ|^{1/2} undoes W on span(U).
struct Whitening {
  Matrix W;            ///< d×k, U_k |Λ_k|^{-1/2}
  Matrix unwhiten;     ///< d×k, U_k |Λ_k|^{1/2}
  Vector eigenvalues;  ///< the top-k eigenvalues by magnitude, largest magnitude first
  double sign = 1.0;   ///< the common sign of the eigenvalues
  std::string solver;  ///< "dense" or "spectra"
  Status status = Status::NumericalIssue;
  std::string message;  ///< why, when status != Success
};

/// Whitens a symmetric matrix M (d×d) on its top-k eigenspace by magnitude (ALGORITHM.md §4.3a).
/// Mixed signs among the top-k eigenvalues make "whitening by |λ|" silently wrong (§3.3): then
/// the result has status NotDefinite and empty W, never a wrong W. A (near-)zero eigenvalue gives
/// NumericalIssue. \throws std::invalid_argument if M is not square, k > d, or M has non-finite
/// entries or is not symmetric (largest asymmetry reported).
/// Cost: O(d³) dense, or O(d²·k·iterations) with Spectra.
Whitening whiten(const Matrix& M, const WhitenOptions& options);

struct SignAgnosticOptions {
  int max_iterations = 200;  ///< projected supergradient steps per start at most; > 0
  int patience = 30;         ///< stop a start after this many steps without improvement; > 0
  int num_starts = 1;        ///< random starting θ (the problem is concave: few are needed); > 0
  std::uint64_t seed = 0;
};

/// \throws std::invalid_argument naming the first violated field.
void validate(const SignAgnosticOptions& options);

/// The result of maximising λ_min(T(I,I,θ)) over ‖θ‖ <= 1.
struct SignAgnosticWhitening {
  Vector theta;               ///< the maximiser found
  double min_eigenvalue = 0;  ///< λ_min(T(I,I,θ)) at theta; > 0 means a definite whitening
  Matrix W;                   ///< M_θ^{-1/2} (k×k), empty unless status == Success
  Matrix unwhiten;            ///< M_θ^{1/2}
  int iterations = 0;
  Status status = Status::NotDefinite;
  std::string message;
};

/// Sign-agnostic whitening (ALGORITHM.md §4.3, [N]): for T = Σ λ_j a_j^{⊗3} with independent a_j
/// spanning R^k, M_θ = T(I,I,θ) = Σ λ_j⟨a_j,θ⟩ a_j a_jᵀ is positive definite for suitable θ
/// whatever the signs of λ. λ_min(M_θ) is concave in θ; it is maximised by projected supergradient
/// ascent (supergradient T(v,v,·) for the bottom eigenvector v). If the best value is not
/// positive, status is NotDefinite and W is empty: a non-definite whitening is never returned.
/// \throws std::invalid_argument for invalid options. Cost O(starts·iterations·k³).
SignAgnosticWhitening sign_agnostic_whitening(const SymmetricTensor3& T,
                                              const SignAgnosticOptions& options = {});

}  // namespace nnlift
