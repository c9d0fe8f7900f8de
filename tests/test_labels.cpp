// Text in real CSV files beyond categorical inputs: class labels as text, one-hot groups that
// are not collinearity, values that are not numbers (dates, percentages) and files that are
// not UTF-8.
// SPDX-License-Identifier: MIT
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include <doctest/doctest.h>

#include <nnlift/csv.hpp>
#include <nnlift/encoding.hpp>
#include <nnlift/evaluate.hpp>
#include <nnlift/model.hpp>
#include <nnlift/moments.hpp>
#include <nnlift/train.hpp>

#include "cli_helpers.hpp"
#include "detail/column_range.hpp"
#include "detail/rng.hpp"
#include "detail/text.hpp"
#include "test_helpers.hpp"

namespace {

using test::Index;
using test::Matrix;
using test::Vector;

// Three well separated classes in two inputs, with text labels; one label holds a comma.
const char* const kSpecies[] = {"setosa", "versi, color", "virginica"};

std::string species_csv(int rows, std::uint64_t seed) {
  std::string text = "x1,x2,species\n";
  nnlift::detail::Rng rng(seed);
  for (int i = 0; i < rows; ++i) {
    const int c = i % 3;
    const double x1 = 3.0 * c + 0.5 * rng.normal(), x2 = -2.0 * c + 0.5 * rng.normal();
    text += std::to_string(x1) + "," + std::to_string(x2) + ",\"" + kSpecies[c] + "\"\n";
  }
  return text;
}

// The lines of a text, without the header.
std::vector<std::string> body_lines(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> lines;
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    lines.push_back(line);
  }
  return lines;
}

// `nnlift train` on dir's file with k hidden units, writing dir's m.json.
test::Outcome train(const test::TempDir& dir,
                    const std::string& file,
                    const std::string& k,
                    const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {
      "train", "--data", dir.file(file), "--hidden", k, "--model", dir.file("m.json")};
  args.insert(args.end(), extra.begin(), extra.end());
  return test::run(args);
}

double number_after(const std::string& text, const std::string& key) {
  const std::size_t at = text.find(key);
  REQUIRE(at != std::string::npos);
  return std::stod(text.substr(at + key.size()));
}

}  // namespace

TEST_SUITE("labels") {
  TEST_CASE("labels: a text target is classes, predicted and scored by name") {
    test::TempDir dir;
    test::write_text(dir.file("train.csv"), species_csv(150, 1));
    test::write_text(dir.file("test.csv"), species_csv(90, 2));
    test::Outcome o = train(dir, "train.csv", "2");
    INFO(o.err);
    REQUIRE(o.code == 0);
    CHECK(o.err.find("(classification: 3 text labels setosa, versi, color, virginica)") !=
          std::string::npos);
    const nnlift::TwoLayerNetwork net = nnlift::load_model(dir.file("m.json"));
    CHECK(net.class_names == std::vector<std::string>{"setosa", "versi, color", "virginica"});
    CHECK(net.classes == std::vector<double>{0, 1, 2});
    CHECK(net.link == nnlift::OutputLink::Softmax);

    // predict names the classes, quoting the one with a comma.
    o = test::run({"predict", "--model", dir.file("m.json"), "--data", dir.file("test.csv")});
    REQUIRE(o.code == 0);
    CHECK(o.out.rfind("probability_setosa,\"probability_versi, color\",probability_virginica,"
                      "class\n",
                      0) == 0);
    const std::vector<std::string> predicted = body_lines(o.out);
    REQUIRE(predicted.size() == 90);
    int right = 0;
    for (std::size_t i = 0; i < predicted.size(); ++i) {
      const std::string name = kSpecies[i % 3];
      const std::string field = name.find(',') != std::string::npos ? "\"" + name + "\"" : name;
      right +=
          predicted[i].size() > field.size() &&
                  predicted[i].compare(predicted[i].size() - field.size(), field.size(), field) == 0
              ? 1
              : 0;
    }
    CHECK(right >= 85);

    // The same rows as a .npy table (inputs only) predict the same names, block by block.
    REQUIRE(test::run({"convert",
                       "--data",
                       dir.file("test.csv"),
                       "--drop",
                       "species",
                       "--out",
                       dir.file("test.npy"),
                       "--quiet"})
                .code == 0);
    const test::Outcome npy =
        test::run({"predict", "--model", dir.file("m.json"), "--data", dir.file("test.npy")});
    REQUIRE(npy.code == 0);
    CHECK(npy.out == o.out);

    // evaluate reads the labels by name; its accuracy is predict's.
    o = test::run({"evaluate", "--model", dir.file("m.json"), "--data", dir.file("test.csv")});
    REQUIRE(o.code == 0);
    const double accuracy = number_after(o.out, "accuracy ");
    CHECK(accuracy == doctest::Approx(right / 90.0));
    // A label the model never saw counts as wrong, with a warning.
    std::string unseen = test::read_text(dir.file("test.csv"));
    unseen.replace(unseen.find("\"setosa\""), 8, "\"lotus\"");
    test::write_text(dir.file("unseen.csv"), unseen);
    o = test::run({"evaluate", "--model", dir.file("m.json"), "--data", dir.file("unseen.csv")});
    REQUIRE(o.code == 0);
    CHECK(o.err.find("1 row(s) from data row 1 on hold a label the model was not trained on") !=
          std::string::npos);
    CHECK(number_after(o.out, "accuracy ") == doctest::Approx(accuracy - 1.0 / 90));
    // Recall by class: the unseen label's row counts in no class; 29 setosa rows are left.
    CHECK(o.out.find("recall by class: setosa: ") != std::string::npos);
    CHECK(o.out.find("(29 rows), versi, color: ") != std::string::npos);
    CHECK(number_after(o.out, "balanced accuracy ") > 0.9);
    // describe shows the labels as text.
    o = test::run({"describe", "--data", dir.file("train.csv")});
    REQUIRE(o.code == 0);
    CHECK(o.out.find("text: 3 labels (train classifies them)") != std::string::npos);
  }

  TEST_CASE("labels: text targets that cannot be classes are refused, naming why") {
    test::TempDir dir;
    test::write_text(dir.file("train.csv"), species_csv(60, 3));
    test::Outcome o = train(dir, "train.csv", "1", {"--task", "regression"});
    CHECK(o.code == 1);
    CHECK(o.err.find("target 'species' holds text (e.g. 'setosa'); a regression target must be "
                     "numeric") != std::string::npos);
    test::write_text(dir.file("one.csv"), "x,y\n1,a\n2,a\n3,a\n4,a\n5,a\n");
    o = train(dir, "one.csv", "1");
    CHECK(o.code == 1);
    CHECK(o.err.find("target 'y' holds a single label ('a')") != std::string::npos);
    // A number target with a stray word is a typo, named where it is, not a third class.
    test::write_text(dir.file("typo.csv"), "x,y\n1,0\n2,1\n3,1x\n4,0\n5,1\n6,0\n");
    o = train(dir, "typo.csv", "1");
    CHECK(o.code == 1);
    CHECK(o.err.find("typo.csv: column 'y', data row 3: '1x' is not a number") !=
          std::string::npos);
    // A missing label is refused by default and dropped with --missing drop-rows.
    std::string gap = test::read_text(dir.file("train.csv"));
    gap.replace(gap.find("\"setosa\""), 8, "NA");
    test::write_text(dir.file("gap.csv"), gap);
    o = train(dir, "gap.csv", "1");
    CHECK(o.code == 1);
    INFO(o.err);
    CHECK(o.err.find("gap.csv:2:21: field 3 ('species') is 'NA' (a missing value") !=
          std::string::npos);
    o = train(dir, "gap.csv", "1", {"--missing", "drop-rows"});
    CHECK(o.code == 0);
    CHECK(o.err.find("59 rows") != std::string::npos);
    CHECK(dir.list() ==
          std::vector<std::string>{"gap.csv", "m.json", "one.csv", "train.csv", "typo.csv"});
  }

  TEST_CASE("labels: binary text labels, and a file that is not UTF-8 (Latin-1)") {
    test::TempDir dir;
    // Latin-1 bytes in a category ("M\xfcnchen") and a label ("n\xe9in"): training used to write
    // no model ("invalid UTF-8 byte" from the JSON writer) after all its work.
    std::string text = "x,city,answer\n";
    nnlift::detail::Rng rng(5);
    for (int i = 0; i < 200; ++i) {
      const double x = rng.normal();
      text += std::to_string(x) + "," + (i % 2 ? "M\xfcnchen" : "Berlin") + "," +
              (x + (i % 2 ? 0.5 : -0.5) > 0 ? "ja" : "n\xe9in") + "\n";
    }
    test::write_text(dir.file("latin1.csv"), text);
    test::Outcome o = train(dir, "latin1.csv", "1");
    INFO(o.err);
    REQUIRE(o.code == 0);
    const nnlift::TwoLayerNetwork net = nnlift::load_model(dir.file("m.json"));
    CHECK(net.class_names == std::vector<std::string>{"ja", "n\xc3\xa9in"});
    CHECK(net.link == nnlift::OutputLink::Logistic);
    CHECK(net.encoding.columns[1].categories ==
          std::vector<std::string>{"Berlin", "M\xc3\xbcnchen"});
    // The same bytes read for prediction match the stored category: no row is unseen.
    o = test::run({"predict", "--model", dir.file("m.json"), "--data", dir.file("latin1.csv")});
    REQUIRE(o.code == 0);
    CHECK(o.err.find("not seen in training") == std::string::npos);
    CHECK(o.out.rfind("probability,class\n", 0) == 0);
    const std::vector<std::string> rows = body_lines(o.out);
    REQUIRE(rows.size() == 200);
    for (const std::string& row : rows) {
      const std::string label = row.substr(row.find(',') + 1);
      const double p = std::stod(row);
      CHECK(label == (p >= 0.5 ? "n\xc3\xa9in" : "ja"));  // the probability is the second class's
    }
    o = test::run({"evaluate", "--model", dir.file("m.json"), "--data", dir.file("latin1.csv")});
    REQUIRE(o.code == 0);
    CHECK(number_after(o.out, "accuracy ") > 0.9);
  }

  TEST_CASE("labels: to_utf8 keeps UTF-8 and reads other bytes as Latin-1") {
    using nnlift::detail::is_utf8;
    using nnlift::detail::to_utf8;
    CHECK(is_utf8("plain"));
    CHECK(is_utf8("M\xc3\xbcnchen \xe2\x82\xac \xf0\x9f\x98\x80"));
    CHECK_FALSE(is_utf8("M\xfcnchen"));
    CHECK_FALSE(is_utf8("\xc0\xaf"));          // an overlong '/'
    CHECK_FALSE(is_utf8("\xed\xa0\x80"));      // a surrogate
    CHECK_FALSE(is_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
    CHECK_FALSE(is_utf8("\xe2\x82"));          // cut short
    CHECK(to_utf8("M\xc3\xbcnchen") == "M\xc3\xbcnchen");
    CHECK(to_utf8("M\xfcnchen") == "M\xc3\xbcnchen");
    CHECK(to_utf8("\x80\xff") == "\xc2\x80\xc3\xbf");
    CHECK(is_utf8(to_utf8("\xc0\xaf\xed\xa0\x80")));
  }

  TEST_CASE("labels: a categorical column is not collinearity, and --strict accepts it") {
    test::TempDir dir;
    std::string text = "a,color,y\n";
    nnlift::detail::Rng rng(7);
    const char* colors[] = {"red", "green", "blue"};
    for (int i = 0; i < 300; ++i) {
      const double a = rng.normal();
      const int c = i % 3;
      text += std::to_string(a) + "," + colors[c] + "," + std::to_string(std::tanh(a) + c) + "\n";
    }
    test::write_text(dir.file("c.csv"), text);
    for (const char* strict : {"", "--strict"}) {
      const test::Outcome o =
          train(dir,
                "c.csv",
                "1",
                *strict ? std::vector<std::string>{strict} : std::vector<std::string>{});
      INFO(strict << ": " << o.err);
      CHECK(o.code != 1);  // --strict may exit 3 for a stage's warning, never refuse the column
      CHECK(o.err.find("collinear") == std::string::npos);
    }
    // A true collinearity beside the group is still reported, counted without the group.
    std::string twin = "a,b,color,y\n";
    for (int i = 0; i < 300; ++i) {
      const double a = rng.normal();
      twin += std::to_string(a) + "," + std::to_string(2 * a) + "," + colors[i % 3] + "," +
              std::to_string(std::tanh(a) + i % 3) + "\n";
    }
    test::write_text(dir.file("t.csv"), twin);
    const test::Outcome o = train(dir, "t.csv", "1");
    INFO(o.err);
    REQUIRE(o.code == 0);
    CHECK(o.err.find("1 direction(s) of the inputs are (nearly) collinear") != std::string::npos);
    CHECK(o.err.find("(3 independent directions remain)") != std::string::npos);
  }

  TEST_CASE("labels: every identifier-like text column is named at once, with the --drop") {
    test::TempDir dir;
    std::string text = "name,x,ticket,color,y\n";
    for (int i = 0; i < 150; ++i) {
      text += "\"P" + std::to_string(i) + ", Mr\"," + std::to_string(i % 7) + ",T" +
              std::to_string(1000 + i) + "," + (i % 2 ? "red" : "blue") + "," +
              std::to_string(i % 5) + "\n";
    }
    test::write_text(dir.file("ids.csv"), text);
    const test::Outcome o = train(dir, "ids.csv", "1");
    CHECK(o.code == 1);
    CHECK(o.err.find("columns 'name' (150 distinct text values, e.g. 'P0, Mr'), 'ticket' (150 "
                     "distinct text values, e.g. 'T1000'): more than 100 categories each") !=
          std::string::npos);
    CHECK(o.err.find("--drop name,ticket;") != std::string::npos);
    CHECK(dir.list() == std::vector<std::string>{"ids.csv"});
  }

  TEST_CASE("labels: a text field's error says what the command offers for text") {
    test::TempDir dir;
    test::write_text(dir.file("train.csv"), species_csv(30, 4));
    test::Outcome o = test::run(
        {"convert", "--data", dir.file("train.csv"), "--out", dir.file("t.npy"), "--quiet"});
    CHECK(o.code == 1);
    CHECK(o.err.find("train.csv:2:") != std::string::npos);
    CHECK(o.err.find("is not a number: '\"setosa\"' (a text column? a .npy file holds numbers "
                     "only: --drop it") != std::string::npos);
    CHECK(dir.list() == std::vector<std::string>{"train.csv"});
    // predict: the model's numeric column holds text.
    test::write_text(dir.file("n.csv"), "x,y\n1,2\n2,3.5\n3,3.9\n4,5.2\n5,5.8\n6,7.1\n");
    o = train(dir, "n.csv", "1");
    REQUIRE(o.code == 0);
    test::write_text(dir.file("p.csv"), "x\n1\nabc\n");
    o = test::run({"predict", "--model", dir.file("m.json"), "--data", dir.file("p.csv")});
    CHECK(o.code == 1);
    CHECK(o.err.find("p.csv:3:1: field 1 ('x') is not a number: 'abc' (the model was trained on "
                     "numbers in this column)") != std::string::npos);
  }

  TEST_CASE("labels: a target of a few integers is regression, with a hint at classes") {
    test::TempDir dir;
    std::string ints = "x,y\n", reals = "x,y\n";
    for (int i = 0; i < 60; ++i) {
      ints += std::to_string(i) + "," + std::to_string(i % 3) + "\n";
      reals += std::to_string(i) + "," + std::to_string(0.5 * (i % 3)) + "\n";
    }
    test::write_text(dir.file("ints.csv"), ints);
    test::write_text(dir.file("reals.csv"), reals);
    test::Outcome o = train(dir, "ints.csv", "1");
    REQUIRE(o.code == 0);
    CHECK(o.err.find("target 'y' (regression: 3 distinct integer values; --task classification "
                     "if they are classes)") != std::string::npos);
    o = train(dir, "reals.csv", "1");
    REQUIRE(o.code == 0);
    CHECK(o.err.find("target 'y' (regression)") != std::string::npos);
  }

  TEST_CASE("labels: a regression target's far outliers are named in a warning") {
    test::TempDir dir;
    nnlift::detail::Rng rng(13);
    std::string clean = "x,y\n", typo = "x,y\n";
    for (int i = 0; i < 300; ++i) {
      const double x = rng.normal(), y = std::tanh(x) + 0.1 * rng.normal();
      clean += std::to_string(x) + "," + std::to_string(y) + "\n";
      typo += std::to_string(x) + "," + (i == 40 ? std::string("1e6") : std::to_string(y)) + "\n";
    }
    test::write_text(dir.file("clean.csv"), clean);
    test::write_text(dir.file("typo.csv"), typo);
    test::Outcome o = train(dir, "clean.csv", "1");
    REQUIRE(o.code == 0);
    CHECK(o.err.find("median absolute deviations") == std::string::npos);
    o = train(dir, "typo.csv", "1");
    REQUIRE(o.code == 0);  // a warning, not a refusal: the value may be real
    CHECK(o.err.find("warning: target 'y': 1 value(s) lie more than 1000 median absolute "
                     "deviations from its median") != std::string::npos);
    CHECK(o.err.find("(farthest 1e+06)") != std::string::npos);
  }

  TEST_CASE("labels: the library's train refuses a value that is not finite, naming it") {
    nnlift::detail::Rng rng(17);
    nnlift::Dataset data;
    data.X = rng.normal_matrix(200, 3);
    data.y = data.X.col(0).array().tanh().matrix();
    data.feature_names = {"a", "b", "c"};
    data.target_name = "t";
    nnlift::TrainOptions o;
    o.hidden = 1;
    const nnlift::ExecutionContext context(1);
    data.X(17, 1) = std::numeric_limits<double>::quiet_NaN();
    data.y(30) = std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH_AS(nnlift::train(data, o, context),
                         doctest::Contains("train: row 18, input 'b': a value that is not finite"),
                         nnlift::DataError);
    data.X(17, 1) = 0.5;
    CHECK_THROWS_WITH_AS(nnlift::train(data, o, context),
                         doctest::Contains("train: row 31, the target: a value that is not finite"),
                         nnlift::DataError);
    data.y(30) = 0.5;
    data.feature_names.clear();  // unnamed inputs are numbered
    data.X(3, 2) = -std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH_AS(nnlift::train(data, o, context),
                         doctest::Contains("train: row 4, input 3:"),
                         nnlift::DataError);
  }

  TEST_CASE(
      "labels: train's one read of the inputs finds a bad value in any block, and the range") {
    // The column range and the test for the exact scan come from one parallel read
    // (ColumnRange::sums_finite): a value that is not finite in a later block of a later thread
    // is found, and finite values whose sum overflows are scanned and passed.
    nnlift::detail::ColumnRange range(2);
    Matrix block(4, 2);
    block << 1, -2, 3, 5, -7, 0.5, 2, 1;
    range.add(block);
    CHECK(range.sums_finite());
    block(2, 1) = std::numeric_limits<double>::max();
    block(3, 1) = std::numeric_limits<double>::max();
    range.add(block);
    CHECK_FALSE(range.sums_finite());  // an overflow: a scan follows, which finds nothing
    Vector low, high;
    range.total(nnlift::LocalReducer(), low, high);
    CHECK(low == Vector((Vector(2) << -7, -2).finished()));
    CHECK(high == Vector((Vector(2) << 3, std::numeric_limits<double>::max()).finished()));
    nnlift::detail::ColumnRange with_nan(2);
    block(2, 1) = std::numeric_limits<double>::quiet_NaN();
    block(3, 1) = 1.0;  // the NaN alone
    with_nan.add(block);
    CHECK_FALSE(with_nan.sums_finite());

    nnlift::detail::Rng rng(4);
    nnlift::Dataset data;
    data.X = rng.normal_matrix(30000, 3);
    data.y = data.X.col(0).array().tanh().matrix();
    data.feature_names = {"a", "b", "c"};
    nnlift::TrainOptions o;
    o.hidden = 1;
    o.validation.fraction = 0.0;
    data.X(25000, 2) = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH_AS(
        nnlift::train(data, o, nnlift::ExecutionContext(2)),
        doctest::Contains("train: row 25001, input 'c': a value that is not finite"),
        nnlift::DataError);
    data.X(25000, 2) = 0.0;
    const nnlift::TrainResult r = nnlift::train(data, o, nnlift::ExecutionContext(2));
    REQUIRE(r.network.input_low.size() == 3);
    const Vector top = data.X.colwise().maxCoeff().transpose();
    const Vector bottom = data.X.colwise().minCoeff().transpose();
    CHECK(r.network.input_high == top + (top - bottom));
    CHECK(r.network.input_low == bottom - (top - bottom));
  }

  TEST_CASE("labels: an unnamed column (pandas' row index) is not read") {
    test::TempDir dir;
    std::string index = ",a,y\n", trailing = "a,y,\n";
    for (int i = 0; i < 60; ++i) {
      const std::string row = std::to_string(0.1 * i) + "," + std::to_string(std::sin(0.1 * i));
      index += std::to_string(i) + "," + row + "\n";
      trailing += row + ",\n";
    }
    test::write_text(dir.file("index.csv"), index);
    test::write_text(dir.file("trailing.csv"), trailing);
    const nnlift::Dataset d = nnlift::read_csv(dir.file("index.csv"));
    CHECK(d.feature_names == std::vector<std::string>{"a"});
    CHECK(d.unused_columns == std::vector<std::string>{"(column 1, no name)"});
    test::Outcome o = train(dir, "index.csv", "1");
    REQUIRE(o.code == 0);
    CHECK(o.err.find("columns not read: (column 1, no name)") != std::string::npos);
    CHECK(nnlift::load_model(dir.file("m.json")).inputs == std::vector<std::string>{"a"});
    // evaluate's RMSE and MAE, against predict's values.
    o = test::run({"evaluate", "--model", dir.file("m.json"), "--data", dir.file("index.csv")});
    REQUIRE(o.code == 0);
    CHECK(number_after(o.out, "RMSE ") ==
          doctest::Approx(std::sqrt(number_after(o.out, "MSE "))).epsilon(1e-5));
    const test::Outcome p =
        test::run({"predict", "--model", dir.file("m.json"), "--data", dir.file("index.csv")});
    REQUIRE(p.code == 0);
    const std::vector<std::string> predicted = body_lines(p.out);
    REQUIRE(predicted.size() == 60);
    double abs_error = 0;
    for (std::size_t i = 0; i < predicted.size(); ++i) {
      abs_error += std::abs(std::stod(predicted[i]) - d.y(static_cast<Index>(i)));
    }
    CHECK(number_after(o.out, "MAE ") == doctest::Approx(abs_error / 60).epsilon(1e-5));
    // An unnamed last column would be the default target: refused, unless the target is named.
    o = train(dir, "trailing.csv", "1");
    CHECK(o.code == 1);
    CHECK(o.err.find("trailing.csv:1: column 3, the last, has an empty name and would be the "
                     "target") != std::string::npos);
    o = train(dir, "trailing.csv", "1", {"--target", "y"});
    CHECK(o.code == 0);
  }

  TEST_CASE("labels: a number column with a typo is named where the typo is, not as categories") {
    test::TempDir dir;
    nnlift::detail::Rng rng(19);
    std::string one = "a,y\n", two = "a,y\n";
    for (int i = 0; i < 300; ++i) {
      const std::string a = std::to_string(rng.normal());
      one += (i == 41 ? a + "x" : a) + "," + std::to_string(i % 7) + "\n";
      two += (i == 41 || i == 90 ? a + " kg" : a) + "," + std::to_string(i % 7) + "\n";
    }
    test::write_text(dir.file("one.csv"), one);
    test::write_text(dir.file("two.csv"), two);
    test::Outcome o = train(dir, "one.csv", "1");
    CHECK(o.code == 1);
    CHECK(o.err.find("one.csv: column 'a', data row 42: '") != std::string::npos);
    CHECK(o.err.find("x' is not a number, and the column's 299 other values are: fix it") !=
          std::string::npos);
    o = train(dir, "two.csv", "1");
    CHECK(o.code == 1);
    CHECK(o.err.find("two.csv: column 'a', data row 42: '") != std::string::npos);
    CHECK(o.err.find(" kg' is not a number, nor are 1 other values, among 298 numbers") !=
          std::string::npos);
  }

  TEST_CASE("labels: a doubled quote in a quoted text field is one quote, and is written so") {
    test::TempDir dir;
    std::string text = "x,kind,label\n";
    for (int i = 1; i <= 40; ++i) {
      text += std::to_string(i % 2 ? -i : i) + (i % 3 ? ",\"6\"\" pipe\"" : ",plain") +
              (i % 2 ? ",small\n" : ",\"the \"\"big\"\" one\"\n");
    }
    test::write_text(dir.file("q.csv"), text);
    test::Outcome o = train(dir, "q.csv", "1");
    REQUIRE(o.code == 0);
    const nnlift::TwoLayerNetwork net = nnlift::load_model(dir.file("m.json"));
    CHECK(net.class_names == std::vector<std::string>{"small", "the \"big\" one"});
    CHECK(net.encoding.columns[1].categories == std::vector<std::string>{"6\" pipe", "plain"});
    o = test::run({"predict", "--model", dir.file("m.json"), "--data", dir.file("q.csv")});
    REQUIRE(o.code == 0);
    CHECK(o.out.find(",\"the \"\"big\"\" one\"\n") != std::string::npos);
    CHECK(o.err.find("not seen in training") == std::string::npos);
    o = test::run({"evaluate", "--model", dir.file("m.json"), "--data", dir.file("q.csv")});
    REQUIRE(o.code == 0);
    CHECK(o.err.find("not trained on") == std::string::npos);
  }

  TEST_CASE(
      "labels: missing values that leave out rows name their columns; a target without values or "
      "with one is named") {
    test::TempDir dir;
    std::string text = "a,empty,sparse,y\n";
    for (int i = 0; i < 100; ++i) {
      text += std::to_string(0.01 * i) + ",," + (i % 10 ? std::string("NA") : std::to_string(i)) +
              "," + std::to_string(i % 3) + "\n";
    }
    test::write_text(dir.file("gaps.csv"), text);
    test::Outcome o = train(dir, "gaps.csv", "1", {"--missing", "drop-rows"});
    CHECK(o.code == 1);
    CHECK(o.err.find("no row is left once the rows with missing values are dropped; the columns "
                     "with most: 'empty' (100 missing), 'sparse' (90 missing) of the 100 rows") !=
          std::string::npos);
    o = train(dir, "gaps.csv", "1", {"--missing", "mean"});
    CHECK(o.code == 1);
    CHECK(o.err.find("column 'empty' has no value in any kept row: --drop it") !=
          std::string::npos);
    // A constant target trains (the model predicts it), with a warning that says so.
    std::string flat = "a,b,y\n";
    for (int i = 0; i < 50; ++i) {
      flat += std::to_string(i % 7) + "," + std::to_string((i * 3) % 11) + ",2.5\n";
    }
    test::write_text(dir.file("flat.csv"), flat);
    const test::Outcome constant = train(dir, "flat.csv", "1", {});
    CHECK(constant.code == 0);
    CHECK(constant.err.find("warning: the target 'y' is constant (2.5 in every row)") !=
          std::string::npos);
    // One input and a constant target: the labels less their linear fit are zero to the last bit,
    // so the moment tensor is exactly zero (it failed with "decompose: the tensor is zero" once
    // the standardised rows stopped being stored and the rounding noise that hid it went away).
    test::write_text(dir.file("flat1.csv"), "x,y\n1,2.5\n2,2.5\n3,2.5\n4,2.5\n5,2.5\n6,2.5\n");
    const test::Outcome exact = train(dir, "flat1.csv", "1", {});
    CHECK(exact.code == 0);
    CHECK(exact.err.find("the labels less their linear fit are zero in every row") !=
          std::string::npos);
    // Every target missing: said as such (it was "the columns with most:  of the 0 rows").
    test::write_text(dir.file("no-target.csv"), "a,b,y\n1,2,NA\n2,3,\n3,1,NA\n4,5,NA\n5,3,NA\n");
    for (const char* policy : {"drop-rows", "mean"}) {
      const test::Outcome none = train(dir, "no-target.csv", "1", {"--missing", policy});
      CHECK(none.code == 1);
      CHECK(none.err.find("no-target.csv: no row has a target value: the target 'y' is missing "
                          "in all 5 rows") != std::string::npos);
    }
    o = train(dir, "gaps.csv", "1", {"--missing", "drop-rows", "--drop", "empty"});
    REQUIRE(o.code == 0);
    CHECK(o.err.find("90 row(s) with missing input values were left out (--missing drop-rows); "
                     "the columns with most: 'sparse' (90 missing)") != std::string::npos);
  }

  TEST_CASE("labels: one-hot groups in fit_standardizer") {
    nnlift::detail::Rng rng(11);
    const Index n = 400;
    Matrix X(n, 5);
    X.col(0) = rng.normal_vector(n);
    X.col(4) = -3.0 * X.col(0);  // collinear with column 0
    for (Index i = 0; i < n; ++i) {
      const Index c = i % 3;
      for (Index j = 0; j < 3; ++j) {
        X(i, 1 + j) = c == j ? 1.0 : 0.0;
      }
    }
    const std::vector<std::string> names = {"a", "c=x", "c=y", "c=z", "b"};
    nnlift::StandardizerOptions options;
    options.one_hot_groups = {{1, 2, 3}};
    const nnlift::ExecutionContext context(1);
    nnlift::Standardizer st = nnlift::fit_standardizer(X, names, context, options);
    CHECK(st.rank() == 3);
    CHECK(st.one_hot_directions == 1);
    CHECK_FALSE(st.collinear_columns.empty());
    // Without the collinear column, the group alone is no collinearity, even when refused.
    options.drop_degenerate = false;
    const Matrix Xg = X.leftCols(4);
    st = nnlift::fit_standardizer(Xg, {"a", "c=x", "c=y", "c=z"}, context, options);
    CHECK(st.rank() == 3);
    CHECK(st.collinear_columns.empty());
    CHECK_THROWS_WITH_AS(nnlift::fit_standardizer(X, names, context, options),
                         doctest::Contains("collinear"),
                         nnlift::DataError);
    // Misuse names the field.
    options.one_hot_groups = {{1, 2}, {2, 3}};
    CHECK_THROWS_WITH_AS(nnlift::fit_standardizer(Xg, {"a", "c=x", "c=y", "c=z"}, context, options),
                         doctest::Contains("one_hot_groups: column 2 is in two groups"),
                         std::invalid_argument);
    options.one_hot_groups = {{4}};
    CHECK_THROWS_WITH_AS(nnlift::fit_standardizer(Xg, {"a", "c=x", "c=y", "c=z"}, context, options),
                         doctest::Contains("outside [0, 4)"),
                         std::invalid_argument);
  }

  TEST_CASE("labels: constant columns leave the eigenproblem; the whitening is the others'") {
    // Columns 1 and 4 constant, column 5 collinear with 0 and 2: the standardiser's eigenproblem
    // runs on the five varying columns only, and its map is the one fitted without the constant
    // columns, with zero weights on them.
    nnlift::detail::Rng rng(12);
    const Index n = 500;
    Matrix X(n, 7);
    X.col(0) = rng.normal_vector(n);
    X.col(1).setConstant(2.5);
    X.col(2) = rng.normal_vector(n);
    X.col(3) = rng.normal_vector(n) + 0.5 * X.col(0);
    X.col(4).setConstant(-1.0);
    X.col(5) = X.col(0) - 2.0 * X.col(2);
    X.col(6) = rng.normal_vector(n);
    const std::vector<Index> varying = {0, 2, 3, 5, 6};
    const nnlift::ExecutionContext context(1);
    const nnlift::Standardizer all = nnlift::fit_standardizer(X, {}, context);
    const Matrix Xv = X(Eigen::all, varying);
    const nnlift::Standardizer some = nnlift::fit_standardizer(Xv, {}, context);
    CHECK(all.constant_columns == std::vector<Index>{1, 4});
    CHECK(all.rank() == 4);
    CHECK(some.rank() == 4);
    CHECK(all.W.col(1).isZero(0));
    CHECK(all.W.col(4).isZero(0));
    CHECK((all.W(Eigen::all, varying) - some.W).cwiseAbs().maxCoeff() < 1e-10);
    // The collinear columns named are the same (in each one's numbering).
    std::vector<Index> named;
    for (const Index j : some.collinear_columns) {
      named.push_back(varying[static_cast<std::size_t>(j)]);
    }
    CHECK(all.collinear_columns == named);
    CHECK(named == std::vector<Index>{0, 2, 5});
    // Whitened: the covariance of W (x - mu) is the identity.
    const Matrix Z = nnlift::standardize(all, X, context);
    const Matrix C = (Z.transpose() * Z) / static_cast<double>(n);  // the mean of the squares
    CHECK((C - Matrix::Identity(4, 4)).cwiseAbs().maxCoeff() < 1e-8);
  }

  TEST_CASE("labels: dates, percentages and text targets are detected as text by read_csv") {
    test::TempDir dir;
    test::write_text(dir.file("d.csv"),
                     "day,share,x,amount,label\n2024-01-02,12.5%,1.5,\"1,200\",up\n"
                     "2024-01-03,7%,2.5,\"3,400\",down\n");
    nnlift::CsvOptions options;
    CHECK_THROWS_WITH_AS(nnlift::read_csv(dir.file("d.csv"), options),
                         doctest::Contains("d.csv:2:5: field 1 ('day') has trailing characters"),
                         nnlift::IoError);
    options.detect_text_columns = true;
    CHECK_THROWS_WITH_AS(nnlift::read_csv(dir.file("d.csv"), options),
                         doctest::Contains("field 5 ('label') is not a number: 'up'"),
                         nnlift::IoError);
    options.detect_text_target = true;
    const nnlift::Dataset data = nnlift::read_csv(dir.file("d.csv"), options);
    REQUIRE(data.text.size() == 4);
    CHECK(data.text[0] == std::vector<std::string>{"2024-01-02", "2024-01-03"});
    CHECK(data.text[1] == std::vector<std::string>{"12.5%", "7%"});
    CHECK(data.text[2].empty());
    CHECK(data.text[3] == std::vector<std::string>{"1,200", "3,400"});  // a quoted "number
    CHECK(data.X(1, 2) == 2.5);
    CHECK(data.target_text == std::vector<std::string>{"up", "down"});
    CHECK(std::isnan(data.y(0)));
    // Read as text when asked, without detection.
    nnlift::CsvOptions asked;
    asked.text_columns = {"day", "share", "amount"};
    asked.text_target = true;
    CHECK(nnlift::read_csv(dir.file("d.csv"), asked).target_text ==
          std::vector<std::string>{"up", "down"});
  }

  TEST_CASE("labels: encode_text_target and apply_class_names") {
    nnlift::Dataset data;
    data.X = Matrix::Zero(4, 1);
    data.target_name = "t";
    data.target_text = {"b", "a", "", "b"};
    const std::vector<std::string> names = nnlift::encode_text_target(data, "f.csv");
    CHECK(names == std::vector<std::string>{"a", "b"});
    CHECK(data.y(0) == 1.0);
    CHECK(data.y(1) == 0.0);
    CHECK(std::isnan(data.y(2)));
    CHECK(data.target_text.empty());
    data.target_text = {"x", "y", "z"};
    data.X = Matrix::Zero(3, 1);
    CHECK_THROWS_WITH_AS(nnlift::encode_text_target(data, "f.csv", 2),
                         doctest::Contains("f.csv: target 't' holds 3 distinct text values"),
                         nnlift::DataError);
    // Scoring rows by a model's names: an unknown label below every class, a missing one refused.
    data.target_text = {"b", "q", "a"};
    CHECK(nnlift::apply_class_names(data, {"a", "b"}, {3.0, 5.0}, "g.csv") == 1);
    CHECK(data.y(0) == 5.0);
    CHECK(data.y(1) == 2.0);
    CHECK(data.y(2) == 3.0);
    data.target_text = {"b", "", "a"};
    CHECK_THROWS_WITH_AS(nnlift::apply_class_names(data, {"a", "b"}, {0.0, 1.0}, "g.csv", 10),
                         doctest::Contains("g.csv: target 't' is missing in data row 12"),
                         nnlift::DataError);
    CHECK_THROWS_AS(nnlift::apply_class_names(data, {"a"}, {0.0, 1.0}, "g.csv"),
                    std::invalid_argument);
  }

  TEST_CASE("labels: a binary label outside both classes counts as wrong") {
    nnlift::TwoLayerNetwork net;
    net.task = nnlift::Task::Classification;
    net.link = nnlift::OutputLink::Logistic;
    net.inputs = {"x"};
    net.target = "y";
    net.W1 = Matrix::Constant(1, 1, 1.0);
    net.b1 = Vector::Zero(1);
    net.W2 = Matrix::Constant(1, 1, 8.0);
    net.b2 = Vector::Constant(1, -4.0);
    net.classes = {0.0, 1.0};
    const Matrix X = (Matrix(3, 1) << 3.0, -3.0, 3.0).finished();
    // Rows 1 and 2 are right; row 3's label 7 is neither class (it used to count as class 0,
    // and as right whenever the model said class 0).
    const Vector y = (Vector(3) << 1.0, 0.0, 7.0).finished();
    const nnlift::Scores s = nnlift::score(net, X, y, nnlift::ExecutionContext(1));
    CHECK(s.accuracy == doctest::Approx(2.0 / 3.0));
    const Vector y_neg = (Vector(3) << 1.0, 0.0, 0.0).finished();
    const Matrix X_neg = (Matrix(3, 1) << 3.0, -3.0, -3.0).finished();
    const Vector y_out = (Vector(3) << 1.0, 0.0, -1.0).finished();
    CHECK(nnlift::score(net, X_neg, y_neg, nnlift::ExecutionContext(1)).accuracy == 1.0);
    const nnlift::Scores out = nnlift::score(net, X_neg, y_out, nnlift::ExecutionContext(1));
    CHECK(out.accuracy == doctest::Approx(2.0 / 3.0));
    CHECK(out.log_loss > -std::log(1e-15) / 3 - 1e-9);
  }

  TEST_CASE("labels: class names in a model file are validated") {
    test::TempDir dir;
    const std::string good = R"({"format": "nnlift-model", "version": 2,
        "task": "classification", "activation": "tanh", "inputs": ["a"], "target": "t",
        "hidden": {"weights": [[1]], "bias": [0]},
        "output": {"weights": [2], "bias": 1, "link": "logistic"},
        "classes": [0, 1], "class_names": ["no", "yes"]})";
    test::write_text(dir.file("good.json"), good);
    CHECK(nnlift::load_model(dir.file("good.json")).class_names ==
          std::vector<std::string>{"no", "yes"});
    // The names replaced by each of these is refused, naming why.
    const std::pair<const char*, const char*> bad_names[] = {
        {R"(["no"])", "'class_names' has 1 names for 2 classes"},
        {R"(["no", "no"])", "distinct and non-empty"},
        {R"("no")", "'class_names' must be an array"},
        {R"(["no", 1])", "class_names[]"}};
    for (const auto& [names, fragment] : bad_names) {
      test::write_text(dir.file("bad.json"), test::replaced(good, R"(["no", "yes"])", names));
      CHECK_THROWS_WITH_AS(
          nnlift::load_model(dir.file("bad.json")), doctest::Contains(fragment), nnlift::IoError);
    }
    // Saved and read back.
    nnlift::TwoLayerNetwork net = nnlift::load_model(dir.file("good.json"));
    nnlift::save_model(dir.file("again.json"), net);
    CHECK(nnlift::load_model(dir.file("again.json")).class_names == net.class_names);
  }
}
