// SPDX-License-Identifier: MIT
#include <cstring>
#include <limits>

#include <doctest/doctest.h>

#include <nnlift/npy.hpp>

#include "test_helpers.hpp"

using nnlift::NpyArray;

namespace {

// A hand-made .npy file: header dictionary text and raw data bytes.
std::string npy_bytes(const std::string& dict, const std::string& data) {
  std::string header = dict;
  const std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string out = std::string("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(header.size() & 0xFF));
  out.push_back(static_cast<char>(header.size() >> 8));
  return out + header + data;
}

template <class T>
std::string raw(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

}  // namespace

TEST_SUITE("npy") {
  TEST_CASE("npy: 1-, 2- and 3-D float64 arrays round-trip exactly") {
    test::TempDir dir;
    for (std::vector<Index> shape : {std::vector<Index>{5}, {2, 3}, {2, 3, 4}}) {
      NpyArray a;
      a.shape = shape;
      nnlift::detail::Rng rng(9);
      for (Index i = 0; i < a.size(); ++i) {
        a.data.push_back(rng.normal());
      }
      const std::string path = dir.file("a.npy");
      nnlift::write_npy(path, a);
      const NpyArray b = nnlift::read_npy(path);
      CHECK(b.shape == a.shape);
      CHECK(b.data == a.data);
      CHECK(test::read_text(path).size() % 64 == a.data.size() * 8 % 64);  // aligned header
    }
    const Matrix m = (Matrix(2, 3) << 1, 2, 3, 4, 5, 6).finished();
    CHECK(nnlift::to_matrix(nnlift::to_npy(m)) == m);
  }

  TEST_CASE("npy: float32 and Fortran order are read into C-order doubles") {
    test::TempDir dir;
    const std::string f32 = dir.file("f32.npy");
    test::write_text(f32,
                     npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                               raw(std::vector<float>{1.5f, -2.0f, 0.25f})));
    CHECK(nnlift::read_npy(f32).data == std::vector<double>{1.5, -2.0, 0.25});
    // The 2×3 matrix [[1,2,3],[4,5,6]] in Fortran (column-major) order.
    const std::string fortran = dir.file("fortran.npy");
    test::write_text(fortran,
                     npy_bytes("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }",
                               raw(std::vector<double>{1, 4, 2, 5, 3, 6})));
    CHECK(nnlift::read_npy(fortran).data == std::vector<double>{1, 2, 3, 4, 5, 6});
  }

  TEST_CASE("npy: bad files are refused with the file name") {
    test::TempDir dir;
    auto expect = [&](const std::string& name, const std::string& bytes, const char* fragment) {
      const std::string path = dir.file(name);
      test::write_text(path, bytes);
      CAPTURE(name);
      CHECK_THROWS_WITH_AS(nnlift::read_npy(path), doctest::Contains(fragment), nnlift::IoError);
      CHECK_THROWS_WITH_AS(
          nnlift::read_npy(path), doctest::Contains(name.c_str()), nnlift::IoError);
    };
    CHECK_THROWS_WITH_AS(nnlift::read_npy(dir.file("missing.npy")),
                         doctest::Contains("missing.npy: cannot open"),
                         nnlift::IoError);
    expect("magic.npy", "not an npy file at all", "magic");
    expect("int.npy",
           npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
                     raw(std::vector<long long>{1, 2})),
           "unsupported dtype '<i8'");
    expect("big_endian.npy",
           npy_bytes("{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }",
                     std::string(8, '\0')),
           "unsupported dtype '>f8'");
    expect("truncated.npy",
           npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }",
                     raw(std::vector<double>{1, 2, 3})),
           "truncated");
    expect("fourd.npy",
           npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1, 1), }",
                     raw(std::vector<double>{1})),
           "4 dimensions");
    expect("header.npy",
           std::string("\x93NUMPY\x01\x00\xff\x00{'descr'", 17),
           "truncated .npy header");
    NpyArray bad;
    bad.shape = {2, 2};
    bad.data = {1, 2, 3};
    CHECK_THROWS_WITH_AS(nnlift::write_npy(dir.file("x.npy"), bad),
                         doctest::Contains("holds 4 elements"),
                         std::invalid_argument);
  }

  TEST_CASE("npy: rows go straight into the columns asked for, and bad values are named by row") {
    test::TempDir dir;
    nnlift::detail::Rng rng(7);
    const Matrix table = rng.normal_matrix(700, 4);
    nnlift::write_npy(dir.file("t64.npy"), nnlift::to_npy(table));
    {
      nnlift::NpyWriter f32(dir.file("t32.npy"), 4, true);
      f32.append(table);
      f32.finish();
    }
    for (const char* name : {"t64.npy", "t32.npy"}) {
      const nnlift::NpyRows rows(dir.file(name));
      // Rows [100, 600), columns 3 and 0 (in that order of destinations), column 1 and 2 left out.
      Vector a(500), b(500);
      rows.read_columns(100, 500, {b.data(), nullptr, nullptr, a.data()});
      Matrix whole;
      rows.read(100, 500, whole);
      CHECK(a == whole.col(3));
      CHECK(b == whole.col(0));
      if (rows.float32()) {
        CHECK(b.isApprox(table.col(0).segment(100, 500), 1e-6));
      } else {
        CHECK(b == table.col(0).segment(100, 500));
      }
      CHECK_THROWS_AS(rows.read_columns(0, 10, {a.data()}), std::out_of_range);
      CHECK_THROWS_AS(rows.read_columns(600, 101, {a.data(), a.data(), a.data(), a.data()}),
                      std::out_of_range);
    }
    // In one block: an infinity in column 2 at row 101, a NaN in column 1 at row 201. The
    // earlier row is named (the reader used to name the first column's); the callback sees every
    // value that is not finite, in row order.
    Matrix bad = table;
    bad(100, 1) = std::numeric_limits<double>::infinity();
    bad(200, 0) = std::numeric_limits<double>::quiet_NaN();
    nnlift::write_npy(dir.file("bad.npy"), nnlift::to_npy(bad));
    std::vector<std::pair<Index, Index>> seen;
    Vector x(700);
    nnlift::NpyRows(dir.file("bad.npy"))
        .read_columns(0, 700, {x.data(), nullptr, nullptr, nullptr}, [&](Index r, Index c, double) {
          seen.emplace_back(r, c);
        });
    CHECK(seen == std::vector<std::pair<Index, Index>>{{100, 1}, {200, 0}});
    CHECK(std::isnan(x(200)));
    nnlift::CsvOptions o;
    CHECK_THROWS_WITH_AS(nnlift::read_npy_dataset(dir.file("bad.npy"), o),
                         doctest::Contains("bad.npy: row 101, column '2': infinite"),
                         nnlift::IoError);
    // With missing values allowed, a NaN among the inputs is kept for imputation; in the target
    // it is still refused.
    bad(100, 1) = 0.5;
    nnlift::write_npy(dir.file("nan.npy"), nnlift::to_npy(bad));
    o.allow_missing = true;
    const nnlift::Dataset kept = nnlift::read_npy_dataset(dir.file("nan.npy"), o);
    CHECK(std::isnan(kept.X(200, 0)));
    CHECK(kept.X(100, 1) == 0.5);
    bad(300, 3) = std::numeric_limits<double>::quiet_NaN();
    nnlift::write_npy(dir.file("nan_y.npy"), nnlift::to_npy(bad));
    CHECK_THROWS_WITH_AS(nnlift::read_npy_dataset(dir.file("nan_y.npy"), o),
                         doctest::Contains("nan_y.npy: row 301, column '4': missing (NaN)"),
                         nnlift::IoError);
  }

  TEST_CASE("npy: a data file is read in parallel blocks the same for any thread count") {
    // More rows than two of the reader's 16,384-row blocks, and bad values in the second and
    // third blocks: the first by row is named, whatever the threads.
    test::TempDir dir;
    nnlift::detail::Rng rng(4);
    Matrix table = rng.normal_matrix(40000, 3);
    nnlift::write_npy(dir.file("ok.npy"), nnlift::to_npy(table));
    nnlift::CsvOptions one;
    one.num_threads = 1;
    nnlift::CsvOptions two = one;
    two.num_threads = 2;
    const nnlift::Dataset a = nnlift::read_npy_dataset(dir.file("ok.npy"), one);
    const nnlift::Dataset b = nnlift::read_npy_dataset(dir.file("ok.npy"), two);
    CHECK(a.X == table.leftCols(2));
    CHECK(a.y == table.col(2));
    CHECK(b.X == a.X);
    CHECK(b.y == a.y);
    table(20000, 1) = std::numeric_limits<double>::infinity();
    table(35000, 0) = std::numeric_limits<double>::quiet_NaN();
    nnlift::write_npy(dir.file("bad.npy"), nnlift::to_npy(table));
    for (const nnlift::CsvOptions& o : {one, two}) {
      CHECK_THROWS_WITH_AS(nnlift::read_npy_dataset(dir.file("bad.npy"), o),
                           doctest::Contains("bad.npy: row 20001, column '2': infinite"),
                           nnlift::IoError);
    }
    // A bad value in each of blocks 1 to 9, read ten times on 2 and on 4 threads: block 1's is
    // named every time. When parallel_for skipped every block not yet started once one threw, a
    // build on LLVM's OpenMP runtime (clang, as tools/check's sanitizer build) named a later
    // block in nearly every read.
    Matrix many = rng.normal_matrix(10 * 16384, 3);
    for (Index block = 1; block < 10; ++block) {
      many(block * 16384 + 5, 1) = std::numeric_limits<double>::infinity();
    }
    nnlift::write_npy(dir.file("many.npy"), nnlift::to_npy(many));
    nnlift::CsvOptions four = one;
    four.num_threads = 4;
    for (int read = 0; read < 10; ++read) {
      for (const nnlift::CsvOptions& o : {two, four}) {
        CHECK_THROWS_WITH_AS(nnlift::read_npy_dataset(dir.file("many.npy"), o),
                             doctest::Contains("many.npy: row 16390, column '2': infinite"),
                             nnlift::IoError);
      }
    }
  }
}
