// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>

#include <doctest/doctest.h>

#include <nnlift/activation.hpp>

#include "detail/activation_traits.hpp"
#include "detail/glm.hpp"
#include "test_helpers.hpp"

using nnlift::Activation;

TEST_SUITE("activation") {
  TEST_CASE("activation: derivatives agree with central differences") {
    for (Activation a : {Activation::Sigmoid, Activation::Tanh, Activation::Softplus}) {
      for (double t : {-2.5, -0.7, 0.0, 0.4, 1.9}) {
        for (int m = 1; m <= 3; ++m) {
          const double h = 1e-5;
          const double numeric = (nnlift::activation_derivative(a, m - 1, t + h) -
                                  nnlift::activation_derivative(a, m - 1, t - h)) /
                                 (2 * h);
          CAPTURE(nnlift::to_string(a));
          CAPTURE(t);
          CAPTURE(m);
          CHECK(std::abs(numeric - nnlift::activation_derivative(a, m, t)) < 1e-8);
        }
      }
    }
  }

  TEST_CASE(
      "activation: activate_with_slope equals activate_inplace, near activate, bits by value") {
    // The bias fit and the refinement take σ' with σ; the model's forward pass takes σ alone:
    // both must give the same bits. Every activation but ReLU is vectorised (Eigen's exp and
    // log), within a few ulp of activate() and activation_derivative(·, 1, ·).
    nnlift::Matrix z(4, 5);
    z << -40.0, -2.5, -0.7, -1e-300, 0.0, 1e-12, 0.4, 1.9, 7.5, 36.0, -710.0, 710.0, -1e-9, 3e-5,
        -0.03, 0.2, 18.5, -18.5, 1e-160, -5e-324;
    for (Activation a :
         {Activation::Sigmoid, Activation::Tanh, Activation::Softplus, Activation::Relu}) {
      nnlift::Matrix values = z, slopes, alone = z;
      nnlift::detail::activate_with_slope(a, values, slopes);
      nnlift::activate_inplace(a, alone);
      REQUIRE(slopes.rows() == z.rows());
      REQUIRE(slopes.cols() == z.cols());
      for (nnlift::Index i = 0; i < z.size(); ++i) {
        CAPTURE(nnlift::to_string(a));
        const double t = z.data()[i], v = values.data()[i];
        CAPTURE(t);
        CHECK(v == alone.data()[i]);
        const double exact = nnlift::activate(a, t);
        CHECK(std::abs(v - exact) <= 8e-16 * std::abs(exact) + 1e-300);
        const double slope = nnlift::activation_derivative(a, 1, t);
        if (a == Activation::Sigmoid) {
          CHECK(slopes.data()[i] == v * (1.0 - v));
        } else if (a == Activation::Tanh) {
          CHECK(slopes.data()[i] == (1.0 - v) * (1.0 + v));
        } else {
          CHECK(std::abs(slopes.data()[i] - slope) <= 8e-16 * std::abs(slope) + 1e-300);
        }
      }
    }
  }

  TEST_CASE("activation: the vectorised activations stay within a few ulp on a fine grid") {
    // Goldberg's log1p (softplus) and Kahan's expm1 (tanh) keep relative accuracy for tiny
    // arguments, where 1 + e and e^x − 1 alone would cancel.
    nnlift::Matrix t(1, 4001);
    for (nnlift::Index j = 0; j < t.cols(); ++j) {
      const double u = -20.0 + 0.01 * static_cast<double>(j);
      t(0, j) = j % 2 == 0 ? u : std::copysign(std::pow(10.0, u), u);  // also |t| down to 1e-20
    }
    for (Activation a : {Activation::Sigmoid, Activation::Tanh, Activation::Softplus}) {
      nnlift::Matrix v = t;
      nnlift::activate_inplace(a, v);
      double worst = 0;
      for (nnlift::Index j = 0; j < t.cols(); ++j) {
        const double exact = nnlift::activate(a, t(0, j));
        worst = std::max(worst, std::abs(v(0, j) - exact) / std::max(std::abs(exact), 1e-300));
      }
      CAPTURE(nnlift::to_string(a));
      CHECK(worst <= 8e-16);
    }
  }

  TEST_CASE("activation: an entry's bits do not depend on where it lies (row blocks, partitions)") {
    // Models must be bitwise the same for any row partition: a vectorised σ with a scalar tail
    // would give an entry other bits at the end of a block than inside one.
    nnlift::Matrix base(1, 40);
    for (nnlift::Index j = 0; j < base.cols(); ++j) {
      base(0, j) = -9.0 + 0.4567 * static_cast<double>(j);
    }
    for (Activation a : {Activation::Sigmoid, Activation::Tanh, Activation::Softplus}) {
      CAPTURE(nnlift::to_string(a));
      nnlift::Matrix reference = base;
      nnlift::activate_inplace(a, reference);
      for (nnlift::Index offset = 1; offset < 20; ++offset) {
        nnlift::Matrix shifted = nnlift::Matrix::Constant(1, base.cols() + offset, 0.3);
        shifted.rightCols(base.cols()) = base;
        nnlift::Matrix slopes;
        nnlift::detail::activate_with_slope(a, shifted, slopes);
        CAPTURE(offset);
        CHECK(shifted.rightCols(base.cols()) == reference);
        nnlift::Matrix head = base.leftCols(base.cols() - offset);
        nnlift::activate_inplace(a, head);
        CHECK(head == reference.leftCols(base.cols() - offset));
      }
    }
  }

  TEST_CASE("activation: the vectorised softmax loss is the row-by-row one, and so its gradient") {
    // The output layer's and the refinement's passes take the softmax of a whole chunk at once
    // (softmax_losses); the oracle is softmax_inplace row by row, with loss Σ_c t_c (log Z − f_c).
    nnlift::Matrix logits(7, 5), targets = nnlift::Matrix::Zero(7, 5);
    for (nnlift::Index i = 0; i < logits.rows(); ++i) {
      for (nnlift::Index c = 0; c < logits.cols(); ++c) {
        logits(i, c) = std::sin(1.7 * static_cast<double>(i) + 0.9 * static_cast<double>(c)) *
                       (i == 3 ? 400.0 : 3.0);  // row 3: logits whose exponentials overflow
      }
      targets(i, (2 * i) % 5) = 1.0;
    }
    nnlift::Matrix P;
    const nnlift::Vector losses = nnlift::detail::softmax_losses(logits, targets, P);
    REQUIRE(losses.size() == 7);
    for (nnlift::Index i = 0; i < logits.rows(); ++i) {
      Eigen::RowVectorXd p = logits.row(i);
      const double log_z = nnlift::detail::softmax_inplace(p);
      const double loss = (targets.row(i).array() * (log_z - logits.row(i).array())).sum();
      CAPTURE(i);
      CHECK(std::isfinite(losses(i)));
      CHECK(losses(i) == doctest::Approx(loss).epsilon(1e-12));
      for (nnlift::Index c = 0; c < logits.cols(); ++c) {
        CHECK(P(i, c) == doctest::Approx(p(c) - targets(i, c)).epsilon(1e-12));
      }
    }
  }

  TEST_CASE("activation: Gaussian moments kappa_m(b) match ALGORITHM.md table 3.2") {
    struct Row {
      Activation a;
      int m;
      double b;
      double value;
    };
    const Row rows[] = {{Activation::Sigmoid, 1, 0.0, 0.2066},
                        {Activation::Sigmoid, 2, -1.0, 0.0526},
                        {Activation::Sigmoid, 3, 0.0, -0.0624},
                        {Activation::Sigmoid, 3, 2.0, 0.0089},
                        {Activation::Tanh, 1, 0.5, 0.5620},
                        {Activation::Tanh, 3, 0.0, -0.3636},
                        {Activation::Tanh, 3, -2.0, 0.1482},
                        {Activation::Relu, 1, -1.0, 0.1587},
                        {Activation::Relu, 2, 0.5, 0.3521},
                        {Activation::Relu, 3, 1.0, -0.2420}};
    for (const Row& r : rows) {
      CAPTURE(nnlift::to_string(r.a));
      CAPTURE(r.m);
      CAPTURE(r.b);
      CHECK(std::abs(nnlift::activation_moment(r.a, r.m, r.b) - r.value) < 6e-5);
    }
    // The blind spot of the logistic sigmoid: kappa_3 changes sign at |b| = 1.7547.
    CHECK(nnlift::activation_moment(Activation::Sigmoid, 3, 1.7537) < 0);
    CHECK(nnlift::activation_moment(Activation::Sigmoid, 3, 1.7557) > 0);
    // Scale: kappa_1(b; s) of ReLU is Phi(b/s).
    CHECK(std::abs(nnlift::activation_moment(Activation::Relu, 1, 1.0, 2.0) - 0.6914625) < 1e-6);
  }

  TEST_CASE("activation: names parse and bad values are refused") {
    CHECK(nnlift::parse_activation("logistic") == Activation::Sigmoid);
    CHECK(nnlift::parse_activation("softplus") == Activation::Softplus);
    CHECK_THROWS_WITH_AS(nnlift::parse_activation("gelu"),
                         doctest::Contains("unknown activation 'gelu'"),
                         std::invalid_argument);
    CHECK_THROWS_AS(nnlift::activation_derivative(Activation::Tanh, 4, 0.0), std::invalid_argument);
    CHECK_THROWS_AS(nnlift::activation_moment(Activation::Tanh, 1, 0.0, 0.0),
                    std::invalid_argument);
  }
}
