// SPDX-License-Identifier: MIT
#include <Eigen/Eigenvalues>
#include <Eigen/SVD>
#include <doctest/doctest.h>

#include <nnlift/synth.hpp>

#include "test_helpers.hpp"

TEST_SUITE("synth") {
  TEST_CASE("synth: a planted teacher with unit rows, mixed signs and the stated labels") {
    nnlift::SynthOptions o;
    o.dim = 8;
    o.hidden = 4;
    o.samples = 20000;
    o.test_samples = 100;
    o.noise = 0.0;
    o.seed = 11;
    const nnlift::SynthData s = nnlift::make_synthetic(o);
    REQUIRE(s.X_train.rows() == 20000);
    REQUIRE(s.X_test.rows() == 100);
    for (Index j = 0; j < 4; ++j) {
      CHECK(std::abs(s.truth.W1.row(j).norm() - 1.0) < 1e-14);
      CHECK(std::abs(s.truth.b1(j)) <= 1.0);
      CHECK(std::abs(s.truth.W2(0, j)) >= 0.5);
    }
    CHECK(s.truth.W2.maxCoeff() > 0);
    CHECK(s.truth.W2.minCoeff() < 0);
    // Noise-free labels are the teacher's predictions.
    const Matrix f = nnlift::predict(s.truth, s.X_train);
    CHECK((f.col(0) - s.y_train).cwiseAbs().maxCoeff() < 1e-15);
    // Standard Gaussian inputs: sample mean and covariance within Monte Carlo error.
    const Vector mean = s.X_train.colwise().mean();
    CHECK(mean.cwiseAbs().maxCoeff() < 0.05);
    const Matrix cov = s.X_train.transpose() * s.X_train / 20000.0;
    CHECK((cov - Matrix::Identity(8, 8)).cwiseAbs().maxCoeff() < 0.06);
  }

  TEST_CASE("synth: same seed, same bits, whatever the thread count; other seed, other data") {
    nnlift::SynthOptions o;
    o.dim = 5;
    o.hidden = 3;
    o.samples = 9000;  // several row blocks
    o.noise = 0.1;
    o.correlated = true;
    o.seed = 2;
    o.num_threads = 1;
    const nnlift::SynthData a = nnlift::make_synthetic(o);
    o.num_threads = 2;
    const nnlift::SynthData b = nnlift::make_synthetic(o);
    CHECK((a.X_train.array() == b.X_train.array()).all());
    CHECK((a.y_train.array() == b.y_train.array()).all());
    o.seed = 3;
    const nnlift::SynthData c = nnlift::make_synthetic(o);
    CHECK((a.X_train.array() != c.X_train.array()).any());
  }

  TEST_CASE("synth: correlated inputs follow N(mu, Sigma); classification labels are 0/1") {
    nnlift::SynthOptions o;
    o.dim = 4;
    o.hidden = 2;
    o.samples = 40000;
    o.correlated = true;
    o.seed = 8;
    const nnlift::SynthData s = nnlift::make_synthetic(o);
    const Vector mean = s.X_train.colwise().mean();
    CHECK((mean - s.input_mean).cwiseAbs().maxCoeff() < 0.05);
    const Matrix centred = s.X_train.rowwise() - mean.transpose();
    const Matrix cov = centred.transpose() * centred / 40000.0;
    CHECK((cov - s.input_cov).cwiseAbs().maxCoeff() < 0.08);
    Eigen::SelfAdjointEigenSolver<Matrix> eig(s.input_cov);
    CHECK(std::abs(eig.eigenvalues().minCoeff() - 0.5) < 1e-12);
    CHECK(std::abs(eig.eigenvalues().maxCoeff() - 2.0) < 1e-12);

    o.task = nnlift::Task::Classification;
    const nnlift::SynthData c = nnlift::make_synthetic(o);
    CHECK(((c.y_train.array() == 0) || (c.y_train.array() == 1)).all());
    CHECK(c.truth.link == nnlift::OutputLink::Logistic);
    const double rate = c.y_train.mean();
    const double expected = nnlift::predict(c.truth, c.X_train).mean();
    CHECK(std::abs(rate - expected) < 0.01);
  }

  TEST_CASE("synth: invalid options name the field") {
    nnlift::SynthOptions o;
    o.hidden = 11;
    o.dim = 10;
    CHECK_THROWS_WITH_AS(nnlift::make_synthetic(o),
                         doctest::Contains("SynthOptions::hidden = 11"),
                         std::invalid_argument);
    o.hidden = 2;
    o.noise = -1;
    CHECK_THROWS_WITH_AS(nnlift::validate(o), doctest::Contains("noise"), std::invalid_argument);
    o.noise = 0;
    o.condition = 0.5;
    CHECK_THROWS_WITH_AS(
        nnlift::validate(o), doctest::Contains("condition"), std::invalid_argument);
    o.condition = 0;
    o.correlated = true;
    o.ball_radius = 3;
    CHECK_THROWS_WITH_AS(
        nnlift::validate(o), doctest::Contains("ball_radius"), std::invalid_argument);
  }

  TEST_CASE("synth: teacher families for the experiments (ball inputs, conditioning, signs)") {
    nnlift::SynthOptions o;
    o.dim = 6;
    o.hidden = 4;
    o.samples = 20000;
    o.seed = 9;
    o.ball_radius = 3;
    o.condition = 1;  // orthonormal rows
    o.bias_offset = -0.5;
    o.bias_range = 0;
    o.output_weights = nnlift::OutputWeights::Positive;
    const nnlift::SynthData s = nnlift::make_synthetic(o);
    // Uniform on the ball of radius 3: inside it, and P(|x| <= R/2) = 2^-d.
    const Vector radius = s.X_train.rowwise().norm();
    CHECK(radius.maxCoeff() <= 3.0);
    CHECK(radius.maxCoeff() > 2.95);
    const double inner = (radius.array() <= 1.5).cast<double>().mean();
    CHECK(inner == doctest::Approx(1.0 / 64).epsilon(0.25));
    CHECK((s.X_train.transpose() * s.X_train / 20000.0 - s.input_cov).cwiseAbs().maxCoeff() < 0.05);
    CHECK((s.truth.W1 * s.truth.W1.transpose() - Matrix::Identity(4, 4)).norm() < 1e-12);
    CHECK((s.truth.b1.array() == -0.5).all());
    CHECK((s.truth.W2.array() >= 0.5).all());

    o.ball_radius = 0;
    o.condition = 10;
    o.output_weights = nnlift::OutputWeights::Ones;
    const nnlift::SynthData c = nnlift::make_synthetic(o);
    CHECK((c.truth.W2.array() == 1.0).all());
    CHECK(c.truth.W1.rowwise().norm().minCoeff() == doctest::Approx(1.0));
    // Normalising the rows of U diag(1..10) Vᵀ keeps it ill-conditioned.
    const Eigen::JacobiSVD<Matrix> svd(c.truth.W1);
    CHECK(svd.singularValues()(0) / svd.singularValues()(3) > 3.0);
  }
}
