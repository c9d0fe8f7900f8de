// One reproduction trial: draw a planted network and data (nnlift::make_synthetic), train it
// (nnlift::train), and print one JSON line of metrics. tools/reproduce runs grids of these.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <Eigen/SVD>
#include <nlohmann/json.hpp>

#include <nnlift/evaluate.hpp>
#include <nnlift/npy.hpp>
#include <nnlift/synth.hpp>
#include <nnlift/train.hpp>

#include "cli/flags.hpp"
#include "stats.hpp"

namespace {

using nnlift::Index;
using nnlift::Matrix;
using nnlift::Vector;

const char* const kUsage =
    "usage: trial [options]\n\n"
    "Draws planted data with the flags of 'nnlift synth', trains with those of 'nnlift train'\n"
    "(the training seed is --train-seed), and prints one JSON object: column and bias errors\n"
    "after matching, relMSE against the noise-free teacher on the test rows, min |lambda|,\n"
    "noise level, route, stage times. With --export PREFIX it writes PREFIX_train.npy [X y]\n"
    "and PREFIX_test.npy [X f] instead of training.";

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void write_table(const std::string& path, const Matrix& X, const Vector& last) {
  Matrix table(X.rows(), X.cols() + 1);
  table << X, last;
  nnlift::write_npy(path, nnlift::to_npy(table));
}

int run(const std::vector<std::string>& args) {
  namespace cli = nnlift::cli;
  cli::SynthFlags synth;
  cli::TrainFlags train;
  cli::CommonFlags common;
  int oracle_directions = 0;
  std::string export_prefix;
  // The experiments' defaults, which tools/reproduce relies on: noisy labels and large sets.
  synth.options.samples = 100000;
  synth.options.test_samples = 100000;
  synth.options.noise = 0.05;
  cli::po::options_description desc("options");
  cli::add_synth_flags(desc, synth);
  cli::add_train_flags(desc, train, true);
  desc.add_options()("oracle-directions",
                     cli::with_default(&oracle_directions),
                     "1: train with the teacher's directions (bias and output stages only)")(
      "export", cli::po::value(&export_prefix), "write the data as .npy and do not train");
  cli::add_common(desc, common, true);
  if (!cli::parse_command(kUsage, args, desc, std::cout)) {
    return 0;
  }
  const nnlift::SynthOptions so = cli::to_synth_options(synth, common.threads);
  train.options.hidden = so.hidden;
  train.activation = synth.activation;
  train.task = synth.task;
  nnlift::TrainOptions to = cli::to_train_options(train);
  const bool oracle = oracle_directions != 0;
  const int threads = common.threads;

  const auto t_data = std::chrono::steady_clock::now();
  const nnlift::SynthData s = nnlift::make_synthetic(so);
  const double data_seconds = seconds_since(t_data);
  const Vector f_test = nnlift::predict_value(s.truth, s.X_test).col(0);
  if (!export_prefix.empty()) {
    write_table(export_prefix + "_train.npy", s.X_train, s.y_train);
    write_table(export_prefix + "_test.npy", s.X_test, f_test);
    return 0;
  }
  nnlift::Dataset data = nnlift::training_set(s);
  if (oracle) {
    to.directions = s.truth.W1;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const nnlift::TrainResult r = nnlift::train(data, to, nnlift::ExecutionContext(threads));
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
  const nnlift::MomentReport& m = r.moments;
  out["lambda_min"] = m.lambda.size() > 0 ? m.lambda.cwiseAbs().minCoeff() : 0.0;
  out["noise_level"] = m.noise_level;
  out["weak_units"] = m.weak_units.size();
  out["route"] = nnlift::to_string(m.route);
  out["bias_used"] = nnlift::to_string(r.bias_used);
  out["subspace_sweeps"] = m.subspace_sweeps;
  out["train_loss"] = r.train_loss;
  if (to.refine.enabled) {
    out["loss_before_refine"] = r.refine.loss_before;
    out["refine_iterations"] = r.refine.iterations;
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
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return run(args);
  } catch (const nnlift::cli::UsageError& e) {
    std::cerr << "trial: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "trial: " << e.what() << "\n";
    return 1;
  }
}
