// SPDX-License-Identifier: MIT
// Data larger than memory: .npy row blocks, the streamed writer, and training that reads its
// rows in every pass (train_streamed) against the same estimator on rows held in memory.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <limits>

#include <doctest/doctest.h>

#include <nnlift/evaluate.hpp>
#include <nnlift/npy.hpp>
#include <nnlift/stream.hpp>
#include <nnlift/synth.hpp>
#include <nnlift/train.hpp>

#include "test_helpers.hpp"

namespace {

// [X, y] of a planted set as a .npy file with its column names.
std::string planted_npy(const test::TempDir& dir, const nnlift::SynthData& s, bool float32) {
  const std::string path = dir.file(float32 ? "planted32.npy" : "planted.npy");
  Matrix table(s.X_train.rows(), s.X_train.cols() + 1);
  table << s.X_train, s.y_train;
  nnlift::NpyWriter w(path, table.cols(), float32);
  for (Index b = 0; b < table.rows(); b += 7000) {  // blocks of a size unrelated to the reader's
    w.append(table.middleRows(b, std::min<Index>(7000, table.rows() - b)));
  }
  w.finish();
  std::vector<std::string> names = s.truth.inputs;
  names.push_back("y");
  nnlift::write_npy_column_names(path, names);
  return path;
}

nnlift::StreamedColumns all_but_last(const nnlift::NpyRows& file) {
  const std::vector<std::string> names = nnlift::npy_column_names(file.path(), file.cols());
  nnlift::StreamedColumns c;
  for (Index j = 0; j + 1 < file.cols(); ++j) {
    c.features.push_back(j);
    c.feature_names.push_back(names[static_cast<std::size_t>(j)]);
  }
  c.target = file.cols() - 1;
  c.target_name = names.back();
  return c;
}

// The options both trainers cover: k units, the linear control variate, no validation.
nnlift::TrainOptions covered(Index k) {
  nnlift::TrainOptions o;
  o.hidden = k;
  o.seed = 3;
  o.moments.residualize = nnlift::Residualize::Linear;
  return o;
}

// Two networks' weights, equal bit for bit.
void check_same_bits(const nnlift::TwoLayerNetwork& a, const nnlift::TwoLayerNetwork& b) {
  CHECK((a.W1.array() == b.W1.array()).all());
  CHECK((a.b1.array() == b.b1.array()).all());
  CHECK((a.W2.array() == b.W2.array()).all());
  CHECK((a.b2.array() == b.b2.array()).all());
  CHECK((a.C.array() == b.C.array()).all());
}

}  // namespace

TEST_SUITE("stream") {
  TEST_CASE("stream: NpyWriter's blocks read back by NpyRows, float64 exactly, float32 rounded") {
    test::TempDir dir;
    const nnlift::SynthData s = test::planted_teacher(4, 2, 20000, 1, 0);
    for (const bool f32 : {false, true}) {
      const nnlift::NpyRows file(planted_npy(dir, s, f32));
      REQUIRE(file.rows() == 20000);
      REQUIRE(file.cols() == 5);
      CHECK(file.float32() == f32);
      Matrix block;
      file.read(12345, 3, block);
      for (Index i = 0; i < 3; ++i) {
        for (Index j = 0; j < 4; ++j) {
          const double want = f32 ? static_cast<double>(static_cast<float>(s.X_train(12345 + i, j)))
                                  : s.X_train(12345 + i, j);
          CHECK(block(i, j) == want);
        }
      }
      CHECK_THROWS_AS(file.read(19999, 2, block), std::out_of_range);
      // numpy's own reader agrees with the header the writer filled in at the end.
      const nnlift::NpyArray whole = nnlift::read_npy(file.path());
      CHECK(whole.shape == std::vector<Index>{20000, 5});
    }
  }

  TEST_CASE("stream: a writer that is not finished leaves no file, and refuses a wrong block") {
    test::TempDir dir;
    const std::string path = dir.file("never.npy");
    {
      nnlift::NpyWriter w(path, 3, false);
      w.append(Matrix::Ones(10, 3));
      CHECK_THROWS_AS(w.append(Matrix::Ones(2, 4)), std::invalid_argument);
    }
    CHECK_FALSE(std::filesystem::exists(path));
    CHECK(dir.list().empty());
  }

  TEST_CASE("stream: NpyRows refuses Fortran order, 3-D arrays and a wrong sidecar") {
    test::TempDir dir;
    nnlift::NpyArray a;
    a.shape = {2, 2, 2};
    a.data.assign(8, 1.0);
    nnlift::write_npy(dir.file("cube.npy"), a);
    CHECK_THROWS_WITH_AS(nnlift::NpyRows(dir.file("cube.npy")),
                         doctest::Contains("3 dimensions; a data set is 2-D"),
                         nnlift::IoError);
    std::string bytes = test::read_text(dir.file("cube.npy"));
    const std::size_t at = bytes.find("False");
    bytes.replace(at, 5, "True ");
    bytes.replace(bytes.find("(2, 2, 2)"), 9, "(4, 2)   ");
    test::write_text(dir.file("fortran.npy"), bytes);
    CHECK_THROWS_WITH_AS(nnlift::NpyRows(dir.file("fortran.npy")),
                         doctest::Contains("Fortran-ordered"),
                         nnlift::IoError);
    nnlift::write_npy(dir.file("t.npy"), nnlift::to_npy(Matrix::Ones(3, 2)));
    test::write_text(dir.file("t.npy.json"), "{\"columns\": [\"a\", \"b\", \"c\"]}");
    CHECK_THROWS_WITH_AS(nnlift::npy_column_names(dir.file("t.npy"), 2),
                         doctest::Contains("names 3 columns"),
                         nnlift::IoError);
    test::write_text(dir.file("t.npy.json"), std::string(100000, '[') + std::string(100000, ']'));
    CHECK_THROWS_WITH_AS(nnlift::npy_column_names(dir.file("t.npy"), 2),
                         doctest::Contains("nested too deep"),
                         nnlift::IoError);
    test::write_text(dir.file("t.npy.json"), "{\"columns\": [\"a\", \"a\"]}");
    CHECK_THROWS_WITH_AS(nnlift::npy_column_names(dir.file("t.npy"), 2),
                         doctest::Contains("named twice"),
                         nnlift::IoError);
  }

  TEST_CASE("stream: train_streamed computes the in-memory estimator, and recovers the teacher") {
    test::TempDir dir;
    const nnlift::SynthData s = test::planted_teacher(10, 3, 60000, 7, 0);
    const nnlift::NpyRows file(planted_npy(dir, s, false));
    const nnlift::TrainOptions o = covered(3);
    const nnlift::TrainResult streamed = nnlift::train_streamed(file, all_but_last(file), o);
    const nnlift::TrainResult held = nnlift::train(nnlift::training_set(s), o);
    REQUIRE(streamed.status == nnlift::Status::Success);
    REQUIRE(held.network.W1.size() > 0);
    // The same passes over the same blocks: equal up to the rounding of single-row products in
    // the bias subsample.
    const auto close = [](const Matrix& a, const Matrix& b) {
      return (a - b).cwiseAbs().maxCoeff() <= 1e-7 * std::max(1.0, b.cwiseAbs().maxCoeff());
    };
    CHECK(close(streamed.network.W1, held.network.W1));
    CHECK(close(streamed.network.b1, held.network.b1));
    CHECK(close(streamed.network.W2, held.network.W2));
    CHECK(close(streamed.network.C, held.network.C));
    CHECK(std::abs(streamed.train_loss - held.train_loss) <= 1e-9 * held.train_loss);
    CHECK(streamed.moments.subspace_sweeps == held.moments.subspace_sweeps);
    const nnlift::Recovery rec = nnlift::recovery(s.truth, streamed.network);
    INFO("min |cos| " << rec.min_cosine);
    CHECK(rec.min_cosine > 0.98);
    CHECK(streamed.network.inputs == s.truth.inputs);
    // The inputs' range, taken in the standardising pass (no pass more), is the in-memory one.
    REQUIRE(streamed.network.input_low.size() == 10);
    CHECK(streamed.network.input_low == held.network.input_low);
    CHECK(streamed.network.input_high == held.network.input_high);
    const Vector high = s.X_train.colwise().maxCoeff().transpose();
    const Vector low = s.X_train.colwise().minCoeff().transpose();
    CHECK(held.network.input_high == high + (high - low));
  }

  TEST_CASE("stream: weak units are chosen between the tensor and M2 as in memory") {
    test::TempDir dir;
    const nnlift::SynthData s = test::planted_teacher(6, 2, 20000, 12, 0);
    const nnlift::NpyRows file(planted_npy(dir, s, false));
    for (const nnlift::WeakUnits mode : {nnlift::WeakUnits::Auto, nnlift::WeakUnits::Replace}) {
      nnlift::TrainOptions o = covered(4);  // four units for a teacher of two: some are weak
      o.moments.weak_units = mode;
      const nnlift::TrainResult streamed = nnlift::train_streamed(file, all_but_last(file), o);
      const nnlift::TrainResult held = nnlift::train(nnlift::training_set(s), o);
      CAPTURE(nnlift::to_string(mode));
      REQUIRE_FALSE(held.moments.weak_units.empty());
      REQUIRE(held.moments.weak_units.size() < 4);
      CHECK(streamed.moments.weak_units == held.moments.weak_units);
      CHECK(streamed.moments.second_order_units == held.moments.second_order_units);
      if (mode == nnlift::WeakUnits::Replace) {
        CHECK_FALSE(held.moments.second_order_units.empty());
      }
      // The same function: a weak unit may be saturated (|b| > 4), so flat in the bias fit,
      // where rounding moves its weights but not what the network computes.
      const Vector f = nnlift::predict_value(streamed.network, s.X_train).col(0);
      const Vector g = nnlift::predict_value(held.network, s.X_train).col(0);
      CHECK((f - g).cwiseAbs().maxCoeff() <= 1e-4 * (g.array() - g.mean()).abs().maxCoeff());
      CHECK(std::abs(streamed.train_loss - held.train_loss) <= 1e-6 * held.train_loss);
    }
  }

  TEST_CASE("stream: two classes, labelled 3 and 7, as the in-memory estimator; a third fails") {
    test::TempDir dir;
    nnlift::SynthOptions so;
    so.dim = 6;
    so.hidden = 2;
    so.samples = 30000;
    so.task = nnlift::Task::Classification;
    so.seed = 12;
    nnlift::SynthData s = nnlift::make_synthetic(so);
    // Clean labels 3 and 7: the teacher's value above or below its median.
    const Vector f = nnlift::predict_value(s.truth, s.X_train).col(0);
    std::vector<double> sorted(f.data(), f.data() + f.size());
    std::nth_element(sorted.begin(), sorted.begin() + f.size() / 2, sorted.end());
    const double median = sorted[static_cast<std::size_t>(f.size() / 2)];
    s.y_train = (f.array() > median).select(Vector::Constant(f.size(), 7.0), 3.0);
    const nnlift::NpyRows file(planted_npy(dir, s, false));
    nnlift::TrainOptions o = covered(2);
    o.labels.task = nnlift::Task::Classification;
    const nnlift::TrainResult streamed = nnlift::train_streamed(file, all_but_last(file), o);
    const nnlift::TrainResult held = nnlift::train(nnlift::training_set(s), o);
    REQUIRE(streamed.network.W2.size() > 0);
    CHECK(streamed.network.classes == std::vector<double>{3.0, 7.0});
    CHECK(streamed.network.link == nnlift::OutputLink::Logistic);
    CHECK(streamed.bias_used == nnlift::BiasMethod::Ratio);
    // Below 200,000 rows the sample is every row: the in-memory model, bit for bit.
    INFO("W1 " << (streamed.network.W1 - held.network.W1).cwiseAbs().maxCoeff() << ", W2 "
               << (streamed.network.W2 - held.network.W2).cwiseAbs().maxCoeff());
    check_same_bits(streamed.network, held.network);
    CHECK(std::abs(streamed.train_accuracy - held.train_accuracy) < 1e-12);
    const double positive = ((s.y_train.array() == 7.0).cast<double>()).mean();
    const double majority = std::max(positive, 1.0 - positive);
    CHECK(streamed.train_accuracy > majority + 0.3);
    // A label outside the sample is named by its row when a pass meets it (400,001 rows: the
    // sample takes every third row, not row 2).
    Matrix many = Matrix::Random(400001, 3);
    many.col(2) = (many.col(0).array() > 0).cast<double>();
    many(1, 2) = 5.0;
    nnlift::write_npy(dir.file("many.npy"), nnlift::to_npy(many));
    const nnlift::NpyRows rows(dir.file("many.npy"));
    o.hidden = 1;
    CHECK_THROWS_WITH_AS(nnlift::train_streamed(rows, {{0, 1}, 2, {"a", "b"}, "y"}, o),
                         doctest::Contains("row 2, target 'y': 5 is a class not seen in a sample"),
                         nnlift::DataError);
  }

  TEST_CASE("stream: the passes it makes, counted: fused where they read X in the same order") {
    test::TempDir dir;
    const nnlift::SynthData s = test::planted_teacher(8, 2, 20000, 5, 0);
    const nnlift::NpyRows file(planted_npy(dir, s, false));
    const nnlift::CountingSource counted(file);
    nnlift::TrainOptions o = covered(2);
    o.bias.method = nnlift::BiasMethod::Ratio;  // no sample
    const nnlift::TrainResult r = nnlift::train_streamed(counted, all_but_last(file), o);
    REQUIRE(r.network.W2.size() > 0);
    // The shift (the first 8192-row block) and the 1,000 rows that check whether a numeric target
    // has only two values; then: mean, covariance, ȳ and E[(x − μ) y] (the linear control
    // variate's); E[r x], M2 and the sketch; one per HOOI sweep; the core; the map-back moments;
    // the output layer's normal equations (the training MSE comes from them). Before the fusions
    // the same run read 5 passes more (mean, the control variate, E[r x], M2, the training loss).
    const Index n = 20000;
    CHECK(counted.rows_read() == 8192 + 1000 + n * (5 + r.moments.subspace_sweeps));
  }

  // Left out under the sanitizers, for tools/check's time: 1.7-2.2 s of the 20 s release run. The
  // streamed classes' paths run under the sanitizers in the two-class test.
#if !defined(__SANITIZE_ADDRESS__)
  TEST_CASE("stream: three classes, softmax, as the in-memory estimator") {
    test::TempDir dir;
    nnlift::SynthOptions so;
    so.dim = 6;
    so.hidden = 3;
    so.samples = 30000;
    so.seed = 13;
    nnlift::SynthData s = nnlift::make_synthetic(so);
    // Labels 1, 2 and 5: the teacher's value by terciles.
    const Vector f = nnlift::predict_value(s.truth, s.X_train).col(0);
    std::vector<double> sorted(f.data(), f.data() + f.size());
    std::sort(sorted.begin(), sorted.end());
    const double low = sorted[sorted.size() / 3], high = sorted[2 * sorted.size() / 3];
    for (Index i = 0; i < f.size(); ++i) {
      s.y_train(i) = f(i) < low ? 1.0 : f(i) < high ? 2.0 : 5.0;
    }
    const nnlift::NpyRows file(planted_npy(dir, s, false));
    nnlift::TrainOptions o = covered(3);
    o.labels.task = nnlift::Task::Classification;
    // Without the choices the rounding below can tip: the weak units' between two fits, and
    // the output layer's ridge by cross-validation on a grid (clang's sanitizer build: training
    // log-loss 0.1036 in memory and 5% apart streamed, W1 apart by 3e-16).
    o.moments.weak_units = nnlift::WeakUnits::Keep;
    o.output.ridge = 1e-3;
    const nnlift::TrainResult streamed = nnlift::train_streamed(file, all_but_last(file), o);
    const nnlift::TrainResult held = nnlift::train(nnlift::training_set(s), o);
    REQUIRE(streamed.network.W2.size() > 0);
    CHECK(streamed.network.classes == std::vector<double>{1.0, 2.0, 5.0});
    CHECK(streamed.network.link == nnlift::OutputLink::Softmax);
    CHECK(streamed.network.W2.rows() == 3);
    // The first layer equal to rounding: in memory the units' projections come from the rows in
    // the subspace (detail::Projections), streamed from the rows. The softmax output layer is
    // nearly flat along some weights, and L-BFGS stops where those bits lead it (clang's
    // sanitizer build, ridge 1e-3: W2 apart by 3.6, the training log-loss by 0.1%).
    const auto close = [](const Matrix& a, const Matrix& b, double tolerance) {
      return (a - b).cwiseAbs().maxCoeff() <= tolerance * std::max(1.0, b.cwiseAbs().maxCoeff());
    };
    INFO("W1 " << (streamed.network.W1 - held.network.W1).cwiseAbs().maxCoeff() << ", W2 "
               << (streamed.network.W2 - held.network.W2).cwiseAbs().maxCoeff() << ", loss "
               << streamed.train_loss << " against " << held.train_loss << ", accuracy "
               << streamed.train_accuracy << " against " << held.train_accuracy);
    CHECK(close(streamed.network.W1, held.network.W1, 1e-9));
    CHECK(close(streamed.network.b1, held.network.b1, 1e-9));
    CHECK(std::abs(streamed.train_accuracy - held.train_accuracy) < 0.001);
    CHECK(std::abs(streamed.train_loss - held.train_loss) < 0.005 * held.train_loss);
    CHECK(streamed.train_accuracy > 1.0 / 3 + 0.3);
  }
#endif

  TEST_CASE("stream: float32 data are accumulated in double; results do not depend on threads") {
    test::TempDir dir;
    const nnlift::SynthData s = test::planted_teacher(8, 2, 40000, 11, 0);
    const nnlift::NpyRows file(planted_npy(dir, s, true));
    const nnlift::TrainOptions o = covered(2);
    const nnlift::TrainResult a =
        nnlift::train_streamed(file, all_but_last(file), o, nnlift::ExecutionContext(1));
    const nnlift::TrainResult b =
        nnlift::train_streamed(file, all_but_last(file), o, nnlift::ExecutionContext(2));
    CHECK((a.network.W1.array() == b.network.W1.array()).all());
    CHECK((a.network.b1.array() == b.network.b1.array()).all());
    CHECK((a.network.W2.array() == b.network.W2.array()).all());
    CHECK(a.network.b2 == b.network.b2);
    CHECK(nnlift::recovery(s.truth, a.network).min_cosine > 0.97);
  }

  TEST_CASE("stream: the first bad value is named by file, row and column") {
    // A value that is not finite, or a regression target too large to square (its squares
    // overflowed in the output layer: a model whose training MSE was infinite).
    test::TempDir dir;
    const nnlift::StreamedColumns c{{0, 1, 2}, 3, {"1", "2", "3"}, "4"};
    const auto train_on = [&](const Matrix& table, const std::string& name) {
      nnlift::write_npy(dir.file(name), nnlift::to_npy(table));
      return nnlift::train_streamed(nnlift::NpyRows(dir.file(name)), c, covered(2));
    };
    Matrix table = Matrix::Random(5000, 4);
    table(4321, 2) = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH_AS(train_on(table, "nan.npy"),
                         doctest::Contains("nan.npy: row 4322, column '3'"),
                         nnlift::DataError);
    table(4321, 2) = 0.5;
    table(3210, 3) = -2e150;
    CHECK_THROWS_WITH_AS(train_on(table, "huge.npy"),
                         doctest::Contains("huge.npy: row 3211, target '4': -2e+150 is too large"),
                         nnlift::DataError);
    // The first bad value in row order is the one named, as in memory: a missing input before it.
    table(3100, 1) = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH_AS(train_on(table, "both.npy"),
                         doctest::Contains("both.npy: row 3101, column '2': nan is not a finite"),
                         nnlift::DataError);
    table(3100, 1) = 0.5;
    table(3210, 3) = 1e150;  // the largest accepted
    CHECK(train_on(table, "large.npy").network.W2.allFinite());
  }

  TEST_CASE("stream: a two-valued integer target is fitted as a number, and said to be") {
    test::TempDir dir;
    Matrix table = Matrix::Random(5000, 4);
    table.col(3) = (table.col(0).array() > 0).cast<double>();
    nnlift::write_npy(dir.file("classes.npy"), nnlift::to_npy(table));
    const nnlift::NpyRows file(dir.file("classes.npy"));
    const nnlift::StreamedColumns c{{0, 1, 2}, 3, {"1", "2", "3"}, "4"};
    const nnlift::TrainResult r = nnlift::train_streamed(file, c, covered(2));
    const auto said = std::find_if(r.warnings.begin(), r.warnings.end(), [](const std::string& w) {
      return w.find("only the values 0 and 1") != std::string::npos;
    });
    CHECK(said != r.warnings.end());
    table.col(3) = table.col(0) + 0.1 * table.col(1);
    nnlift::write_npy(dir.file("numbers.npy"), nnlift::to_npy(table));
    const nnlift::NpyRows numbers(dir.file("numbers.npy"));
    for (const std::string& w : nnlift::train_streamed(numbers, c, covered(2)).warnings) {
      CHECK(w.find("only the values") == std::string::npos);
    }
  }

  TEST_CASE("stream: options it does not cover are refused by name before any pass") {
    test::TempDir dir;
    nnlift::write_npy(dir.file("t.npy"), nnlift::to_npy(Matrix::Random(100, 4)));
    const nnlift::NpyRows file(dir.file("t.npy"));
    const nnlift::StreamedColumns c{{0, 1, 2}, 3, {"1", "2", "3"}, "4"};
    nnlift::TrainOptions o = covered(2);
    o.hidden = 0;
    CHECK_THROWS_WITH_AS(nnlift::train_streamed(file, c, o),
                         doctest::Contains("TrainOptions::hidden = auto"),
                         std::invalid_argument);
    o = covered(2);
    o.labels.task = nnlift::Task::Classification;
    nnlift::write_npy(dir.file("numbers.npy"), nnlift::to_npy(Matrix::Random(500, 4)));
    const nnlift::NpyRows numbers(dir.file("numbers.npy"));
    CHECK_THROWS_WITH_AS(
        nnlift::train_streamed(numbers, c, o),
        doctest::Contains("numbers.npy, in a sample of 500 rows: classification: target '4' has "
                          "more than 100 distinct values"),
        nnlift::DataError);
    o = covered(2);
    o.refine.enabled = true;
    CHECK_THROWS_WITH_AS(nnlift::train_streamed(file, c, o),
                         doctest::Contains("TrainOptions::refine"),
                         std::invalid_argument);
    o = covered(2);
    o.moments.residualize = nnlift::Residualize::Quadratic;
    CHECK_THROWS_AS(nnlift::train_streamed(file, c, o), std::invalid_argument);
    const nnlift::StreamedColumns bad{{0, 1, 3}, 3, {"1", "2", "4"}, "4"};
    CHECK_THROWS_WITH_AS(nnlift::train_streamed(file, bad, covered(2)),
                         doctest::Contains("is outside the source or is the target"),
                         std::invalid_argument);
  }
}
