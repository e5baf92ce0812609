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
  if (o.anatomy != "legacy" && o.anatomy != "whole-head" && o.anatomy != "skull-stripped" &&
      o.anatomy != "random")
    throw UsageError("--anatomy must be legacy, whole-head, skull-stripped or random (got '" +
                     o.anatomy + "')");
  if (o.physics != "fixed" && o.physics != "random")
    throw UsageError("--physics must be fixed or random (got '" + o.physics + "')");
  if (o.hemispheres != "both" && o.hemispheres != "lh" && o.hemispheres != "rh")
    throw UsageError("--hemispheres must be lh, rh or both (got '" + o.hemispheres + "')");
  if (!(o.grid_margin >= 0 && o.grid_margin <= 100))
    throw UsageError("grid margin must be in [0, 100] mm");
}

Volume acquisition_grid(const PhantomGeometry& g, const SimulationOptions& o) {
  return acquisition_grid(g, o, make_physics(o), make_head(o));
}

Volume acquisition_grid(const PhantomGeometry& g, const SimulationOptions& o, const Physics& P,
                        const HeadModel& H) {
  const auto R = orientation_axes(P.orientation);
  Vec3 lo{1e30, 1e30, 1e30}, hi{-1e30, -1e30, -1e30};
  std::vector<const Mesh*> outer = {&g.pial[0], &g.pial[1]};
  // A fixed margin is for comparing anatomies of one seed on one grid: around the cerebrum
  // alone, whose surfaces no anatomy changes.
  if (o.grid_margin == 0)
    for (const auto& m : g.hindbrain) outer.push_back(&m);
  for (const Mesh* m : outer)
    for (const auto& v : m->vertices)
      for (int c = 0; c < 3; ++c) {
        lo[c] = std::min<double>(lo[c], v[c]);
        hi[c] = std::max<double>(hi[c], v[c]);
      }
  const double margin = o.grid_margin > 0 ? o.grid_margin
                        : H.whole         ? H.outer_extent(o.geometry.scale) + 4 * o.geometry.scale
                                          : (o.csf_margin + 6 + 5 + 4) * o.geometry.scale;
  for (int c = 0; c < 3; ++c) {
    lo[c] -= margin;
    hi[c] += margin;
  }
  if (o.grid_margin == 0)
    for (const auto& eye : g.eyes) {
      // The head's layers wrap the orbits too (their CSF layer aside, which is not there).
      const double reach =
          eye.radius + (H.orbit_fat_mm + 4) * o.geometry.scale + H.outer_extent(o.geometry.scale);
      for (int c = 0; c < 3; ++c) {
        lo[c] = std::min(lo[c], eye.centre[c] - reach);
        hi[c] = std::max(hi[c], eye.centre[c] + reach);
      }
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
    dims[a] = static_cast<int64_t>(std::ceil((pmax - pmin) / P.voxel[a])) + 1;
  }
  std::array<double, 9> lin;
  for (int i = 0; i < 9; ++i) lin[i] = R[i] * P.voxel[i % 3];
  Vec3 t;
  for (int r = 0; r < 3; ++r) {
    t[r] = centre[r];
    for (int c = 0; c < 3; ++c) t[r] -= lin[r * 3 + c] * (dims[c] - 1) / 2.0;
  }
  if (P.fov_axis >= 0) {
    // The field of view ends fov_cut_mm inside the brain's box: the margin goes as well.
    const int a = P.fov_axis;
    const int64_t cut =
        std::min<int64_t>(dims[a] - 16, static_cast<int64_t>((margin + P.fov_cut_mm) / P.voxel[a]));
    if (cut > 0) {
      dims[a] -= cut;
      if (P.fov_side < 0)
        for (int r = 0; r < 3; ++r) t[r] += lin[r * 3 + a] * cut;
    }
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

namespace {

// One hemisphere of a simulated head, in place (SimulationOptions::hemispheres). A head is cut
// where the two hemispheres' pial surfaces are equally far, which runs down the middle of the
// falx and on through the skull and scalp: the share of each voxel on the kept side, a partial
// volume over one voxel across the cut, scales the signal and the tissue fractions. A specimen
// (its CSF already void) is the tissue inside its pial surface alone. The mask and labels keep the
// voxels mostly kept (a specimen's mask: mostly inside its pial surface). `sdf` are the four truth
// distances on the DWI grid (lh.white, lh.pial, rh.white, rh.pial).
void cut_to_hemisphere(Subject& s, const std::array<Volume, 4>& sdf, int keep, bool whole_head) {
  const Volume& grid = s.mask;
  const Vec3 sp = grid.spacing();
  const double h = std::cbrt(sp[0] * sp[1] * sp[2]);
  const Volume& kept = sdf[2 * keep + 1];
  const Volume& other = sdf[2 * (1 - keep) + 1];
  const int64_t nvox = grid.voxels_per_volume();
  const int64_t nvols = s.dwi.nvols;
  parallel_for(
      nvox,
      [&](int64_t b, int64_t e) {
        for (int64_t v = b; v < e; ++v) {
          const double inside_kept = std::clamp(0.5 - double(kept.data[v]) / h, 0.0, 1.0);
          // A specimen keeps what lies inside its pial surface, whose partial volumes its tissue
          // fractions already hold (so a voxel is cut only beyond it, over one voxel), and loses
          // the other hemisphere's share of voxels at the medial face.
          const double w =
              whole_head
                  ? std::clamp(0.5 - 0.5 * (double(kept.data[v]) - double(other.data[v])) / h, 0.0,
                               1.0)
                  : std::clamp(1.0 - double(kept.data[v]) / h, 0.0, 1.0) *
                        (1.0 - std::clamp(0.5 - double(other.data[v]) / h, 0.0, 1.0));
          for (int64_t t = 0; t < nvols; ++t) s.dwi.data[static_cast<size_t>(t * nvox + v)] *= w;
          for (int64_t f = 0; f < s.fractions.nvols; ++f)
            s.fractions.data[static_cast<size_t>(f * nvox + v)] *= static_cast<float>(w);
          if ((whole_head ? w : inside_kept) < 0.5) {
            s.mask.data[v] = 0;
            if (!s.labels.data.empty()) s.labels.data[v] = 0;
          } else if (!whole_head) {
            s.mask.data[v] = 1;
          }
        }
      },
      4096);
  s.hemispheres = {keep};
}

}  // namespace

Subject simulate_subject(const SimulationOptions& o, const ProgressFn& progress) {
  validate(o);
  Subject s;
  const double scale = o.geometry.scale;
  auto stage = [&](double from, double to) -> ProgressFn {
    if (!progress) return {};
    return [&progress, from, to](double f) { progress(from + (to - from) * f); };
  };
  s.physics = make_physics(o);
  s.head = make_head(o);
  const Physics& P = s.physics;
  const HeadModel& H = s.head;
  GeometryOptions geometry_options = o.geometry;
  geometry_options.whole_head = H.whole;
  s.geometry = make_geometry(geometry_options, stage(0.0, 0.1));
  const PhantomGeometry& g = s.geometry;
  s.protocol = make_protocol(o.shells, o.num_b0);
  Volume grid = acquisition_grid(g, o, P, H);
  const auto dims = grid.dims;
  const int64_t nvox = grid.voxels_per_volume();
  if (nvox > int64_t(400) * 400 * 400)
    throw UsageError("the grid would exceed 400^3 voxels; use larger voxels");
  const double finest_voxel = std::min({P.voxel[0], P.voxel[1], P.voxel[2]});

  // Exact signed distances of the four truth surfaces.
  const Mesh* surfaces[4] = {&g.white[0], &g.pial[0], &g.white[1], &g.pial[1]};
  // The propagation inside fast_signed_distance is sequential, so the four surfaces run side
  // by side; each result depends only on its own surface.
  std::array<Volume, 4> sdf;  // on the DWI grid: the tissue model needs them there
  if (o.sdf_voxel_size > 0 && o.sdf_voxel_size < finest_voxel - 1e-9) {
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
  auto union_fraction = [&](const std::vector<Mesh>& meshes) {
    std::vector<const Mesh*> list;
    for (const auto& m : meshes) list.push_back(&m);
    return list.empty() ? grid.like(1, 0.f) : inside_fraction(list, grid, o.supersample);
  };
  Volume ventricles = union_fraction(g.ventricles);
  Volume deep = union_fraction(g.deep_grey);
  // Hindbrain: extent, white matter, and its distance for the intracranial envelope (the union's
  // outside distance is exact: a nearest point inside another part has a nearer one on it).
  Volume hind = grid.like(1, 0.f), hind_white = grid.like(1, 0.f);
  Volume hind_distance = grid.like(1, 1e9f);
  if (!g.hindbrain.empty()) {
    Mesh soup;
    for (const auto& m : g.hindbrain) {
      const int32_t base = static_cast<int32_t>(soup.vertices.size());
      soup.vertices.insert(soup.vertices.end(), m.vertices.begin(), m.vertices.end());
      for (auto f : m.faces) soup.faces.push_back({f[0] + base, f[1] + base, f[2] + base});
    }
    hind = union_fraction(g.hindbrain);
    hind_distance = fast_signed_distance(soup, grid);
    hind_white = union_fraction(g.hindbrain_white);
  }
  // Whole head: the brainstem on its own (no folia there) and the midline structures.
  Volume stem, callosum, diencephalon, third_ventricle;
  if (H.whole) {
    stem = g.hindbrain.size() == 3 ? inside_fraction({&g.hindbrain[2]}, grid, o.supersample)
                                   : grid.like(1, 0.f);
    callosum = union_fraction(g.callosum);
    diencephalon = union_fraction(g.diencephalon);
    third_ventricle = union_fraction(g.third_ventricle);
  }
  report(progress, 0.55);

  const int64_t nvols = static_cast<int64_t>(s.protocol.size());
  s.fractions = grid.like(5, 0.f);
  s.mask = grid.like(1, 0.f);
  s.dwi = grid.like(nvols, 0.f);
  if (H.whole) s.labels = grid.like(1, 0.f);
  Volume strip_keep;
  if (H.stripped) strip_keep = grid.like(1, 0.f);

  const Affine vox2ras = grid.vox2ras;
  const Affine ras2vox = vox2ras.inverse();
  const Affine world_to_template = g.similarity.inverse();
  const double h = std::cbrt(std::fabs(vox2ras.determinant()));
  const bool specimen = o.hemispheres != "both" && !H.whole;
  const double skull_in = o.csf_margin * scale, skull_out = (o.csf_margin + 6) * scale,
               scalp_out = (o.csf_margin + 11) * scale;
  Random field_rng(mix_seed(o.geometry.seed, 400));
  const Waves wobble[3] = {Waves(field_rng, 8, 90), Waves(field_rng, 8, 90),
                           Waves(field_rng, 8, 90)};
  const Waves bias_waves(field_rng, 6, 220);
  // Fields of the randomised physics and the whole head, each from a generator of its own so
  // that the legacy draws above stay as they were.
  Random random_bias_rng(mix_seed(o.geometry.seed, 401));
  const Waves random_bias_waves(random_bias_rng, 6, P.bias_wavelength_mm);
  const Waves& bias_field_waves = P.random ? random_bias_waves : bias_waves;
  Random head_rng(mix_seed(o.geometry.seed, 402));
  const Waves csf_field(head_rng, 6, 70), skull_field(head_rng, 6, 90), fat_field(head_rng, 6, 60),
      folia_field(head_rng, 4, 40);
  const double lobules = H.cb_lobules, lobule_phase = H.cb_lobule_phase,
               folium_phase = H.cb_folium_phase, cb_grey_mm = H.cb_grey_mm * scale,
               folium_fissure_mm = H.cb_folium_fissure_mm * scale,
               lobule_fissure_mm = H.cb_lobule_fissure_mm * scale;
  Vec3 cb_centre{0, 0, 0};
  if (H.whole && g.hindbrain.size() == 3) {
    size_t n = 0;
    for (int m = 0; m < 2; ++m)
      for (const auto& v : g.hindbrain[m].vertices) {
        for (int c = 0; c < 3; ++c) cb_centre[c] += v[c];
        ++n;
      }
    for (auto& c : cb_centre) c /= static_cast<double>(n);
  }
  const Vec3 axis_ant = normalized(g.similarity.apply_linear({0, 1, 0}));
  const Vec3 axis_up = normalized(g.similarity.apply_linear({0, 0, 1}));
  // Midline tissue only where both pial surfaces are near: between the hemispheres' medial
  // walls, never against a lateral or cingulate cortex.
  const double medial_reach = (o.geometry.fissure_gap + 3.0) * scale;
  const TissueModel& T = P.tissue;
  const FibreModel& F = P.fibres;

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
  // Shares of white, grey and CSF of the cerebellar cortex within a voxel, at 8 points.
  auto folia_shares = [&](int64_t i, int64_t j, int64_t k, double perturb, double& white,
                          double& grey, double& fissure) {
    int inside = 0, nw = 0, nc = 0;
    for (int q = 0; q < 8; ++q) {
      const Vec3 ijk{i + ((q & 1) ? 0.25 : -0.25), j + ((q & 2) ? 0.25 : -0.25),
                     k + ((q & 4) ? 0.25 : -0.25)};
      const double depth = -hind_distance.sample_voxel_linear(ijk);
      if (depth <= 0) continue;
      ++inside;
      const Vec3 d = sub(vox2ras.apply(ijk), cb_centre);
      const double theta = std::atan2(dot(d, axis_up), dot(d, axis_ant));
      const double lobe = std::cos(lobules * theta + lobule_phase + perturb);
      const double folium = std::cos(3 * lobules * theta + folium_phase + 2 * perturb);
      // Thin fissures (a sixth of each period), white branches in a third of the lobules'
      // period and folium cores only off those branches: mostly grey, as cerebellar cortex is.
      if ((lobe < -0.9 && depth < lobule_fissure_mm) ||
          (folium < -0.85 && depth < folium_fissure_mm))
        ++nc;
      else if (depth > cb_grey_mm &&
               (lobe > 0.6 || (folium > 0.75 && lobe > 0 && depth < 4 * scale)))
        ++nw;
    }
    if (inside == 0) {
      white = fissure = 0;
      grey = 1;
      return;
    }
    white = double(nw) / inside;
    fissure = double(nc) / inside;
    grey = 1.0 - white - fissure;
  };

  std::vector<double> bvals = s.protocol.bvals;
  std::vector<Vec3> bvecs = s.protocol.bvecs;
  parallel_for(
      nvox,
      [&](int64_t vb, int64_t ve) {
        std::vector<Term> terms;
        for (int64_t idx = vb; idx < ve; ++idx) {
          const int64_t i = idx % dims[0], j = (idx / dims[0]) % dims[1],
                        k = idx / (dims[0] * dims[1]);
          double fw = std::min(1.0, double(in_white[0].data[idx]) + in_white[1].data[idx]);
          double fp =
              std::max(fw, std::min(1.0, double(in_pial[0].data[idx]) + in_pial[1].data[idx]));
          if (P.mix_white_mm > 0) {
            const double ramp = ramp_inside(std::min(sdf[0].data[idx], sdf[2].data[idx]), 0,
                                            P.mix_white_mm * scale);
            fw += P.mix_white_mm / (P.mix_white_mm + h) * (ramp - fw);
          }
          if (P.mix_pial_mm > 0) {
            const double ramp =
                ramp_inside(std::min(sdf[1].data[idx], sdf[3].data[idx]), 0, P.mix_pial_mm * scale);
            fp += P.mix_pial_mm / (P.mix_pial_mm + h) * (ramp - fp);
          }
          fp = std::max(fp, fw);
          const double fv = std::min<double>(ventricles.data[idx], fw);
          const double fh = std::min<double>(hind.data[idx], 1.0 - fp);
          double fhw = std::min<double>(hind_white.data[idx], fh);
          const double fd_deep = std::min<double>(deep.data[idx], std::max(0.0, fw - fv));
          const double wm_cerebral = std::max(0.0, fw - fv - fd_deep);
          const double dp = std::min({sdf[1].data[idx], sdf[3].data[idx], hind_distance.data[idx]});
          const Vec3 x = vox2ras.apply({double(i), double(j), double(k)});
          const Vec3 xt = world_to_template.apply(x);
          const Vec3 xm = sub(xt, g.mni_offset);  // MNI-like template coordinates

          // Whole-head structures (all 0 in the legacy anatomy).
          double fstem = 0, cb_white = 0, cb_fissure = 0, fcc = 0, fdi = 0, f3v = 0;
          double band_medial = 0, outside_medial = 0;
          double bone = 0, marrow = 0, muscle = 0, fat = 0, eye = 0, dura = 0, ic, scalp, csf;
          if (!H.whole) {
            ic = std::max(fp + fh, ramp_inside(dp, skull_in, h));
            csf = std::max(0.0, ic - fp - fh) + fv;
            scalp = ramp_inside(dp, scalp_out, h) - ramp_inside(dp, skull_out, h);
          } else {
            fstem = std::min<double>(stem.data[idx], fh);
            const double cerebellum = fh - fstem;
            if (cerebellum > 0) {
              const double core = std::clamp(double(hind_white.data[idx]) - fstem, 0.0, cerebellum);
              double sw, sg, sc;
              folia_shares(i, j, k, 0.8 * folia_field(xm), sw, sg, sc);
              cb_white = core + (cerebellum - core) * sw;
              cb_fissure = (cerebellum - core) * sc;
            }
            fhw = fstem + cb_white;
            if (sdf[1].data[idx] < medial_reach && sdf[3].data[idx] < medial_reach) {
              const double room = std::max(0.0, 1.0 - fw - fh);
              const double med =
                  std::min(room, std::min(1.0, double(callosum.data[idx]) + diencephalon.data[idx] +
                                                   third_ventricle.data[idx]));
              f3v = std::min<double>(third_ventricle.data[idx], med);
              fdi = std::min<double>(diencephalon.data[idx], med - f3v);
              fcc = std::max(0.0, med - f3v - fdi);
              band_medial = std::min(med, std::max(0.0, fp - fw));
              outside_medial = med - band_medial;
            }
            // Distance bands alone would put skull into any gap wider than the CSF layer
            // between two parts of the brain (fsaverage's fissure, the tentorial notch). A point
            // that two parts face from opposite sides (their distance gradients opposed) lies
            // between them, inside the cranium: CSF and dura there, never bone or scalp.
            const double csf_mm =
                H.csf_mm * scale * (1 + H.csf_variation * std::tanh(csf_field(xm)));
            const double strip_edge = std::max(0.3 * scale, csf_mm + H.strip_offset_mm * scale);
            double dq = dp;
            const double between_reach = 15.0 * scale;
            auto opposed = [&](const Volume& a, const Volume& b) {
              const Vec3 ga = normalized(gradient(a, i, j, k)),
                         gb = normalized(gradient(b, i, j, k));
              return dot(ga, gb) < -0.3;
            };
            // Nearer than the CSF's (and the strip mask's) edge it changes nothing: not tested.
            if (dp > std::min(csf_mm, strip_edge) - h && dp > 0 && dp < between_reach) {
              const double dl = sdf[1].data[idx], dr = sdf[3].data[idx];
              const double dh = hind_distance.data[idx];
              if (dl < between_reach && dr < between_reach && opposed(sdf[1], sdf[3])) dq = 0;
              if (dq > 0 && std::min(dl, dr) < between_reach && dh < between_reach &&
                  opposed(dl <= dr ? sdf[1] : sdf[3], hind_distance))
                dq = 0;
            }
            const double skull_mm =
                H.skull_mm * scale * (1 + H.skull_variation * std::tanh(skull_field(xm)));
            const double fat_mm =
                H.fat_mm * scale * (1 + H.fat_variation * std::tanh(fat_field(xm)));
            const double e0 = csf_mm, e1 = e0 + skull_mm, e2 = e1 + H.muscle_mm * scale,
                         e3 = e2 + fat_mm, e4 = e3 + H.skin_mm * scale;
            const double m_lo = e0 + skull_mm * (0.5 - 0.5 * H.marrow_share),
                         m_hi = e0 + skull_mm * (0.5 + 0.5 * H.marrow_share);
            ic = std::max(fp + fh + outside_medial, ramp_inside(dq, e0, h));
            double outer_csf = std::max(0.0, ic - fp - fh - outside_medial);
            // Dura where two brain surfaces face each other across the CSF: the tentorium on
            // the mid-surface between the cerebrum and the hindbrain, the falx on the one
            // between the hemispheres (down to the corpus callosum). Short T2, no signal: on
            // real b0 images it is a dark line inside the bright CSF of those gaps.
            const double dl = sdf[1].data[idx], dr = sdf[3].data[idx], dh = hind_distance.data[idx];
            const double gap = 8.0 * scale, half = 0.5 * H.dura_mm * scale;
            double membrane = 0;
            if (dl > 0 && dr > 0 && dl < gap && dr < gap)
              membrane = std::max(membrane, ramp_inside(std::fabs(dl - dr), half, h));
            const double dc = std::min(dl, dr);
            if (dc > 0 && dh > 0 && dc < gap && dh < gap)
              membrane = std::max(membrane, ramp_inside(std::fabs(dc - dh), half, h));
            dura = std::min(membrane * std::min(1.0, 2 * half / h), outer_csf);
            outer_csf -= dura;
            csf = outer_csf + fv + f3v + cb_fissure;
            // The eyes and their orbital fat displace the layers of the head where they meet;
            // the layers beyond the CSF wrap the orbits as they wrap the brain (the orbit's
            // bony wall, then muscle, fat and skin), measured from the brain's CSF edge or the
            // orbital fat's edge, whichever is nearer.
            double orbit = 0, u = dq - e0;
            for (const auto& e : g.eyes) {
              const Vec3 d = sub(x, e.centre);
              const double de = std::sqrt(dot(d, d)) - e.radius;
              eye = std::max(eye, ramp_inside(de, 0, h));
              orbit = std::max(orbit, ramp_inside(de, H.orbit_fat_mm * scale, h));
              u = std::min(u, de - H.orbit_fat_mm * scale);
            }
            double room = std::max(0.0, 1.0 - ic);
            eye = std::min(eye, room);
            room -= eye;
            const double orbit_fat = std::min(std::max(0.0, orbit - eye), room);
            room -= orbit_fat;
            auto take = [&room](double f) {
              f = std::clamp(f, 0.0, room);
              room -= f;
              return f;
            };
            const double r0 = ramp_inside(u, 0, h);
            marrow = take(ramp_inside(u, m_hi - e0, h) - ramp_inside(u, m_lo - e0, h));
            bone = take(ramp_inside(u, e1 - e0, h) - r0 - marrow);
            muscle = take(ramp_inside(u, e2 - e0, h) - ramp_inside(u, e1 - e0, h));
            fat = take(ramp_inside(u, e3 - e0, h) - ramp_inside(u, e2 - e0, h)) + orbit_fat;
            scalp = take(ramp_inside(u, e4 - e0, h) - ramp_inside(u, e3 - e0, h));
            if (H.stripped) strip_keep.data[idx] = dq < strip_edge ? 1.f : 0.f;
          }
          const double wm = wm_cerebral + fhw + fcc;
          const double fd = fd_deep + (fh - fhw - cb_fissure) + fdi;  // nuclei, cerebellar cortex
          const double cb_grey = fh - fhw - cb_fissure;
          const double cortex = fp - fw - band_medial;
          s.mask.data[idx] = ic >= 0.5 ? 1.f : 0.f;
          if (H.whole) {
            const double parts[] = {wm_cerebral, cortex,  fd_deep, fv,     csf - fv - f3v,
                                    cb_white,    cb_grey, fstem,   fcc,    fdi,
                                    f3v,         bone,    marrow,  muscle, fat,
                                    scalp,       eye,     dura};
            double best = 0, total = 0;
            int label = 0;
            for (int q = 0; q < 18; ++q) {
              total += parts[q];
              if (parts[q] > best) {
                best = parts[q];
                label = q + 1;
              }
            }
            s.labels.data[idx] = best > 1.0 - total ? static_cast<float>(label) : 0.f;
          }
          if (wm + cortex + fd + csf + scalp + muscle + fat + marrow + eye <= 0) continue;

          const double side = xm[0] >= 0 ? 1.0 : -1.0;
          const double ax = std::fabs(xm[0]);
          const Vec3 perturb{wobble[0](xm), wobble[1](xm), wobble[2](xm)};
          auto wobbled = [&](Vec3 d) {
            d = normalized(d);
            return to_world_dir({d[0] + F.wobble * perturb[0], d[1] + F.wobble * perturb[1],
                                 d[2] + F.wobble * perturb[2]});
          };
          const Vec3 e_proj = wobbled(sub(xm, {side * 14.0, -16.0, -50.0}));
          const Vec3 e_call = wobbled({side, 0.0, 0.6 * std::tanh((ax - 12.0) / 15.0)});
          const Vec3 e_assoc = wobbled({0.0, 1.0, 0.2 * std::sin(xm[1] / 25.0)});
          const double m_call =
              F.callosal * bump((ax - 18) / 20, (xm[1] + 12) / 42, (xm[2] - 24) / 13);
          const double m_assoc =
              F.association * bump((ax - 33) / 10, (xm[1] + 15) / 40, (xm[2] - 14) / 12);
          const double m_proj = 1.0 - m_call - m_assoc;
          // The nearer hemisphere's surfaces orient the cortex and the gyral fibres.
          const int hemi = sdf[1].data[idx] <= sdf[3].data[idx] ? 0 : 1;
          const Volume& sw = sdf[2 * hemi];
          const Volume& sp = sdf[2 * hemi + 1];
          const double dw = sw.data[idx];
          const double beta = F.gyral * smoothstep((dw + 3.5 * scale) / (3.5 * scale));
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
            const Vec3 e_lr = to_world_dir({1, 0, 0});
            const double w[6] = {(1 - beta) * m_proj * wm_cerebral,
                                 (1 - beta) * m_call * wm_cerebral,
                                 (1 - beta) * m_assoc * wm_cerebral,
                                 beta * wm_cerebral,
                                 fhw,
                                 fcc};
            Vec3 e_norm{0, 0, 1};
            if (beta > 0 && wm_cerebral > 0) e_norm = normalized(gradient(sw, i, j, k));
            const Vec3* dirs[6] = {&e_proj, &e_call, &e_assoc, &e_norm, &e_hind, &e_lr};
            for (int q = 0; q < 6; ++q) {
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
          if (cb_grey > 0) terms.push_back({cb_grey * T.deep_grey.s0, &T.deep_grey, e_hind});
          // A specimen lies in a medium without signal: where a head has CSF it has void.
          if (csf > 0 && !specimen) terms.push_back({csf * T.csf.s0, &T.csf, {0, 0, 1}});
          if (scalp > 0) terms.push_back({scalp * T.scalp.s0, &T.scalp, {0, 0, 1}});
          if (fdi > 0) terms.push_back({fdi * T.deep_grey.s0, &T.deep_grey, e_proj});
          if (muscle > 0) terms.push_back({muscle * T.muscle.s0, &T.muscle, axis_up});
          if (fat > 0) terms.push_back({fat * T.fat.s0, &T.fat, {0, 0, 1}});
          if (marrow > 0) terms.push_back({marrow * T.marrow.s0, &T.marrow, {0, 0, 1}});
          if (eye > 0) terms.push_back({eye * T.eye.s0, &T.eye, {0, 0, 1}});

          s.fractions.data[s.fractions.index(i, j, k, 0)] = static_cast<float>(wm);
          s.fractions.data[s.fractions.index(i, j, k, 1)] = static_cast<float>(cortex);
          s.fractions.data[s.fractions.index(i, j, k, 2)] = static_cast<float>(fd);
          s.fractions.data[s.fractions.index(i, j, k, 3)] =
              specimen ? 0.f : static_cast<float>(csf);
          s.fractions.data[s.fractions.index(i, j, k, 4)] =
              wm > 0 ? static_cast<float>(1.0 - dominant) : 0.f;

          const double bias =
              P.bias_field > 0
                  ? std::exp(P.bias_field * std::clamp(bias_field_waves(xm), -2.5, 2.5))
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
  if (o.hemispheres != "both") cut_to_hemisphere(s, sdf, o.hemispheres == "lh" ? 0 : 1, H.whole);
  report(progress, 0.8);

  // Point spread of the acquisition, separable along the voxel axes, volume by volume.
  std::array<std::vector<double>, 3> kernels;
  bool any_kernel = false;
  for (int a = 0; a < 3; ++a) {
    kernels[a] = psf_kernel(P.blur_fwhm_vox[a], P.ringing_factor[a]);
    any_kernel = any_kernel || kernels[a].size() > 1;
  }
  if (any_kernel) {
    parallel_for(
        nvols,
        [&](int64_t b, int64_t e) {
          std::vector<float> line, out;
          for (int64_t t = b; t < e; ++t)
            for (int a = 0; a < 3; ++a) {
              const auto& kern = kernels[a];
              if (kern.size() <= 1) continue;
              const int64_t half = static_cast<int64_t>(kern.size() / 2);
              const int64_t n = dims[a];
              const int64_t stride = a == 0 ? 1 : a == 1 ? dims[0] : dims[0] * dims[1];
              line.resize(n);
              out.resize(n);
              for (int64_t q = 0; q < nvox / n; ++q) {
                // The start of line q: the other two indices of the voxel.
                int64_t start;
                if (a == 0)
                  start = q * dims[0];
                else if (a == 1)
                  start = (q / dims[0]) * dims[0] * dims[1] + q % dims[0];
                else
                  start = q;
                float* base = &s.dwi.data[static_cast<size_t>(t * nvox + start)];
                for (int64_t u = 0; u < n; ++u) line[u] = base[u * stride];
                for (int64_t u = 0; u < n; ++u) {
                  double acc = 0;
                  const int64_t lo = std::max<int64_t>(0, u - half),
                                hi = std::min<int64_t>(n - 1, u + half);
                  for (int64_t v = lo; v <= hi; ++v) acc += kern[v - u + half] * line[v];
                  out[u] = static_cast<float>(acc);
                }
                for (int64_t u = 0; u < n; ++u) base[u * stride] = out[u];
              }
            }
        },
        1);
  }
  report(progress, 0.9);

  // Rician noise: complex Gaussian noise on the magnitude, one generator per (volume, slice);
  // with several receive channels the sum of squares of their magnitudes (non-central chi).
  if (P.snr > 0) {
    const double sigma = o.signal_scale * T.white.s0 / P.snr;
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
              double power = re * re + im * im;
              for (int c = 1; c < P.coils; ++c) {
                const double a = sigma * rng.normal(), bb = sigma * rng.normal();
                power += a * a + bb * bb;
              }
              p[q] = static_cast<float>(std::sqrt(power));
            }
          }
        },
        1);
  }
  // Skull stripping as a brain-extraction tool leaves it: zeros outside its mask, noise too.
  if (H.stripped) {
    for (int64_t t = 0; t < nvols; ++t)
      for (int64_t idx = 0; idx < nvox; ++idx)
        if (strip_keep.data[idx] == 0) s.dwi.data[static_cast<size_t>(t * nvox + idx)] = 0;
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
  const Physics& P = s.physics;
  j << "    \"voxel_size_mm\": "
    << json_number(P.random ? std::min({P.voxel[0], P.voxel[1], P.voxel[2]}) : o.voxel_size)
    << ",\n";
  j << "    \"voxel_sizes_mm\": " << vec(P.voxel) << ",\n";
  j << "    \"sdf_voxel_size_mm\": " << json_number(s.sdf[0].spacing()[0]) << ",\n";
  j << "    \"sdf_dims\": [" << s.sdf[0].dims[0] << ", " << s.sdf[0].dims[1] << ", "
    << s.sdf[0].dims[2] << "],\n";
  j << "    \"orientation\": " << json_string(P.orientation) << ",\n";
  j << "    \"dims\": [" << s.dwi.dims[0] << ", " << s.dwi.dims[1] << ", " << s.dwi.dims[2] << ", "
    << s.dwi.nvols << "],\n";
  j << "    \"vox2ras\": [";
  for (int i = 0; i < 16; ++i) j << (i ? ", " : "") << json_number(s.dwi.vox2ras.m[i]);
  j << "],\n";
  j << "    \"shells\": " << json_string(format_shells(o.shells)) << ",\n";
  j << "    \"b0_volumes\": " << o.num_b0 << ",\n";
  j << "    \"snr\": " << json_number(P.snr) << ",\n";
  j << "    \"snr_definition\": \"b0 signal of pure white matter over the noise sd\",\n";
  j << "    \"noise\": "
    << json_string(P.coils == 1 ? "Rician"
                                : "non-central chi, " + std::to_string(P.coils) + " channels")
    << ",\n";
  j << "    \"noise_sigma\": " << json_number(s.noise_sigma) << ",\n";
  j << "    \"bias_field\": " << json_number(P.bias_field) << ",\n";
  j << "    \"signal_scale\": " << json_number(o.signal_scale) << ",\n";
  j << "    \"supersample\": " << o.supersample << ",\n";
  j << "    \"csf_margin_mm\": " << json_number(o.csf_margin) << ",\n";
  j << "    \"bvecs_convention\": \"FSL (image axes, x negated when det(vox2ras) > 0)\"\n";
  j << "  },\n";
  const TissueModel& T = P.tissue;
  j << "  \"tissue\": {\"white_matter\": " << comp(T.white) << ",\n";
  j << "    \"cortical_grey_matter\": " << comp(T.cortex) << ",\n";
  j << "    \"non_cortical_grey_matter\": " << comp(T.deep_grey) << ",\n";
  j << "    \"csf\": " << comp(T.csf) << ",\n";
  j << "    \"scalp\": " << comp(T.scalp) << ",\n";
  j << "    \"muscle\": " << comp(T.muscle) << ",\n";
  j << "    \"fat\": " << comp(T.fat) << ",\n";
  j << "    \"marrow\": " << comp(T.marrow) << ",\n";
  j << "    \"eye\": " << comp(T.eye) << "},\n";
  auto named = [&](const std::vector<std::pair<std::string, double>>& values) {
    std::string out = "{";
    for (size_t i = 0; i < values.size(); ++i)
      out += (i ? ", " : "") + json_string(values[i].first) + ": " + json_number(values[i].second);
    return out + "}";
  };
  j << "  \"anatomy\": " << json_string(o.anatomy) << ",\n";
  // Written only for one hemisphere, so that a two-hemisphere phantom's file stays as it was.
  if (o.hemispheres != "both") j << "  \"hemispheres\": " << json_string(o.hemispheres) << ",\n";
  j << "  \"physics\": " << json_string(o.physics) << ",\n";
  j << "  \"physics_values\": " << named(physics_values(P)) << ",\n";
  j << "  \"head_values\": " << named(head_values(s.head)) << ",\n";
  j << "  \"fibres\": "
    << named({{"callosal", P.fibres.callosal},
              {"association", P.fibres.association},
              {"gyral", P.fibres.gyral},
              {"wobble", P.fibres.wobble}})
    << ",\n";
  j << "  \"physics_ranges\": {";
  for (size_t i = 0; i < physics_ranges().size(); ++i) {
    const auto& r = physics_ranges()[i];
    j << (i ? ", " : "") << json_string(r.name) << ": [" << json_number(r.lo) << ", "
      << json_number(r.hi) << "]";
  }
  j << "},\n";
  if (!s.labels.data.empty()) {
    j << "  \"labels\": [";
    for (size_t i = 0; i < std::size(kLabelNames); ++i)
      j << (i ? ", " : "") << json_string(kLabelNames[i]);
    j << "],\n";
  }
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
  if (!s.labels.data.empty()) write_volume(s.labels, file("labels.nii.gz"), fast);
  const char* names[4] = {"lh.white", "lh.pial", "rh.white", "rh.pial"};
  auto present = [&](int m) {
    return std::find(s.hemispheres.begin(), s.hemispheres.end(), m / 2) != s.hemispheres.end();
  };
  for (int m = 0; m < 4; ++m)
    if (present(m)) write_volume(s.sdf[m], file("sdf/" + std::string(names[m]) + ".nii.gz"), fast);
  report(progress, 0.8);
  const VolumeGeometry geom = volume_geometry_of(s.mask, "dwi.nii.gz");
  SurfaceWriteOptions wopts;
  wopts.created_time = 0;  // a fixed stamp keeps the files reproducible
  const Mesh* meshes[4] = {&s.geometry.white[0], &s.geometry.pial[0], &s.geometry.white[1],
                           &s.geometry.pial[1]};
  for (int m = 0; m < 4; ++m) {
    if (!present(m)) continue;
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
