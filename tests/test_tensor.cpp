// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include <nnlift/tensor.hpp>

#include "test_helpers.hpp"

using nnlift::DenseSymmetricTensor3;

namespace {

// A random symmetric tensor: the symmetrisation of Gaussian entries.
DenseSymmetricTensor3 random_symmetric(Index d, std::uint64_t seed) {
  nnlift::detail::Rng rng(seed);
  std::vector<double> raw(static_cast<std::size_t>(d * d * d));
  for (double& v : raw) {
    v = rng.normal();
  }
  std::vector<double> sym(raw.size());
  auto at = [&](Index i, Index j, Index l) {
    return raw[static_cast<std::size_t>(i + d * (j + d * l))];
  };
  for (Index l = 0; l < d; ++l) {
    for (Index j = 0; j < d; ++j) {
      for (Index i = 0; i < d; ++i) {
        sym[static_cast<std::size_t>(i + d * (j + d * l))] =
            (at(i, j, l) + at(i, l, j) + at(j, i, l) + at(j, l, i) + at(l, i, j) + at(l, j, i)) / 6;
      }
    }
  }
  return DenseSymmetricTensor3(d, sym);
}

}  // namespace

TEST_SUITE("tensor") {
  TEST_CASE("tensor: dense contractions equal explicit index sums") {
    const Index d = 5;
    const DenseSymmetricTensor3 T = random_symmetric(d, 1);
    nnlift::detail::Rng rng(2);
    const Vector u = rng.normal_vector(d), v = rng.normal_vector(d);
    Vector tuv = Vector::Zero(d);
    Matrix tiu = Matrix::Zero(d, d);
    double tuuu = 0;
    for (Index i = 0; i < d; ++i) {
      for (Index j = 0; j < d; ++j) {
        for (Index l = 0; l < d; ++l) {
          tuv(i) += T(i, j, l) * u(j) * v(l);
          tiu(i, j) += T(i, j, l) * u(l);
          tuuu += T(i, j, l) * u(i) * u(j) * u(l);
        }
      }
    }
    Matrix U(d, 2), V(d, 2);
    U << u, u;
    V << v, u;
    const Matrix pairs = T.contract_pairs(U, V);
    CHECK((pairs.col(0) - tuv).norm() < 1e-12);
    CHECK((pairs.col(1) - T.apply(u)).norm() < 1e-12);
    CHECK((T.slice(u) - tiu).norm() < 1e-12);
    CHECK(std::abs(T.contract(u) - tuuu) < 1e-12);
    // The projection T(Q,Q,Q) against the explicit sum.
    const Matrix Q = test::random_orthonormal(d, 3, 4);
    const DenseSymmetricTensor3 P = T.project(Q);
    double worst = 0;
    for (Index a = 0; a < 3; ++a) {
      for (Index b = 0; b < 3; ++b) {
        for (Index c = 0; c < 3; ++c) {
          double s = 0;
          for (Index i = 0; i < d; ++i) {
            for (Index j = 0; j < d; ++j) {
              for (Index l = 0; l < d; ++l) {
                s += T(i, j, l) * Q(i, a) * Q(j, b) * Q(l, c);
              }
            }
          }
          worst = std::max(worst, std::abs(s - P(a, b, c)));
        }
      }
    }
    CHECK(worst < 1e-12);
  }

  TEST_CASE("tensor: the callback adapter equals the dense tensor in every contraction") {
    const Index d = 6;
    const DenseSymmetricTensor3 T = random_symmetric(d, 7);
    const nnlift::CallbackSymmetricTensor3 C(
        d, [&](const Matrix& U, const Matrix& V) { return T.contract_pairs(U, V); });
    nnlift::detail::Rng rng(8);
    const Vector u = rng.normal_vector(d);
    const Matrix Q = test::random_orthonormal(d, 3, 9);
    CHECK((C.apply(u) - T.apply(u)).norm() < 1e-12);
    CHECK(std::abs(C.contract(u) - T.contract(u)) < 1e-12);
    CHECK((C.slice(u) - T.slice(u)).norm() < 1e-12);
    CHECK((C.contract_block(Q) - T.contract_block(Q)).norm() < 1e-12);
    const DenseSymmetricTensor3 pc = C.project(Q), pt = T.project(Q);
    CHECK((pc.unfolding() - pt.unfolding()).norm() < 1e-12);
    const nnlift::CallbackSymmetricTensor3 wrong(
        d, [](const Matrix&, const Matrix&) { return Matrix::Zero(2, 2).eval(); });
    CHECK_THROWS_WITH_AS(wrong.apply(u), doctest::Contains("returned 2x2"), std::invalid_argument);
  }

  TEST_CASE("tensor: from_factors, fit_weights and the residual agree") {
    const Matrix V = test::random_unit_columns(6, 3, 3);
    const Vector lambda = (Vector(3) << 2.0, -1.5, 0.7).finished();
    const DenseSymmetricTensor3 T = DenseSymmetricTensor3::from_factors(lambda, V);
    CHECK(std::abs(T(1, 2, 3) - (lambda.array() * V.row(1).transpose().array() *
                                 V.row(2).transpose().array() * V.row(3).transpose().array())
                                    .sum()) < 1e-14);
    CHECK((nnlift::fit_weights(T, V) - lambda).norm() < 1e-12);
    CHECK(nnlift::relative_residual(T, lambda, V) < 1e-14);
    CHECK(nnlift::relative_residual(T, Vector::Zero(3), V) == doctest::Approx(1.0).epsilon(1e-12));
  }

  TEST_CASE("tensor: asymmetric, non-finite and mis-sized input is refused") {
    std::vector<double> data(8, 1.0);
    data[1] = 1.5;  // (1,0,0) differs from (0,1,0)
    CHECK_THROWS_WITH_AS(DenseSymmetricTensor3(2, data),
                         doctest::Contains("largest asymmetry 0.5"),
                         std::invalid_argument);
    data[1] = std::nan("");
    CHECK_THROWS_WITH_AS(
        DenseSymmetricTensor3(2, data), doctest::Contains("not finite"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(DenseSymmetricTensor3(2, std::vector<double>(7, 0.0)),
                         doctest::Contains("expected d^3 = 8"),
                         std::invalid_argument);
  }
}
