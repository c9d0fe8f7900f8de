// SPDX-License-Identifier: MIT
#include <cmath>

#include <doctest/doctest.h>

#include <nnlift/activation.hpp>

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
