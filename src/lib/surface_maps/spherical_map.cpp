// A bijective spherical map of a genus-0 surface (see surface_maps.h for the method).
#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <Eigen/SparseCholesky>
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <tuple>

#include "ddcsr/surface_maps/surface_maps.h"
#include "surface_maps_detail.h"

namespace ddcsr {

using namespace surface_maps_detail;

namespace {

constexpr double kSphereRadius = 100.0;  // FreeSurfer's ?h.sphere

int64_t count_folded(const std::vector<V3>& p, const Mesh& m) {
  int64_t folded = 0;
  for (const auto& f : m.faces)
    if (dot(face_normal_unscaled(p, f), p[f[0]] + p[f[1]] + p[f[2]]) <= 0) ++folded;
  return folded;
}

std::vector<V3> inverse_stereographic(const std::vector<std::array<double, 2>>& u, double scale) {
  std::vector<V3> p(u.size());
  for (size_t i = 0; i < u.size(); ++i) {
    const double a = u[i][0] / scale, b = u[i][1] / scale, r2 = a * a + b * b;
    p[i] = (1.0 / (r2 + 1.0)) * V3{2 * a, 2 * b, r2 - 1.0};
  }
  return p;
}

V3 weighted_centroid(const std::vector<V3>& p, const std::vector<double>& w) {
  V3 c{0, 0, 0};
  double s = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    c += w[i] * p[i];
    s += w[i];
  }
  return (1.0 / s) * c;
}

// The Moebius transformation of the unit ball that sends c (|c| < 1) to the origin; it maps
// the unit sphere onto itself.
void moebius_to_origin(std::vector<V3>& p, const V3& c) {
  const double cc = dot(c, c);
  for (V3& x : p) {
    const V3 d = x - c;
    const V3 num = (1.0 - cc) * d - dot(d, d) * c;
    const double den = 1.0 - 2.0 * dot(x, c) + dot(x, x) * cc;
    x = normalized((1.0 / den) * num);
  }
}

}  // namespace

SphericalMap spherical_map(const Mesh& white, const Mesh& inflated, SphereWeights weights) {
  if (white.vertices.size() != inflated.vertices.size() ||
      white.faces.size() != inflated.faces.size() || white.faces.size() < 4)
    throw std::invalid_argument("spherical_map: white and inflated do not share one mesh");
  const size_t n = white.vertices.size();
  const std::vector<V3> x = to_v3(inflated);

  // Puncture: the face farthest out along the surface's thinnest principal axis (the middle of
  // the lateral or medial face of a hemisphere, where the surface is broad and round). The face
  // farthest from the centre instead is the tip of any protrusion (a temporal pole, the stalk a
  // reconstruction leaves towards the brainstem), and the map then crowds the whole hemisphere
  // into a corner of the sphere (seen on philips_enh: median area distortion 1.95).
  V3 centre{0, 0, 0};
  for (const V3& p : x) centre += p;
  centre = (1.0 / double(n)) * centre;
  Eigen::Matrix3d scatter = Eigen::Matrix3d::Zero();
  for (const V3& p : x) {
    const Eigen::Vector3d d(p[0] - centre[0], p[1] - centre[1], p[2] - centre[2]);
    scatter += d * d.transpose();
  }
  Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> axes(scatter);
  const Eigen::Vector3d thin = axes.eigenvectors().col(0);  // smallest eigenvalue first
  size_t puncture = 0;
  double far = -1e300;
  for (size_t f = 0; f < white.faces.size(); ++f) {
    const auto& t = white.faces[f];
    const V3 c = (1.0 / 3.0) * (x[t[0]] + x[t[1]] + x[t[2]]) - centre;
    const double d = c[0] * thin[0] + c[1] * thin[1] + c[2] * thin[2];
    if (d > far) far = d, puncture = f;
  }
  const auto boundary = white.faces[puncture];

  // Tutte embedding: each inner vertex at the weighted mean of its neighbours.
  std::vector<int> index(n, -1);
  for (int k = 0; k < 3; ++k) index[boundary[k]] = -2 - k;
  int inner = 0;
  for (size_t i = 0; i < n; ++i)
    if (index[i] == -1) index[i] = inner++;
  std::vector<std::array<double, 2>> u(n, {0.0, 0.0});
  for (int k = 0; k < 3; ++k) {
    const double a = 2.0 * M_PI * k / 3.0;
    u[boundary[k]] = {std::cos(a), std::sin(a)};
  }
  std::vector<double> weight_sum(n, 0.0);
  std::vector<Eigen::Triplet<double>> t;
  Eigen::MatrixXd rhs = Eigen::MatrixXd::Zero(inner, 2);
  if (weights == SphereWeights::Uniform) {
    for (const auto& [i, j] : unique_edges(white)) {
      weight_sum[i] += 1.0;
      weight_sum[j] += 1.0;
      for (const auto& [a, b] : {std::pair<int32_t, int32_t>{i, j}, {j, i}}) {
        if (index[a] < 0) continue;
        if (index[b] >= 0)
          t.emplace_back(index[a], index[b], -1.0);
        else
          for (int d = 0; d < 2; ++d) rhs(index[a], d) += u[b][d];
      }
    }
  } else {
    // Half the sum of the cotangents opposite each edge, clamped positive: obtuse corners give
    // negative weights, and Tutte's guarantee needs every weight positive.
    std::vector<std::tuple<int32_t, int32_t, double>> half;
    half.reserve(3 * white.faces.size());
    for (const auto& f : white.faces)
      for (int k = 0; k < 3; ++k) {
        const int32_t i = f[k], j = f[(k + 1) % 3], l = f[(k + 2) % 3];
        const V3 a = x[i] - x[l], b = x[j] - x[l];
        const double s = norm(cross(a, b));
        half.emplace_back(std::min(i, j), std::max(i, j), s > 0 ? 0.5 * dot(a, b) / s : 0.0);
      }
    std::sort(half.begin(), half.end());
    for (size_t k = 0; k < half.size();) {
      const int32_t i = std::get<0>(half[k]), j = std::get<1>(half[k]);
      double w = 0;
      for (; k < half.size() && std::get<0>(half[k]) == i && std::get<1>(half[k]) == j; ++k)
        w += std::get<2>(half[k]);
      w = std::max(w, 1e-3);
      weight_sum[i] += w;
      weight_sum[j] += w;
      for (const auto& [a, b] : {std::pair<int32_t, int32_t>{i, j}, {j, i}}) {
        if (index[a] < 0) continue;
        if (index[b] >= 0)
          t.emplace_back(index[a], index[b], -w);
        else
          for (int d = 0; d < 2; ++d) rhs(index[a], d) += w * u[b][d];
      }
    }
  }
  for (size_t i = 0; i < n; ++i)
    if (index[i] >= 0) t.emplace_back(index[i], index[i], weight_sum[i]);
  Eigen::SparseMatrix<double> system(inner, inner);
  system.setFromTriplets(t.begin(), t.end());
  Eigen::SimplicialLDLT<Eigen::SparseMatrix<double>> solver(system);
  if (solver.info() != Eigen::Success)
    throw std::runtime_error("spherical_map: the embedding system could not be factorised");
  const Eigen::MatrixXd solution = solver.solve(rhs);
  for (size_t i = 0; i < n; ++i)
    if (index[i] >= 0) u[i] = {solution(index[i], 0), solution(index[i], 1)};

  const std::vector<double> area = vertex_areas(x, inflated);
  // The plane's orientation depends on the puncture's corner order: mirror it if the faces
  // come out facing inward.
  std::vector<V3> p = inverse_stereographic(u, 1.0);
  if (count_folded(p, white) > int64_t(white.faces.size() / 2))
    for (auto& q : u) q[1] = -q[1];
  // Most of the surface lies in a small part of the plane: first the dilation that balances the
  // area between the hemispheres z > 0 and z < 0, then Moebius centring of the area measure.
  double lo = 1e-12, hi = 10.0;
  for (int it = 0; it < 80; ++it) {
    const double s = std::sqrt(lo * hi);
    p = inverse_stereographic(u, s);
    if (weighted_centroid(p, area)[2] > 0)
      lo = s;
    else
      hi = s;
  }
  p = inverse_stereographic(u, std::sqrt(lo * hi));
  for (int it = 0; it < 100; ++it) {
    const V3 c = weighted_centroid(p, area);
    if (norm(c) < 1e-7) break;
    moebius_to_origin(p, 0.9 * c);
  }

  // Orientation: the rotation that best aligns the sphere with the inflated surface's radial
  // directions (weighted Kabsch), so that anterior stays anterior.
  Eigen::Matrix3d h = Eigen::Matrix3d::Zero();
  for (size_t i = 0; i < n; ++i) {
    const V3 r = normalized(x[i] - centre);
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) h(a, b) += area[i] * p[i][a] * r[b];
  }
  Eigen::JacobiSVD<Eigen::Matrix3d> svd(h, Eigen::ComputeFullU | Eigen::ComputeFullV);
  Eigen::Matrix3d fix = Eigen::Matrix3d::Identity();
  fix(2, 2) = (svd.matrixV() * svd.matrixU().transpose()).determinant() < 0 ? -1.0 : 1.0;
  const Eigen::Matrix3d rot = svd.matrixV() * fix * svd.matrixU().transpose();
  for (V3& q : p) {
    const Eigen::Vector3d r = rot * Eigen::Vector3d(q[0], q[1], q[2]);
    q = {kSphereRadius * r[0], kSphereRadius * r[1], kSphereRadius * r[2]};
  }

  SphericalMap out;
  out.sphere = white;
  out.sphere.scalars.clear();
  out.sphere.surface = "sphere";
  out.sphere.geometry = VolumeGeometry();
  from_v3(p, out.sphere);
  // Tutte's theorem holds in exact arithmetic; slivers a few micrometres across can still come
  // out turned over (3 faces of 300,000 on philips_enh). Their corners move to the mean of their
  // neighbours on the sphere, which unfolds them.
  std::vector<std::vector<int32_t>> ring(n);
  for (const auto& f : white.faces)
    for (int k = 0; k < 3; ++k) ring[f[k]].push_back(f[(k + 1) % 3]);
  for (int round = 0; round < 20; ++round) {
    std::vector<uint8_t> on_fold(n, 0);
    int64_t folded = 0;
    for (const auto& f : white.faces)
      if (dot(face_normal_unscaled(p, f), p[f[0]] + p[f[1]] + p[f[2]]) <= 0) {
        ++folded;
        for (int k = 0; k < 3; ++k) on_fold[f[k]] = 1;
      }
    if (folded == 0) break;
    for (size_t i = 0; i < n; ++i) {
      if (!on_fold[i]) continue;
      V3 m{0, 0, 0};
      for (int32_t j : ring[i]) m += p[j];
      p[i] = kSphereRadius * normalized(m);
    }
  }
  out.folded_faces = count_folded(p, white);
  const double sphere_total = 4.0 * M_PI * kSphereRadius * kSphereRadius;
  const double surface_total = total_area(x, inflated);
  std::vector<double> ratio;
  ratio.reserve(white.faces.size());
  for (const auto& f : white.faces) {
    const double a = 0.5 * norm(face_normal_unscaled(p, f)) / sphere_total;
    const double b = 0.5 * norm(face_normal_unscaled(x, f)) / surface_total;
    if (a > 0 && b > 0) ratio.push_back(std::abs(std::log(a / b)));
  }
  if (!ratio.empty()) {
    std::nth_element(ratio.begin(), ratio.begin() + long(ratio.size() / 2), ratio.end());
    out.area_distortion = ratio[ratio.size() / 2];
  }
  return out;
}

}  // namespace ddcsr
