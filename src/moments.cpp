// Score-function cross-moments of data: reducer, standardisation, residualisation, M2, T̂.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <unistd.h>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>

#include <nnlift/moments.hpp>

#include "detail/check.hpp"
#include "detail/io.hpp"
#include "detail/moment_kernels.hpp"
#include "detail/names.hpp"
#include "detail/parallel.hpp"
#include "detail/text.hpp"

namespace nnlift {

Matrix detail::quadratic_features(const Matrix& Xb) {
  const Index d = Xb.cols();
  const Index p = 1 + d + d * (d + 1) / 2;
  Matrix F(Xb.rows(), p);
  detail::advise_huge_pages(F);  // up to 15 MB per block: fresh pages cost more than the fit
  F.col(0).setOnes();
  F.middleCols(1, d) = Xb;
  Index c = 1 + d;
  for (Index b = 0; b < d; ++b) {
    for (Index a = 0; a <= b; ++a, ++c) {
      F.col(c) = Xb.col(a).cwiseProduct(Xb.col(b));
    }
  }
  return F;
}

namespace {

// [FᵀF | Fᵀy] of a block's quadratic design F = [1, x, x_a x_b (a <= b)] (quadratic_features'
// order), from the distinct moments of its rows: FᵀF holds only sums of products of at most four
// of x's entries, and of the p²/2 ≈ d⁴/8 entries of its upper triangle only C(d + 3, 4) ≈ d⁴/24
// are distinct fourth-order sums. They come from W_qᵀ P_{≥b0}: W_q the products x_a x_b for b in
// a band [b0, b0 + 4) and a <= b, P_{≥b0} the products x_i x_j with b0 <= i <= j, which holds
// every sorted quadruple a <= b <= i <= j (and a few with i < b, unused), over chunks of 256 rows
// that stay in cache. Each Gram entry is then one of those sums, the same bits wherever it sits.
// A standalone comparison on 8,192 rows (d = 20 and 30): 1.9 and 2.2 times faster than the
// symmetric rank update of F that it replaces, which spends its time in F's memory traffic and
// twice the multiply-adds.
// Xb and yb are fresh copies (aligned storage): Eigen's reductions group their sums by the data's
// alignment, which for a view would depend on where a part's rows start.
Matrix quadratic_normal_block(const Matrix& Xb, const Vector& yb) {
  constexpr Index kBand = 4, kChunk = 256;
  const Index c = Xb.rows(), d = Xb.cols();
  const Index pairs = d * (d + 1) / 2, p = 1 + d + pairs;
  // Column of x_i x_j in F, and in P (ordered by i, then j: the pairs with i >= b are the
  // columns from start(b) on).
  const auto in_f = [d](Index i, Index j) {
    return i <= j ? 1 + d + j * (j + 1) / 2 + i : 1 + d + i * (i + 1) / 2 + j;
  };
  const auto start = [d](Index i) { return i * d - i * (i - 1) / 2; };
  // Column of x_a x_b (a <= b) in band q's W, whose first b is b0.
  const auto in_w = [](Index a, Index b, Index b0) {
    return (b * (b + 1) - b0 * (b0 + 1)) / 2 + a;
  };
  const Index bands = (d + kBand - 1) / kBand;
  std::vector<Matrix> S(static_cast<std::size_t>(bands)), T(S);
  std::vector<Vector> Wy(static_cast<std::size_t>(bands));
  for (Index q = 0; q < bands; ++q) {
    const Index b0 = q * kBand, b1 = std::min(d, b0 + kBand);
    const Index width = in_w(0, b1, b0);
    S[static_cast<std::size_t>(q)].setZero(width, pairs - start(b0));
    T[static_cast<std::size_t>(q)].setZero(width, d - b0);
    Wy[static_cast<std::size_t>(q)].setZero(width);
  }
  Matrix P, W;
  for (Index r0 = 0; r0 < c; r0 += kChunk) {
    const Index len = std::min(kChunk, c - r0);
    const auto X = Xb.middleRows(r0, len);
    const auto y = yb.segment(r0, len);
    P.resize(len, pairs);
    for (Index i = 0; i < d; ++i) {
      for (Index j = i; j < d; ++j) {
        P.col(start(i) + j - i) = X.col(i).cwiseProduct(X.col(j));
      }
    }
    for (Index q = 0; q < bands; ++q) {
      const Index b0 = q * kBand, b1 = std::min(d, b0 + kBand);
      W.resize(len, in_w(0, b1, b0));
      for (Index b = b0; b < b1; ++b) {
        W.middleCols(in_w(0, b, b0), b + 1) =
            X.leftCols(b + 1).array().colwise() * X.col(b).array();
      }
      const auto u = static_cast<std::size_t>(q);
      S[u].noalias() += W.transpose() * P.rightCols(pairs - start(b0));  // Σ x_a x_b x_i x_j
      T[u].noalias() += W.transpose() * X.rightCols(d - b0);             // Σ x_a x_b x_i
      Wy[u].noalias() += W.transpose() * y;                              // Σ x_a x_b y
    }
  }
  Matrix out = Matrix::Zero(p, p + 1);
  const Matrix M2 = Xb.transpose() * Xb;
  const Vector M1 = Xb.colwise().sum().transpose();
  out(0, 0) = static_cast<double>(c);
  out(0, p) = yb.sum();
  out.block(1, p, d, 1).noalias() = Xb.transpose() * yb;
  const auto set = [&out](Index r, Index q, double v) { out(r, q) = out(q, r) = v; };
  for (Index i = 0; i < d; ++i) {
    set(0, 1 + i, M1(i));
    for (Index j = i; j < d; ++j) {
      set(1 + i, 1 + j, M2(i, j));
      set(0, in_f(i, j), M2(i, j));
    }
  }
  for (Index q = 0; q < bands; ++q) {
    const auto u = static_cast<std::size_t>(q);
    const Index b0 = q * kBand, b1 = std::min(d, b0 + kBand);
    for (Index b = b0; b < b1; ++b) {
      out.block(in_f(0, b), p, b + 1, 1) = Wy[u].segment(in_w(0, b, b0), b + 1);
      for (Index a = 0; a <= b; ++a) {
        const Index row = in_w(a, b, b0);
        for (Index i = b; i < d; ++i) {
          // {a, b, i}: x_k times the pair of the other two, for each k.
          const double v = T[u](row, i - b0);
          set(1 + a, in_f(b, i), v);
          set(1 + b, in_f(a, i), v);
          set(1 + i, in_f(a, b), v);
          for (Index j = i; j < d; ++j) {
            // {a, b, i, j}: its three splits into two pairs.
            const double w = S[u](row, start(i) - start(b0) + j - i);
            set(in_f(a, b), in_f(i, j), w);
            set(in_f(a, i), in_f(b, j), w);
            set(in_f(a, j), in_f(b, i), w);
          }
        }
      }
    }
  }
  return out;
}

Matrix linear_features(const Matrix& Xb) {
  Matrix F(Xb.rows(), Xb.cols() + 1);
  F.col(0).setOnes();
  F.rightCols(Xb.cols()) = Xb;
  return F;
}

// The name of column j for a message (its number when the names are missing).
std::string column_name(const std::vector<std::string>& names, Index j, Index d) {
  return names.size() == static_cast<std::size_t>(d) ? names[static_cast<std::size_t>(j)]
                                                     : std::to_string(j + 1);
}

}  // namespace

Matrix detail::centred_gram(const Eigen::Ref<const Matrix>& Xb, const Vector& mean) {
  thread_local Matrix centred;  // reused: see standardize
  centred = Xb.rowwise() - mean.transpose();
  // Half the multiply-adds of a general product: the lower triangle, then mirrored.
  const Index d = Xb.cols();
  Matrix out = Matrix::Zero(d, d);
  out.selfadjointView<Eigen::Lower>().rankUpdate(centred.transpose());
  return Matrix(out.selfadjointView<Eigen::Lower>());
}

void detail::require_room_for_covariance(Index local_rows,
                                         Index d,
                                         Index extra,
                                         const ExecutionContext& context) {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  const double have = pages > 0 && page > 0
                          ? static_cast<double>(pages) * static_cast<double>(page)
                          : std::numeric_limits<double>::infinity();  // unknown: no limit
  // The sum keeps block partials (a wave of them where all rows are here; every local block's
  // for another reducer, whose combine takes them all), the tree's nodes and each thread's own
  // product; the whitening, the covariance, its copies, the correlation matrix, the eigenvectors
  // and the solver's workspace, and the whitening maps (about nine d x d matrices).
  const int threads = resolve_threads(context.num_threads());
  const Index blocks =
      std::max<Index>(1, static_cast<Index>(context.reducer().block_starts(local_rows).size()));
  const bool waves = dynamic_cast<const LocalReducer*>(&context.reducer()) != nullptr;
  const Index partials = waves ? std::min(blocks, sum_wave(threads, d + extra, d + 1)) : blocks;
  const double matrices = std::max(
      static_cast<double>(partials + 2 * threads) + std::ceil(std::log2(blocks + 1.0)) + 1.0, 9.0);
  const double need = matrices * 8.0 * static_cast<double>(d + extra) * static_cast<double>(d + 1);
  // Every part decides on every part's need and memory (they may differ between machines), so
  // that all of them stop here or none does.
  const Matrix mine = (Matrix(1, 2) << need, have).finished();
  const Matrix all = context.reducer().gather_rows(mine);
  Index worst = 0;
  for (Index r = 0; r < all.rows(); ++r) {
    worst = all(r, 0) / all(r, 1) > all(worst, 0) / all(worst, 1) ? r : worst;
  }
  if (all(worst, 0) > 0.8 * all(worst, 1)) {
    std::ostringstream msg;
    msg.precision(3);
    msg << d << " input columns: their d x d covariance and whitening need about "
        << all(worst, 0) * 1e-9 << " GB, more than this machine's memory allows ("
        << all(worst, 1) * 1e-9
        << " GB); leave columns out (--drop, --features) or reduce them first (e.g. by PCA)";
    throw DataError(msg.str());
  }
}

Vector detail::mean_and_covariance(Index n,
                                   Index d,
                                   const BlockRowsFn& rows,
                                   const ExecutionContext& context,
                                   Vector& mean,
                                   Matrix& cov,
                                   Index e,
                                   const BlockExtraFn& extra,
                                   const BlockLabelsFn& labels,
                                   LabelMoments* moments) {
  require_room_for_covariance(n, d, e, context);
  const bool with_labels = labels != nullptr && moments != nullptr;
  // The shift: the mean of the global first block (its part reads it; the others add zeros).
  const Index first = context.first_row(n);
  const Matrix head = context.sum(n, d + 2, 1, [&](Index b, Index c) {
    Matrix out = Matrix::Zero(d + 2, 1);
    if (first + b == 0) {
      out.topRows(d) = column_sums(rows(b, c));
      out(d, 0) = static_cast<double>(c);
      out(d + 1, 0) = with_labels ? sum_of(labels(b, c)) : 0.0;
    }
    return out;
  });
  const Vector shift = head.topRows(d) / std::max(head(d, 0), 1.0);
  // The labels about their own shift, the same block's mean: E[(x − s) y] − (μ − s) E[y] would
  // carry the rounding of μ − s (about the inputs' ulp) times E[y], 0.03 for inputs near 1e8 and
  // labels near 1e6; (μ − s)(E[y] − t) is small with it.
  const double label_shift = head(d + 1, 0) / std::max(head(d, 0), 1.0);
  // Σ (x − s)(x − s)ᵀ in the first d columns, Σ (x − s) in column d; the extra sums below them
  // (rows d .. d + e − 1 of column 0); with labels, Σ (x − s) y in column d + 1 and Σ y in row
  // d + e of column 0.
  const Index height = d + e + (with_labels ? 1 : 0), width = d + (with_labels ? 2 : 1);
  const Matrix sums = context.mean(n, height, width, [&](Index b, Index c) {
    const Eigen::Ref<const Matrix> X = rows(b, c);
    Matrix out = Matrix::Zero(height, width);
    out.topLeftCorner(d, d) = centred_gram(X, shift);
    out.col(d).head(d) = column_sums(X) - static_cast<double>(c) * shift;
    if (e > 0) {
      out.col(0).segment(d, e) = extra(b, c);
    }
    if (with_labels) {
      const Eigen::Ref<const Vector> y = labels(b, c);
      thread_local Vector shifted;
      shifted = y.array() - label_shift;
      out.col(d + 1).head(d) = centred_sums(X, shift, shifted);
      out(d + e, 0) = sum_of(y);
    }
    return out;
  });
  const Vector offset = sums.col(d).head(d);  // μ − s
  mean = shift + offset;
  cov = sums.topLeftCorner(d, d) - offset * offset.transpose();
  if (with_labels) {
    moments->mean = sums(d + e, 0);
    moments->cross = sums.col(d + 1).head(d) - offset * (moments->mean - label_shift);
  }
  return e > 0 ? Vector(sums.col(0).segment(d, e)) : Vector();
}

Standardizer fit_standardizer(const Matrix& X,
                              const std::vector<std::string>& names,
                              const ExecutionContext& context,
                              const StandardizerOptions& options) {
  return detail::fit_standardizer_and_labels(X, nullptr, names, context, options, nullptr);
}

Standardizer detail::fit_standardizer_and_labels(const Matrix& X,
                                                 const Vector* y,
                                                 const std::vector<std::string>& names,
                                                 const ExecutionContext& context,
                                                 const StandardizerOptions& options,
                                                 LabelMoments* moments) {
  const Index n = X.rows();
  const Index d = X.cols();
  detail::require(options.eigenvalue_floor >= 0 && options.eigenvalue_floor < 1,
                  "StandardizerOptions",
                  "eigenvalue_floor",
                  options.eigenvalue_floor,
                  "in [0, 1)");
  const Index rows = context.global_rows(n);
  if (rows < 2) {
    throw DataError("standardisation needs at least 2 rows; the data have " + std::to_string(rows));
  }
  Vector mean;
  Matrix cov;
  if (y != nullptr && y->size() != n) {
    detail::fail("fit_standardizer: y has " + std::to_string(y->size()) + " entries for " +
                 std::to_string(n) + " rows");
  }
  detail::mean_and_covariance(
      n,
      d,
      [&](Index b, Index c) { return Eigen::Ref<const Matrix>(X.middleRows(b, c)); },
      context,
      mean,
      cov,
      0,
      nullptr,
      y != nullptr ? detail::BlockLabelsFn([&](Index b, Index c) {
        return Eigen::Ref<const Vector>(y->segment(b, c));
      })
                   : detail::BlockLabelsFn(),
      moments);
  return detail::standardizer_from_moments(mean, cov, names, options);
}

Standardizer detail::standardizer_from_moments(const Vector& mean,
                                               const Matrix& cov,
                                               const std::vector<std::string>& names,
                                               const StandardizerOptions& options) {
  const Index d = cov.rows();
  std::vector<char> grouped(static_cast<std::size_t>(d), 0);
  for (const std::vector<Index>& group : options.one_hot_groups) {
    for (const Index j : group) {
      if (j < 0 || j >= d || grouped[static_cast<std::size_t>(j)]) {
        detail::fail(
            "StandardizerOptions::one_hot_groups: column " + std::to_string(j) +
            (j < 0 || j >= d ? " is outside [0, " + std::to_string(d) + ")" : " is in two groups"));
      }
      grouped[static_cast<std::size_t>(j)] = 1;
    }
  }
  Standardizer s;
  s.mean = mean;
  s.covariance = cov;
  for (Index j = 0; j < d; ++j) {
    if (grouped[static_cast<std::size_t>(j)]) {
      s.one_hot_columns.push_back(j);
    }
  }
  const auto names_of = [&](const std::vector<Index>& columns) {
    std::vector<std::string> out;
    for (const Index j : columns) {
      out.push_back(column_name(names, j, d));
    }
    return detail::name_list(out);
  };
  if (!cov.allFinite()) {
    // Values so large that their squares overflow: name the columns.
    std::vector<Index> culprits;
    for (Index j = 0; j < d; ++j) {
      if (!std::isfinite(cov(j, j))) {
        culprits.push_back(j);
      }
    }
    throw DataError("the input covariance overflows (values too large to square in column(s) " +
                    names_of(culprits) + "); rescale those columns");
  }
  // Column scales; a column whose variance is zero, or rounding noise against its mean, is
  // constant. (Relative to the mean only: a column of values near 1e-13 varies, whatever its
  // units; an absolute floor of 1e-24 on the variance dropped it as constant.)
  Vector inv_sd = Vector::Zero(d);
  for (Index j = 0; j < d; ++j) {
    const double var = cov(j, j);
    if (var > 0 && var > 1e-24 * s.mean(j) * s.mean(j)) {
      inv_sd(j) = 1.0 / std::sqrt(var);
    } else {
      s.constant_columns.push_back(j);
    }
  }
  if (!s.constant_columns.empty() && !options.drop_degenerate) {
    throw DataError("the input covariance is singular (constant columns: " +
                    names_of(s.constant_columns) + "); leave them out of the inputs");
  }
  // The correlation matrix's eigenpairs, ascending. A constant column's row and column are zero:
  // its eigenvector is its unit vector, eigenvalue 0, and the solver runs on the others only (a
  // 518-row file of 1,618 columns, 813 of them constant, spent 2.9 s of each fit here).
  Vector values = Vector::Zero(d);
  Matrix U = Matrix::Zero(d, d);
  {
    std::vector<Index> varying;
    Index constants = 0;
    for (Index j = 0; j < d; ++j) {
      if (inv_sd(j) != 0) {
        varying.push_back(j);
      } else {
        U(j, constants++) = 1.0;
      }
    }
    const auto m = static_cast<Index>(varying.size());
    if (m > 0) {
      const Vector inv_sd_m = inv_sd(varying);
      const Matrix corr = inv_sd_m.asDiagonal() * cov(varying, varying) * inv_sd_m.asDiagonal();
      const Eigen::SelfAdjointEigenSolver<Matrix> eig(corr);
      values.tail(m) = eig.eigenvalues();
      U(varying, Eigen::seqN(d - m, m)) = eig.eigenvectors();
    }
  }
  const double top = values.maxCoeff();
  if (!(top > 0)) {
    throw DataError("every input column is constant (" + names_of(s.constant_columns) +
                    "); there is nothing to learn from");
  }
  const double floor = std::max(options.eigenvalue_floor, 1e-13) * top;
  Index dropped = 0;
  while (dropped < d && !(values(dropped) > floor)) {
    ++dropped;
  }
  // Directions dropped beyond the constant columns (whose own eigenvalue is 0) and one per
  // one-hot group (whose centred columns sum to zero): collinearity.
  for (const std::vector<Index>& group : options.one_hot_groups) {
    const auto varying =
        std::count_if(group.begin(), group.end(), [&](Index j) { return inv_sd(j) != 0; });
    s.one_hot_directions += varying >= 2 ? 1 : 0;
  }
  s.one_hot_directions =
      std::min(s.one_hot_directions,
               std::max<Index>(dropped - static_cast<Index>(s.constant_columns.size()), 0));
  const Index collinear =
      dropped - static_cast<Index>(s.constant_columns.size()) - s.one_hot_directions;
  if (collinear > 0) {
    for (Index j = 0; j < d; ++j) {
      if (inv_sd(j) == 0) {
        continue;
      }
      for (Index e = 0; e < dropped; ++e) {
        if (std::abs(U(j, e)) > 0.1) {
          s.collinear_columns.push_back(j);
          break;
        }
      }
    }
    if (!options.drop_degenerate) {
      throw DataError("the input covariance is singular (collinear columns: " +
                      names_of(s.collinear_columns) + "); leave them out of the inputs");
    }
  }
  s.inv_sd = inv_sd;
  const Index r = d - dropped;
  const Matrix Ur = U.rightCols(r);
  const Vector root = values.tail(r).cwiseSqrt();
  const Vector sd = inv_sd.unaryExpr([](double v) { return v > 0 ? 1.0 / v : 0.0; });
  s.W = root.cwiseInverse().asDiagonal() * Ur.transpose() * inv_sd.asDiagonal();  // r×d
  s.W_inverse = sd.asDiagonal() * Ur * root.asDiagonal();                         // d×r
  if (r == d) {
    // The symmetric form (Σ̂^{-1/2} for equal column variances): a rotation of the above.
    s.W = Ur * s.W;
    s.W_inverse = s.W_inverse * Ur.transpose();
  }
  return s;
}

Matrix standardize(const Standardizer& s, const Matrix& X, const ExecutionContext& context) {
  return context.map_rows(
      X.rows(), s.W.rows(), [&](Index begin, Index count, Eigen::Ref<Matrix> rows) {
        // Centred in a buffer each thread reuses (a fresh block-sized matrix per block costs a
        // page fault per 4 kB).
        thread_local Matrix centred;
        centred = X.middleRows(begin, count).rowwise() - s.mean.transpose();
        rows.noalias() = centred * s.W.transpose();
      });
}

namespace {
const detail::EnumName<Residualize> kResidualizeNames[] = {{Residualize::None, "none"},
                                                           {Residualize::Linear, "linear"},
                                                           {Residualize::Quadratic, "quadratic"},
                                                           {Residualize::Auto, "auto"}};
// "auto" takes the quadratic control variate while n·p² stays below this many multiply-adds.
constexpr double kQuadraticBudget = 2e10;
}  // namespace

const char* to_string(Residualize r) noexcept { return detail::name_of(kResidualizeNames, r); }

Residualize parse_residualize(const std::string& name) {
  return detail::parse_name(kResidualizeNames, name, "residualisation");
}

Residualize resolve_residualize(Residualize mode, Index n, Index d) {
  if (mode != Residualize::Auto) {
    return mode;
  }
  const double p = 1.0 + static_cast<double>(d) + static_cast<double>(d * (d + 1) / 2);
  const double rows = static_cast<double>(n);
  return rows >= 20.0 * p && rows * p * p <= kQuadraticBudget ? Residualize::Quadratic
                                                              : Residualize::Linear;
}

Matrix detail::normal_block(const Matrix& F, const Eigen::Ref<const Vector>& y) {
  const Index p = F.cols();
  Matrix gram = Matrix::Zero(p, p);
  gram.selfadjointView<Eigen::Lower>().rankUpdate(F.transpose());
  Matrix out(p, p + 1);
  out.leftCols(p) = gram.selfadjointView<Eigen::Lower>();
  out.col(p).noalias() = F.transpose() * y;
  return out;
}

Vector detail::solve_normal(const Matrix& normal) {
  const Index p = normal.rows();
  Matrix gram = normal.leftCols(p);
  gram.diagonal().array() += 1e-12 * gram.trace() / static_cast<double>(p);
  return gram.ldlt().solve(normal.col(p));
}

Vector residualize(const Matrix& Xs,
                   const Vector& y,
                   Residualize mode,
                   const ExecutionContext& context) {
  const Index n = Xs.rows();
  const Index d = Xs.cols();
  if (y.size() != n) {
    detail::fail("residualize: y has " + std::to_string(y.size()) + " entries for " +
                 std::to_string(n) + " rows");
  }
  if (mode == Residualize::None) {
    return (y.array() - context.mean_of(y)).matrix();
  }
  mode = resolve_residualize(mode, context.global_rows(n), d);
  if (mode == Residualize::Quadratic) {
    return detail::subtract_quadratic(
        Xs, y, detail::quadratic_coefficients(Xs, y, context), context);
  }
  // Normal equations [FᵀF | Fᵀy] in one pass; a tiny relative ridge keeps LDLT well posed.
  const Matrix normal = context.sum(n, 1 + d, 2 + d, [&](Index b, Index c) {
    return detail::normal_block(linear_features(Xs.middleRows(b, c)), y.segment(b, c));
  });
  const Vector beta = detail::solve_normal(normal);
  return context.map_rows(n, 1, [&](Index b, Index c, Eigen::Ref<Matrix> rows) {
    rows.col(0).noalias() = y.segment(b, c) - linear_features(Xs.middleRows(b, c)) * beta;
  });
}

Vector detail::quadratic_coefficients(const Matrix& Xs,
                                      const Vector& y,
                                      const ExecutionContext& context) {
  const Index n = Xs.rows(), d = Xs.cols();
  const Index p = 1 + d + d * (d + 1) / 2;
  // Normal equations [FᵀF | Fᵀy] in one pass; a tiny relative ridge keeps LDLT well posed.
  return detail::solve_normal(context.sum(n, p, p + 1, [&](Index b, Index c) {
    return quadratic_normal_block(Matrix(Xs.middleRows(b, c)), Vector(y.segment(b, c)));
  }));
}

Vector detail::subtract_quadratic(const Matrix& Xs,
                                  const Vector& y,
                                  const Vector& beta,
                                  const ExecutionContext& context) {
  const Index n = Xs.rows(), d = Xs.cols();
  // g(x) = β₀ + xᵀβ₁ + xᵀBx with B symmetric (B_aa = β_aa, B_ab = B_ba = β_ab / 2): O(d²) per
  // row without building the p features.
  Matrix B(d, d);
  Index at = 1 + d;
  for (Index b = 0; b < d; ++b) {
    for (Index a = 0; a <= b; ++a, ++at) {
      B(a, b) = B(b, a) = a == b ? beta(at) : 0.5 * beta(at);
    }
  }
  const Vector linear = beta.segment(1, d);
  return context.map_rows(n, 1, [&](Index b, Index c, Eigen::Ref<Matrix> rows) {
    // The reductions go to fresh (aligned) storage: evaluated into the output's rows, whose
    // alignment depends on where this part's rows start, the row sums would be grouped
    // differently and the bits would depend on the partition.
    const Matrix Xb = Xs.middleRows(b, c);
    const Matrix XB = Xb * B;
    const Vector quadratic_part = XB.cwiseProduct(Xb).rowwise().sum();
    const Vector linear_part = Xb * linear;
    rows.col(0) = (y.segment(b, c).array() - beta(0)).matrix() - linear_part - quadratic_part;
  });
}

MomentTensor3::MomentTensor3(const Matrix& X, const Vector& r, const ExecutionContext& context)
    : MomentTensor3(X, nullptr, r, context) {}

MomentTensor3::MomentTensor3(const Matrix& X,
                             const Standardizer& st,
                             const Vector& r,
                             const ExecutionContext& context)
    : MomentTensor3(X, &st, r, context) {}

MomentTensor3::MomentTensor3(const Matrix& X,
                             const Standardizer* st,
                             const Vector& r,
                             const ExecutionContext& context)
    : m_X(&X),
      m_r(&r),
      m_st(st),
      m_local(X.rows()),
      m_dim(st != nullptr ? st->rank() : X.cols()),
      m_context(context),
      m_rows(context.global_rows(X.rows())) {
  if (m_rows < 1 || r.size() != X.rows()) {
    detail::fail("MomentTensor3: X has " + std::to_string(X.rows()) + " rows and r has " +
                 std::to_string(r.size()) + " entries; they must agree and be >= 1");
  }
  if (st != nullptr && (st->W.cols() != X.cols() || st->mean.size() != X.cols())) {
    detail::fail("MomentTensor3: the standardiser is for " + std::to_string(st->W.cols()) +
                 " columns; X has " + std::to_string(X.cols()));
  }
  m_first = unfold(pass(X.cols(), 1, detail::first_moment_block) / static_cast<double>(m_rows));
}

Matrix detail::fold(const Standardizer& st, const Matrix& G) { return st.W.transpose() * G; }

Matrix detail::unfold(const Standardizer& st, const Matrix& S) { return st.W * S; }

Matrix detail::unfold_pairs(const Standardizer& st, const Matrix& S) {
  const Index d = S.rows() - 2;
  Matrix out(st.rank() + 2, S.cols());
  out << unfold(st, S.topRows(d)), S.bottomRows(2);
  return out;
}

Matrix detail::centred_times(const Eigen::Ref<const Matrix>& Xb,
                             const Vector& mean,
                             const Matrix& Gf) {
  Matrix out(Xb.rows(), Gf.cols());
  for_centred_chunks(Xb, mean, [&](Index s, Index len, const Matrix& centred) {
    out.middleRows(s, len).noalias() = centred * Gf;
  });
  return out;
}

Matrix detail::centred_sums(const Eigen::Ref<const Matrix>& Xb,
                            const Vector& mean,
                            const Eigen::Ref<const Matrix>& H) {
  Matrix out = Matrix::Zero(Xb.cols(), H.cols());
  for_centred_chunks(Xb, mean, [&](Index s, Index len, const Matrix& centred) {
    out.noalias() += centred.transpose() * H.middleRows(s, len);
  });
  return out;
}

Matrix detail::first_moment_block(const Eigen::Ref<const Matrix>& Xb,
                                  const Eigen::Ref<const Vector>& rb) {
  return Xb.transpose() * rb;
}

Matrix MomentTensor3::fold(const Matrix& G) const {
  return m_st != nullptr ? detail::fold(*m_st, G) : G;
}

Matrix MomentTensor3::unfold(const Matrix& S) const {
  return m_st != nullptr ? detail::unfold(*m_st, S) : S;
}

MomentTensor3::MomentTensor3(Index local_rows,
                             Index dim,
                             BlockSource source,
                             const ExecutionContext& context,
                             Vector first_moment,
                             const Standardizer* st)
    : m_source(std::move(source)),
      m_st(st),
      m_local(local_rows),
      m_dim(st != nullptr ? st->rank() : dim),
      m_context(context),
      m_rows(context.global_rows(local_rows)) {
  if (m_rows < 1 || !m_source) {
    detail::fail("MomentTensor3: no rows, or no block source");
  }
  if (st != nullptr && st->W.cols() != dim) {
    detail::fail("MomentTensor3: the standardiser is for " + std::to_string(st->W.cols()) +
                 " columns; the source has dim = " + std::to_string(dim));
  }
  if (first_moment.size() > 0) {
    if (first_moment.size() != m_dim) {
      detail::fail("MomentTensor3: the first moment has " + std::to_string(first_moment.size()) +
                   " entries; expected " + std::to_string(m_dim));
    }
    m_first = std::move(first_moment);
    return;
  }
  m_first = unfold(pass(dim, 1, detail::first_moment_block) / static_cast<double>(m_rows));
}

template <class Kernel>
Matrix MomentTensor3::pass(Index rows, Index cols, const Kernel& kernel) const {
  // A block's kernel: on its rows as they are, or on its raw rows centred chunk by chunk.
  const auto block = [&](const Eigen::Ref<const Matrix>& Xb,
                         const Eigen::Ref<const Vector>& rb) -> Matrix {
    if (m_st == nullptr) {
      return kernel(Xb, rb);
    }
    Matrix out = Matrix::Zero(rows, cols);
    detail::add_centred_chunks(Xb, rb, m_st->mean, kernel, out);
    return out;
  };
  return m_context.sum(m_local, rows, cols, [&](Index b, Index c) -> Matrix {
    if (m_source) {
      thread_local Matrix Xb;
      thread_local Vector rb;
      m_source(b, c, Xb, rb);
      return block(Xb, rb);
    }
    return block(m_X->middleRows(b, c), m_r->segment(b, c));
  });
}

Matrix MomentTensor3::contract_pairs(const Matrix& U, const Matrix& V) const {
  const Index d = dim();
  const Index P = U.cols();
  if (U.rows() != d || V.rows() != d || V.cols() != P) {
    detail::fail("MomentTensor3::contract_pairs: U and V must both be " + std::to_string(d) + "xP");
  }
  const Matrix Uf = fold(U), Vf = fold(V);
  const Index read = Uf.rows();  // the columns a pass reads
  Matrix S = pass(read + 2,
                  P,
                  [&](const auto& Xb, const auto& rb) {
                    return detail::contract_pairs_block(Xb, rb, Uf, Vf);
                  }) /
             static_cast<double>(m_rows);
  if (m_st != nullptr) {
    S = detail::unfold_pairs(*m_st, S);
  }
  return detail::pairs_from_means(S, m_first, U, V);
}

Matrix detail::contract_pairs_block(const Eigen::Ref<const Matrix>& Xb,
                                    const Eigen::Ref<const Vector>& rb,
                                    const Matrix& U,
                                    const Matrix& V) {
  // Rows 0..d−1 hold Xᵀ[r ∘ XU ∘ XV], row d holds rᵀXV, row d+1 holds rᵀXU.
  // In chunks of rows whose products stay in cache.
  const Index d = Xb.cols(), P = U.cols(), chunk = detail::kChunkRows;
  thread_local Matrix XU, XV, W;
  Matrix out = Matrix::Zero(d + 2, P);
  for (Index s = 0; s < Xb.rows(); s += chunk) {
    const Index len = std::min(chunk, Xb.rows() - s);
    const auto rows = Xb.middleRows(s, len);
    const auto r = rb.segment(s, len);
    XU.noalias() = rows * U;
    XV.noalias() = rows * V;
    W = XU.cwiseProduct(XV).array().colwise() * r.array();
    out.topRows(d).noalias() += rows.transpose() * W;
    out.row(d).noalias() += r.transpose() * XV;
    out.row(d + 1).noalias() += r.transpose() * XU;
  }
  return out;
}

Matrix detail::pairs_from_means(const Matrix& S,
                                const Vector& first,
                                const Matrix& U,
                                const Matrix& V) {
  const Index d = S.rows() - 2;
  Matrix Y = S.topRows(d);
  Y.noalias() -= first * U.cwiseProduct(V).colwise().sum();
  Y.noalias() -= U * S.row(d).asDiagonal();
  Y.noalias() -= V * S.row(d + 1).asDiagonal();
  return Y;
}

double MomentTensor3::contract(const Vector& u) const {
  const Vector uf = fold(u);
  const Matrix s = pass(1, 1, [&](const auto& Xb, const auto& rb) {
    const Vector xu = Xb * uf;
    return Matrix::Constant(1, 1, rb.dot(xu.array().cube().matrix()));
  });
  return s(0, 0) / static_cast<double>(m_rows) - 3.0 * u.squaredNorm() * m_first.dot(u);
}

Matrix MomentTensor3::contract_block(const Matrix& Q) const {
  const Index d = dim();
  const Index m = Q.cols();
  if (Q.rows() != d) {
    detail::fail("MomentTensor3::contract_block: Q has " + std::to_string(Q.rows()) +
                 " rows; expected " + std::to_string(d));
  }
  const Index pairs = m * (m + 1) / 2;
  const Matrix Qf = fold(Q);
  const Index read = Qf.rows();  // the columns a pass reads
  // One pass: rows 0..read−1 hold Xᵀ[r ∘ z_a ∘ z_b] for the pairs a <= b; row `read` holds rᵀZ.
  const Matrix S = pass(read + 1,
                        pairs,
                        [&](const auto& Xb, const auto& rb) {
                          // In chunks of rows whose products stay in cache.
                          const Index c = Xb.rows(), chunk = detail::kChunkRows;
                          thread_local Matrix Z, RZ, W;
                          Matrix out = Matrix::Zero(read + 1, pairs);
                          for (Index s = 0; s < c; s += chunk) {
                            const Index len = std::min(chunk, c - s);
                            const auto rows = Xb.middleRows(s, len);
                            Z.noalias() = rows * Qf;
                            RZ = Z.array().colwise() * rb.segment(s, len).array();
                            W.resize(len, pairs);
                            Index p = 0;
                            for (Index bb = 0; bb < m; ++bb) {
                              for (Index a = 0; a <= bb; ++a, ++p) {
                                W.col(p) = RZ.col(a).cwiseProduct(Z.col(bb));
                              }
                            }
                            out.topRows(read).noalias() += rows.transpose() * W;
                            out.row(read).head(m) += RZ.colwise().sum();
                          }
                          return out;
                        }) /
                   static_cast<double>(m_rows);
  const Vector rz = S.row(read).head(m).transpose();  // rᵀZ/n
  const Matrix top = unfold(S.topRows(read));
  Matrix out(d, m * m);
  Index p = 0;
  for (Index bb = 0; bb < m; ++bb) {
    for (Index a = 0; a <= bb; ++a, ++p) {
      const Vector col =
          top.col(p) - m_first * Q.col(a).dot(Q.col(bb)) - Q.col(a) * rz(bb) - Q.col(bb) * rz(a);
      out.col(a + m * bb) = col;
      out.col(bb + m * a) = col;
    }
  }
  return out;
}

DenseSymmetricTensor3 MomentTensor3::project(const Matrix& Q) const {
  const Index m = Q.cols();
  if (Q.rows() != dim()) {
    detail::fail("MomentTensor3::project: Q has " + std::to_string(Q.rows()) + " rows; expected " +
                 std::to_string(dim()));
  }
  // (r ∘ Z)ᵀ (Z ⊙ Z) over sub-blocks, so the n×m² Khatri–Rao block stays small.
  const Matrix Qf = fold(Q);
  const Matrix acc = pass(m,
                          m * m,
                          [&](const auto& Xb, const auto& rb) {
                            const Index c = Xb.rows();
                            Matrix out = Matrix::Zero(m, m * m);
                            const Index sub = detail::kChunkRows;
                            for (Index s = 0; s < c; s += sub) {
                              const Index len = std::min(sub, c - s);
                              const Matrix Z = Xb.middleRows(s, len) * Qf;
                              Matrix KZ(len, m * m);  // column a + m·l holds z_a z_l
                              for (Index l = 0; l < m; ++l) {
                                KZ.middleCols(m * l, m) = Z.array().colwise() * Z.col(l).array();
                              }
                              const Matrix RZ = Z.array().colwise() * rb.segment(s, len).array();
                              out.noalias() += RZ.transpose() * KZ;
                            }
                            return out;
                          }) /
                     static_cast<double>(m_rows);
  const Vector mz = Q.transpose() * m_first;
  const Matrix G = Q.transpose() * Q;
  std::vector<double> data(acc.data(), acc.data() + acc.size());
  for (Index c = 0; c < m; ++c) {
    for (Index b = 0; b < m; ++b) {
      for (Index a = 0; a < m; ++a) {
        data[static_cast<std::size_t>(a + m * (b + m * c))] -=
            mz(a) * G(b, c) + mz(b) * G(a, c) + mz(c) * G(a, b);
      }
    }
  }
  return DenseSymmetricTensor3::symmetrize(m, data);
}

// A block's [Xbᵀ diag(rb) Xb | Σ rb] (the sum in entry (0, d)).
Matrix detail::second_moment_block(const Eigen::Ref<const Matrix>& Xb,
                                   const Eigen::Ref<const Vector>& rb) {
  const Index d = Xb.cols();
  // Half the multiply-adds of a general product (r may be negative, so not a rank update): the
  // lower triangle, then mirrored; the weighted rows in chunks that stay in cache.
  Matrix out = Matrix::Zero(d, d + 1);
  thread_local Matrix weighted;
  const Index chunk = detail::kChunkRows;
  for (Index s = 0; s < Xb.rows(); s += chunk) {
    const Index len = std::min(chunk, Xb.rows() - s);
    weighted.noalias() = rb.segment(s, len).asDiagonal() * Xb.middleRows(s, len);
    out.leftCols(d).triangularView<Eigen::Lower>() += Xb.middleRows(s, len).transpose() * weighted;
  }
  out.leftCols(d).triangularView<Eigen::StrictlyUpper>() =
      out.leftCols(d).transpose().triangularView<Eigen::StrictlyUpper>();
  out(0, d) = detail::sum_of(rb);
  return out;
}

Matrix detail::second_moment_from(const Matrix& S, const Standardizer& st) {
  const Index d = S.rows();
  Matrix M = st.W * S.leftCols(d) * st.W.transpose();
  M.diagonal().array() -= S(0, d);
  return M;
}

Matrix detail::second_moment_from(const Matrix& S) {
  const Index d = S.rows();
  Matrix M = S.leftCols(d);
  M.diagonal().array() -= S(0, d);
  return M;
}

Matrix second_moment(const Matrix& X, const Vector& r, const ExecutionContext& context) {
  // One pass: XᵀDX in the first d columns, Σ r in the last.
  return detail::second_moment_from(
      context.mean(X.rows(), X.cols(), X.cols() + 1, [&](Index b, Index c) {
        return detail::second_moment_block(X.middleRows(b, c), r.segment(b, c));
      }));
}

Matrix second_moment(const Matrix& X,
                     const Standardizer& st,
                     const Vector& r,
                     const ExecutionContext& context) {
  const Index d = X.cols();
  if (r.size() != X.rows() || st.W.cols() != d || st.mean.size() != d) {
    detail::fail("second_moment: X is " + std::to_string(X.rows()) + "x" + std::to_string(d) +
                 ", r has " + std::to_string(r.size()) + " entries and the standardiser is for " +
                 std::to_string(st.W.cols()) + " columns");
  }
  const Matrix S = context.mean(X.rows(), d, d + 1, [&](Index b, Index c) {
    Matrix out = Matrix::Zero(d, d + 1);
    detail::add_centred_chunks(
        X.middleRows(b, c), r.segment(b, c), st.mean, detail::second_moment_block, out);
    return out;
  });
  return detail::second_moment_from(S, st);
}

Matrix second_moment(Index local_rows,
                     Index dim,
                     const MomentTensor3::BlockSource& source,
                     const ExecutionContext& context) {
  return detail::second_moment_from(context.mean(local_rows, dim, dim + 1, [&](Index b, Index c) {
    thread_local Matrix Xb;
    thread_local Vector rb;
    source(b, c, Xb, rb);
    return detail::second_moment_block(Xb, rb);
  }));
}

}  // namespace nnlift
