// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include <nnlift/activation.hpp>
#include <nnlift/moments.hpp>

#include "detail/moment_kernels.hpp"
#include "test_helpers.hpp"

using nnlift::ExecutionContext;
using nnlift::LocalReducer;
using nnlift::MomentTensor3;

namespace {

// The explicit empirical moment (1/n) Σ r_i S3(x_i) as a d×d×d array, for small d.
nnlift::DenseSymmetricTensor3 explicit_moment(const Matrix& X, const Vector& r) {
  const Index n = X.rows(), d = X.cols();
  std::vector<double> T(static_cast<std::size_t>(d * d * d), 0.0);
  for (Index s = 0; s < n; ++s) {
    const Vector x = X.row(s).transpose();
    for (Index l = 0; l < d; ++l) {
      for (Index j = 0; j < d; ++j) {
        for (Index i = 0; i < d; ++i) {
          double v = x(i) * x(j) * x(l);
          v -= (i == j ? x(l) : 0.0) + (i == l ? x(j) : 0.0) + (j == l ? x(i) : 0.0);
          T[static_cast<std::size_t>(i + d * (j + d * l))] += r(s) * v / static_cast<double>(n);
        }
      }
    }
  }
  return nnlift::DenseSymmetricTensor3(d, T);
}

}  // namespace

TEST_SUITE("moments") {
  TEST_CASE("moments: every contraction of the data-backed tensor equals the explicit S3 sum") {
    for (Index d : {3, 6}) {
      nnlift::detail::Rng rng(30 + static_cast<std::uint64_t>(d));
      const Matrix X = rng.normal_matrix(500, d);
      const Vector r = rng.normal_vector(500);
      const LocalReducer blocks(64);  // several blocks
      const ExecutionContext reducer(blocks, 2);
      const MomentTensor3 T(X, r, reducer);
      const nnlift::DenseSymmetricTensor3 E = explicit_moment(X, r);
      const Matrix U = rng.normal_matrix(d, 4), V = rng.normal_matrix(d, 4);
      const Vector u = rng.normal_vector(d);
      const Matrix Q = rng.normal_matrix(d, 2);  // not orthonormal: the G = QᵀQ term matters
      CAPTURE(d);
      CHECK((T.contract_pairs(U, V) - E.contract_pairs(U, V)).norm() < 1e-12);
      CHECK(std::abs(T.contract(u) - E.contract(u)) < 1e-12);
      CHECK((T.slice(u) - E.slice(u)).norm() < 1e-12);
      CHECK((T.contract_block(Q) - E.contract_block(Q)).norm() < 1e-12);
      CHECK((T.project(Q).unfolding() - E.project(Q).unfolding()).norm() < 1e-12);
    }
  }

  TEST_CASE("moments: the tensor of rows standardised in each pass is that of the stored rows") {
    // Raw rows far from zero, of unequal scales, one column a combination of two others (the
    // standardiser drops a direction: r = d − 1); 3,000 rows cross several chunks and blocks.
    nnlift::detail::Rng rng(41);
    const Index n = 3000, d = 5;
    Matrix X = rng.normal_matrix(n, d);
    X.col(4) = X.col(0) - 2.0 * X.col(1);
    X.col(2) = (1e4 + 30.0 * X.col(2).array()).matrix();
    X.col(3) *= 1e-3;
    const Vector r = rng.normal_vector(n);
    const LocalReducer blocks(1000);
    const ExecutionContext context(blocks, 2);
    const nnlift::Standardizer st = nnlift::fit_standardizer(X, {}, context);
    REQUIRE(st.rank() == d - 1);
    const Matrix Xs = nnlift::standardize(st, X, context);
    const MomentTensor3 stored(Xs, r, context), folded(X, st, r, context);
    REQUIRE(folded.dim() == d - 1);
    const Matrix U = rng.normal_matrix(d - 1, 3), V = rng.normal_matrix(d - 1, 3);
    const Vector u = rng.normal_vector(d - 1);
    const Matrix Q = rng.normal_matrix(d - 1, 2);
    const auto near = [](const Matrix& a, const Matrix& b) {
      return (a - b).norm() <= 1e-10 * std::max(1.0, b.norm());
    };
    CHECK(near(folded.first_moment(), stored.first_moment()));
    CHECK(near(folded.contract_pairs(U, V), stored.contract_pairs(U, V)));
    CHECK(std::abs(folded.contract(u) - stored.contract(u)) <=
          1e-10 * std::abs(stored.contract(u)));
    CHECK(near(folded.contract_block(Q), stored.contract_block(Q)));
    CHECK(near(folded.project(Q).unfolding(), stored.project(Q).unfolding()));
    CHECK(near(nnlift::second_moment(X, st, r, context), nnlift::second_moment(Xs, r, context)));
    // Bitwise the same for any thread count, and refused for a standardiser of other columns.
    const MomentTensor3 one(X, st, r, ExecutionContext(blocks, 1));
    CHECK((one.contract_block(Q).array() == folded.contract_block(Q).array()).all());
    const nnlift::Standardizer other = nnlift::fit_standardizer(X.leftCols(3), {}, context);
    CHECK_THROWS_AS(MomentTensor3(X, other, r, context), std::invalid_argument);
    CHECK_THROWS_AS(nnlift::second_moment(X, other, r, context), std::invalid_argument);
  }

  TEST_CASE("moments: results are bitwise identical for 1 and 2 threads") {
    nnlift::detail::Rng rng(3);
    const Matrix X = rng.normal_matrix(20000, 5);
    const Vector r = rng.normal_vector(20000);
    const ExecutionContext one(1), two(2);
    const MomentTensor3 a(X, r, one), b(X, r, two);
    const Matrix Q = test::random_orthonormal(5, 3, 1);
    CHECK((a.contract_block(Q).array() == b.contract_block(Q).array()).all());
    CHECK((a.project(Q).unfolding().array() == b.project(Q).unfolding().array()).all());
    CHECK((nnlift::second_moment(X, r, one).array() == nnlift::second_moment(X, r, two).array())
              .all());
  }

  TEST_CASE("moments: Stein's identity, T(a,a,a) of one unit is E[sigma'''] (Gauss-Hermite)") {
    // y = tanh(<a, x> + b), x ~ N(0, I): E[y S3(x)](a, a, a) = E[tanh'''(b + Z)] = κ3(b).
    const Index n = 200000, d = 4;
    nnlift::detail::Rng rng(12);
    const Matrix X = rng.normal_matrix(n, d);
    const Vector a = test::random_unit_columns(d, 1, 5).col(0);
    const double b = 0.3;
    Vector y(n);
    for (Index i = 0; i < n; ++i) {
      y(i) = std::tanh(X.row(i).dot(a) + b);
    }
    const ExecutionContext reducer;
    const Vector r = nnlift::residualize(X, y, nnlift::Residualize::Linear, reducer);
    const MomentTensor3 T(X, r, reducer);
    const double expected = nnlift::activation_moment(nnlift::Activation::Tanh, 3, b);
    // Monte Carlo standard error of the estimate: sd(r·He3(<x,a>))/√n.
    const Vector t = X * a;
    const Vector terms = r.array() * (t.array().cube() - 3 * t.array());
    const double se =
        std::sqrt((terms.array() - terms.mean()).square().mean() / static_cast<double>(n));
    INFO("T(a,a,a) = " << T.contract(a) << ", kappa_3 = " << expected << ", s.e. " << se);
    CHECK(std::abs(T.contract(a) - expected) < 4 * se);
    CHECK(se < 0.01);
  }

  TEST_CASE("moments: residualising on a quadratic leaves the tensor's expectation unchanged") {
    // y = sigmoid unit + a large quadratic nuisance. E[q S3] = 0 for a quadratic q, so all three
    // label versions estimate the same tensor; the residualised ones with far less variance.
    const Index n = 100000, d = 3;
    nnlift::detail::Rng rng(21);
    const Matrix X = rng.normal_matrix(n, d);
    const Vector a = test::random_unit_columns(d, 1, 2).col(0);
    const double b = -0.4;
    Vector y(n);
    for (Index i = 0; i < n; ++i) {
      const double q = 3.0 + 2.0 * X(i, 0) - 1.5 * X(i, 1) * X(i, 2) + X(i, 2) * X(i, 2);
      y(i) = nnlift::activate(nnlift::Activation::Sigmoid, X.row(i).dot(a) + b) + q;
    }
    const double expected = nnlift::activation_moment(nnlift::Activation::Sigmoid, 3, b);
    const ExecutionContext reducer;
    const Vector t = X * a;
    const Vector he3 = t.array().cube() - 3 * t.array();
    double previous_se = 1e300;
    for (nnlift::Residualize mode :
         {nnlift::Residualize::None, nnlift::Residualize::Linear, nnlift::Residualize::Quadratic}) {
      const Vector r = nnlift::residualize(X, y, mode, reducer);
      const MomentTensor3 T(X, r, reducer);
      const Vector terms = r.cwiseProduct(he3);
      const double se =
          std::sqrt((terms.array() - terms.mean()).square().mean() / static_cast<double>(n));
      CAPTURE(nnlift::to_string(mode));
      INFO("estimate " << T.contract(a) << " vs " << expected << ", s.e. " << se);
      CHECK(std::abs(T.contract(a) - expected) < 4 * se);
      CHECK(se < previous_se);
      previous_se = se;
    }
    CHECK(previous_se < 0.002);  // quadratic residualisation removed the nuisance entirely
    // In-sample: the linear residual is orthogonal to [1, x].
    const Vector r = nnlift::residualize(X, y, nnlift::Residualize::Linear, reducer);
    CHECK(std::abs(r.sum()) < 1e-6 * static_cast<double>(n));
    CHECK((X.transpose() * r).cwiseAbs().maxCoeff() < 1e-6 * static_cast<double>(n));
  }

  TEST_CASE("moments: the quadratic residual is orthogonal to every quadratic feature") {
    // The least-squares identity Fᵀr = 0 for F = [1, x, x_a x_b (a <= b)], in sample, on skewed,
    // correlated inputs and several blocks (the normal equations are built from each block's
    // distinct moments, each Gram entry placed from one sum): checked against F built here.
    nnlift::detail::Rng rng(8);
    const Index n = 20000, d = 5;
    const Matrix X =
        ((rng.normal_matrix(n, d) * rng.normal_matrix(d, d)).array() * 0.5).exp().matrix();
    const Vector y = (X.col(0).array() * X.col(3).array()).sin().matrix() + rng.normal_matrix(n, 1);
    Matrix F(n, 1 + d + d * (d + 1) / 2);
    F.col(0).setOnes();
    F.middleCols(1, d) = X;
    Index at = 1 + d;
    for (Index b = 0; b < d; ++b) {
      for (Index a = 0; a <= b; ++a) {
        F.col(at++) = X.col(a).cwiseProduct(X.col(b));
      }
    }
    for (const int threads : {1, 2}) {
      const ExecutionContext context(threads);
      const Vector r = nnlift::residualize(X, y, nnlift::Residualize::Quadratic, context);
      const Vector scaled = (F.transpose() * r).cwiseQuotient(F.colwise().norm().transpose());
      INFO("threads " << threads << ", largest |F_jᵀr| / |F_j| " << scaled.cwiseAbs().maxCoeff());
      CHECK(scaled.cwiseAbs().maxCoeff() < 1e-8 * r.norm());
      // And it is the least-squares residual: a QR solve of F gives the same to the normal
      // equations' precision (9e-8 here, the condition number squared; so did the rank update).
      const Vector direct = y - F * F.colPivHouseholderQr().solve(y);
      CHECK((r - direct).cwiseAbs().maxCoeff() < 1e-6);
    }
  }

  TEST_CASE("moments: a quadratic control variate fitted on a sample's rows, subtracted from all") {
    // decompose_core fits the quadratic in z on the subspace sample's rows: the same function
    // as residualize's where the rows are all of them, and on a sample of m rows it leaves about
    // p/m more of the variance (p coefficients), not more.
    nnlift::detail::Rng rng(31);
    const Index n = 40000, d = 4, p = 1 + d + d * (d + 1) / 2;
    const Matrix X = rng.normal_matrix(n, d);
    const Vector y = (X.col(0).array() * X.col(1).array() + X.col(2).array().square() +
                      (X.col(3).array() * 2.0).sin())
                         .matrix() +
                     0.3 * rng.normal_vector(n);
    const ExecutionContext context(2);
    const Vector all = nnlift::residualize(X, y, nnlift::Residualize::Quadratic, context);
    const Vector same = nnlift::detail::subtract_quadratic(
        X, y, nnlift::detail::quadratic_coefficients(X, y, context), context);
    CHECK((all.array() == same.array()).all());
    const Index m = 2000;
    std::vector<Index> picked;
    for (Index i = 0; i < n; i += n / m) {
      picked.push_back(i);
    }
    const Vector beta = nnlift::detail::quadratic_coefficients(
        X(picked, Eigen::all), y(picked), ExecutionContext(1));
    const Vector r = nnlift::detail::subtract_quadratic(X, y, beta, context);
    const double excess = r.squaredNorm() / all.squaredNorm() - 1.0;
    INFO("excess variance " << excess << ", p/m " << static_cast<double>(p) / m);
    CHECK(excess >= 0.0);
    CHECK(excess < 3.0 * static_cast<double>(p) / m);
    CHECK(std::abs(r.mean()) < 0.05 * std::sqrt(r.squaredNorm() / n));
  }

  TEST_CASE("moments: the one-pass covariance keeps its digits far from zero") {
    // Columns of sd 1 around 1e8: the plain one-pass E[xxᵀ] − μμᵀ would lose all 16 digits
    // (1e16 − 1e16); about the first block's mean it matches the two-pass covariance.
    nnlift::detail::Rng rng(5);
    const Index n = 30000;
    Matrix X = rng.normal_matrix(n, 3);
    const Matrix centred = X.rowwise() - X.colwise().mean();
    const Matrix two_pass = centred.transpose() * centred / static_cast<double>(n);
    X.array() += 1e8;
    const ExecutionContext one;
    const nnlift::Standardizer s = nnlift::fit_standardizer(X, {"a", "b", "c"}, one);
    const Matrix cov = s.W_inverse * s.W_inverse.transpose();
    INFO("covariance error " << (cov - two_pass).cwiseAbs().maxCoeff());
    CHECK((cov - two_pass).cwiseAbs().maxCoeff() < 1e-6);
    CHECK((s.mean.array() - 1e8 - X.colwise().mean().transpose().array() + 1e8).abs().maxCoeff() <
          1e-6);
    // The same pass's label moments (the linear control variate's), labels far from zero too:
    // E[y] and E[(x − μ) y] against the two-pass values.
    const Vector y =
        (1e6 + (centred * Vector::LinSpaced(3, 1.0, 3.0)).array() + rng.normal_vector(n).array())
            .matrix();
    nnlift::detail::LabelMoments labels;
    nnlift::detail::fit_standardizer_and_labels(X, &y, {"a", "b", "c"}, one, {}, &labels);
    const Vector cross = centred.transpose() * y / static_cast<double>(n);
    INFO("label moments error " << (labels.cross - cross).cwiseAbs().maxCoeff());
    CHECK(std::abs(labels.mean - y.mean()) < 1e-6);
    CHECK((labels.cross - cross).cwiseAbs().maxCoeff() < 1e-6);
    CHECK((labels.cross - Vector::LinSpaced(3, 1.0, 3.0)).cwiseAbs().maxCoeff() < 0.05);
  }

  TEST_CASE("moments: standardisation round trip and singular covariance errors") {
    nnlift::detail::Rng rng(4);
    const Index n = 5000;
    Matrix X = rng.normal_matrix(n, 3) * (Matrix(3, 3) << 2, 0, 0, 1, 1, 0, 0.5, 0, 3).finished();
    X.rowwise() += Eigen::RowVector3d(1, -2, 5);
    const ExecutionContext reducer;
    const nnlift::Standardizer s = nnlift::fit_standardizer(X, {"a", "b", "c"}, reducer);
    const Matrix Z = nnlift::standardize(s, X, reducer);
    CHECK(Z.colwise().mean().cwiseAbs().maxCoeff() < 1e-12);
    CHECK((Z.transpose() * Z / static_cast<double>(n) - Matrix::Identity(3, 3))
              .cwiseAbs()
              .maxCoeff() < 1e-12);
    const Matrix back = (Z * s.W_inverse.transpose()).rowwise() + s.mean.transpose();
    CHECK((back - X).cwiseAbs().maxCoeff() < 1e-12);
    CHECK(s.rank() == 3);
    CHECK(s.constant_columns.empty());
    CHECK(s.collinear_columns.empty());
    // Refused when asked (--strict), naming the columns.
    nnlift::StandardizerOptions strict;
    strict.drop_degenerate = false;
    Matrix constant = X;
    constant.col(1).setConstant(7.0);
    CHECK_THROWS_WITH_AS(nnlift::fit_standardizer(constant, {"a", "b", "c"}, reducer, strict),
                         doctest::Contains("constant columns: b"),
                         nnlift::DataError);
    Matrix collinear = X;
    collinear.col(2) = 2.0 * X.col(0) - X.col(1);
    CHECK_THROWS_WITH_AS(nnlift::fit_standardizer(collinear, {"a", "b", "c"}, reducer, strict),
                         doctest::Contains("singular"),
                         nnlift::DataError);
    // By default dropped: the constant column gets zero weight, the collinear direction goes,
    // and what remains is whitened exactly.
    const nnlift::Standardizer sc = nnlift::fit_standardizer(constant, {"a", "b", "c"}, reducer);
    CHECK(sc.rank() == 2);
    CHECK(sc.constant_columns == std::vector<Index>{1});
    CHECK(sc.W.col(1).cwiseAbs().maxCoeff() == 0.0);
    const nnlift::Standardizer sl = nnlift::fit_standardizer(collinear, {"a", "b", "c"}, reducer);
    CHECK(sl.rank() == 2);
    CHECK(sl.collinear_columns.size() == 3);
    for (const nnlift::Standardizer* st : {&sc, &sl}) {
      const Matrix& M = st == &sc ? constant : collinear;
      const Matrix Zs = nnlift::standardize(*st, M, reducer);
      CHECK(Zs.cols() == 2);
      CHECK((Zs.transpose() * Zs / static_cast<double>(n) - Matrix::Identity(2, 2))
                .cwiseAbs()
                .maxCoeff() < 1e-10);
      CHECK((st->W * st->W_inverse - Matrix::Identity(2, 2)).cwiseAbs().maxCoeff() < 1e-10);
    }
    // Columns in wildly different units are not collinear: the floor is on the correlations.
    Matrix units = X;
    units.col(0) *= 1e7;
    units.col(2) *= 1e-7;
    CHECK(nnlift::fit_standardizer(units, {"a", "b", "c"}, reducer, strict).rank() == 3);
    nnlift::StandardizerOptions bad;
    bad.eigenvalue_floor = 1.0;
    CHECK_THROWS_WITH_AS(nnlift::fit_standardizer(X, {"a", "b", "c"}, reducer, bad),
                         doctest::Contains("eigenvalue_floor"),
                         std::invalid_argument);
  }
}
