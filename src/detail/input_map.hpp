// The input maps' statistics on a sample already gathered (detail::strided_sample: every part
// holds the same rows), so that train() gathers it once for the tails and the rank-Gauss map.
// SPDX-License-Identifier: MIT
#pragma once

#include <vector>

#include <nnlift/input_map.hpp>

namespace nnlift::detail {

/// The median of `values` (not empty): the middle one, or the mean of the middle two (the
/// tails' medians; describe takes its own the same way).
double median_of(std::vector<double> values);

/// input_tails on `sample`.
InputTails tails_of_sample(const Matrix& sample, double threshold);

/// fit_rank_gauss on `sample`. \throws DataError for a sample without rows.
RankGaussMap rank_gauss_of_sample(const Matrix& sample, Index max_knots);

}  // namespace nnlift::detail
