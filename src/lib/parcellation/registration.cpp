// Spherical registration to fsaverage5 (see parcellation.h).
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <stdexcept>

#include "ddcsr/error.h"
#include "ddcsr/parcellation/parcellation.h"
#include "ddcsr/surface_maps/surface_maps.h"
#include "ddcsr/threads.h"
#include "diffcoseg/vec.h"
#include "parcellation/spherical_locator.h"

namespace fs = std::filesystem;

namespace ddcsr {

using namespace diffcoseg;
using parcellation_detail::SphericalLocator;

namespace {

constexpr double kRadius = 100.0;

// Feature smoothing per level, in mm^2 of diffusion on the white surface (converted to
// iterations of neighbour averaging per mesh by its edge length, so a 150,000-vertex subject
// and fsaverage5 are smoothed alike), and which feature.
struct Level {
  bool sulc;
  double smoothing_mm2;
};
const Level kLevels[] = {{true, 84.0}, {true, 21.0}, {false, 21.0}, {false, 8.4}};

std::vector<std::vector<int32_t>> neighbours(const Mesh& m) {
  std::vector<std::vector<int32_t>> nb(m.vertices.size());
  for (const auto& f : m.faces)
    for (int k = 0; k < 3; ++k) {
      nb[f[k]].push_back(f[(k + 1) % 3]);
      nb[f[k]].push_back(f[(k + 2) % 3]);
    }
  for (auto& v : nb) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  }
  return nb;
}

double mean_edge(const Mesh& m) {
  double s = 0;
  for (const auto& f : m.faces)
    for (int k = 0; k < 3; ++k) {
      const auto& a = m.vertices[f[k]];
      const auto& b = m.vertices[f[(k + 1) % 3]];
      s += std::sqrt(double(a[0] - b[0]) * (a[0] - b[0]) + double(a[1] - b[1]) * (a[1] - b[1]) +
                     double(a[2] - b[2]) * (a[2] - b[2]));
    }
  return s / double(3 * std::max<size_t>(1, m.faces.size()));
}

// Neighbour averaging (half the value, half the neighbours' mean), then zero mean, unit SD.
std::vector<double> smoothed_feature(const std::vector<float>& values,
                                     const std::vector<std::vector<int32_t>>& nb, double mm2,
                                     double edge_mm) {
  std::vector<double> a(values.begin(), values.end()), b(a.size());
  const int iterations = int(std::lround(mm2 / (0.5 * edge_mm * edge_mm)));
  for (int it = 0; it < iterations; ++it) {
    for (size_t i = 0; i < a.size(); ++i) {
      double s = 0;
      for (int32_t j : nb[i]) s += a[size_t(j)];
      b[i] = nb[i].empty() ? a[i] : 0.5 * a[i] + 0.5 * s / double(nb[i].size());
    }
    a.swap(b);
  }
  const double mean = std::accumulate(a.begin(), a.end(), 0.0) / double(a.size());
  double var = 0;
  for (double v : a) var += (v - mean) * (v - mean);
  const double sd = std::sqrt(var / double(a.size()));
  for (double& v : a) v = sd > 0 ? (v - mean) / sd : 0.0;
  return a;
}

std::vector<Vec3> positions(const Mesh& m) {
  std::vector<Vec3> x;
  x.reserve(m.vertices.size());
  for (const auto& v : m.vertices) x.push_back({v[0], v[1], v[2]});
  return x;
}

Vec3 on_sphere(const Vec3& p) { return (kRadius / norm(p)) * p; }

// Tangent gradient per vertex of a piecewise-linear map on a sphere mesh (area-weighted mean of
// the faces' gradients, projected on the tangent plane).
std::vector<Vec3> tangent_gradient(const std::vector<Vec3>& x,
                                   const std::vector<std::array<int32_t, 3>>& faces,
                                   const std::vector<double>& f) {
  std::vector<Vec3> g(x.size(), Vec3{0, 0, 0});
  std::vector<double> w(x.size(), 0.0);
  for (const auto& t : faces) {
    const Vec3 n2 = cross(x[t[1]] - x[t[0]], x[t[2]] - x[t[0]]);
    const double area2 = norm(n2);
    if (area2 <= 0) continue;
    const Vec3 n = (1.0 / area2) * n2;
    Vec3 grad{0, 0, 0};
    for (int k = 0; k < 3; ++k) {
      const Vec3 e = x[t[(k + 2) % 3]] - x[t[(k + 1) % 3]];  // edge opposite corner k
      grad += (f[size_t(t[k])] / area2) * cross(n, e);
    }
    for (int k = 0; k < 3; ++k) {
      g[t[k]] += (0.5 * area2) * grad;
      w[t[k]] += 0.5 * area2;
    }
  }
  for (size_t i = 0; i < x.size(); ++i) {
    if (w[i] <= 0) continue;
    const Vec3 r = (1.0 / norm(x[i])) * x[i];
    const Vec3 v = (1.0 / w[i]) * g[i];
    g[i] = v - dot(v, r) * r;
  }
  return g;
}

// A subject feature and its gradient, sampled anywhere on the subject's sphere.
struct FeatureField {
  const SphericalLocator& locator;
  const std::vector<double>& value;
  const std::vector<Vec3>& gradient;
  double sample(const Vec3& p, int32_t& hint, Vec3* grad = nullptr) const {
    const auto h = locator.locate(p, hint);
    hint = h.face;
    if (h.face < 0) {
      if (grad) *grad = {0, 0, 0};
      return 0.0;
    }
    const auto& f = locator.faces()[size_t(h.face)];
    double v = 0;
    Vec3 g{0, 0, 0};
    for (int k = 0; k < 3; ++k) {
      v += h.weights[k] * value[size_t(f[k])];
      g += h.weights[k] * gradient[size_t(f[k])];
    }
    if (grad) *grad = g;
    return v;
  }
};

double correlation(const std::vector<double>& a, const std::vector<double>& b) {
  const double n = double(a.size());
  const double ma = std::accumulate(a.begin(), a.end(), 0.0) / n;
  const double mb = std::accumulate(b.begin(), b.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}

Eigen::Matrix3d axis_rotation(int axis, double degrees) {
  Eigen::Vector3d a = Eigen::Vector3d::Zero();
  a[axis] = 1;
  return Eigen::AngleAxisd(degrees * M_PI / 180.0, a).toRotationMatrix();
}

int64_t folded_faces(const std::vector<Vec3>& p, const std::vector<std::array<int32_t, 3>>& faces,
                     std::vector<uint8_t>* on_fold = nullptr) {
  int64_t n = 0;
  for (const auto& f : faces) {
    const Vec3 nrm = cross(p[f[1]] - p[f[0]], p[f[2]] - p[f[0]]);
    if (dot(nrm, p[f[0]] + p[f[1]] + p[f[2]]) > 0) continue;
    ++n;
    if (on_fold)
      for (int k = 0; k < 3; ++k) (*on_fold)[size_t(f[k])] = 1;
  }
  return n;
}

}  // namespace

SphericalAtlas load_spherical_atlas(const std::string& fsaverage_dir, const std::string& hemi) {
  if (hemi != "lh" && hemi != "rh") throw std::invalid_argument("atlas hemisphere: lh or rh");
  const std::string side = hemi == "lh" ? "left" : "right";
  const fs::path dir(fsaverage_dir);
  SphericalAtlas a;
  a.hemi = hemi;
  a.white = read_surface((dir / ("white_" + side + ".gii.gz")).string());
  const Mesh pial = read_surface((dir / ("pial_" + side + ".gii.gz")).string());
  a.freesurfer_sphere = read_surface((dir / ("sphere_" + side + ".gii.gz")).string());
  if (a.freesurfer_sphere.faces != a.white.faces || pial.faces != a.white.faces)
    throw InputError(dir.string(), "fsaverage white, pial and sphere do not share triangles");
  HemisphereMaps maps = hemisphere_maps(a.white, pial);
  a.sphere = std::move(maps.sphere);
  a.sulc = std::move(maps.sulc);
  a.curv = std::move(maps.curv);
  return a;
}

AtlasCorrespondence register_to_atlas(const Mesh& subject_white, const Mesh& subject_sphere,
                                      const std::vector<float>& sulc,
                                      const std::vector<float>& curv, const SphericalAtlas& atlas,
                                      const RegistrationOptions& options) {
  const size_t ns = subject_sphere.vertices.size(), na = atlas.sphere.vertices.size();
  if (subject_white.vertices.size() != ns || sulc.size() != ns || curv.size() != ns)
    throw std::invalid_argument("register_to_atlas: subject maps do not match its sphere");
  if (options.smoothing.size() != std::size(kLevels))
    throw std::invalid_argument("register_to_atlas: one smoothing per level");
  const auto subject_nb = neighbours(subject_sphere), atlas_nb = neighbours(atlas.sphere);
  const double subject_edge = mean_edge(subject_white), atlas_edge = mean_edge(atlas.white);
  const std::vector<Vec3> subject_x = positions(subject_sphere);
  const std::vector<Vec3> atlas_x = positions(atlas.sphere);
  const SphericalLocator subject_locator(subject_sphere);
  AtlasCorrespondence out;
  out.atlas_faces = atlas.sphere.faces;

  // Rigid: the rotation of the atlas's vertices that best correlates the smoothed sulcal depths
  // (coordinate search over the three axes, steps 16 to 1 degree).
  std::vector<Vec3> psi = atlas_x;  // the atlas's vertices on the subject's sphere
  std::vector<int32_t> hint(na, -1);
  {
    const std::vector<double> s =
        smoothed_feature(sulc, subject_nb, kLevels[0].smoothing_mm2, subject_edge);
    const std::vector<double> a =
        smoothed_feature(atlas.sulc, atlas_nb, kLevels[0].smoothing_mm2, atlas_edge);
    const std::vector<Vec3> grad = tangent_gradient(subject_x, subject_sphere.faces, s);
    const FeatureField field{subject_locator, s, grad};
    // Every fourth atlas vertex is plenty for three parameters.
    std::vector<size_t> sample;
    for (size_t i = 0; i < na; i += 4) sample.push_back(i);
    std::vector<double> target;
    for (size_t i : sample) target.push_back(a[i]);
    auto score = [&](const Eigen::Matrix3d& r) {
      std::vector<double> v(sample.size());
      for (size_t k = 0; k < sample.size(); ++k) {
        const Vec3& p = atlas_x[sample[k]];
        const Eigen::Vector3d q = r * Eigen::Vector3d(p[0], p[1], p[2]);
        v[k] = field.sample({q[0], q[1], q[2]}, hint[sample[k]]);
      }
      return correlation(v, target);
    };
    Eigen::Matrix3d rot = Eigen::Matrix3d::Identity();
    double best = score(rot);
    for (double step : {16.0, 8.0, 4.0, 2.0, 1.0}) {
      for (bool improved = true; improved;) {
        improved = false;
        for (int axis = 0; axis < 3; ++axis)
          for (double sign : {-1.0, 1.0}) {
            const Eigen::Matrix3d cand = axis_rotation(axis, sign * step) * rot;
            const double c = score(cand);
            if (c > best + 1e-4) best = c, rot = cand, improved = true;
          }
      }
    }
    out.rigid_correlation = best;
    for (size_t i = 0; i < na; ++i) {
      const Eigen::Vector3d q = rot * Eigen::Vector3d(atlas_x[i][0], atlas_x[i][1], atlas_x[i][2]);
      psi[i] = on_sphere({q[0], q[1], q[2]});
    }
  }

  // Demons, coarse to fine. Each atlas vertex moves along the subject feature's gradient by
  // (a - s) g / (|g|^2 + (a - s)^2), the bounded demons step; the displacements are smoothed
  // over the atlas mesh; vertices of faces that turned over are put back at their neighbours'
  // mean.
  std::vector<Vec3> step(na), smoothed(na);
  std::vector<double> final_a, final_s(na);
  for (size_t level = 0; level < std::size(kLevels); ++level) {
    const Level& lv = kLevels[level];
    const std::vector<double> s =
        smoothed_feature(lv.sulc ? sulc : curv, subject_nb, lv.smoothing_mm2, subject_edge);
    const std::vector<double> a =
        smoothed_feature(lv.sulc ? atlas.sulc : atlas.curv, atlas_nb, lv.smoothing_mm2, atlas_edge);
    const std::vector<Vec3> grad = tangent_gradient(subject_x, subject_sphere.faces, s);
    const FeatureField field{subject_locator, s, grad};
    for (int it = 0; it < options.iterations; ++it) {
      parallel_for(
          int64_t(na),
          [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) {
              Vec3 g{0, 0, 0};
              const double v = field.sample(psi[size_t(i)], hint[size_t(i)], &g);
              const double d = a[size_t(i)] - v;
              const double den = dot(g, g) + d * d;
              step[size_t(i)] = den > 1e-12 ? (d / den) * g : Vec3{0, 0, 0};
            }
          },
          512);
      for (int sm = 0; sm < options.smoothing[level]; ++sm) {
        for (size_t i = 0; i < na; ++i) {
          Vec3 m{0, 0, 0};
          for (int32_t j : atlas_nb[i]) m += step[size_t(j)];
          smoothed[i] = 0.5 * step[i] + (0.5 / double(atlas_nb[i].size())) * m;
        }
        step.swap(smoothed);
      }
      for (size_t i = 0; i < na; ++i) {
        const Vec3 r = (1.0 / kRadius) * psi[i];
        const Vec3 u = step[i] - dot(step[i], r) * r;
        psi[i] = on_sphere(psi[i] + u);
      }
      for (int round = 0; round < 5; ++round) {
        std::vector<uint8_t> fold(na, 0);
        if (folded_faces(psi, atlas.sphere.faces, &fold) == 0) break;
        for (size_t i = 0; i < na; ++i) {
          if (!fold[i]) continue;
          Vec3 m{0, 0, 0};
          for (int32_t j : atlas_nb[i]) m += psi[size_t(j)];
          psi[i] = on_sphere(m);
        }
      }
    }
    if (level + 1 == std::size(kLevels)) {
      for (size_t i = 0; i < na; ++i) final_s[i] = field.sample(psi[i], hint[i]);
      final_a = a;
    }
  }
  out.final_correlation = correlation(final_a, final_s);
  out.folded_atlas_faces = folded_faces(psi, atlas.sphere.faces);

  // Each subject vertex in the warped atlas mesh; its sphere.reg position is the same place on
  // FreeSurfer's fsaverage5 sphere.
  Mesh warped = atlas.sphere;
  for (size_t i = 0; i < na; ++i)
    warped.vertices[i] = {float(psi[i][0]), float(psi[i][1]), float(psi[i][2])};
  const SphericalLocator atlas_locator(warped);
  const std::vector<Vec3> fs_sphere = positions(atlas.freesurfer_sphere);
  out.face.assign(ns, -1);
  out.barycentric.assign(ns, {1, 0, 0});
  out.sphere_reg = subject_sphere;
  out.sphere_reg.surface = "sphere.reg";
  out.sphere_reg.scalars.clear();
  parallel_for(
      int64_t(ns),
      [&](int64_t b, int64_t e) {
        int32_t h = -1;
        for (int64_t v = b; v < e; ++v) {
          const auto hit = atlas_locator.locate(subject_x[size_t(v)], h);
          h = hit.face;
          if (hit.face < 0) continue;  // unreachable on a closed sphere; keeps corner 0
          out.face[size_t(v)] = hit.face;
          const auto& f = atlas.sphere.faces[size_t(hit.face)];
          Vec3 p{0, 0, 0};
          for (int k = 0; k < 3; ++k) {
            out.barycentric[size_t(v)][k] = float(hit.weights[k]);
            p += hit.weights[k] * fs_sphere[size_t(f[k])];
          }
          p = on_sphere(p);
          out.sphere_reg.vertices[size_t(v)] = {float(p[0]), float(p[1]), float(p[2])};
        }
      },
      4096);
  return out;
}

}  // namespace ddcsr
