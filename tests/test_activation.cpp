// SPDX-License-Identifier: MIT
#include <cmath>

#include <doctest/doctest.h>

#include <nnlift/activation.hpp>

#include "detail/activation_traits.hpp"
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

  TEST_CASE("activation: activate_with_slope equals activate and the first derivative exactly") {
    // The bias fit and the refinement take σ' from σ; the model must not change by a bit.
    nnlift::Matrix z(3, 4);
    z << -40.0, -2.5, -0.7, -1e-300, 0.0, 1e-12, 0.4, 1.9, 7.5, 36.0, -710.0, 710.0;
    for (Activation a :
         {Activation::Sigmoid, Activation::Tanh, Activation::Softplus, Activation::Relu}) {
      nnlift::Matrix values = z, slopes;
      nnlift::detail::activate_with_slope(a, values, slopes);
      REQUIRE(slopes.rows() == z.rows());
      REQUIRE(slopes.cols() == z.cols());
      for (nnlift::Index i = 0; i < z.size(); ++i) {
        CAPTURE(nnlift::to_string(a));
        CAPTURE(z.data()[i]);
        CHECK(values.data()[i] == nnlift::activate(a, z.data()[i]));
        CHECK(slopes.data()[i] == nnlift::activation_derivative(a, 1, z.data()[i]));
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
