// SPDX-License-Identifier: MIT
#include <cmath>

#include <doctest/doctest.h>

#include <nnlift/csv.hpp>

#include "test_helpers.hpp"

using nnlift::CsvOptions;
using nnlift::Dataset;
using nnlift::read_csv;

namespace {

// Expects read_csv to throw E with every fragment in its message.
template <class E>
void expect_error(const std::string& path,
                  const CsvOptions& options,
                  const std::vector<std::string>& fragments) {
  std::string message;
  try {
    (void)read_csv(path, options);
  } catch (const E& e) {
    message = e.what();
  }
  INFO("message: " << message);
  REQUIRE(!message.empty());
  for (const std::string& f : fragments) {
    CAPTURE(f);
    CHECK(message.find(f) != std::string::npos);
  }
}

}  // namespace

TEST_SUITE("csv") {
  TEST_CASE("csv: numbers in every accepted spelling") {
    test::TempDir dir;
    const std::string path = dir.file("forms.csv");
    test::write_text(path,
                     "\xEF\xBB\xBF"
                     "a, \"b\" ,c\r\n"
                     "1,2.5,-3e2\r\n"
                     "\r\n"
                     "  +4 ,\" 5.25 \",6E-1\n"
                     "-0.0,.5,1e+3\n"
                     "5e-400,0.0000000000000000000000000000000000000000000000000000000000000000"
                     "0000000000000000000000000000000000000000000000000000000000000000000000000"
                     "0000000000000000000000000000000000000000000000000000000000000000000000000"
                     "0000000000000000000000000000000000000000000000000000000000000000000000000"
                     "00000000000000000000000000000000000000000000000000000000000000000000001,"
                     "-1e-999\n");
    const Dataset data = read_csv(path);
    REQUIRE(data.X.rows() == 4);
    REQUIRE(data.X.cols() == 2);
    CHECK(data.feature_names == std::vector<std::string>{"a", "b"});
    CHECK(data.target_name == "c");
    CHECK(data.X(0, 0) == 1.0);
    CHECK(data.X(0, 1) == 2.5);
    CHECK(data.y(0) == -300.0);
    CHECK(data.X(1, 0) == 4.0);
    CHECK(data.X(1, 1) == 5.25);
    CHECK(data.y(1) == 0.6);
    CHECK(data.X(2, 1) == 0.5);
    CHECK(data.y(2) == 1000.0);
    // Below the least double: zero, as numpy and pandas read it (it was "out of the range of
    // double"); above the largest, an error still.
    CHECK(data.X(3, 0) == 0.0);
    CHECK(data.X(3, 1) == 0.0);
    CHECK(data.y(3) == 0.0);
    CHECK(std::signbit(data.y(3)));
  }

  TEST_CASE("csv: target, features and drop choose the columns") {
    test::TempDir dir;
    const std::string path = dir.file("cols.csv");
    test::write_text(path, "id,x1,x2,y,note\n1,10,20,0.5,hello\n2,11,21,0.7,world\n");
    CsvOptions o;
    o.target = "y";
    o.features = {"x2", "x1"};
    Dataset data = read_csv(path, o);
    CHECK(data.feature_names == std::vector<std::string>{"x2", "x1"});
    CHECK(data.X(1, 0) == 21.0);
    CHECK(data.y(1) == 0.7);

    CsvOptions drop;
    drop.target = "y";
    drop.drop = {"id", "note"};
    data = read_csv(path, drop);
    CHECK(data.feature_names == std::vector<std::string>{"x1", "x2"});
    CHECK(data.X(0, 1) == 20.0);

    CsvOptions no_target;
    no_target.has_target = false;
    no_target.features = {"x1"};
    data = read_csv(path, no_target);
    CHECK(data.y.size() == 0);
    CHECK(data.X.cols() == 1);
  }

  TEST_CASE("csv: every bad input names the file, line and column") {
    test::TempDir dir;
    auto file = [&](const std::string& name, const std::string& text) {
      const std::string path = dir.file(name);
      test::write_text(path, text);
      return path;
    };
    const CsvOptions none;
    expect_error<nnlift::IoError>(dir.file("missing.csv"), none, {"missing.csv", "cannot open"});
    expect_error<nnlift::IoError>(file("empty.csv", ""), none, {"empty.csv", "empty file"});
    expect_error<nnlift::IoError>(file("header.csv", "a,b\n"), none, {"header.csv", "header only"});
    expect_error<nnlift::IoError>(file("short.csv", "a,b,c\n1,2,3\n4,5\n"),
                                  none,
                                  {"short.csv:3:4:", "expected 3 fields, found 2"});
    expect_error<nnlift::IoError>(file("long.csv", "a,b\n1,2\n3,4,5\n"),
                                  none,
                                  {"long.csv:3:4:", "expected 2 fields, found 3"});
    expect_error<nnlift::IoError>(file("text.csv", "a,b\n1,2\n3,abc\n"),
                                  none,
                                  {"text.csv:3:3:", "field 2 ('b')", "not a number", "abc"});
    expect_error<nnlift::IoError>(
        file("nan.csv", "a,b\n1,nan\n"), none, {"nan.csv:2:3:", "'nan' (a missing value"});
    expect_error<nnlift::IoError>(
        file("inf.csv", "a,b\n-inf,1\n"), none, {"inf.csv:2:1:", "infinite"});
    // A word that begins like inf or nan is not a number, not an infinite one (MASS's Cars93
    // has the manufacturer Infiniti; AER's Journals the title Information Economics and Policy).
    expect_error<nnlift::IoError>(file("infiniti.csv", "a,b\n1,Infiniti\n"),
                                  none,
                                  {"infiniti.csv:2:3:", "not a number: 'Infiniti'"});
    expect_error<nnlift::IoError>(file("nancy.csv", "a,b\n\"NaNcy\",1\n"),
                                  none,
                                  {"nancy.csv:2:1:", "not a number: '\"NaNcy\"'"});
    {
      CsvOptions text;
      text.detect_text_columns = true;
      const nnlift::Dataset d = read_csv(
          file("makes.csv", "make,y\nAcura,1\nInfiniti,2\nInformation Economics,3\n"), text);
      REQUIRE(d.text.size() == 1);
      CHECK(d.text[0] == std::vector<std::string>{"Acura", "Infiniti", "Information Economics"});
    }
    expect_error<nnlift::IoError>(file("huge.csv", "a,b\n1,-1e999\n"),
                                  none,
                                  {"huge.csv:2:3:", "out of the range of double: '-1e999'"});
    expect_error<nnlift::IoError>(
        file("hole.csv", "a,b,c\n1,,3\n"), none, {"hole.csv:2:3:", "empty (a missing value"});
    expect_error<nnlift::IoError>(
        file("trail.csv", "a,b\n1,2x\n"), none, {"trail.csv:2:4:", "trailing characters"});
    expect_error<nnlift::IoError>(
        file("dup.csv", "a,b,a\n1,2,3\n"), none, {"dup.csv:1:", "duplicate column name 'a'"});
    const std::string good = file("good.csv", "a,b,y\n1,2,3\n1,4,5\n");
    CsvOptions target;
    target.target = "nope";
    expect_error<nnlift::IoError>(good, target, {"good.csv", "'nope'", "a, b, y"});
    CsvOptions feature;
    feature.features = {"a", "zz"};
    expect_error<nnlift::IoError>(good, feature, {"good.csv", "'zz'"});
    CsvOptions constant;
    constant.reject_constant_features = true;
    expect_error<nnlift::DataError>(good, constant, {"good.csv", "constant", "a"});
    CHECK_NOTHROW((void)read_csv(good));  // a constant column is fine until it matters
  }

  TEST_CASE("csv: large files parse identically on 1 and 2 threads across chunk boundaries") {
    test::TempDir dir;
    const std::string path = dir.file("big.csv");
    std::string text = "x1,x2,x3,y\n";
    nnlift::detail::Rng rng(5);
    const Index rows = 60000;  // about 3 MB: several 1 MB chunks
    Matrix expected(rows, 4);
    for (Index i = 0; i < rows; ++i) {
      for (Index j = 0; j < 4; ++j) {
        expected(i, j) = rng.normal();
      }
    }
    nnlift::write_csv(path, {"x1", "x2", "x3", "y"}, expected);
    CsvOptions one, two;
    one.num_threads = 1;
    two.num_threads = 2;
    const Dataset a = read_csv(path, one);
    const Dataset b = read_csv(path, two);
    REQUIRE(a.X.rows() == rows);
    CHECK((a.X.array() == b.X.array()).all());
    CHECK((a.X.array() == expected.leftCols(3).array()).all());  // shortest round-trip digits
    CHECK((a.y.array() == expected.col(3).array()).all());

    // An error late in the file reports the right line, whatever the chunking.
    std::string bytes = test::read_text(path);
    std::size_t pos = 0;
    for (int line = 1; line < 50000; ++line) {
      pos = bytes.find('\n', pos) + 1;
    }
    bytes.insert(pos, "1,2,oops,4\n");  // becomes line 50000
    test::write_text(path, bytes);
    expect_error<nnlift::IoError>(path, two, {"big.csv:50000:5:", "'x3'", "oops"});
  }

  TEST_CASE("csv: write_csv is atomic and refuses a name count mismatch") {
    test::TempDir dir;
    const std::string path = dir.file("out.csv");
    CHECK_THROWS_WITH_AS(nnlift::write_csv(path, {"a"}, Matrix::Zero(2, 2)),
                         doctest::Contains("1 names for 2 columns"),
                         std::invalid_argument);
    nnlift::write_csv(path, {"a", "b"}, Matrix::Constant(2, 2, 0.1));
    CHECK(test::read_text(path) == "a,b\n0.1,0.1\n0.1,0.1\n");
    CHECK(dir.list() == std::vector<std::string>{"out.csv"});
    CHECK_THROWS_AS(nnlift::write_csv(dir.file("no/such/dir/x.csv"), {"a"}, Matrix::Zero(1, 1)),
                    nnlift::IoError);
  }
}
