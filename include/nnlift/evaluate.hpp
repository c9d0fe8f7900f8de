// Evaluating a network on data and against a planted ("true") network.
// SPDX-License-Identifier: MIT
#pragma once

#include <vector>

#include <nnlift/execution.hpp>
#include <nnlift/model.hpp>
#include <nnlift/types.hpp>

namespace nnlift {

/// Prediction quality on labelled data.
struct Scores {
  double mse = 0;       ///< regression: mean squared error
  double r2 = 0;        ///< regression: 1 − MSE / Var(y)
  double accuracy = 0;  ///< classification: share of correct 0/1 predictions at threshold 0.5
  double log_loss =
      0;  ///< classification: mean negative log-likelihood (probabilities clipped at 1e-15)
};

/// Scores over the rows of every part of `context` (each part passes its own rows).
/// \throws std::invalid_argument if X and y disagree in rows or X has the wrong width.
Scores score(const TwoLayerNetwork& network,
             const Matrix& X,
             const Vector& y,
             const ExecutionContext& context = ExecutionContext());

/// Minimum-cost perfect assignment (Hungarian algorithm, O(k³)) for a square cost matrix:
/// result[i] is the column assigned to row i. \throws std::invalid_argument if not square.
std::vector<Index> hungarian(const Matrix& cost);

/// Recovery of a planted network's first-layer directions.
struct Recovery {
  Vector cosine;             ///< per true unit, |cos| with its matched estimated unit
  std::vector<Index> match;  ///< matched estimated unit per true unit
  double min_cosine = 0;
  double mean_cosine = 0;
};

/// Matches estimated units to true units by the Hungarian algorithm on |cos(W1 rows)|.
/// \throws std::invalid_argument if the input dimensions differ or the estimate has fewer units.
Recovery recovery(const TwoLayerNetwork& truth, const TwoLayerNetwork& estimate);

}  // namespace nnlift
