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
// The first level, sulcal depth over 1344 mm^2 (the lobes), takes up what the spheres of a
// reconstruction and of fsaverage5 differ by beyond a rotation (5-12 degrees at the 90th
// centile): without it the finer levels stopped short there (h2 rh: 87.6 % of DK labels, 94.8 %
// from the true sphere; with it 91.4 %). The rotation is found on the next level's depth.
const Level kLevels[] = {{true, 1344.0}, {true, 336.0}, {true, 84.0},
                         {true, 21.0},   {false, 21.0}, {false, 8.4}};
constexpr size_t kRigidLevel = 1;

// Vertex neighbours in compressed rows: the neighbours of i are index[start[i] .. start[i+1]).
struct Adjacency {
  std::vector<int64_t> start;
  std::vector<int32_t> index;
};

Adjacency neighbours(const Mesh& m) {
  std::vector<std::vector<int32_t>> nb(m.vertices.size());
  for (const auto& f : m.faces)
    for (int k = 0; k < 3; ++k) {
      nb[f[k]].push_back(f[(k + 1) % 3]);
      nb[f[k]].push_back(f[(k + 2) % 3]);
    }
  Adjacency a;
  a.start.push_back(0);
  for (auto& v : nb) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    a.index.insert(a.index.end(), v.begin(), v.end());
    a.start.push_back(int64_t(a.index.size()));
  }
  return a;
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

void standardise(std::vector<double>& a) {
  const double mean = std::accumulate(a.begin(), a.end(), 0.0) / double(a.size());
  double var = 0;
  for (double v : a) var += (v - mean) * (v - mean);
  const double sd = std::sqrt(var / double(a.size()));
  for (double& v : a) v = sd > 0 ? (v - mean) / sd : 0.0;
}

// The values limited to Tukey's outer fences (first quartile - 3 IQR, third + 3 IQR). A
// reconstruction's mesh can hold a few spikes of micrometre-sized triangles whose mean curvature
// reaches 50-70 /mm, against 1-2 /mm on a cortex; smoothed, a hundred such vertices outweighed
// the folding: h1 lh's curvature correlated with fsaverage5's at r = 0.54 over 21 mm^2 (the
// truth's 0.97), at 0.93 once limited. A real fold's curvature lies within the fences.
std::vector<double> within_outer_fences(const std::vector<float>& values) {
  std::vector<double> out(values.begin(), values.end());
  if (out.size() < 4) return out;
  std::vector<double> sorted = out;
  auto quantile = [&](double f) {
    const auto k = static_cast<std::ptrdiff_t>(f * double(sorted.size() - 1));
    std::nth_element(sorted.begin(), sorted.begin() + k, sorted.end());
    return sorted[size_t(k)];
  };
  const double q1 = quantile(0.25), q3 = quantile(0.75), iqr = q3 - q1;
  for (double& v : out) v = std::clamp(v, q1 - 3 * iqr, q3 + 3 * iqr);
  return out;
}

// Neighbour averaging (half the value, half the neighbours' mean) of the values within their
// outer fences, continued from one level of smoothing to the next (smoothing adds up), each level
// then standardised (zero mean, unit SD). `levels_mm2` ascending.
std::vector<std::vector<double>> smoothed_features(const std::vector<float>& values,
                                                   const Adjacency& nb,
                                                   const std::vector<double>& levels_mm2,
                                                   double edge_mm) {
  std::vector<double> a = within_outer_fences(values), b(a.size());
  std::vector<std::vector<double>> out;
  int done = 0;
  for (double mm2 : levels_mm2) {
    const int iterations = int(std::lround(mm2 / (0.5 * edge_mm * edge_mm)));
    for (; done < iterations; ++done) {
      parallel_for(
          int64_t(a.size()),
          [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
              const int64_t s0 = nb.start[size_t(i)], s1 = nb.start[size_t(i) + 1];
              double s = 0;
              for (int64_t k = s0; k < s1; ++k) s += a[size_t(nb.index[size_t(k)])];
              b[size_t(i)] =
                  s1 > s0 ? 0.5 * a[size_t(i)] + 0.5 * s / double(s1 - s0) : a[size_t(i)];
            }
          },
          8192);
      a.swap(b);
    }
    out.push_back(a);
    standardise(out.back());
  }
  return out;
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

  // Every level's features, each smoothing continued from the last.
  struct Features {
    std::vector<double> subject, atlas;
  };
  std::vector<Features> features(std::size(kLevels));
  for (bool use_sulc : {true, false}) {
    std::vector<size_t> which;
    for (size_t l = 0; l < std::size(kLevels); ++l)
      if (kLevels[l].sulc == use_sulc) which.push_back(l);
    std::sort(which.begin(), which.end(), [](size_t x, size_t y) {
      return kLevels[x].smoothing_mm2 < kLevels[y].smoothing_mm2;
    });
    std::vector<double> mm2;
    for (size_t l : which) mm2.push_back(kLevels[l].smoothing_mm2);
    const auto s = smoothed_features(use_sulc ? sulc : curv, subject_nb, mm2, subject_edge);
    const auto a = smoothed_features(use_sulc ? atlas.sulc : atlas.curv, atlas_nb, mm2, atlas_edge);
    for (size_t k = 0; k < which.size(); ++k) {
      features[which[k]].subject = s[k];
      features[which[k]].atlas = a[k];
    }
  }

  // Rigid: the rotation of the atlas's vertices that best correlates the smoothed sulcal depths
  // (coordinate search over the three axes, steps 16 to 1 degree).
  std::vector<Vec3> psi = atlas_x;  // the atlas's vertices on the subject's sphere
  std::vector<int32_t> hint(na, -1);
  {
    const std::vector<double>& s = features[kRigidLevel].subject;
    const std::vector<double>& a = features[kRigidLevel].atlas;
    const std::vector<Vec3> grad = tangent_gradient(subject_x, subject_sphere.faces, s);
    const FeatureField field{subject_locator, s, grad};
    // Every fourth atlas vertex is plenty for three parameters.
    std::vector<size_t> sample;
    for (size_t i = 0; i < na; i += 4) sample.push_back(i);
    std::vector<double> target;
    for (size_t i : sample) target.push_back(a[i]);
    // The subject's feature on a one-degree latitude-longitude grid: the hundreds of rotations
    // tried then cost a bilinear lookup per point instead of a search of the subject's mesh.
    constexpr int kLat = 181, kLon = 360;
    std::vector<double> grid(size_t(kLat) * kLon);
    for (int i = 0; i < kLat; ++i) {
      int32_t h = -1;
      const double theta = i * M_PI / 180.0;
      for (int j = 0; j < kLon; ++j) {
        const double phi = j * M_PI / 180.0;
        grid[size_t(i) * kLon + size_t(j)] = field.sample(
            {std::sin(theta) * std::cos(phi), std::sin(theta) * std::sin(phi), std::cos(theta)}, h);
      }
    }
    auto on_grid = [&](const Eigen::Vector3d& q) {
      const double theta = std::acos(std::clamp(q[2] / q.norm(), -1.0, 1.0)) * 180.0 / M_PI;
      double phi = std::atan2(q[1], q[0]) * 180.0 / M_PI;
      if (phi < 0) phi += 360.0;
      const int i0 = std::min(int(theta), kLat - 2), j0 = int(phi) % kLon, j1 = (j0 + 1) % kLon;
      const double a = theta - i0, b = phi - std::floor(phi);
      auto at = [&](int i, int j) { return grid[size_t(i) * kLon + size_t(j)]; };
      return (1 - a) * ((1 - b) * at(i0, j0) + b * at(i0, j1)) +
             a * ((1 - b) * at(i0 + 1, j0) + b * at(i0 + 1, j1));
    };
    auto score = [&](const Eigen::Matrix3d& r) {
      std::vector<double> v(sample.size());
      for (size_t k = 0; k < sample.size(); ++k) {
        const Vec3& p = atlas_x[sample[k]];
        v[k] = on_grid(r * Eigen::Vector3d(p[0], p[1], p[2]));
      }
      return correlation(v, target);
    };
    auto descend = [&](Eigen::Matrix3d r, double& c0) {
      c0 = score(r);
      for (double step : {8.0, 4.0, 2.0, 1.0}) {
        for (bool improved = true; improved;) {
          improved = false;
          for (int axis = 0; axis < 3; ++axis)
            for (double sign : {-1.0, 1.0}) {
              const Eigen::Matrix3d cand = axis_rotation(axis, sign * step) * r;
              const double c = score(cand);
              if (c > c0 + 1e-4) c0 = c, r = cand, improved = true;
            }
        }
      }
      return r;
    };
    // Starts on a grid of rotations up to 24 degrees about each axis: heads lie tilted in
    // scanners, and a single descent from the identity stops in the nearest local optimum.
    Eigen::Matrix3d rot = Eigen::Matrix3d::Identity();
    double best = -2;
    for (double ax : {-24.0, 0.0, 24.0})
      for (double ay : {-24.0, 0.0, 24.0})
        for (double az : {-24.0, 0.0, 24.0}) {
          double c;
          const Eigen::Matrix3d r =
              descend(axis_rotation(0, ax) * axis_rotation(1, ay) * axis_rotation(2, az), c);
          if (c > best) best = c, rot = r;
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
    const std::vector<double>& s = features[level].subject;
    const std::vector<double>& a = features[level].atlas;
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
          const int64_t s0 = atlas_nb.start[i], s1 = atlas_nb.start[i + 1];
          for (int64_t k = s0; k < s1; ++k) m += step[size_t(atlas_nb.index[size_t(k)])];
          smoothed[i] = 0.5 * step[i] + (0.5 / double(s1 - s0)) * m;
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
          for (int64_t k = atlas_nb.start[i]; k < atlas_nb.start[i + 1]; ++k)
            m += psi[size_t(atlas_nb.index[size_t(k)])];
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
