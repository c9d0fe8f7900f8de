// The standardised rows x̃ = W(x − μ) as the training stages read them: stored (an n×r matrix),
// or computed in each pass from the raw rows and their standardiser, which saves the n×r copy
// and its n·d·r multiply-adds (at n = 10⁶, d = 100 on this machine: 800 MB, and 0.48 and 0.85 s
// in runs of 3.6 and 4.3 s). A pass then centres the raw rows in chunks that stay in cache and
// folds W into its own products: X̃G = (X − 1μᵀ)(WᵀG) and X̃ᵀH = W (X − 1μᵀ)ᵀH.
// SPDX-License-Identifier: MIT
#pragma once

#include <memory>
#include <vector>

#include <nnlift/moments.hpp>

#include "detail/io.hpp"
#include "detail/moment_kernels.hpp"
#include "detail/parallel.hpp"

namespace nnlift::detail {

class StandardRows {
 public:
  /// Rows already standardised.
  explicit StandardRows(const Matrix& Xs) : m_X(&Xs), m_zero(Vector::Zero(Xs.cols())) {}
  /// Raw rows and their standardiser, both outliving this.
  StandardRows(const Matrix& X, const Standardizer& st) : m_X(&X), m_st(&st) {}

  Index rows() const { return m_X->rows(); }
  /// r, the standardised rows' columns.
  Index cols() const { return m_st != nullptr ? m_st->rank() : m_X->cols(); }
  /// The columns a pass reads: d for raw rows.
  Index read_cols() const { return m_X->cols(); }
  /// The stored standardised rows, or nullptr.
  const Matrix* stored() const { return m_st == nullptr ? m_X : nullptr; }

  /// G (cols()×m) as it applies to the rows a pass reads: WᵀG, or G.
  Matrix fold(const Matrix& G) const { return m_st != nullptr ? detail::fold(*m_st, G) : G; }
  /// Sums over the rows a pass reads, S (read_cols()×m), as sums over the standardised rows.
  Matrix unfold(const Matrix& S) const { return m_st != nullptr ? detail::unfold(*m_st, S) : S; }
  /// The raw rows' standardiser, or nullptr when the rows are stored standardised.
  const Standardizer* standardizer() const { return m_st; }
  /// What the rows a pass reads are centred about: μ, or 0 for stored rows.
  const Vector& centre() const { return m_st != nullptr ? m_st->mean : m_zero; }
  /// The rows a pass reads at the given local indices (raw rows, or stored standardised ones),
  /// into fresh huge pages, columns in parallel (10⁶ × 100 doubles, 200,000 rows: 0.14 s one
  /// column after the other into 4 kB pages, in an instrumented build of tools/bench_train).
  Matrix gather(const std::vector<Index>& rows, int num_threads) const {
    Matrix out(static_cast<Index>(rows.size()), m_X->cols());
    advise_huge_pages(out);
    parallel_for(out.cols(), num_threads, [&](Index c) {
      const auto from = m_X->col(c);
      double* to = out.col(c).data();
      for (std::size_t i = 0; i < rows.size(); ++i) {
        to[i] = from(rows[i]);
      }
    });
    return out;
  }
  /// The same kind of rows (raw with this standardiser, or stored) for `X`, which outlives it.
  StandardRows like(const Matrix& X) const {
    return m_st != nullptr ? StandardRows(X, *m_st) : StandardRows(X);
  }
  /// The rows a pass reads, local rows [b, b + c).
  auto read_rows(Index b, Index c) const { return m_X->middleRows(b, c); }

  /// X̃G for local rows [b, b + c), G already folded (read_cols()×m): c×m.
  Matrix times_folded(Index b, Index c, const Matrix& Gf) const {
    if (m_st == nullptr) {
      return m_X->middleRows(b, c) * Gf;
    }
    return centred_times(m_X->middleRows(b, c), m_st->mean, Gf);
  }
  /// x̃ᵀG for local row i, G already folded (read_cols()×m).
  Eigen::RowVectorXd row_times_folded(Index i, const Matrix& Gf) const {
    if (m_st == nullptr) {
      return m_X->row(i) * Gf;
    }
    return (m_X->row(i) - m_st->mean.transpose()) * Gf;
  }

  /// The third-order score moment of labels r over these rows (r must outlive it).
  std::unique_ptr<MomentTensor3> tensor(const Vector& r, const ExecutionContext& context) const {
    return m_st != nullptr ? std::make_unique<MomentTensor3>(*m_X, *m_st, r, context)
                           : std::make_unique<MomentTensor3>(*m_X, r, context);
  }
  /// M2 of labels r over these rows.
  Matrix second_moment(const Vector& r, const ExecutionContext& context) const {
    return m_st != nullptr ? nnlift::second_moment(*m_X, *m_st, r, context)
                           : nnlift::second_moment(*m_X, r, context);
  }

 private:
  const Matrix* m_X;
  const Standardizer* m_st = nullptr;
  Vector m_zero;  // centre() of stored rows
};

}  // namespace nnlift::detail
