#include "parcellation/spherical_locator.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "diffcoseg/vec.h"

namespace ddcsr::parcellation_detail {

using namespace ddcsr::diffcoseg;

SphericalLocator::SphericalLocator(const Mesh& sphere) : faces_(sphere.faces) {
  x_.reserve(sphere.vertices.size());
  for (const auto& v : sphere.vertices) x_.push_back({v[0], v[1], v[2]});
  vertex_faces_.resize(x_.size());
  double edge = 0;
  for (size_t f = 0; f < faces_.size(); ++f)
    for (int k = 0; k < 3; ++k) {
      vertex_faces_[faces_[f][k]].push_back(int32_t(f));
      edge += norm(x_[faces_[f][(k + 1) % 3]] - x_[faces_[f][k]]);
    }
  cell_ = std::max(3.0 * edge / std::max<double>(1, 3.0 * double(faces_.size())), 1e-6);
  for (size_t f = 0; f < faces_.size(); ++f) {
    Vec3 lo{1e300, 1e300, 1e300}, hi{-1e300, -1e300, -1e300};
    for (int k = 0; k < 3; ++k)
      for (int d = 0; d < 3; ++d) {
        lo[d] = std::min(lo[d], x_[faces_[f][k]][d]);
        hi[d] = std::max(hi[d], x_[faces_[f][k]][d]);
      }
    // A point on the sphere above a face lies within its sagitta of the face's plane: half a
    // cell covers it for any face shorter than a cell.
    const double margin = 0.5 * cell_;
    std::array<int64_t, 3> a, b;
    for (int d = 0; d < 3; ++d) {
      a[d] = int64_t(std::floor((lo[d] - margin) / cell_));
      b[d] = int64_t(std::floor((hi[d] + margin) / cell_));
    }
    for (int64_t i = a[0]; i <= b[0]; ++i)
      for (int64_t j = a[1]; j <= b[1]; ++j)
        for (int64_t k = a[2]; k <= b[2]; ++k)
          cells_[(i + (1 << 20)) | ((j + (1 << 20)) << 21) | ((k + (1 << 20)) << 42)].push_back(
              int32_t(f));
  }
}

int64_t SphericalLocator::key(const Vec3& p) const {
  const int64_t i = int64_t(std::floor(p[0] / cell_)), j = int64_t(std::floor(p[1] / cell_)),
                k = int64_t(std::floor(p[2] / cell_));
  return (i + (1 << 20)) | ((j + (1 << 20)) << 21) | ((k + (1 << 20)) << 42);
}

bool SphericalLocator::inside(int32_t face, const Vec3& d, std::array<double, 3>& w) const {
  const auto& f = faces_[size_t(face)];
  const Vec3 &a = x_[f[0]], &b = x_[f[1]], &c = x_[f[2]];
  w = {dot(d, cross(b, c)), dot(d, cross(c, a)), dot(d, cross(a, b))};
  const double s = w[0] + w[1] + w[2];
  if (s == 0) return false;
  for (double& v : w) v /= s;
  // The ray must meet the face on the sphere's side of the origin, not the antipode.
  if (dot(d, a + b + c) <= 0) return false;
  return w[0] >= 0 && w[1] >= 0 && w[2] >= 0;
}

SphericalLocator::Hit SphericalLocator::locate(const Vec3& point, int32_t hint) const {
  Hit h;
  const double r = norm(point);
  if (!(r > 0)) return h;
  const Vec3 d = (1.0 / r) * point;
  if (hint >= 0 && size_t(hint) < faces_.size()) {
    if (inside(hint, d, h.weights)) return h.face = hint, h;
    for (int k = 0; k < 3; ++k)
      for (int32_t f : vertex_faces_[faces_[size_t(hint)][k]])
        if (inside(f, d, h.weights)) return h.face = f, h;
  }
  // Radius of the mesh near the point: the grid is searched where the faces are.
  const double radius = norm(x_[faces_[0][0]]);
  const Vec3 q = radius * d;
  if (auto it = cells_.find(key(q)); it != cells_.end())
    for (int32_t f : it->second)
      if (inside(f, d, h.weights)) return h.face = f, h;
  // Rounding at an edge or a vertex: the face whose weights are least negative.
  double best = -std::numeric_limits<double>::infinity();
  std::array<double, 3> w;
  for (int di = -1; di <= 1; ++di)
    for (int dj = -1; dj <= 1; ++dj)
      for (int dk = -1; dk <= 1; ++dk) {
        const Vec3 o{q[0] + di * cell_, q[1] + dj * cell_, q[2] + dk * cell_};
        auto it = cells_.find(key(o));
        if (it == cells_.end()) continue;
        for (int32_t f : it->second) {
          inside(f, d, w);
          const auto& fc = faces_[size_t(f)];
          if (dot(d, x_[fc[0]] + x_[fc[1]] + x_[fc[2]]) <= 0) continue;
          const double m = std::min({w[0], w[1], w[2]});
          if (m > best) best = m, h.face = f, h.weights = w;
        }
      }
  if (h.face >= 0)
    for (double& v : h.weights) v = std::max(v, 0.0);
  if (h.face >= 0) {
    const double s = h.weights[0] + h.weights[1] + h.weights[2];
    if (s > 0)
      for (double& v : h.weights) v /= s;
    else
      h.weights = {1, 0, 0};
  }
  return h;
}

}  // namespace ddcsr::parcellation_detail
