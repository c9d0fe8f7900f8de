// One reproduction trial: draw a planted network and data (nnlift::make_synthetic), train it
// (nnlift::train), and print one JSON line of metrics. tools/reproduce runs grids of these.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <Eigen/SVD>
#include <nlohmann/json.hpp>

#include <nnlift/evaluate.hpp>
#include <nnlift/npy.hpp>
#include <nnlift/synth.hpp>
#include <nnlift/train.hpp>

#include "stats.hpp"

namespace {

using nnlift::Index;
using nnlift::Matrix;
using nnlift::Vector;

const char* const kUsage =
    "usage: trial [--key value ...]\n"
    "data:  --dim 10 --hidden 5 --samples 100000 --test-samples 100000 --activation sigmoid\n"
    "       --bias-range 1 --bias-offset 0 --output-weights mixed|positive|ones --condition 0\n"
    "       --ball-radius 0 --correlated 0 --noise 0.05 --seed 0\n"
    "train: --residualize auto --method auto --bias auto --init tensor --refine 0\n"
    "       --refine-iterations 500 --hooi-sweeps 10 --oracle-directions 0 --train-seed 0\n"
    "       --threads 0\n"
    "other: --export PREFIX  (writes PREFIX_train.npy [X y] and PREFIX_test.npy [X f]; no "
    "training)\n"
    "Prints one JSON object: column and bias errors after matching, relMSE against the noise-free\n"
    "teacher on the test rows, min |lambda|, noise level, route, stage times.\n";

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void write_table(const std::string& path, const Matrix& X, const Vector& last) {
  Matrix table(X.rows(), X.cols() + 1);
  table << X, last;
  nnlift::write_npy(path, nnlift::to_npy(table));
}

int run(std::map<std::string, std::string> args) {
  auto take = [&](const std::string& key, const std::string& fallback) {
    const auto it = args.find(key);
    if (it == args.end()) {
      return fallback;
    }
    const std::string value = it->second;
    args.erase(it);
    return value;
  };
  auto num = [&](const std::string& key, double fallback) {
    return std::stod(take(key, std::to_string(fallback)));
  };
  nnlift::SynthOptions so;
  so.dim = static_cast<Index>(num("dim", 10));
  so.hidden = static_cast<Index>(num("hidden", 5));
  so.samples = static_cast<Index>(num("samples", 1e5));
  so.test_samples = static_cast<Index>(num("test-samples", 1e5));
  so.activation = nnlift::parse_activation(take("activation", "sigmoid"));
  so.bias_range = num("bias-range", 1.0);
  so.bias_offset = num("bias-offset", 0.0);
  const std::string weights = take("output-weights", "mixed");
  so.output_weights = weights == "positive" ? nnlift::OutputWeights::Positive
                      : weights == "ones"   ? nnlift::OutputWeights::Ones
                                            : nnlift::OutputWeights::Mixed;
  so.condition = num("condition", 0.0);
  so.ball_radius = num("ball-radius", 0.0);
  so.correlated = num("correlated", 0) != 0;
  so.noise = num("noise", 0.05);
  so.seed = static_cast<std::uint64_t>(num("seed", 0));
  const int threads = static_cast<int>(num("threads", 0));
  so.num_threads = threads;

  nnlift::TrainOptions to;
  to.hidden = so.hidden;
  to.activation = so.activation;
  to.residualize = nnlift::parse_residualize(take("residualize", "auto"));
  to.method = nnlift::parse_decompose_method(take("method", "auto"));
  to.bias = nnlift::parse_bias_method(take("bias", "auto"));
  to.init = nnlift::parse_init(take("init", "tensor"));
  to.refine = num("refine", 0) != 0;
  to.refine_iterations = static_cast<int>(num("refine-iterations", 500));
  to.hooi_sweeps = static_cast<int>(num("hooi-sweeps", 10));
  to.seed = static_cast<std::uint64_t>(num("train-seed", 0));
  to.num_threads = threads;
  const bool oracle = num("oracle-directions", 0) != 0;
  const std::string export_prefix = take("export", "");
  if (!args.empty()) {
    std::cerr << "trial: unknown option --" << args.begin()->first << "\n" << kUsage;
    return 2;
  }

  const auto t_data = std::chrono::steady_clock::now();
  const nnlift::SynthData s = nnlift::make_synthetic(so);
  const double data_seconds = seconds_since(t_data);
  const Vector f_test = nnlift::predict_value(s.truth, s.X_test).col(0);
  if (!export_prefix.empty()) {
    write_table(export_prefix + "_train.npy", s.X_train, s.y_train);
    write_table(export_prefix + "_test.npy", s.X_test, f_test);
    return 0;
  }
  nnlift::Dataset data;
  data.feature_names = s.truth.inputs;
  data.target_name = s.truth.target;
  data.X = s.X_train;
  data.y = s.y_train;
  if (oracle) {
    to.directions = s.truth.W1;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const nnlift::TrainResult r = nnlift::train(data, to);
  const double train_seconds = seconds_since(t0);

  nlohmann::json out;
  out["status"] = nnlift::to_string(r.status);
  out["train_seconds"] = train_seconds;
  out["data_seconds"] = data_seconds;
  const Eigen::JacobiSVD<Matrix> svd(s.truth.W1);
  out["kappa_A1"] = svd.singularValues()(0) / svd.singularValues()(so.hidden - 1);
  const Vector g_test = nnlift::predict_value(r.network, s.X_test).col(0);
  const double var_f = (f_test.array() - f_test.mean()).square().mean();
  const double mse_f = (g_test - f_test).squaredNorm() / static_cast<double>(f_test.size());
  out["rel_mse"] = mse_f / var_f;
  out["mse_vs_noise_var"] = so.noise > 0 ? mse_f / (so.noise * so.noise) : -1.0;
  out["var_f"] = var_f;
  if (r.network.W1.rows() == so.hidden) {
    const nnlift::Recovery rec = nnlift::recovery(s.truth, r.network);
    std::vector<double> col_err, bias_err;
    for (Index j = 0; j < so.hidden; ++j) {
      const Index m = rec.match[static_cast<std::size_t>(j)];
      const Vector a = s.truth.W1.row(j).transpose().normalized();
      const Vector a_hat = r.network.W1.row(m).transpose();
      const double norm = a_hat.norm();
      const double sign = a.dot(a_hat) < 0 ? -1.0 : 1.0;
      col_err.push_back((a - sign * a_hat / norm).norm());
      // σ(−z) = 1 − σ(z) (logistic; tanh is odd): a flipped unit carries the bias −b. Biases
      // are compared per unit-norm row.
      bias_err.push_back(
          std::abs(s.truth.b1(j) / s.truth.W1.row(j).norm() - sign * r.network.b1(m) / norm));
    }
    out["col_err"] = col_err;
    out["col_err_median"] = tools::median(col_err);
    out["col_err_max"] = *std::max_element(col_err.begin(), col_err.end());
    out["bias_err"] = bias_err;
    out["bias_err_median"] = tools::median(bias_err);
    out["min_cos"] = rec.min_cosine;
  }
  out["lambda_min"] = r.lambda.size() > 0 ? r.lambda.cwiseAbs().minCoeff() : 0.0;
  out["noise_level"] = r.noise_level;
  out["weak_units"] = r.weak_units.size();
  out["route"] = nnlift::to_string(r.route);
  out["bias_used"] = nnlift::to_string(r.bias_used);
  out["hooi_sweeps"] = r.hooi_sweeps;
  out["train_loss"] = r.train_loss;
  if (to.refine) {
    out["loss_before_refine"] = r.loss_before_refine;
    out["refine_iterations"] = r.refine_iterations;
  }
  nlohmann::json stages = nlohmann::json::object();
  for (const nnlift::StageTime& st : r.stages) {
    stages[st.name] = st.seconds;
  }
  out["stages"] = stages;
  out["warnings"] = r.warnings;
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args;
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (key == "--help" || key == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (key.rfind("--", 0) != 0 || i + 1 >= argc) {
      std::cerr << "trial: expected --key value pairs, got '" << key << "'\n" << kUsage;
      return 2;
    }
    args[key.substr(2)] = argv[++i];
  }
  try {
    return run(args);
  } catch (const std::exception& e) {
    std::cerr << "trial: " << e.what() << "\n";
    return 1;
  }
}
