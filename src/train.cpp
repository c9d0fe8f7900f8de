// NN-LIFT training: standardise, residualise, subspace, decompose, biases, output layer.
// SPDX-License-Identifier: MIT
#include <LBFGS.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <sstream>

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <nlohmann/json.hpp>

#include <nnlift/evaluate.hpp>
#include <nnlift/train.hpp>

#include "detail/check.hpp"
#include "detail/fourier.hpp"
#include "detail/refine.hpp"
#include "detail/rng.hpp"

namespace nnlift {
namespace {

using Clock = std::chrono::steady_clock;

// The quadratic control variate needs normal equations of size p = 1 + d + d(d+1)/2 at a cost of
// n·p²; "auto" takes it while that stays below this many multiply-adds.
constexpr double kQuadraticBudget = 2e10;

// More distinct labels than this is a numeric target, not classes.
constexpr std::size_t kMaxClasses = 100;

// The least-squares bias fit uses at most this many rows.
constexpr Index kBiasRows = 200000;
constexpr double kBallUniformityLimit = 0.05;  // KS distance; ~1/sqrt(n) on a ball

Residualize resolve(Residualize mode, Index n, Index d) {
  if (mode != Residualize::Auto) {
    return mode;
  }
  const double p = 1.0 + static_cast<double>(d) + static_cast<double>(d * (d + 1) / 2);
  return static_cast<double>(n) * p * p <= kQuadraticBudget ? Residualize::Quadratic
                                                            : Residualize::Linear;
}

// Solves s·κ2(b; s)/κ1(b; s) = ratio for b on [−6, 6] by bisection. The left side is
// decreasing in b for log-concave σ' (ALGORITHM.md §4.4b), so the root is unique; a ratio
// outside the bracket's range is clamped to the nearer end.
double solve_bias(Activation act, double s, double ratio) {
  auto g = [&](double b) {
    return s * activation_moment(act, 2, b, s) / activation_moment(act, 1, b, s);
  };
  double lo = -6.0, hi = 6.0;
  if (ratio >= g(lo)) {
    return lo;
  }
  if (ratio <= g(hi)) {
    return hi;
  }
  for (int it = 0; it < 80; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (g(mid) > ratio) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return 0.5 * (lo + hi);
}

// The ridge term: `ridge` relative to the mean diagonal of the hidden block of the Gram matrix.
double ridge_penalty(const Matrix& gram, Index k, double ridge) {
  return ridge * std::max(gram.topLeftCorner(k, k).trace() / static_cast<double>(k), 1e-300);
}

// The same for the iterative output fits, which hold H: at least 1e-8, so that separable
// classes still have a finite optimum.
double stored_ridge_penalty(const Matrix& H, double ridge) {
  const double energy = H.squaredNorm() / static_cast<double>(H.rows() * H.cols());
  return std::max(ridge, 1e-8) * std::max(energy, 1e-300);
}

struct RidgeFit {
  Vector beta;         // k weights, then the intercept
  double penalty = 0;  // the absolute ridge term used
};

// Ridge regression of y on [H, 1] (the intercept is not penalised). `hidden(begin, count)` gives
// the rows of H, so H need not be stored.
RidgeFit solve_ridge(Index n,
                     Index k,
                     double ridge,
                     const Vector& y,
                     const RowReducer& reducer,
                     const std::function<Matrix(Index, Index)>& hidden) {
  const Matrix normal = reducer.sum(n, k + 1, k + 2, [&](Index b, Index c) {
    Matrix F(c, k + 1);
    F.leftCols(k) = hidden(b, c);
    F.col(k).setOnes();
    Matrix out(k + 1, k + 2);
    out.leftCols(k + 1).noalias() = F.transpose() * F;
    out.col(k + 1).noalias() = F.transpose() * y.segment(b, c);
    return out;
  }) / static_cast<double>(n);
  Matrix A = normal.leftCols(k + 1);
  RidgeFit fit;
  fit.penalty = ridge_penalty(A, k, ridge);
  A.diagonal().head(k).array() += fit.penalty;
  fit.beta = A.ldlt().solve(normal.col(k + 1));
  return fit;
}

void fit_ridge(const Matrix& H,
               const Vector& y,
               double ridge,
               const RowReducer& reducer,
               TwoLayerNetwork& net) {
  const Index k = H.cols();
  const Vector beta = solve_ridge(H.rows(), k, ridge, y, reducer, [&](Index b, Index c) {
                        return Matrix(H.middleRows(b, c));
                      }).beta;
  net.W2 = beta.head(k).transpose();
  net.b2 = Vector::Constant(1, beta(k));
}

// L2-penalised logistic regression of 0/1 labels on [H, 1] by Newton's method.
void fit_logistic(const Matrix& H,
                  const Vector& y,
                  double ridge,
                  const RowReducer& reducer,
                  TwoLayerNetwork& net) {
  const Index n = H.rows(), k = H.cols();
  Vector beta = Vector::Zero(k + 1);
  const double penalty = stored_ridge_penalty(H, ridge);
  for (int it = 0; it < 100; ++it) {
    const Matrix gh = reducer.sum(n, k + 1, k + 2, [&](Index b, Index c) {
      Matrix F(c, k + 1);
      F.leftCols(k) = H.middleRows(b, c);
      F.col(k).setOnes();
      const Vector p =
          (F * beta).unaryExpr([](double t) { return activate(Activation::Sigmoid, t); });
      const Vector w = p.array() * (1.0 - p.array());
      Matrix out(k + 1, k + 2);
      out.leftCols(k + 1).noalias() = F.transpose() * (w.asDiagonal() * F);
      out.col(k + 1).noalias() = F.transpose() * (p - y.segment(b, c));
      return out;
    }) / static_cast<double>(n);
    Matrix hess = gh.leftCols(k + 1);
    Vector grad = gh.col(k + 1);
    hess.diagonal().head(k).array() += penalty;
    grad.head(k) += penalty * beta.head(k);
    const Vector step = hess.ldlt().solve(grad);
    beta -= step;
    if (step.norm() < 1e-10 * (1.0 + beta.norm())) {
      break;
    }
  }
  net.W2 = beta.head(k).transpose();
  net.b2 = Vector::Constant(1, beta(k));
}

// Variable projection (§4.4c): with the directions fixed, unit j is σ(s_j t_j + b_j) with
// t = Xs Ū. For given (b, s) the output layer is a ridge solve; L-BFGS moves (b, log s) using the
// envelope-theorem gradient −(1/n) Σ_i e_i a2_j σ'(z_ij) (× s_j t_ij for log s_j).
struct BiasObjective {
  const Matrix& t;  // n×k projections ⟨ū_j, x̃_i⟩
  const Vector& y;
  Activation act;
  double ridge;
  const RowReducer& reducer;
  Vector a2;
  double b2 = 0;

  double operator()(const Vector& theta, Vector& grad) {
    const Index n = t.rows(), k = t.cols();
    const Vector b = theta.head(k);
    const Vector s = theta.tail(k).array().exp();
    auto hidden = [&](Index begin, Index count) {
      Matrix Z = t.middleRows(begin, count) * s.asDiagonal();
      Z.rowwise() += b.transpose();
      return Z;
    };
    const RidgeFit fit = solve_ridge(n, k, ridge, y, reducer, [&](Index begin, Index count) {
      return Matrix(hidden(begin, count).unaryExpr([&](double z) { return activate(act, z); }));
    });
    const Vector& beta = fit.beta;
    a2 = beta.head(k);
    b2 = beta(k);
    const Matrix g = reducer.sum(n, 2 * k + 1, 1, [&](Index begin, Index count) {
      const Matrix Z = hidden(begin, count);
      const Matrix H = Z.unaryExpr([&](double z) { return activate(act, z); });
      const Matrix dH = Z.unaryExpr([&](double z) { return activation_derivative(act, 1, z); });
      const Vector e = y.segment(begin, count) - H * a2 - Vector::Constant(count, b2);
      const Matrix w = (dH.array().colwise() * e.array()).matrix() * a2.asDiagonal();
      Matrix out(2 * k + 1, 1);
      out.col(0).head(k) = -w.colwise().sum().transpose();
      out.col(0).segment(k, k) =
          -(w.cwiseProduct(t.middleRows(begin, count)).colwise().sum().transpose().array() *
            s.array())
               .matrix();
      out(2 * k, 0) = 0.5 * e.squaredNorm();
      return out;
    }) / static_cast<double>(n);
    grad = g.col(0).head(2 * k);
    return g(2 * k, 0) + 0.5 * fit.penalty * a2.squaredNorm();
  }
};

// L-BFGS settings for the small, smooth fits of the output layer and the biases: tight
// gradient tolerances, and a stop when the loss has not moved over 5 iterations.
LBFGSpp::LBFGSParam<double> tight_lbfgs(int max_iterations) {
  LBFGSpp::LBFGSParam<double> param;
  param.max_iterations = max_iterations;
  param.epsilon = 1e-9;
  param.epsilon_rel = 1e-9;
  param.past = 5;
  param.delta = 1e-12;
  return param;
}

// Multinomial logistic regression of one-hot targets Y (n×c) on [H, 1] by L-BFGS (convex), with
// the ridge on the weights.
void fit_softmax(const Matrix& H,
                 const Matrix& Y,
                 double ridge,
                 const RowReducer& reducer,
                 TwoLayerNetwork& net) {
  const Index n = H.rows(), k = H.cols(), c = Y.cols();
  const double penalty = stored_ridge_penalty(H, ridge);
  auto objective = [&](const Vector& theta, Vector& grad) {
    const Eigen::Map<const Matrix> W(theta.data(), c, k + 1);  // [W2 | b2]
    const Matrix sum = reducer.sum(n, c * (k + 1) + 1, 1, [&](Index b, Index cnt) {
      Matrix F(cnt, k + 1);
      F.leftCols(k) = H.middleRows(b, cnt);
      F.col(k).setOnes();
      Matrix P = F * W.transpose();  // cnt×c logits
      double loss = 0;
      for (Index i = 0; i < cnt; ++i) {
        const double top = P.row(i).maxCoeff();
        P.row(i) = (P.row(i).array() - top).exp().matrix();
        const double z = P.row(i).sum();
        P.row(i) /= z;
        loss -= (Y.row(b + i).array() * (P.row(i).array().max(1e-300)).log()).sum();
      }
      const Matrix E = P - Y.middleRows(b, cnt);
      Matrix out(c * (k + 1) + 1, 1);
      Eigen::Map<Matrix>(out.data(), c, k + 1) = E.transpose() * F;
      out(c * (k + 1), 0) = loss;
      return out;
    }) / static_cast<double>(n);
    grad = sum.col(0).head(c * (k + 1));
    Eigen::Map<Matrix>(grad.data(), c, k + 1).leftCols(k) += penalty * W.leftCols(k);
    return sum(c * (k + 1), 0) + 0.5 * penalty * W.leftCols(k).squaredNorm();
  };
  // The solver keeps a reference to its settings: they must outlive it.
  const LBFGSpp::LBFGSParam<double> param = tight_lbfgs(500);
  LBFGSpp::LBFGSSolver<double> solver(param);
  Vector x = Vector::Zero(c * (k + 1));
  double value = 0;
  try {
    solver.minimize(objective, x, value);
  } catch (const std::exception&) {
    // The line search stops at the numerical optimum of a convex problem; x is the last point.
  }
  const Eigen::Map<const Matrix> W(x.data(), c, k + 1);
  net.W2 = W.leftCols(k);
  net.b2 = W.col(k);
}

}  // namespace

const char* to_string(BiasMethod method) noexcept {
  switch (method) {
    case BiasMethod::Auto:
      return "auto";
    case BiasMethod::Ratio:
      return "ratio";
    case BiasMethod::Lsq:
      return "lsq";
    case BiasMethod::Fourier:
      return "fourier";
  }
  return "unknown";
}

BiasMethod parse_bias_method(const std::string& name) {
  if (name == "auto") {
    return BiasMethod::Auto;
  }
  if (name == "ratio") {
    return BiasMethod::Ratio;
  }
  if (name == "lsq") {
    return BiasMethod::Lsq;
  }
  if (name == "fourier") {
    return BiasMethod::Fourier;
  }
  throw std::invalid_argument("unknown bias method '" + name +
                              "'; available: auto, ratio, lsq, fourier");
}

const char* to_string(Init init) noexcept { return init == Init::Tensor ? "tensor" : "random"; }

Init parse_init(const std::string& name) {
  if (name == "tensor") {
    return Init::Tensor;
  }
  if (name == "random") {
    return Init::Random;
  }
  throw std::invalid_argument("unknown init '" + name + "'; expected tensor or random");
}

void validate(const TrainOptions& o) {
  detail::require(
      o.refine_iterations > 0, "TrainOptions", "refine_iterations", o.refine_iterations, "> 0");
  detail::require(
      o.refine_tolerance > 0, "TrainOptions", "refine_tolerance", o.refine_tolerance, "> 0");
  if (o.bias == BiasMethod::Lsq && o.task == Task::Classification) {
    detail::fail("TrainOptions::bias = lsq fits a squared loss: regression only");
  }
  if (o.init == Init::Random && !o.refine) {
    detail::fail("TrainOptions::init = random needs refine (random weights alone are no model)");
  }
  detail::require(o.hidden >= 1, "TrainOptions", "hidden", o.hidden, ">= 1");
  detail::require(o.hooi_sweeps >= 0, "TrainOptions", "hooi_sweeps", o.hooi_sweeps, ">= 0");
  detail::require(o.ridge >= 0, "TrainOptions", "ridge", o.ridge, ">= 0");
  detail::require(
      o.noise_threshold >= 0, "TrainOptions", "noise_threshold", o.noise_threshold, ">= 0");
  detail::require(o.num_threads >= 0, "TrainOptions", "num_threads", o.num_threads, ">= 0");
  detail::require(std::isfinite(o.fourier_radius) && o.fourier_radius > 0,
                  "TrainOptions",
                  "fourier_radius",
                  o.fourier_radius,
                  "finite and > 0");
  detail::require(o.fourier_cap > 0 && o.fourier_cap < std::sqrt(2.0),
                  "TrainOptions",
                  "fourier_cap",
                  o.fourier_cap,
                  "in (0, sqrt 2)");
  if (o.activation == Activation::Relu) {
    detail::fail(
        "TrainOptions::activation = relu: a ReLU unit without bias has no third-order signal "
        "(E[relu'''(b + Z)] = -b phi(b) vanishes at b = 0, ALGORITHM.md §8.1), so NN-LIFT cannot "
        "see it; the fourth-order route is not implemented. Use sigmoid, tanh or softplus.");
  }
}

TrainResult train(const Dataset& data, const TrainOptions& o) {
  validate(o);
  const Matrix& X = data.X;
  const Index n = X.rows(), d = X.cols(), k = o.hidden;
  if (k > d) {
    detail::fail("train: hidden units k = " + std::to_string(k) +
                 " exceed the input dimension d = " + std::to_string(d) +
                 " (NN-LIFT needs k <= d)");
  }
  if (data.y.size() != n) {
    detail::fail("train: the data set has no target column");
  }
  if (o.directions.size() > 0 && (o.directions.rows() != k || o.directions.cols() != d)) {
    detail::fail("TrainOptions::directions is " + std::to_string(o.directions.rows()) + "x" +
                 std::to_string(o.directions.cols()) + "; expected k x d = " + std::to_string(k) +
                 "x" + std::to_string(d));
  }
  if (n < d + 2) {
    detail::fail("train: " + std::to_string(n) + " rows are too few for d = " + std::to_string(d) +
                 " inputs");
  }
  // Classification: the distinct labels are the classes. Two classes become 0/1 labels; for
  // c >= 3 the moments see y_θ = θ_class for a random θ ∈ R^c (ALGORITHM.md §8.3 (i)), whose
  // conditional mean Σ_c θ_c P(c | x) carries the directions of every unit.
  std::vector<double> classes;
  Matrix onehot;  // n×c targets of the output layer (c >= 3)
  Vector y_work = data.y;
  if (o.task == Task::Classification) {
    std::set<double> distinct;
    for (Index i = 0; i < n && distinct.size() <= kMaxClasses; ++i) {
      distinct.insert(data.y(i));
    }
    if (distinct.size() > kMaxClasses || distinct.size() < 2) {
      std::ostringstream msg;
      msg << "classification: target '" << data.target_name << "' has "
          << (distinct.size() < 2 ? "a single value" : "more than 100 distinct values")
          << "; use --task regression for a numeric target";
      throw DataError(msg.str());
    }
    classes.assign(distinct.begin(), distinct.end());
    const Index c = static_cast<Index>(classes.size());
    if (c == 2) {
      y_work = (data.y.array() == classes[1]).cast<double>();
    } else {
      onehot = Matrix::Zero(n, c);
      for (Index i = 0; i < n; ++i) {
        const auto at = std::lower_bound(classes.begin(), classes.end(), data.y(i));
        onehot(i, static_cast<Index>(at - classes.begin())) = 1.0;
      }
      detail::Rng rng(detail::derive_seed(o.seed, 41));
      y_work = onehot * rng.normal_vector(c);
    }
  }
  const Vector& y = y_work;
  const bool multiclass = onehot.size() > 0;
  const LocalReducer reducer(o.num_threads);
  TrainResult result;
  auto t0 = Clock::now();
  auto lap = [&](const char* name) {
    const auto now = Clock::now();
    result.stages.push_back({name, std::chrono::duration<double>(now - t0).count()});
    t0 = now;
    if (o.progress) {
      o.progress(name, 1.0);
    }
  };

  // 1. Standardise (§4.1).
  const Standardizer st = fit_standardizer(X, data.feature_names, reducer);
  const Matrix Xs = standardize(st, X);
  lap("standardise");

  TwoLayerNetwork& net = result.network;
  net.task = o.task;
  net.activation = o.activation;
  net.link = o.task == Task::Regression ? OutputLink::Identity : OutputLink::Logistic;
  net.inputs = data.feature_names;
  net.target = data.target_name;
  if (o.task == Task::Classification) {
    net.classes = classes;
    if (multiclass) {
      net.link = OutputLink::Softmax;
    }
  }
  const double ybar = y.mean();
  if (o.init == Init::Random) {
    // Unit-norm random directions in standardised coordinates (pre-activations of unit
    // variance), biases U(−1, 1), small output weights, output bias at the label mean.
    detail::Rng rng(detail::derive_seed(o.seed, 31));
    Matrix W1s = rng.normal_matrix(k, d);
    W1s.rowwise().normalize();
    net.W1 = W1s * st.W;
    net.b1.resize(k);
    for (Index j = 0; j < k; ++j) {
      net.b1(j) = rng.uniform(-1.0, 1.0) - net.W1.row(j).dot(st.mean);
    }
    const Index outputs = multiclass ? onehot.cols() : 1;
    net.W2 = rng.normal_matrix(outputs, k) / std::sqrt(static_cast<double>(k));
    net.b2 = Vector::Constant(outputs, o.task == Task::Regression ? ybar : 0.0);
    result.route = DecomposeMethod::Auto;
    lap("random init");
  } else {
    // 2. Labels: centred, then residualised (§4.2b). M2 may only use degree <= 1 (E[g S2] ≠ 0 for
    // quadratic g), and the bias step needs the unresidualised moments.
    result.residualize_used = resolve(o.residualize, n, d);
    const Vector yc = (y.array() - ybar).matrix();
    Matrix Ubar;  // d×k unit directions in standardised coordinates
    if (o.directions.size() > 0) {
      // Given directions a_j (original coordinates): ⟨a, x⟩ = ⟨Σ̂^{1/2} a, x̃⟩ + const.
      Ubar = (st.W_inverse * o.directions.transpose()).colwise().normalized();
      lap("given directions");
    } else {
      const Vector r_low = result.residualize_used == Residualize::None
                               ? yc
                               : residualize(Xs, y, Residualize::Linear, reducer);
      const Vector r = result.residualize_used == Residualize::Quadratic
                           ? residualize(Xs, y, Residualize::Quadratic, reducer)
                           : r_low;
      lap("residualise");

      // 3. Subspace: M2's top-k eigenvectors (× eigenvalue) plus a random sketch, then HOOI
      // (§4.3b.1).
      const MomentTensor3 T(Xs, r, reducer);
      const Matrix M2 = second_moment(Xs, r_low, reducer);
      const Eigen::SelfAdjointEigenSolver<Matrix> eig(M2);
      std::vector<Index> order(static_cast<std::size_t>(d));
      for (Index j = 0; j < d; ++j) {
        order[static_cast<std::size_t>(j)] = j;
      }
      std::sort(order.begin(), order.end(), [&](Index a, Index b) {
        return std::abs(eig.eigenvalues()(a)) > std::abs(eig.eigenvalues()(b));
      });
      SubspaceOptions so;
      so.rank = k;
      so.max_sweeps = o.hooi_sweeps;
      so.tolerance = 1e-4;
      so.seed = detail::derive_seed(o.seed, 21);
      so.start.resize(d, k);
      for (Index j = 0; j < k; ++j) {
        const Index c = order[static_cast<std::size_t>(j)];
        so.start.col(j) = eig.eigenvectors().col(c) * eig.eigenvalues()(c);
      }
      const SubspaceResult sub = tensor_subspace(T, so);
      result.hooi_sweeps = sub.sweeps;
      result.subspace_gap = sub.gap;
      const Matrix& Q = sub.Q;
      lap("subspace");

      // 4. The k×k×k core and its decomposition (§4.3). When the quadratic control variate was too
      // costly in all d inputs, it is still cheap in the k projected ones: a quadratic in z = Qᵀx̃
      // is a quadratic in x, so E[g S3] = 0 still holds, with 1 + k + k(k+1)/2 features.
      const bool core_quadratic = o.residualize != Residualize::None &&
                                  o.residualize != Residualize::Linear &&
                                  result.residualize_used == Residualize::Linear;
      Vector r_core = core_quadratic ? residualize(Xs * Q, r, Residualize::Quadratic, reducer) : r;
      Matrix Q_core = Q;
      result.quadratic_in_subspace = core_quadratic;
      if (core_quadratic && o.hooi_sweeps > 0) {
        // The lower-variance labels sharpen the subspace too: HOOI again from Q, then refit the
        // control variate in the refined subspace.
        SubspaceOptions again = so;
        again.start = Q;
        again.sketch_extra = 0;
        const SubspaceResult sub2 = tensor_subspace(MomentTensor3(Xs, r_core, reducer), again);
        Q_core = sub2.Q;
        result.hooi_sweeps += sub2.sweeps;
        result.subspace_gap = sub2.gap;
        r_core = residualize(Xs * Q_core, r, Residualize::Quadratic, reducer);
      }
      const MomentTensor3 T_core(Xs, r_core, reducer);
      const DenseSymmetricTensor3 core = T_core.project(Q_core);
      DecomposeOptions dopt;
      dopt.rank = k;
      dopt.method = o.method;
      dopt.seed = detail::derive_seed(o.seed, 22);
      dopt.num_threads = o.num_threads;
      const DecomposeResult dr = decompose(core, dopt);
      result.route = dr.method_used;
      result.decomposition_residual = dr.relative_residual;
      if (dr.components.size() == 0) {
        result.status = dr.status;
        result.message = "decomposition: " + dr.message;
        return result;
      }
      result.lambda = dr.lambda;
      const Matrix U = dr.components;  // k×k, unit columns, λ > 0
      Ubar = Q_core * U;
      // Noise level of the core by a split-half estimate: cores from alternating row blocks,
      // R_e and R_o, each with twice the variance; E = (R_e − R_o)/2 has the noise of R itself. Its
      // spectral norm max_u |E(u,u,u)| (by the power method) is what a unit's λ must clear: the
      // direction error of unit j scales like ‖E‖/|λ_j| (ALGORITHM.md §4.3a, Thm 5.1).
      {
        const Index block = 8192;
        Vector r_even = Vector::Zero(n), r_odd = Vector::Zero(n);
        for (Index b = 0; b * block < n; ++b) {
          const Index c = std::min(block, n - b * block);
          (b % 2 == 0 ? r_even : r_odd).segment(b * block, c) = 2.0 * r_core.segment(b * block, c);
        }
        const DenseSymmetricTensor3 even = MomentTensor3(Xs, r_even, reducer).project(Q_core);
        const DenseSymmetricTensor3 odd = MomentTensor3(Xs, r_odd, reducer).project(Q_core);
        std::vector<double> diff(even.data().size());
        for (std::size_t i = 0; i < diff.size(); ++i) {
          diff[i] = 0.5 * (even.data()[i] - odd.data()[i]);
        }
        PowerMethodOptions po;
        po.num_components = 1;
        po.num_restarts = 20;
        po.max_iterations = 50;
        po.seed = detail::derive_seed(o.seed, 23);
        po.num_threads = o.num_threads;
        const PowerMethodResult noise =
            tensor_power_method(DenseSymmetricTensor3::symmetrize(k, diff), po);
        result.noise_level = std::abs(noise.eigenvalues(0));
      }
      for (Index j = 0; j < k; ++j) {
        if (std::abs(result.lambda(j)) < o.noise_threshold * result.noise_level) {
          result.weak_units.push_back(j);
        }
      }
      lap("decompose");
      result.status = dr.status == Status::NotConverged ? Status::Success : dr.status;
      if (dr.status == Status::NotConverged) {
        result.warnings.push_back("decomposition: " + dr.message);
      } else if (dr.status != Status::Success) {
        result.message = "decomposition: " + dr.message;
      }
    }  // directions from the moments

    // 5. Map back (§4.1): a_j ∝ W ū_j, s_j = 1/‖W ū_j‖; then biases by moment ratios (§4.4b).
    net.W1.resize(k, d);
    net.b1.resize(k);
    Vector scale(k);
    for (Index j = 0; j < k; ++j) {
      const Vector w = st.W * Ubar.col(j);
      scale(j) = 1.0 / w.norm();
      net.W1.row(j) = (w * scale(j)).transpose();
    }
    const Vector M1 = Xs.transpose() * yc / static_cast<double>(n);
    const Matrix M2c = second_moment(Xs, yc, reducer);
    const Matrix gram = Ubar.transpose() * Ubar;
    Vector c1 = gram.ldlt().solve(Ubar.transpose() * M1);
    Vector rhs(k);
    for (Index j = 0; j < k; ++j) {
      rhs(j) = Ubar.col(j).dot(M2c * Ubar.col(j));
    }
    const Vector c2 = gram.cwiseProduct(gram).ldlt().solve(rhs);
    if (o.activation == Activation::Softplus) {
      // Orientation (§4.4b step 4): the odd tensor fixes a direction only up to the sign of
      // λ_j. Sigmoid and tanh absorb a flip (σ(−z) = 1 − σ(z), tanh odd) into a2 and b2, but
      // softplus(−z) = softplus(z) − z leaves a linear term no output layer can represent.
      // κ1 = E σ' and κ2 = E σ'' are positive, so c1_j and c2_j share the sign of a2_j: a
      // unit whose c1_j disagrees with c2_j points the wrong way. Flipping it flips c1_j only.
      for (Index j = 0; j < k; ++j) {
        if (c1(j) * c2(j) < 0) {
          Ubar.col(j) *= -1.0;
          net.W1.row(j) *= -1.0;
          c1(j) = -c1(j);
        }
      }
    }
    for (Index j = 0; j < k; ++j) {
      double b_std = 0.0;
      if (std::abs(c1(j)) > 1e-12 * std::max(c1.cwiseAbs().maxCoeff(), 1e-300)) {
        b_std = solve_bias(o.activation, scale(j), c2(j) / c1(j));
      } else {
        result.warnings.push_back("unit " + std::to_string(j + 1) +
                                  ": first-order moment is zero; its bias is set to 0");
      }
      net.b1(j) = b_std - net.W1.row(j).dot(st.mean);
    }
    const bool lsq =
        o.bias == BiasMethod::Lsq || (o.bias == BiasMethod::Auto && o.task == Task::Regression);
    result.bias_used = lsq ? BiasMethod::Lsq : BiasMethod::Ratio;
    if (o.bias == BiasMethod::Fourier) {
      result.bias_used = BiasMethod::Fourier;
      const double ks = detail::ball_uniformity_distance(X);
      if (ks > kBallUniformityLimit) {
        std::ostringstream msg;
        msg << "bias fourier: the inputs do not look uniform on a ball (Kolmogorov-Smirnov "
               "distance "
            << ks
            << " of (|x - mean| / max)^d from U(0, 1)); the Fourier estimator assumes a constant "
               "input density on a bounded support and has no finite mean under Gaussian "
               "inputs (ALGORITHM.md §4.4a): prefer --bias lsq or ratio";
        result.warnings.push_back(msg.str());
      }
      const Vector yc_raw = y.array() - ybar;
      net.b1 = detail::fourier_biases(X,
                                      yc_raw,
                                      net.W1,
                                      o.activation,
                                      o.fourier_radius,
                                      o.fourier_cap,
                                      detail::derive_seed(o.seed, 43),
                                      reducer);
    }
    if (lsq) {
      // From the ratio estimate: θ = (b̃, log s) in standardised coordinates. Only 2k numbers
      // are fitted, so a strided subsample of at most kBiasRows rows bounds the cost at large n
      // (strided rather than leading rows, so that a sorted file does not bias it).
      const Index stride = (n + kBiasRows - 1) / kBiasRows;
      const Index m = (n + stride - 1) / stride;
      Matrix t(m, k);
      Vector y_fit(m);
      for (Index i = 0; i < m; ++i) {
        t.row(i) = Xs.row(i * stride) * Ubar;
        y_fit(i) = y(i * stride);
      }
      Vector theta(2 * k);
      for (Index j = 0; j < k; ++j) {
        theta(j) = net.b1(j) + net.W1.row(j).dot(st.mean);
        theta(k + j) = std::log(scale(j));
      }
      BiasObjective objective{t, y_fit, o.activation, o.ridge, reducer, Vector(), 0.0};
      // The solver keeps a reference to its settings: they must outlive it.
      const LBFGSpp::LBFGSParam<double> param = tight_lbfgs(200);
      LBFGSpp::LBFGSSolver<double> solver(param);
      Vector x = theta;
      double value = 0;
      try {
        solver.minimize(objective, x, value);
      } catch (const std::exception& e) {
        // The line search gave up near the optimum: x holds the last accepted point.
        result.warnings.push_back(std::string("bias least squares: ") + e.what());
      }
      if (x.allFinite()) {
        for (Index j = 0; j < k; ++j) {
          const double s_j = std::exp(x(k + j));
          net.W1.row(j) *= s_j / scale(j);  // row j was Wū_j/‖Wū_j‖ = Wū_j·scale(j)
          net.b1(j) = x(j) - net.W1.row(j).dot(st.mean);
        }
      }
    }
    lap("biases");

    // 6. Output layer (§4.5): ridge, or logistic regression for 0/1 labels.
    const Matrix H = hidden_layer(net, X);
    if (o.task == Task::Regression) {
      fit_ridge(H, y, o.ridge, reducer, net);
    } else if (multiclass) {
      fit_softmax(H, onehot, o.ridge, reducer, net);
    } else {
      fit_logistic(H, y, o.ridge, reducer, net);
    }
    lap("output layer");
  }  // Init::Tensor

  if (o.refine) {
    const Matrix targets = multiclass ? onehot : Matrix(y);
    const std::function<void(double)> refine_progress = [&](double fraction) {
      if (o.progress) {
        o.progress("refine (L-BFGS)", fraction);
      }
    };
    const detail::RefineReport rep = detail::refine_lbfgs(
        Xs, targets, st, o.refine_iterations, o.refine_tolerance, reducer, net, refine_progress);
    result.refine_iterations = rep.iterations;
    result.loss_before_refine = rep.loss_before;
    result.refine_stopped = rep.stopped;
    lap("refine (L-BFGS)");
  }

  const Scores s = score(net, X, data.y);
  result.train_loss = o.task == Task::Regression ? s.mse : s.log_loss;
  result.train_accuracy = s.accuracy;
  for (Index j : result.weak_units) {
    std::ostringstream msg;
    msg << "unit " << j + 1 << ": |lambda| = " << std::abs(result.lambda(j)) << " is within "
        << o.noise_threshold << " x the estimated noise level " << result.noise_level
        << " of the moment tensor: its direction is unreliable (more data, fewer hidden units, "
           "or a unit in a blind spot of E[sigma'''], ALGORITHM.md §9.8)";
    result.warnings.push_back(msg.str());
  }
  nlohmann::json meta;
  meta["trainer"] = "nnlift train (NN-LIFT, method of moments)";
  meta["seed"] = o.seed;
  meta["options"] = {{"hidden", k},
                     {"activation", to_string(o.activation)},
                     {"residualize", to_string(result.residualize_used)},
                     {"method", to_string(o.method)},
                     {"route", to_string(result.route)},
                     {"bias", to_string(result.bias_used)},
                     {"ridge", o.ridge}};
  meta["data"] = {{"rows", n}, {"inputs", d}, {"target", data.target_name}, {"target_mean", ybar}};
  meta["diagnostics"] = {
      {"lambda",
       std::vector<double>(result.lambda.data(), result.lambda.data() + result.lambda.size())},
      {"init", to_string(o.init)},
      {"refine_iterations", result.refine_iterations},
      {"noise_level", result.noise_level},
      {"hooi_sweeps", result.hooi_sweeps},
      {"decomposition_residual", result.decomposition_residual},
      {"train_loss", result.train_loss}};
  net.metadata_json = meta.dump();
  return result;
}

}  // namespace nnlift
