// Symmetric tensors: default contractions, the dense tensor and the callback adapter.
// SPDX-License-Identifier: MIT
#include <cmath>
#include <sstream>
#include <stdexcept>

#include <Eigen/Cholesky>
#include <Eigen/QR>

#include <nnlift/tensor.hpp>

#include "detail/parallel.hpp"

namespace nnlift {
namespace {

// Rounding can leave a computed projection asymmetric in the last bits; average the six
// index permutations so that the stored tensor is exactly symmetric.
std::vector<double> symmetrized(Index d, const double* raw) {
  std::vector<double> out(static_cast<std::size_t>(d * d * d));
  auto at = [&](Index i, Index j, Index l) { return raw[i + d * (j + d * l)]; };
  for (Index l = 0; l < d; ++l) {
    for (Index j = 0; j < d; ++j) {
      for (Index i = 0; i < d; ++i) {
        out[static_cast<std::size_t>(i + d * (j + d * l))] =
            (at(i, j, l) + at(i, l, j) + at(j, i, l) + at(j, l, i) + at(l, i, j) + at(l, j, i)) /
            6.0;
      }
    }
  }
  return out;
}

// Rows j + d·l of the d²×P matrix hold U(j,p)·V(l,p): its product with the unfolding gives
// T(I, u_p, v_p).
Matrix pair_products(const Matrix& U, const Matrix& V) {
  const Index d = U.rows();
  Matrix W(d * d, U.cols());
  for (Index p = 0; p < U.cols(); ++p) {
    for (Index l = 0; l < d; ++l) {
      W.col(p).segment(d * l, d) = U.col(p) * V(l, p);
    }
  }
  return W;
}

void require_pairs_shape(const char* where, Index d, const Matrix& U, const Matrix& V) {
  if (U.rows() != d || V.rows() != d || U.cols() != V.cols()) {
    std::ostringstream msg;
    msg << where << ": U is " << U.rows() << "x" << U.cols() << " and V is " << V.rows() << "x"
        << V.cols() << "; both must be " << d << "xP";
    throw std::invalid_argument(msg.str());
  }
}

}  // namespace

Vector SymmetricTensor3::apply(const Vector& u) const {
  const Matrix U = u;
  return contract_pairs(U, U).col(0);
}

double SymmetricTensor3::contract(const Vector& u) const { return u.dot(apply(u)); }

Matrix SymmetricTensor3::slice(const Vector& u) const {
  const Index d = dim();
  return contract_pairs(Matrix::Identity(d, d), u.replicate(1, d));
}

Matrix SymmetricTensor3::contract_block(const Matrix& Q) const {
  const Index d = dim();
  const Index m = Q.cols();
  const Index pairs = m * (m + 1) / 2;
  Matrix U(d, pairs), V(d, pairs);
  Index p = 0;
  for (Index b = 0; b < m; ++b) {
    for (Index a = 0; a <= b; ++a, ++p) {
      U.col(p) = Q.col(a);
      V.col(p) = Q.col(b);
    }
  }
  const Matrix Y = contract_pairs(U, V);
  Matrix out(d, m * m);
  p = 0;
  for (Index b = 0; b < m; ++b) {
    for (Index a = 0; a <= b; ++a, ++p) {
      out.col(a + m * b) = Y.col(p);
      out.col(b + m * a) = Y.col(p);
    }
  }
  return out;
}

DenseSymmetricTensor3 SymmetricTensor3::project(const Matrix& Q) const {
  const Index m = Q.cols();
  const Matrix core = Q.transpose() * contract_block(Q);  // m×m², column a + m·b
  return DenseSymmetricTensor3(m, symmetrized(m, core.data()), DenseSymmetricTensor3::Trusted{});
}

DenseSymmetricTensor3::DenseSymmetricTensor3(Index d,
                                             std::vector<double> data,
                                             double symmetry_tolerance)
    : m_dim(d), m_data(std::move(data)) {
  if (d < 1) {
    throw std::invalid_argument("DenseSymmetricTensor3: dimension d = " + std::to_string(d) +
                                "; must be >= 1");
  }
  if (static_cast<Index>(m_data.size()) != d * d * d) {
    throw std::invalid_argument("DenseSymmetricTensor3: " + std::to_string(m_data.size()) +
                                " values for d = " + std::to_string(d) +
                                "; expected d^3 = " + std::to_string(d * d * d));
  }
  double largest = 0.0;
  for (std::size_t i = 0; i < m_data.size(); ++i) {
    if (!std::isfinite(m_data[i])) {
      const Index flat = static_cast<Index>(i);
      std::ostringstream msg;
      msg << "DenseSymmetricTensor3: entry (" << flat % d << ", " << (flat / d) % d << ", "
          << flat / (d * d) << ") is not finite";
      throw std::invalid_argument(msg.str());
    }
    largest = std::max(largest, std::abs(m_data[i]));
  }
  double worst = 0.0;
  Index wi = 0, wj = 0, wl = 0;
  for (Index l = 0; l < d; ++l) {
    for (Index j = 0; j < d; ++j) {
      for (Index i = 0; i < d; ++i) {
        const double t = (*this)(i, j, l);
        const double diffs[5] = {(*this)(j, i, l),
                                 (*this)(i, l, j),
                                 (*this)(l, j, i),
                                 (*this)(j, l, i),
                                 (*this)(l, i, j)};
        for (double other : diffs) {
          if (std::abs(t - other) > worst) {
            worst = std::abs(t - other);
            wi = i, wj = j, wl = l;
          }
        }
      }
    }
  }
  if (worst > symmetry_tolerance * std::max(1.0, largest)) {
    std::ostringstream msg;
    msg << "DenseSymmetricTensor3: tensor is not symmetric: largest asymmetry " << worst << " at ("
        << wi << ", " << wj << ", " << wl << ") exceeds tolerance "
        << symmetry_tolerance * std::max(1.0, largest);
    throw std::invalid_argument(msg.str());
  }
}

DenseSymmetricTensor3 DenseSymmetricTensor3::symmetrize(Index d, const std::vector<double>& data) {
  if (d < 1 || static_cast<Index>(data.size()) != d * d * d) {
    throw std::invalid_argument(
        "DenseSymmetricTensor3::symmetrize: " + std::to_string(data.size()) +
        " values for d = " + std::to_string(d));
  }
  return DenseSymmetricTensor3(d, symmetrized(d, data.data()), Trusted{});
}

DenseSymmetricTensor3 DenseSymmetricTensor3::from_factors(const Vector& lambda, const Matrix& V) {
  if (lambda.size() != V.cols() || V.rows() < 1) {
    throw std::invalid_argument(
        "DenseSymmetricTensor3::from_factors: " + std::to_string(lambda.size()) + " weights for " +
        std::to_string(V.cols()) + " components");
  }
  if (!lambda.allFinite() || !V.allFinite()) {
    throw std::invalid_argument("DenseSymmetricTensor3::from_factors: non-finite input");
  }
  const Index d = V.rows();
  Matrix kr(d * d, V.cols());  // row j + d·l = V(j,:) ∘ V(l,:)
  for (Index l = 0; l < d; ++l) {
    kr.middleRows(d * l, d) = V * V.row(l).asDiagonal();
  }
  const Matrix unfolding = V * lambda.asDiagonal() * kr.transpose();
  return DenseSymmetricTensor3(
      d, std::vector<double>(unfolding.data(), unfolding.data() + unfolding.size()), Trusted{});
}

Eigen::Map<const Matrix> DenseSymmetricTensor3::unfolding() const {
  return Eigen::Map<const Matrix>(m_data.data(), m_dim, m_dim * m_dim);
}

double DenseSymmetricTensor3::frobenius_norm() const {
  return Eigen::Map<const Vector>(m_data.data(), static_cast<Index>(m_data.size())).norm();
}

Matrix DenseSymmetricTensor3::contract_pairs(const Matrix& U, const Matrix& V) const {
  require_pairs_shape("DenseSymmetricTensor3::contract_pairs", m_dim, U, V);
  return detail::parallel_product(unfolding(), pair_products(U, V), 0, 64);
}

double DenseSymmetricTensor3::contract(const Vector& u) const {
  return u.dot(Matrix(slice(u)) * u);
}

Matrix DenseSymmetricTensor3::slice(const Vector& u) const {
  const Index d = m_dim;
  const Vector flat = Eigen::Map<const Matrix>(m_data.data(), d * d, d) * u;
  return Eigen::Map<const Matrix>(flat.data(), d, d);
}

Matrix DenseSymmetricTensor3::contract_block(const Matrix& Q) const {
  // Mode products one at a time: T(I,I,Q) (d²×m, O(d³m)), then each d×d slice times Q.
  const Index d = m_dim;
  const Index m = Q.cols();
  const Matrix third =
      detail::parallel_product(Eigen::Map<const Matrix>(m_data.data(), d * d, d), Q, 0);
  Matrix out(d, m * m);  // column a + m·b = T(I, q_a, q_b)
  detail::parallel_for(m, 0, [&](Index b) {
    const Eigen::Map<const Matrix> slice_b(third.col(b).data(), d, d);  // T(I, I, q_b)
    out.middleCols(m * b, m).noalias() = slice_b * Q;
  });
  return out;
}

DenseSymmetricTensor3 DenseSymmetricTensor3::project(const Matrix& Q) const {
  const Index m = Q.cols();
  const Matrix core = Q.transpose() * contract_block(Q);  // m×m², column a + m·b
  return DenseSymmetricTensor3(m, symmetrized(m, core.data()), DenseSymmetricTensor3::Trusted{});
}

CallbackSymmetricTensor3::CallbackSymmetricTensor3(Index d, PairsFn pairs, ContractFn contract)
    : m_dim(d), m_pairs(std::move(pairs)), m_contract(std::move(contract)) {
  if (d < 1) {
    throw std::invalid_argument("CallbackSymmetricTensor3: dimension d = " + std::to_string(d) +
                                "; must be >= 1");
  }
  if (!m_pairs) {
    throw std::invalid_argument("CallbackSymmetricTensor3: the pairs callback is empty");
  }
}

Matrix CallbackSymmetricTensor3::contract_pairs(const Matrix& U, const Matrix& V) const {
  require_pairs_shape("CallbackSymmetricTensor3::contract_pairs", m_dim, U, V);
  Matrix out = m_pairs(U, V);
  if (out.rows() != m_dim || out.cols() != U.cols()) {
    std::ostringstream msg;
    msg << "CallbackSymmetricTensor3: the pairs callback returned " << out.rows() << "x"
        << out.cols() << "; expected " << m_dim << "x" << U.cols();
    throw std::invalid_argument(msg.str());
  }
  return out;
}

double CallbackSymmetricTensor3::contract(const Vector& u) const {
  return m_contract ? m_contract(u) : SymmetricTensor3::contract(u);
}

Vector fit_weights(const SymmetricTensor3& T, const Matrix& V) {
  const Index r = V.cols();
  const Matrix gram = (V.transpose() * V).array().cube().matrix();
  Vector rhs(r);
  for (Index j = 0; j < r; ++j) {
    rhs(j) = T.contract(V.col(j));
  }
  return gram.colPivHouseholderQr().solve(rhs);
}

double relative_residual(const DenseSymmetricTensor3& T, const Vector& lambda, const Matrix& V) {
  if (lambda.size() != V.cols() || V.rows() != T.dim()) {
    throw std::invalid_argument("relative_residual: " + std::to_string(lambda.size()) +
                                " weights and a " + std::to_string(V.rows()) + "x" +
                                std::to_string(V.cols()) +
                                " factor matrix for d = " + std::to_string(T.dim()));
  }
  // Slice by slice: T(:,:,l) − V diag(λ ∘ V(l,:)) Vᵀ, without forming the model tensor.
  const Index d = T.dim();
  const Eigen::Map<const Matrix> slices(T.data().data(), d * d, d);
  double diff2 = 0.0;
  Matrix model(d, d);
  for (Index l = 0; l < d; ++l) {
    const Vector weights = lambda.cwiseProduct(V.row(l).transpose());
    model.noalias() = V * weights.asDiagonal() * V.transpose();
    diff2 += (Eigen::Map<const Matrix>(slices.col(l).data(), d, d) - model).squaredNorm();
  }
  const double norm = T.frobenius_norm();
  const double diff = std::sqrt(diff2);
  return norm > 0 ? diff / norm : diff;
}

}  // namespace nnlift
