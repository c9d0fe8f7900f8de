// The two-layer network: prediction, validation and the JSON model file.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <ostream>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include <nnlift/model.hpp>

#include "detail/glm.hpp"
#include "detail/io.hpp"
#include "detail/names.hpp"
#include "detail/text.hpp"

namespace nnlift {
namespace {

using nlohmann::json;

constexpr int kFormatVersion = 2;

[[noreturn]] void bad_model(const std::string& path, const std::string& what) {
  throw IoError(path + ": invalid model file: " + what);
}

// A JSON value for a message: short scalars as they are, anything else by its kind.
std::string brief(const json& value) {
  if (value.is_object()) {
    return "an object";
  }
  if (value.is_array()) {
    return "an array";
  }
  return detail::excerpt(value.dump());
}

// Model files nest a few levels deep; this bounds what a hostile file can make the parser (and
// the recursive dump of the metadata) do.
constexpr int kMaxDepth = 64;

const json& require_key(const std::string& path,
                        const json& object,
                        const char* key,
                        const std::string& where) {
  if (!object.is_object() || !object.contains(key)) {
    bad_model(path, "missing key '" + where + key + "'");
  }
  return object.at(key);
}

double number_at(const std::string& path, const json& value, const std::string& where) {
  if (!value.is_number()) {
    bad_model(path, "'" + where + "' must be a number, found " + brief(value));
  }
  const double x = value.get<double>();
  if (!std::isfinite(x)) {
    bad_model(path, "'" + where + "' is not finite");
  }
  return x;
}

Vector vector_at(const std::string& path, const json& value, const std::string& where) {
  if (!value.is_array()) {
    bad_model(path, "'" + where + "' must be an array of numbers");
  }
  Vector v(static_cast<Index>(value.size()));
  for (std::size_t i = 0; i < value.size(); ++i) {
    v(static_cast<Index>(i)) = number_at(path, value[i], where + "[" + std::to_string(i) + "]");
  }
  return v;
}

Matrix matrix_at(const std::string& path, const json& value, const std::string& where) {
  if (!value.is_array() || value.empty()) {
    bad_model(path, "'" + where + "' must be a non-empty array of arrays");
  }
  const std::size_t cols = value[0].is_array() ? value[0].size() : 0;
  Matrix m(static_cast<Index>(value.size()), static_cast<Index>(cols));
  for (std::size_t i = 0; i < value.size(); ++i) {
    const std::string row_where = where + "[" + std::to_string(i) + "]";
    const Vector row = vector_at(path, value[i], row_where);
    if (static_cast<std::size_t>(row.size()) != cols) {
      bad_model(path,
                "'" + row_where + "' has " + std::to_string(row.size()) + " entries; expected " +
                    std::to_string(cols));
    }
    m.row(static_cast<Index>(i)) = row.transpose();
  }
  return m;
}

json to_json(const Vector& v) {
  json a = json::array();
  for (Index i = 0; i < v.size(); ++i) {
    a.push_back(v(i));
  }
  return a;
}

const detail::EnumName<Task> kTaskNames[] = {{Task::Regression, "regression"},
                                             {Task::Classification, "classification"}};
const detail::EnumName<OutputLink> kLinkNames[] = {{OutputLink::Identity, "identity"},
                                                   {OutputLink::Logistic, "logistic"},
                                                   {OutputLink::Softmax, "softmax"}};

OutputLink parse_link(const std::string& path, const std::string& name) {
  try {
    return detail::parse_name(kLinkNames, name, "output link");
  } catch (const std::invalid_argument& e) {
    bad_model(path, e.what());
  }
}

}  // namespace

const char* to_string(Task task) noexcept { return detail::name_of(kTaskNames, task); }
const char* to_string(OutputLink link) noexcept { return detail::name_of(kLinkNames, link); }
Task parse_task(const std::string& name) { return detail::parse_name(kTaskNames, name, "task"); }

namespace {

// TwoLayerNetwork::input_low and input_high: both empty, or d finite values each, low <= high.
void validate_input_range(const TwoLayerNetwork& net) {
  const Vector& low = net.input_low;
  const Vector& high = net.input_high;
  if (low.size() == 0 && high.size() == 0) {
    return;
  }
  const Index d = net.W1.cols();
  if (low.size() != d || high.size() != d) {
    throw std::invalid_argument(
        "TwoLayerNetwork: the input range has " + std::to_string(low.size()) + " low and " +
        std::to_string(high.size()) + " high values; expected d = " + std::to_string(d) + " each");
  }
  for (Index j = 0; j < d; ++j) {
    if (!std::isfinite(low(j)) || !std::isfinite(high(j)) || !(low(j) <= high(j))) {
      throw std::invalid_argument(
          "TwoLayerNetwork: the input range of input " + std::to_string(j + 1) + " ('" +
          net.inputs.at(static_cast<std::size_t>(j)) + "') must be finite with low <= high");
    }
  }
}

// The rows as the network's weights see them: clamped to the training range when the network
// has one, then through the input map (a copy of X without either).
Matrix network_inputs(const TwoLayerNetwork& net, const Eigen::Ref<const Matrix>& X) {
  if (net.input_low.size() == 0) {
    return net.input_map.empty() ? Matrix(X) : net.input_map.apply(X);
  }
  Matrix clamped = X;
  for (Index j = 0; j < clamped.cols(); ++j) {
    clamped.col(j) = clamped.col(j).cwiseMax(net.input_low(j)).cwiseMin(net.input_high(j));
  }
  return net.input_map.empty() ? clamped : net.input_map.apply(clamped);
}

// σ(Z W1ᵀ + 1 b1ᵀ) of rows Z as the weights see them (network_inputs).
Matrix activations(const TwoLayerNetwork& net, const Matrix& Z) {
  Matrix H = Z * net.W1.transpose();
  H.rowwise() += net.b1.transpose();
  activate_inplace(net.activation, H);
  return H;
}

void require_inputs(const TwoLayerNetwork& net, const Matrix& X) {
  if (X.cols() != net.num_inputs()) {
    throw std::invalid_argument("predict: X has " + std::to_string(X.cols()) +
                                " columns; the model has " + std::to_string(net.num_inputs()) +
                                " inputs");
  }
}

}  // namespace

void validate(const TwoLayerNetwork& net) {
  const Index k = net.W1.rows();
  const Index d = net.W1.cols();
  auto fail = [](const std::string& what) {
    throw std::invalid_argument("TwoLayerNetwork: " + what);
  };
  if (k < 1 || d < 1) {
    fail("W1 is " + std::to_string(k) + "x" + std::to_string(d) + "; needs k >= 1 and d >= 1");
  }
  if (net.b1.size() != k) {
    fail("b1 has " + std::to_string(net.b1.size()) + " entries; expected k = " + std::to_string(k));
  }
  if (net.W2.rows() < 1 || net.W2.cols() != k) {
    fail("W2 is " + std::to_string(net.W2.rows()) + "x" + std::to_string(net.W2.cols()) +
         "; expected c x k with k = " + std::to_string(k));
  }
  if (net.b2.size() != net.W2.rows()) {
    fail("b2 has " + std::to_string(net.b2.size()) +
         " entries; expected c = " + std::to_string(net.W2.rows()));
  }
  if (net.C.size() > 0 && (net.C.rows() != net.W2.rows() || net.C.cols() != d)) {
    fail("C is " + std::to_string(net.C.rows()) + "x" + std::to_string(net.C.cols()) +
         "; expected empty or c x d = " + std::to_string(net.W2.rows()) + "x" + std::to_string(d));
  }
  if (static_cast<Index>(net.inputs.size()) != d) {
    fail(std::to_string(net.inputs.size()) + " input names for d = " + std::to_string(d) +
         " columns of W1");
  }
  validate_input_range(net);
  std::set<std::string> seen;
  for (const std::string& name : net.inputs) {
    if (!seen.insert(name).second) {
      fail("duplicate input name '" + name + "'");
    }
  }
  if (!net.W1.allFinite() || !net.b1.allFinite() || !net.W2.allFinite() || !net.b2.allFinite() ||
      !net.C.allFinite()) {
    fail("weights contain NaN or infinity");
  }
  const bool regression = net.task == Task::Regression;
  if (regression != (net.link == OutputLink::Identity)) {
    fail(std::string("output link '") + to_string(net.link) + "' does not fit task '" +
         to_string(net.task) + "'");
  }
  if (net.link == OutputLink::Logistic && net.W2.rows() != 1) {
    fail("a logistic output has exactly one output row");
  }
  if (net.link == OutputLink::Softmax && net.W2.rows() < 2) {
    fail("a softmax output needs at least two outputs");
  }
  // Class labels: one per softmax output, two (or none, meaning 0/1) for a logistic output.
  if (net.link == OutputLink::Softmax &&
      net.classes.size() != static_cast<std::size_t>(net.W2.rows())) {
    fail("a softmax output with " + std::to_string(net.W2.rows()) + " outputs needs " +
         std::to_string(net.W2.rows()) + " class labels; 'classes' has " +
         std::to_string(net.classes.size()));
  }
  if (net.link == OutputLink::Logistic && !net.classes.empty() && net.classes.size() != 2) {
    fail("a logistic output needs exactly 2 class labels; 'classes' has " +
         std::to_string(net.classes.size()));
  }
  if (net.link == OutputLink::Identity && !net.classes.empty()) {
    fail("a regression model has no class labels");
  }
  if (!net.input_map.empty()) {
    if (static_cast<Index>(net.input_map.x.size()) != d ||
        net.input_map.z.size() != net.input_map.x.size()) {
      fail("the input map has " + std::to_string(net.input_map.x.size()) +
           " columns; expected d = " + std::to_string(d));
    }
    for (std::size_t j = 0; j < net.input_map.x.size(); ++j) {
      const std::vector<double>& x = net.input_map.x[j];
      const std::vector<double>& z = net.input_map.z[j];
      if (x.empty() || x.size() != z.size()) {
        fail("input map column " + std::to_string(j + 1) +
             ": x and z must be non-empty and of equal length");
      }
      for (std::size_t i = 0; i < x.size(); ++i) {
        if (!std::isfinite(x[i]) || !std::isfinite(z[i]) || (i > 0 && !(x[i] > x[i - 1]))) {
          fail("input map column " + std::to_string(j + 1) +
               ": knots must be finite and x strictly ascending");
        }
      }
    }
  }
  if (!net.encoding.empty()) {
    for (const ColumnEncoding& c : net.encoding.columns) {
      const std::size_t width = c.categorical() ? c.categories.size() : 1;
      if (!c.fill.empty() && c.fill.size() != width) {
        fail("encoding column '" + c.name + "' has " + std::to_string(c.fill.size()) +
             " fill values; expected " + std::to_string(width));
      }
      if (!std::is_sorted(c.categories.begin(), c.categories.end()) ||
          std::adjacent_find(c.categories.begin(), c.categories.end()) != c.categories.end()) {
        fail("encoding column '" + c.name + "': categories must be sorted and distinct");
      }
      for (const double f : c.fill) {
        if (!std::isfinite(f)) {
          fail("encoding column '" + c.name + "' has a non-finite fill value");
        }
      }
    }
    if (net.encoding.input_names() != net.inputs) {
      fail("the encoding's input names do not match 'inputs' (" +
           std::to_string(net.encoding.input_names().size()) + " encoded inputs for " +
           std::to_string(net.inputs.size()) + " names)");
    }
  }
  std::set<double> distinct;
  for (double c : net.classes) {
    if (!std::isfinite(c) || !distinct.insert(c).second) {
      fail("class labels must be finite and distinct");
    }
  }
  if (!net.class_names.empty()) {
    if (net.class_names.size() != net.classes.size()) {
      fail("'class_names' has " + std::to_string(net.class_names.size()) + " names for " +
           std::to_string(net.classes.size()) + " classes");
    }
    const std::set<std::string> names(net.class_names.begin(), net.class_names.end());
    if (names.size() != net.class_names.size() || names.count("") > 0) {
      fail("class names must be distinct and non-empty");
    }
  }
}

Matrix hidden_layer(const TwoLayerNetwork& net, const Matrix& X) {
  require_inputs(net, X);
  return net.input_map.empty() && net.input_low.size() == 0
             ? activations(net, X)
             : activations(net, network_inputs(net, X));
}

Matrix predict_value(const TwoLayerNetwork& net, const Matrix& X) {
  require_inputs(net, X);
  // In row blocks of about 4M hidden activations (32 MB), whatever the rows and units.
  const Index block = std::max<Index>(1, (Index{1} << 22) / std::max<Index>(1, net.num_hidden()));
  Matrix out(X.rows(), net.num_outputs());
  for (Index begin = 0; begin < X.rows(); begin += block) {
    const Index count = std::min(block, X.rows() - begin);
    // The block as the weights see it, once for the units and the linear term.
    const Matrix Z = network_inputs(net, X.middleRows(begin, count));
    out.middleRows(begin, count).noalias() = activations(net, Z) * net.W2.transpose();
    if (net.C.size() > 0) {
      out.middleRows(begin, count).noalias() += Z * net.C.transpose();
    }
  }
  out.rowwise() += net.b2.transpose();
  return out;
}

Matrix predict(const TwoLayerNetwork& net, const Matrix& X) {
  Matrix out = predict_value(net, X);
  if (net.link == OutputLink::Logistic) {
    out = out.unaryExpr([](double t) { return activate(Activation::Sigmoid, t); });
  } else if (net.link == OutputLink::Softmax) {
    for (Index i = 0; i < out.rows(); ++i) {
      detail::softmax_inplace(out.row(i));
    }
  }
  return out;
}

void save_model(const std::string& path, const TwoLayerNetwork& net) {
  validate(net);
  json metadata;
  try {
    metadata = json::parse(net.metadata_json.empty() ? "{}" : net.metadata_json);
  } catch (const json::exception& e) {
    throw std::invalid_argument(std::string("save_model: metadata is not valid JSON: ") + e.what());
  }
  if (!metadata.is_object()) {
    throw std::invalid_argument("save_model: metadata must be a JSON object");
  }
  json doc;
  doc["format"] = "nnlift-model";
  doc["version"] = kFormatVersion;
  doc["task"] = to_string(net.task);
  doc["activation"] = to_string(net.activation);
  doc["inputs"] = net.inputs;
  doc["target"] = net.target;
  json hidden;
  hidden["weights"] = json::array();
  for (Index j = 0; j < net.W1.rows(); ++j) {
    hidden["weights"].push_back(to_json(net.W1.row(j).transpose()));
  }
  hidden["bias"] = to_json(net.b1);
  doc["hidden"] = hidden;
  json output;
  if (net.W2.rows() == 1) {
    output["weights"] = to_json(net.W2.row(0).transpose());
    output["bias"] = net.b2(0);
  } else {
    output["weights"] = json::array();
    for (Index c = 0; c < net.W2.rows(); ++c) {
      output["weights"].push_back(to_json(net.W2.row(c).transpose()));
    }
    output["bias"] = to_json(net.b2);
  }
  output["link"] = to_string(net.link);
  doc["output"] = output;
  if (net.C.size() > 0) {
    json linear;
    if (net.C.rows() == 1) {
      linear["weights"] = to_json(net.C.row(0).transpose());
    } else {
      linear["weights"] = json::array();
      for (Index c = 0; c < net.C.rows(); ++c) {
        linear["weights"].push_back(to_json(net.C.row(c).transpose()));
      }
    }
    doc["linear"] = linear;
  }
  if (!net.classes.empty()) {
    doc["classes"] = net.classes;
  }
  if (!net.class_names.empty()) {
    doc["class_names"] = net.class_names;
  }
  if (!net.input_map.empty()) {
    doc["input_map"] = {{"kind", "rankgauss"}, {"x", net.input_map.x}, {"z", net.input_map.z}};
  }
  if (net.input_low.size() > 0) {
    doc["input_range"] = {{"low", to_json(net.input_low)}, {"high", to_json(net.input_high)}};
  }
  if (!net.encoding.empty()) {
    json columns = json::array();
    for (const ColumnEncoding& c : net.encoding.columns) {
      json col = {{"name", c.name}, {"fill", c.fill}};
      if (c.categorical()) {
        col["categories"] = c.categories;
      }
      columns.push_back(col);
    }
    doc["encoding"] = {{"missing", to_string(net.encoding.missing)}, {"columns", columns}};
    if (!net.encoding.na_values.empty()) {
      doc["encoding"]["na_values"] = net.encoding.na_values;
    }
  }
  doc["metadata"] = metadata;
  // nlohmann-json prints the shortest decimal that parses back to the same double.
  const std::string text = doc.dump(2) + "\n";
  detail::write_atomically(path, [&](std::ostream& out) { out << text; });
}

namespace {

// A string value, or a model error naming the key.
std::string text_at(const std::string& path, const json& v, const char* key) {
  if (!v.is_string()) {
    bad_model(path, std::string("'") + key + "' must be a string");
  }
  return v.get<std::string>();
}

// Version 2: the linear term C.
Matrix read_linear(const std::string& path, const json& linear) {
  if (!linear.is_object()) {
    bad_model(path, "'linear' must be a JSON object");
  }
  const json& w = require_key(path, linear, "weights", "linear.");
  return w.is_array() && !w.empty() && w[0].is_array()
             ? matrix_at(path, w, "linear.weights")
             : Matrix(vector_at(path, w, "linear.weights").transpose());
}

// Version 2: the rank-Gauss input map.
RankGaussMap read_input_map(const std::string& path, const json& m) {
  RankGaussMap map;
  if (!m.is_object() || !m.contains("kind") || m["kind"] != "rankgauss") {
    bad_model(path, "'input_map' must be an object with \"kind\": \"rankgauss\"");
  }
  for (const char* key : {"x", "z"}) {
    const json& rows = require_key(path, m, key, "input_map.");
    if (!rows.is_array()) {
      bad_model(path, std::string("'input_map.") + key + "' must be an array of arrays");
    }
    for (const json& row : rows) {
      const Vector v = vector_at(path, row, (std::string("input_map.") + key).c_str());
      (key[0] == 'x' ? map.x : map.z).emplace_back(v.data(), v.data() + v.size());
    }
  }
  return map;
}

// Version 2: the raw columns' encoding.
InputEncoding read_encoding(const std::string& path, const json& e) {
  InputEncoding encoding;
  if (!e.is_object()) {
    bad_model(path, "'encoding' must be a JSON object");
  }
  try {
    encoding.missing = parse_missing_policy(
        text_at(path, require_key(path, e, "missing", "encoding."), "encoding.missing"));
  } catch (const std::invalid_argument& err) {
    bad_model(path, std::string("encoding.missing: ") + err.what());
  }
  if (e.contains("na_values")) {  // optional: the spellings of a missing value given in training
    const json& na = e["na_values"];
    if (!na.is_array()) {
      bad_model(path, "'encoding.na_values' must be an array of strings");
    }
    for (const json& v : na) {
      encoding.na_values.push_back(text_at(path, v, "encoding.na_values[]"));
    }
  }
  const json& columns = require_key(path, e, "columns", "encoding.");
  if (!columns.is_array() || columns.empty()) {
    bad_model(path, "'encoding.columns' must be a non-empty array");
  }
  for (const json& c : columns) {
    if (!c.is_object()) {
      bad_model(path, "'encoding.columns[]' must be objects");
    }
    ColumnEncoding col;
    col.name = text_at(path, require_key(path, c, "name", "encoding.columns[]."), "name");
    const json& fill = require_key(path, c, "fill", "encoding.columns[].");
    if (!fill.empty()) {
      const Vector f = vector_at(path, fill, "encoding.columns[].fill");
      col.fill.assign(f.data(), f.data() + f.size());
    } else if (!fill.is_array()) {
      bad_model(path, "'encoding.columns[].fill' must be an array");
    }
    if (c.contains("categories")) {
      const json& cats = c["categories"];
      if (!cats.is_array() || cats.empty()) {
        bad_model(path, "'encoding.columns[].categories' must be a non-empty array");
      }
      for (const json& v : cats) {
        col.categories.push_back(text_at(path, v, "encoding.columns[].categories[]"));
      }
    }
    encoding.columns.push_back(std::move(col));
  }
  return encoding;
}

TwoLayerNetwork load_model_document(const std::string& path) {
  const std::string text = detail::read_file(path);
  json doc;
  try {
    doc = json::parse(text, [&](int depth, json::parse_event_t, json&) {
      if (depth > kMaxDepth) {
        throw IoError(path + ": nested more than " + std::to_string(kMaxDepth) +
                      " levels deep; not a model file");
      }
      return true;
    });
  } catch (const json::parse_error& e) {
    throw IoError(path + ": not valid JSON: " + e.what());
  }
  if (!doc.is_object()) {
    bad_model(path, "the top level must be a JSON object");
  }
  const json& format = require_key(path, doc, "format", "");
  if (format != "nnlift-model") {
    bad_model(path, "'format' is " + brief(format) + "; expected \"nnlift-model\"");
  }
  const json& version = require_key(path, doc, "version", "");
  if (!version.is_number_integer() || version.get<int>() < 1 ||
      version.get<int>() > kFormatVersion) {
    bad_model(path,
              "unsupported 'version' " + brief(version) + "; this nnlift reads versions 1 to " +
                  std::to_string(kFormatVersion));
  }
  TwoLayerNetwork net;
  auto string_at = [&](const json& v, const char* key) { return text_at(path, v, key); };
  try {
    net.task = parse_task(string_at(require_key(path, doc, "task", ""), "task"));
    net.activation =
        parse_activation(string_at(require_key(path, doc, "activation", ""), "activation"));
  } catch (const std::invalid_argument& e) {
    bad_model(path, e.what());
  }
  const json& inputs = require_key(path, doc, "inputs", "");
  if (!inputs.is_array()) {
    bad_model(path, "'inputs' must be an array of column names");
  }
  for (const json& name : inputs) {
    net.inputs.push_back(string_at(name, "inputs[]"));
  }
  net.target = string_at(require_key(path, doc, "target", ""), "target");
  const json& hidden = require_key(path, doc, "hidden", "");
  net.W1 = matrix_at(path, require_key(path, hidden, "weights", "hidden."), "hidden.weights");
  net.b1 = vector_at(path, require_key(path, hidden, "bias", "hidden."), "hidden.bias");
  const json& output = require_key(path, doc, "output", "");
  const json& w2 = require_key(path, output, "weights", "output.");
  const json& b2 = require_key(path, output, "bias", "output.");
  if (w2.is_array() && !w2.empty() && w2[0].is_array()) {
    net.W2 = matrix_at(path, w2, "output.weights");
    net.b2 = vector_at(path, b2, "output.bias");
  } else {
    net.W2 = vector_at(path, w2, "output.weights").transpose();
    net.b2 = Vector::Constant(1, number_at(path, b2, "output.bias"));
  }
  if (output.contains("link")) {
    net.link = parse_link(path, string_at(output["link"], "output.link"));
  } else {
    net.link = net.task == Task::Regression ? OutputLink::Identity
               : net.W2.rows() == 1         ? OutputLink::Logistic
                                            : OutputLink::Softmax;
  }
  if (version.get<int>() >= 2) {
    if (doc.contains("linear")) {
      net.C = read_linear(path, doc["linear"]);
    }
    if (doc.contains("input_map")) {
      net.input_map = read_input_map(path, doc["input_map"]);
    }
    if (doc.contains("input_range")) {
      const json& range = doc["input_range"];
      if (!range.is_object()) {
        bad_model(path, "'input_range' must be a JSON object");
      }
      net.input_low =
          vector_at(path, require_key(path, range, "low", "input_range."), "input_range.low");
      net.input_high =
          vector_at(path, require_key(path, range, "high", "input_range."), "input_range.high");
    }
    if (doc.contains("encoding")) {
      net.encoding = read_encoding(path, doc["encoding"]);
    }
    if (doc.contains("class_names")) {
      const json& names = doc["class_names"];
      if (!names.is_array()) {
        bad_model(path, "'class_names' must be an array of strings");
      }
      for (const json& v : names) {
        net.class_names.push_back(text_at(path, v, "class_names[]"));
      }
    }
  }
  if (doc.contains("classes")) {
    const Vector classes = vector_at(path, doc["classes"], "classes");
    net.classes.assign(classes.data(), classes.data() + classes.size());
  }
  if (doc.contains("metadata")) {
    if (!doc["metadata"].is_object()) {
      bad_model(path, "'metadata' must be a JSON object");
    }
    net.metadata_json = doc["metadata"].dump();
  }
  try {
    validate(net);
  } catch (const std::invalid_argument& e) {
    bad_model(path, e.what());
  }
  return net;
}

}  // namespace

TwoLayerNetwork load_model(const std::string& path) {
  try {
    return load_model_document(path);
  } catch (const json::exception& e) {
    // Anything the JSON library reports beyond the checks below, with the file named.
    throw IoError(path + ": invalid model file: " + e.what());
  }
}

}  // namespace nnlift
