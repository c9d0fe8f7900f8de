// Hostile input: every item of the hardening issue, each a regression test that failed before
// its fix. The rule: a clear one-line error naming the file, a non-zero exit, no partial output,
// and nothing else on disk changes.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <doctest/doctest.h>

#include <nnlift/nnlift.hpp>

#include "cli/commands.hpp"
#include "cli_helpers.hpp"
#include "detail/io.hpp"
#include "detail/moment_kernels.hpp"
#include "detail/text.hpp"
#include "fuzz/cli_input.hpp"
#include "fuzz/train_input.hpp"
#include "test_helpers.hpp"

namespace {

using test::Outcome;
using test::run;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// `nnlift predict` with the model and data made by make_model, to `out`.
Outcome predict_to(test::TempDir& dir, const std::string& out) {
  return run(
      {"predict", "--model", dir.file("m.json"), "--data", dir.file("tr.csv"), "--out", out});
}

// A .npy file with the given header dictionary and payload.
std::string npy_bytes(const std::string& dict, const std::string& payload) {
  std::string header = dict;
  const std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xFF);
  out += static_cast<char>(header.size() >> 8);
  return out + header + payload;
}

// A small planted training set and a model trained on it, in `dir`.
void make_model(test::TempDir& dir) {
  REQUIRE(run({"synth",
               "--dim",
               "4",
               "--hidden",
               "2",
               "--samples",
               "3000",
               "--noise",
               "0.05",
               "--seed",
               "2",
               "--quiet",
               "--out",
               dir.file("tr.csv"),
               "--truth",
               dir.file("truth.json")})
              .code == 0);
  REQUIRE(run({"train",
               "--data",
               dir.file("tr.csv"),
               "--hidden",
               "2",
               "--model",
               dir.file("m.json"),
               "--quiet"})
              .code == 0);
}

// Runs `ok` in a child process whose address space may grow by at most `megabytes` beyond what
// it uses at the start; checks that the child returned true (and did not crash or abort).
template <class Fn>
void expect_in_child_under_limit(long megabytes, Fn&& ok) {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    struct rusage usage {};
    ::getrusage(RUSAGE_SELF, &usage);
    std::ifstream statm("/proc/self/statm");
    long pages = 0;
    statm >> pages;  // current virtual size in pages
    struct rlimit limit {};
    ::getrlimit(RLIMIT_AS, &limit);
    limit.rlim_cur = static_cast<rlim_t>(pages) * static_cast<rlim_t>(::sysconf(_SC_PAGESIZE)) +
                     (static_cast<rlim_t>(megabytes) << 20);
    ::setrlimit(RLIMIT_AS, &limit);
    bool result = false;
    try {
      result = ok();
    } catch (...) {
      result = false;
    }
    ::_exit(result ? 0 : 3);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

}  // namespace

TEST_SUITE("hardening") {
  TEST_CASE("fuzzing: every kept input (seeds and crashes found) is read without a crash") {
    namespace fs = std::filesystem;
    int files = 0;
    for (const char* kind : {"corpus", "regressions"}) {
      for (const char* reader : {"csv", "npy", "model"}) {
        const fs::path dir = fs::path(NNLIFT_FUZZ_DIR) / kind / reader;
        for (const auto& entry : fs::directory_iterator(dir)) {
          const std::string path = entry.path().string();
          INFO(path);
          ++files;
          try {
            if (std::string(reader) == "csv") {
              (void)nnlift::read_csv(path);
            } else if (std::string(reader) == "npy") {
              (void)nnlift::read_npy(path);
            } else {
              (void)nnlift::load_model(path);
            }
          } catch (const nnlift::IoError&) {
          } catch (const nnlift::DataError&) {
          } catch (const std::invalid_argument&) {
          }
        }
      }
    }
    // The command-line parser, with a time limit: a Boost.Program_options message with an
    // option named like one of its placeholders ("%canonical_option%") looped forever.
    for (const char* kind : {"corpus", "regressions"}) {
      for (const auto& entry : fs::directory_iterator(fs::path(NNLIFT_FUZZ_DIR) / kind / "cli")) {
        INFO(entry.path().string());
        ++files;
        const std::string bytes = test::read_text(entry.path().string());
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
          ::alarm(10);
          fuzz::parse_as_command_line(bytes);
          ::_exit(0);
        }
        int status = 0;
        ::waitpid(child, &status, 0);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
      }
    }
    // The whole tool on the kept training inputs: train, then predict and evaluate (the rules
    // are in fuzz/train_input.hpp).
    for (const char* kind : {"corpus", "regressions"}) {
      for (const auto& entry : fs::directory_iterator(fs::path(NNLIFT_FUZZ_DIR) / kind / "train")) {
        INFO(entry.path().string());
        ++files;
        CHECK(fuzz::train_on_bytes(test::read_text(entry.path().string())) == "");
      }
    }
    CHECK(files >= 16);
    const Outcome o = run({"train", "--%canonical_option%", "x"});
    CHECK(o.code == 2);
    CHECK(contains(o.err, "cannot report on"));
  }

  TEST_CASE("hardening 1, 10: .npy shapes are checked for overflow, headers parsed as dicts") {
    test::TempDir dir;
    // (4194304, 4194304, 4194304) float64: the element count overflows 64 bits; C order and
    // Fortran order (which used to crash in the reorder).
    for (const char* order : {"False", "True"}) {
      test::write_text(dir.file("big.npy"),
                       npy_bytes(std::string("{'descr': '<f8', 'fortran_order': ") + order +
                                     ", 'shape': (4194304, 4194304, 4194304), }",
                                 std::string(64, '\0')));
      Outcome o = run({"decompose",
                       "--tensor",
                       dir.file("big.npy"),
                       "--rank",
                       "1",
                       "--out",
                       dir.file("r.json")});
      CHECK(o.code == 1);
      CHECK(contains(o.err, "big.npy: truncated .npy data"));
    }
    // 'shape' inside another key's string value is not the shape.
    test::write_text(dir.file("trick.npy"),
                     npy_bytes("{'descr': '<f8', 'fortran_order': False, 'x': \"'shape': (1, 1, "
                               "1)\", 'shape': (2, 2, 2), }",
                               std::string(64, '\0')));
    CHECK_THROWS_WITH_AS(nnlift::read_npy(dir.file("trick.npy")),
                         doctest::Contains("unexpected or repeated key 'x'"),
                         nnlift::IoError);
    // Trailing bytes after the data.
    test::write_text(dir.file("long.npy"),
                     npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
                               std::string(24, '\0')));
    CHECK_THROWS_WITH_AS(nnlift::read_npy(dir.file("long.npy")),
                         doctest::Contains("trailing bytes"),
                         nnlift::IoError);
    CHECK(dir.list() == std::vector<std::string>{"big.npy", "long.npy", "trick.npy"});
  }

  TEST_CASE("hardening 2: deeply nested JSON in a model file is refused without recursion") {
    test::TempDir dir;
    std::string text = R"({"format": "nnlift-model", "version": 1, "metadata": )";
    text += std::string(100000, '[') + std::string(100000, ']') + "}";
    test::write_text(dir.file("deep.json"), text);
    CHECK_THROWS_WITH_AS(nnlift::load_model(dir.file("deep.json")),
                         doctest::Contains("nested more than 64 levels"),
                         nnlift::IoError);
    // Long values are quoted briefly, never dumped whole.
    test::write_text(dir.file("long.json"),
                     R"({"format": ")" + std::string(100000, 'x') + R"(", "version": 1})");
    try {
      (void)nnlift::load_model(dir.file("long.json"));
      FAIL("no error");
    } catch (const nnlift::IoError& e) {
      CHECK(std::string(e.what()).size() < 300);
    }
  }

  TEST_CASE("hardening 3: rows too short for the header fail before anything is allocated") {
    test::TempDir dir;
    std::string text;
    for (int c = 0; c < 600; ++c) {
      text += (c ? ",c" : "c") + std::to_string(c);
    }
    text += "\n";
    for (int r = 0; r < 200000; ++r) {
      text += "1\n";
    }
    test::write_text(dir.file("wide.csv"), text);
    const std::string expected = "wide.csv:2:2: expected 600 fields, found 1";
    CHECK_THROWS_WITH_AS(nnlift::read_csv(dir.file("wide.csv")),
                         doctest::Contains(expected.c_str()),
                         nnlift::IoError);
#if !defined(__SANITIZE_ADDRESS__)
    // Rows × header width would be 960 MB: under a 400 MB address-space budget the error must
    // still be this one (not an allocation failure, nor an abort inside a parallel region).
    expect_in_child_under_limit(400, [&] {
      nnlift::CsvOptions serial;  // a forked child runs no OpenMP team of the parent's size
      serial.num_threads = 1;
      try {
        (void)nnlift::read_csv(dir.file("wide.csv"), serial);
      } catch (const nnlift::IoError& e) {
        return std::string(e.what()).find(expected) != std::string::npos;
      }
      return false;
    });
#endif
  }

  TEST_CASE("hardening 4: a file truncated while it is read is an error, not SIGBUS") {
    test::TempDir dir;
    std::string text = "a,b,y\n";
    for (int i = 0; i < 100000; ++i) {
      text += "1,2,3\n";
    }
    test::write_text(dir.file("t.csv"), text);
    // Truncate the file after it was opened, as another process could: the reader's next read
    // past the new end is an error.
    const nnlift::detail::ReadOnlyFile file(dir.file("t.csv"));
    std::string head(1000, '\0');
    file.read_at(0, head.size(), head.data());
    REQUIRE(::truncate(dir.file("t.csv").c_str(), 70000) == 0);
    std::string rest(static_cast<std::size_t>(file.size()) - 1000, '\0');
    CHECK_THROWS_WITH_AS(file.read_at(1000, rest.size(), rest.data()),
                         doctest::Contains("t.csv: file changed while reading"),
                         nnlift::IoError);
    CHECK_THROWS_WITH_AS(
        file.check_unchanged(), doctest::Contains("file changed while reading"), nnlift::IoError);
    // Read again afterwards, the truncated file is what it now is: its cut last row is named.
    CHECK_THROWS_WITH_AS(nnlift::read_csv(dir.file("t.csv")),
                         doctest::Contains("t.csv:11667:5: field 3 ('y') is empty"),
                         nnlift::IoError);
  }

  TEST_CASE("hardening 5: an output that is an input, or another output, is refused") {
    test::TempDir dir;
    make_model(dir);
    const std::string data = test::read_text(dir.file("tr.csv"));
    const std::string model = test::read_text(dir.file("m.json"));
    Outcome o = run(
        {"train", "--data", dir.file("tr.csv"), "--hidden", "2", "--model", dir.file("tr.csv")});
    CHECK(o.code == 1);
    CHECK(contains(o.err, "is the same file as the input"));
    // The same file under another name (a hard link) is caught by device and inode.
    REQUIRE(::link(dir.file("tr.csv").c_str(), dir.file("alias.csv").c_str()) == 0);
    o = run(
        {"train", "--data", dir.file("tr.csv"), "--hidden", "2", "--model", dir.file("alias.csv")});
    CHECK(o.code == 1);
    o = predict_to(dir, dir.file("m.json"));
    CHECK(o.code == 1);
    o = run({"synth", "--out", dir.file("a.csv"), "--truth", dir.file("a.csv")});
    CHECK(o.code == 1);
    CHECK(contains(o.err, "is the same file as the output"));
    o = run({"synth",
             "--out",
             dir.file("a.csv"),
             "--truth",
             dir.file("t.json"),
             "--test-samples",
             "10",
             "--test-out",
             dir.file("./a.csv")});
    CHECK(o.code == 1);
    CHECK(test::read_text(dir.file("tr.csv")) == data);
    CHECK(test::read_text(dir.file("m.json")) == model);
    const std::vector<std::string> files = dir.list();
    CHECK(std::find(files.begin(), files.end(), "a.csv") == files.end());
  }

  TEST_CASE("hardening 6, 8: devices and symlinks are written through, never replaced") {
    test::TempDir dir;
    make_model(dir);
    // A FIFO (as /dev/stdout or /dev/null would be, without touching the system's nodes): the
    // predictions go through it to its reader, and it stays a FIFO.
    REQUIRE(::mkfifo(dir.file("pipe").c_str(), 0600) == 0);
    std::string received;
    std::thread reader([&] { received = test::read_text(dir.file("pipe")); });
    Outcome o = predict_to(dir, dir.file("pipe"));
    reader.join();
    CHECK(o.code == 0);
    CHECK(received.rfind("prediction\n", 0) == 0);
    struct stat info {};
    REQUIRE(::lstat(dir.file("pipe").c_str(), &info) == 0);
    CHECK(S_ISFIFO(info.st_mode));
    // A symlink: its target receives the file, the link stays a link.
    test::write_text(dir.file("target.csv"), "old\n");
    REQUIRE(::symlink(dir.file("target.csv").c_str(), dir.file("link.csv").c_str()) == 0);
    o = predict_to(dir, dir.file("link.csv"));
    CHECK(o.code == 0);
    REQUIRE(::lstat(dir.file("link.csv").c_str(), &info) == 0);
    CHECK(S_ISLNK(info.st_mode));
    CHECK(test::read_text(dir.file("target.csv")).rfind("prediction\n", 0) == 0);
    // A stale temporary of a killed run does not get in the way, and says what it is.
    test::write_text(dir.file("p.csv.nnlift-partial-1"), "half");
    o = predict_to(dir, dir.file("p.csv"));
    CHECK(o.code == 0);
  }

  TEST_CASE("hardening 8: past a file-size limit the write fails cleanly, leaving nothing") {
    test::TempDir dir;
    make_model(dir);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      std::signal(SIGXFSZ, SIG_IGN);  // as nnlift's main() does
      struct rlimit limit {};
      limit.rlim_cur = limit.rlim_max = 4096;
      ::setrlimit(RLIMIT_FSIZE, &limit);
      // One thread: a forked child must not start an OpenMP team (the parent's pool is gone).
      const Outcome o = run({"predict",
                             "--model",
                             dir.file("m.json"),
                             "--data",
                             dir.file("tr.csv"),
                             "--out",
                             dir.file("big.csv"),
                             "--threads",
                             "1"});
      ::_exit(o.code == 1 && contains(o.err, "big.csv: write failed") ? 0 : 3);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    const std::vector<std::string> files = dir.list();
    CHECK(std::find(files.begin(), files.end(), "big.csv") == files.end());
    for (const std::string& f : files) {
      CHECK(f.find("nnlift-partial") == std::string::npos);
    }
  }

  TEST_CASE("hardening 7: outputs are checked before the work starts") {
    test::TempDir dir;
    make_model(dir);
    Outcome o = run({"train",
                     "--data",
                     dir.file("tr.csv"),
                     "--hidden",
                     "2",
                     "--model",
                     dir.file("missing/m.json")});
    CHECK(o.code == 1);
    CHECK(contains(o.err, "directory '" + dir.file("missing") + "' does not exist"));
    CHECK(!contains(o.err, "stage"));  // nothing was trained
    o = run({"train", "--data", dir.file("tr.csv"), "--hidden", "2", "--model", dir.path()});
    CHECK(o.code == 1);
    CHECK(contains(o.err, "is a directory"));
  }

  TEST_CASE("hardening 9: class labels must match the output layer") {
    test::TempDir dir;
    nnlift::TwoLayerNetwork net;
    net.task = nnlift::Task::Classification;
    net.link = nnlift::OutputLink::Softmax;
    net.inputs = {"a", "b"};
    net.target = "y";
    net.W1 = Matrix::Identity(2, 2);
    net.b1 = Vector::Zero(2);
    net.W2 = Matrix::Identity(3, 2);
    net.b2 = Vector::Zero(3);
    net.classes = {1, 2};  // one short
    CHECK_THROWS_WITH_AS(nnlift::validate(net),
                         doctest::Contains("needs 3 class labels; 'classes' has 2"),
                         std::invalid_argument);
    net.classes = {1, 2, 3};
    nnlift::save_model(dir.file("s.json"), net);
    std::string text = test::read_text(dir.file("s.json"));
    const std::size_t at = text.find("\"classes\"");
    REQUIRE(at != std::string::npos);
    text.replace(at, 9, "\"labels\"");  // the classes are gone
    test::write_text(dir.file("s.json"), text);
    CHECK_THROWS_WITH_AS(
        nnlift::load_model(dir.file("s.json")), doctest::Contains("s.json"), nnlift::IoError);
    net.link = nnlift::OutputLink::Logistic;
    net.W2 = Matrix::Ones(1, 2);
    net.b2 = Vector::Zero(1);
    CHECK_THROWS_WITH_AS(
        nnlift::validate(net), doctest::Contains("exactly 2 class labels"), std::invalid_argument);
  }

  TEST_CASE("hardening 11: a failed write to standard output is an error") {
    std::ostringstream err;
    std::ostream broken(nullptr);  // every write fails
    CHECK(nnlift::cli::run({"--help"}, broken, err) == 1);
    CHECK(contains(err.str(), "writing to standard output failed"));
  }

  TEST_CASE("hardening 12: numeric options are validated up front, with the range") {
    test::TempDir dir;
    make_model(dir);
    const std::vector<std::string> train = {
        "train", "--data", dir.file("tr.csv"), "--hidden", "2", "--model", dir.file("x.json")};
    auto with = [&](std::vector<std::string> extra) {
      std::vector<std::string> args = train;
      args.insert(args.end(), extra.begin(), extra.end());
      return run(args);
    };
    Outcome o = with({"--seed", "-1"});
    CHECK(o.code == 2);
    CHECK(contains(o.err, "--seed = -1; must be an integer in [0, 18446744073709551615]"));
    o = with({"--ridge", "inf"});
    CHECK(o.code == 2);
    CHECK(contains(o.err, "--ridge = inf; must be finite"));
    o = with({"--ridge", "1e-3x"});
    CHECK(o.code == 2);
    CHECK(contains(o.err, "--ridge: '1e-3x' is neither auto nor a number"));
    o = with({"--validation", "1"});
    CHECK(o.code == 2);
    CHECK(contains(o.err, "--validation = 1; must be in [0, 1)"));
    o = with({"--weight-decay", "-1"});
    CHECK(o.code == 2);
    CHECK(contains(o.err, "--weight-decay = -1"));
    o = with({"--linear-term", "yes"});
    CHECK(o.code == 2);
    CHECK(contains(o.err, "--linear-term: 'yes'; expected auto, on or off"));
    o = with({"--eigenvalue-floor", "1"});
    CHECK(o.code == 2);
    CHECK(contains(o.err, "--eigenvalue-floor = 1; must be in [0, 1)"));
    o = with({"--refine-all-rows", "yes"});
    CHECK(o.code == 2);
    CHECK(contains(o.err, "--refine-all-rows: 'yes'; expected on or off"));
    o = with({"--clamp-inputs", "maybe"});
    CHECK(o.code == 2);
    CHECK(contains(o.err, "--clamp-inputs: 'maybe'; expected on or off"));
    o = with({"--refine-patience", "0"});
    CHECK(o.code == 2);
    CHECK(contains(o.err, "--refine-patience = 0; must be > 0"));
    o = with({"--score", "kde"});
    CHECK(o.code == 2);
    CHECK(contains(o.err, "--score"));
    o = with({"--missing", "sometimes"});
    CHECK(o.code == 2);
    CHECK(contains(o.err, "--missing"));
    o = with({"--threads", "10000"});
    CHECK(o.code == 2);
    CHECK(contains(o.err, "--threads = 10000; must be in [0, 1024]"));
    o = run(
        {"train", "--data", dir.file("tr.csv"), "--hidden", "-1", "--model", dir.file("x.json")});
    CHECK(o.code == 2);
    CHECK(contains(o.err, "--hidden: '-1'; expected auto or an integer >= 1"));
    CHECK(!contains(o.err, "TrainOptions"));
    // Refused before the (missing) tensor file is even opened.
    for (const char* tolerance : {"nan", "-1"}) {
      o = run({"decompose",
               "--tensor",
               dir.file("t.npy"),
               "--rank",
               "1",
               "--out",
               dir.file("r.json"),
               "--symmetry-tol",
               tolerance});
      CHECK(o.code == 2);
      CHECK(contains(o.err, std::string("--symmetry-tol = ") + tolerance));
    }
  }

  TEST_CASE("hardening 13: tensors far from unit scale are decomposed, not misreported") {
    const Matrix V = test::random_orthonormal(4, 2, 3);
    for (double scale : {1e-300, 1e160}) {
      const Vector lambda = (Vector(2) << 2.0 * scale, 1.0 * scale).finished();
      const nnlift::DenseSymmetricTensor3 T =
          nnlift::DenseSymmetricTensor3::from_factors(lambda, V);
      nnlift::DecomposeOptions o;
      o.rank = 2;
      const nnlift::DecomposeResult r = nnlift::decompose(T, o);
      INFO("scale " << scale);
      CHECK(r.status == nnlift::Status::Success);
      CHECK(test::max_column_error(V, r.components) < 1e-8);
      CHECK(std::abs(r.lambda(0) / (2.0 * scale) - 1) < 1e-8);
    }
  }

  TEST_CASE("hardening 14: inputs whose squares overflow are named") {
    nnlift::Dataset data;
    data.feature_names = {"a", "huge", "c"};
    data.target_name = "y";
    nnlift::detail::Rng rng(1);
    data.X = rng.normal_matrix(500, 3);
    data.X.col(1) *= 1e200;
    data.y = rng.normal_vector(500);
    nnlift::TrainOptions o;
    o.hidden = 1;
    CHECK_THROWS_WITH_AS(
        nnlift::train(data, o),
        doctest::Contains("overflows (values too large to square in column(s) huge)"),
        nnlift::DataError);
    // From the command line the message names the file too (it named only the column).
    test::TempDir dir;
    {
      std::ofstream f(dir.file("huge.csv"));
      f << "a,huge,y\n";
      for (Eigen::Index i = 0; i < 50; ++i) {
        f << data.X(i, 0) << "," << data.X(i, 1) << "," << data.y(i) << "\n";
      }
    }
    const Outcome cli = run({"train",
                             "--data",
                             dir.file("huge.csv"),
                             "--hidden",
                             "1",
                             "--model",
                             dir.file("m.json"),
                             "-q"});
    CHECK(cli.code == 1);
    CHECK(contains(cli.err, "error: " + dir.file("huge.csv") + ": the input covariance overflows"));
    CHECK(std::count(cli.err.begin(), cli.err.end(), '\n') == 1);
    CHECK_FALSE(std::filesystem::exists(dir.file("m.json")));
  }

  TEST_CASE("hardening 15: endless streams and FIFOs are refused, not read") {
    test::TempDir dir;
    Outcome o =
        run({"decompose", "--tensor", "/dev/zero", "--rank", "1", "--out", dir.file("r.json")});
    CHECK(o.code == 1);
    CHECK(contains(o.err, "/dev/zero: is a device"));
    REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
    CHECK_THROWS_WITH_AS(nnlift::load_model(dir.file("fifo")),  // no writer: must not hang
                         doctest::Contains("is a FIFO"),
                         nnlift::IoError);
    CHECK_THROWS_WITH_AS(
        nnlift::load_model(dir.path()), doctest::Contains("is a directory"), nnlift::IoError);
  }

  TEST_CASE("hardening 16: predictions need memory for a block of rows, not for all of them") {
#if defined(__SANITIZE_ADDRESS__)
    MESSAGE("skipped under AddressSanitizer (it reserves more address space than the limit)");
#else
    // 500 rows through 200,000 units: 800 MB at once before, about 32 MB in blocks now. A child
    // process under a 600 MB address-space budget must finish.
    nnlift::TwoLayerNetwork net;
    net.inputs = {"a", "b"};
    net.target = "y";
    net.W1 = Matrix::Constant(200000, 2, 0.001);
    net.b1 = Vector::Zero(200000);
    net.W2 = Matrix::Constant(1, 200000, 1e-5);
    net.b2 = Vector::Zero(1);
    const Matrix X = Matrix::Ones(500, 2);
    expect_in_child_under_limit(600, [&] { return nnlift::predict(net, X).allFinite(); });
#endif
  }

  TEST_CASE("hardening 17, 18, 19: data problems exit 1 and say what the file looks like") {
    test::TempDir dir;
    test::write_text(dir.file("tabs.csv"), "a\tb\ty\n1\t2\t3\n");
    Outcome o = run({"describe", "--data", dir.file("tabs.csv")});
    CHECK(o.code == 1);
    CHECK(contains(o.err, "looks tab-separated"));
    test::write_text(dir.file("semi.csv"), "a;b;y\n1;2;3\n");
    o = run({"describe", "--data", dir.file("semi.csv")});
    CHECK(contains(o.err, "looks semicolon-separated"));
    test::write_text(dir.file("utf16.csv"),
                     std::string("\xFF\xFE"
                                 "a\0,\0y\0",
                                 8));
    o = run({"describe", "--data", dir.file("utf16.csv")});
    CHECK(o.code == 1);
    CHECK(contains(o.err, "is UTF-16 text"));
    test::write_text(dir.file("bin.csv"), std::string("abc\0def", 7));
    o = run({"describe", "--data", dir.file("bin.csv")});
    CHECK(contains(o.err, "looks like a binary file"));
    // A .npy file is read as a table (columns "1", "2", ... without a sidecar), but .npy bytes
    // under another name are named as such.
    nnlift::write_npy(dir.file("x.npy"), nnlift::to_npy(Matrix::Ones(3, 3)));
    o = run({"describe", "--data", dir.file("x.npy")});
    CHECK(o.code == 0);
    CHECK(contains(o.out, "3 rows, 2 inputs, target '3'"));
    nnlift::write_npy(dir.file("x.csv"), nnlift::to_npy(Matrix::Ones(3, 3)));
    o = run({"describe", "--data", dir.file("x.csv")});
    CHECK(o.code == 1);
    CHECK(contains(o.err, "is a .npy array file, not CSV text"));
    // CR-only line endings are read.
    test::write_text(dir.file("cr.csv"), "a,b,y\r1,2,3\r4,5,7\r2,2,2\r");
    o = run({"describe", "--data", dir.file("cr.csv")});
    CHECK(o.code == 0);
    CHECK(contains(o.out, "3 rows"));
    // A quoted field with a line break: named as unsupported.
    test::write_text(dir.file("quote.csv"), "a,y\n\"1\n\",2\n");
    o = run({"describe", "--data", dir.file("quote.csv")});
    CHECK(o.code == 1);
    CHECK(contains(o.err, "quoted fields with line breaks are not supported"));
    // Too few rows to train: data, not usage.
    test::write_text(dir.file("few.csv"), "a,b,y\n1,2,3\n4,5,7\n");
    o = run(
        {"train", "--data", dir.file("few.csv"), "--hidden", "1", "--model", dir.file("m.json")});
    CHECK(o.code == 1);
    CHECK(contains(o.err, "too few"));
    // A zero tensor: data, not usage.
    nnlift::NpyArray zero;
    zero.shape = {2, 2, 2};
    zero.data.assign(8, 0.0);
    nnlift::write_npy(dir.file("zero.npy"), zero);
    o = run({"decompose",
             "--tensor",
             dir.file("zero.npy"),
             "--rank",
             "1",
             "--out",
             dir.file("r.json")});
    CHECK(o.code == 1);
    CHECK(contains(o.err, "zero"));
    // A million column names are not listed in a message.
    std::string header;
    for (int c = 0; c < 100000; ++c) {
      header += "c" + std::to_string(c) + ",";
    }
    test::write_text(dir.file("wide.csv"), header + "y\n" + std::string(100000, '1') + "\n");
    o = run({"describe", "--data", dir.file("wide.csv"), "--target", "nope"});
    CHECK(o.code == 1);
    CHECK(o.err.size() < 1000);
  }

  TEST_CASE("hardening 20: unused columns are named; a two-valued integer target is classes") {
    test::TempDir dir;
    nnlift::detail::Rng rng(3);
    std::string text = "a,b,c,extra,y\n";
    for (int i = 0; i < 3000; ++i) {
      const double a = rng.normal(), b = rng.normal(), c = rng.normal();
      text += std::to_string(a) + "," + std::to_string(b) + "," + std::to_string(c) + ",0," +
              (a + 0.5 * b > 0 ? "1" : "-1") + "\n";
    }
    test::write_text(dir.file("pm.csv"), text);
    Outcome o = run({"train",
                     "--data",
                     dir.file("pm.csv"),
                     "--drop",
                     "extra",
                     "--hidden",
                     "2",
                     "--model",
                     dir.file("m.json")});
    INFO(o.err);
    REQUIRE(o.code == 0);
    CHECK(contains(o.err, "(classification: two-valued integer target {-1, 1}"));
    o = run({"predict",
             "--model",
             dir.file("m.json"),
             "--data",
             dir.file("pm.csv"),
             "--out",
             dir.file("p.csv")});
    CHECK(o.code == 0);
    CHECK(
        contains(o.err, "columns of " + dir.file("pm.csv") + " the model does not use: extra, y"));
  }

  TEST_CASE("hardening 21: inputs too wide for a d x d covariance in memory are refused up front") {
    // Regression: 30,000 columns on 6 rows ran for 15 s to a bare "out of memory" (with 8 GB of
    // address space), and with more columns the d x d sums grew until the kernel killed the
    // process. 200,000 columns need about 2.9 TB: refused before any d x d matrix, naming the
    // count, exit 1.
    test::TempDir dir;
    const int d = 200000;
    std::string text;
    for (int j = 0; j < d; ++j) {
      text += "c" + std::to_string(j) + (j + 1 < d ? "," : "\n");
    }
    for (int i = 0; i < 5; ++i) {
      for (int j = 0; j < d; ++j) {
        text += std::to_string((i * 7 + j) % 10) + (j + 1 < d ? "," : "\n");
      }
    }
    test::write_text(dir.file("wide.csv"), text);
    const Outcome o = run(
        {"train", "--data", dir.file("wide.csv"), "--hidden", "2", "--model", dir.file("m.json")});
    INFO(o.err);
    CHECK(o.code == 1);
    CHECK(contains(o.err,
                   "error: " + dir.file("wide.csv") +
                       ": 199999 input columns: their d x d covariance and whitening need"));
    CHECK(!std::filesystem::exists(dir.file("m.json")));
    // The check itself: a few hundred columns pass.
    CHECK_NOTHROW(
        nnlift::detail::require_room_for_covariance(100000, 300, 0, nnlift::ExecutionContext(2)));
    CHECK_THROWS_AS(
        nnlift::detail::require_room_for_covariance(10, 1000000, 1, nnlift::ExecutionContext(2)),
        nnlift::DataError);
  }

  TEST_CASE("hardening 22: a name or value of megabytes is cut short in every diagnostic") {
    // Regression: a 20 MB category was printed whole in the collinearity warning, and a 5 MB
    // column name in describe's table, train's summary and predict's "no column named" error.
    test::TempDir dir;
    const std::string huge(1000000, 'n');
    std::string text = "a," + huge + ",y\n";
    std::string field = "a,b,y\n1," + huge + ",1\n";
    for (int i = 0; i < 20; ++i) {
      text +=
          std::to_string(i) + "," + std::to_string(i * i % 7) + "," + std::to_string(i % 3) + "\n";
      field +=
          std::to_string(i) + "," + std::to_string(i % 10) + "," + std::to_string(i % 4) + "\n";
    }
    test::write_text(dir.file("name.csv"), text);
    test::write_text(dir.file("field.csv"), field);
    test::write_text(dir.file("tiny.csv"), "a,b,y\n1,2,3\n");
    const std::vector<std::vector<std::string>> commands = {
        {"train", "--data", dir.file("name.csv"), "--hidden", "1", "--model", dir.file("n.json")},
        {"describe", "--data", dir.file("name.csv")},
        {"predict", "--model", dir.file("n.json"), "--data", dir.file("tiny.csv")},
        {"train", "--data", dir.file("field.csv"), "--hidden", "1", "--model", dir.file("f.json")},
        {"describe", "--data", dir.file("field.csv")}};
    for (const std::vector<std::string>& args : commands) {
      const Outcome o = run(args);
      INFO(args[0] << " " << args[2] << ": exit " << o.code << ", " << o.err.size() << " + "
                   << o.out.size() << " characters");
      CHECK(o.err.size() + o.out.size() < 20000);
    }
    CHECK(nnlift::detail::clamp_message("short") == "short");
    const std::string clamped = nnlift::detail::clamp_message(std::string(10000, 'x') + "end", 400);
    CHECK(clamped.size() < 500);
    CHECK(clamped.find("characters left out") != std::string::npos);
    CHECK(clamped.substr(clamped.size() - 3) == "end");
  }
}
