// Real-data behaviour (issue 9): the linear term, the output ridge by GCV / cross-validation,
// degenerate inputs, the validation split and a refinement that cannot make things worse.
// SPDX-License-Identifier: MIT
#include <cmath>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <nnlift/csv.hpp>
#include <nnlift/evaluate.hpp>
#include <nnlift/synth.hpp>
#include <nnlift/train.hpp>

#include "cli_helpers.hpp"
#include "test_helpers.hpp"
#include "train/stages.hpp"

namespace {

using test::Index;
using test::Matrix;
using test::Vector;

// The held-out rows of this file's planted teachers (its name is unique among the unity
// build's test files).
constexpr Index kRealdataTestRows = 4000;

bool same_weights(const nnlift::TwoLayerNetwork& a, const nnlift::TwoLayerNetwork& b) {
  return (a.W1.array() == b.W1.array()).all() && (a.b1.array() == b.b1.array()).all() &&
         (a.W2.array() == b.W2.array()).all() && (a.b2.array() == b.b2.array()).all() &&
         a.C.rows() == b.C.rows() && (a.C.array() == b.C.array()).all();
}

// Rows of independent standard normal inputs named x0, x1, …, and target "y" (left empty).
nnlift::Dataset normal_inputs(nnlift::detail::Rng& rng, Index rows, Index d) {
  nnlift::Dataset data;
  data.X = rng.normal_matrix(rows, d);
  for (Index j = 0; j < d; ++j) {
    data.feature_names.push_back("x" + std::to_string(j));
  }
  data.target_name = "y";
  return data;
}

// A planted set's training rows as the refinement's fit rows and its test rows (targets Tv) as
// its validation rows, standardised, in one thread.
struct RefineRows {
  nnlift::ExecutionContext context{1};
  nnlift::Standardizer st;
  Matrix Xs, Xv, T, Tv;
  nnlift::detail::RefineData data;
  RefineRows(const nnlift::SynthData& s, const Matrix& valid_targets)
      : st(nnlift::fit_standardizer(s.X_train, {}, context)),
        Xs(nnlift::standardize(st, s.X_train, context)),
        Xv(nnlift::standardize(st, s.X_test, context)),
        T(s.y_train),
        Tv(valid_targets),
        data{Xs, T} {
    data.Xv = &Xv;
    data.Tv = &Tv;
    data.valid_context = &context;
  }
  RefineRows(const RefineRows&) = delete;
  RefineRows& operator=(const RefineRows&) = delete;
};

// y = 3 sin(2 x1) + |x2| + x3 x4 + noise, on four standard normal inputs.
nnlift::Dataset sine_set(std::uint64_t seed, Index rows, double noise) {
  nnlift::detail::Rng rng(seed);
  nnlift::Dataset data = normal_inputs(rng, rows, 4);
  data.y.resize(rows);
  for (Index i = 0; i < rows; ++i) {
    const auto x = data.X.row(i);
    data.y(i) = 3 * std::sin(2 * x(0)) + std::abs(x(1)) + x(2) * x(3) + noise * rng.normal();
  }
  return data;
}

double r2(const Vector& y, const Vector& f) {
  return 1.0 - (y - f).squaredNorm() / (y.array() - y.mean()).square().sum();
}

// Options with k hidden units and the refinement on (validation: the default 0.2).
// The refinement on one held-out share (these tests are about its early stopping, decay grid
// and continuation; on fewer than 1,000 rows the default is cross-validation, tested apart).
nnlift::TrainOptions refining(Index k) {
  nnlift::TrainOptions o;
  o.hidden = k;
  o.refine.enabled = true;
  o.validation.folds = 1;
  return o;
}

}  // namespace

TEST_SUITE("realdata") {
  TEST_CASE("realdata: a unit's scale that runs off in the bias fit keeps its start") {
    // On these rows (columns in units from 1e-3 to 1e4) the least-squares biases lower their loss
    // by saturating units without bound: once L-BFGS went on after failed line searches, a scale
    // reached e^665, the refinement met non-finite weights and train failed. Such a unit now
    // keeps its moment-ratio bias and scale.
    test::TempDir dir;
    const test::Outcome o = test::run({"train",
                                       "--data",
                                       std::string(NNLIFT_DATA_DIR) + "/friedman1_scaled_1000.csv",
                                       "--target",
                                       "y",
                                       "--hidden",
                                       "10",
                                       "--refine",
                                       "lbfgs",
                                       "--seed",
                                       "1",
                                       "--model",
                                       dir.file("m.json")});
    INFO(o.err);
    REQUIRE(o.code == 0);
    // The model (finite: load_model refuses anything else) fits its rows at least as well as
    // least squares on [1, x] (R² 0.655 by numpy's lstsq).
    const nnlift::TwoLayerNetwork net = nnlift::load_model(dir.file("m.json"));
    const nnlift::Dataset rows =
        nnlift::read_csv(std::string(NNLIFT_DATA_DIR) + "/friedman1_scaled_1000.csv");
    Matrix F(rows.X.rows(), rows.X.cols() + 1);
    F << rows.X, Vector::Ones(rows.X.rows());
    const Vector ols = F * F.colPivHouseholderQr().solve(rows.y);
    CHECK(r2(rows.y, nnlift::predict(net, rows.X).col(0)) >= r2(rows.y, ols) - 0.005);
  }

  TEST_CASE("realdata: the linear term carries the linear part of y, in original coordinates") {
    // y = teacher(x) + ⟨c, x⟩ with inputs in odd units: without a linear term the hidden units
    // cannot carry ⟨c, x⟩; with it, C recovers c.
    nnlift::SynthData s = test::planted_teacher(6, 2, 20000, 3, kRealdataTestRows);
    const Vector c = (Vector(6) << 0.8, -0.5, 0.0, 0.3, 0.0, -1.0).finished();
    const Vector scale = (Vector(6) << 1, 10, 0.1, 1, 100, 1).finished();
    s.y_train += s.X_train * c;
    const Vector y_test = nnlift::predict_value(s.truth, s.X_test).col(0) + s.X_test * c;
    nnlift::Dataset data = nnlift::training_set(s);
    data.X = data.X * scale.asDiagonal();  // the same inputs in other units
    const Matrix X_test = s.X_test * scale.asDiagonal();
    nnlift::TrainOptions o;
    o.hidden = 2;
    const nnlift::TrainResult with = nnlift::train(data, o);
    REQUIRE(with.network.C.rows() == 1);
    REQUIRE(with.network.C.cols() == 6);
    CHECK(!with.output_linear_only);
    o.output.linear_term = false;
    const nnlift::TrainResult without = nnlift::train(data, o);
    CHECK(without.network.C.size() == 0);
    const double r2_with = r2(y_test, nnlift::predict_value(with.network, X_test).col(0));
    const double r2_without = r2(y_test, nnlift::predict_value(without.network, X_test).col(0));
    INFO("test R^2 with the linear term " << r2_with << ", without " << r2_without);
    CHECK(r2_with > 0.99);
    CHECK(r2_with > r2_without + 0.05);
  }

  TEST_CASE("realdata: the trained network clamps its inputs to the training rows' range") {
    // A heavy-tailed input (populations of counties) and y = log of it: a row 50 times beyond the
    // training rows' largest value is predicted as at the bounds, not extrapolated by the
    // linear term and the units' slopes (ggplot2's midwest, session 29: a county 2.4 times the
    // largest got -53% college from the refined network; test R^2 -1.67, clamped 0.73).
    nnlift::detail::Rng rng(31);
    const Index n = 600;
    nnlift::Dataset data = normal_inputs(rng, n, 3);
    data.y.resize(n);
    for (Index i = 0; i < n; ++i) {
      data.X(i, 0) = std::exp(1.5 * data.X(i, 0));
      data.y(i) = std::log(data.X(i, 0)) + 0.5 * data.X(i, 1) + 0.1 * rng.normal();
    }
    nnlift::TrainOptions o;
    o.hidden = 3;
    o.refine.enabled = true;
    const nnlift::TrainResult r = nnlift::train(data, o);
    // The bounds: the training range widened by its width on each side.
    REQUIRE(r.network.input_low.size() == 3);
    for (Index j = 0; j < 3; ++j) {
      const double low = data.X.col(j).minCoeff(), high = data.X.col(j).maxCoeff();
      CHECK(r.network.input_low(j) == low - (high - low));
      CHECK(r.network.input_high(j) == high + (high - low));
    }
    Matrix far = Matrix::Zero(1, 3);
    far(0, 0) = 50 * data.X.col(0).maxCoeff();
    Matrix edge = far;
    edge(0, 0) = r.network.input_high(0);
    const double at_edge = nnlift::predict(r.network, edge)(0, 0);
    CHECK(nnlift::predict(r.network, far)(0, 0) == at_edge);
    // At the widened bounds the truth is log(2 max - min) and the units may carry on: under the
    // sanitizers (other rounding) 7.85, here 1.34; y's largest is 5.22.
    CHECK(at_edge < 2.0 * data.y.maxCoeff());
    // Off: no range, and the same weights (the range is taken after training).
    o.clamp_inputs = false;
    const nnlift::TrainResult free = nnlift::train(data, o);
    CHECK(free.network.input_low.size() == 0);
    CHECK(same_weights(free.network, r.network));
    INFO("beyond the range: " << nnlift::predict(free.network, far)(0, 0) << " against " << at_edge
                              << " at its edge");
    CHECK(nnlift::predict(free.network, far)(0, 0) != at_edge);
  }

  TEST_CASE("realdata: on linear data the model is as good as least squares") {
    // When y depends on x linearly only, the moment directions are noise; the output layer's
    // ridge (GCV, with the linear model alone among the candidates) keeps the test error at
    // the least-squares fit's. Pure noise labels: the linear model alone wins.
    nnlift::detail::Rng rng(11);
    const Index n = 800, d = 8;
    const Vector beta = rng.normal_matrix(d, 1);
    nnlift::Dataset data = normal_inputs(rng, n, d), test = normal_inputs(rng, 20000, d);
    data.y = data.X * beta + 2.0 * Vector(rng.normal_matrix(n, 1));
    test.y = test.X * beta;
    Matrix F(n, d + 1);
    F << data.X, Vector::Ones(n);
    const Vector ols = F.colPivHouseholderQr().solve(data.y);
    const Vector ols_test = test.X * ols.head(d) + Vector::Constant(test.y.size(), ols(d));
    nnlift::TrainOptions o;
    o.hidden = 3;
    const nnlift::TrainResult r = nnlift::train(data, o);
    const double ours = r2(test.y, nnlift::predict_value(r.network, test.X).col(0));
    const double theirs = r2(test.y, ols_test);
    INFO("test R^2 nnlift " << ours << ", least squares " << theirs);
    CHECK(ours >= theirs - 0.005);
    // Pure noise labels (variance 1): the fitted function stays near constant on new inputs,
    // and GCV leaves the units out in some draws, exactly (variance at most 0.0052 in these five;
    // two of them leave the units out). (One draw was asserted to leave them out before; on 20
    // draws of this test's sequence, 12 did so before session 41's change of the subspace's sweeps
    // and 14 after, not the same ones.)
    int left_out = 0;
    for (int draw = 0; draw < 5; ++draw) {
      nnlift::Dataset noise = data;
      noise.y = Vector(rng.normal_matrix(n, 1));
      const nnlift::TrainResult fit = nnlift::train(noise, o);
      const Vector f = nnlift::predict_value(fit.network, test.X).col(0);
      CAPTURE(draw);
      CHECK((f.array() - f.mean()).square().mean() < 0.02);
      if (fit.output_linear_only) {
        ++left_out;
        CHECK(fit.network.W2.cwiseAbs().maxCoeff() == 0.0);
      }
    }
    CHECK(left_out >= 2);
    // Classes from the sign of a linear function: as accurate as the linear rule allows.
    nnlift::Dataset classes = data;
    classes.y = (data.X * beta).unaryExpr([](double v) { return v > 0 ? 1.0 : 0.0; });
    o.labels.task = nnlift::Task::Classification;
    const nnlift::TrainResult rc = nnlift::train(classes, o);
    test.y = (test.X * beta).unaryExpr([](double v) { return v > 0 ? 1.0 : 0.0; });
    CHECK(nnlift::score(rc.network, test.X, test.y).accuracy > 0.95);
  }

  TEST_CASE("realdata: the classes' ridge is as good as the best one, and strong for noise") {
    // Ten classes drawn from a linear softmax teacher, few rows for the 31 × 10 weights: the
    // automatic ridge's test accuracy is within 0.01 of the best fixed ridge's (an oracle that
    // sees the test rows).
    nnlift::detail::Rng rng(21);
    const Index d = 30, classes = 10, n = 500;
    const Matrix B = 0.6 * rng.normal_matrix(d, classes);
    auto make = [&](Index rows) {
      nnlift::Dataset data = normal_inputs(rng, rows, d);
      data.y.resize(rows);
      const Matrix logits = data.X * B;
      for (Index i = 0; i < rows; ++i) {
        Vector p = (logits.row(i).array() - logits.row(i).maxCoeff()).exp();
        p /= p.sum();
        const double u = rng.uniform();  // the class by inverse CDF
        Index c = 0;
        double cdf = p(0);
        while (c + 1 < classes && cdf < u) {
          cdf += p(++c);
        }
        data.y(i) = static_cast<double>(c);
      }
      return data;
    };
    const nnlift::Dataset data = make(n), test = make(20000);
    nnlift::TrainOptions o;
    o.hidden = 1;
    o.labels.task = nnlift::Task::Classification;
    const double chosen = nnlift::score(nnlift::train(data, o).network, test.X, test.y).accuracy;
    double best = 0;
    for (const double ridge : {1e-5, 1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0}) {
      o.output.ridge = ridge;
      const double a = nnlift::score(nnlift::train(data, o).network, test.X, test.y).accuracy;
      INFO("ridge " << ridge << ": test accuracy " << a);
      best = std::max(best, a);
    }
    INFO("chosen: test accuracy " << chosen << ", best fixed ridge " << best);
    CHECK(chosen >= best - 0.01);
    // More units than the linear teacher needs: the linear model alone, with its units left out
    // and their weights exactly zero (they used to be penalised by a factor 1e8 instead, which
    // left the softmax fit so ill-conditioned that it stopped short of its optimum), and as
    // accurate.
    o.hidden = 8;
    o.output.ridge.reset();
    const nnlift::TrainResult many = nnlift::train(data, o);
    CHECK(many.output_linear_only);
    CHECK(many.network.W2.cwiseAbs().maxCoeff() == 0.0);
    CHECK(nnlift::score(many.network, test.X, test.y).accuracy >= best - 0.01);
    o.hidden = 1;
    // Labels independent of the inputs: every ridge misclassifies about as often, and the
    // log-loss picks the strongest, whose predictions are nearest the class shares. (The grid
    // used to stop at 0.1.)
    // (Drawn at random: with the labels i mod 3 the network beat the linear term alone by the
    // cross-validation's margin on 5 to 6 of 20 draws of the inputs, with or without the cubic
    // control variate; with random labels on none.)
    nnlift::Dataset noise = make(150);
    for (Index i = 0; i < noise.y.size(); ++i) {
      noise.y(i) = std::floor(3.0 * rng.uniform());
    }
    o.output.ridge.reset();
    const nnlift::TrainResult r = nnlift::train(noise, o);
    CHECK(r.output_linear_only);
    CHECK(r.output_ridge >= 0.3);
  }

  TEST_CASE("realdata: a logistic output layer on many columns reaches its optimum") {
    // 300 inputs: the fit takes L-BFGS steps instead of Newton's (kNewtonLogisticColumns). At the
    // returned linear model f = C x + b2 the penalised objective's gradient vanishes: for the
    // column-standardised inputs z_j, mean((sigma(f) - y) z_j) + lambda w_j = 0 with w_j = C_j sd_j
    // (mean(z_j^2) = 1), and mean(sigma(f) - y) = 0 for the intercept.
    nnlift::detail::Rng rng(23);
    const Index d = 300, n = 400;
    nnlift::Dataset data = normal_inputs(rng, n, d);
    const Vector a = rng.normal_vector(d) / std::sqrt(static_cast<double>(d));
    data.y.resize(n);
    for (Index i = 0; i < n; ++i) {
      data.y(i) = rng.uniform() < 1.0 / (1.0 + std::exp(-2.0 * data.X.row(i).dot(a))) ? 1.0 : 0.0;
    }
    nnlift::TrainOptions o;
    o.hidden = 1;
    o.labels.task = nnlift::Task::Classification;
    o.output.ridge = 0.05;
    o.output.hidden_units = false;
    const nnlift::TwoLayerNetwork net = nnlift::train(data, o).network;
    REQUIRE(net.C.cols() == d);
    const Vector mean = data.X.colwise().mean();
    const Vector sd =
        ((data.X.rowwise() - mean.transpose()).colwise().squaredNorm() / static_cast<double>(n))
            .cwiseSqrt();
    const Vector f = data.X * net.C.row(0).transpose() + Vector::Constant(n, net.b2(0));
    const Vector residual = (1.0 / (1.0 + (-f.array()).exp())).matrix() - data.y;  // sigma(f) - y
    const Matrix Z = (data.X.rowwise() - mean.transpose()) * sd.cwiseInverse().asDiagonal();
    const Vector w = net.C.row(0).transpose().cwiseProduct(sd);
    const Vector grad = Z.transpose() * residual / static_cast<double>(n) + 0.05 * w;
    INFO("largest gradient entry " << grad.cwiseAbs().maxCoeff() << ", intercept "
                                   << residual.mean());
    CHECK(grad.cwiseAbs().maxCoeff() < 1e-6);
    CHECK(std::abs(residual.mean()) < 1e-6);
    CHECK(w.norm() > 0.1);  // a fit, not the zero model
  }

  TEST_CASE("realdata: fits with other units share the linear model's cross-validated scores") {
    // The linear model alone does not see the units, so its scores, taken in one fit, give a
    // second fit with other units exactly what it would compute itself.
    nnlift::detail::Rng rng(23);
    nnlift::Dataset data = normal_inputs(rng, 400, 4);
    data.y.resize(400);
    for (Index i = 0; i < 400; ++i) {
      data.y(i) = data.X(i, 0) + 0.5 * rng.normal() > 0 ? (data.X(i, 1) > 0.3 ? 2.0 : 1.0) : 0.0;
    }
    const nnlift::ExecutionContext context;
    const nnlift::Standardizer st = nnlift::fit_standardizer(data.X, data.feature_names, context);
    nnlift::LabelOptions lo;
    lo.task = nnlift::Task::Classification;
    const nnlift::detail::Labels labels = nnlift::detail::encode_labels(data, lo, 1, context);
    REQUIRE(labels.multiclass());
    const Matrix H1 = rng.normal_matrix(400, 2), H2 = rng.normal_matrix(400, 2).cwiseAbs();
    nnlift::detail::LinearOnlyScores shared;
    nnlift::TwoLayerNetwork first, reused, alone;
    for (nnlift::TwoLayerNetwork* net : {&first, &reused, &alone}) {
      net->link = nnlift::OutputLink::Softmax;
      net->classes = labels.classes;
    }
    const nnlift::OutputOptions options;
    nnlift::detail::fit_output_layer(
        H1, &data.X, st, labels, nnlift::Task::Classification, options, context, first, &shared);
    CHECK(shared.loss.size() == 10);  // one per ridge of the grid
    const nnlift::detail::OutputFit a = nnlift::detail::fit_output_layer(
        H2, &data.X, st, labels, nnlift::Task::Classification, options, context, reused, &shared);
    const nnlift::detail::OutputFit b = nnlift::detail::fit_output_layer(
        H2, &data.X, st, labels, nnlift::Task::Classification, options, context, alone);
    CHECK(a.ridge == b.ridge);
    CHECK(a.linear_only() == b.linear_only());
    CHECK(same_weights(reused, alone));
  }

  TEST_CASE("realdata: more inputs than rows train as a ridge fit would, not refused") {
    // 60 rows, 120 inputs, y linear in 5 of them: whitening keeps the 59 directions the rows
    // span (and says so); the output layer's ridge on the inputs does the rest. This used to be
    // refused ("at least d + 2 rows").
    nnlift::detail::Rng rng(31);
    const Index n = 60, d = 120;
    Vector beta = Vector::Zero(d);
    beta.head(5) << 2.0, -1.5, 1.0, 0.5, -0.5;
    auto make = [&](Index rows) {
      nnlift::Dataset data = normal_inputs(rng, rows, d);
      data.y = data.X * beta + 0.3 * Vector(rng.normal_matrix(rows, 1));
      return data;
    };
    const nnlift::Dataset data = make(n), test = make(5000);
    nnlift::TrainOptions o;
    o.hidden = 2;
    const nnlift::TrainResult r = nnlift::train(data, o);
    std::string all;
    for (const std::string& w : r.warnings) {
      all += w + "\n";
    }
    INFO(all);
    CHECK(all.find("the 60 rows span at most 59 directions of the 120 inputs") !=
          std::string::npos);
    CHECK(all.find("59 independent directions remain") != std::string::npos);
    const double ours = r2(test.y, nnlift::predict_value(r.network, test.X).col(0));
    // The oracle: ridge on the centred inputs at the best of a few penalties, judged on the
    // test rows it does not see otherwise.
    const Vector mean = data.X.colwise().mean();
    const Matrix Xc = data.X.rowwise() - mean.transpose();
    const double ybar = data.y.mean();
    const Matrix gram = Xc.transpose() * Xc;
    const Vector moment = Xc.transpose() * (data.y.array() - ybar).matrix();
    double best = -1e300;
    for (const double lambda : {0.1, 1.0, 10.0, 100.0}) {
      Matrix A = gram;
      A.diagonal().array() += lambda;
      const Vector w = A.ldlt().solve(moment);
      const Vector f = ((test.X.rowwise() - mean.transpose()) * w).array() + ybar;
      best = std::max(best, r2(test.y, f));
    }
    INFO("test R^2 nnlift " << ours << ", best ridge " << best);
    CHECK(ours >= best - 0.02);
    // Fewer than four rows are still refused, as data.
    nnlift::Dataset three = data;
    three.X = data.X.topRows(3);
    three.y = data.y.head(3);
    o.hidden = 1;
    CHECK_THROWS_WITH_AS(nnlift::train(three, o),
                         doctest::Contains("3 rows are too few to train on"),
                         nnlift::DataError);
    // Choosing among candidates on 4 rows: the fit part is too small for any, and the error
    // says so of the whole file (it said that no candidate could be trained, the first for
    // "3 rows are too few", of a 4-row file).
    nnlift::Dataset four = data;
    four.X = data.X.topRows(4);
    four.y = data.y.head(4);
    o.hidden = 0;  // auto
    CHECK_THROWS_WITH_AS(nnlift::train(four, o),
                         doctest::Contains("of 4 rows leaves 3 to fit, too few"),
                         nnlift::DataError);
  }

  TEST_CASE("realdata: GCV picks a larger ridge for noisier labels") {
    const nnlift::SynthData s = test::planted_teacher(6, 3, 3000, 5, kRealdataTestRows);
    nnlift::Dataset clean = nnlift::training_set(s);
    nnlift::Dataset noisy = clean;
    nnlift::detail::Rng rng(2);
    noisy.y += 3.0 * Vector(rng.normal_matrix(noisy.y.size(), 1));
    nnlift::TrainOptions o;
    o.hidden = 3;
    o.output.linear_term = false;
    const double clean_ridge = nnlift::train(clean, o).output_ridge;
    const double noisy_ridge = nnlift::train(noisy, o).output_ridge;
    INFO("ridge clean " << clean_ridge << ", noisy " << noisy_ridge);
    CHECK(noisy_ridge > clean_ridge);
    o.output.ridge = 0.25;  // a given ridge is used as it is
    CHECK(nnlift::train(clean, o).output_ridge == 0.25);
  }

  TEST_CASE("realdata: the units the columns and the target are written in do not change the fit") {
    // y = x0 + sin(2 x1) + noise on three standard normal inputs; the same rows with column 0 in
    // 1e-5 of its units and column 1 in 1e4 of them, and with the target in 1e-4 of its units,
    // must give the same predictions (in the target's units). Before, units were scaled to norm
    // 1 in the columns' own units (a unit along column 0 became nearly linear: R² 0.96 → 0.71),
    // and L-BFGS's absolute stopping tests ended the bias fit early on small labels (R² 0.90).
    nnlift::detail::Rng rng(41);
    nnlift::Dataset data = normal_inputs(rng, 2000, 3);
    data.y.resize(2000);
    for (Index i = 0; i < 2000; ++i) {
      data.y(i) = data.X(i, 0) + std::sin(2 * data.X(i, 1)) + 0.1 * rng.normal();
    }
    nnlift::TrainOptions o;
    o.hidden = 3;
    const nnlift::TrainResult base = nnlift::train(data, o);
    const Vector f = nnlift::predict(base.network, data.X).col(0);
    const double sd = std::sqrt((data.y.array() - data.y.mean()).square().mean());
    CHECK(r2(data.y, f) > 0.9);
    nnlift::Dataset columns = data;
    columns.X.col(0) *= 1e-5;
    columns.X.col(1) *= 1e4;
    const nnlift::TrainResult scaled = nnlift::train(columns, o);
    const Vector fc = nnlift::predict(scaled.network, columns.X).col(0);
    CHECK((fc - f).cwiseAbs().maxCoeff() < 1e-6 * sd);
    nnlift::Dataset target = data;
    target.y *= 1e-4;
    const nnlift::TrainResult small = nnlift::train(target, o);
    const Vector ft = nnlift::predict(small.network, data.X).col(0) * 1e4;
    CHECK((ft - f).cwiseAbs().maxCoeff() < 1e-6 * sd);
    // Classes (moment-ratio biases, whose scale is not fitted): the same probabilities.
    nnlift::Dataset classes = data;
    nnlift::Dataset classes_scaled = columns;
    for (Index i = 0; i < 2000; ++i) {
      classes.y(i) = classes_scaled.y(i) = data.y(i) > 0.3 ? 1.0 : 0.0;
    }
    o.labels.task = nnlift::Task::Classification;
    const Vector p = nnlift::predict(nnlift::train(classes, o).network, classes.X).col(0);
    const Vector pc =
        nnlift::predict(nnlift::train(classes_scaled, o).network, classes_scaled.X).col(0);
    CHECK((pc - p).cwiseAbs().maxCoeff() < 1e-6);
  }

  TEST_CASE("realdata: a regression target too large to square is refused, naming its row") {
    // Its squares overflowed: a model with an infinite training MSE and NaN scores, no error.
    nnlift::detail::Rng rng(43);
    nnlift::Dataset data = normal_inputs(rng, 300, 2);
    data.y = data.X.col(0) * 1e140;
    data.y(123) = 3e150;
    nnlift::TrainOptions o;
    o.hidden = 2;
    CHECK_THROWS_WITH_AS(nnlift::train(data, o),
                         doctest::Contains("row 124, the target: a value over 1e+150"),
                         nnlift::DataError);
    data.y(123) = 1e150;  // the largest accepted: a finite fit
    const nnlift::TrainResult r = nnlift::train(data, o);
    CHECK(r.network.W2.allFinite());
    CHECK(r.network.C.allFinite());
    // Classes are labels, not numbers to square: two classes 0 and 3e150 train.
    data.y = (data.X.col(0).array() > 0).cast<double>() * 3e150;
    o.labels.task = nnlift::Task::Classification;
    CHECK(nnlift::train(data, o).network.W2.allFinite());
  }

  TEST_CASE("realdata: a column of values near 1e-13 varies: it is not dropped as constant") {
    // The constant-column test compared the variance with an absolute floor of 1e-24.
    nnlift::detail::Rng rng(42);
    nnlift::Dataset data = normal_inputs(rng, 500, 2);
    data.X.col(0) *= 1e-13;
    const nnlift::Standardizer st =
        nnlift::fit_standardizer(data.X, data.feature_names, nnlift::ExecutionContext(1));
    CHECK(st.constant_columns.empty());
    CHECK(st.rank() == 2);
    data.X.col(1).setConstant(1e-13);
    const nnlift::Standardizer one =
        nnlift::fit_standardizer(data.X, data.feature_names, nnlift::ExecutionContext(1));
    REQUIRE(one.constant_columns.size() == 1);
    CHECK(one.constant_columns.front() == 1);
  }

  TEST_CASE("realdata: constant and collinear columns are dropped with a warning") {
    const nnlift::SynthData s = test::planted_teacher(5, 2, 10000, 7, kRealdataTestRows);
    nnlift::Dataset data = nnlift::training_set(s);
    data.X.conservativeResize(Eigen::NoChange, 7);
    data.X.col(5).setConstant(3.5);
    data.X.col(6) = 2.0 * data.X.col(0) - data.X.col(1);
    data.feature_names.push_back("const");
    data.feature_names.push_back("combo");
    nnlift::TrainOptions o;
    o.hidden = 2;
    const nnlift::TrainResult r = nnlift::train(data, o);
    CHECK(r.network.W1.cols() == 7);
    CHECK(r.network.W1.col(5).cwiseAbs().maxCoeff() == 0.0);
    std::string all;
    for (const std::string& w : r.warnings) {
      all += w + "\n";
    }
    INFO(all);
    CHECK(all.find("constant input column(s) const") != std::string::npos);
    CHECK(all.find("collinear") != std::string::npos);
    CHECK(all.find("combo") != std::string::npos);
    const nnlift::Scores sc = nnlift::score(r.network, data.X, data.y);
    CHECK(sc.r2 > 0.9);
  }

  TEST_CASE(
      "realdata: a validation split reports scores; without refinement the model is the "
      "all-rows fit") {
    const nnlift::SynthData s = test::planted_teacher(6, 2, 20000, 9, kRealdataTestRows);
    const nnlift::Dataset data = nnlift::training_set(s);
    nnlift::TrainOptions o;
    o.hidden = 2;
    const nnlift::TrainResult plain = nnlift::train(data, o);
    CHECK(plain.validation.rows == 0);
    o.validation.fraction = 0.2;
    const nnlift::TrainResult held = nnlift::train(data, o);
    CHECK(held.validation.rows > 3600);
    CHECK(held.validation.rows < 4400);
    CHECK(held.validation.r2 > 0.9);
    CHECK(same_weights(held.network, plain.network));  // refitted on all rows
    const auto meta = nlohmann::json::parse(held.network.metadata_json);
    CHECK(meta.at("validation").at("rows") == held.validation.rows);
    CHECK(meta.at("validation").at("r2").get<double>() == held.validation.r2);
    // The same seed, the same split; another seed, another.
    CHECK(nnlift::train(data, o).validation.r2 == held.validation.r2);
    o.seed = 1;
    CHECK(nnlift::train(data, o).validation.rows != held.validation.rows);
    // Too few rows to hold any out.
    nnlift::Dataset tiny = data;
    tiny.X = data.X.topRows(9);
    tiny.y = data.y.head(9);
    o.hidden = 1;
    o.validation.fraction = 0.01;
    o.seed = 0;
    CHECK_THROWS_WITH_AS(
        nnlift::train(tiny, o), doctest::Contains("holds no row"), nnlift::DataError);
    // Fewer rows than any training needs: that is what is said (it said that a validation share
    // of 0.200000 held no row).
    tiny.X = data.X.topRows(2);
    tiny.y = data.y.head(2);
    o.validation.fraction.reset();
    o.refine.enabled = true;
    CHECK_THROWS_WITH_AS(
        nnlift::train(tiny, o), doctest::Contains("too few to train on"), nnlift::DataError);
    // Enough rows to train on, too few once the validation share is held out: the file's count
    // and what the share leaves are said (it said "3 rows are too few" of a 4-row file).
    tiny.X = data.X.topRows(4);
    tiny.y = data.y.head(4);
    CHECK_THROWS_WITH_AS(nnlift::train(tiny, o),
                         doctest::Contains("of 4 rows leaves 3 to fit, too few"),
                         nnlift::DataError);
    o.validation.fraction = 0.0;
    o.refine.enabled = false;
    CHECK(nnlift::train(tiny, o).network.W1.rows() == 1);
  }

  TEST_CASE("realdata: the refinement keeps the linear term along dropped input directions") {
    // x2 = x0 + 1e-3 e: the direction x2 - x0 has a correlation eigenvalue of about 5e-7, below
    // the floor, so the standardised coordinates drop it; y's part along it (e) is carried by
    // the output layer's linear term, fitted on the column-standardised inputs. The refinement
    // works in standardised coordinates: before it held that part fixed it lost it (test R^2
    // 0.92 -> 0.30 with one held-out share, 0.93 -> 0.29 with five folds; modeldata's meats
    // spectra, seed 1: 0.944 -> 0.858).
    const auto make = [](std::uint64_t seed, Index rows) {
      nnlift::detail::Rng rng(seed);
      nnlift::Dataset data = normal_inputs(rng, rows, 3);
      data.y.resize(rows);
      for (Index i = 0; i < rows; ++i) {
        const double e = rng.normal();
        data.X(i, 2) = data.X(i, 0) + 1e-3 * e;
        data.y(i) = std::sin(2 * data.X(i, 1)) + e + 0.1 * rng.normal();
      }
      return data;
    };
    const nnlift::Dataset test_rows = make(32, 4000);
    for (const Index rows : {Index(2000), Index(600)}) {  // one held-out share; 5 folds
      const nnlift::Dataset data = make(31, rows);
      nnlift::TrainOptions o;
      o.hidden = 2;
      const nnlift::TrainResult plain = nnlift::train(data, o);
      o.refine.enabled = true;
      const nnlift::TrainResult refined = nnlift::train(data, o);
      const double before = nnlift::score(plain.network, test_rows.X, test_rows.y).r2;
      const double after = nnlift::score(refined.network, test_rows.X, test_rows.y).r2;
      INFO(rows << " rows: test R^2 " << before << " without the refinement, " << after
                << " with it (" << refined.refine.stop_reason << ")");
      CHECK(refined.validation.folds == (rows < 1000 ? 5 : 1));
      CHECK(before > 0.85);
      CHECK(after > before - 0.02);
      CHECK_FALSE(refined.refine.start_kept);  // the refined network is what was measured
    }
  }

  TEST_CASE("realdata: the refinement never ends worse on the validation rows than its start") {
    // Few rows, many units: L-BFGS alone overfits; the kept point is the best on validation.
    const nnlift::SynthData s = test::planted_teacher(8, 4, 600, 13, kRealdataTestRows);
    const nnlift::Dataset data = nnlift::training_set(s);
    nnlift::TrainOptions o = refining(4);
    for (const double decay : {0.0, 1e-3}) {
      o.refine.weight_decay = decay;
      const nnlift::TrainResult r = nnlift::train(data, o);
      INFO("decay " << decay << ": validation loss " << r.refine.validation_before << " -> "
                    << r.refine.validation_after << " (" << r.refine.stop_reason << ")");
      CHECK(r.validation.rows > 0);
      CHECK(r.candidates.empty());  // one candidate: nothing chosen among (it had the one)
      CHECK(r.refine.validation_after <= r.refine.validation_before);
      CHECK(r.refine.weight_decay == decay);
      CHECK(r.validation.mse == doctest::Approx(r.refine.validation_after).epsilon(1e-9));
    }
    // Chosen from the grid c / n (c = 0.01, 0.1, ..., up to 0.1; n the training rows), weakest
    // first, stopping at the first decay that does no better on validation: the oracle is each
    // decay run on its own.
    o.refine.weight_decay.reset();
    const nnlift::TrainResult chosen = nnlift::train(data, o);
    const double rows = static_cast<double>(data.X.rows() - chosen.validation.rows);
    std::vector<double> grid;
    for (const double c : {0.01, 0.1, 1.0, 10.0, 100.0, 1000.0}) {
      if (c / rows <= 0.1) {
        grid.push_back(c / rows);
      }
    }
    REQUIRE(grid.size() == 4);  // about 480 training rows: 2.1e-5 ... 0.021
    double expected = grid[0], best = 0;
    for (std::size_t i = 0; i < grid.size(); ++i) {
      o.refine.weight_decay = grid[i];
      const double loss = nnlift::train(data, o).refine.validation_after;
      if (i > 0 && !(loss < best)) {
        break;
      }
      best = loss;
      expected = grid[i];
    }
    CHECK(chosen.refine.weight_decay == expected);
    CHECK(chosen.refine.validation_after == best);
  }

  TEST_CASE("realdata: early stopping waits as long as the best point took, up to 2 patience") {
    // A validation loss that bumps and then improves again (noisy rows, a unit leaving a
    // plateau) stopped a refinement at its best iterate + patience: on make_classification (4
    // classes, 4,500 rows, k = 10) test accuracy 0.830 over three splits, 0.842 when waiting on.
    // The wait is max(patience, min(best iterate, 2 patience)).
    const nnlift::Dataset data = sine_set(5, 800, 0.3);
    nnlift::TrainOptions o = refining(10);  // six extra units: a long way from the start
    o.refine.weight_decay = 0.0;
    o.refine.patience = 40;
    o.refine.random_start = false;
    int late = 0;  // early-stopped runs whose best point came after `patience` iterates
    for (const std::uint64_t seed : {1, 2, 3, 4}) {
      o.seed = seed;
      const nnlift::TrainResult r = nnlift::train(data, o);
      INFO("seed " << seed << ": " << r.refine.stop_reason << " after " << r.refine.iterations
                   << " evaluations; best iterate " << r.refine.best_iterate);
      if (r.refine.stop_reason.rfind("early stopping", 0) != 0) {
        continue;  // the iteration limit
      }
      const int wait =
          std::max(o.refine.patience, std::min(r.refine.best_iterate, 2 * o.refine.patience));
      // Evaluations include the line searches' trial points: at least the iterates.
      CHECK(r.refine.iterations >= r.refine.best_iterate + wait);
      CHECK(r.refine.stop_reason.find("over " + std::to_string(wait) + " iterates") !=
            std::string::npos);
      late += r.refine.best_iterate > o.refine.patience ? 1 : 0;
    }
    CHECK(late >= 1);
  }

  TEST_CASE("realdata: the refinement's gradient is its loss's, for each output, over chunks") {
    // The refinement's pass works in chunks of 1,024 rows with the first layer and the linear
    // term in one product each way, and the softmax of a whole chunk at once. Oracles: central
    // differences of the loss for every parameter, and the log-loss of the network as it is (its
    // original coordinates) for the classes.
    nnlift::detail::Rng rng(11);
    const Index n = 2500, d = 4, k = 3;  // three chunks
    const Matrix X = rng.normal_matrix(n, d) * 2.0;
    const nnlift::ExecutionContext context(2);
    const nnlift::Standardizer st = nnlift::fit_standardizer(X, {"a", "b", "c", "e"}, context);
    const Matrix Xs = nnlift::standardize(st, X, context);
    for (const nnlift::OutputLink link : {nnlift::OutputLink::Identity,
                                          nnlift::OutputLink::Logistic,
                                          nnlift::OutputLink::Softmax}) {
      const Index c = link == nnlift::OutputLink::Softmax ? 3 : 1;
      nnlift::TwoLayerNetwork net;
      net.activation = nnlift::Activation::Sigmoid;
      net.link = link;
      net.W1 = rng.normal_matrix(k, d) * 0.5;
      net.b1 = rng.normal_matrix(k, 1);
      net.W2 = rng.normal_matrix(c, k);
      net.b2 = rng.normal_matrix(c, 1);
      net.C = rng.normal_matrix(c, d) * 0.3;
      const Matrix logits = nnlift::predict_value(net, X);
      Matrix T = Matrix::Zero(n, c);
      double log_loss = 0;
      for (Index i = 0; i < n; ++i) {
        const Index label = static_cast<Index>(rng.uniform() * 3.0) % 3;
        if (link == nnlift::OutputLink::Identity) {
          T(i, 0) = rng.normal();
        } else if (link == nnlift::OutputLink::Logistic) {
          T(i, 0) = label == 0 ? 1.0 : 0.0;
          log_loss += std::log1p(std::exp(logits(i, 0))) - T(i, 0) * logits(i, 0);
        } else {
          T(i, label) = 1.0;
          const double top = logits.row(i).maxCoeff();
          log_loss += std::log((logits.row(i).array() - top).exp().sum()) + top - logits(i, label);
        }
      }
      const nnlift::detail::RefineData data{Xs, T};
      const nnlift::detail::RefineObjective f =
          nnlift::detail::refine_objective(data, st, context, net);
      Vector grad;
      const double value = f.loss(f.theta, &grad);
      CAPTURE(static_cast<int>(link));
      REQUIRE(grad.size() == f.theta.size());
      if (link != nnlift::OutputLink::Identity) {
        CHECK(value == doctest::Approx(log_loss / static_cast<double>(n)).epsilon(1e-10));
      }
      for (Index j = 0; j < f.theta.size(); ++j) {
        const double h = 1e-5;
        Vector up = f.theta, down = f.theta;
        up(j) += h;
        down(j) -= h;
        const double numeric = (f.loss(up, nullptr) - f.loss(down, nullptr)) / (2 * h);
        CAPTURE(j);
        CHECK(grad(j) == doctest::Approx(numeric).epsilon(1e-6).scale(1e-3));
      }
    }
  }

  TEST_CASE("realdata: early stopping counts only a validation loss 1e-5 of itself lower") {
    // On many rows the validation loss creeps down for hundreds of iterates by amounts no test
    // set could see; the wait is counted from the last iterate that lowered it by a relative
    // 1e-5 (at n = 10⁶, d = 100, k = 10 the run went on for 100 iterates after the last one that
    // mattered). The oracle replays the rule on the run's curve of validation losses, and the
    // run must have passed over an iterate that lowered the best loss by less: the old rule
    // (any lower loss) waits on from there.
    // (Whether a run meets such an iterate turns on where it starts: here the moment network
    // without the cubic control variate, from which this teacher's run does.)
    bool crept_once = false;
    for (const std::uint64_t seed : {3}) {
      CAPTURE(seed);
      const nnlift::SynthData s = test::planted_teacher(6, 3, 20000, seed, kRealdataTestRows);
      RefineRows rows(s, s.y_test);
      nnlift::TrainOptions o;
      o.hidden = 3;
      o.moments.cubic_control_variate = false;
      const nnlift::TwoLayerNetwork net = nnlift::train(nnlift::training_set(s), o).network;
      nnlift::RefineOptions ro;
      ro.enabled = true;
      ro.max_iterations = 400;
      ro.patience = 10;
      const nnlift::detail::RefineCurves curves =
          nnlift::detail::refine_curves(rows.data, rows.st, ro, {1.0 / 20000}, rows.context, net);
      const std::vector<nnlift::detail::CurvePoint>& run = curves.runs.at(0);
      REQUIRE(run.size() >= 3);
      const int last = static_cast<int>(run.size()) - 1;
      double progress = run[0].loss, best = run[0].loss;
      int progress_at = 0, since = 0, stop = -1;
      bool crept = false;  // a lower loss that was not progress, in the wait that stopped the run
      for (int t = 1; t <= last && stop < 0; ++t) {
        const double loss = run[static_cast<std::size_t>(t)].loss;
        const bool lower = loss < best - 1e-9 * std::abs(best);
        best = lower ? loss : best;
        if (loss < progress - 1e-5 * std::abs(progress)) {
          progress = loss;
          progress_at = t;
          since = 0;
          crept = false;
          continue;
        }
        crept = crept || lower;
        if (++since >= std::max(ro.patience, std::min(progress_at, 2 * ro.patience))) {
          stop = t;
        }
      }
      INFO("curve of " << run.size() << " points; the rule stops at " << stop << ", progress at "
                       << progress_at);
      CHECK(stop == last);
      crept_once = crept_once || crept;
      CHECK(last < ro.max_iterations);
    }
    CHECK(crept_once);
  }

  TEST_CASE("realdata: with 100 rows per parameter the refinement runs one weight decay") {
    // Where the grid's strongest prior (1,000 rows) is under a hundredth of the rows per
    // parameter, its runs end within the validation loss's noise of one another: c = 1 alone.
    CHECK(nnlift::detail::decay_strengths(1400.0, 14) == std::vector<double>{1.0});
    CHECK(nnlift::detail::decay_strengths(1399.0, 14) ==
          std::vector<double>{0.01, 0.1, 1.0, 10.0, 100.0});
    CHECK(nnlift::detail::decay_strengths(1e6) ==
          std::vector<double>{0.01, 0.1, 1.0, 10.0, 100.0, 1000.0});
    // d = 3, k = 2, one output with a linear term: 6 + 2 + 2 + 1 + 3 = 14 parameters.
    const nnlift::Dataset many =
        nnlift::training_set(test::planted_teacher(3, 2, 2500, 4, kRealdataTestRows));
    const nnlift::TrainResult r = nnlift::train(many, refining(2));
    const double fit_rows = static_cast<double>(many.X.rows() - r.validation.rows);
    REQUIRE(fit_rows >= 1400);
    CHECK(r.refine.weight_decay == 1.0 / fit_rows);
    // Fewer rows: the grid, weakest first (at least its two weakest are run).
    const nnlift::Dataset few =
        nnlift::training_set(test::planted_teacher(3, 2, 1500, 4, kRealdataTestRows));
    const nnlift::TrainResult g = nnlift::train(few, refining(2));
    const double grid_rows = static_cast<double>(few.X.rows() - g.validation.rows);
    REQUIRE(grid_rows < 1400);
    bool on_grid = false;
    for (const double c : {0.01, 0.1, 1.0, 10.0, 100.0}) {
      on_grid = on_grid || g.refine.weight_decay == c / grid_rows;
    }
    CHECK(on_grid);
  }

  TEST_CASE("realdata: the refined network goes on training on all rows after it is scored") {
    // RefineOptions::all_rows: the validation rows choose and score the early-stopped network,
    // then join the fit (Deep Learning §7.8, algorithm 7.3). On make_classification (4,500
    // rows, 4 classes, k = 10) the early-stopped network's test accuracy was 0.842 over three
    // splits; scikit-learn's MLP on the 80% it is fitted on, 0.830, and on all rows 0.862.
    const nnlift::Dataset data = sine_set(8, 800, 1.0);
    nnlift::TrainOptions o = refining(8);
    o.refine.weight_decay = 1e-5;
    o.refine.all_rows = false;
    const nnlift::TrainResult stopped = nnlift::train(data, o);
    o.refine.all_rows = true;
    const nnlift::TrainResult on = nnlift::train(data, o);
    INFO("best iterate " << on.refine.best_iterate << "; then " << on.refine.all_rows_iterates
                         << " iterates on all rows (" << on.refine.all_rows_stop << ")");
    REQUIRE(!stopped.refine.start_kept);
    CHECK(!stopped.refine.all_rows);
    CHECK(stopped.refine.all_rows_iterates == 0);
    CHECK(on.refine.all_rows);
    CHECK(on.refine.all_rows_iterates >= 1);
    CHECK(on.refine.all_rows_iterates <= std::max(1, on.refine.best_iterate / 2));
    // The validation scores are the early-stopped network's, the same either way.
    CHECK(on.validation.mse == stopped.validation.mse);
    CHECK(on.refine.validation_after == stopped.refine.validation_after);
    // The loss over all rows went down from the early-stopped network's.
    const double before = nnlift::score(stopped.network, data.X, data.y).mse;
    const double after = nnlift::score(on.network, data.X, data.y).mse;
    INFO("MSE over all rows " << before << " -> " << after);
    CHECK(after < before);
    CHECK(on.network.metadata_json.find("\"refine_all_rows_iterates\":" +
                                        std::to_string(on.refine.all_rows_iterates)) !=
          std::string::npos);
    // With the moment model kept (nothing beat it), nothing goes on.
    o.refine.min_improvement = 1e9;
    const nnlift::TrainResult kept = nnlift::train(data, o);
    CHECK(kept.refine.start_kept);
    CHECK(!kept.refine.all_rows);
  }

  TEST_CASE("realdata: the continuation on all rows takes as many steps as its budget says") {
    // Noisier validation targets keep their loss above the fit rows': only the budget stops it.
    const nnlift::SynthData s = test::planted_teacher(6, 2, kRealdataTestRows, 11, 4000);
    nnlift::detail::Rng rng(3);
    const RefineRows rows(s, s.y_test + rng.normal_matrix(s.y_test.size(), 1));
    const nnlift::detail::RefineData& data = rows.data;
    const nnlift::Standardizer& st = rows.st;
    const nnlift::ExecutionContext& context = rows.context;
    const Matrix& Tv = rows.Tv;
    nnlift::TwoLayerNetwork start = s.truth;
    start.W2 *= 0.5;
    nnlift::RefineOptions options;
    const auto all_rows_mse = [&](const nnlift::TwoLayerNetwork& net) {
      return (nnlift::score(net, s.X_train, s.y_train).mse * s.X_train.rows() +
              nnlift::score(net, s.X_test, Tv.col(0)).mse * s.X_test.rows()) /
             static_cast<double>(s.X_train.rows() + s.X_test.rows());
    };
    double before = all_rows_mse(start);
    for (const int budget : {1, 3}) {
      nnlift::TwoLayerNetwork net = start;
      nnlift::RefineReport report;
      nnlift::detail::continue_on_all_rows(
          data, st, options, {0.0, &start, budget}, context, net, report);
      INFO("budget " << budget << ": " << report.all_rows_iterates << " steps ("
                     << report.all_rows_stop << ")");
      CHECK(report.all_rows);
      CHECK(report.all_rows_iterates == budget);
      CHECK(report.all_rows_stop.find("iterate budget") != std::string::npos);
      const double after = all_rows_mse(net);
      CHECK(after < before);  // each budget takes steps further down the same path
      before = after;
    }
  }

  TEST_CASE("realdata: beats_on_validation compares two networks by the paired per-row loss") {
    const nnlift::SynthData s = test::planted_teacher(6, 2, kRealdataTestRows, 11, 4000);
    const RefineRows rows(s, s.y_test);
    const nnlift::detail::RefineData& data = rows.data;
    const nnlift::Standardizer& st = rows.st;
    const nnlift::TwoLayerNetwork good = s.truth;
    nnlift::TwoLayerNetwork bad = s.truth;
    bad.W2 *= 0.5;  // half the teacher's output weights: a clearly larger loss
    CHECK(nnlift::detail::beats_on_validation(bad, good, data, st, 2.0));
    CHECK_FALSE(nnlift::detail::beats_on_validation(good, bad, data, st, 2.0));
    CHECK_FALSE(nnlift::detail::beats_on_validation(good, good, data, st, 0.0));  // no difference
    // A difference far within its standard error: a margin of 1,000 errors is not met.
    nnlift::TwoLayerNetwork near = s.truth;
    near.W2 *= 1.0 + 1e-3;
    CHECK_FALSE(nnlift::detail::beats_on_validation(near, good, data, st, 1000.0));
  }

  TEST_CASE("realdata: a refinement no better than chance on the validation rows is not kept") {
    const nnlift::SynthData s = test::planted_teacher(6, 2, 3000, 5, kRealdataTestRows);
    const nnlift::Dataset data = nnlift::training_set(s);
    nnlift::TrainOptions o = refining(2);
    o.refine.weight_decay = 1e-4;
    o.refine.random_start = false;  // the rule on the moment start's refinement alone
    // Any improvement kept: the reported improvement is the paired per-row difference, whose
    // mean is the difference of the validation losses.
    o.refine.min_improvement = 0;
    const nnlift::TrainResult any = nnlift::train(data, o);
    REQUIRE_FALSE(any.refine.start_kept);
    CHECK(
        any.refine.improvement ==
        doctest::Approx(any.refine.validation_before - any.refine.validation_after).epsilon(1e-8));
    CHECK(any.refine.improvement_se > 0);
    // The default margin is two standard errors; a planted network's refinement is well beyond
    // one.
    CHECK(nnlift::RefineOptions{}.min_improvement == 2.0);
    o.refine.min_improvement = 1;
    const nnlift::TrainResult rule = nnlift::train(data, o);
    INFO("improvement " << rule.refine.improvement << " +- " << rule.refine.improvement_se);
    CHECK_FALSE(rule.refine.start_kept);
    CHECK(rule.refine.improvement > rule.refine.improvement_se);
    // Demanding more than it gives: the moment model is kept, refitted on all rows as without
    // the refinement (bit for bit).
    o.refine.min_improvement = 2 * rule.refine.improvement / rule.refine.improvement_se;
    const nnlift::TrainResult kept = nnlift::train(data, o);
    CHECK(kept.refine.start_kept);
    nnlift::TrainOptions plain;
    plain.hidden = 2;
    CHECK(same_weights(kept.network, nnlift::train(data, plain).network));
    CHECK(kept.validation.rows == rule.validation.rows);
    o.refine.min_improvement = -1;
    CHECK_THROWS_WITH_AS(
        nnlift::train(data, o), doctest::Contains("refine.min_improvement"), std::invalid_argument);
  }

  TEST_CASE("realdata: a diverging refinement stops, says so and keeps the network") {
    // Targets so large that the logistic loss overflows at the start: the search ends at once,
    // reports the divergence, and the network is left as it was.
    const nnlift::SynthData s = test::planted_teacher(5, 2, 2000, 17, kRealdataTestRows);
    nnlift::TrainOptions o;
    o.hidden = 2;
    o.labels.task = nnlift::Task::Classification;
    nnlift::Dataset data = nnlift::training_set(s);
    data.y = (data.y.array() > data.y.mean()).cast<double>();
    nnlift::TrainResult start = nnlift::train(data, o);
    const nnlift::Standardizer st =
        nnlift::fit_standardizer(data.X, data.feature_names, nnlift::ExecutionContext());
    const Matrix Xs = nnlift::standardize(st, data.X, nnlift::ExecutionContext());
    const Matrix targets = Matrix::Constant(data.X.rows(), 1, 1e308);
    nnlift::TwoLayerNetwork net = start.network;
    nnlift::RefineOptions ro;
    ro.enabled = true;
    const nnlift::RefineReport r = nnlift::detail::refine_network(
        nnlift::detail::RefineData{Xs, targets}, st, ro, nnlift::ExecutionContext(), net);
    CHECK(r.diverged);
    CHECK(r.stop_reason.find("diverged") == 0);
    CHECK(same_weights(net, start.network));
  }

  TEST_CASE("realdata: random init + refinement learns labels far from zero mean and unit scale") {
    // Regression: Friedman #1's labels have mean ~14 and variance ~24; issue 9 reports the random
    // start stopping at R^2 0.01 on them. The refinement works on standardised targets.
    nnlift::SynthData s = test::planted_teacher(5, 3, 8000, 19, kRealdataTestRows);
    s.y_train = 14.0 + 5.0 * s.y_train.array();
    const Vector y_test = 14.0 + 5.0 * nnlift::predict_value(s.truth, s.X_test).col(0).array();
    nnlift::TrainOptions o;
    o.hidden = 3;
    o.init = nnlift::Init::Random;
    o.refine.enabled = true;
    o.output.linear_term = false;
    const nnlift::TrainResult r = nnlift::train(nnlift::training_set(s), o);
    const double score = r2(y_test, nnlift::predict_value(r.network, s.X_test).col(0));
    INFO("test R^2 " << score << " after " << r.refine.iterations << " (" << r.refine.stop_reason
                     << ")");
    CHECK(score > 0.95);
  }

  TEST_CASE("realdata: a random start keeps the linear term (at zero) when it is on") {
    // Regression: init = Random ignored output.linear_term (and `--init random --linear-term on`
    // trained no linear term). On a linear teacher the refined linear term carries the signal.
    nnlift::SynthData s = test::planted_teacher(5, 2, 3000, 29, kRealdataTestRows);
    const Vector a = (Vector(5) << 1.0, -2.0, 0.5, 0.0, 1.5).finished();
    s.y_train += s.X_train * a;
    nnlift::TrainOptions o;
    o.hidden = 2;
    o.init = nnlift::Init::Random;
    o.refine.enabled = true;
    const nnlift::TrainResult with = nnlift::train(nnlift::training_set(s), o);
    REQUIRE(with.network.C.rows() == 1);
    REQUIRE(with.network.C.cols() == 5);
    INFO("refined linear term " << with.network.C);
    CHECK((with.network.C.row(0).transpose() - a).norm() < 0.5 * a.norm());
    o.output.linear_term = false;
    const nnlift::TrainResult without = nnlift::train(nnlift::training_set(s), o);
    CHECK(without.network.C.size() == 0);
  }

  TEST_CASE("realdata: residualize auto is linear unless the rows are many against the features") {
    using nnlift::Residualize;
    // d = 10: p = 1 + 10 + 55 = 66 quadratic features.
    CHECK(nnlift::resolve_residualize(Residualize::Auto, 1000, 10) == Residualize::Linear);
    CHECK(nnlift::resolve_residualize(Residualize::Auto, 1319, 10) == Residualize::Linear);
    CHECK(nnlift::resolve_residualize(Residualize::Auto, 1320, 10) == Residualize::Quadratic);
    // Digits-like: p = 1953 for d = 61, n = 1348 rows: linear (the old rule took quadratic).
    CHECK(nnlift::resolve_residualize(Residualize::Auto, 1348, 61) == Residualize::Linear);
    CHECK(nnlift::resolve_residualize(Residualize::Quadratic, 10, 10) == Residualize::Quadratic);
  }

  TEST_CASE("realdata: with too few rows every unit is within noise, and train says so plainly") {
    const nnlift::SynthData s = test::planted_teacher(10, 3, 150, 23, kRealdataTestRows);
    nnlift::TrainOptions o;
    o.hidden = 3;
    const nnlift::TrainResult r = nnlift::train(nnlift::training_set(s), o);
    bool said = false;
    int weak_warnings = 0;  // one warning names all weak units, not one per unit
    for (const std::string& w : r.warnings) {
      said = said ||
             w.find("no better than random; use --refine lbfgs or more data") != std::string::npos;
      weak_warnings += w.find("within 3 x the estimated noise level") != std::string::npos;
      if (w.find("within 3 x the estimated") != std::string::npos) {
        CHECK(w.rfind("units 1-3: |lambda| (in the summary's table) are within", 0) == 0);
      }
    }
    CHECK(static_cast<Index>(r.moments.weak_units.size()) == 3);
    CHECK(said);
    CHECK(weak_warnings == 1);
  }

  TEST_CASE("realdata: cli train drops a constant column, refuses it with --strict") {
    test::TempDir dir;
    std::string text = "a,b,k,y\n";
    nnlift::detail::Rng rng(5);
    const Matrix X = rng.normal_matrix(400, 2);
    for (Index i = 0; i < X.rows(); ++i) {
      text += std::to_string(X(i, 0)) + "," + std::to_string(X(i, 1)) + ",7," +
              std::to_string(std::tanh(X(i, 0) - X(i, 1)) + 0.5 * X(i, 1)) + "\n";
    }
    test::write_text(dir.file("d.csv"), text);
    test::Outcome o = test::run({"train",
                                 "--data",
                                 dir.file("d.csv"),
                                 "--hidden",
                                 "1",
                                 "--model",
                                 dir.file("m.json"),
                                 "--validation",
                                 "0.25"});
    INFO(o.err);
    REQUIRE(o.code == 0);
    CHECK(o.err.find("constant input column(s) k carry nothing and are ignored") !=
          std::string::npos);
    CHECK(o.err.find("validation (") != std::string::npos);
    CHECK(o.err.find("output layer: ridge") != std::string::npos);
    const nnlift::TwoLayerNetwork net = nnlift::load_model(dir.file("m.json"));
    CHECK(net.C.cols() == 3);
    o = test::run({"train",
                   "--data",
                   dir.file("d.csv"),
                   "--hidden",
                   "1",
                   "--model",
                   dir.file("m2.json"),
                   "--strict"});
    CHECK(o.code == 1);
    CHECK(o.err.find("constant") != std::string::npos);
    CHECK(dir.list() == std::vector<std::string>{"d.csv", "m.json"});
  }

  TEST_CASE("realdata: version-1 model files (no linear term) still load and predict") {
    test::TempDir dir;
    test::write_text(dir.file("v1.json"),
                     R"({"format": "nnlift-model", "version": 1, "task": "regression",
                         "activation": "tanh", "inputs": ["a", "b"], "target": "y",
                         "hidden": {"weights": [[1, 0]], "bias": [0]},
                         "output": {"weights": [2], "bias": 1},
                         "linear": {"weights": [5, 5]}})");
    const nnlift::TwoLayerNetwork net = nnlift::load_model(dir.file("v1.json"));
    CHECK(net.C.size() == 0);  // "linear" is a version-2 key: a version-1 reader ignores it
    const Matrix X = (Matrix(1, 2) << 0.5, 3.0).finished();
    CHECK(nnlift::predict_value(net, X)(0, 0) == doctest::Approx(2 * std::tanh(0.5) + 1));
    // Version 2 with a linear term round-trips exactly.
    nnlift::TwoLayerNetwork v2 = net;
    v2.C = (Matrix(1, 2) << 0.25, -1.5).finished();
    nnlift::save_model(dir.file("v2.json"), v2);
    const nnlift::TwoLayerNetwork back = nnlift::load_model(dir.file("v2.json"));
    CHECK((back.C.array() == v2.C.array()).all());
    CHECK(nnlift::predict_value(back, X)(0, 0) ==
          doctest::Approx(2 * std::tanh(0.5) + 1 + 0.125 - 4.5));
    CHECK(test::read_text(dir.file("v2.json")).find("\"linear\"") != std::string::npos);
    // A linear block of the wrong width is refused, naming it.
    std::string bad = test::read_text(dir.file("v2.json"));
    const std::size_t at = bad.find("\"linear\"");
    bad.insert(bad.find(']', at), ", 1");
    test::write_text(dir.file("bad.json"), bad);
    CHECK_THROWS_WITH_AS(
        nnlift::load_model(dir.file("bad.json")), doctest::Contains("C is 1x3"), nnlift::IoError);
  }
}

TEST_SUITE("encoding") {
  // A small messy table: a numeric column with missing values, a text column, a missing
  // category, a missing target.
  // `nnlift train --data DIR/data --hidden 1 --model DIR/model` with more arguments.
  test::Outcome train_file(test::TempDir & dir,
                           const std::string& data,
                           const std::string& model,
                           const std::vector<std::string>& more = {}) {
    std::vector<std::string> args = {
        "train", "--data", dir.file(data), "--hidden", "1", "--model", dir.file(model)};
    args.insert(args.end(), more.begin(), more.end());
    return test::run(args);
  }

  // The lines of a command's output.
  std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      lines.push_back(line);
    }
    return lines;
  }

  std::string messy_csv() {
    std::string text = "a,color,b,y\n";
    nnlift::detail::Rng rng(3);
    const char* colors[] = {"red", "green", "blue"};
    for (int i = 0; i < 300; ++i) {
      const double a = rng.normal(), b = rng.normal();
      const int c = i % 3;
      const double y = std::tanh(a - b) + (c == 0 ? 1.0 : c == 2 ? -0.5 : 0.0);
      text += (i % 50 == 7 ? std::string("NA") : std::to_string(a)) + "," +
              (i % 40 == 5 ? std::string("") : std::string(colors[c])) + "," + std::to_string(b) +
              "," + (i == 11 ? std::string("?") : std::to_string(y)) + "\n";
    }
    return text;
  }

  TEST_CASE("encoding: missing values are refused by default, naming file, line and column") {
    test::TempDir dir;
    test::write_text(dir.file("m.csv"), messy_csv());
    const test::Outcome o = test::run(
        {"train", "--data", dir.file("m.csv"), "--hidden", "1", "--model", dir.file("x.json")});
    INFO(o.err);
    CHECK(o.code == 1);
    // The file's first missing value: the empty colour of line 7 (before the text columns were
    // detected in one pass, the 'NA' of line 9 came first).
    CHECK(o.err.find("m.csv:7:") != std::string::npos);
    CHECK(o.err.find("field 2 ('color') is empty (a missing value") != std::string::npos);
    CHECK(dir.list() == std::vector<std::string>{"m.csv"});
  }

  TEST_CASE("encoding: 'None' is a category in a text column, a missing value in numbers") {
    // A survey's "exercise: None" is an answer: it was read as missing (then filled with the
    // categories' shares, or refused by default). In a column of numbers it is still missing,
    // refused by default at its own place though the column's first "None" comes before the
    // row that shows the column holds numbers only; and a class "None" is a class.
    test::TempDir dir;
    std::string text = "a,exercise,b,y\n";
    for (int i = 0; i < 40; ++i) {
      const char* exercise[] = {"None", "Some", "Freq"};
      text += std::to_string(i % 7) + "," + exercise[i % 3] + "," +
              (i == 5 ? std::string("None") : std::to_string(i % 5)) + "," +
              std::to_string((i % 3) * 2 + i % 7) + "\n";
    }
    test::write_text(dir.file("s.csv"), text);
    test::Outcome o = train_file(dir, "s.csv", "x.json");
    INFO(o.err);
    CHECK(o.code == 1);
    CHECK(o.err.find("s.csv:7:") != std::string::npos);
    CHECK(o.err.find("field 3 ('b') is 'None' (a missing value") != std::string::npos);
    CHECK(dir.list() == std::vector<std::string>{"s.csv"});
    o = train_file(dir, "s.csv", "x.json", {"--missing", "mean"});
    REQUIRE(o.code == 0);
    nnlift::TwoLayerNetwork net = nnlift::load_model(dir.file("x.json"));
    REQUIRE(net.encoding.columns.size() == 3);
    CHECK(net.encoding.columns[1].categories == std::vector<std::string>{"Freq", "None", "Some"});
    CHECK(net.encoding.columns[2].fill[0] != 0.0);  // b's mean: its "None" was missing
    // Without --missing mean: a text column's "None" is no missing value.
    test::write_text(dir.file("t.csv"),
                     "a,exercise,y\n1,None,1\n2,Some,2\n3,Freq,3\n4,none,2\n5,Some,1\n");
    o = train_file(dir, "t.csv", "t.json");
    INFO(o.err);
    REQUIRE(o.code == 0);
    net = nnlift::load_model(dir.file("t.json"));
    CHECK(net.encoding.columns[1].categories ==
          std::vector<std::string>{"Freq", "None", "Some", "none"});
    // Text labels: "None" is a class.
    test::write_text(dir.file("c.csv"),
                     "a,b,y\n1,2,None\n2,3,yes\n3,4,None\n4,5,yes\n5,6,None\n6,1,yes\n");
    o = train_file(dir, "c.csv", "c.json");
    INFO(o.err);
    REQUIRE(o.code == 0);
    CHECK(nnlift::load_model(dir.file("c.json")).class_names ==
          std::vector<std::string>{"None", "yes"});
  }

  TEST_CASE(
      "encoding: a column of numbers with a few words is read as categories, with a warning") {
    // '.' for a missing score (SAS, Stata): the column turns text, its numbers categories. That
    // is kept (a category list is a valid reading), but said, with the words and their counts.
    test::TempDir dir;
    std::string text = "a,score,y\n";
    for (int i = 0; i < 60; ++i) {
      text += std::to_string(i % 7) + "," +
              (i % 20 == 3 ? std::string(".")
               : i == 10   ? std::string("n.d.")
                           : std::to_string(i % 9)) +
              "," + std::to_string(i % 5) + "\n";
    }
    test::write_text(dir.file("s.csv"), text);
    const test::Outcome o = train_file(dir, "s.csv", "x.json");
    INFO(o.err);
    REQUIRE(o.code == 0);
    CHECK(o.err.find("column 'score': 56 of 60 values are numbers, the others not ('.' in 3 "
                     "row(s), 'n.d.' in 1 row(s)), so its 11 distinct values are read as "
                     "categories") != std::string::npos);
    // A text column of words (with a number among them) is not warned about.
    test::write_text(dir.file("t.csv"), "a,c,y\n1,red,1\n2,blue,2\n3,7,3\n4,red,2\n5,blue,1\n");
    const test::Outcome t = train_file(dir, "t.csv", "t.json");
    REQUIRE(t.code == 0);
    CHECK(t.err.find("values are numbers") == std::string::npos);
  }

  TEST_CASE("encoding: --na-values names more missing values, and predict reads them too") {
    // '.' and '-999' for missing: named, they are missing values in numbers and text alike
    // (refused by default at their place; filled with --missing mean), and the model keeps them.
    test::TempDir dir;
    std::string text = "a,c,y\n";
    for (int i = 0; i < 40; ++i) {
      const char* colour[] = {"red", "blue", "-999"};
      text += (i == 6 ? std::string(" . ") : std::to_string(i % 7)) + "," + colour[i % 3] + "," +
              std::to_string(i % 5) + "\n";
    }
    test::write_text(dir.file("s.csv"), text);
    test::Outcome o = train_file(dir, "s.csv", "x.json", {"--na-values", ".,-999"});
    INFO(o.err);
    CHECK(o.code == 1);
    CHECK(o.err.find("s.csv:4:") != std::string::npos);  // line 4: the first "-999"
    CHECK(o.err.find("field 2 ('c') is empty (a missing value") == std::string::npos);
    CHECK(dir.list() == std::vector<std::string>{"s.csv"});
    o = train_file(dir, "s.csv", "x.json", {"--na-values", ".,-999", "--missing", "mean"});
    REQUIRE(o.code == 0);
    const nnlift::TwoLayerNetwork net = nnlift::load_model(dir.file("x.json"));
    CHECK(net.encoding.na_values == std::vector<std::string>{".", "-999"});
    CHECK(net.encoding.columns[1].categories == std::vector<std::string>{"blue", "red"});
    // predict reads the model's spellings with no flag: '.' predicts as the fill does.
    const double fill = net.encoding.columns[0].fill[0];
    test::write_text(dir.file("new.csv"),
                     "a,c\n.,red\n" + std::to_string(fill) + ",red\n2,-999\n2,NA\n");
    o = test::run({"predict", "--model", dir.file("x.json"), "--data", dir.file("new.csv")});
    INFO(o.err);
    REQUIRE(o.code == 0);
    const std::vector<std::string> lines = lines_of(o.out);  // a header, then a row each
    REQUIRE(lines.size() == 5);
    CHECK(std::stod(lines[1]) == doctest::Approx(std::stod(lines[2])).epsilon(1e-9));
    CHECK(lines[3] == lines[4]);
    CHECK(o.err.find("not seen in training") == std::string::npos);
    // Without the flag the same file has '-999' as a category, and '.' makes 'a' text.
    o = train_file(dir, "s.csv", "x.json", {"--missing", "mean"});
    REQUIRE(o.code == 0);
    CHECK(o.err.find("column 'a': 39 of 40 values are numbers") != std::string::npos);
    // An empty spelling is a command-line mistake.
    o = train_file(dir, "s.csv", "x.json", {"--na-values", ".,"});
    CHECK(o.code == 2);
    CHECK(o.err.find("--na-values: empty name") != std::string::npos);
  }

  TEST_CASE("encoding: a column of dates is named as such, not as too many categories") {
    // 150 days: refused with what they are; a dozen days (month ends in several spellings, with
    // times): read as categories, with a warning; words and numbers: neither.
    test::TempDir dir;
    std::string text = "day,a,y\n";
    for (int i = 0; i < 150; ++i) {
      text += "2012-" + std::to_string(1 + i / 28) + "-" + std::to_string(1 + i % 28) + "," +
              std::to_string(i % 7) + "," + std::to_string(i % 5) + "\n";
    }
    test::write_text(dir.file("d.csv"), text);
    test::Outcome o = train_file(dir, "d.csv", "x.json");
    INFO(o.err);
    CHECK(o.code == 1);
    CHECK(o.err.find("column 'day' holds dates (150 distinct values, e.g. '2012-1-1'), which are "
                     "no categories: --drop it") != std::string::npos);
    const char* days[] = {"31.01.2012",
                          "1/31/12",
                          "2012/02/29",
                          "2012-03-31T12:30:05Z",
                          "2012-04-30 08:15",
                          "05/31/2012",
                          "2012-06-30T23:59:59.5+02:00",
                          "31-07-2012",
                          "2012.08.31",
                          "9/30/2012 7:00"};
    text = "day,a,y\n";
    for (int i = 0; i < 30; ++i) {
      text += std::string(days[i % 10]) + "," + std::to_string(i % 7) + "," +
              std::to_string(i % 5) + "\n";
    }
    test::write_text(dir.file("s.csv"), text);
    o = train_file(dir, "s.csv", "s.json");
    INFO(o.err);
    CHECK(o.code == 0);
    CHECK(o.err.find("column 'day' holds dates, read as 10 categories") != std::string::npos);
    o = test::run({"describe", "--data", dir.file("s.csv")});
    CHECK(
        o.out.find("text: 10 categories (train --categorical auto one-hot encodes them); dates") !=
        std::string::npos);
    // Versions, addresses, codes: no dates.
    test::write_text(dir.file("v.csv"),
                     "v,a,y\n1.2.3.4,1,1\n192.168.1.1,2,2\nA-12-3,3,3\n12-34,4,4\n2012-13,5,5\n");
    o = train_file(dir, "v.csv", "v.json");
    INFO(o.err);
    CHECK(o.code == 0);
    CHECK(o.err.find("dates") == std::string::npos);
  }

  TEST_CASE("encoding: numbers with currency signs, thousands separators or % are named") {
    // As a spreadsheet exports them: many distinct ones are refused with what they are (the
    // error said "more than 100 categories"), a few are read as categories with a warning (they
    // were silent). Plain numbers, words and codes with commas are neither.
    test::TempDir dir;
    std::string text = "price,a,y\n";
    for (int i = 0; i < 150; ++i) {
      text += "\"$" + std::to_string(1 + i / 100) + "," + std::to_string(100 + i) + ".50\"," +
              std::to_string(i % 7) + "," + std::to_string(i % 5) + "\n";
    }
    test::write_text(dir.file("p.csv"), text);
    test::Outcome o = train_file(dir, "p.csv", "x.json");
    INFO(o.err);
    CHECK(o.code == 1);
    CHECK(o.err.find("p.csv: column 'price' holds numbers written with a currency sign, "
                     "thousands separators or a percent sign (e.g. '$1,100.50')") !=
          std::string::npos);
    const char* values[] = {"12.5%",
                            "-3%",
                            "\xE2\x82\xAC"
                            "4",
                            "\xC2\xA3"
                            "1,000",
                            "+$7"};
    text = "rate,a,y\n";
    for (int i = 0; i < 30; ++i) {
      text += "\"" + std::string(values[i % 5]) + "\"," + std::to_string(i % 7) + "," +
              std::to_string(i % 5) + "\n";
    }
    test::write_text(dir.file("r.csv"), text);
    o = train_file(dir, "r.csv", "r.json");
    INFO(o.err);
    CHECK(o.code == 0);
    CHECK(o.err.find("column 'rate' holds numbers written with a currency sign") !=
          std::string::npos);
    CHECK(o.err.find("read as 5 categories until then") != std::string::npos);
    // describe says the same of both (it said "one-hot encodes them" of 150 such values).
    o = test::run({"describe", "--data", dir.file("p.csv")});
    CHECK(o.out.find("text: 150 categories (more than the 100 train accepts: --drop it, or fix "
                     "its values); numbers written with a currency sign") != std::string::npos);
    o = test::run({"describe", "--data", dir.file("r.csv")});
    CHECK(o.out.find("text: 5 categories (train --categorical auto one-hot encodes them); numbers "
                     "written with a currency sign") != std::string::npos);
    test::write_text(dir.file("w.csv"),
                     "w,a,y\n\"a,b\",1,1\n\"1,x\",2,2\n%,3,3\n$,4,4\n\",5\",5,5\n");
    o = train_file(dir, "w.csv", "w.json");
    INFO(o.err);
    CHECK(o.code == 0);
    CHECK(o.err.find("currency sign") == std::string::npos);
  }

  TEST_CASE("encoding: a model without a 'None' category reads one as missing when it can") {
    // A model trained while "None" was a missing value (or on rows without one) has no such
    // category: with fill values a "None" predicts as a missing value does, not as an unseen
    // category (all zeros, with a warning).
    test::TempDir dir;
    test::write_text(dir.file("m.csv"), messy_csv());
    test::Outcome o = train_file(dir, "m.csv", "x.json", {"--missing", "mean"});
    REQUIRE(o.code == 0);
    test::write_text(dir.file("new.csv"), "b,color,a\n0.5,NA,0.1\n0.5,None,0.1\n0.5,purple,0.1\n");
    o = test::run({"predict", "--model", dir.file("x.json"), "--data", dir.file("new.csv")});
    INFO(o.err);
    REQUIRE(o.code == 0);
    CHECK(o.err.find("1 row(s) hold a category not seen in training") != std::string::npos);
    const std::vector<std::string> lines = lines_of(o.out);
    REQUIRE(lines.size() == 4);
    CHECK(lines[1] == lines[2]);  // "NA" and "None" alike
  }

  TEST_CASE("encoding: categories one-hot, means filled, the encoding stored and applied") {
    test::TempDir dir;
    test::write_text(dir.file("m.csv"), messy_csv());
    test::Outcome o = test::run({"train",
                                 "--data",
                                 dir.file("m.csv"),
                                 "--hidden",
                                 "1",
                                 "--model",
                                 dir.file("x.json"),
                                 "--missing",
                                 "mean"});
    INFO(o.err);
    REQUIRE(o.code == 0);
    CHECK(o.err.find("categorical column 'color': 3 categories") != std::string::npos);
    CHECK(o.err.find("1 row(s) with a missing target value were left out") != std::string::npos);
    const nnlift::TwoLayerNetwork net = nnlift::load_model(dir.file("x.json"));
    CHECK(net.inputs ==
          std::vector<std::string>{"a", "color=blue", "color=green", "color=red", "b"});
    REQUIRE(net.encoding.columns.size() == 3);
    CHECK(net.encoding.missing == nnlift::MissingPolicy::Mean);
    CHECK(net.encoding.columns[1].categories == std::vector<std::string>{"blue", "green", "red"});
    REQUIRE(net.encoding.columns[1].fill.size() == 3);
    CHECK(net.encoding.columns[1].fill[0] + net.encoding.columns[1].fill[1] +
              net.encoding.columns[1].fill[2] ==
          doctest::Approx(1.0));
    // predict applies the encoding: a row with a missing value and one with an unseen
    // category; the fill equals the column mean, so "NA" predicts as the mean would.
    const double a_mean = net.encoding.columns[0].fill[0];
    test::write_text(
        dir.file("new.csv"),
        "b,color,a\n0.5,red,NA\n0.5,red," + std::to_string(a_mean) + "\n0.5,purple,0.1\n");
    o = test::run({"predict", "--model", dir.file("x.json"), "--data", dir.file("new.csv")});
    INFO(o.err);
    REQUIRE(o.code == 0);
    CHECK(o.err.find("1 row(s) hold a category not seen in training") != std::string::npos);
    std::istringstream lines(o.out);
    std::string header, first, second;
    std::getline(lines, header);
    std::getline(lines, first);
    std::getline(lines, second);
    CHECK(std::stod(first) == doctest::Approx(std::stod(second)).epsilon(1e-6));
    // evaluate applies it too, and scores the fit.
    o = test::run({"evaluate", "--model", dir.file("x.json"), "--data", dir.file("m.csv")});
    CHECK(o.code == 1);  // the missing target in row 12 cannot be scored
    CHECK(o.err.find("target 'y' is missing in data row 12") != std::string::npos);
  }

  TEST_CASE("encoding: drop-rows, named categorical columns, too many categories") {
    test::TempDir dir;
    test::write_text(dir.file("m.csv"), messy_csv());
    test::Outcome o = test::run({"train",
                                 "--data",
                                 dir.file("m.csv"),
                                 "--hidden",
                                 "1",
                                 "--model",
                                 dir.file("x.json"),
                                 "--missing",
                                 "drop-rows"});
    INFO(o.err);
    REQUIRE(o.code == 0);
    CHECK(o.err.find("with missing input values were left out") != std::string::npos);
    CHECK(o.err.find("285 rows") != std::string::npos);  // 300 − 6 NA − 8 empty − 1 target
    const nnlift::TwoLayerNetwork net = nnlift::load_model(dir.file("x.json"));
    CHECK(net.encoding.columns[0].fill.empty());  // nothing may be filled at prediction
    test::write_text(dir.file("new.csv"), "a,color,b\nNA,red,0.5\n");
    o = test::run({"predict", "--model", dir.file("x.json"), "--data", dir.file("new.csv")});
    CHECK(o.code == 1);
    CHECK(o.err.find("column 'a', data row 1: missing value, and the model has no fill") !=
          std::string::npos);
    // Without detection, a text column is an error that says what to do.
    o = test::run({"train",
                   "--data",
                   dir.file("m.csv"),
                   "--hidden",
                   "1",
                   "--model",
                   dir.file("y.json"),
                   "--missing",
                   "mean",
                   "--categorical",
                   "none"});
    CHECK(o.code == 1);
    CHECK(o.err.find("is not a number: 'red' (a text column?") != std::string::npos);
    // A numeric column named categorical is one-hot encoded by value: `rows` rows of k in
    // {0, 1, 2} and v = 0.1 i, trained with --categorical `column`.
    const auto categorical = [&](const std::string& name, int rows, const char* column) {
      std::string text = "k,v,y\n";
      for (int i = 0; i < rows; ++i) {
        text += std::to_string(i % 3) + "," + std::to_string(0.1 * i) + "," +
                std::to_string((i % 3) * 2.0 + 0.1 * i) + "\n";
      }
      test::write_text(dir.file(name + ".csv"), text);
      return test::run({"train",
                        "--data",
                        dir.file(name + ".csv"),
                        "--hidden",
                        "1",
                        "--model",
                        dir.file(name + ".json"),
                        "--categorical",
                        column});
    };
    o = categorical("s", 60, "k");
    INFO(o.err);
    REQUIRE(o.code == 0);
    CHECK(nnlift::load_model(dir.file("s.json")).inputs ==
          std::vector<std::string>{"k=0", "k=1", "k=2", "v"});
    // ... and one with more distinct numbers than categories is named as numbers. (The message
    // read a value before the first row: "data row 0: '' is not a number, nor are -1 other
    // values".)
    o = categorical("many", 150, "v");
    CHECK(o.code == 1);
    CHECK(o.err.find("many.csv: column 'v' holds 150 distinct numbers, more than 100 categories: "
                     "read it as numbers (leave it out of --categorical)") != std::string::npos);
    // An identifier-like text column is refused.
    std::string ids = "id,x,y\n";
    for (int i = 0; i < 150; ++i) {
      ids += "u" + std::to_string(i) + "," + std::to_string(i % 7) + "," + std::to_string(i) + "\n";
    }
    test::write_text(dir.file("ids.csv"), ids);
    o = test::run(
        {"train", "--data", dir.file("ids.csv"), "--hidden", "1", "--model", dir.file("i.json")});
    CHECK(o.code == 1);
    CHECK(o.err.find("column 'id' holds 150 distinct text values") != std::string::npos);
    CHECK(o.err.find("--drop it") != std::string::npos);
  }

  TEST_CASE("encoding: describe shows text columns and counts missing values") {
    test::TempDir dir;
    test::write_text(dir.file("m.csv"), messy_csv());
    const test::Outcome o = test::run({"describe", "--data", dir.file("m.csv")});
    INFO(o.out << o.err);
    REQUIRE(o.code == 0);
    CHECK(o.out.find("text: 3 categories") != std::string::npos);
    CHECK(o.out.find("8 missing") != std::string::npos);  // the empty colours
    CHECK(o.out.find("6 missing") != std::string::npos);  // the NA values of a
    CHECK(o.out.find("1 missing") != std::string::npos);  // the target's '?'
  }

  TEST_CASE("encoding: a model file's encoding is validated") {
    test::TempDir dir;
    const std::string good = R"({"format": "nnlift-model", "version": 2, "task": "regression",
        "activation": "tanh", "inputs": ["a", "c=x", "c=y"], "target": "t",
        "hidden": {"weights": [[1, 0, 0]], "bias": [0]}, "output": {"weights": [2], "bias": 1},
        "encoding": {"missing": "mean", "columns": [{"name": "a", "fill": [0.5]},
          {"name": "c", "categories": ["x", "y"], "fill": [0.25, 0.75]}]}})";
    test::write_text(dir.file("good.json"), good);
    CHECK(nnlift::load_model(dir.file("good.json")).encoding.columns.size() == 2);
    auto refused = [&](const std::string& from, const std::string& to, const char* fragment) {
      test::write_text(dir.file("bad.json"), test::replaced(good, from, to));
      CHECK_THROWS_WITH_AS(
          nnlift::load_model(dir.file("bad.json")), doctest::Contains(fragment), nnlift::IoError);
    };
    refused("[\"x\", \"y\"]", "[\"y\", \"x\"]", "sorted and distinct");
    refused("[0.25, 0.75]", "[0.25]", "has 1 fill values; expected 2");
    refused("\"mean\"", "\"sometimes\"", "encoding.missing");
    refused("\"c=y\"", "\"c=z\"", "do not match 'inputs'");
    refused("\"mean\",", "\"mean\", \"na_values\": \".\",", "encoding.na_values' must be an array");
    refused("\"mean\",", "\"mean\", \"na_values\": [1],", "encoding.na_values[]' must be a string");
    test::write_text(dir.file("na.json"),
                     test::replaced(good, "\"mean\",", "\"mean\", \"na_values\": [\".\", \"-\"],"));
    CHECK(nnlift::load_model(dir.file("na.json")).encoding.na_values ==
          std::vector<std::string>{".", "-"});
  }
}

TEST_SUITE("score models") {
  TEST_CASE("score: normal_quantile inverts the normal CDF") {
    for (const double p : {1e-12, 1e-6, 0.01, 0.2, 0.5, 0.7, 0.975, 1 - 1e-9}) {
      const double z = nnlift::normal_quantile(p);
      CHECK(0.5 * std::erfc(-z / std::sqrt(2.0)) == doctest::Approx(p).epsilon(1e-12));
    }
    CHECK(nnlift::normal_quantile(0.5) == doctest::Approx(0.0).epsilon(1e-15));
    CHECK(nnlift::normal_quantile(0.975) == doctest::Approx(1.959963984540054).epsilon(1e-14));
    CHECK_THROWS_AS((void)nnlift::normal_quantile(1.0), std::invalid_argument);
  }

  TEST_CASE("score: the rank-Gauss map makes a skewed column standard normal, monotonically") {
    nnlift::detail::Rng rng(8);
    const Index n = 20000;
    Matrix X(n, 2);
    for (Index i = 0; i < n; ++i) {
      X(i, 0) = std::exp(1.5 * rng.normal());  // log-normal: heavily skewed
      X(i, 1) = static_cast<double>(i % 3);    // three values: ties get their mid-rank
    }
    const nnlift::RankGaussMap map = nnlift::fit_rank_gauss(X, nnlift::ExecutionContext());
    const Matrix Z = map.apply(X);
    const Vector z = Z.col(0);
    const double mean = z.mean();
    const double var = (z.array() - mean).square().mean();
    const double skew = (z.array() - mean).cube().mean() / std::pow(var, 1.5);
    CHECK(std::abs(mean) < 0.01);
    CHECK(var == doctest::Approx(1.0).epsilon(0.02));
    CHECK(std::abs(skew) < 0.02);
    for (Index i = 1; i < 200; ++i) {  // monotone
      CHECK(((X(i, 0) - X(0, 0)) * (Z(i, 0) - Z(0, 0))) >= 0.0);
    }
    CHECK(map.x[1].size() == 3);
    CHECK(std::abs(map.z[1][1]) < 1e-3);  // the middle value: about the median
    // Outside the training range: the end knots' values.
    const Matrix far = (Matrix(1, 2) << 1e9, -5.0).finished();
    CHECK(map.apply(far)(0, 0) == map.z[0].back());
    CHECK(map.apply(far)(0, 1) == map.z[1].front());
  }

  TEST_CASE("score: input_tails counts the heavy-tailed columns, not the constant ones") {
    nnlift::detail::Rng rng(12);
    const Index n = 20000;
    Matrix X(n, 6);
    for (Index i = 0; i < n; ++i) {
      X(i, 0) = rng.normal();                  // excess kurtosis 0
      X(i, 1) = rng.uniform(-1.0, 1.0);        // -1.2
      X(i, 2) = std::exp(1.5 * rng.normal());  // log-normal: in the hundreds
      X(i, 3) = 7.0;                           // constant: not counted
      const double a = rng.normal(), b = rng.normal();
      X(i, 4) = a * b * b;                // E x⁴ / (E x²)² − 3 = 3·105 / 3² − 3 = 32
      X(i, 5) = i % 50 == 0 ? 1.0 : 0.0;  // a rare binary column: excess kurtosis 45, not counted
    }
    const nnlift::InputTails all = nnlift::input_tails(X, nnlift::ExecutionContext());
    CHECK(all.columns == 4);  // the constant and the binary column are not counted
    CHECK(all.heavy == 2);
    CHECK(all.threshold == nnlift::kHeavyTailKurtosis);
    CHECK(all.heavy_tailed());  // two of four: half
    const nnlift::InputTails light = nnlift::input_tails(X.leftCols(3), nnlift::ExecutionContext());
    CHECK(light.columns == 3);
    CHECK(light.heavy == 1);
    CHECK(!light.heavy_tailed());  // one of three
    CHECK(light.median_kurtosis == doctest::Approx(0.0).epsilon(0.1));
    // Four columns counted: the median is the mean of the middle two, the Gaussian column's and
    // the scale mixture's (20,000 rows: the sample is every row).
    const auto excess = [&](Index j) {
      const Eigen::ArrayXd c = X.col(j).array() - X.col(j).mean();
      return c.pow(4).mean() / std::pow(c.square().mean(), 2) - 3.0;
    };
    CHECK(all.median_kurtosis == doctest::Approx(0.5 * (excess(0) + excess(4))).epsilon(1e-9));
    CHECK_THROWS_AS((void)nnlift::input_tails(X, nnlift::ExecutionContext(), 5.0, 1),
                    std::invalid_argument);
  }

  TEST_CASE("score: adaptive tries the rank-Gauss map only on heavy-tailed inputs") {
    const nnlift::SynthData s = test::planted_teacher(5, 2, 6000, 31, kRealdataTestRows);
    const nnlift::Dataset gaussian = nnlift::training_set(s);
    nnlift::TrainOptions o;
    o.hidden = 2;
    REQUIRE(o.score == nnlift::ScoreModel::Adaptive);  // the default
    // Gaussian inputs: exactly the Gaussian score's model, no validation rows, no candidates.
    const nnlift::TrainResult adaptive = nnlift::train(gaussian, o);
    nnlift::TrainOptions g = o;
    g.score = nnlift::ScoreModel::Gaussian;
    const nnlift::TrainResult plain = nnlift::train(gaussian, g);
    CHECK(!adaptive.input_tails.heavy_tailed());
    CHECK(adaptive.input_tails.columns == 5);
    CHECK(adaptive.candidates.empty());
    CHECK(adaptive.validation.rows == 0);
    CHECK(adaptive.score_used == nnlift::ScoreModel::Gaussian);
    CHECK(same_weights(adaptive.network, plain.network));
    CHECK(adaptive.network.metadata_json == plain.network.metadata_json);
    // Log-normal inputs (the teacher acts on their logarithms): both score models are tried on
    // the validation rows and the rank-Gauss map, which undoes the skew, is chosen.
    nnlift::Dataset skewed = gaussian;
    skewed.X = skewed.X.array().exp().matrix();
    const nnlift::TrainResult chosen = nnlift::train(skewed, o);
    CHECK(chosen.input_tails.heavy_tailed());
    REQUIRE(chosen.candidates.size() == 2);
    CHECK(chosen.candidates[0].score == nnlift::ScoreModel::Gaussian);
    CHECK(chosen.candidates[1].score == nnlift::ScoreModel::RankGauss);
    CHECK(chosen.candidates[1].loss < chosen.candidates[0].loss);
    CHECK(chosen.score_used == nnlift::ScoreModel::RankGauss);
    CHECK(!chosen.network.input_map.empty());
    CHECK(chosen.validation.rows > 0);
    // With no validation rows there is nothing to choose on: the Gaussian score, no error.
    o.validation.fraction = 0.0;
    const nnlift::TrainResult none = nnlift::train(skewed, o);
    CHECK(none.input_tails.heavy_tailed());
    CHECK(none.candidates.empty());
    CHECK(none.score_used == nnlift::ScoreModel::Gaussian);
    CHECK(none.network.input_map.empty());
    // Given directions are in the original coordinates: adaptive keeps the Gaussian score, and
    // the score models that map the inputs are refused with them.
    o.validation.fraction.reset();
    o.directions = s.truth.W1;
    const nnlift::TrainResult given = nnlift::train(skewed, o);
    CHECK(given.candidates.empty());
    CHECK(given.network.input_map.empty());
    for (const nnlift::ScoreModel mapped :
         {nnlift::ScoreModel::RankGauss, nnlift::ScoreModel::Auto}) {
      o.score = mapped;
      CHECK_THROWS_WITH_AS(nnlift::train(skewed, o),
                           doctest::Contains("directions are in the original coordinates"),
                           std::invalid_argument);
    }
  }

  TEST_CASE(
      "score: adaptive tries the mixture score on leptokurtic, symmetric inputs from kMixtureRows "
      "rows on, and keeps it where the Gaussian score is biased") {
    // Laplace inputs (excess kurtosis 3, below the heavy tails): the Gaussian score's estimate
    // is biased (docs/reproduction.md, E11), a fitted mixture's is not.
    nnlift::SynthOptions so;
    so.dim = 8;
    so.hidden = 2;
    so.samples = 24000;
    so.test_samples = 10000;
    so.noise = 0.05;
    so.inputs = nnlift::InputLaw::Laplace;
    so.seed = 5;
    const nnlift::SynthData s = nnlift::make_synthetic(so);
    const nnlift::Dataset data = nnlift::training_set(s);
    nnlift::TrainOptions o;
    o.hidden = 2;
    REQUIRE(o.score == nnlift::ScoreModel::Adaptive);
    const nnlift::TrainResult r = nnlift::train(data, o, nnlift::ExecutionContext(2));
    CHECK(!r.input_tails.heavy_tailed());
    CHECK(r.input_tails.median_kurtosis > nnlift::kMixtureKurtosis);
    CHECK(r.input_tails.median_abs_skewness < nnlift::kMixtureSkewness);
    CHECK(r.input_tails.scale_mixture());
    REQUIRE(r.candidates.size() == 2);
    CHECK(r.candidates[0].score == nnlift::ScoreModel::Gaussian);
    CHECK(r.candidates[1].score == nnlift::ScoreModel::Mixture);
    CHECK(r.candidates[1].loss < r.candidates[0].loss);
    CHECK(r.score_used == nnlift::ScoreModel::Mixture);
    CHECK(r.mixture.components() > 0);
    CHECK(r.validation.rows > 0);
    // Against the teacher on test rows: the mixture score's model is the better one.
    nnlift::TrainOptions g = o;
    g.score = nnlift::ScoreModel::Gaussian;
    const nnlift::TrainResult gauss = nnlift::train(data, g, nnlift::ExecutionContext(2));
    const Vector f_test = nnlift::predict_value(s.truth, s.X_test).col(0);
    const double r2_mix = r2(f_test, nnlift::predict_value(r.network, s.X_test).col(0));
    const double r2_gauss = r2(f_test, nnlift::predict_value(gauss.network, s.X_test).col(0));
    INFO("R^2 against the teacher: adaptive (mixture) " << r2_mix << ", gaussian " << r2_gauss);
    CHECK(r2_mix > r2_gauss);
    // Below kMixtureRows rows its variance costs more than the bias: not tried.
    nnlift::Dataset fewer = data;
    fewer.X = data.X.topRows(nnlift::kMixtureRows - 1);
    fewer.y = data.y.head(nnlift::kMixtureRows - 1);
    const nnlift::TrainResult small = nnlift::train(fewer, o, nnlift::ExecutionContext(2));
    CHECK(small.candidates.empty());
    CHECK(small.score_used == nnlift::ScoreModel::Gaussian);
    // Uniform inputs (excess kurtosis -1.2) are no scale mixture: not tried either.
    so.inputs = nnlift::InputLaw::Uniform;
    const nnlift::TrainResult flat = nnlift::train(
        nnlift::training_set(nnlift::make_synthetic(so)), o, nnlift::ExecutionContext(2));
    CHECK(flat.input_tails.median_kurtosis < 0);
    CHECK(flat.candidates.empty());
    CHECK(flat.score_used == nnlift::ScoreModel::Gaussian);
    // Nor skewed ones, leptokurtic as they are: x = e^{0.35 g} has excess kurtosis 2.3 and
    // skewness 1.1.
    so.inputs = nnlift::InputLaw::Gaussian;
    nnlift::Dataset skewed = nnlift::training_set(nnlift::make_synthetic(so));
    skewed.X = (0.35 * skewed.X.array()).exp().matrix();
    const nnlift::TrainResult lopsided = nnlift::train(skewed, o, nnlift::ExecutionContext(2));
    CHECK(lopsided.input_tails.median_kurtosis > nnlift::kMixtureKurtosis);
    CHECK(lopsided.input_tails.median_abs_skewness > nnlift::kMixtureSkewness);
    CHECK(!lopsided.input_tails.scale_mixture());
    CHECK(lopsided.candidates.empty());
    // Symmetric and heavy-tailed (Student's t with 4 degrees of freedom): the rank-Gauss map and
    // the mixture are both tried.
    nnlift::detail::Rng rng(17);
    nnlift::Dataset heavy = skewed;
    for (Index i = 0; i < heavy.X.rows(); ++i) {
      for (Index j = 0; j < heavy.X.cols(); ++j) {
        double chi = 0;
        for (int c = 0; c < 4; ++c) {
          const double z = rng.normal();
          chi += z * z;
        }
        heavy.X(i, j) = rng.normal() / std::sqrt(chi / 4.0);
      }
    }
    const nnlift::TrainResult t4 = nnlift::train(heavy, o, nnlift::ExecutionContext(2));
    CHECK(t4.input_tails.heavy_tailed());
    CHECK(t4.input_tails.scale_mixture());
    REQUIRE(t4.candidates.size() == 3);
    CHECK(t4.candidates[1].score == nnlift::ScoreModel::RankGauss);
    CHECK(t4.candidates[2].score == nnlift::ScoreModel::Mixture);
  }

  // Left out under the sanitizers, for tools/check's time: 2.9-3.6 s of the 20 s release run
  // (every candidate of hidden auto x score auto). The rank-Gauss map runs under the sanitizers in
  // the test above.
#if !defined(__SANITIZE_ADDRESS__)
  TEST_CASE("score: rankgauss recovers a teacher on non-Gaussian inputs, stored in the model") {
    // Inputs: each column a monotone, skewed function of a Gaussian (x = e^g): the teacher acts
    // on g, which the rank-Gauss map recovers; the Gaussian score sees skewed inputs.
    nnlift::SynthData s;
    {
      nnlift::SynthOptions so;
      so.dim = 6;
      so.hidden = 2;
      so.samples = 40000;
      so.test_samples = 4000;
      so.noise = 0.02;
      so.seed = 29;
      s = nnlift::make_synthetic(so);
    }
    nnlift::Dataset data = nnlift::training_set(s);
    data.X = data.X.array().exp().matrix();
    const Matrix X_test = s.X_test.array().exp().matrix();
    const Vector f_test = nnlift::predict_value(s.truth, s.X_test).col(0);
    nnlift::TrainOptions o;
    o.hidden = 2;
    o.output.linear_term = false;
    o.score = nnlift::ScoreModel::RankGauss;
    const nnlift::TrainResult rg = nnlift::train(data, o);
    o.score = nnlift::ScoreModel::Gaussian;
    const nnlift::TrainResult ga = nnlift::train(data, o);
    const double r2_rg = r2(f_test, nnlift::predict_value(rg.network, X_test).col(0));
    const double r2_ga = r2(f_test, nnlift::predict_value(ga.network, X_test).col(0));
    INFO("R^2 against the teacher: rankgauss " << r2_rg << ", gaussian " << r2_ga);
    CHECK(r2_rg > 0.97);
    CHECK(r2_rg > r2_ga + 0.02);
    CHECK(!rg.network.input_map.empty());
    CHECK(ga.network.input_map.empty());
    // The map round-trips through the model file and predict applies it.
    test::TempDir dir;
    nnlift::save_model(dir.file("rg.json"), rg.network);
    const nnlift::TwoLayerNetwork back = nnlift::load_model(dir.file("rg.json"));
    CHECK((nnlift::predict_value(back, X_test).array() ==
           nnlift::predict_value(rg.network, X_test).array())
              .all());
    // score auto and hidden auto choose on the validation rows and report the curve.
    o.score = nnlift::ScoreModel::Auto;
    o.hidden = 0;
    o.mixture.components = 2;  // the gmm candidates without the BIC search (tested apart)
    o.mixture.covariance = nnlift::MixtureCovariance::Full;
    const nnlift::TrainResult chosen = nnlift::train(data, o);
    CHECK(chosen.score_used == nnlift::ScoreModel::RankGauss);
    CHECK(chosen.network.num_hidden() >= 2);  // one unit cannot fit a two-unit teacher
    REQUIRE(chosen.candidates.size() == 12);  // k = 1, 2, 4, 8 (4 extra) for each score model
    CHECK(chosen.candidates[4].hidden == 1);
    CHECK(chosen.candidates[4].score == nnlift::ScoreModel::RankGauss);
    CHECK(chosen.candidates[4].loss > 10 * chosen.candidates[5].loss);  // rankgauss k = 1 vs 2
    CHECK(chosen.validation.rows > 0);
    o.validation.fraction = 0.0;
    CHECK_THROWS_WITH_AS(nnlift::train(data, o),
                         doctest::Contains("choose on the validation rows"),
                         std::invalid_argument);
  }
#endif

  TEST_CASE("biases: the least-squares objective's gradient, with the scales' pull") {
    // Central differences on every parameter (b̃ and log s of each unit), without and with the
    // pull toward the moment estimate's scales, which must add ½ pull ‖log s − log s0‖².
    nnlift::detail::Rng rng(3);
    const Index m = 300, k = 3;
    const Matrix t = rng.normal_matrix(m, k);
    const Vector y = (t.col(0).array().tanh() - 0.5 * t.col(2).array()).matrix() +
                     Vector(rng.normal_matrix(m, 1)) * 0.1;
    const Vector log_scale0 = (Vector(k) << 0.2, -0.3, 0.1).finished();
    const Vector theta = (Vector(2 * k) << 0.3, -0.2, 0.5, 0.4, -0.1, 0.7).finished();
    for (const double pull : {0.0, 0.05}) {
      Vector grad;
      const double f = nnlift::detail::bias_lsq_objective(
          t, y, nnlift::Activation::Sigmoid, 1e-3, log_scale0, pull, theta, grad);
      REQUIRE(grad.size() == 2 * k);
      for (Index i = 0; i < 2 * k; ++i) {
        const double h = 1e-5;
        Vector up = theta, down = theta, unused;
        up(i) += h;
        down(i) -= h;
        const double numeric =
            (nnlift::detail::bias_lsq_objective(
                 t, y, nnlift::Activation::Sigmoid, 1e-3, log_scale0, pull, up, unused) -
             nnlift::detail::bias_lsq_objective(
                 t, y, nnlift::Activation::Sigmoid, 1e-3, log_scale0, pull, down, unused)) /
            (2 * h);
        CAPTURE(pull);
        CAPTURE(i);
        CHECK(grad(i) == doctest::Approx(numeric).epsilon(1e-6).scale(1e-3));
      }
      // The pull's own share of the value.
      Vector unused;
      const double without = nnlift::detail::bias_lsq_objective(
          t, y, nnlift::Activation::Sigmoid, 1e-3, log_scale0, 0.0, theta, unused);
      CHECK(f - without ==
            doctest::Approx(0.5 * pull * (theta.tail(k) - log_scale0).squaredNorm()));
    }
  }
}
