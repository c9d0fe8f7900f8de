// SPDX-License-Identifier: MIT
#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include <doctest/doctest.h>

#include <nnlift/nnlift.hpp>

#include "cli/commands.hpp"
#include "cli_helpers.hpp"
#include "test_helpers.hpp"

namespace {

using test::Outcome;
using test::run;

// min |cos| that `nnlift evaluate --truth` reports for a model on the planted test set in dir.
double evaluated_min_cos(const test::TempDir& dir, const std::string& model) {
  const Outcome o = run({"evaluate",
                         "--model",
                         dir.file(model),
                         "--data",
                         dir.file("te.csv"),
                         "--truth",
                         dir.file("truth.json")});
  REQUIRE(o.code == 0);
  const std::size_t at = o.out.find("min |cos| ");
  REQUIRE(at != std::string::npos);
  return std::stod(o.out.substr(at + 10));
}

// `nnlift predict` of the model m.json in dir on dir's `data`, written to p.csv there.
Outcome predict_in(const test::TempDir& dir, const std::string& data) {
  return run({"predict",
              "--model",
              dir.file("m.json"),
              "--data",
              dir.file(data),
              "--out",
              dir.file("p.csv")});
}

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("cli: help, version and usage errors") {
    Outcome o = run({"--help"});
    CHECK(o.code == 0);
    CHECK(o.out.find("synth") != std::string::npos);
    CHECK(o.out.find("decompose") != std::string::npos);
    for (const char* command :
         {"synth", "decompose", "describe", "train", "predict", "evaluate", "convert"}) {
      CAPTURE(command);
      o = run({command, "--help"});
      CHECK(o.code == 0);
      CHECK(o.out.find("--threads arg (=0)") != std::string::npos);  // defaults are shown
      o = run({"help", command});
      CHECK(o.code == 0);
    }
    CHECK(run({"--version"}).out.find("nnlift 0.1.0") == 0);
    CHECK(run({}).code == 2);
    o = run({"frobnicate"});
    CHECK(o.code == 2);
    CHECK(o.err.find("unknown command 'frobnicate'") != std::string::npos);
    o = run({"synth", "--truth", "t.json"});
    CHECK(o.code == 2);
    CHECK(o.err.find("'--out' is required but missing: training CSV to write\n") !=
          std::string::npos);
    // A missing option is named with what it is, from its help text.
    o = run({"train", "--data", "a.csv", "--model", "m.json"});
    CHECK(o.code == 2);
    CHECK(o.err.find("'--hidden' is required but missing: k >= 1, hidden units, or auto") !=
          std::string::npos);
    o = run({"synth", "--out", "a.csv", "--truth", "t.json", "--dim"});
    CHECK(o.code == 2);
    o = run({"synth", "--out", "a.csv", "--truth", "t.json", "--activation", "gelu"});
    CHECK(o.code == 2);
    CHECK(o.err.find("unknown activation 'gelu'") != std::string::npos);
    o = run({"synth", "--out", "a.csv", "--truth", "t.json", "--dim", "3", "--hidden", "4"});
    CHECK(o.code == 2);
    CHECK(o.err.find("--hidden = 4") != std::string::npos);  // the flag, not the field
  }

  TEST_CASE("cli: synth writes data and the truth; same seed, same bytes, any thread count") {
    test::TempDir dir;
    auto synth = [&](const std::string& tag, const char* threads) {
      return run({"synth",
                  "--dim",
                  "6",
                  "--hidden",
                  "3",
                  "--samples",
                  "5000",
                  "--test-samples",
                  "200",
                  "--noise",
                  "0.05",
                  "--seed",
                  "42",
                  "--threads",
                  threads,
                  "--out",
                  dir.file(tag + "train.csv"),
                  "--test-out",
                  dir.file(tag + "test.csv"),
                  "--truth",
                  dir.file(tag + "truth.json")});
    };
    Outcome o = synth("a", "1");
    REQUIRE(o.code == 0);
    CHECK(o.err.find("lambda_j") != std::string::npos);
    REQUIRE(synth("b", "2").code == 0);
    CHECK(test::read_text(dir.file("atrain.csv")) == test::read_text(dir.file("btrain.csv")));
    CHECK(test::read_text(dir.file("atest.csv")) == test::read_text(dir.file("btest.csv")));
    CHECK(test::read_text(dir.file("atruth.json")) == test::read_text(dir.file("btruth.json")));
    const nnlift::Dataset data = nnlift::read_csv(dir.file("atrain.csv"));
    CHECK(data.X.rows() == 5000);
    CHECK(data.X.cols() == 6);
    const nnlift::TwoLayerNetwork truth = nnlift::load_model(dir.file("atruth.json"));
    CHECK(truth.inputs == data.feature_names);
    const Vector residual = data.y - nnlift::predict(truth, data.X).col(0);
    CHECK(std::abs(std::sqrt(residual.squaredNorm() / 5000.0) - 0.05) < 0.003);  // the noise sd
    o = run({"synth",
             "--quiet",
             "--dim",
             "2",
             "--hidden",
             "1",
             "--samples",
             "10",
             "--out",
             dir.file("q.csv"),
             "--truth",
             dir.file("q.json")});
    CHECK(o.code == 0);
    CHECK(o.err.empty());
  }

  TEST_CASE("cli: decompose recovers a planted tensor from .npy and writes JSON and .npy") {
    test::TempDir dir;
    const Index d = 7, k = 3;
    const Matrix V = test::random_unit_columns(d, k, 5);
    const Vector lambda = (Vector(k) << 2.0, -1.0, 0.5).finished();
    const nnlift::DenseSymmetricTensor3 T = nnlift::DenseSymmetricTensor3::from_factors(lambda, V);
    nnlift::NpyArray array;
    array.shape = {d, d, d};
    array.data = T.data();
    nnlift::write_npy(dir.file("T.npy"), array);
    Outcome o = run({"decompose",
                     "--tensor",
                     dir.file("T.npy"),
                     "--rank",
                     "3",
                     "--seed",
                     "1",
                     "--out",
                     dir.file("r.json"),
                     "--out-npy",
                     dir.file("V.npy"),
                     "--strict"});
    INFO(o.err);
    REQUIRE(o.code == 0);
    CHECK(o.err.find("status success") != std::string::npos);
    const std::string json = test::read_text(dir.file("r.json"));
    CHECK(json.find("\"format\": \"nnlift-decomposition\"") != std::string::npos);
    const Matrix found = nnlift::to_matrix(nnlift::read_npy(dir.file("V.npy")));
    REQUIRE(found.rows() == d);
    CHECK(test::max_column_error(V, found) < 1e-8);

    // A numerical outcome other than success: a warning and exit 0, or exit 3 with --strict
    // (one ALS sweep cannot show that the residual has settled).
    auto decompose = [&](std::vector<std::string> extra) {
      std::vector<std::string> args = {
          "decompose", "--tensor", dir.file("T.npy"), "--rank", "3", "--out", dir.file("s.json")};
      args.insert(args.end(), extra.begin(), extra.end());
      return run(args);
    };
    o = decompose({"--method", "als", "--sweeps", "1"});
    CHECK(o.code == 0);
    CHECK(o.err.find("warning: decomposition status not-converged") != std::string::npos);
    // With --strict that is an error, and an error writes nothing: the file from the run
    // before stays as it was (it was overwritten before the fix).
    const std::string before = test::read_text(dir.file("s.json"));
    o = decompose({"--method", "als", "--sweeps", "1", "--strict", "--seed", "7"});
    CHECK(o.code == 3);
    CHECK(o.err.find("error: decomposition status not-converged (--strict; ") != std::string::npos);
    CHECK(o.err.find("s.json not written") != std::string::npos);
    CHECK(o.err.find("wrote") == std::string::npos);
    CHECK(test::read_text(dir.file("s.json")) == before);
    o = decompose({"--restarts", "0"});
    CHECK(o.code == 2);
    CHECK(o.err.find("--restarts = 0; must be > 0") != std::string::npos);
    o = run(
        {"decompose", "--tensor", dir.file("T.npy"), "--rank", "9", "--out", dir.file("x.json")});
    CHECK(o.code == 2);
    CHECK(o.err.find("exceeds the dimension d = 7") != std::string::npos);
    // An asymmetric tensor is refused with the largest asymmetry; nothing is written.
    array.data[1] += 0.25;
    nnlift::write_npy(dir.file("A.npy"), array);
    o = run(
        {"decompose", "--tensor", dir.file("A.npy"), "--rank", "2", "--out", dir.file("y.json")});
    CHECK(o.code == 1);
    CHECK(o.err.find("largest asymmetry 0.25") != std::string::npos);
    CHECK(o.err.find("A.npy") != std::string::npos);
    array.shape = {d, d * d};
    nnlift::write_npy(dir.file("M.npy"), array);
    o = run(
        {"decompose", "--tensor", dir.file("M.npy"), "--rank", "2", "--out", dir.file("z.json")});
    CHECK(o.code == 1);
    CHECK(o.err.find("expected a d x d x d array") != std::string::npos);
    const std::vector<std::string> files = dir.list();
    CHECK(std::find(files.begin(), files.end(), "y.json") == files.end());
    CHECK(std::find(files.begin(), files.end(), "z.json") == files.end());
  }

  TEST_CASE(
      "cli: describe reads CSV as training does; bad input exits 1 naming file, line, column") {
    test::TempDir dir;
    test::write_text(dir.file("d.csv"), "id,a,b,y\n1,1.5,2,0\n2,2.5,2,1\n3,3.5,2,1\n");
    Outcome o = run({"describe", "--data", dir.file("d.csv"), "--drop", "id"});
    INFO(o.err);
    REQUIRE(o.code == 0);
    CHECK(o.out.find("3 rows, 2 inputs, target 'y'") != std::string::npos);
    CHECK(o.out.find("constant") != std::string::npos);  // column b
    CHECK(o.out.find("\nid ") == std::string::npos);     // no line for the dropped column
    o = run({"describe", "--data", dir.file("d.csv"), "--features", "a", "--drop", "id"});
    CHECK(o.code == 2);
    o = run({"describe", "--data", dir.file("d.csv"), "--target", "zz"});
    CHECK(o.code == 1);  // the file has no such column: a data problem, not a usage error
    CHECK(o.err.find("Try") == std::string::npos);
    CHECK(o.err.find("no target column named 'zz'") != std::string::npos);
    test::write_text(dir.file("bad.csv"), "a,y\n1,2\n3,x\n");
    o = run({"describe", "--data", dir.file("bad.csv")});
    CHECK(o.code == 1);
    CHECK(o.err.find("bad.csv: column 'y', data row 2: 'x' is not a number") !=
          std::string::npos);  // as train says it: a text label among numbers
    o = run({"describe", "--data", dir.file("missing.csv")});
    CHECK(o.code == 1);
    CHECK(o.err.find("missing.csv: cannot open") != std::string::npos);
  }

  TEST_CASE("cli: train, predict and evaluate on planted data") {
    test::TempDir dir;
    REQUIRE(run({"synth",      "--dim",
                 "6",          "--hidden",
                 "2",          "--samples",
                 "20000",      "--test-samples",
                 "2000",       "--noise",
                 "0.05",       "--seed",
                 "3",          "--quiet",
                 "--out",      dir.file("tr.csv"),
                 "--test-out", dir.file("te.csv"),
                 "--truth",    dir.file("truth.json")})
                .code == 0);
    Outcome o = run({"train",
                     "--data",
                     dir.file("tr.csv"),
                     "--hidden",
                     "2",
                     "--model",
                     dir.file("m.json"),
                     "--seed",
                     "1"});
    INFO(o.err);
    REQUIRE(o.code == 0);
    CHECK(o.err.find("(regression)") != std::string::npos);
    CHECK(o.err.find("stage times") != std::string::npos);
    CHECK(o.err.find("route") != std::string::npos);
    // The cubic control variate for the core (20,000 rows against its 10 features at k = 2).
    CHECK(o.err.find("(+ cubic in the subspace, for the core)") != std::string::npos);
    CHECK(test::read_text(dir.file("m.json")).find("\"cubic_in_subspace\": true") !=
          std::string::npos);
    CHECK(evaluated_min_cos(dir, "m.json") > 0.98);
    // `nnlift train` on the planted data with two hidden units and more flags.
    auto train_with = [&](const std::string& model,
                          std::vector<std::string> extra,
                          const std::string& hidden = "2") {
      std::vector<std::string> args = {
          "train", "--data", dir.file("tr.csv"), "--hidden", hidden, "--model", dir.file(model)};
      args.insert(args.end(), extra.begin(), extra.end());
      return run(args);
    };
    // --strict: exit 0 when every stage succeeded, also for a random start (the status bug).
    o = train_with(
        "random.json",
        {"--init", "random", "--refine", "lbfgs", "--refine-max-iterations", "5", "--strict"});
    CHECK(o.code == 0);
    CHECK(o.err.find("warning: \n") == std::string::npos);
    // --init random is plain backprop (--linear-term auto: off), unless the term is asked for.
    CHECK(test::read_text(dir.file("random.json")).find("\"linear\"") == std::string::npos);
    o = train_with("random-linear.json",
                   {"--init",
                    "random",
                    "--refine",
                    "lbfgs",
                    "--refine-max-iterations",
                    "5",
                    "--linear-term",
                    "on"});
    CHECK(o.code == 0);
    CHECK(test::read_text(dir.file("random-linear.json")).find("\"linear\"") != std::string::npos);
    // The training range is stored (and applied by predict) unless --clamp-inputs off.
    CHECK(test::read_text(dir.file("m.json")).find("\"input_range\"") != std::string::npos);
    o = train_with("free.json", {"--clamp-inputs", "off"});
    CHECK(o.code == 0);
    CHECK(test::read_text(dir.file("free.json")).find("input_range") == std::string::npos);
    // A stage that did not succeed (one HOOI sweep cannot show the subspace has settled): a
    // warning and the model written, or with --strict exit 3 and no model written, the file
    // already there left as it was (it was overwritten before the fix).
    o = train_with("sweep.json", {"--subspace-sweeps", "1"});
    CHECK(o.code == 0);
    CHECK(o.err.find("warning: tensor_subspace: subspace still moving after 1 sweeps") !=
          std::string::npos);
    const std::string kept_model = test::read_text(dir.file("m.json"));
    o = train_with("m.json", {"--subspace-sweeps", "1", "--strict"});
    CHECK(o.code == 3);
    CHECK(o.err.find("error: tensor_subspace: subspace still moving after 1 sweeps") !=
          std::string::npos);
    CHECK(o.err.find("(--strict; " + dir.file("m.json") + " not written)") != std::string::npos);
    CHECK(o.err.find("wrote") == std::string::npos);
    CHECK(test::read_text(dir.file("m.json")) == kept_model);
    // More units than inputs: the moments give six, three are extra (and said so).
    o = run(
        {"train", "--data", dir.file("tr.csv"), "--hidden", "9", "--model", dir.file("x.json")});
    CHECK(o.code == 0);
    CHECK(o.err.find("units 7-9 of 9: extra (the inputs have 6 independent directions") !=
          std::string::npos);
    CHECK(nnlift::load_model(dir.file("x.json")).num_hidden() == 9);
    o = run(
        {"train", "--data", dir.file("tr.csv"), "--hidden", "1025", "--model", dir.file("y.json")});
    CHECK(o.code == 2);
    CHECK(o.err.find("--hidden 1025 exceeds max(d, 1024) for the 6 input columns") !=
          std::string::npos);
    o = train_with("r.json", {"--ridge", "-1"});
    CHECK(o.code == 2);
    CHECK(o.err.find("--ridge = -1; must be finite and >= 0") != std::string::npos);
    o = train_with("r.json", {"--weak-units", "sometimes"});
    CHECK(o.code == 2);
    CHECK(o.err.find("unknown weak-units mode 'sometimes'") != std::string::npos);
    // Four units for two: one of the extra two splits a real unit in two (a CP degeneracy:
    // merged, its direction from M2), the other is weak; both are reported, with where their
    // directions came from (unless kept). (Without the cubic control variate, which sharpens
    // this subspace so that no unit splits.)
    const auto train_four = [&](std::vector<std::string> extra) {
      extra.insert(extra.end(), {"--cubic-control-variate", "off"});
      return train_with("w.json", std::move(extra), "4");
    };
    o = train_four({});
    REQUIRE(o.code == 0);
    CHECK(o.err.find("0  degenerate: nearly parallel to a stronger unit, merged into it; "
                     "direction from the second moment\n") != std::string::npos);
    CHECK(o.err.find("units with |lambda| above 3 x the noise level: 2 of 4; second-moment "
                     "directions tried for the 1 unit(s) below 3 x: ") != std::string::npos);
    // The candidates for second-moment directions are never fewer than the weak units.
    o = train_four({"--second-order-threshold", "0"});
    REQUIRE(o.code == 0);
    CHECK(o.err.find("; second-moment directions tried for the 1 unit(s) below 3 x: ") !=
          std::string::npos);
    // Every unit below the level: no other unit's share to subtract from M2, so the weak
    // units alone are tried.
    o = train_four({"--second-order-threshold", "100"});
    REQUIRE(o.code == 0);
    CHECK(o.err.find("; second-moment directions tried for the 1 unit(s) below 3 x: ") !=
          std::string::npos);
    o = train_with("r.json", {"--second-order-threshold", "-1"});
    CHECK(o.code == 2);
    CHECK(o.err.find("--second-order-threshold = -1; must be finite and >= 0") !=
          std::string::npos);
    o = train_with("r.json", {"--subspace-sample-rows", "-1"});
    CHECK(o.code == 2);
    CHECK(o.err.find("--subspace-sample-rows = -1; must be >= 0") != std::string::npos);
    o = train_four({"--weak-units", "keep"});
    REQUIRE(o.code == 0);
    CHECK(o.err.find("units with |lambda| above 3 x the noise level: 2 of 4\n") !=
          std::string::npos);
    o = predict_in(dir, "te.csv");
    REQUIRE(o.code == 0);
    nnlift::CsvOptions no_target;
    no_target.has_target = false;
    const nnlift::Dataset predictions = nnlift::read_csv(dir.file("p.csv"), no_target);
    CHECK(predictions.X.rows() == 2000);
    CHECK(predictions.feature_names == std::vector<std::string>{"prediction"});
    // --out - is standard output (it wrote a file named '-' in the working directory before).
    o = run({"predict", "--model", dir.file("m.json"), "--data", dir.file("tr.csv"), "--out", "-"});
    CHECK(o.code == 0);
    CHECK(o.out.rfind("prediction\n", 0) == 0);
    CHECK(std::count(o.out.begin(), o.out.end(), '\n') == 20001);
    CHECK(!std::filesystem::exists("-"));
    // A missing input column is an error naming it.
    test::write_text(dir.file("few.csv"), "x1,x2\n1,2\n");
    o = run({"predict", "--model", dir.file("m.json"), "--data", dir.file("few.csv")});
    CHECK(o.code == 1);
    CHECK(o.err.find("no feature column named 'x3'") != std::string::npos);
    o = train_with("r.json", {"--activation", "relu"});
    CHECK(o.code == 2);
    CHECK(o.err.find("third-order signal") != std::string::npos);
    const std::vector<std::string> files = dir.list();
    CHECK(std::find(files.begin(), files.end(), "r.json") == files.end());
  }

  TEST_CASE("cli: convert writes .npy and names; train --stream reads it; errors leave no file") {
    test::TempDir dir;
    REQUIRE(run({"synth",
                 "--dim",
                 "6",
                 "--hidden",
                 "2",
                 "--samples",
                 "30000",
                 "--test-samples",
                 "2000",
                 "--seed",
                 "3",
                 "--quiet",
                 "--out",
                 dir.file("tr.csv"),
                 "--test-out",
                 dir.file("te.csv"),
                 "--truth",
                 dir.file("truth.json")})
                .code == 0);
    // Small chunks: many byte shares, each cut at line starts.
    Outcome o = run({"convert",
                     "--data",
                     dir.file("tr.csv"),
                     "--out",
                     dir.file("tr.npy"),
                     "--chunk-mb",
                     "1",
                     "--dtype",
                     "float32"});
    INFO(o.err);
    REQUIRE(o.code == 0);
    const nnlift::NpyRows file(dir.file("tr.npy"));
    CHECK(file.rows() == 30000);
    CHECK(file.float32());
    const nnlift::Dataset csv = nnlift::read_csv(dir.file("tr.csv"));
    const nnlift::Dataset npy = nnlift::read_npy_dataset(dir.file("tr.npy"), {});
    CHECK(npy.feature_names == csv.feature_names);
    CHECK(npy.target_name == csv.target_name);
    CHECK((npy.X - csv.X.cast<float>().cast<double>()).cwiseAbs().maxCoeff() == 0.0);
    o = run({"train",
             "--data",
             dir.file("tr.npy"),
             "--hidden",
             "2",
             "--model",
             dir.file("m.json"),
             "--stream",
             "on",
             "--features",
             "x1,x2,x3,x4,x5,x6"});
    INFO(o.err);
    REQUIRE(o.code == 0);
    CHECK(o.err.find("streamed in blocks (float32") != std::string::npos);
    CHECK(evaluated_min_cos(dir, "m.json") > 0.98);
    // predict, evaluate and describe read the .npy table block by block, with the CSV's results.
    REQUIRE(run({"convert", "--data", dir.file("te.csv"), "--out", dir.file("te.npy")}).code == 0);
    for (const char* ext : {".csv", ".npy"}) {
      REQUIRE(run({"predict",
                   "--model",
                   dir.file("m.json"),
                   "--data",
                   dir.file(std::string("te") + ext),
                   "--out",
                   dir.file(std::string("p") + ext + ".csv")})
                  .code == 0);
    }
    CHECK(test::read_text(dir.file("p.csv.csv")) == test::read_text(dir.file("p.npy.csv")));
    const auto after_first_line = [](const std::string& text) {
      return text.substr(text.find('\n'));
    };
    const Outcome e_csv =
        run({"evaluate", "--model", dir.file("m.json"), "--data", dir.file("te.csv")});
    const Outcome e_npy =
        run({"evaluate", "--model", dir.file("m.json"), "--data", dir.file("te.npy")});
    CHECK(after_first_line(e_csv.out) == after_first_line(e_npy.out));
    const Outcome d_csv = run({"describe", "--data", dir.file("te.csv")});
    const Outcome d_npy = run({"describe", "--data", dir.file("te.npy")});
    CHECK(after_first_line(d_csv.out) == after_first_line(d_npy.out));
    // --task auto on a streamed file: a two-valued integer target in a sample is classes.
    Matrix cls = Matrix::Random(3000, 3);
    cls.col(2) = (cls.col(0).array() + cls.col(1).array() > 0).cast<double>();
    nnlift::write_npy(dir.file("cls.npy"), nnlift::to_npy(cls));
    o = run({"train",
             "--data",
             dir.file("cls.npy"),
             "--hidden",
             "1",
             "--model",
             dir.file("cls.json"),
             "--stream",
             "on"});
    INFO(o.err);
    REQUIRE(o.code == 0);
    CHECK(o.err.find("(classification in a sample of 1000 rows: two-valued") != std::string::npos);
    o = run({"evaluate", "--model", dir.file("cls.json"), "--data", dir.file("cls.npy")});
    REQUIRE(o.code == 0);
    const std::size_t acc = o.out.find("accuracy ");
    REQUIRE(acc != std::string::npos);
    CHECK(std::stod(o.out.substr(acc + 9)) > 0.9);
    // What streaming does not cover is a usage error naming the flag.
    const auto streamed =
        [&](const char* data, const char* hidden, const std::vector<std::string>& extra = {}) {
          const std::string path = dir.file(data), model = dir.file("m2.json");
          std::vector<std::string> args = {
              "train", "--data", path, "--hidden", hidden, "--model", model, "--stream", "on"};
          args.insert(args.end(), extra.begin(), extra.end());
          return run(args);
        };
    o = streamed("tr.npy", "auto");
    CHECK(o.code == 2);
    CHECK(o.err.find("--hidden = auto") != std::string::npos);
    o = streamed("tr.npy", "9");
    CHECK(o.code == 2);
    CHECK(o.err.find("--hidden 9 exceeds the 6 input columns") != std::string::npos);
    CHECK(o.err.find("--stream needs k <= d") != std::string::npos);
    o = streamed("tr.csv", "2");
    CHECK(o.code == 2);
    CHECK(o.err.find("reads one .npy file") != std::string::npos);
    o = streamed("tr.npy", "2", {"--refine", "lbfgs"});
    CHECK(o.code == 2);
    CHECK(o.err.find("--refine lbfgs (L-BFGS): not available when training streams its rows") !=
          std::string::npos);
    // A bad field deep in the file: its line and column, and neither output is written.
    std::string text = test::read_text(dir.file("tr.csv"));
    const std::size_t line = text.find('\n', text.size() / 2) + 1;
    text.replace(line, text.find(',', line) - line, "oops");
    test::write_text(dir.file("bad.csv"), text);
    o = run({"convert",
             "--data",
             dir.file("bad.csv"),
             "--out",
             dir.file("bad.npy"),
             "--chunk-mb",
             "1"});
    CHECK(o.code == 1);
    CHECK(
        o.err.find("bad.csv:" +
                   std::to_string(
                       std::count(text.begin(), text.begin() + static_cast<long>(line), '\n') + 1) +
                   ":1:") != std::string::npos);
    for (const std::string& f : dir.list()) {
      CHECK(f.find("bad.npy") == std::string::npos);
    }
    o = run({"convert", "--data", dir.file("tr.csv"), "--out", dir.file("x.csv")});
    CHECK(o.code == 2);
    // A missing value: what convert offers (it suggested --missing, which convert has not).
    test::write_text(dir.file("gap.csv"), "a,b\n1,2\n3,NA\n");
    o = run({"convert", "--data", dir.file("gap.csv"), "--out", dir.file("gap.npy")});
    CHECK(o.code == 1);
    CHECK(o.err.find("gap.csv:3:3: field 2 ('b') is 'NA' (a missing value; a .npy file holds "
                     "numbers only: fill it in or leave its row out first") != std::string::npos);
    CHECK(o.err.find("to accept them") == std::string::npos);
  }

  TEST_CASE("cli: bounded inputs and the Fourier biases") {
    test::TempDir dir;
    Outcome o = run({"synth",
                     "--dim",
                     "3",
                     "--hidden",
                     "2",
                     "--samples",
                     "20000",
                     "--ball-radius",
                     "6",
                     "--output-weights",
                     "positive",
                     "--seed",
                     "4",
                     "--out",
                     dir.file("ball.csv"),
                     "--truth",
                     dir.file("truth.json")});
    REQUIRE(o.code == 0);
    CHECK(o.err.find("uniform on the ball of radius 6") != std::string::npos);
    o = run({"train",
             "--data",
             dir.file("ball.csv"),
             "--hidden",
             "2",
             "--bias",
             "fourier",
             "--model",
             dir.file("m.json")});
    INFO(o.err);
    REQUIRE(o.code == 0);
    CHECK(o.err.find("do not look uniform") == std::string::npos);
    CHECK(nnlift::load_model(dir.file("m.json")).metadata_json.find("\"bias\":\"fourier\"") !=
          std::string::npos);
    o = run({"synth",
             "--out",
             dir.file("x.csv"),
             "--truth",
             dir.file("t.json"),
             "--output-weights",
             "some"});
    CHECK(o.code == 2);
    CHECK(o.err.find("--output-weights: unknown output weights 'some'; expected mixed, positive "
                     "or ones") != std::string::npos);
    o = run({"train", "--help"});
    CHECK(o.out.find("fourier") != std::string::npos);
  }
}

TEST_SUITE("cli") {
  TEST_CASE("cli: heavy-tailed columns get the rank-Gauss map tried, which predict applies") {
    test::TempDir dir;
    nnlift::detail::Rng rng(5);
    std::ostringstream csv, test_csv;
    csv << "a,b,c,y\n";
    test_csv << "a,b,c,y\n";
    for (int i = 0; i < 3200; ++i) {
      const double g1 = rng.normal(), g2 = rng.normal(), g3 = rng.normal();
      const double y = 1.0 / (1.0 + std::exp(-2 * g1 + g2)) + 0.3 * g3 + 0.02 * rng.normal();
      (i < 3000 ? csv : test_csv) << std::exp(g1) << "," << std::exp(1.5 * g2) << ","
                                  << std::exp(g3) << "," << y << "\n";
    }
    test::write_text(dir.file("tr.csv"), csv.str());
    test::write_text(dir.file("te.csv"), test_csv.str());
    const auto train = [&](std::vector<std::string> extra, const char* model = "m.json") {
      std::vector<std::string> args = {
          "train", "--data", dir.file("tr.csv"), "--hidden", "2", "--model", dir.file(model)};
      args.insert(args.end(), extra.begin(), extra.end());
      return run(args);
    };
    Outcome o = train({});
    INFO(o.err);
    REQUIRE(o.code == 0);
    CHECK(o.err.find("inputs: 3 of 3 columns heavy-tailed (excess kurtosis above 5") !=
          std::string::npos);
    CHECK(o.err.find("the rank-Gauss map was tried as well (--score adaptive)") !=
          std::string::npos);
    CHECK(o.err.find("2/gaussian") != std::string::npos);
    CHECK(o.err.find("2/rankgauss") != std::string::npos);
    const nnlift::TwoLayerNetwork net = nnlift::load_model(dir.file("m.json"));
    CHECK(!net.input_map.empty());  // the rank-Gauss map won: the teacher acts on log x
    CHECK(net.metadata_json.find("\"score\":\"rankgauss\"") != std::string::npos);
    o = predict_in(dir, "te.csv");
    REQUIRE(o.code == 0);
    CHECK(nnlift::read_csv(dir.file("p.csv"),
                           [] {
                             nnlift::CsvOptions c;
                             c.has_target = false;
                             return c;
                           }())
              .X.rows() == 200);
    // Its first layer acts on mapped inputs: evaluate --truth against a teacher on the raw
    // inputs says the |cos| do not compare.
    o = train({"--score", "gaussian"}, "raw.json");
    REQUIRE(o.code == 0);
    const auto evaluate_against = [&](const char* truth) {
      return run({"evaluate",
                  "--model",
                  dir.file("m.json"),
                  "--data",
                  dir.file("tr.csv"),
                  "--truth",
                  dir.file(truth)});
    };
    o = evaluate_against("raw.json");
    REQUIRE(o.code == 0);
    CHECK(o.out.find("min |cos|") != std::string::npos);
    CHECK(o.out.find("not comparable: the two first layers act on different inputs") !=
          std::string::npos);
    // The model against itself: the same map, comparable.
    o = evaluate_against("m.json");
    REQUIRE(o.code == 0);
    CHECK(o.out.find("min |cos| 1") != std::string::npos);
    CHECK(o.out.find("not comparable") == std::string::npos);
    // No validation rows: nothing to choose on, and the summary says so.
    o = train({"--validation", "0"});
    REQUIRE(o.code == 0);
    CHECK(o.err.find("the rank-Gauss map needs validation rows to be tried") != std::string::npos);
    CHECK(nnlift::load_model(dir.file("m.json")).input_map.empty());
    // --score gaussian is the Gaussian score alone.
    o = train({"--score", "gaussian"});
    REQUIRE(o.code == 0);
    CHECK(o.err.find("heavy-tailed") == std::string::npos);
    CHECK(nnlift::load_model(dir.file("m.json")).input_map.empty());
  }

  TEST_CASE("cli: describe shows each column's kurtosis and the tails train will see") {
    test::TempDir dir;
    nnlift::detail::Rng rng(9);
    std::ostringstream csv;
    csv << "skewed,plain,flag,y\n";
    for (int i = 0; i < 4000; ++i) {
      const double g = rng.normal(), h = rng.normal();
      csv << std::exp(1.5 * g) << "," << h << "," << (i % 40 == 0 ? 1 : 0) << ","
          << g + h + 0.1 * rng.normal() << "\n";
    }
    test::write_text(dir.file("t.csv"), csv.str());
    const Outcome o = run({"describe", "--data", dir.file("t.csv")});
    INFO(o.out << o.err);
    REQUIRE(o.code == 0);
    const auto line_of = [&](const std::string& name) {
      const std::size_t at = o.out.find("\n" + name + " ");
      REQUIRE(at != std::string::npos);
      return o.out.substr(at + 1, o.out.find('\n', at + 1) - at - 1);
    };
    CHECK(line_of("skewed").find("heavy-tailed") != std::string::npos);
    CHECK(line_of("plain").find("heavy-tailed") == std::string::npos);
    // The rare flag has a kurtosis of 35 but two values: not counted, not marked.
    CHECK(line_of("flag").find("heavy-tailed") == std::string::npos);
    CHECK(o.out.find("heavy-tailed inputs: 1 of the 2 numeric inputs with more than two values") !=
          std::string::npos);
    CHECK(o.out.find("--score adaptive tries the rank-Gauss map as well") != std::string::npos);
    // train counts the same columns.
    const Outcome t =
        run({"train", "--data", dir.file("t.csv"), "--hidden", "1", "--model", dir.file("m.json")});
    REQUIRE(t.code == 0);
    CHECK(t.err.find("inputs: 1 of 2 columns heavy-tailed") != std::string::npos);
  }

  TEST_CASE("cli: describe aligns its table under names longer than 16 characters") {
    test::TempDir dir;
    test::write_text(dir.file("t.csv"),
                     "number_customer_service_calls,a,state,y\n1,2,x,3\n4,5,y,6\n7,8,x,10\n");
    const Outcome o = run({"describe", "--data", dir.file("t.csv")});
    INFO(o.out << o.err);
    REQUIRE(o.code == 0);
    // The role's last letter ends at the same place on every row (it ran on after long names).
    std::istringstream lines(o.out);
    std::string line;
    std::getline(lines, line);  // the file's summary
    std::vector<std::size_t> ends;
    while (std::getline(lines, line) && ends.size() < 5) {
      for (const std::string role : {"role", "input", "target"}) {
        if (const std::size_t r = line.find(" " + role); r != std::string::npos) {
          ends.push_back(r + 1 + role.size());
          break;
        }
      }
    }
    REQUIRE(ends.size() == 5);
    CHECK(std::count(ends.begin(), ends.end(), ends.front()) == 5);
    CHECK(ends.front() == std::string("number_customer_service_calls").size() + 1 + 8);
  }

  TEST_CASE("cli: describe and train name leptokurtic inputs, for which the mixture is tried") {
    test::TempDir dir;
    REQUIRE(run({"synth",
                 "--dim",
                 "4",
                 "--hidden",
                 "1",
                 "--samples",
                 "12000",
                 "--inputs",
                 "laplace",
                 "--noise",
                 "0.05",
                 "--seed",
                 "3",
                 "--out",
                 dir.file("l.csv"),
                 "--truth",
                 dir.file("t.json"),
                 "-q"})
                .code == 0);
    const Outcome d = run({"describe", "--data", dir.file("l.csv")});
    REQUIRE(d.code == 0);
    CHECK(d.out.find("(leptokurtic and symmetric): train's default --score adaptive tries the "
                     "Gaussian-mixture score as well") != std::string::npos);
    const Outcome t =
        run({"train", "--data", dir.file("l.csv"), "--hidden", "1", "--model", dir.file("m.json")});
    INFO(t.err);
    REQUIRE(t.code == 0);
    CHECK(t.err.find("over 4 columns with more than two values (leptokurtic and symmetric, as a "
                     "scale mixture of Gaussians): the Gaussian-mixture score was tried as well") !=
          std::string::npos);
    CHECK(t.err.find("1/gmm ") != std::string::npos);  // in the candidates' losses
  }

  TEST_CASE("cli: mixture inputs and --score gmm, with their flags' errors") {
    test::TempDir dir;
    const std::vector<std::string> synth = {"synth",
                                            "--dim",
                                            "4",
                                            "--hidden",
                                            "2",
                                            "--samples",
                                            "20000",
                                            "--inputs",
                                            "gmm:2",
                                            "--seed",
                                            "3",
                                            "--mixture-separation",
                                            "2.5",
                                            "--out",
                                            dir.file("g.csv"),
                                            "--truth",
                                            dir.file("t.json")};
    Outcome o = run(synth);
    INFO(o.err);
    REQUIRE(o.code == 0);
    // The summary names the law, and its tensor weights are E[σ'''] over the training rows (the
    // Gaussian closed form, printed before, is not the weight under a mixture's score).
    CHECK(o.err.find("inputs from a mixture of 2 Gaussians (separation 2.5)") != std::string::npos);
    CHECK(o.err.find("E over the training rows") != std::string::npos);
    {
      const nnlift::TwoLayerNetwork teacher = nnlift::load_model(dir.file("t.json"));
      const nnlift::Dataset rows = nnlift::read_csv(dir.file("g.csv"));
      for (Index j = 0; j < 2; ++j) {
        const Vector z = (rows.X * teacher.W1.row(j).transpose()).array() + teacher.b1(j);
        double mean = 0;
        for (Index i = 0; i < z.size(); ++i) {
          mean += nnlift::activation_derivative(nnlift::Activation::Sigmoid, 3, z(i));
        }
        std::ostringstream lambda;
        lambda << std::fixed << std::setprecision(4) << teacher.W2(0, j) * mean / 20000.0 << "\n";
        CHECK(o.err.find(lambda.str()) != std::string::npos);
      }
    }
    const std::string truth = nnlift::load_model(dir.file("t.json")).metadata_json;
    CHECK(truth.find("\"input_mixture\"") != std::string::npos);
    CHECK(truth.find("\"mixture_separation\":2.5") != std::string::npos);
    o = run({"train",
             "--data",
             dir.file("g.csv"),
             "--hidden",
             "2",
             "--score",
             "gmm",
             "--mixture-components",
             "2",
             "--mixture-covariance",
             "full",
             "--model",
             dir.file("m.json")});
    REQUIRE(o.code == 0);
    CHECK(o.err.find("input mixture (score gmm): 2 component(s), full covariance") !=
          std::string::npos);
    const std::string meta = nnlift::load_model(dir.file("m.json")).metadata_json;
    CHECK(meta.find("\"score_mixture\"") != std::string::npos);
    CHECK(meta.find("\"coordinates\":\"standardised\"") != std::string::npos);
    // Mistakes on the command line: exit 2 naming the flag, and no file written.
    struct Bad {
      std::vector<std::string> args;
      const char* says;
    };
    const std::vector<Bad> bad = {
        {{"--mixture-components", "0"}, "--mixture-components"},
        {{"--mixture-components", "two"}, "--mixture-components"},
        {{"--mixture-covariance", "spherical"}, "--mixture-covariance"},
        {{"--score", "mixture"}, "--score"},
    };
    for (const Bad& b : bad) {
      std::vector<std::string> args = {
          "train", "--data", dir.file("g.csv"), "--hidden", "2", "--model", dir.file("bad.json")};
      args.insert(args.end(), b.args.begin(), b.args.end());
      o = run(args);
      INFO(o.err);
      CHECK(o.code == 2);
      CHECK(o.err.find(b.says) != std::string::npos);
      CHECK(!std::filesystem::exists(dir.file("bad.json")));
    }
    for (const char* inputs : {"laplace:3", "gmm:", "gmm:x", "gmm:0"}) {
      std::vector<std::string> args = synth;
      args[8] = inputs;
      args[args.size() - 3] = dir.file("bad.csv");
      o = run(args);
      INFO(inputs << ": " << o.err);
      CHECK(o.code == 2);
      CHECK(o.err.find("--inputs") != std::string::npos);
      CHECK(!std::filesystem::exists(dir.file("bad.csv")));
    }
  }
}
