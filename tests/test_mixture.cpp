// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>

#include <doctest/doctest.h>

#include <nnlift/activation.hpp>
#include <nnlift/evaluate.hpp>
#include <nnlift/mixture.hpp>
#include <nnlift/synth.hpp>
#include <nnlift/train.hpp>

#include "test_helpers.hpp"

using nnlift::ExecutionContext;
using nnlift::GaussianMixture;
using nnlift::MixtureMomentTensor3;
using nnlift::MixtureOptions;
using nnlift::MixtureScore;

namespace {

// A mixture of C components in d dimensions with means `spread` apart and rotated covariances.
GaussianMixture test_mixture(Index d, Index C, double spread, std::uint64_t seed) {
  nnlift::detail::Rng rng(seed);
  GaussianMixture g;
  g.weights.resize(C);
  for (Index c = 0; c < C; ++c) {
    g.weights(c) = 1.0 + static_cast<double>(c);
  }
  g.weights /= g.weights.sum();
  g.means = rng.normal_matrix(C, d) * spread;
  for (Index c = 0; c < C; ++c) {
    const Matrix A = rng.normal_matrix(d, d) * 0.4;
    Matrix S = A * A.transpose() + 0.3 * Matrix::Identity(d, d);
    g.covariances.push_back(0.5 * (S + S.transpose()));
  }
  return g;
}

// n rows drawn from the mixture.
Matrix draw(const GaussianMixture& g, Index n, std::uint64_t seed) {
  nnlift::detail::Rng rng(seed);
  const Index d = g.dim();
  std::vector<Matrix> chol;
  for (const Matrix& S : g.covariances) {
    chol.push_back(Eigen::LLT<Matrix>(S).matrixL());
  }
  Matrix X(n, d);
  for (Index i = 0; i < n; ++i) {
    double u = rng.uniform();
    Index c = 0;
    while (c + 1 < g.components() && u >= g.weights(c)) {
      u -= g.weights(c);
      ++c;
    }
    Vector z(d);
    for (Index j = 0; j < d; ++j) {
      z(j) = rng.normal();
    }
    X.row(i) = (g.means.row(c).transpose() + chol[static_cast<std::size_t>(c)] * z).transpose();
  }
  return X;
}

// The oracle: (1/n) Σ_i r_i Σ_c r_c(x_i) [z⊗z⊗z − sym(z ⊗ P_c)], z = P_c(x_i − μ_c), from the
// formula of ALGORITHM.md §2.4-2.5 element by element, with P_c an explicit inverse.
nnlift::DenseSymmetricTensor3 explicit_mixture_moment(const GaussianMixture& g,
                                                      const Matrix& X,
                                                      const Vector& r) {
  const Index n = X.rows(), d = X.cols();
  std::vector<double> T(static_cast<std::size_t>(d * d * d), 0.0);
  std::vector<Matrix> P;
  Vector logdet(g.components());
  for (Index c = 0; c < g.components(); ++c) {
    P.push_back(g.covariances[static_cast<std::size_t>(c)].inverse());
    logdet(c) = std::log(g.covariances[static_cast<std::size_t>(c)].determinant());
  }
  for (Index s = 0; s < n; ++s) {
    Vector dens(g.components());
    for (Index c = 0; c < g.components(); ++c) {
      const Vector e = X.row(s).transpose() - g.means.row(c).transpose();
      dens(c) = g.weights(c) *
                std::exp(-0.5 * e.dot(P[static_cast<std::size_t>(c)] * e) - 0.5 * logdet(c));
    }
    dens /= dens.sum();
    for (Index c = 0; c < g.components(); ++c) {
      const Matrix& Pc = P[static_cast<std::size_t>(c)];
      const Vector z = Pc * (X.row(s).transpose() - g.means.row(c).transpose());
      const double w = r(s) * dens(c) / static_cast<double>(n);
      for (Index l = 0; l < d; ++l) {
        for (Index j = 0; j < d; ++j) {
          for (Index i = 0; i < d; ++i) {
            const double v =
                z(i) * z(j) * z(l) - (Pc(i, j) * z(l) + Pc(i, l) * z(j) + Pc(j, l) * z(i));
            T[static_cast<std::size_t>(i + d * (j + d * l))] += w * v;
          }
        }
      }
    }
  }
  return nnlift::DenseSymmetricTensor3(d, T);
}

}  // namespace

TEST_SUITE("mixture") {
  TEST_CASE("mixture score: every contraction equals the explicit sum of the S3 formula") {
    const GaussianMixture g = test_mixture(4, 3, 1.5, 7);
    const Matrix X = draw(g, 700, 8);
    nnlift::detail::Rng rng(9);
    const Vector r = rng.normal_matrix(700, 1).col(0);
    const nnlift::DenseSymmetricTensor3 oracle = explicit_mixture_moment(g, X, r);
    for (int threads : {1, 2}) {
      const nnlift::LocalReducer blocks(64);  // many blocks: the sums cross block boundaries
      const ExecutionContext context(blocks, threads);
      const MixtureScore score(X, g, context);
      const MixtureMomentTensor3 T(score, r);
      const Matrix U = rng.normal_matrix(4, 3), V = rng.normal_matrix(4, 3);
      const double scale = oracle.frobenius_norm();
      CHECK((T.contract_pairs(U, V) - oracle.contract_pairs(U, V)).norm() < 1e-10 * scale * 10);
      const Vector u = U.col(0);
      CHECK(std::abs(T.contract(u) - oracle.contract(u)) < 1e-10 * scale * 10);
      CHECK((T.contract_block(U) - oracle.contract_block(U)).norm() < 1e-10 * scale * 10);
      const nnlift::DenseSymmetricTensor3 P = T.project(U), Po = oracle.project(U);
      for (std::size_t i = 0; i < P.data().size(); ++i) {
        CHECK(std::abs(P.data()[i] - Po.data()[i]) < 1e-10 * scale * 10);
      }
    }
  }

  TEST_CASE("mixture score: S1 and S2 moments equal their explicit sums") {
    const GaussianMixture g = test_mixture(3, 2, 1.0, 17);
    const Matrix X = draw(g, 400, 18);
    nnlift::detail::Rng rng(19);
    const Vector r = rng.normal_matrix(400, 1).col(0);
    const ExecutionContext context(1);
    const MixtureScore score(X, g, context);
    const Matrix resp = g.responsibilities(X);
    Vector m1 = Vector::Zero(3);
    Matrix m2 = Matrix::Zero(3, 3);
    for (Index s = 0; s < 400; ++s) {
      for (Index c = 0; c < 2; ++c) {
        const Matrix P = g.covariances[static_cast<std::size_t>(c)].inverse();
        const Vector z = P * (X.row(s).transpose() - g.means.row(c).transpose());
        m1 += r(s) * resp(s, c) * z / 400.0;
        m2 += r(s) * resp(s, c) * (z * z.transpose() - P) / 400.0;
      }
    }
    CHECK((score.moment1(r) - m1).norm() < 1e-11 * (1 + m1.norm()));
    CHECK((score.moment2(r) - m2).norm() < 1e-11 * (1 + m2.norm()));
    CHECK((score.responsibilities() - resp).cwiseAbs().maxCoeff() < 1e-12);
    CHECK((resp.rowwise().sum().array() - 1.0).abs().maxCoeff() < 1e-12);
  }

  TEST_CASE(
      "mixture score: Stein's identity E[sigma(a.x + b) S3(x)] = E[sigma'''] a^3 holds, "
      "and the Gaussian score of the same mean and covariance misses it") {
    // Two well separated clusters: far from one Gaussian.
    GaussianMixture g;
    g.weights = Vector::Constant(2, 0.5);
    g.means = Matrix(2, 3);
    g.means << -1.5, 0.5, 0.0, 1.5, -0.5, 0.3;
    g.covariances = {Matrix(Vector::Constant(3, 0.3).asDiagonal()),
                     Matrix(Vector::Constant(3, 0.6).asDiagonal())};
    const Index n = 400000;
    const Matrix X = draw(g, n, 5);
    Vector a(3);
    a << 0.8, 0.6, 0.0;
    const double b = 0.4;
    const Vector pre = (X * a).array() + b;
    const Vector y =
        pre.unaryExpr([](double t) { return nnlift::activate(nnlift::Activation::Sigmoid, t); });
    double kappa3 = 0;
    for (Index i = 0; i < n; ++i) {
      kappa3 += nnlift::activation_derivative(nnlift::Activation::Sigmoid, 3, pre(i)) /
                static_cast<double>(n);
    }
    const Vector expected = kappa3 * a;  // T(I, a, a) with ‖a‖ = 1
    const ExecutionContext context(2);
    const MixtureScore mixture(X, g, context);
    const Vector yc = (y.array() - y.mean()).matrix();
    const Vector got = MixtureMomentTensor3(mixture, yc).contract_pairs(a, a).col(0);
    const double mixture_error = (got - expected).norm() / expected.norm();
    // The Gaussian score of N(mean, covariance): a one-component mixture.
    GaussianMixture one;
    one.weights = Vector::Ones(1);
    one.means = X.colwise().mean();
    const Matrix centred = X.rowwise() - X.colwise().mean();
    one.covariances = {Matrix(centred.transpose() * centred / static_cast<double>(n))};
    const MixtureScore gaussian(X, one, context);
    const Vector got_g = MixtureMomentTensor3(gaussian, yc).contract_pairs(a, a).col(0);
    const double gaussian_error = (got_g - expected).norm() / expected.norm();
    MESSAGE("relative error of T(I, a, a): mixture score " << mixture_error << ", Gaussian score "
                                                           << gaussian_error);
    CHECK(mixture_error < 0.1);
    CHECK(gaussian_error > 0.5);
  }
}

TEST_SUITE("mixture") {
  TEST_CASE(
      "mixture EM: a planted mixture is recovered, C chosen by BIC, bits independent of "
      "the thread count") {
    const GaussianMixture g = test_mixture(3, 2, 2.0, 41);
    const Matrix X = draw(g, 12000, 42);
    MixtureOptions o;
    o.seed = 3;
    o.sample_rows = 6000;
    const nnlift::MixtureFit one = nnlift::fit_gaussian_mixture(X, ExecutionContext(1), o);
    const nnlift::MixtureFit two = nnlift::fit_gaussian_mixture(X, ExecutionContext(2), o);
    REQUIRE(one.mixture.components() == 2);
    CHECK(one.chosen.covariance == nnlift::MixtureCovariance::Full);
    CHECK(one.sample_rows == 6000);
    CHECK(one.candidates.size() >= 6);  // C = 1, 2, 3 at least, diagonal and full
    CHECK((one.mixture.means.array() == two.mixture.means.array()).all());
    CHECK((one.mixture.weights.array() == two.mixture.weights.array()).all());
    // Components match the truth up to order.
    const Index first = (one.mixture.means.row(0) - g.means.row(0)).norm() < 0.5 ? 0 : 1;
    for (Index c = 0; c < 2; ++c) {
      const Index f = c == 0 ? first : 1 - first;
      CHECK(std::abs(one.mixture.weights(f) - g.weights(c)) < 0.02);
      CHECK((one.mixture.means.row(f) - g.means.row(c)).norm() < 0.1);
      CHECK((one.mixture.covariances[static_cast<std::size_t>(f)] -
             g.covariances[static_cast<std::size_t>(c)])
                .norm() < 0.1);
    }
    // The fitted density is as good as the true one on the data (EM's fixed point).
    CHECK(one.mixture.log_density(X).mean() > g.log_density(X).mean() - 0.01);
    // A fixed count and a fixed form are honoured.
    o.components = 3;
    o.covariance = nnlift::MixtureCovariance::Diagonal;
    const nnlift::MixtureFit three = nnlift::fit_gaussian_mixture(X, ExecutionContext(2), o);
    CHECK(three.mixture.components() == 3);
    CHECK(three.candidates.size() == 1);
    CHECK(three.mixture.covariances[0](0, 1) == 0.0);
  }

  TEST_CASE("mixture: misuse throws naming the field") {
    GaussianMixture g = test_mixture(2, 2, 1.0, 3);
    CHECK_NOTHROW(nnlift::validate(g));
    g.weights(0) = -0.1;
    CHECK_THROWS_WITH_AS(nnlift::validate(g), doctest::Contains("weights"), std::invalid_argument);
    g = test_mixture(2, 2, 1.0, 3);
    g.covariances[1] = -Matrix::Identity(2, 2);
    CHECK_THROWS_WITH_AS(nnlift::validate(g),
                         doctest::Contains("covariance 1 is not positive definite"),
                         std::invalid_argument);
    g.covariances.pop_back();
    CHECK_THROWS_AS(nnlift::validate(g), std::invalid_argument);
    MixtureOptions o;
    o.max_components = 0;
    CHECK_THROWS_WITH_AS(
        nnlift::validate(o), doctest::Contains("max_components"), std::invalid_argument);
    o = MixtureOptions();
    o.variance_floor = 0;
    CHECK_THROWS_WITH_AS(
        nnlift::validate(o), doctest::Contains("variance_floor"), std::invalid_argument);
    CHECK_THROWS_AS(nnlift::fit_gaussian_mixture(Matrix::Zero(1, 2), ExecutionContext(1)),
                    nnlift::DataError);
    CHECK(nnlift::parse_mixture_covariance("diagonal") == nnlift::MixtureCovariance::Diagonal);
    CHECK_THROWS_WITH_AS(nnlift::parse_mixture_covariance("spherical"),
                         doctest::Contains("full"),
                         std::invalid_argument);
    CHECK(nnlift::parse_score_model("gmm") == nnlift::ScoreModel::Mixture);
    const MixtureScore score(Matrix::Zero(5, 2), test_mixture(2, 2, 1.0, 3), ExecutionContext(1));
    CHECK_THROWS_AS(MixtureMomentTensor3(score, Vector::Zero(4)), std::invalid_argument);
    CHECK_THROWS_AS(MixtureMomentTensor3(score, Vector::Zero(5)).contract(Vector::Zero(3)),
                    std::invalid_argument);
  }

  TEST_CASE(
      "score gmm: a teacher on mixture inputs, where the Gaussian score is biased, is "
      "recovered by the mixture's score") {
    // Two skewed, separated clusters (weights 1/3, 2/3): the Gaussian score's estimate is off
    // by a bias that more rows do not remove; the mixture score is exact (ALGORITHM.md §2.5).
    nnlift::SynthOptions so;
    so.dim = 5;
    so.hidden = 2;
    so.samples = 200000;
    so.noise = 0.05;
    so.inputs = nnlift::InputLaw::Mixture;
    so.mixture_components = 2;
    so.seed = 3;
    const nnlift::SynthData s = nnlift::make_synthetic(so);
    CHECK(s.input_mixture.components() == 2);
    const nnlift::Dataset data = nnlift::training_set(s);
    nnlift::TrainOptions o;
    o.hidden = 2;
    o.score = nnlift::ScoreModel::Mixture;
    o.mixture.components = 2;  // (BIC finds it too: the EM test; fixed here to save time)
    o.mixture.covariance = nnlift::MixtureCovariance::Full;
    // The mixture score with the default control variates: its second HOOI also uses the cubic
    // in z (an identity under any density's score; min |cos| 0.997 here, 0.986 without).
    const nnlift::TrainResult mix = nnlift::train(data, o, ExecutionContext(2));
    CHECK(mix.moments.cubic_in_subspace);
    // The Gaussian score without the cubic, which under it is no longer an identity on these
    // inputs and moves its bias (0.97 here): the bias of the score alone.
    o.moments.residualize = nnlift::Residualize::Quadratic;
    o.score = nnlift::ScoreModel::Gaussian;
    const nnlift::TrainResult gauss = nnlift::train(data, o, ExecutionContext(2));
    const double cos_mix = nnlift::recovery(s.truth, mix.network).min_cosine;
    const double cos_gauss = nnlift::recovery(s.truth, gauss.network).min_cosine;
    MESSAGE("min |cos|: gmm " << cos_mix << ", gaussian " << cos_gauss);
    CHECK(cos_mix > 0.95);
    CHECK(cos_gauss < 0.92);
    CHECK(mix.mixture.components() == 2);
    CHECK(mix.mixture_fit.covariance == nnlift::MixtureCovariance::Full);
    CHECK(mix.score_used == nnlift::ScoreModel::Mixture);
    CHECK(gauss.mixture.components() == 0);
    CHECK(mix.network.metadata_json.find("\"score_mixture\"") != std::string::npos);
    CHECK(mix.network.metadata_json.find("\"score\":\"gmm\"") != std::string::npos);
  }
}

TEST_SUITE("mixture") {
  TEST_CASE("mixture EM: a covariance form stops after two counts that do no better than it") {
    // Independent Laplace columns, d = 24: full covariances pay d(d+1)/2 parameters a component
    // for little, and their BIC soon rises with every count, while the diagonal form improves
    // up to the last: the full form stops before C = 5, the diagonal one fits all five.
    nnlift::detail::Rng rng(21);
    Matrix X(5000, 24);
    for (Index i = 0; i < X.rows(); ++i) {
      for (Index j = 0; j < X.cols(); ++j) {
        const double u = rng.uniform() - 0.5;
        X(i, j) = -std::copysign(1.0, u) * std::log1p(-2.0 * std::abs(u));
      }
    }
    const nnlift::MixtureFit fit = nnlift::fit_gaussian_mixture(X, ExecutionContext(2));
    for (const auto form : {nnlift::MixtureCovariance::Diagonal, nnlift::MixtureCovariance::Full}) {
      std::vector<nnlift::MixtureCandidate> mine;
      for (const nnlift::MixtureCandidate& c : fit.candidates) {
        if (c.covariance == form) {
          mine.push_back(c);
        }
      }
      REQUIRE(!mine.empty());
      double best = mine.front().bic;
      int worse = 0;
      for (std::size_t i = 1; i < mine.size(); ++i) {
        CHECK(mine[i].components == mine[i - 1].components + 1);
        CHECK(worse < 2);  // this count would not have been fitted
        worse = mine[i].bic < best ? 0 : worse + 1;
        best = std::min(best, mine[i].bic);
      }
      if (mine.back().components < 5) {
        CHECK(worse == 2);  // stopped only after two counts that did no better
      }
    }
    const auto count = [&](nnlift::MixtureCovariance form) {
      return std::count_if(fit.candidates.begin(), fit.candidates.end(), [&](const auto& c) {
        return c.covariance == form;
      });
    };
    CHECK(count(nnlift::MixtureCovariance::Diagonal) == 5);
    CHECK(count(nnlift::MixtureCovariance::Full) < 5);
    CHECK(fit.chosen.covariance == nnlift::MixtureCovariance::Diagonal);
  }

  TEST_CASE("mixture EM: values far from 0 against their spread still give a valid mixture") {
    // Uncentred second moments of values near 1e8 with spread 1e-3 cancel to rounding noise,
    // which made a covariance indefinite (validate threw) before the rows were centred and the
    // covariances' eigenvalues lifted to the floor.
    nnlift::detail::Rng rng(12);
    const Matrix X = (rng.normal_matrix(3000, 2) * 1e-3).array() + 1e8;
    MixtureOptions o;
    o.components = 2;
    const nnlift::MixtureFit fit = nnlift::fit_gaussian_mixture(X, ExecutionContext(1), o);
    CHECK_NOTHROW(nnlift::validate(fit.mixture));
    CHECK(std::abs(fit.mixture.means(0, 0) - 1e8) < 1.0);
    CHECK(fit.mixture.log_density(X).allFinite());
  }
}
