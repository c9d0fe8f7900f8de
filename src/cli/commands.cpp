// The nnlift commands: dispatch, synth, decompose.
// SPDX-License-Identifier: MIT
#include "cli/commands.hpp"

#include <chrono>
#include <cmath>
#include <iomanip>
#include <memory>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include <nnlift/nnlift.hpp>

#include "cli/options.hpp"
#include "detail/io.hpp"

#ifndef NNLIFT_VERSION_STRING
#define NNLIFT_VERSION_STRING "unknown"
#endif

namespace nnlift::cli {
namespace {

// A stream that discards everything, for --quiet.
class NullBuffer : public std::streambuf {
 protected:
  int overflow(int c) override { return c; }
};

struct Context {
  std::ostream& out;
  std::ostream& err;
};

const char* const kOverview =
    "nnlift: train two-layer neural networks without backpropagation, by the method of moments\n"
    "(NN-LIFT: Janzamin, Sedghi and Anandkumar 2015).\n"
    "\n"
    "usage: nnlift COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  synth       generate planted (teacher) data: train/test CSV and the true model as JSON\n"
    "  describe    read a CSV file as training would and summarise its columns\n"
    "  decompose   decompose a symmetric d x d x d tensor from a .npy file (CP, mixed signs)\n"
    "\n"
    "Run 'nnlift COMMAND --help' for a command's options and their defaults.\n"
    "Global options: --help, --version.\n"
    "Exit codes: 0 success, 1 runtime error (file, data), 2 usage error, 3 numerical failure\n"
    "with --strict.\n";

std::string format_seconds(double s) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(s < 10 ? 2 : 1) << s << " s";
  return o.str();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Diagnostics go to err unless --quiet.
std::ostream& diag(const CommonFlags& flags, std::ostream& err) {
  static NullBuffer null_buffer;
  static std::ostream null_stream(&null_buffer);
  return flags.quiet ? null_stream : err;
}

// ---------------------------------------------------------------------------------------------
int run_synth(const std::vector<std::string>& args, Context& ctx) {
  SynthOptions o;
  CommonFlags flags;
  std::string activation = to_string(o.activation);
  std::string task = to_string(o.task);
  std::string out_path, test_out, truth_path;
  po::options_description desc("options");
  desc.add_options()("dim", po::value(&o.dim)->default_value(o.dim), "d, input dimensions")(
      "hidden", po::value(&o.hidden)->default_value(o.hidden), "k, hidden units (k <= d)")(
      "samples", po::value(&o.samples)->default_value(o.samples), "n, training rows")(
      "test-samples",
      po::value(&o.test_samples)->default_value(o.test_samples),
      "m, test rows (written with --test-out)")("activation",
                                                po::value(&activation)->default_value(activation),
                                                "sigmoid | tanh | softplus | relu")(
      "bias-range",
      po::value(&o.bias_range)->default_value(o.bias_range),
      "hidden biases ~ U(-r, r)")("noise",
                                  po::value(&o.noise)->default_value(o.noise),
                                  "regression label noise standard deviation")(
      "correlated",
      po::bool_switch(&o.correlated),
      "inputs ~ N(mu, Sigma) with random mean and covariance (default N(0, I))")(
      "task",
      po::value(&task)->default_value(task),
      "regression | classification (0/1 labels, logistic output)")(
      "seed", po::value(&o.seed)->default_value(o.seed), "random seed; same seed, same bytes")(
      "out", po::value(&out_path)->required(), "training CSV to write (required)")(
      "test-out", po::value(&test_out), "test CSV to write (needs --test-samples > 0)")(
      "truth", po::value(&truth_path)->required(), "model file of the teacher (required)");
  add_common(desc, flags, true);
  if (!parse_command("usage: nnlift synth --out train.csv --truth truth.json [options]\n\n"
                     "Draws a planted two-layer network (unit-norm first-layer rows, mixed-sign\n"
                     "output weights) and Gaussian inputs, and writes data and the true model.",
                     args,
                     desc,
                     flags,
                     ctx.out)) {
    return kOk;
  }
  o.num_threads = flags.threads;
  try {
    o.activation = parse_activation(activation);
    o.task = parse_task(task);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (!test_out.empty() && o.test_samples == 0) {
    throw UsageError("--test-out needs --test-samples > 0");
  }
  if (test_out.empty() && o.test_samples > 0) {
    throw UsageError("--test-samples needs --test-out FILE");
  }
  validate(o);
  std::ostream& log = diag(flags, ctx.err);
  const auto t0 = std::chrono::steady_clock::now();
  const SynthData data = make_synthetic(o);
  std::vector<std::string> names = data.truth.inputs;
  names.push_back(data.truth.target);
  Matrix table(data.X_train.rows(), o.dim + 1);
  table << data.X_train, data.y_train;
  write_csv(out_path, names, table, o.num_threads);
  if (!test_out.empty()) {
    Matrix test_table(data.X_test.rows(), o.dim + 1);
    test_table << data.X_test, data.y_test;
    write_csv(test_out, names, test_table, o.num_threads);
  }
  save_model(truth_path, data.truth);

  const TwoLayerNetwork& t = data.truth;
  const Vector f = predict_value(t, data.X_train).col(0);
  const double var_f = (f.array() - f.mean()).square().mean();
  log << "nnlift synth: wrote " << out_path << " (" << o.samples << " rows x " << o.dim
      << " inputs + '" << t.target << "')";
  if (!test_out.empty()) {
    log << ", " << test_out << " (" << o.test_samples << " rows)";
  }
  log << " and " << truth_path << " in " << format_seconds(seconds_since(t0)) << "\n";
  log << "  teacher: k = " << o.hidden << " " << to_string(o.activation) << " units, "
      << to_string(o.task) << ", inputs " << (o.correlated ? "N(mu, Sigma)" : "N(0, I)")
      << ", noise sd " << o.noise << "\n";
  log << "  Var f(x) on the training inputs = " << var_f;
  if (o.task == Task::Regression && o.noise > 0) {
    log << "  (signal-to-noise variance ratio " << var_f / (o.noise * o.noise) << ")";
  }
  log << "\n  unit  bias     out-weight  lambda_j = a2_j E[sigma'''(z_j)] (tensor weight)\n";
  for (Index j = 0; j < o.hidden; ++j) {
    const Vector a = t.W1.row(j).transpose();
    const double shift = t.b1(j) + a.dot(data.input_mean);
    const double scale = std::sqrt(a.dot(data.input_cov * a));
    const double lambda = t.W2(0, j) * activation_moment(o.activation, 3, shift, scale);
    log << "  " << std::setw(4) << j + 1 << "  " << std::setw(7) << std::fixed
        << std::setprecision(3) << t.b1(j) << "  " << std::setw(10) << t.W2(0, j) << "  "
        << std::setw(10) << std::setprecision(4) << lambda << "\n";
    log.unsetf(std::ios::fixed);
  }
  return kOk;
}

// Flags that choose the columns of a CSV file, shared by every command that reads one.
struct DataFlags {
  std::string path;
  std::string target;
  std::string features;
  std::string drop;
};

void add_data_flags(po::options_description& desc, DataFlags& flags) {
  desc.add_options()(
      "data", po::value(&flags.path)->required(), "CSV file with a header row (required)")(
      "target", po::value(&flags.target), "target column (default: the last column)")(
      "features", po::value(&flags.features), "input columns a,b,c (default: all but the target)")(
      "drop", po::value(&flags.drop), "columns c,d to leave out of the inputs");
}

CsvOptions csv_options(const DataFlags& flags, int threads) {
  CsvOptions o;
  o.target = flags.target;
  if (!flags.features.empty()) {
    o.features = split_list(flags.features, "features");
  }
  if (!flags.drop.empty()) {
    o.drop = split_list(flags.drop, "drop");
  }
  if (!o.features.empty() && !o.drop.empty()) {
    throw UsageError("give either --features or --drop, not both");
  }
  o.num_threads = threads;
  return o;
}

// ---------------------------------------------------------------------------------------------
int run_describe(const std::vector<std::string>& args, Context& ctx) {
  CommonFlags flags;
  DataFlags data_flags;
  po::options_description desc("options");
  add_data_flags(desc, data_flags);
  add_common(desc, flags, true);
  if (!parse_command(
          "usage: nnlift describe --data file.csv [--target y] [--features a,b | --drop c]\n\n"
          "Reads the file exactly as training does (same column choice, same checks) and\n"
          "prints one line per column: count, mean, standard deviation, min and max.",
          args,
          desc,
          flags,
          ctx.out)) {
    return kOk;
  }
  const CsvOptions options = csv_options(data_flags, flags.threads);
  const auto t0 = std::chrono::steady_clock::now();
  const Dataset data = read_csv(data_flags.path, options);
  const double elapsed = seconds_since(t0);
  const Index n = data.X.rows();
  std::ostream& out = ctx.out;
  out << data_flags.path << ": " << n << " rows, " << data.X.cols() << " inputs, target '"
      << data.target_name << "' (read in " << format_seconds(elapsed) << ")\n";
  out << std::left << std::setw(16) << "column" << std::right << std::setw(8) << "role"
      << std::setw(14) << "mean" << std::setw(14) << "sd" << std::setw(14) << "min" << std::setw(14)
      << "max"
      << "\n";
  auto line = [&](const std::string& name, const char* role, const Vector& v) {
    const double mean = v.mean();
    const double sd =
        n > 1 ? std::sqrt((v.array() - mean).square().sum() / static_cast<double>(n - 1)) : 0.0;
    out << std::left << std::setw(16) << name << std::right << std::setw(8) << role << std::setw(14)
        << std::setprecision(6) << mean << std::setw(14) << sd << std::setw(14) << v.minCoeff()
        << std::setw(14) << v.maxCoeff()
        << (v.minCoeff() == v.maxCoeff() ? "  constant: carries no information" : "") << "\n";
  };
  for (Index j = 0; j < data.X.cols(); ++j) {
    line(data.feature_names[static_cast<std::size_t>(j)], "input", data.X.col(j));
  }
  line(data.target_name, "target", data.y);
  return kOk;
}

// ---------------------------------------------------------------------------------------------
int run_decompose(const std::vector<std::string>& args, Context& ctx) {
  DecomposeOptions o;
  CommonFlags flags;
  std::string tensor_path, out_path, out_npy, method = to_string(o.method);
  double symmetry_tolerance = 1e-8;
  bool strict = false;
  po::options_description desc("options");
  desc.add_options()(
      "tensor", po::value(&tensor_path)->required(), "d x d x d float64 .npy file (required)")(
      "rank", po::value(&o.rank)->required(), "k, number of components, 1 <= k <= d (required)")(
      "method",
      po::value(&method)->default_value(method),
      "auto | power | jennrich | als (auto: best residual of als and whitened power)")(
      "restarts",
      po::value(&o.power.num_restarts)->default_value(o.power.num_restarts),
      "power method: random restarts per component")(
      "iterations",
      po::value(&o.power.max_iterations)->default_value(o.power.max_iterations),
      "power method: iterations per restart")(
      "trials",
      po::value(&o.jennrich.num_trials)->default_value(o.jennrich.num_trials),
      "jennrich/als: random slice pairs tried")(
      "sweeps",
      po::value(&o.als.max_sweeps)->default_value(o.als.max_sweeps),
      "als: refinement sweeps at most")(
      "symmetry-tol",
      po::value(&symmetry_tolerance)->default_value(symmetry_tolerance),
      "largest accepted asymmetry, relative to max(1, max |T|)")(
      "seed", po::value(&o.seed)->default_value(o.seed), "random seed")(
      "out", po::value(&out_path)->required(), "result JSON to write (required)")(
      "out-npy", po::value(&out_npy), "also write the d x k component matrix as .npy")(
      "strict", po::bool_switch(&strict), "exit 3 unless the status is success");
  add_common(desc, flags, true);
  if (!parse_command("usage: nnlift decompose --tensor T.npy --rank k --out result.json "
                     "[options]\n\n"
                     "Finds T ~ sum_j lambda_j v_j (x) v_j (x) v_j with unit v_j and lambda_j > 0\n"
                     "(signs moved into v_j). Components need not be orthogonal.",
                     args,
                     desc,
                     flags,
                     ctx.out)) {
    return kOk;
  }
  try {
    o.method = parse_decompose_method(method);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  o.num_threads = flags.threads;
  validate(o);
  std::ostream& log = diag(flags, ctx.err);
  const auto t0 = std::chrono::steady_clock::now();
  const NpyArray array = read_npy(tensor_path);
  if (array.shape.size() != 3 || array.shape[0] != array.shape[1] ||
      array.shape[0] != array.shape[2]) {
    std::ostringstream msg;
    msg << tensor_path << ": expected a d x d x d array, found shape (";
    for (std::size_t i = 0; i < array.shape.size(); ++i) {
      msg << (i ? ", " : "") << array.shape[i];
    }
    msg << ")";
    throw IoError(msg.str());
  }
  const Index d = array.shape[0];
  // C order (i*d + j)*d + l holds T_ijl; our storage is i + d(j + d l): for a symmetric tensor
  // these agree, and the symmetry check below rejects anything else.
  std::unique_ptr<DenseSymmetricTensor3> T;
  try {
    T = std::make_unique<DenseSymmetricTensor3>(d, array.data, symmetry_tolerance);
  } catch (const std::invalid_argument& e) {
    throw IoError(tensor_path + ": " + e.what());
  }
  if (o.rank > d) {
    throw UsageError("--rank " + std::to_string(o.rank) +
                     " exceeds the dimension d = " + std::to_string(d) + " of " + tensor_path);
  }
  T->set_num_threads(flags.threads);
  const DecomposeResult r = decompose(*T, o);
  const double elapsed = seconds_since(t0);

  nlohmann::json doc;
  doc["format"] = "nnlift-decomposition";
  doc["version"] = 1;
  doc["tensor"] = tensor_path;
  doc["dim"] = d;
  doc["rank"] = o.rank;
  doc["method"] = to_string(o.method);
  doc["method_used"] = to_string(r.method_used);
  doc["seed"] = o.seed;
  doc["status"] = to_string(r.status);
  doc["message"] = r.message;
  doc["relative_residual"] = r.relative_residual;
  doc["lambda"] = std::vector<double>(r.lambda.data(), r.lambda.data() + r.lambda.size());
  doc["components"] = nlohmann::json::array();
  for (Index j = 0; j < r.components.cols(); ++j) {
    const Vector v = r.components.col(j);
    doc["components"].push_back(std::vector<double>(v.data(), v.data() + v.size()));
  }
  doc["iterations"] = r.iterations;
  doc["restart_gap"] =
      std::vector<double>(r.restart_gap.data(), r.restart_gap.data() + r.restart_gap.size());
  doc["subspace_sweeps"] = r.subspace_sweeps;
  doc["seconds"] = elapsed;
  const std::string text = doc.dump(2) + "\n";
  detail::write_atomically(out_path, [&](std::ostream& s) { s << text; });
  if (!out_npy.empty() && r.components.size() > 0) {
    write_npy(out_npy, to_npy(r.components));
  }
  log << "nnlift decompose: " << tensor_path << " (d = " << d << "), rank " << o.rank << ", method "
      << to_string(o.method);
  if (o.method == DecomposeMethod::Auto) {
    log << " -> " << to_string(r.method_used);
  }
  log << ": status " << to_string(r.status) << ", relative residual " << r.relative_residual << ", "
      << format_seconds(elapsed) << "\n";
  if (!r.message.empty()) {
    log << "  " << r.message << "\n";
  }
  for (Index j = 0; j < r.lambda.size(); ++j) {
    log << "  lambda_" << j + 1 << " = " << r.lambda(j) << "\n";
  }
  log << "  wrote " << out_path << (out_npy.empty() ? "" : " and " + out_npy) << "\n";
  if (r.status != Status::Success) {
    if (strict) {
      ctx.err << "nnlift: error: decomposition status " << to_string(r.status) << "\n";
      return kNumericalError;
    }
    log << "nnlift: warning: decomposition status " << to_string(r.status) << "\n";
  }
  return kOk;
}

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Context ctx{out, err};
  if (args.empty()) {
    err << kOverview;
    return kUsageError;
  }
  const std::string& command = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "--help" || command == "-h" || command == "help") {
    if (command == "help" && !rest.empty()) {
      return run({rest[0], "--help"}, out, err);
    }
    out << kOverview;
    return kOk;
  }
  if (command == "--version") {
    out << "nnlift " << NNLIFT_VERSION_STRING << "\n";
    return kOk;
  }
  try {
    if (command == "synth") {
      return run_synth(rest, ctx);
    }
    if (command == "decompose") {
      return run_decompose(rest, ctx);
    }
    if (command == "describe") {
      return run_describe(rest, ctx);
    }
    err << "nnlift: error: unknown command '" << command << "'\n"
        << "Try 'nnlift --help' for the list of commands.\n";
    return kUsageError;
  } catch (const UsageError& e) {
    err << "nnlift " << command << ": error: " << e.what() << "\n"
        << "Try 'nnlift " << command << " --help'.\n";
    return kUsageError;
  } catch (const std::invalid_argument& e) {
    err << "nnlift " << command << ": error: " << e.what() << "\n"
        << "Try 'nnlift " << command << " --help'.\n";
    return kUsageError;
  } catch (const std::exception& e) {
    err << "nnlift " << command << ": error: " << e.what() << "\n";
    return kRuntimeError;
  }
}

}  // namespace nnlift::cli
