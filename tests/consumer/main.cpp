// SPDX-License-Identifier: MIT
// Consumer of the installed package: decomposes a planted tensor through the public API.
#include <cmath>
#include <cstdio>

#include <nnlift/nnlift.hpp>

int main() {
  const nnlift::Index d = 4;
  nnlift::Matrix V = nnlift::Matrix::Identity(d, d);
  nnlift::Vector lambda(d);
  lambda << 4.0, -3.0, 2.0, 1.0;
  const nnlift::DenseSymmetricTensor3 T = nnlift::DenseSymmetricTensor3::from_factors(lambda, V);
  nnlift::DecomposeOptions options;
  options.rank = d;
  options.seed = 3;
  const nnlift::DecomposeResult r = nnlift::decompose(T, options);
  std::printf("nnlift %s: status %s, relative residual %.3g\n",
              nnlift::version_string(),
              nnlift::to_string(r.status),
              r.relative_residual);
  return (r.status == nnlift::Status::Success && r.relative_residual < 1e-10) ? 0 : 1;
}
