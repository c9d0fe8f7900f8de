// A Gaussian mixture as JSON, for model and data metadata.
// SPDX-License-Identifier: MIT
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include <nnlift/mixture.hpp>

namespace nnlift::detail {

/// {"components", "weights", "means": [C rows of d], "covariances": [C arrays of d² values]}.
inline nlohmann::json mixture_json(const GaussianMixture& g) {
  auto values = [](const Matrix& M) {
    return std::vector<double>(M.data(), M.data() + M.size());  // column order (symmetric)
  };
  nlohmann::json means = nlohmann::json::array(), covariances = nlohmann::json::array();
  for (Index c = 0; c < g.components(); ++c) {
    means.push_back(values(g.means.row(c).transpose()));
    covariances.push_back(values(g.covariances[static_cast<std::size_t>(c)]));
  }
  return {{"components", g.components()},
          {"weights", values(g.weights)},
          {"means", means},
          {"covariances", covariances}};
}

}  // namespace nnlift::detail
