// SPDX-License-Identifier: MIT
#include <Eigen/SVD>
#include <doctest/doctest.h>

#include <nnlift/decompose.hpp>
#include <nnlift/npy.hpp>

#include "detail/top_singular.hpp"
#include "test_helpers.hpp"

using nnlift::DecomposeMethod;
using nnlift::DenseSymmetricTensor3;
using nnlift::Status;

namespace {

// Σ λ_j v_j^{⊗3} plus symmetric Gaussian noise of Frobenius norm eps·‖T‖.
DenseSymmetricTensor3 noisy(const Vector& lambda, const Matrix& V, double eps, std::uint64_t seed) {
  const DenseSymmetricTensor3 T = DenseSymmetricTensor3::from_factors(lambda, V);
  if (eps == 0) {
    return T;
  }
  const Index d = V.rows();
  nnlift::detail::Rng rng(seed);
  const Matrix G = rng.normal_matrix(d, 3 * d);
  // A symmetric noise tensor: Σ over random rank-one symmetric terms.
  const DenseSymmetricTensor3 E = DenseSymmetricTensor3::from_factors(rng.normal_vector(3 * d), G);
  std::vector<double> data = T.data();
  const double scale = eps * T.frobenius_norm() / E.frobenius_norm();
  for (std::size_t i = 0; i < data.size(); ++i) {
    data[i] += scale * E.data()[i];
  }
  return DenseSymmetricTensor3(d, data);
}

// Compares λ up to the permutation found on the components.
double max_lambda_error(const Vector& truth, const Matrix& V, const nnlift::DecomposeResult& r) {
  std::vector<Index> perm;
  (void)test::max_column_error(V, r.components, &perm);
  double worst = 0;
  for (Index j = 0; j < truth.size(); ++j) {
    worst = std::max(worst,
                     std::abs(std::abs(truth(j)) - r.lambda(perm[static_cast<std::size_t>(j)])) /
                         std::abs(truth(j)));
  }
  return worst;
}

nnlift::DecomposeOptions options_for(Index k, DecomposeMethod method, std::uint64_t seed = 1) {
  nnlift::DecomposeOptions o;
  o.rank = k;
  o.method = method;
  o.seed = seed;
  return o;
}

}  // namespace

TEST_SUITE("decompose") {
  TEST_CASE("subspace: HOOI's top singular vectors of an unfolding that crashed Eigen's BDCSVD") {
    // A 200×100 unfolding T(I, Q, Q) from a mixture-score run (d = 200, k = 10): Eigen 3.4's
    // BDCSVD segfaulted on it in nnlift's build, and in a standalone program built with -O3
    // -march=native on an AVX-512 machine (an index of -1 in its deflation; without AVX-512 or
    // FMA contraction it did not). Whether it does turns on how the compiler contracted its
    // arithmetic, so this test does not reproduce the crash: it checks the replacement, the Gram
    // matrix's symmetric eigenproblem, against JacobiSVD.
    const nnlift::NpyArray a =
        nnlift::read_npy(NNLIFT_REGRESSIONS_DIR "/hooi_unfolding_200x100.npy");
    REQUIRE(a.shape == std::vector<Index>{200, 100});
    const Matrix Y =
        Eigen::Map<const Eigen::Matrix<double, -1, -1, Eigen::RowMajor>>(a.data.data(), 200, 100);
    const Index k = 10;
    Vector values;
    const Matrix U = nnlift::detail::top_left_singular(Y, k, values);
    const Eigen::JacobiSVD<Matrix> oracle(Y, Eigen::ComputeThinU | Eigen::ComputeThinV);
    REQUIRE(values.size() == k + 1);
    CHECK((values - oracle.singularValues().head(k + 1)).cwiseAbs().maxCoeff() < 1e-12);
    CHECK((U.transpose() * U - Matrix::Identity(k, k)).cwiseAbs().maxCoeff() < 1e-12);
    // The same subspace: every oracle vector lies in span(U).
    const Matrix V = oracle.matrixU().leftCols(k);
    CHECK((V - U * (U.transpose() * V)).norm() < 1e-9);
    // Wide matrices (more rows than columns is the other branch): Yᵀ's top vectors as well.
    Vector wide_values;
    const Matrix W = nnlift::detail::top_left_singular(Y.transpose().eval(), k, wide_values);
    const Matrix Vw = oracle.matrixV().leftCols(k);
    CHECK((wide_values - oracle.singularValues().head(k + 1)).cwiseAbs().maxCoeff() < 1e-12);
    CHECK((Vw - W * (W.transpose() * Vw)).norm() < 1e-9);
  }

  TEST_CASE("power method: orthogonal planted tensors, k = d and k < d, to 1e-10") {
    for (Index k : {6, 3}) {
      const Index d = 6;
      const Matrix V = test::random_orthonormal(d, k, 100 + static_cast<std::uint64_t>(k));
      const Vector lambda = Vector::LinSpaced(k, 3.0, 1.0);
      const DenseSymmetricTensor3 T = DenseSymmetricTensor3::from_factors(lambda, V);
      nnlift::PowerMethodOptions o;
      o.rank = k;
      o.seed = 5;
      const nnlift::PowerMethodResult r = nnlift::tensor_power_method(T, o);
      CAPTURE(k);
      REQUIRE(r.status == Status::Success);
      CHECK(test::max_column_error(V, r.eigenvectors) < 1e-10);
      CHECK((Vector(r.eigenvalues) - lambda).cwiseAbs().maxCoeff() < 1e-10);  // found largest first
      CHECK(r.restart_gap.size() == k);
      CHECK(r.iterations.size() == static_cast<std::size_t>(k));
    }
  }

  TEST_CASE("power method: negative weights come back positive with flipped vectors") {
    const Matrix V = test::random_orthonormal(4, 4, 3);
    const Vector lambda = (Vector(4) << 2.0, -1.5, 1.0, -0.5).finished();
    const nnlift::PowerMethodResult r =
        nnlift::tensor_power_method(DenseSymmetricTensor3::from_factors(lambda, V));
    REQUIRE(r.status == Status::Success);
    CHECK((r.eigenvalues.array() > 0).all());
    std::vector<Index> perm;
    CHECK(test::max_column_error(V, r.eigenvectors, &perm) < 1e-10);
    for (Index j = 0; j < 4; ++j) {
      const double dot = V.col(j).dot(r.eigenvectors.col(perm[static_cast<std::size_t>(j)]));
      CHECK(dot * lambda(j) > 0);  // the sign of λ moved into the vector
    }
  }

  TEST_CASE("decompose: every method recovers orthogonal planted tensors, k = d and k < d") {
    for (DecomposeMethod m :
         {DecomposeMethod::Power, DecomposeMethod::Als, DecomposeMethod::Auto}) {
      for (Index k : {5, 3}) {
        const Index d = 5;
        const Matrix V = test::random_orthonormal(d, k, 7);
        const Vector lambda = (Vector(5) << 2.0, -1.7, 1.3, 1.0, -0.6).finished().head(k);
        const DenseSymmetricTensor3 T = DenseSymmetricTensor3::from_factors(lambda, V);
        const nnlift::DecomposeResult r = nnlift::decompose(T, options_for(k, m));
        CAPTURE(nnlift::to_string(m));
        CAPTURE(k);
        CHECK(r.status == Status::Success);
        CHECK(test::max_column_error(V, r.components) < 1e-10);
        CHECK(max_lambda_error(lambda, V, r) < 1e-10);
        CHECK(r.relative_residual < 1e-10);
        CHECK(r.residual_is_exact);
      }
    }
  }

  TEST_CASE("decompose: non-orthogonal mixed-sign planted tensors to 1e-8 without noise") {
    for (DecomposeMethod m : {DecomposeMethod::Power,
                              DecomposeMethod::Jennrich,
                              DecomposeMethod::Als,
                              DecomposeMethod::Auto}) {
      for (Index d : {8, 12}) {
        const Index k = 8;
        const Matrix V = test::random_unit_columns(d, k, 40 + static_cast<std::uint64_t>(d));
        const Vector lambda = (Vector(k) << 1.0, -1.3, 0.8, -0.6, 1.6, -1.1, 0.7, 1.2).finished();
        const nnlift::DecomposeResult r =
            nnlift::decompose(DenseSymmetricTensor3::from_factors(lambda, V), options_for(k, m, 3));
        CAPTURE(nnlift::to_string(m));
        CAPTURE(d);
        CHECK(r.status == Status::Success);
        CHECK(test::max_column_error(V, r.components) < 1e-8);
        CHECK(max_lambda_error(lambda, V, r) < 1e-8);
      }
    }
  }

  TEST_CASE("decompose: with noise of relative size eps the component error is O(eps)") {
    const Index k = 6;
    const Matrix V = test::conditioned_unit_columns(k, k, 3.0, 77);
    const Vector lambda = (Vector(k) << 1.0, -1.2, 0.9, -0.7, 1.4, 1.1).finished();
    const Eigen::JacobiSVD<Matrix> svd(V);
    INFO("cond(V) = " << svd.singularValues()(0) / svd.singularValues()(k - 1));
    for (DecomposeMethod m : {DecomposeMethod::Power, DecomposeMethod::Als}) {
      double previous = 0;
      for (double eps : {1e-2, 1e-3, 1e-4}) {
        const nnlift::DecomposeResult r =
            nnlift::decompose(noisy(lambda, V, eps, 5), options_for(k, m, 2));
        const double err = test::max_column_error(V, r.components);
        CAPTURE(nnlift::to_string(m));
        CAPTURE(eps);
        INFO("max column error " << err);
        CHECK(err < 20 * eps);  // linear in eps with a modest constant
        if (previous > 0) {
          CHECK(err < previous / 5);  // and it shrinks with eps (×10 less noise)
        }
        previous = err;
      }
    }
  }

  TEST_CASE("decompose: bitwise identical results for 1 and 2 threads") {
    const Index k = 6;
    const Matrix V = test::random_unit_columns(9, k, 8);
    const Vector lambda = (Vector(k) << 1.0, -1.2, 0.9, -0.7, 1.4, 1.1).finished();
    const DenseSymmetricTensor3 T = noisy(lambda, V, 0.01, 9);
    for (DecomposeMethod m :
         {DecomposeMethod::Power, DecomposeMethod::Als, DecomposeMethod::Auto}) {
      nnlift::DecomposeOptions o = options_for(k, m, 4);
      o.num_threads = 1;
      const nnlift::DecomposeResult a = nnlift::decompose(T, o);
      o.num_threads = 2;
      const nnlift::DecomposeResult b = nnlift::decompose(T, o);
      CAPTURE(nnlift::to_string(m));
      CHECK((a.components.array() == b.components.array()).all());
      CHECK((a.lambda.array() == b.lambda.array()).all());
      CHECK(a.iterations == b.iterations);
    }
    nnlift::PowerMethodOptions po;
    po.seed = 3;
    po.num_threads = 1;
    const DenseSymmetricTensor3 orth =
        noisy(Vector::LinSpaced(5, 2, 1), test::random_orthonormal(5, 5, 1), 0.05, 2);
    const nnlift::PowerMethodResult a = nnlift::tensor_power_method(orth, po);
    po.num_threads = 2;
    const nnlift::PowerMethodResult b = nnlift::tensor_power_method(orth, po);
    CHECK((a.eigenvectors.array() == b.eigenvectors.array()).all());
    CHECK((a.restart_gap.array() == b.restart_gap.array()).all());
    po.seed = 4;  // another seed starts elsewhere: the restart statistics change
    const nnlift::PowerMethodResult c = nnlift::tensor_power_method(orth, po);
    CHECK((a.restart_gap.array() != c.restart_gap.array()).any());
  }

  TEST_CASE("subspace: HOOI finds the span of the components of an implicit tensor") {
    const Index d = 30, k = 4;
    const Matrix V = test::random_unit_columns(d, k, 12);
    const Vector lambda = (Vector(k) << 1.0, -0.8, 0.6, -1.2).finished();
    // Implicit: only contractions, computed from the factors, never d³ values.
    const nnlift::CallbackSymmetricTensor3 T(d, [&](const Matrix& U, const Matrix& W) {
      const Matrix a = V.transpose() * U, b = V.transpose() * W;
      return Matrix(V * (lambda.asDiagonal() * a.cwiseProduct(b)));
    });
    nnlift::SubspaceOptions o;
    o.rank = k;
    o.seed = 2;
    const nnlift::SubspaceResult s = nnlift::tensor_subspace(T, o);
    CHECK(s.status == Status::Success);
    const Matrix residual = V - s.Q * (s.Q.transpose() * V);
    CHECK(residual.norm() < 1e-10);
    CHECK((s.Q.transpose() * s.Q - Matrix::Identity(k, k)).norm() < 1e-12);
    // The whole pipeline on the implicit tensor.
    const nnlift::DecomposeResult r = nnlift::decompose(T, options_for(k, DecomposeMethod::Auto));
    CHECK(test::max_column_error(V, r.components) < 1e-8);
    CHECK(!r.residual_is_exact);
  }

  TEST_CASE("subspace: noise_tolerance stops HOOI once what is left is below the noise") {
    // Rank 4 plus symmetric noise: σ_{k+1}/σ_k of the unfolding is the noise-to-signal ratio ρ.
    const Index d = 20, k = 4;
    const Matrix V = test::random_unit_columns(d, k, 31);
    const Vector lambda = (Vector(k) << 1.0, -0.9, 0.8, 0.7).finished();
    const DenseSymmetricTensor3 signal = DenseSymmetricTensor3::from_factors(lambda, V);
    const Matrix noise = test::random_orthonormal(d * d * d, 1, 32) * 0.6;
    std::vector<double> values = signal.data();
    for (std::size_t i = 0; i < values.size(); ++i) {
      values[i] += noise(static_cast<Index>(i), 0);
    }
    const DenseSymmetricTensor3 T = DenseSymmetricTensor3::symmetrize(d, values);
    nnlift::SubspaceOptions o;
    o.rank = k;
    o.seed = 3;
    o.max_sweeps = 500;
    o.tolerance = 1e-13;
    const nnlift::SubspaceResult full = nnlift::tensor_subspace(T, o);
    REQUIRE(full.status == Status::Success);
    const double rho = full.singular_values(k) / full.singular_values(k - 1);
    CAPTURE(rho);
    REQUIRE(rho > 0.02);
    o.noise_tolerance = 0.1;
    const nnlift::SubspaceResult early = nnlift::tensor_subspace(T, o);
    CHECK(early.status == Status::Success);
    CHECK(early.sweeps < full.sweeps);
    // Where it stopped is within the tolerance of the fixed point (with the tail rule's slack).
    const Matrix outside = full.Q - early.Q * (early.Q.transpose() * full.Q);
    CHECK(outside.norm() < 2 * 0.1 * rho);
    // Without the sketch, from where the full run ended: the same fixed point, and no pass but
    // the sweeps; a start with fewer than k columns is refused.
    o.sketch = false;
    o.start = full.Q;
    const nnlift::SubspaceResult resumed = nnlift::tensor_subspace(T, o);
    CHECK(resumed.status == Status::Success);
    CHECK(resumed.sweeps == 1);
    CHECK((full.Q - resumed.Q * (resumed.Q.transpose() * full.Q)).norm() < 1e-10);
    // A start one small step from the fixed point (as train()'s second HOOI starts from the
    // first's subspace): the first sweep's change is a HOOI step's, and when what it leaves
    // (change × ρ/(1 − ρ)) is below the noise tolerance, one sweep is all it takes. (The rule
    // used to wait for a second sweep, as it must from a sketch.)
    o.start = full.Q + 0.01 * test::random_orthonormal(d, k, 33);
    const nnlift::SubspaceResult nudged = nnlift::tensor_subspace(T, o);
    CHECK(nudged.status == Status::Success);
    CHECK(nudged.last_change > o.tolerance);
    CHECK(nudged.sweeps == 1);
    CHECK((full.Q - nudged.Q * (nudged.Q.transpose() * full.Q)).norm() < 2 * 0.1 * rho);
    o.start = full.Q.leftCols(k - 1);
    CHECK_THROWS_WITH(nnlift::tensor_subspace(T, o),
                      doctest::Contains("start must be finite with at least k = 4 columns"));
    // A sketch computed by the caller for sketch_pairs gives the same subspace, bit for bit.
    o.sketch = true;
    o.start = Matrix();
    Matrix U, W;
    nnlift::sketch_pairs(d, k + o.sketch_extra, o.seed, U, W);
    const nnlift::SubspaceResult internal = nnlift::tensor_subspace(T, o);
    o.sketch_values = T.contract_pairs(U, W);
    const nnlift::SubspaceResult given = nnlift::tensor_subspace(T, o);
    CHECK(given.sweeps == internal.sweeps);
    CHECK((given.Q.array() == internal.Q.array()).all());
    o.sketch_values = Matrix::Zero(d, k);
    CHECK_THROWS_WITH(nnlift::tensor_subspace(T, o),
                      doctest::Contains("sketch_values is 20x4; expected 20x14"));
    o.sketch_values = Matrix();
    o.noise_tolerance = -1;
    CHECK_THROWS_WITH(nnlift::tensor_subspace(T, o),
                      doctest::Contains("SubspaceOptions::noise_tolerance = -1"));
  }

  TEST_CASE("decompose: every status path of jennrich, cp_als and tensor_subspace") {
    const Matrix V = test::random_orthonormal(4, 3, 2);
    const DenseSymmetricTensor3 T = DenseSymmetricTensor3::from_factors(Vector::Ones(3), V);
    // jennrich: success on a rank-3 tensor of dimension 3 (its core), failure when the tensor
    // has rank below its dimension (every slice pair is singular).
    const DenseSymmetricTensor3 core = T.project(V);
    nnlift::JennrichOptions jo;
    const nnlift::CpResult ok = nnlift::jennrich(core, jo);
    CHECK(ok.status == Status::Success);
    CHECK(ok.message.empty());
    const DenseSymmetricTensor3 low =
        DenseSymmetricTensor3::from_factors(Vector::Ones(1), test::random_orthonormal(3, 1, 3));
    const nnlift::CpResult refused = nnlift::jennrich(low, jo);
    CHECK(refused.status == Status::NumericalIssue);
    CHECK(refused.message.find("rejected") != std::string::npos);
    CHECK(refused.factors.size() == 0);
    // cp_als: converged; out of sweeps; diverged (non-finite start).
    nnlift::AlsOptions ao;
    CHECK(nnlift::cp_als(core, ok.factors, ao).status == Status::Success);
    ao.max_sweeps = 1;
    ao.tolerance = 0;
    const nnlift::CpResult short_run =
        nnlift::cp_als(core, Matrix::Identity(3, 3) + 0.3 * Matrix::Ones(3, 3), ao);
    CHECK(short_run.status == Status::NotConverged);
    CHECK(short_run.message.find("after 1 sweeps") != std::string::npos);
    CHECK(short_run.factors.size() == 9);
    const nnlift::CpResult diverged =
        nnlift::cp_als(core, Matrix::Constant(3, 3, std::nan("")), nnlift::AlsOptions());
    CHECK(diverged.status == Status::NumericalIssue);
    CHECK(diverged.message.find("non-finite") != std::string::npos);
    // tensor_subspace: settles; runs out of sweeps; a zero sketch.
    nnlift::SubspaceOptions so;
    so.rank = 3;
    so.seed = 1;
    const nnlift::SubspaceResult settled = nnlift::tensor_subspace(T, so);
    CHECK(settled.status == Status::Success);
    so.max_sweeps = 1;
    so.tolerance = 0;
    const nnlift::SubspaceResult moving = nnlift::tensor_subspace(T, so);
    CHECK(moving.status == Status::NotConverged);
    CHECK(moving.message.find("still moving after 1 sweeps") != std::string::npos);
    const DenseSymmetricTensor3 zero(4, std::vector<double>(64, 0.0));
    const nnlift::SubspaceResult none = nnlift::tensor_subspace(zero, so);
    CHECK(none.status == Status::NumericalIssue);
    CHECK(none.message.find("zero or not finite") != std::string::npos);
  }

  TEST_CASE("decompose: derived sub-option fields are refused, not silently overwritten") {
    nnlift::DecomposeOptions o = options_for(2, DecomposeMethod::Power);
    o.power.seed = 5;
    CHECK_THROWS_WITH_AS(nnlift::validate(o),
                         doctest::Contains("DecomposeOptions::power.seed = 5; must be 0"),
                         std::invalid_argument);
    o = options_for(2, DecomposeMethod::Power);
    o.subspace.rank = 2;
    CHECK_THROWS_WITH_AS(nnlift::validate(o),
                         doctest::Contains("DecomposeOptions::subspace.rank = 2"),
                         std::invalid_argument);
    o = options_for(2, DecomposeMethod::Jennrich);
    o.jennrich.num_threads = 2;
    CHECK_THROWS_WITH_AS(nnlift::validate(o),
                         doctest::Contains("DecomposeOptions::jennrich.num_threads = 2"),
                         std::invalid_argument);
  }

  TEST_CASE("decompose: misuse throws and names the culprit") {
    const DenseSymmetricTensor3 T =
        DenseSymmetricTensor3::from_factors(Vector::Ones(2), test::random_orthonormal(3, 2, 1));
    CHECK_THROWS_WITH_AS(
        nnlift::decompose(T, options_for(4, DecomposeMethod::Auto)),
        doctest::Contains("DecomposeOptions::rank = 4 exceeds the dimension d = 3"),
        std::invalid_argument);
    const DenseSymmetricTensor3 zero(3, std::vector<double>(27, 0.0));
    CHECK_THROWS_WITH_AS(nnlift::decompose(zero, options_for(2, DecomposeMethod::Auto)),
                         doctest::Contains("zero"),
                         nnlift::DataError);
    nnlift::DecomposeOptions o = options_for(2, DecomposeMethod::Power);
    o.power.num_restarts = 0;
    CHECK_THROWS_WITH_AS(nnlift::decompose(T, o),
                         doctest::Contains("PowerMethodOptions::num_restarts = 0; must be > 0"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(nnlift::parse_decompose_method("magic"),
                         doctest::Contains("expected auto, power, jennrich or als"),
                         std::invalid_argument);
  }
}
