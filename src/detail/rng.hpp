// The library's random numbers (nnlift/experimental.hpp), under their internal names.
// SPDX-License-Identifier: MIT
#pragma once

#include <nnlift/experimental.hpp>

namespace nnlift::detail {

using experimental::derive_seed;
using experimental::Rng;
using experimental::splitmix64;

}  // namespace nnlift::detail
