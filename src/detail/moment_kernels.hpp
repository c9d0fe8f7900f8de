// The pieces of the moment passes that the in-memory pipeline and the streamed one share: what a
// block of rows contributes, and what the sums become. SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <vector>

#include <nnlift/moments.hpp>

namespace nnlift::detail {

/// (Xb − 1 meanᵀ)ᵀ (Xb − 1 meanᵀ): a block's contribution to the covariance (times its rows).
Matrix centred_gram(const Eigen::Ref<const Matrix>& Xb, const Vector& mean);

/// The standardisation from the inputs' mean and covariance (divisor n), as fit_standardizer.
Standardizer standardizer_from_moments(const Vector& mean,
                                       const Matrix& cov,
                                       const std::vector<std::string>& names,
                                       const StandardizerOptions& options);

}  // namespace nnlift::detail
