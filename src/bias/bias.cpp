// Stage "biases": the one dispatch point. Adding an estimator: a file here with a function of
// the BiasProblem (train/stages.hpp), a BiasMethod value with its name, and one case below.
// SPDX-License-Identifier: MIT
#include "detail/names.hpp"
#include "train/stages.hpp"

namespace nnlift {
namespace {
const detail::EnumName<BiasMethod> kBiasNames[] = {{BiasMethod::Auto, "auto"},
                                                   {BiasMethod::Ratio, "ratio"},
                                                   {BiasMethod::Lsq, "lsq"},
                                                   {BiasMethod::Fourier, "fourier"}};
}  // namespace

const char* to_string(BiasMethod method) noexcept { return detail::name_of(kBiasNames, method); }

BiasMethod parse_bias_method(const std::string& name) {
  return detail::parse_name(kBiasNames, name, "bias method");
}

namespace detail {

BiasFit fit_biases(const BiasProblem& problem, BiasMethod* used) {
  // The moment-ratio estimate is closed-form and cheap: it is the answer for "ratio" and the
  // start of the iterative estimators.
  const BiasFit ratio = bias_by_ratio(problem);
  BiasMethod method = problem.options.method;
  if (method == BiasMethod::Auto) {
    method = problem.task == Task::Regression ? BiasMethod::Lsq : BiasMethod::Ratio;
  }
  *used = method;
  switch (method) {
    case BiasMethod::Lsq:
      return bias_by_lsq(problem, ratio);
    case BiasMethod::Fourier:
      return bias_by_fourier(problem, ratio);
    case BiasMethod::Ratio:
    case BiasMethod::Auto:
      break;
  }
  return ratio;
}

}  // namespace detail
}  // namespace nnlift
