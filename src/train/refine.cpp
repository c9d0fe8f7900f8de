// Stage "refine": local refinement of all network parameters by L-BFGS (backpropagation), with
// weight decay, early stopping on a validation set and the best point kept.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "detail/activation_traits.hpp"
#include "detail/check.hpp"
#include "detail/glm.hpp"
#include "detail/lbfgs.hpp"
#include "detail/parallel.hpp"
#include "train/stages.hpp"

namespace nnlift::detail {
namespace {

// Thrown from the objective to end the search; the best point is already recorded.
struct StopSearch {
  std::string reason;
};

// The parameters in standardised coordinates, packed as
// [vec(W1) (k×r), b1 (k), vec(W2) (c×k), b2 (c), vec(C) (c×r) when linear].
struct Layout {
  Index k, r, c;
  bool linear;
  Index w1() const { return 0; }
  Index b1() const { return k * r; }
  Index w2() const { return k * r + k; }
  Index b2() const { return k * r + k + c * k; }
  Index cs() const { return k * r + k + c * k + c; }
  Index size() const { return cs() + (linear ? c * r : 0); }
};

// The first layer's weights and the linear term's stacked, [W1; C] ((k + c)×r with the linear
// term, else k×r): the rows' products with both come from one pass over the rows.
Matrix input_weights(const Layout& L, const Vector& theta) {
  Matrix A(L.k + (L.linear ? L.c : 0), L.r);
  A.topRows(L.k) = Eigen::Map<const Matrix>(theta.data() + L.w1(), L.k, L.r);
  if (L.linear) {
    A.bottomRows(L.c) = Eigen::Map<const Matrix>(theta.data() + L.cs(), L.c, L.r);
  }
  return A;
}

// The outputs F (rows × c) of rows Xb (standardised), given A = input_weights(L, theta); the
// hidden activations in H and their slopes in dH.
Matrix forward(const Layout& L,
               const Vector& theta,
               const Matrix& A,
               const Eigen::Ref<const Matrix>& Xb,
               Activation act,
               Matrix& H,
               Matrix& dH) {
  const Index k = L.k, c = L.c;
  const Eigen::Map<const Vector> b1(theta.data() + L.b1(), k);
  const Eigen::Map<const Matrix> W2(theta.data() + L.w2(), c, k);
  const Eigen::Map<const Vector> b2(theta.data() + L.b2(), c);
  const Matrix P = Xb * A.transpose();  // pre-activations, then the linear term's outputs
  H = P.leftCols(k);
  H.rowwise() += b1.transpose();
  detail::activate_with_slope(act, H, dH);
  Matrix F = H * W2.transpose();
  F.rowwise() += b2.transpose();
  if (L.linear) {
    F += P.rightCols(c);
  }
  return F;
}

// Rows per chunk of a block in the refinement's passes: a chunk of X is read by the forward and
// the backward product while it is still in cache. Chunks are cut from the block's start, so
// they do not depend on the partition either.
constexpr Index kChunkRows = 1024;

// The loss of each row of outputs F against targets T (squared error / 2, logistic or softmax
// log-loss), a chunk of rows at once, and ∂loss/∂F in E.
Vector row_losses(OutputLink link, const Matrix& F, const Eigen::Ref<const Matrix>& T, Matrix& E) {
  if (link == OutputLink::Identity) {
    E = F - T;
    return 0.5 * E.rowwise().squaredNorm();
  }
  return link == OutputLink::Softmax ? softmax_losses(F, T, E) : logistic_losses(F, T, E);
}

// Targets Tb: c columns, and c more when the outputs have a fixed part (the linear term along
// input directions the standardiser dropped; RefineData::inputs), which is added to F here. The
// targets proper are returned.
Eigen::Ref<const Matrix> add_fixed_outputs(Matrix& F, const Eigen::Ref<const Matrix>& Tb) {
  const Index c = F.cols();
  if (Tb.cols() > c) {
    F += Tb.rightCols(c);
  }
  return Tb.leftCols(c);
}

using ConstRowRef = Eigen::Ref<const Eigen::RowVectorXd, 0, Eigen::InnerStride<>>;
// Whether outputs f classify target row t correctly (classes; regression: never counted).
bool classified(OutputLink link, const ConstRowRef& f, const ConstRowRef& t) {
  if (link == OutputLink::Identity) {
    return false;
  }
  if (link == OutputLink::Logistic) {
    return (f(0) > 0) == (t(0) > 0.5);
  }
  Index predicted = 0, cls = 0;
  f.maxCoeff(&predicted);
  t.maxCoeff(&cls);
  return predicted == cls;
}

// The curve point of theta on rows X, targets T, against the start theta0 (its targets T0: the
// same rows, with its own fixed outputs): the row losses in original units (the refinement's row
// loss times `scale`), summed.
CurvePoint curve_point(const Layout& L,
                       const Vector& theta,
                       const Vector& theta0,
                       const Matrix& X,
                       const Matrix& T,
                       Activation act,
                       OutputLink link,
                       double scale,
                       const ExecutionContext& context,
                       const Matrix* T0 = nullptr) {
  const Matrix A = input_weights(L, theta), A0 = input_weights(L, theta0);
  const Matrix s = context.sum(X.rows(), 4, 1, [&](Index b, Index cnt) {
    const auto Xb = X.middleRows(b, cnt);
    Matrix H, dH;
    Matrix F = forward(L, theta, A, Xb, act, H, dH);
    Matrix F0 = forward(L, theta0, A0, Xb, act, H, dH);
    const Eigen::Ref<const Matrix> Tb = add_fixed_outputs(F, T.middleRows(b, cnt));
    const Eigen::Ref<const Matrix> T0b =
        add_fixed_outputs(F0, (T0 != nullptr ? *T0 : T).middleRows(b, cnt));
    Matrix E;
    const Vector losses = row_losses(link, F, Tb, E);
    const Vector start_losses = row_losses(link, F0, T0b, E);
    Matrix out = Matrix::Zero(4, 1);
    for (Index i = 0; i < cnt; ++i) {
      const double loss = scale * losses(i);
      const double gain = scale * start_losses(i) - loss;
      out(0, 0) += loss;
      out(1, 0) += gain;
      out(2, 0) += gain * gain;
      out(3, 0) += classified(link, F.row(i), Tb.row(i)) ? 1.0 : 0.0;
    }
    return out;
  });
  return {s(0, 0), s(1, 0), s(2, 0), s(3, 0)};
}

// Over rows X, targets T: the mean per-row loss difference loss(theta_a) − loss(theta_b), and
// its standard error.
struct Gain {
  double mean, se;
};
Gain paired_gain(const Layout& L,
                 const Vector& theta_a,
                 const Vector& theta_b,
                 const Matrix& X,
                 const Matrix& T,
                 Activation act,
                 OutputLink link,
                 const ExecutionContext& context,
                 const Matrix* T_a = nullptr) {
  const CurvePoint p = curve_point(L, theta_b, theta_a, X, T, act, link, 1.0, context, T_a);
  const auto rows = static_cast<double>(context.global_rows(X.rows()));
  const double mean = p.gain / rows;
  const double var = std::max(0.0, p.gain2 / rows - mean * mean);
  return {mean, std::sqrt(var / rows)};
}

// Loss and gradient of the unpenalised mean loss over rows X (standardised), targets T.
// want_grad false: the loss only.
double data_loss(const Layout& L,
                 const Vector& theta,
                 const Matrix& X,
                 const Matrix& T,
                 Activation act,
                 OutputLink link,
                 const ExecutionContext& context,
                 Vector* grad) {
  const Index n = X.rows(), k = L.k, r = L.r, c = L.c;
  const Eigen::Map<const Matrix> W2(theta.data() + L.w2(), c, k);
  const Matrix A = input_weights(L, theta);
  const Index size = grad != nullptr ? L.size() : 0;
  const Matrix sum = context.mean(n, size + 1, 1, [&](Index b, Index cnt) {
    Matrix out = Matrix::Zero(size + 1, 1);
    Matrix H, dH, E, D, G;
    for (Index s = 0; s < cnt; s += kChunkRows) {
      const Index len = std::min(kChunkRows, cnt - s);
      const auto Xb = X.middleRows(b + s, len);
      Matrix F = forward(L, theta, A, Xb, act, H, dH);
      const Eigen::Ref<const Matrix> Tb = add_fixed_outputs(F, T.middleRows(b + s, len));
      out(size, 0) += row_losses(link, F, Tb, E).sum();  // E: ∂loss/∂F per row
      if (size == 0) {
        continue;
      }
      // ∂loss/∂(pre-activations) and ∂loss/∂F side by side, as A's rows are: one product with
      // the chunk gives the gradients of W1 and C.
      D.resize(len, A.rows());
      D.leftCols(k) = (E * W2).cwiseProduct(dH);
      if (L.linear) {
        D.rightCols(c) = E;
      }
      G.noalias() = D.transpose() * Xb;
      Eigen::Map<Matrix>(out.data() + L.w1(), k, r) += G.topRows(k);
      out.col(0).segment(L.b1(), k) += D.leftCols(k).colwise().sum().transpose();
      Eigen::Map<Matrix>(out.data() + L.w2(), c, k) += E.transpose() * H;
      out.col(0).segment(L.b2(), c) += E.colwise().sum().transpose();
      if (L.linear) {
        Eigen::Map<Matrix>(out.data() + L.cs(), c, r) += G.bottomRows(c);
      }
    }
    return out;
  });
  if (grad != nullptr) {
    *grad = sum.col(0).head(size);
  }
  return sum(size, 0);
}

// The weight decays that RefineOptions::weight_decay unset tries, weakest first: α = c / n for
// the strengths c of decay_strengths (n the training rows, `params` the parameters). Against a
// mean loss over n rows, α/2 ‖θ − θ0‖² weighs like c rows of evidence for the start, so the grid
// means the same strengths of the prior at any n. (The fixed grid 1e-4 ... 1e-1, this one at
// n = 100, chose 1e-4 on Friedman #3's 3,000 training rows: test R² 0.883 over three splits,
// where 1e-5 and 1e-6 gave 0.889 and 0.890, with --refine-patience 1000
// --refine-max-iterations 1000.)
std::vector<double> decay_grid(double rows, Index params) {
  std::vector<double> grid;
  for (const double c : decay_strengths(rows, params)) {
    grid.push_back(c / rows);
  }
  return grid;
}

// The weights that weight decay penalises: W1, W2 and C (not the biases).
Vector decay_mask(const Layout& L) {
  Vector m = Vector::Zero(L.size());
  m.segment(L.w1(), L.k * L.r).setOnes();
  m.segment(L.w2(), L.c * L.k).setOnes();
  if (L.linear) {
    m.segment(L.cs(), L.c * L.r).setOnes();
  }
  return m;
}

// The weight decay α/2 ‖(θ − anchor) ∘ mask‖² added to a loss `value` and its gradient `grad`,
// and the penalised value returned; a non-finite value or gradient ends the search, keeping
// `kept` (what the caller's search keeps).
double penalise(double value,
                Vector& grad,
                const Vector& theta,
                const Vector& anchor,
                const Vector& mask,
                double decay,
                const char* kept) {
  const Vector shift = (theta - anchor).cwiseProduct(mask);
  value += 0.5 * decay * shift.squaredNorm();
  grad += decay * shift;
  if (!std::isfinite(value) || !grad.allFinite()) {
    throw StopSearch{std::string("diverged (non-finite loss or gradient); ") + kept + " is kept"};
  }
  return value;
}

// The relative decrease of the validation loss that counts as progress for early stopping.
// 10⁻⁵ of the loss is a thousandth of its standard error on 10⁴ validation rows.
constexpr double kProgress = 1e-5;

struct Objective {
  const Layout& L;
  const Matrix& X;
  const Matrix& T;
  const Matrix* Xv;  // validation rows (standardised) and targets, or nullptr
  const Matrix* Tv;
  const ExecutionContext& context;
  const ExecutionContext* valid_context;
  Activation act;
  OutputLink link;
  double decay;
  Vector mask;
  Vector anchor;  // the decay pulls toward it: the start (tensor init) or zero (random init)
  int patience;
  // The point kept: lowest validation loss (with validation), else lowest objective.
  Vector best{};
  double best_score = std::numeric_limits<double>::infinity();
  double start_score = 0;
  double lowest_value = std::numeric_limits<double>::infinity();
  int since_best = 0;  // iterates since the last progress
  // The last validation score that lowered the one before it by a relative kProgress, and its
  // iterate (-1: none yet).
  double progress_score = std::numeric_limits<double>::infinity();
  int progress_iterate = -1;
  int evaluations = 0;
  int iterates = 0;  // evaluations that lowered the training objective (L-BFGS's iterates)
  int best_iterate = 0;
  int max_evaluations = 1;
  const std::function<void(double)>* progress = nullptr;
  // > 0: the search ends at this iterate (RefineData::stop_after).
  int stop_after = 0;
  // Cross-validation (refine_curves): each iterate's point on the validation rows is appended,
  // against the start `curve_start`, in original units (`curve_scale`).
  std::vector<CurvePoint>* curve = nullptr;
  const Vector* curve_start = nullptr;
  double curve_scale = 1;

  double operator()(const Vector& theta, Vector& grad) {
    const double value = penalise(data_loss(L, theta, X, T, act, link, context, &grad),
                                  grad,
                                  theta,
                                  anchor,
                                  mask,
                                  decay,
                                  "the best point seen");
    ++evaluations;
    // Only the points that lower the training objective are candidates: a line search's trial
    // step that overshoots may fit a few validation rows by chance.
    if (value <= lowest_value) {
      lowest_value = value;
      double score = value;
      if (curve != nullptr) {
        curve->push_back(
            curve_point(L, theta, *curve_start, *Xv, *Tv, act, link, curve_scale, *valid_context));
        score = curve->back().loss /
                (curve_scale * static_cast<double>(valid_context->global_rows(Xv->rows())));
      } else if (Xv != nullptr) {
        score = data_loss(L, theta, *Xv, *Tv, act, link, *valid_context, nullptr);
      }
      if (iterates == 0) {
        start_score = score;
      }
      if (best.size() == 0 || score < best_score - 1e-9 * std::abs(best_score)) {
        best_score = score;
        best = theta;
        best_iterate = iterates;
      }
      // The wait is counted from the last iterate that lowered the validation loss by a
      // relative kProgress: on many rows it creeps down for hundreds of iterates by amounts no
      // test set could see (the best point is still the lowest seen).
      if (progress_iterate < 0 || score < progress_score - kProgress * std::abs(progress_score)) {
        progress_score = score;
        progress_iterate = iterates;
        since_best = 0;
      } else if (Xv != nullptr &&
                 ++since_best >= std::max(patience, std::min(progress_iterate, 2 * patience))) {
        // The wait grows with the run, up to twice the patience: a validation loss that bumps
        // for a while (noisy rows, a unit leaving a plateau) and then improves again is waited
        // for as long as the best point took to reach (tests/test_realdata.cpp has the sets
        // where this mattered). The cap bounds what a long run may wait for nothing.
        throw StopSearch{"early stopping: the validation loss did not improve over " +
                         std::to_string(since_best) + " iterates"};
      }
      ++iterates;
      if (stop_after > 0 && iterates > stop_after) {
        throw StopSearch{"the iterate count chosen by cross-validation (" +
                         std::to_string(stop_after) + ")"};
      }
    }
    if (progress != nullptr && *progress) {
      (*progress)(std::min(0.99, evaluations / static_cast<double>(max_evaluations)));
    }
    return value;
  }
};

struct Run {
  int best_iterate = 0;
  Vector best;
  double best_score = 0;
  double start_score = 0;
  int iterations = 0;
  std::string stop_reason;
  bool diverged = false;
};

// The L-BFGS settings of every refinement run.
LBFGSpp::LBFGSParam<double> lbfgs_param(const RefineOptions& options) {
  LBFGSpp::LBFGSParam<double> param;
  param.max_iterations = options.max_iterations;
  param.epsilon = options.tolerance;
  param.epsilon_rel = options.tolerance;
  param.past = 5;
  param.delta = 1e-10;
  param.max_linesearch = 40;
  return param;
}

Run run_refinement(Objective& objective, const Vector& theta0, const RefineOptions& options) {
  const LBFGSpp::LBFGSParam<double> param = lbfgs_param(options);
  Run run;
  try {
    const LbfgsRun lbfgs = run_lbfgs(objective, theta0, param);
    run.iterations = lbfgs.iterations;
    run.stop_reason = lbfgs.stop_reason;
  } catch (const StopSearch& stop) {
    run.stop_reason = stop.reason;
    run.diverged = stop.reason.rfind("diverged", 0) == 0;
    run.iterations = objective.evaluations;  // interrupted: the evaluations done
  }
  run.best = objective.best;
  run.best_iterate = objective.best_iterate;
  run.best_score = objective.best_score;
  run.start_score = objective.start_score;
  return run;
}

Layout layout_of(const TwoLayerNetwork& net, Index r) {
  return {net.num_hidden(), r, net.num_outputs(), net.C.size() > 0};
}

// The network's parameters in standardised coordinates: W1s = W1 W⁺, b1s = b1 + W1 μ; C
// likewise; the outputs less `shift`, over `spread`.
Vector pack(const TwoLayerNetwork& net,
            const Standardizer& st,
            const Layout& L,
            double shift,
            double spread) {
  const Index k = L.k, r = L.r, c = L.c;
  Vector theta(L.size());
  Eigen::Map<Matrix>(theta.data() + L.w1(), k, r) = net.W1 * st.W_inverse;
  theta.segment(L.b1(), k) = net.b1 + net.W1 * st.mean;
  Eigen::Map<Matrix>(theta.data() + L.w2(), c, k) = net.W2 / spread;
  Vector b2 = net.b2;
  if (L.linear) {
    b2 += net.C * st.mean;
    Eigen::Map<Matrix>(theta.data() + L.cs(), c, r) = net.C * st.W_inverse / spread;
  }
  theta.segment(L.b2(), c) = (b2.array() - shift).matrix() / spread;
  return theta;
}

// The refinement's problem in standardised coordinates: the network packed, and the targets of
// the fit and validation rows, standardised for regression (t = (y − shift)/spread) so that the
// weight decay and the tolerances mean the same at any label scale.
struct Problem {
  Layout L;
  bool squared = false;
  double shift = 0, spread = 1;
  Matrix T, Tv;
  Vector theta;
  Matrix fixed_C;  // the linear term's part held fixed (outputs × d), or empty
};

// The part of net's linear term along the input directions the standardiser dropped,
// C − C W⁺ W (outputs × d): empty where none were dropped, there is no linear term, or that
// part's output variance on the training rows (from their covariance Σ) is at most
// kNegligibleFixedVariance of the whole term's for every output, as along an exactly collinear
// direction (a constant column, a one-hot group's sum), where it is rounding.
constexpr double kNegligibleFixedVariance = 1e-12;
Matrix fixed_linear_part(const TwoLayerNetwork& net, const Standardizer& st) {
  const Index d = st.W.cols();
  if (net.C.size() == 0 || st.W.rows() == d || st.covariance.rows() != d) {
    return {};
  }
  Matrix part = net.C - (net.C * st.W_inverse) * st.W;
  const Vector fixed = (part * st.covariance).cwiseProduct(part).rowwise().sum();
  const Vector whole = (net.C * st.covariance).cwiseProduct(net.C).rowwise().sum();
  for (Index j = 0; j < fixed.size(); ++j) {
    if (fixed(j) > kNegligibleFixedVariance * whole(j)) {
      return part;
    }
  }
  return {};
}

// Targets T with, beside them, the outputs (X − μ) Fᵀ / spread of the fixed linear part F (no
// centred copy of X: X Fᵀ less μᵀ Fᵀ).
Matrix with_fixed_outputs(const char* who,
                          const Matrix& T,
                          const Matrix& X,
                          const Matrix& fixed,
                          const Standardizer& st,
                          double spread) {
  if (X.rows() != T.rows() || X.cols() != fixed.cols()) {
    fail(std::string(who) + ": the original inputs are " + std::to_string(X.rows()) + "x" +
         std::to_string(X.cols()) + "; expected " + std::to_string(T.rows()) + "x" +
         std::to_string(fixed.cols()));
  }
  Matrix out(T.rows(), 2 * T.cols());
  out.leftCols(T.cols()) = T;
  out.rightCols(T.cols()).noalias() = X * fixed.transpose();
  out.rightCols(T.cols()).rowwise() -= (fixed * st.mean).transpose();
  out.rightCols(T.cols()) /= spread;
  return out;
}

Problem prepare(const char* who,
                const RefineData& data,
                const Standardizer& st,
                const ExecutionContext& context,
                const TwoLayerNetwork& net) {
  const Index c = net.num_outputs();
  if (data.targets.rows() != data.Xs.rows() || data.targets.cols() != c) {
    fail(std::string(who) + ": targets are " + std::to_string(data.targets.rows()) + "x" +
         std::to_string(data.targets.cols()) + "; expected n x " + std::to_string(c));
  }
  if (data.Xv != nullptr && data.valid_context == nullptr) {
    fail(std::string(who) + ": validation rows without their execution context");
  }
  Problem p;
  p.squared = net.link == OutputLink::Identity;
  if (p.squared) {
    p.shift = context.mean_of(data.targets.col(0));
    const double var = context.mean(data.targets.rows(), 1, 1, [&](Index b, Index cnt) {
      return Matrix::Constant(
          1, 1, (data.targets.col(0).segment(b, cnt).array() - p.shift).square().sum());
    })(0, 0);
    p.spread = var > 0 ? std::sqrt(var) : 1.0;
  }
  p.T = p.squared ? Matrix((data.targets.array() - p.shift) / p.spread) : data.targets;
  if (data.Xv != nullptr) {
    p.Tv = p.squared ? Matrix((data.Tv->array() - p.shift) / p.spread) : *data.Tv;
  }
  p.L = layout_of(net, data.Xs.cols());
  p.theta = pack(net, st, p.L, p.shift, p.spread);
  if (data.inputs != nullptr) {
    p.fixed_C = fixed_linear_part(net, st);
  }
  if (p.fixed_C.size() > 0) {
    p.T = with_fixed_outputs(who, p.T, *data.inputs, p.fixed_C, st, p.spread);
    if (data.Xv != nullptr) {
      if (data.valid_inputs == nullptr) {
        fail(std::string(who) + ": validation rows without their original inputs");
      }
      p.Tv = with_fixed_outputs(who, p.Tv, *data.valid_inputs, p.fixed_C, st, p.spread);
    }
  }
  return p;
}

// The parameters `best` (standardised coordinates) back into `net`.
void unpack(const Problem& p, const Vector& best, const Standardizer& st, TwoLayerNetwork& net) {
  const Layout& L = p.L;
  const Matrix W1s = Eigen::Map<const Matrix>(best.data() + L.w1(), L.k, L.r);
  net.W1 = W1s * st.W;
  net.b1 = best.segment(L.b1(), L.k) - net.W1 * st.mean;
  net.W2 = Eigen::Map<const Matrix>(best.data() + L.w2(), L.c, L.k) * p.spread;
  net.b2 = (best.segment(L.b2(), L.c) * p.spread).array() + p.shift;
  if (L.linear) {
    net.C = Eigen::Map<const Matrix>(best.data() + L.cs(), L.c, L.r) * p.spread * st.W;
    if (p.fixed_C.size() > 0) {
      net.C += p.fixed_C;
    }
    net.b2 -= net.C * st.mean;
  }
}

}  // namespace

void run_independent(Index count,
                     const ExecutionContext& context,
                     const ExecutionContext* other,
                     const std::function<void(Index, bool)>& job) {
  const bool together = count > 1 && resolve_threads(context.num_threads()) > 1 &&
                        context.reducer().single_part() &&
                        (other == nullptr || other->reducer().single_part());
  if (!together) {
    for (Index i = 0; i < count; ++i) {
      job(i, true);
    }
    return;
  }
  parallel_for(count, context.num_threads(), [&](Index i) { job(i, i == 0); });
}

bool beats_on_validation(const TwoLayerNetwork& a,
                         const TwoLayerNetwork& b,
                         const RefineData& data,
                         const Standardizer& st,
                         double min_improvement) {
  if (data.Xv == nullptr || data.valid_context == nullptr) {
    fail("beats_on_validation: no validation rows");
  }
  const Index r = data.Xs.cols();
  const Layout La = layout_of(a, r), Lb = layout_of(b, r);
  if (La.size() != Lb.size() || La.linear != Lb.linear) {
    fail("beats_on_validation: the two networks have different shapes");
  }
  // Each network's targets with its own fixed outputs (RefineData::inputs), if any.
  const auto targets_of = [&](const TwoLayerNetwork& net) {
    const Matrix fixed = data.valid_inputs != nullptr ? fixed_linear_part(net, st) : Matrix();
    return fixed.size() > 0
               ? with_fixed_outputs(
                     "beats_on_validation", *data.Tv, *data.valid_inputs, fixed, st, 1.0)
               : *data.Tv;
  };
  const Matrix Ta = targets_of(a), Tb = targets_of(b);
  const Gain gain = paired_gain(La,
                                pack(a, st, La, 0.0, 1.0),
                                pack(b, st, Lb, 0.0, 1.0),
                                *data.Xv,
                                Tb,
                                a.activation,
                                a.link,
                                *data.valid_context,
                                &Ta);
  return gain.mean > min_improvement * gain.se;
}

std::vector<double> decay_strengths(double rows, Index params) {
  if (params > 0 && rows >= kRowsPerParameterForOneDecay * static_cast<double>(params)) {
    return {1.0};
  }
  std::vector<double> strengths;
  for (const double c : {0.01, 0.1, 1.0, 10.0, 100.0, 1000.0}) {
    if (c / rows <= 0.1) {
      strengths.push_back(c);
    }
  }
  return strengths;
}

RefineCurves refine_curves(const RefineData& data,
                           const Standardizer& st,
                           const RefineOptions& options,
                           const std::vector<double>& decays,
                           const ExecutionContext& context,
                           const TwoLayerNetwork& net) {
  if (data.Xv == nullptr || data.valid_context == nullptr) {
    fail("refine_curves: no validation rows");
  }
  const Problem p = prepare("refine_curves", data, st, context, net);
  RefineCurves curves;
  curves.decays = decays;
  curves.runs.resize(decays.size());
  run_independent(
      static_cast<Index>(decays.size()), context, data.valid_context, [&](Index g, bool) {
        const auto at = static_cast<std::size_t>(g);
        Objective objective{p.L,
                            data.Xs,
                            p.T,
                            data.Xv,
                            &p.Tv,
                            context,
                            data.valid_context,
                            net.activation,
                            net.link,
                            decays[at],
                            decay_mask(p.L),
                            data.decay_to_start ? p.theta : Vector::Zero(p.theta.size()),
                            options.patience};
        objective.max_evaluations = options.max_iterations;
        objective.curve = &curves.runs[at];
        objective.curve_start = &p.theta;
        objective.curve_scale = p.squared ? 2 * p.spread * p.spread : 1.0;
        run_refinement(objective, p.theta, options);
      });
  return curves;
}

RefineObjective refine_objective(const RefineData& data,
                                 const Standardizer& st,
                                 const ExecutionContext& context,
                                 const TwoLayerNetwork& net) {
  const auto p =
      std::make_shared<const Problem>(prepare("refine_objective", data, st, context, net));
  const Activation act = net.activation;
  const OutputLink link = net.link;
  return {[p, &data, &context, act, link](const Vector& theta, Vector* grad) {
            return data_loss(p->L, theta, data.Xs, p->T, act, link, context, grad);
          },
          p->theta};
}

RefineReport refine_network(const RefineData& data,
                            const Standardizer& st,
                            const RefineOptions& options,
                            const ExecutionContext& context,
                            TwoLayerNetwork& net,
                            const std::function<void(double)>& progress) {
  const Problem p = prepare("refine_network", data, st, context, net);
  const Layout& L = p.L;
  const bool squared = p.squared;
  const double spread = p.spread;
  const Matrix& T = p.T;
  const Matrix& Tv = p.Tv;
  const Vector& theta = p.theta;

  const std::vector<double> grid =
      options.weight_decay
          ? std::vector<double>{*options.weight_decay}
          : decay_grid(static_cast<double>(context.global_rows(data.Xs.rows())), L.size());
  RefineReport report;
  report.loss_before = data_loss(L, theta, data.Xs, T, net.activation, net.link, context, nullptr) *
                       (squared ? 2 * spread * spread : 1.0);
  Run best_run;
  double best_decay = grid.front();
  bool have = false;
  std::atomic<int> done{0};
  const auto run_decay = [&](std::size_t i, bool reports) {
    const std::function<void(double)> part = [&](double f) {
      if (progress) {
        progress((done.load() + f) / static_cast<double>(grid.size()));
      }
    };
    Objective objective{L,
                        data.Xs,
                        T,
                        data.Xv,
                        data.Xv != nullptr ? &Tv : nullptr,
                        context,
                        data.valid_context,
                        net.activation,
                        net.link,
                        grid[i],
                        decay_mask(L),
                        data.decay_to_start ? theta : Vector::Zero(theta.size()),
                        options.patience};
    objective.progress = reports ? &part : nullptr;
    objective.max_evaluations = options.max_iterations;
    objective.stop_after = data.stop_after;
    Run run = run_refinement(objective, theta, options);
    ++done;
    return run;
  };
  // The first two decays are always both run: at the same time where the rows allow it (their
  // passes on a few thousand rows are one block each, which one thread computes).
  std::vector<Run> first(std::min<std::size_t>(2, grid.size()));
  run_independent(
      static_cast<Index>(first.size()), context, data.valid_context, [&](Index i, bool reports) {
        first[static_cast<std::size_t>(i)] = run_decay(static_cast<std::size_t>(i), reports);
      });
  for (std::size_t i = 0; i < grid.size(); ++i) {
    const double decay = grid[i];
    Run run = i < first.size() ? std::move(first[i]) : run_decay(i, true);
    if (have && !(run.best_score < best_run.best_score)) {
      // The decays are tried weakest first; once a stronger one does no better on the
      // validation rows, the stronger ones after it are not tried (the validation loss is taken
      // as unimodal in the decay). Each refinement is a full L-BFGS run: at n = 10⁶ (d = 100,
      // k = 10) the five took 136 s, which is why many rows per parameter run c = 1 alone.
      break;
    }
    best_run = std::move(run);
    best_decay = decay;
    have = true;
  }
  if (best_run.best.size() == 0) {
    // Not even the start had a finite loss: nothing to keep but the network as it is.
    report.stop_reason = best_run.stop_reason;
    report.diverged = true;
    return report;
  }
  report.iterations = best_run.iterations;
  report.stop_reason = best_run.stop_reason;
  report.weight_decay = best_decay;
  report.best_iterate = best_run.best_iterate;
  report.diverged = best_run.diverged;
  if (data.Xv != nullptr) {
    report.validation_before = best_run.start_score * (squared ? 2 * spread * spread : 1.0);
    report.validation_after = best_run.best_score * (squared ? 2 * spread * spread : 1.0);
  }
  if (data.Xv != nullptr && best_run.best_iterate > 0) {
    // A validation loss lower by chance is not an improvement: the refined point must beat the
    // start by min_improvement standard errors of the paired per-row difference.
    const Gain gain = paired_gain(
        L, theta, best_run.best, *data.Xv, Tv, net.activation, net.link, *data.valid_context);
    const double scale = squared ? 2 * spread * spread : 1.0;
    report.improvement = gain.mean * scale;
    report.improvement_se = gain.se * scale;
    if (report.improvement <= options.min_improvement * report.improvement_se) {
      best_run.best = theta;
      best_run.best_iterate = 0;
      best_run.best_score = best_run.start_score;
    }
  }
  report.start_kept = best_run.best_iterate == 0;
  unpack(p, best_run.best, st, net);  // never worse than the start: the start was evaluated
  return report;
}

namespace {

// The objective of the continuation on all rows: the mean loss over the fit rows X and the
// validation rows Xe together, plus the weight decay toward the anchor. It stops the search at
// the first iterate whose loss on Xe is down to `target` (the start included), or at iterate
// max_iterates; the point kept is the last iterate (the lowest objective).
struct AllRowsObjective {
  const Layout& L;
  const Matrix& X;
  const Matrix& T;
  const Matrix& Xe;
  const Matrix& Te;
  const ExecutionContext& context;
  const ExecutionContext& extra_context;
  Activation act;
  OutputLink link;
  double share;  // the fit rows' share of all rows
  double decay;
  Vector mask;
  Vector anchor;
  double target;
  int max_iterates;
  Vector best{};
  double lowest = std::numeric_limits<double>::infinity();
  int iterates = 0;  // iterates seen, the start included
  int last = 0;      // the last iterate's index: the steps taken

  double operator()(const Vector& theta, Vector& grad) {
    Vector g_fit, g_extra;
    double fit = 0, extra = 0;
    run_independent(2, context, &extra_context, [&](Index part, bool /*reports*/) {
      if (part == 0) {
        fit = data_loss(L, theta, X, T, act, link, context, &g_fit);
      } else {
        extra = data_loss(L, theta, Xe, Te, act, link, extra_context, &g_extra);
      }
    });
    grad = share * g_fit + (1 - share) * g_extra;
    const double value = penalise(
        share * fit + (1 - share) * extra, grad, theta, anchor, mask, decay, "the last iterate");
    if (value <= lowest) {  // an iterate: the start is iterate 0
      lowest = value;
      best = theta;
      last = iterates++;
      if (extra <= target) {
        throw StopSearch{"the validation rows' loss reached the fit rows'"};
      }
      if (last == max_iterates) {
        throw StopSearch{"the iterate budget: half the early-stopped run's"};
      }
    }
    return value;
  }
};

}  // namespace

void continue_on_all_rows(const RefineData& data,
                          const Standardizer& st,
                          const RefineOptions& options,
                          const Continuation& how,
                          const ExecutionContext& context,
                          TwoLayerNetwork& net,
                          RefineReport& report) {
  if (data.Xv == nullptr || data.valid_context == nullptr) {
    fail("continue_on_all_rows: no validation rows");
  }
  const Problem p = prepare("continue_on_all_rows", data, st, context, net);
  const Index fit_rows = context.global_rows(data.Xs.rows());
  const Index valid_rows = data.valid_context->global_rows(data.Xv->rows());
  const double target =
      data_loss(p.L, p.theta, data.Xs, p.T, net.activation, net.link, context, nullptr);
  AllRowsObjective objective{
      p.L,
      data.Xs,
      p.T,
      *data.Xv,
      p.Tv,
      context,
      *data.valid_context,
      net.activation,
      net.link,
      static_cast<double>(fit_rows) / static_cast<double>(fit_rows + valid_rows),
      how.decay,
      decay_mask(p.L),
      how.anchor != nullptr ? pack(*how.anchor, st, p.L, p.shift, p.spread)
                            : Vector::Zero(p.theta.size()),
      target,
      std::max(1, how.max_iterates)};
  const LBFGSpp::LBFGSParam<double> param = lbfgs_param(options);
  try {
    report.all_rows_stop = run_lbfgs(objective, p.theta, param).stop_reason;
  } catch (const StopSearch& stop) {
    report.all_rows_stop = stop.reason;
  }
  report.all_rows_iterates = objective.last;
  report.all_rows = objective.last > 0;
  if (report.all_rows) {
    unpack(p, objective.best, st, net);
  }
}

}  // namespace nnlift::detail
