// SPDX-License-Identifier: MIT
#include <limits>

#include <doctest/doctest.h>

#include <nnlift/model.hpp>

#include "test_helpers.hpp"

using nnlift::TwoLayerNetwork;

namespace {

TwoLayerNetwork small_network() {
  TwoLayerNetwork net;
  net.activation = nnlift::Activation::Tanh;
  net.inputs = {"a", "b", "c"};
  net.target = "y";
  nnlift::detail::Rng rng(3);
  net.W1 = rng.normal_matrix(2, 3);
  net.b1 = rng.normal_vector(2);
  net.W2 = rng.normal_matrix(1, 2);
  net.b2 = rng.normal_vector(1);
  net.W1(0, 0) = 0.1;  // a value with no short binary expansion
  net.metadata_json = R"({"seed": 4, "note": "test"})";
  return net;
}

}  // namespace

TEST_SUITE("model") {
  TEST_CASE("model: prediction is W2 act(W1 x + b1) + b2 in the original coordinates") {
    const TwoLayerNetwork net = small_network();
    const Matrix X = (Matrix(2, 3) << 0.5, -1, 2, 0, 0.25, -0.75).finished();
    const Matrix p = nnlift::predict(net, X);
    for (Index i = 0; i < 2; ++i) {
      double expected = net.b2(0);
      for (Index j = 0; j < 2; ++j) {
        expected += net.W2(0, j) * std::tanh(net.W1.row(j).dot(X.row(i)) + net.b1(j));
      }
      CHECK(std::abs(p(i, 0) - expected) < 1e-14);
    }
    CHECK_THROWS_WITH_AS(nnlift::predict(net, Matrix::Zero(1, 2)),
                         doctest::Contains("the model has 3 inputs"),
                         std::invalid_argument);
  }

  TEST_CASE("model: save then load is exact, and predictions match bit for bit") {
    test::TempDir dir;
    const std::string path = dir.file("m.json");
    const TwoLayerNetwork net = small_network();
    nnlift::save_model(path, net);
    CHECK(dir.list() == std::vector<std::string>{"m.json"});  // no temporary left behind
    const TwoLayerNetwork back = nnlift::load_model(path);
    CHECK((back.W1.array() == net.W1.array()).all());
    CHECK((back.b1.array() == net.b1.array()).all());
    CHECK((back.W2.array() == net.W2.array()).all());
    CHECK((back.b2.array() == net.b2.array()).all());
    CHECK(back.inputs == net.inputs);
    CHECK(back.activation == net.activation);
    CHECK(back.metadata_json.find("\"note\":\"test\"") != std::string::npos);
    const Matrix X = Matrix::Constant(4, 3, 0.3);
    CHECK((nnlift::predict(back, X).array() == nnlift::predict(net, X).array()).all());
    const std::string text = test::read_text(path);
    CHECK(text.find("\"format\": \"nnlift-model\"") != std::string::npos);
    CHECK(text.find("\"version\": 2") != std::string::npos);
  }

  TEST_CASE("model: several outputs with softmax round-trip") {
    test::TempDir dir;
    TwoLayerNetwork net = small_network();
    net.task = nnlift::Task::Classification;
    net.link = nnlift::OutputLink::Softmax;
    net.W2 = Matrix::Constant(3, 2, 0.5);
    net.W2(1, 1) = -1;
    net.b2 = Vector::Constant(3, 0.1);
    net.classes = {0, 1, 2};
    nnlift::save_model(dir.file("s.json"), net);
    const TwoLayerNetwork back = nnlift::load_model(dir.file("s.json"));
    CHECK(back.W2 == net.W2);
    CHECK(back.classes == net.classes);
    const Matrix p = nnlift::predict(back, Matrix::Ones(2, 3));
    CHECK(std::abs(p.row(0).sum() - 1.0) < 1e-15);
  }

  TEST_CASE("model: inputs are clamped to the stored training range, and the range round-trips") {
    test::TempDir dir;
    TwoLayerNetwork net = small_network();
    net.C = (Matrix(1, 3) << 2.0, -1.0, 0.5).finished();  // the linear term extrapolates most
    const Matrix inside = (Matrix(2, 3) << 0.5, -1, 2, 0, 0.25, -0.75).finished();
    const Matrix beyond = (Matrix(2, 3) << 40, -1, 2, 0, -9, 75).finished();
    const Matrix edge = (Matrix(2, 3) << 1, -1, 2, 0, -2, 3).finished();
    const TwoLayerNetwork free = net;  // no range
    const Matrix unclamped = nnlift::predict(free, beyond);
    net.input_low = (Vector(3) << -1, -2, -3).finished();
    net.input_high = (Vector(3) << 1, 2, 3).finished();
    // Rows within the range: the same bits; beyond it: as at its edge.
    CHECK((nnlift::predict(net, inside).array() == nnlift::predict(free, inside).array()).all());
    CHECK((nnlift::predict(net, beyond).array() == nnlift::predict(net, edge).array()).all());
    CHECK((nnlift::predict(net, beyond).array() != unclamped.array()).all());
    CHECK((nnlift::hidden_layer(net, beyond).array() == nnlift::hidden_layer(net, edge).array())
              .all());
    nnlift::save_model(dir.file("r.json"), net);
    CHECK(test::read_text(dir.file("r.json")).find("\"input_range\"") != std::string::npos);
    const TwoLayerNetwork back = nnlift::load_model(dir.file("r.json"));
    CHECK(back.input_low == net.input_low);
    CHECK(back.input_high == net.input_high);
    CHECK((nnlift::predict(back, beyond).array() == nnlift::predict(net, edge).array()).all());
    // No range (older files, --clamp-inputs off): nothing written, nothing clamped.
    nnlift::save_model(dir.file("n.json"), small_network());
    CHECK(test::read_text(dir.file("n.json")).find("input_range") == std::string::npos);
    CHECK(nnlift::load_model(dir.file("n.json")).input_low.size() == 0);
    // A malformed range is refused, naming it.
    TwoLayerNetwork bad = net;
    bad.input_low(1) = 5;  // above its high
    CHECK_THROWS_WITH_AS(nnlift::validate(bad),
                         doctest::Contains("input range of input 2 ('b')"),
                         std::invalid_argument);
    bad = net;
    bad.input_high.resize(2);
    CHECK_THROWS_WITH_AS(
        nnlift::validate(bad), doctest::Contains("2 high values"), std::invalid_argument);
    bad = net;
    bad.input_high(0) = std::numeric_limits<double>::infinity();
    CHECK_THROWS_AS(nnlift::validate(bad), std::invalid_argument);
    std::string text = test::read_text(dir.file("r.json"));
    const std::size_t at = text.find("\"low\"");
    REQUIRE(at != std::string::npos);
    test::write_text(dir.file("bad.json"), text.replace(at, 5, "\"lo\""));
    CHECK_THROWS_WITH_AS(nnlift::load_model(dir.file("bad.json")),
                         doctest::Contains("input_range.low"),
                         nnlift::IoError);
  }

  TEST_CASE("model: malformed files are refused with the key at fault") {
    test::TempDir dir;
    const std::string good_path = dir.file("good.json");
    nnlift::save_model(good_path, small_network());
    const std::string good = test::read_text(good_path);
    auto expect = [&](const std::string& name, const std::string& text, const char* fragment) {
      const std::string path = dir.file(name);
      test::write_text(path, text);
      CAPTURE(name);
      CHECK_THROWS_WITH_AS(nnlift::load_model(path), doctest::Contains(fragment), nnlift::IoError);
    };
    auto replaced = [&](const std::string& from, const std::string& to) {
      std::string s = good;
      const std::size_t at = s.find(from);
      REQUIRE(at != std::string::npos);
      return s.replace(at, from.size(), to);
    };
    CHECK_THROWS_WITH_AS(nnlift::load_model(dir.file("none.json")),
                         doctest::Contains("cannot open"),
                         nnlift::IoError);
    expect("syntax.json", "{\"format\": ", "not valid JSON");
    expect("format.json", replaced("\"nnlift-model\"", "\"other\""), "'format'");
    expect("version.json", replaced("\"version\": 2", "\"version\": 3"), "unsupported 'version' 3");
    expect(
        "version0.json", replaced("\"version\": 2", "\"version\": 0"), "unsupported 'version' 0");
    expect("nohidden.json", replaced("\"hidden\"", "\"hiddn\""), "missing key 'hidden'");
    expect("act.json", replaced("\"tanh\"", "\"gelu\""), "unknown activation 'gelu'");
    expect("bias.json", replaced("\"bias\": [", "\"bias\": [1.0, "), "b1 has 3 entries");
    expect("text.json", replaced("\"inputs\": [", "\"inputs\": [\"d\", "), "4 input names");
    TwoLayerNetwork broken = small_network();
    broken.b1.resize(5);
    CHECK_THROWS_WITH_AS(nnlift::save_model(dir.file("broken.json"), broken),
                         doctest::Contains("b1 has 5 entries"),
                         std::invalid_argument);
    CHECK_THROWS_AS(nnlift::save_model(dir.file("no/dir/m.json"), small_network()),
                    nnlift::IoError);
  }
}
