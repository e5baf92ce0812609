#include "ddcsr/simulate/phantom.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "ddcsr/error.h"
#include "ddcsr/frames.h"
#include "ddcsr/geometry/mesh_distance.h"
#include "ddcsr/io/atomic_file.h"
#include "ddcsr/io/gradients.h"
#include "ddcsr/io/nifti.h"
#include "ddcsr/io/surface.h"
#include "ddcsr/recon/cohort.h"
#include "ddcsr/simulate/distance.h"
#include "ddcsr/simulate/random.h"
#include "ddcsr/simulate/rasterize.h"
#include "ddcsr/threads.h"
#include "ddcsr/version.h"

namespace fs = std::filesystem;

namespace ddcsr::sim {

namespace {

inline Vec3 sub(const Vec3& a, const Vec3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
inline double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
inline Vec3 normalized(const Vec3& a) {
  const double n = std::sqrt(dot(a, a));
  return n > 0 ? Vec3{a[0] / n, a[1] / n, a[2] / n} : Vec3{0, 0, 1};
}
double smoothstep(double x) {
  x = std::clamp(x, 0.0, 1.0);
  return x * x * (3 - 2 * x);
}
// Compactly supported smooth bump: (1 - r^2)^3 inside the unit ball, exactly 0 outside.
double bump(double x, double y, double z) {
  const double r2 = x * x + y * y + z * z;
  return r2 < 1 ? (1 - r2) * (1 - r2) * (1 - r2) : 0.0;
}
double ramp_inside(double d, double threshold, double width) {
  return std::clamp(0.5 - (d - threshold) / width, 0.0, 1.0);
}

// Unit-variance smooth field (random plane waves), for fibre perturbations and the bias field.
struct Waves {
  std::vector<Vec3> k;
  std::vector<double> phase;
  Waves(Random& rng, int n, double wavelength) {
    for (int i = 0; i < n; ++i) {
      double d[3];
      rng.unit_vector(d);
      const double kk = 2 * M_PI / wavelength;
      k.push_back({d[0] * kk, d[1] * kk, d[2] * kk});
      phase.push_back(rng.uniform(0, 2 * M_PI));
    }
  }
  double operator()(const Vec3& x) const {
    double v = 0;
    for (size_t i = 0; i < k.size(); ++i) v += std::cos(dot(k[i], x) + phase[i]);
    return v * std::sqrt(2.0 / k.size());
  }
};

// One diffusion compartment of a voxel: weight (fraction * s0), tensor, direction.
struct Term {
  double weight;
  const Compartment* c;
  Vec3 e;
};

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

std::array<double, 9> orientation_axes(const std::string& name) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), ::toupper);
  if (n == "RAS") return {1, 0, 0, 0, 1, 0, 0, 0, 1};
  if (n == "LAS") return {-1, 0, 0, 0, 1, 0, 0, 0, 1};
  if (n == "LPI") return {-1, 0, 0, 0, -1, 0, 0, 0, -1};
  if (n == "OBLIQUE") {
    const double deg = M_PI / 180;
    const auto R = rotation_xyz(15 * deg, -5 * deg, 8 * deg);
    // R * diag(-1, 1, 1): an LAS grid turned like an AC-PC-angled axial prescription.
    return {-R[0], R[1], R[2], -R[3], R[4], R[5], -R[6], R[7], R[8]};
  }
  throw UsageError("--orientation must be RAS, LAS, LPI or oblique (got '" + name + "')");
}

void validate(const SimulationOptions& o) {
  if (!(o.voxel_size >= 0.5 && o.voxel_size <= 5.0))
    throw UsageError("--voxel-size must be in [0.5, 5] mm");
  if (!(o.sdf_voxel_size == 0 || (o.sdf_voxel_size >= 0.5 && o.sdf_voxel_size <= 5.0)))
    throw UsageError("--sdf-voxel-size must be 0 (the DWI grid) or in [0.5, 5] mm");
  if (!(o.snr >= 0 && o.snr <= 10000))
    throw UsageError("--snr must be in [0, 10000] (0 = no noise)");
  if (!(o.bias_field >= 0 && o.bias_field <= 1)) throw UsageError("--bias-field must be in [0, 1]");
  if (o.supersample < 1 || o.supersample > 16) throw UsageError("--supersample must be in [1, 16]");
  if (o.num_b0 < 1 || o.num_b0 > 100) throw UsageError("--b0 must be in [1, 100]");
  if (o.shells.empty()) throw UsageError("--shells: no shell given");
  orientation_axes(o.orientation);
  if (!(o.geometry.scale >= 0.2 && o.geometry.scale <= 2.0))
    throw UsageError("--scale must be in [0.2, 2]");
  if (o.geometry.mesh_level < 2 || o.geometry.mesh_level > 8)
    throw UsageError("--mesh-level must be in [2, 8]");
}

Volume acquisition_grid(const PhantomGeometry& g, const SimulationOptions& o) {
  const auto R = orientation_axes(o.orientation);
  Vec3 lo{1e30, 1e30, 1e30}, hi{-1e30, -1e30, -1e30};
  std::vector<const Mesh*> outer = {&g.pial[0], &g.pial[1]};
  for (const auto& m : g.hindbrain) outer.push_back(&m);
  for (const Mesh* m : outer)
    for (const auto& v : m->vertices)
      for (int c = 0; c < 3; ++c) {
        lo[c] = std::min<double>(lo[c], v[c]);
        hi[c] = std::max<double>(hi[c], v[c]);
      }
  const double margin = (o.csf_margin + 6 + 5 + 4) * o.geometry.scale;
  for (int c = 0; c < 3; ++c) {
    lo[c] -= margin;
    hi[c] += margin;
  }
  const Vec3 centre{(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2};
  std::array<int64_t, 3> dims;
  for (int a = 0; a < 3; ++a) {
    double pmin = 1e30, pmax = -1e30;
    for (int corner = 0; corner < 8; ++corner) {
      const Vec3 p{corner & 1 ? hi[0] : lo[0], corner & 2 ? hi[1] : lo[1],
                   corner & 4 ? hi[2] : lo[2]};
      const double proj = R[a] * p[0] + R[3 + a] * p[1] + R[6 + a] * p[2];
      pmin = std::min(pmin, proj);
      pmax = std::max(pmax, proj);
    }
    dims[a] = static_cast<int64_t>(std::ceil((pmax - pmin) / o.voxel_size)) + 1;
  }
  std::array<double, 9> lin;
  for (int i = 0; i < 9; ++i) lin[i] = R[i] * o.voxel_size;
  Vec3 t;
  for (int r = 0; r < 3; ++r) {
    t[r] = centre[r];
    for (int c = 0; c < 3; ++c) t[r] -= lin[r * 3 + c] * (dims[c] - 1) / 2.0;
  }
  Volume grid;
  grid.dims = dims;
  grid.nvols = 1;
  grid.vox2ras = Affine::from_linear_translation(lin, t);
  return grid;
}

Volume resampled_grid(const Volume& grid, double voxel_size) {
  const Vec3 h = grid.spacing();
  std::array<double, 9> lin;
  std::array<int64_t, 3> dims;
  for (int c = 0; c < 3; ++c) {
    // The same extent from the first voxel centre to the last, or just beyond it.
    dims[c] = static_cast<int64_t>(std::ceil((grid.dims[c] - 1) * h[c] / voxel_size - 1e-9)) + 1;
    for (int r = 0; r < 3; ++r) lin[r * 3 + c] = grid.vox2ras(r, c) / h[c] * voxel_size;
  }
  Volume out;
  out.dims = dims;
  out.vox2ras = Affine::from_linear_translation(lin, grid.vox2ras.translation());
  return out;
}

Subject simulate_subject(const SimulationOptions& o, const ProgressFn& progress) {
  validate(o);
  Subject s;
  const double scale = o.geometry.scale;
  auto stage = [&](double from, double to) -> ProgressFn {
    if (!progress) return {};
    return [&progress, from, to](double f) { progress(from + (to - from) * f); };
  };
  s.geometry = make_geometry(o.geometry, stage(0.0, 0.1));
  const PhantomGeometry& g = s.geometry;
  s.protocol = make_protocol(o.shells, o.num_b0);
  Volume grid = acquisition_grid(g, o);
  const auto dims = grid.dims;
  const int64_t nvox = grid.voxels_per_volume();
  if (nvox > int64_t(400) * 400 * 400)
    throw UsageError("the grid would exceed 400^3 voxels; use larger voxels");

  // Exact signed distances of the four truth surfaces.
  const Mesh* surfaces[4] = {&g.white[0], &g.pial[0], &g.white[1], &g.pial[1]};
  // The propagation inside fast_signed_distance is sequential, so the four surfaces run side
  // by side; each result depends only on its own surface.
  std::array<Volume, 4> sdf;  // on the DWI grid: the tissue model needs them there
  if (o.sdf_voxel_size > 0 && o.sdf_voxel_size < o.voxel_size - 1e-9) {
    const Volume fine = resampled_grid(grid, o.sdf_voxel_size);
    parallel_for(
        4,
        [&](int64_t b, int64_t e) {
          for (int64_t m = b; m < e; ++m) s.sdf[m] = fast_signed_distance(*surfaces[m], fine);
        },
        1);
    // The tissue model only shapes smooth fields with them (CSF and skull ramps, the nearer
    // hemisphere, fibre and cortex orientations): trilinear samples of the finer exact maps
    // serve as well as four more exact transforms, an eighth of a default run's CPU time.
    const Affine grid_to_fine = fine.vox2ras.inverse() * grid.vox2ras;
    for (int m = 0; m < 4; ++m) {
      sdf[m] = grid.like(1, 0.f);
      parallel_for(
          nvox,
          [&](int64_t b, int64_t e) {
            for (int64_t idx = b; idx < e; ++idx) {
              const int64_t i = idx % dims[0], j = (idx / dims[0]) % dims[1],
                            k = idx / (dims[0] * dims[1]);
              Vec3 p = grid_to_fine.apply({double(i), double(j), double(k)});
              for (int a = 0; a < 3; ++a)
                p[a] = std::clamp(p[a], 0.0, static_cast<double>(fine.dims[a] - 1));
              sdf[m].data[idx] = s.sdf[m].sample_voxel_linear(p);
            }
          },
          4096);
    }
  } else {
    parallel_for(
        4,
        [&](int64_t b, int64_t e) {
          for (int64_t m = b; m < e; ++m) sdf[m] = fast_signed_distance(*surfaces[m], grid);
        },
        1);
    s.sdf = sdf;
  }
  report(progress, 0.4);

  // Partial volumes of the closed meshes.
  Volume in_white[2], in_pial[2];
  for (int h = 0; h < 2; ++h) {
    in_white[h] = inside_fraction({&g.white[h]}, grid, o.supersample);
    in_pial[h] = inside_fraction({&g.pial[h]}, grid, o.supersample);
  }
  std::vector<const Mesh*> list;
  for (const auto& m : g.ventricles) list.push_back(&m);
  Volume ventricles = list.empty() ? grid.like(1, 0.f) : inside_fraction(list, grid, o.supersample);
  list.clear();
  for (const auto& m : g.deep_grey) list.push_back(&m);
  Volume deep = list.empty() ? grid.like(1, 0.f) : inside_fraction(list, grid, o.supersample);
  // Hindbrain: extent, white matter, and its distance for the intracranial envelope (the union's
  // outside distance is exact: a nearest point inside another part has a nearer one on it).
  Volume hind = grid.like(1, 0.f), hind_white = grid.like(1, 0.f);
  Volume hind_distance = grid.like(1, 1e9f);
  if (!g.hindbrain.empty()) {
    list.clear();
    Mesh soup;
    for (const auto& m : g.hindbrain) {
      list.push_back(&m);
      const int32_t base = static_cast<int32_t>(soup.vertices.size());
      soup.vertices.insert(soup.vertices.end(), m.vertices.begin(), m.vertices.end());
      for (auto f : m.faces) soup.faces.push_back({f[0] + base, f[1] + base, f[2] + base});
    }
    hind = inside_fraction(list, grid, o.supersample);
    hind_distance = fast_signed_distance(soup, grid);
    list.clear();
    for (const auto& m : g.hindbrain_white) list.push_back(&m);
    hind_white = inside_fraction(list, grid, o.supersample);
  }
  report(progress, 0.55);

  const int64_t nvols = static_cast<int64_t>(s.protocol.size());
  s.fractions = grid.like(5, 0.f);
  s.mask = grid.like(1, 0.f);
  s.dwi = grid.like(nvols, 0.f);

  const Affine vox2ras = grid.vox2ras;
  const Affine ras2vox = vox2ras.inverse();
  const Affine world_to_template = g.similarity.inverse();
  const double h = std::cbrt(std::fabs(vox2ras.determinant()));
  const double skull_in = o.csf_margin * scale, skull_out = (o.csf_margin + 6) * scale,
               scalp_out = (o.csf_margin + 11) * scale;
  Random field_rng(mix_seed(o.geometry.seed, 400));
  const Waves wobble[3] = {Waves(field_rng, 8, 90), Waves(field_rng, 8, 90),
                           Waves(field_rng, 8, 90)};
  const Waves bias_waves(field_rng, 6, 220);
  const TissueModel& T = o.tissue;

  // Gradient in scanner RAS of a grid function at a voxel (central differences).
  auto gradient = [&](const Volume& v, int64_t i, int64_t j, int64_t k) {
    const int64_t ii[3] = {i, j, k};
    Vec3 gi;
    for (int a = 0; a < 3; ++a) {
      int64_t lo[3] = {i, j, k}, hi[3] = {i, j, k};
      lo[a] = std::max<int64_t>(0, ii[a] - 1);
      hi[a] = std::min<int64_t>(dims[a] - 1, ii[a] + 1);
      const double span = double(hi[a] - lo[a]);
      gi[a] = span > 0 ? (v.at(hi[0], hi[1], hi[2]) - v.at(lo[0], lo[1], lo[2])) / span : 0.0;
    }
    // f(x) = F(ras2vox(x)): grad_x = (ras2vox linear)^T grad_ijk.
    Vec3 gw;
    for (int c = 0; c < 3; ++c)
      gw[c] = ras2vox(0, c) * gi[0] + ras2vox(1, c) * gi[1] + ras2vox(2, c) * gi[2];
    return gw;
  };
  auto to_world_dir = [&](const Vec3& d) { return normalized(g.similarity.apply_linear(d)); };

  std::vector<double> bvals = s.protocol.bvals;
  std::vector<Vec3> bvecs = s.protocol.bvecs;
  parallel_for(
      nvox,
      [&](int64_t vb, int64_t ve) {
        std::vector<Term> terms;
        for (int64_t idx = vb; idx < ve; ++idx) {
          const int64_t i = idx % dims[0], j = (idx / dims[0]) % dims[1],
                        k = idx / (dims[0] * dims[1]);
          const double fw = std::min(1.0, double(in_white[0].data[idx]) + in_white[1].data[idx]);
          const double fp =
              std::max(fw, std::min(1.0, double(in_pial[0].data[idx]) + in_pial[1].data[idx]));
          const double fv = std::min<double>(ventricles.data[idx], fw);
          const double fh = std::min<double>(hind.data[idx], 1.0 - fp);
          const double fhw = std::min<double>(hind_white.data[idx], fh);
          const double fd_deep = std::min<double>(deep.data[idx], std::max(0.0, fw - fv));
          const double wm_cerebral = std::max(0.0, fw - fv - fd_deep);
          const double wm = wm_cerebral + fhw;
          const double fd = fd_deep + (fh - fhw);  // deep nuclei and cerebellar cortex
          const double cortex = fp - fw;
          const double dp = std::min({sdf[1].data[idx], sdf[3].data[idx], hind_distance.data[idx]});
          const double ic = std::max(fp + fh, ramp_inside(dp, skull_in, h));
          const double csf = std::max(0.0, ic - fp - fh) + fv;
          const double scalp = ramp_inside(dp, scalp_out, h) - ramp_inside(dp, skull_out, h);
          s.mask.data[idx] = ic >= 0.5 ? 1.f : 0.f;
          if (wm + cortex + fd + csf + scalp <= 0) continue;

          const Vec3 x = vox2ras.apply({double(i), double(j), double(k)});
          const Vec3 xt = world_to_template.apply(x);
          const Vec3 xm = sub(xt, g.mni_offset);  // MNI-like template coordinates
          const double side = xm[0] >= 0 ? 1.0 : -1.0;
          const double ax = std::fabs(xm[0]);
          const Vec3 perturb{wobble[0](xm), wobble[1](xm), wobble[2](xm)};
          auto wobbled = [&](Vec3 d) {
            d = normalized(d);
            return to_world_dir(
                {d[0] + 0.15 * perturb[0], d[1] + 0.15 * perturb[1], d[2] + 0.15 * perturb[2]});
          };
          const Vec3 e_proj = wobbled(sub(xm, {side * 14.0, -16.0, -50.0}));
          const Vec3 e_call = wobbled({side, 0.0, 0.6 * std::tanh((ax - 12.0) / 15.0)});
          const Vec3 e_assoc = wobbled({0.0, 1.0, 0.2 * std::sin(xm[1] / 25.0)});
          const double m_call = 0.5 * bump((ax - 18) / 20, (xm[1] + 12) / 42, (xm[2] - 24) / 13);
          const double m_assoc = 0.45 * bump((ax - 33) / 10, (xm[1] + 15) / 40, (xm[2] - 14) / 12);
          const double m_proj = 1.0 - m_call - m_assoc;
          // The nearer hemisphere's surfaces orient the cortex and the gyral fibres.
          const int hemi = sdf[1].data[idx] <= sdf[3].data[idx] ? 0 : 1;
          const Volume& sw = sdf[2 * hemi];
          const Volume& sp = sdf[2 * hemi + 1];
          const double dw = sw.data[idx];
          const double beta = 0.6 * smoothstep((dw + 3.5 * scale) / (3.5 * scale));
          terms.clear();
          double dominant = 0;
          // Hindbrain fibres: along the brainstem's axis near the midline, radiating from the
          // cerebellar centre in the cerebellum.
          Vec3 e_hind{0, 0, 1};
          if (fh > 0) {
            e_hind = std::fabs(xm[0]) < 12 ? to_world_dir({0.0, 0.26, 0.97})
                                           : wobbled(sub(xm, {side * 24.0, -64.0, -34.0}));
          }
          if (wm > 0) {
            const double w[5] = {(1 - beta) * m_proj * wm_cerebral,
                                 (1 - beta) * m_call * wm_cerebral,
                                 (1 - beta) * m_assoc * wm_cerebral, beta * wm_cerebral, fhw};
            Vec3 e_norm{0, 0, 1};
            if (beta > 0 && wm_cerebral > 0) e_norm = normalized(gradient(sw, i, j, k));
            const Vec3* dirs[5] = {&e_proj, &e_call, &e_assoc, &e_norm, &e_hind};
            for (int q = 0; q < 5; ++q) {
              if (w[q] > 0) terms.push_back({T.white.s0 * w[q], &T.white, *dirs[q]});
              dominant = std::max(dominant, w[q] / wm);
            }
          }
          if (cortex > 0) {
            const Vec3 gw = gradient(sw, i, j, k), gp = gradient(sp, i, j, k);
            terms.push_back({cortex * T.cortex.s0, &T.cortex,
                             normalized({gw[0] + gp[0], gw[1] + gp[1], gw[2] + gp[2]})});
          }
          if (fd_deep > 0) terms.push_back({fd_deep * T.deep_grey.s0, &T.deep_grey, e_proj});
          if (fh > fhw) terms.push_back({(fh - fhw) * T.deep_grey.s0, &T.deep_grey, e_hind});
          if (csf > 0) terms.push_back({csf * T.csf.s0, &T.csf, {0, 0, 1}});
          if (scalp > 0) terms.push_back({scalp * T.scalp.s0, &T.scalp, {0, 0, 1}});

          s.fractions.data[s.fractions.index(i, j, k, 0)] = static_cast<float>(wm);
          s.fractions.data[s.fractions.index(i, j, k, 1)] = static_cast<float>(cortex);
          s.fractions.data[s.fractions.index(i, j, k, 2)] = static_cast<float>(fd);
          s.fractions.data[s.fractions.index(i, j, k, 3)] = static_cast<float>(csf);
          s.fractions.data[s.fractions.index(i, j, k, 4)] =
              wm > 0 ? static_cast<float>(1.0 - dominant) : 0.f;

          const double bias = o.bias_field > 0
                                  ? std::exp(o.bias_field * std::clamp(bias_waves(xm), -2.5, 2.5))
                                  : 1.0;
          const double amp = o.signal_scale * bias;
          for (int64_t t = 0; t < nvols; ++t) {
            const double b = bvals[t];
            const double gvec[3] = {bvecs[t][0], bvecs[t][1], bvecs[t][2]};
            double sig = 0;
            for (const auto& term : terms) {
              const double e[3] = {term.e[0], term.e[1], term.e[2]};
              sig += term.weight * (b > 0 ? tensor_attenuation(*term.c, b, gvec, e) : 1.0);
            }
            s.dwi.data[s.dwi.index(i, j, k, t)] = static_cast<float>(amp * sig);
          }
        }
      },
      4096);
  report(progress, 0.85);

  // Rician noise: complex Gaussian noise on the magnitude, one generator per (volume, slice).
  if (o.snr > 0) {
    const double sigma = o.signal_scale * T.white.s0 / o.snr;
    s.noise_sigma = sigma;
    const int64_t slices = dims[2];
    parallel_for(
        nvols * slices,
        [&](int64_t b, int64_t e) {
          for (int64_t item = b; item < e; ++item) {
            const int64_t t = item / slices, k = item % slices;
            Random rng(mix_seed(o.geometry.seed, 300, static_cast<uint64_t>(item)));
            float* p = &s.dwi.data[s.dwi.index(0, 0, k, t)];
            const int64_t n = dims[0] * dims[1];
            for (int64_t q = 0; q < n; ++q) {
              const double re = p[q] + sigma * rng.normal(), im = sigma * rng.normal();
              p[q] = static_cast<float>(std::sqrt(re * re + im * im));
            }
          }
        },
        1);
  }
  report(progress, 1.0);
  return s;
}

std::string meta_json(const Subject& s, const SimulationOptions& o) {
  std::ostringstream j;
  const auto& g = s.geometry;
  auto vec = [](const Vec3& v) {
    return "[" + json_number(v[0]) + ", " + json_number(v[1]) + ", " + json_number(v[2]) + "]";
  };
  auto comp = [&](const Compartment& c) {
    return "{\"s0\": " + json_number(c.s0) + ", \"lambda_par\": " + json_number(c.lambda_par) +
           ", \"lambda_perp\": " + json_number(c.lambda_perp) + ", \"fa\": " + json_number(c.fa()) +
           ", \"md\": " + json_number(c.md()) + "}";
  };
  j << "{\n";
  j << "  \"generator\": \"ddcsr simulate\",\n";
  j << "  \"version\": " << json_string(kVersion) << ",\n";
  j << "  \"git\": " << json_string(kGitDescribe) << ",\n";
  j << "  \"seed\": " << o.geometry.seed << ",\n";
  j << "  \"geometry\": {\n";
  j << "    \"source\": " << json_string(g.source) << ",\n";
  j << "    \"source_files\": [";
  for (size_t i = 0; i < g.source_files.size(); ++i)
    j << (i ? ", " : "") << json_string(g.source_files[i]);
  j << "],\n";
  j << "    \"mesh_level\": " << o.geometry.mesh_level << ",\n";
  j << "    \"scale\": " << json_number(o.geometry.scale) << ",\n";
  j << "    \"variability\": " << (o.geometry.variability ? "true" : "false") << ",\n";
  j << "    \"fold_wavelength_mm\": " << json_number(o.geometry.fold_wavelength) << ",\n";
  j << "    \"sulcal_depth_mm\": [" << json_number(o.geometry.depth_min) << ", "
    << json_number(o.geometry.depth_max) << "],\n";
  j << "    \"thickness_mm\": [" << json_number(o.geometry.thickness_min) << ", "
    << json_number(o.geometry.thickness_max) << "],\n";
  j << "    \"fissure_gap_mm\": " << json_number(o.geometry.fissure_gap) << ",\n";
  j << "    \"surfaces\": {";
  const char* names[4] = {"lh.white", "lh.pial", "rh.white", "rh.pial"};
  const Mesh* meshes[4] = {&g.white[0], &g.pial[0], &g.white[1], &g.pial[1]};
  for (int m = 0; m < 4; ++m)
    j << (m ? ", " : "") << "\"" << names[m] << "\": {\"vertices\": " << meshes[m]->num_vertices()
      << ", \"faces\": " << meshes[m]->num_faces() << "}";
  j << "},\n";
  j << "    \"warp\": {\"sigma_mm\": " << json_number(g.warp.sigma) << ", \"centres\": [";
  for (size_t i = 0; i < g.warp.centres.size(); ++i) j << (i ? ", " : "") << vec(g.warp.centres[i]);
  j << "], \"amplitudes\": [";
  for (size_t i = 0; i < g.warp.amplitudes.size(); ++i)
    j << (i ? ", " : "") << vec(g.warp.amplitudes[i]);
  j << "]},\n";
  j << "    \"similarity\": [";
  for (int i = 0; i < 16; ++i) j << (i ? ", " : "") << json_number(g.similarity.m[i]);
  j << "],\n";
  j << "    \"mni_offset\": " << vec(g.mni_offset) << ",\n";
  j << "    \"subject_parameters\": {";
  for (size_t i = 0; i < g.parameters.size(); ++i)
    j << (i ? ", " : "") << json_string(g.parameters[i].first) << ": "
      << json_number(g.parameters[i].second);
  j << "}\n  },\n";
  j << "  \"acquisition\": {\n";
  j << "    \"voxel_size_mm\": " << json_number(o.voxel_size) << ",\n";
  j << "    \"sdf_voxel_size_mm\": " << json_number(s.sdf[0].spacing()[0]) << ",\n";
  j << "    \"sdf_dims\": [" << s.sdf[0].dims[0] << ", " << s.sdf[0].dims[1] << ", "
    << s.sdf[0].dims[2] << "],\n";
  j << "    \"orientation\": " << json_string(o.orientation) << ",\n";
  j << "    \"dims\": [" << s.dwi.dims[0] << ", " << s.dwi.dims[1] << ", " << s.dwi.dims[2] << ", "
    << s.dwi.nvols << "],\n";
  j << "    \"vox2ras\": [";
  for (int i = 0; i < 16; ++i) j << (i ? ", " : "") << json_number(s.dwi.vox2ras.m[i]);
  j << "],\n";
  j << "    \"shells\": " << json_string(format_shells(o.shells)) << ",\n";
  j << "    \"b0_volumes\": " << o.num_b0 << ",\n";
  j << "    \"snr\": " << json_number(o.snr) << ",\n";
  j << "    \"snr_definition\": \"b0 signal of pure white matter over the noise sd\",\n";
  j << "    \"noise\": \"Rician\",\n";
  j << "    \"noise_sigma\": " << json_number(s.noise_sigma) << ",\n";
  j << "    \"bias_field\": " << json_number(o.bias_field) << ",\n";
  j << "    \"signal_scale\": " << json_number(o.signal_scale) << ",\n";
  j << "    \"supersample\": " << o.supersample << ",\n";
  j << "    \"csf_margin_mm\": " << json_number(o.csf_margin) << ",\n";
  j << "    \"bvecs_convention\": \"FSL (image axes, x negated when det(vox2ras) > 0)\"\n";
  j << "  },\n";
  j << "  \"tissue\": {\"white_matter\": " << comp(o.tissue.white) << ",\n";
  j << "    \"cortical_grey_matter\": " << comp(o.tissue.cortex) << ",\n";
  j << "    \"non_cortical_grey_matter\": " << comp(o.tissue.deep_grey) << ",\n";
  j << "    \"csf\": " << comp(o.tissue.csf) << ",\n";
  j << "    \"scalp\": " << comp(o.tissue.scalp) << "},\n";
  j << "  \"fractions_frames\": [";
  for (int f = 0; f < 5; ++f) j << (f ? ", " : "") << json_string(kFractionFrames[f]);
  j << "],\n";
  j << "  \"files\": {\"dwi\": \"dwi.nii.gz\", \"bval\": \"dwi.bval\", \"bvec\": \"dwi.bvec\", "
       "\"mask\": \"mask.nii.gz\", \"fractions\": \"fractions.nii.gz\", \"sdf\": "
       "\"sdf/{lh,rh}.{white,pial}.nii.gz\", "
       "\"surfaces\": \"surf/{lh,rh}.{white,pial}[.surf.gii]\"},\n";
  j << "  \"conventions\": {\"world\": \"scanner RAS mm\", \"sdf\": \"mm, negative inside\", "
       "\"freesurfer_surfaces\": \"surface RAS with the volume-geometry footer of dwi.nii.gz\", "
       "\"gifti_surfaces\": \"scanner RAS\"}\n";
  j << "}\n";
  return j.str();
}

void write_subject(const Subject& s, const SimulationOptions& o, const std::string& dir,
                   bool overwrite, const ProgressFn& progress) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) throw UsageError(dir + " exists and is not a folder");
    if (!fs::is_empty(dir, ec) && !overwrite)
      throw UsageError(dir + " exists and is not empty (use --force to replace it)");
  }
  // Built in a hidden sibling folder and renamed into place when complete.
  AtomicFolder folder(dir);
  const fs::path tmp(folder.path());
  fs::create_directories(tmp / "surf", ec);
  if (!ec) fs::create_directories(tmp / "sdf", ec);
  if (ec) throw InputError(tmp.string(), "cannot create folder: " + ec.message());
  const auto file = [&](const std::string& name) { return (tmp / name).string(); };
  // zlib level 1: nearly the size of level 6 on these images at a fraction of the time.
  VolumeWriteOptions fast;
  fast.compression_level = 1;
  VolumeWriteOptions scanner = fast;
  scanner.type = VolumeWriteOptions::Type::Int16;
  write_volume(s.dwi, file("dwi.nii.gz"), scanner);
  report(progress, 0.6);
  write_fsl_gradients(s.protocol.bvals, bvecs_fsl_from_world(s.protocol.bvecs, s.dwi.vox2ras),
                      file("dwi.bval"), file("dwi.bvec"));
  write_volume(s.mask, file("mask.nii.gz"), fast);
  write_volume(s.fractions, file("fractions.nii.gz"), fast);
  const char* names[4] = {"lh.white", "lh.pial", "rh.white", "rh.pial"};
  for (int m = 0; m < 4; ++m)
    write_volume(s.sdf[m], file("sdf/" + std::string(names[m]) + ".nii.gz"), fast);
  report(progress, 0.8);
  const VolumeGeometry geom = volume_geometry_of(s.mask, "dwi.nii.gz");
  SurfaceWriteOptions wopts;
  wopts.created_time = 0;  // a fixed stamp keeps the files reproducible
  const Mesh* meshes[4] = {&s.geometry.white[0], &s.geometry.pial[0], &s.geometry.white[1],
                           &s.geometry.pial[1]};
  for (int m = 0; m < 4; ++m) {
    Mesh mesh = *meshes[m];
    mesh.geometry = geom;
    write_surface(mesh, file("surf/" + std::string(names[m])), wopts);
    write_surface(mesh, file("surf/" + std::string(names[m]) + ".surf.gii"), wopts);
  }
  write_file_atomic(file("meta.json"), meta_json(s, o));
  folder.commit();
  report(progress, 1.0);
}

}  // namespace ddcsr::sim
