// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include <nnlift/whiten.hpp>

#include "test_helpers.hpp"

using nnlift::EigenSolverKind;
using nnlift::Status;

TEST_SUITE("whiten") {
  TEST_CASE("whiten: W'MW is the identity on the top-k subspace, with both eigensolvers") {
    const Index d = 60, k = 4;
    const Matrix A = test::random_unit_columns(d, k, 21);
    const Vector c = (Vector(k) << 3.0, 2.0, 1.0, 0.5).finished();
    const Matrix M = A * c.asDiagonal() * A.transpose();
    for (EigenSolverKind kind : {EigenSolverKind::Dense, EigenSolverKind::Spectra}) {
      nnlift::WhitenOptions o;
      o.rank = k;
      o.solver = kind;
      const nnlift::Whitening w = nnlift::whiten(M, o);
      REQUIRE(w.status == Status::Success);
      CHECK(w.solver == (kind == EigenSolverKind::Dense ? "dense" : "spectra"));
      const double err = (w.W.transpose() * M * w.W - Matrix::Identity(k, k)).cwiseAbs().maxCoeff();
      INFO("max |W'MW - I| = " << err);
      CHECK(err < 1e-10);
      // The whitened components sqrt(c_j) W'a_j are orthonormal; unwhiten maps them back.
      const Matrix B = w.W.transpose() * A * c.cwiseSqrt().asDiagonal();
      CHECK((B.transpose() * B - Matrix::Identity(k, k)).cwiseAbs().maxCoeff() < 1e-10);
      CHECK((w.unwhiten * B - A * c.cwiseSqrt().asDiagonal()).cwiseAbs().maxCoeff() < 1e-10);
    }
    nnlift::WhitenOptions dense, spectra;
    dense.rank = spectra.rank = k;
    dense.solver = EigenSolverKind::Dense;
    spectra.solver = EigenSolverKind::Spectra;
    const Vector e1 = nnlift::whiten(M, dense).eigenvalues,
                 e2 = nnlift::whiten(M, spectra).eigenvalues;
    CHECK((e1 - e2).cwiseAbs().maxCoeff() < 1e-10);
  }

  TEST_CASE("whiten: a negative definite M is whitened with sign -1") {
    const Matrix A = test::random_unit_columns(8, 3, 5);
    const Matrix M = -A * A.transpose();
    nnlift::WhitenOptions o;
    o.rank = 3;
    const nnlift::Whitening w = nnlift::whiten(M, o);
    REQUIRE(w.status == Status::Success);
    CHECK(w.sign == -1.0);
    CHECK((w.W.transpose() * M * w.W + Matrix::Identity(3, 3)).cwiseAbs().maxCoeff() < 1e-10);
  }

  TEST_CASE("whiten: an indefinite M is refused, never whitened by |lambda|") {
    const Matrix A = test::random_unit_columns(6, 3, 2);
    const Vector c = (Vector(3) << 1.0, -0.7, 0.4).finished();  // ALGORITHM.md check3.py
    nnlift::WhitenOptions o;
    o.rank = 3;
    const nnlift::Whitening w = nnlift::whiten(A * c.asDiagonal() * A.transpose(), o);
    CHECK(w.status == Status::NotDefinite);
    CHECK(w.W.size() == 0);
    CHECK(w.message.find("indefinite") != std::string::npos);
    o.rank = 4;  // rank 3 matrix asked for 4 directions
    CHECK(nnlift::whiten(A * A.transpose(), o).status == Status::NumericalIssue);
  }

  TEST_CASE("whiten: misuse throws and names the culprit") {
    nnlift::WhitenOptions o;
    o.rank = 3;
    CHECK_THROWS_WITH_AS(nnlift::whiten(Matrix::Identity(2, 2), o),
                         doctest::Contains("WhitenOptions::rank = 3 exceeds the dimension d = 2"),
                         std::invalid_argument);
    Matrix asym = Matrix::Identity(3, 3);
    asym(0, 1) = 0.5;
    CHECK_THROWS_WITH_AS(
        nnlift::whiten(asym, o), doctest::Contains("not symmetric"), std::invalid_argument);
    o.rank = 0;
    CHECK_THROWS_WITH_AS(nnlift::whiten(Matrix::Identity(3, 3), o),
                         doctest::Contains("WhitenOptions::rank = 0"),
                         std::invalid_argument);
  }

  TEST_CASE("whiten: the sign-agnostic whitening makes a mixed-sign tensor orthogonal") {
    const Index k = 5;
    const Matrix A = test::random_unit_columns(k, k, 17);
    const Vector lambda = (Vector(k) << 1.0, -2.0, 0.5, -0.8, 1.5).finished();
    const nnlift::DenseSymmetricTensor3 T = nnlift::DenseSymmetricTensor3::from_factors(lambda, A);
    const nnlift::SignAgnosticWhitening w = nnlift::sign_agnostic_whitening(T);
    REQUIRE(w.status == Status::Success);
    CHECK(w.min_eigenvalue > 0);
    const Matrix M = T.slice(w.theta);
    CHECK((w.W * M * w.W - Matrix::Identity(k, k)).cwiseAbs().maxCoeff() < 1e-9);
    // c_j = λ_j ⟨a_j, θ⟩ > 0 for all j, and the whitened components are orthonormal.
    const Vector c = lambda.cwiseProduct(A.transpose() * w.theta);
    CHECK(c.minCoeff() > 0);
    const Matrix B = w.W * A * c.cwiseSqrt().asDiagonal();
    CHECK((B.transpose() * B - Matrix::Identity(k, k)).cwiseAbs().maxCoeff() < 1e-9);
    // A tensor of rank < k has no definite whitening: refused.
    const nnlift::DenseSymmetricTensor3 low =
        nnlift::DenseSymmetricTensor3::from_factors(lambda.head(3), A.leftCols(3));
    const nnlift::SignAgnosticWhitening none = nnlift::sign_agnostic_whitening(low);
    CHECK(none.status == Status::NotDefinite);
    CHECK(none.W.size() == 0);
  }
}
