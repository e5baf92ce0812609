#include "ddcsr/affine.h"

#include <cmath>
#include <stdexcept>

namespace ddcsr {

Affine Affine::from_linear_translation(const std::array<double, 9>& linear, const Vec3& t) {
  Affine a;
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) a(r, c) = linear[r * 3 + c];
    a(r, 3) = t[r];
  }
  return a;
}

Vec3 Affine::apply(const Vec3& p) const {
  Vec3 out;
  for (int r = 0; r < 3; ++r)
    out[r] = m[r * 4] * p[0] + m[r * 4 + 1] * p[1] + m[r * 4 + 2] * p[2] + m[r * 4 + 3];
  return out;
}

Vec3 Affine::apply_linear(const Vec3& v) const {
  Vec3 out;
  for (int r = 0; r < 3; ++r) out[r] = m[r * 4] * v[0] + m[r * 4 + 1] * v[1] + m[r * 4 + 2] * v[2];
  return out;
}

double Affine::determinant() const {
  const auto& a = *this;
  return a(0, 0) * (a(1, 1) * a(2, 2) - a(1, 2) * a(2, 1)) -
         a(0, 1) * (a(1, 0) * a(2, 2) - a(1, 2) * a(2, 0)) +
         a(0, 2) * (a(1, 0) * a(2, 1) - a(1, 1) * a(2, 0));
}

Affine Affine::inverse() const {
  const double det = determinant();
  const Vec3 norms = column_norms();
  const double scale = norms[0] * norms[1] * norms[2];
  // Relative to the column scales, so tiny voxels are not mistaken for a singular matrix.
  if (!std::isfinite(det) || scale == 0.0 || std::abs(det) <= 1e-12 * scale) {
    throw std::domain_error("singular affine");
  }
  const auto& a = *this;
  std::array<double, 9> inv{
      (a(1, 1) * a(2, 2) - a(1, 2) * a(2, 1)) / det, (a(0, 2) * a(2, 1) - a(0, 1) * a(2, 2)) / det,
      (a(0, 1) * a(1, 2) - a(0, 2) * a(1, 1)) / det, (a(1, 2) * a(2, 0) - a(1, 0) * a(2, 2)) / det,
      (a(0, 0) * a(2, 2) - a(0, 2) * a(2, 0)) / det, (a(0, 2) * a(1, 0) - a(0, 0) * a(1, 2)) / det,
      (a(1, 0) * a(2, 1) - a(1, 1) * a(2, 0)) / det, (a(0, 1) * a(2, 0) - a(0, 0) * a(2, 1)) / det,
      (a(0, 0) * a(1, 1) - a(0, 1) * a(1, 0)) / det};
  const Vec3 t = translation();
  Vec3 tinv;
  for (int r = 0; r < 3; ++r)
    tinv[r] = -(inv[r * 3] * t[0] + inv[r * 3 + 1] * t[1] + inv[r * 3 + 2] * t[2]);
  return from_linear_translation(inv, tinv);
}

Affine Affine::operator*(const Affine& rhs) const {
  Affine out;
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) {
      double s = 0;
      for (int k = 0; k < 4; ++k) s += (*this)(r, k) * rhs(k, c);
      out(r, c) = s;
    }
  return out;
}

Vec3 Affine::column_norms() const {
  Vec3 out;
  for (int c = 0; c < 3; ++c)
    out[c] = std::sqrt(m[c] * m[c] + m[4 + c] * m[4 + c] + m[8 + c] * m[8 + c]);
  return out;
}

std::string orientation_code(const Affine& a) {
  std::string code;
  for (int c = 0; c < 3; ++c) {
    int best = 0;
    for (int r = 1; r < 3; ++r)
      if (std::abs(a(r, c)) > std::abs(a(best, c))) best = r;
    code += a(best, c) >= 0 ? "RAS"[best] : "LPI"[best];
  }
  return code;
}

}  // namespace ddcsr
