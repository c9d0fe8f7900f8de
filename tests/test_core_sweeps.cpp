// HOOI sweeps directed by the core (core_sweeps): the same fixed point as HOOI, for the moment
// tensor of stored or standardised-in-pass rows, with a cubic control variate's shift, and with
// the quadratic control variate subtracted in the first pass.
// SPDX-License-Identifier: MIT
#include <Eigen/QR>
#include <Eigen/SVD>
#include <doctest/doctest.h>

#include <nnlift/moments.hpp>
#include <nnlift/subspace.hpp>
#include <nnlift/whiten.hpp>

#include "detail/moment_kernels.hpp"
#include "detail/rng.hpp"
#include "detail/top_singular.hpp"
#include "test_helpers.hpp"
#include "train/stages.hpp"

namespace {

using nnlift::Index;
using nnlift::Matrix;
using nnlift::Vector;

Matrix cs_orthonormal(const Matrix& M) {
  const Eigen::HouseholderQR<Matrix> qr(M);
  return qr.householderQ() * Matrix::Identity(M.rows(), M.cols());
}

// Rows x ~ N(0, I) and labels y = Σ_j a_j (w_jᵀx)³ + noise (w_j orthonormal), whose moment
// tensor E[y S3(x)] is 6 Σ_j a_j w_j⊗w_j⊗w_j; centred labels, and a start some way from HOOI's
// fixed point.
struct CsPlanted {
  Matrix X;
  Vector r;
  Matrix Q0;
};
CsPlanted cs_planted(Index d, Index k, Index n, std::uint64_t seed) {
  nnlift::detail::Rng rng(seed);
  CsPlanted p;
  p.X = rng.normal_matrix(n, d);
  const Matrix W = cs_orthonormal(rng.normal_matrix(d, k));
  const Matrix Z = p.X * W;
  Vector y = 0.5 * Vector(rng.normal_matrix(n, 1));
  for (Index j = 0; j < k; ++j) {
    y += (1.0 + 0.5 * static_cast<double>(j)) * Z.col(j).array().cube().matrix();
  }
  p.r = (y.array() - y.mean()).matrix();
  p.Q0 = cs_orthonormal(W + 0.3 * rng.normal_matrix(d, k));
  return p;
}

nnlift::SubspaceOptions cs_tight(Index k) {
  nnlift::SubspaceOptions so;
  so.rank = k;
  so.sketch = false;
  so.tolerance = 1e-13;
  so.noise_tolerance = 0;
  so.max_sweeps = 300;
  return so;
}

}  // namespace

TEST_SUITE("core sweeps") {
  TEST_CASE(
      "core sweeps: HOOI's fixed point, on stored rows and on rows standardised in the pass") {
    const Index d = 12, k = 3;
    const CsPlanted p = cs_planted(d, k, 20000, 3);
    const nnlift::ExecutionContext context(1);
    for (const bool raw : {false, true}) {
      CAPTURE(raw);
      // Raw rows: correlated columns with a mean, standardised in each pass.
      Matrix X = p.X;
      if (raw) {
        nnlift::detail::Rng rng(8);
        X = (p.X * (Matrix::Identity(d, d) + 0.3 * rng.normal_matrix(d, d))).rowwise() +
            rng.normal_matrix(1, d).row(0);
      }
      const nnlift::Standardizer st = nnlift::fit_standardizer(X, {}, context);
      const nnlift::detail::StandardRows rows =
          raw ? nnlift::detail::StandardRows(X, st) : nnlift::detail::StandardRows(X);
      const std::unique_ptr<nnlift::MomentTensor3> T = rows.tensor(p.r, context);
      nnlift::SubspaceOptions so = cs_tight(k);
      so.start = p.Q0;
      const nnlift::SubspaceResult hooi = nnlift::tensor_subspace(*T, so);
      INFO("HOOI: " << hooi.sweeps << " sweeps, last change " << hooi.last_change << ", gap "
                    << hooi.gap);
      INFO("HOOI: " << hooi.sweeps << " sweeps, last change " << hooi.last_change << ", gap "
                    << hooi.gap);
      REQUIRE(hooi.status == nnlift::Status::Success);
      Vector labels = p.r;
      const nnlift::detail::CoreSweepsResult swept = nnlift::detail::core_sweeps(
          rows, labels, nullptr, nullptr, p.Q0, T->project(p.Q0).unfolding(), 0.5, so, context);
      CHECK(swept.status == nnlift::Status::Success);
      CHECK(swept.message.empty());
      CHECK(labels == p.r);  // no quadratic given: the labels as they were
      INFO("sweeps: HOOI " << hooi.sweeps << ", by the core " << swept.sweeps);
      CHECK(nnlift::detail::largest_angle_sine(hooi.Q, swept.Q) < 1e-8);
      CHECK((swept.Q.transpose() * swept.Q - Matrix::Identity(k, k)).norm() < 1e-12);
      // The start some way off: it moved, and took more than one sweep.
      CHECK(nnlift::detail::largest_angle_sine(p.Q0, swept.Q) > 0.05);
      CHECK(swept.sweeps > 1);
    }
  }

  TEST_CASE("core sweeps: a cubic control variate's shift is added to the tensor") {
    // The shift Σ D_abc b_a ⊗ b_b ⊗ b_c in a basis B of its own; HOOI on the dense sum T + shift.
    const Index d = 6, k = 2, m = 2;
    const CsPlanted p = cs_planted(d, k, 5000, 5);
    const nnlift::ExecutionContext context(1);
    const nnlift::detail::StandardRows rows(p.X);
    const std::unique_ptr<nnlift::MomentTensor3> T = rows.tensor(p.r, context);
    nnlift::detail::Rng rng(6);
    nnlift::detail::CoreShift shift;
    shift.basis = cs_orthonormal(rng.normal_matrix(d, m));
    const Matrix raw = 0.05 * rng.normal_matrix(m, m * m);
    const nnlift::DenseSymmetricTensor3 D = nnlift::DenseSymmetricTensor3::symmetrize(
        m, std::vector<double>(raw.data(), raw.data() + raw.size()));
    shift.D = D.unfolding();
    const Matrix I = Matrix::Identity(d, d);
    std::vector<double> dense(static_cast<std::size_t>(d * d * d));
    const Matrix T_unfolded = T->contract_block(I);  // d×d², column j + d·l
    const Matrix S_unfolded = nnlift::detail::transform_core(shift.D, shift.basis.transpose());
    for (Index i = 0; i < d * d * d; ++i) {
      dense[static_cast<std::size_t>(i)] = T_unfolded(i % d, i / d) + S_unfolded(i % d, i / d);
    }
    const nnlift::DenseSymmetricTensor3 sum = nnlift::DenseSymmetricTensor3::symmetrize(d, dense);
    nnlift::SubspaceOptions so = cs_tight(k);
    so.start = p.Q0;
    const nnlift::SubspaceResult hooi = nnlift::tensor_subspace(sum, so);
    INFO("HOOI: " << hooi.sweeps << " sweeps, last change " << hooi.last_change << ", gap "
                  << hooi.gap);
    REQUIRE(hooi.status == nnlift::Status::Success);
    Vector labels = p.r;
    const nnlift::detail::CoreSweepsResult swept = nnlift::detail::core_sweeps(
        rows, labels, nullptr, &shift, p.Q0, sum.project(p.Q0).unfolding(), 0.5, so, context);
    CHECK(swept.status == nnlift::Status::Success);
    CHECK(nnlift::detail::largest_angle_sine(hooi.Q, swept.Q) < 1e-8);
    // Without the shift the sweeps find another subspace: the shift is not lost.
    Vector again = p.r;
    const nnlift::detail::CoreSweepsResult plain = nnlift::detail::core_sweeps(
        rows, again, nullptr, nullptr, p.Q0, T->project(p.Q0).unfolding(), 0.5, so, context);
    CHECK(nnlift::detail::largest_angle_sine(hooi.Q, plain.Q) > 1e-4);
  }

  TEST_CASE("core sweeps: the first pass subtracts the quadratic control variate from the labels") {
    const Index d = 10, k = 3;
    const CsPlanted p = cs_planted(d, k, 6000, 7);
    const nnlift::ExecutionContext context(2);
    const nnlift::detail::StandardRows rows(p.X);
    nnlift::detail::Rng rng(9);
    const Index features = 1 + k + k * (k + 1) / 2;
    const Vector beta = 0.1 * rng.normal_matrix(features, 1);
    const Matrix Z = p.X * p.Q0;
    const Vector expected = p.r - nnlift::detail::quadratic_features(Z) * beta;
    const std::unique_ptr<nnlift::MomentTensor3> T = rows.tensor(expected, context);
    const Matrix C0 = T->project(p.Q0).unfolding();
    nnlift::SubspaceOptions so = cs_tight(k);
    so.max_sweeps = 3;
    Vector labels = p.r;
    const nnlift::detail::CoreSweepsResult fused =
        nnlift::detail::core_sweeps(rows, labels, &beta, nullptr, p.Q0, C0, 0.5, so, context);
    CHECK((labels - expected).cwiseAbs().maxCoeff() < 1e-12);  // once, not once a sweep
    Vector given = expected;
    const nnlift::detail::CoreSweepsResult separate =
        nnlift::detail::core_sweeps(rows, given, nullptr, nullptr, p.Q0, C0, 0.5, so, context);
    CHECK(fused.sweeps == 3);
    CHECK(nnlift::detail::largest_angle_sine(fused.Q, separate.Q) < 1e-10);
    // Three sweeps were not enough for a 1e-13 tolerance: not converged, and said so.
    CHECK(fused.status == nnlift::Status::NotConverged);
    CHECK(fused.message.find("still moving after 3 sweeps") != std::string::npos);
  }

  TEST_CASE("core sweeps: the core's transform and its sums") {
    // transform_core(C, R) = C(R, R, R); core_from_pair_sums mirrors the pairs into k×k².
    const Index k = 3;
    nnlift::detail::Rng rng(12);
    const Vector lambda = rng.normal_matrix(2, 1);
    const Matrix V = rng.normal_matrix(k, 2);
    const nnlift::DenseSymmetricTensor3 C = nnlift::DenseSymmetricTensor3::from_factors(lambda, V);
    const Matrix R = rng.normal_matrix(k, 2);
    const Matrix expected =
        nnlift::DenseSymmetricTensor3::from_factors(lambda, R.transpose() * V).unfolding();
    CHECK((nnlift::detail::transform_core(C.unfolding(), R) - expected).norm() <
          1e-12 * expected.norm());
    // Sums of r z⊗z⊗z over rows, from the pairs: the same as summed in full.
    const Matrix z = rng.normal_matrix(50, k);
    const Vector r = rng.normal_matrix(50, 1);
    Matrix P;
    nnlift::detail::pairs_of(z, P);
    Matrix acc = Matrix::Zero(k, P.cols() + 1);
    nnlift::detail::add_core_sums(z, r, P, acc);
    Matrix full = Matrix::Zero(k, k * k);
    for (Index i = 0; i < z.rows(); ++i) {
      for (Index c = 0; c < k; ++c) {
        for (Index b = 0; b < k; ++b) {
          full.col(b + k * c) += r(i) * z(i, b) * z(i, c) * z.row(i).transpose();
        }
      }
    }
    const Vector m = z.transpose() * r;
    CHECK((nnlift::detail::core_from_pair_sums(acc) - nnlift::detail::core_from_sums(k, full, m))
              .norm() < 1e-10);
  }
}
