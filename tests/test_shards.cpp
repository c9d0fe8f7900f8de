// Reading a CSV file in byte shares (one per process) and from shard lists.
// SPDX-License-Identifier: MIT
#include <cmath>
#include <fstream>

#include <doctest/doctest.h>

#include <nnlift/csv.hpp>
#include <nnlift/model.hpp>

#include "cli/shards.hpp"
#include "cli_helpers.hpp"
#include "detail/collective.hpp"
#include "test_helpers.hpp"

namespace {

// A CSV file of `rows` rows of (a, b, y) with blank lines and CRLF endings here and there.
std::string make_file(const test::TempDir& dir, const std::string& name, Index rows) {
  std::string text = "a,b,y\r\n";
  for (Index i = 0; i < rows; ++i) {
    text += std::to_string(i) + "," + std::to_string(i % 7) + "," + std::to_string(i % 3) +
            (i % 5 == 0 ? "\r\n" : "\n");
    if (i % 11 == 0) {
      text += "\n";
    }
  }
  const std::string path = dir.file(name);
  test::write_text(path, text);
  return path;
}

}  // namespace

TEST_SUITE("shards") {
  TEST_CASE("shards: the byte shares of a file tile its rows, in order, for any share count") {
    test::TempDir dir;
    const std::string path = make_file(dir, "rows.csv", 997);
    const nnlift::Dataset whole = nnlift::read_csv(path);
    Index all_lines = 0;
    for (const Index parts : {1, 2, 3, 7, 64, 2000}) {
      CAPTURE(parts);
      Index rows = 0, lines = 0;
      bool same = true;
      for (Index part = 0; part < parts; ++part) {
        nnlift::CsvOptions o;
        o.share = {part, parts, lines};
        const nnlift::Dataset share = nnlift::read_csv(path, o);
        CHECK(share.feature_names == whole.feature_names);
        same = same && share.X == whole.X.middleRows(rows, share.X.rows()) &&
               share.y == whole.y.segment(rows, share.y.size());
        rows += share.X.rows();
        lines += nnlift::csv_share_lines(path, part, parts);
      }
      CHECK(same);
      CHECK(rows == whole.X.rows());
      all_lines = all_lines == 0 ? lines : all_lines;
      CHECK(lines == all_lines);  // every line of the body in exactly one share
    }
    CHECK(all_lines == 997 + 91);  // rows and blank lines
    CHECK_THROWS_AS(nnlift::csv_share_lines(path, 3, 3), std::invalid_argument);
    nnlift::CsvOptions bad;
    bad.share = {0, 0, 0};
    CHECK_THROWS_AS(nnlift::read_csv(path, bad), std::invalid_argument);
  }

  TEST_CASE("shards: an error in a share names the file's own line number") {
    test::TempDir dir;
    std::string text = "a,y\n";
    for (int i = 0; i < 300; ++i) {
      text += (i == 250 ? std::string("oops") : std::to_string(i)) + ",1\n";
    }
    const std::string path = dir.file("bad.csv");
    test::write_text(path, text);
    std::string whole_message;
    try {
      (void)nnlift::read_csv(path);
    } catch (const nnlift::IoError& e) {
      whole_message = e.what();
    }
    REQUIRE(whole_message.find("bad.csv:252:1:") != std::string::npos);
    Index before = 0;
    std::string share_message;
    for (Index part = 0; part < 4; ++part) {
      nnlift::CsvOptions o;
      o.share = {part, 4, before};
      try {
        (void)nnlift::read_csv(path, o);
      } catch (const nnlift::IoError& e) {
        share_message = e.what();
      }
      before += nnlift::csv_share_lines(path, part, 4);
    }
    CHECK(share_message == whole_message);
  }

  TEST_CASE("shards: --data lists and globs, in name order; a missing file is refused") {
    test::TempDir dir;
    const std::string b = make_file(dir, "part-b.csv", 20);
    const std::string a = make_file(dir, "part-a.csv", 30);
    CHECK(nnlift::cli::expand_data_paths(dir.file("part-*.csv")) == std::vector<std::string>{a, b});
    CHECK(nnlift::cli::expand_data_paths(b + "," + a) == std::vector<std::string>{b, a});
    CHECK_THROWS_WITH_AS(nnlift::cli::expand_data_paths(a + "," + dir.file("nope.csv")),
                         doctest::Contains("nope.csv: no such file"),
                         nnlift::IoError);
    CHECK_THROWS_WITH_AS(nnlift::cli::expand_data_paths(dir.file("x-*.csv")),
                         doctest::Contains("no file matches"),
                         nnlift::IoError);
    CHECK_THROWS_WITH_AS(nnlift::cli::expand_data_paths(dir.path()),
                         doctest::Contains("is a directory"),
                         nnlift::IoError);
    // Read alone: the shards stacked in order.
    const nnlift::cli::Processes alone;
    const nnlift::Dataset both =
        nnlift::cli::read_training_rows(nnlift::cli::expand_data_paths(b + "," + a), {}, alone);
    CHECK(both.X.rows() == 50);
    CHECK(both.X(20, 0) == 0.0);
    // Files whose columns differ are refused, naming both.
    const std::string other = dir.file("other.csv");
    test::write_text(other, "a,c,y\n1,2,3\n");
    CHECK_THROWS_WITH_AS(nnlift::cli::read_training_rows({a, other}, {}, alone),
                         doctest::Contains("differ from those of"),
                         nnlift::IoError);
    // One process: its own message, or none.
    const nnlift::LocalReducer reducer;
    CHECK(nnlift::detail::first_message(reducer, "x.csv:3:1: bad") == "x.csv:3:1: bad");
    CHECK(nnlift::detail::first_message(reducer, "").empty());
  }

  TEST_CASE("shards: train on a glob of shards gives the model of the joined file") {
    test::TempDir dir;
    REQUIRE(test::run({"synth",
                       "--dim",
                       "4",
                       "--hidden",
                       "2",
                       "--samples",
                       "3000",
                       "--seed",
                       "3",
                       "--out",
                       dir.file("all.csv"),
                       "--truth",
                       dir.file("truth.json")})
                .code == 0);
    std::ifstream in(dir.file("all.csv"));
    std::string header, line;
    std::getline(in, header);
    std::ofstream s1(dir.file("s-1.csv")), s2(dir.file("s-2.csv"));
    s1 << header << "\n";
    s2 << header << "\n";
    for (int i = 0; std::getline(in, line); ++i) {
      (i < 1234 ? s1 : s2) << line << "\n";
    }
    s1.close();
    s2.close();
    // `nnlift train --hidden 2` on `data`, the model to `model`.
    const auto train = [&](const std::string& data, const std::string& model) {
      return test::run({"train", "--data", data, "--hidden", "2", "--model", dir.file(model)});
    };
    // The model `model` has the weights of the one trained on the joined file.
    const nnlift::TwoLayerNetwork w = [&] {
      REQUIRE(train(dir.file("all.csv"), "whole.json").code == 0);
      return nnlift::load_model(dir.file("whole.json"));
    }();
    const auto same_as_whole = [&](const std::string& model) {
      const nnlift::TwoLayerNetwork g = nnlift::load_model(dir.file(model));
      CHECK(w.W1 == g.W1);
      CHECK(w.W2 == g.W2);
    };
    const test::Outcome glob = train(dir.file("s-*.csv"), "glob.json");
    REQUIRE(glob.code == 0);
    CHECK(glob.err.find("3000 rows") != std::string::npos);
    same_as_whole("glob.json");
    // Empty shards (a partition with no rows, header only), first or among the others, add no
    // rows: the same model. (Each was "no data rows after the header" before.) All of them
    // empty is still that error.
    test::write_text(dir.file("s-0.csv"), header + "\n");
    test::write_text(dir.file("s-3.csv"), header + "\n");
    const test::Outcome gaps = train(dir.file("s-*.csv"), "gaps.json");
    REQUIRE(gaps.code == 0);
    CHECK(gaps.err.find("3000 rows") != std::string::npos);
    same_as_whole("gaps.json");
    // The other commands read one file: a list or a pattern is named as train's syntax (exit 2;
    // it was "cannot open" the list as one file name, exit 1).
    for (const char* command : {"predict", "evaluate", "describe", "convert"}) {
      CAPTURE(command);
      std::vector<std::string> args = {command, "--data", dir.file("s-*.csv")};
      if (std::string(command) == "predict" || std::string(command) == "evaluate") {
        args.insert(args.end(), {"--model", dir.file("glob.json")});
      }
      if (std::string(command) == "convert") {
        args.insert(args.end(), {"--out", dir.file("x.npy")});
      }
      const test::Outcome listed = test::run(args);
      CHECK(listed.code == 2);
      CHECK(listed.err.find("s-*.csv': lists of files and glob patterns are read by 'nnlift "
                            "train' only; 'nnlift " +
                            std::string(command) + "' reads one file") != std::string::npos);
    }
    const test::Outcome none = train(dir.file("s-0.csv") + "," + dir.file("s-3.csv"), "none.json");
    CHECK(none.code == 1);
    CHECK(none.err.find("s-0.csv: no data rows after the header (header only), nor in the 1 other "
                        "file(s)") != std::string::npos);
  }
  TEST_CASE("shards: a column with text in one shard only is text in every shard") {
    // Shard b's 'colour' fields are all numbers and its target 0/1, shard c's hold a word and
    // yes/no: one file holding all rows reads both columns as text, and so does the list. (The
    // list's shards were stacked with text for some and not others: a segmentation fault.)
    test::TempDir dir;
    std::string a = "colour,x,y\n", b = a, c = a, all = a;
    for (int i = 0; i < 90; ++i) {
      const std::string colour = i < 60 ? std::to_string(i % 4) : i == 75 ? "violet" : "2";
      const std::string label = i < 60 ? std::to_string(i % 2) : i % 2 ? "yes" : "no";
      const std::string row =
          colour + "," + std::to_string(0.01 * i * i - 0.3 * i) + "," + label + "\n";
      (i < 30 ? a : i < 60 ? b : c) += row;
      all += row;
    }
    test::write_text(dir.file("p-a.csv"), a);
    test::write_text(dir.file("p-b.csv"), b);
    test::write_text(dir.file("p-c.csv"), c);
    test::write_text(dir.file("all.csv"), all);
    const auto train = [&](const std::string& data, const std::string& model) {
      return test::run({"train", "--data", data, "--hidden", "1", "--model", dir.file(model)});
    };
    // Numbers and words in one target are refused, naming the first word, as in one file.
    const test::Outcome whole = train(dir.file("all.csv"), "whole.json");
    const test::Outcome list = train(dir.file("p-*.csv"), "list.json");
    CHECK(whole.code == 1);
    CHECK(list.code == 1);
    CHECK(whole.err.find("data row 61: 'no' is not a number") != std::string::npos);
    CHECK(list.err.find("data row 61: 'no' is not a number") != std::string::npos);
    // With words for all labels, the list gives the one file's model.
    for (std::string* s : {&a, &b, &c, &all}) {
      std::string out;
      for (std::size_t at = 0; at < s->size();) {
        const std::size_t end = s->find('\n', at);
        std::string line = s->substr(at, end - at);
        if (at > 0 && (line.back() == '0' || line.back() == '1')) {
          line = line.substr(0, line.size() - 1) + (line.back() == '1' ? "yes" : "no");
        }
        out += line + "\n";
        at = end + 1;
      }
      *s = out;
    }
    test::write_text(dir.file("p-a.csv"), a);
    test::write_text(dir.file("p-b.csv"), b);
    test::write_text(dir.file("p-c.csv"), c);
    test::write_text(dir.file("all.csv"), all);
    REQUIRE(train(dir.file("all.csv"), "whole.json").code == 0);
    const test::Outcome listed = train(dir.file("p-*.csv"), "list.json");
    INFO(listed.err);
    REQUIRE(listed.code == 0);
    const nnlift::TwoLayerNetwork w = nnlift::load_model(dir.file("whole.json"));
    const nnlift::TwoLayerNetwork l = nnlift::load_model(dir.file("list.json"));
    CHECK(l.inputs == w.inputs);
    CHECK(l.encoding.columns[0].categories ==
          std::vector<std::string>{"0", "1", "2", "3", "violet"});
    CHECK(l.W1 == w.W1);
    CHECK(l.W2 == w.W2);
  }
  TEST_CASE("shards: --strict does not refuse a column constant in one shard of a list") {
    // Column a is 0 in the first shard only: the list, read as one set, has no constant column.
    // (The reader refused it shard by shard: "a.csv: constant feature column(s) ...: a".)
    test::TempDir dir;
    std::string first = "a,b,y\n", second = first;
    for (int i = 0; i < 400; ++i) {
      const double a = i < 200 ? 0.0 : std::sin(0.37 * i), b = std::cos(0.11 * i * i);
      (i < 200 ? first : second) += std::to_string(a) + "," + std::to_string(b) + "," +
                                    std::to_string(a + 0.5 * b + 0.01 * (i % 7)) + "\n";
    }
    test::write_text(dir.file("a.csv"), first);
    test::write_text(dir.file("b.csv"), second);
    const test::Outcome o = test::run({"train",
                                       "--data",
                                       dir.file("a.csv") + "," + dir.file("b.csv"),
                                       "--hidden",
                                       "1",
                                       "--strict",
                                       "--model",
                                       dir.file("m.json")});
    INFO(o.err);
    REQUIRE(o.code == 0);
    // The model of the two files joined, which has no constant column either.
    test::write_text(dir.file("joined.csv"), first + second.substr(second.find('\n') + 1));
    REQUIRE(test::run({"train",
                       "--data",
                       dir.file("joined.csv"),
                       "--hidden",
                       "1",
                       "--strict",
                       "--model",
                       dir.file("j.json")})
                .code == 0);
    CHECK(nnlift::load_model(dir.file("m.json")).W1 == nnlift::load_model(dir.file("j.json")).W1);
    // One file with a constant column is still refused under --strict, by the reader.
    const test::Outcome one = test::run({"train",
                                         "--data",
                                         dir.file("a.csv"),
                                         "--hidden",
                                         "1",
                                         "--strict",
                                         "--model",
                                         dir.file("n.json")});
    CHECK(one.code == 1);
    CHECK(one.err.find("a.csv: constant feature column(s) carry no information: a") !=
          std::string::npos);
  }
}
