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

// The direction along `axis` (unit) that points to a hemisphere's medial face: the medial face
// is flat and the lateral one round, so the surface's area piles up at the medial end of the
// axis and tails off laterally: its skewness along the axis is negative when the axis points
// medially. A hemisphere of a ball closed by its disc has skewness -0.5; fsaverage5's round
// surfaces -0.17 and -0.19, h2's reconstruction's lh -0.12.
V3 medial_direction(const std::vector<V3>& x, const std::vector<double>& area, const V3& axis) {
  double s0 = 0, s1 = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    s0 += area[i];
    s1 += area[i] * dot(x[i], axis);
  }
  const double mean = s1 / s0;
  double m3 = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = dot(x[i], axis) - mean;
    m3 += area[i] * t * t * t;
  }
  return m3 > 0 ? -1.0 * axis : axis;
}

// The area centroid of the faces that face within 30 degrees of `medial` (unit): the centre of
// a hemisphere's medial face. An average over the whole face, it moves less with the axis's
// tilt than the point where the axis itself leaves the surface (h3 rh: 6.9 against 7.6 degrees
// from fsaverage5's sphere beyond a rotation). The centroid of all faces if none do.
V3 medial_face_centre(const std::vector<V3>& x, const Mesh& m, const V3& medial) {
  const double cos_max = std::cos(30.0 * M_PI / 180.0);
  V3 c{0, 0, 0}, all{0, 0, 0};
  double w = 0, w_all = 0;
  for (const auto& f : m.faces) {
    const V3 n2 = face_normal_unscaled(x, f);
    const double a2 = norm(n2);
    const V3 centroid = (1.0 / 3.0) * (x[f[0]] + x[f[1]] + x[f[2]]);
    all += a2 * centroid;
    w_all += a2;
    if (!(a2 > 0) || dot(n2, medial) < cos_max * a2) continue;
    c += a2 * centroid;
    w += a2;
  }
  return w > 0 ? (1.0 / w) * c : (1.0 / w_all) * all;
}

// The face through which the ray from `origin` along `direction` last leaves the surface; false
// if the ray meets none. The line meets a face when its signed volumes with the face's three
// edges do not disagree in sign (Pluecker coordinates): no tolerance to choose, a line through an
// edge or a corner meets both faces there, and a face without area or parallel to the line is
// never the one it leaves through.
bool exit_face(const std::vector<V3>& x, const Mesh& m, const V3& origin, const V3& direction,
               size_t& face) {
  double farthest = -1;
  for (size_t f = 0; f < m.faces.size(); ++f) {
    const auto& t = m.faces[f];
    const V3 a = x[t[0]] - origin, b = x[t[1]] - origin, c = x[t[2]] - origin;
    const double s0 = dot(direction, cross(a, b)), s1 = dot(direction, cross(b, c)),
                 s2 = dot(direction, cross(c, a));
    if ((s0 < 0 || s1 < 0 || s2 < 0) && (s0 > 0 || s1 > 0 || s2 > 0)) continue;
    const V3 normal = cross(b - a, c - a);
    const double across = dot(normal, direction);
    if (across == 0) continue;
    const double along = dot(normal, a) / across;
    if (along > farthest) farthest = along, face = f;
  }
  return farthest > 0;
}

}  // namespace

SphericalMap spherical_map(const Mesh& white, const Mesh& inflated, SphereWeights weights) {
  if (white.vertices.size() != inflated.vertices.size() ||
      white.faces.size() != inflated.faces.size() || white.faces.size() < 4)
    throw std::invalid_argument("spherical_map: white and inflated do not share one mesh");
  const size_t n = white.vertices.size();
  const std::vector<V3> x = to_v3(inflated);

  // Puncture: where the ray from the centre towards the centre of the medial face (the faces
  // facing along the thinnest principal axis, pointing medially) leaves the surface: the middle
  // of the medial face, in the medial wall (on fsaverage5 at the corpus callosum in both
  // hemispheres), where no label needs the map's accuracy. The axis's sign is the medial side's,
  // not the eigensolver's: taken from the eigensolver, the puncture fell on the medial face of
  // some hemispheres and on the lateral face of others, and the two choices give spheres that
  // differ by several degrees beyond a rotation (DK labels 77 against 89 % on h2 lh,
  // docs/experiments.md). The middle of the medial face, not the face farthest along the axis:
  // on the flat medial face the farthest face moves by centimetres with small changes of shape
  // (2.6 cm between h1 lh's reconstruction and fsaverage5). (The face farthest from the centre
  // instead is the tip of a protrusion, a temporal pole or the stalk a reconstruction leaves
  // towards the brainstem, and the map then crowds the hemisphere into a corner of the sphere:
  // median area distortion 1.95 on philips_enh.)
  const std::vector<double> area = vertex_areas(x, inflated);
  // The centre and the axes weigh each vertex by its area, so that they are the surface's and not
  // the mesh's: counted per vertex, a patch refined to tiny triangles pulled them towards itself.
  const V3 centre = weighted_centroid(x, area);
  Eigen::Matrix3d scatter = Eigen::Matrix3d::Zero();
  for (size_t i = 0; i < n; ++i) {
    const Eigen::Vector3d d(x[i][0] - centre[0], x[i][1] - centre[1], x[i][2] - centre[2]);
    scatter += area[i] * d * d.transpose();
  }
  Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> axes(scatter);
  const Eigen::Vector3d axis = axes.eigenvectors().col(0);  // smallest eigenvalue first
  const V3 medial = medial_direction(x, area, {axis[0], axis[1], axis[2]});
  size_t puncture = 0;
  const V3 toward = normalized(medial_face_centre(x, white, medial) - centre);
  if (!exit_face(x, white, centre, toward, puncture)) {
    double far = -1e300;  // no crossing (an open or degenerate surface): farthest face that way
    for (size_t f = 0; f < white.faces.size(); ++f) {
      const auto& t = white.faces[f];
      const double d = dot((1.0 / 3.0) * (x[t[0]] + x[t[1]] + x[t[2]]) - centre, toward);
      if (d > far) far = d, puncture = f;
    }
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
    // Cotangent weights, clamped positive: Tutte's guarantee needs every weight positive.
    for (const auto& [i, j, w] : cotangent_weights(x, white)) {
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
  out.puncture_face = int64_t(puncture);
  out.sphere = white;
  out.sphere.scalars.clear();
  out.sphere.surface = "sphere";
  out.sphere.geometry = VolumeGeometry();
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
  // (The unfolded positions: written before the unfolding, the sphere kept the turned-over
  // slivers that folded_faces did not count.)
  from_v3(p, out.sphere);
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
