// The flag sets of `nnlift synth` and `nnlift train`, shared with tools/trial: one place that
// maps flags to library options, and library field names back to flags in messages.
// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nnlift/synth.hpp>
#include <nnlift/train.hpp>

#include "cli/options.hpp"

namespace nnlift::cli {

/// `nnlift synth` flags (except the output paths).
struct SynthFlags {
  SynthOptions options;
  std::string activation = to_string(options.activation);
  std::string task = to_string(options.task);
  std::string output_weights = to_string(options.output_weights);
  std::string inputs = to_string(options.inputs);
};
void add_synth_flags(po::options_description& desc, SynthFlags& flags);
/// \throws UsageError naming the flag for an unknown name or an invalid value.
SynthOptions to_synth_options(const SynthFlags& flags, int threads);

/// `nnlift train` flags (except the data and model paths).
struct TrainFlags {
  TrainOptions options;
  std::string activation = to_string(options.activation);
  std::string task = "auto";
  std::string residualize = to_string(options.moments.residualize);
  std::string weak_units = to_string(options.moments.weak_units);
  std::string method = to_string(options.decompose.method);
  std::string bias = to_string(options.bias.method);
  std::string init = to_string(options.init);
  std::string refine = "none";
  std::string ridge = "auto";
  std::string linear_term = "auto";
  std::string clamp_inputs = "on";
  std::string cubic_control_variate = "on";
  std::string refine_random_start = "on";
  std::string refine_all_rows = "on";
  std::string weight_decay = "auto";
  std::string validation = "auto";
  std::string validation_folds = "auto";
  std::string score = to_string(options.score);
  std::string mixture_components = "auto";
  std::string mixture_covariance = to_string(options.mixture.covariance);
  std::string hidden;  ///< "auto" or k; empty when the caller sets options.hidden itself
};
/// With `shared_with_synth`, the flags that `nnlift synth` already defines (--hidden,
/// --activation, --task) are left out for the caller to copy from the synth options, and the
/// training seed is --train-seed (tools/trial, which draws data and trains in one run).
void add_train_flags(po::options_description& desc,
                     TrainFlags& flags,
                     bool shared_with_synth = false);
/// The options with every name parsed; the task stays regression when --task auto (the caller
/// decides from the data). \throws UsageError naming the flag.
TrainOptions to_train_options(const TrainFlags& flags);

/// Library field → flag, for messages: "TrainOptions::refine.max_iterations" →
/// "--refine-iterations".
const std::vector<std::pair<std::string, std::string>>& train_flag_names();
const std::vector<std::pair<std::string, std::string>>& synth_flag_names();

/// Runs `check` (a library validate()); an std::invalid_argument it throws becomes a UsageError
/// whose message names flags instead of fields.
template <class Check>
void validate_as_flags(const std::vector<std::pair<std::string, std::string>>& names,
                       Check&& check) {
  try {
    check();
  } catch (const std::invalid_argument& e) {
    throw UsageError(with_flag_names(e.what(), names));
  }
}

}  // namespace nnlift::cli
