#include "ddcsr/placement/placement.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "ddcsr/error.h"
#include "ddcsr/geometry/mesh_checks.h"
#include "ddcsr/threads.h"

namespace ddcsr {

namespace {

using Vec3f = std::array<float, 3>;

// Narrower CSF gaps than this (mm) are taken for noise.
constexpr double kMinGapWidthMm = 0.2;
// White matter's signal share in a half-and-half voxel is kept within [this, 1 - this]: grey
// over white b0 is 1.1-1.4 in diffusion protocols (share 0.42-0.48).
constexpr double kMinWhiteShare = 0.35;

Vec3 along(const Vec3f& x, const Vec3f& n, double t) {
  return {x[0] + t * n[0], x[1] + t * n[1], x[2] + t * n[2]};
}

// Vertex neighbours from the triangles, compressed rows.
struct Adjacency {
  std::vector<int64_t> start;
  std::vector<int32_t> neighbours;
};

Adjacency adjacency_of(const Mesh& mesh) {
  const size_t nv = mesh.vertices.size();
  std::vector<std::vector<int32_t>> lists(nv);
  for (const auto& f : mesh.faces)
    for (int e = 0; e < 3; ++e) {
      lists[size_t(f[e])].push_back(f[(e + 1) % 3]);
      lists[size_t(f[e])].push_back(f[(e + 2) % 3]);
    }
  Adjacency a;
  a.start.assign(nv + 1, 0);
  for (size_t v = 0; v < nv; ++v) {
    auto& l = lists[v];
    std::sort(l.begin(), l.end());
    l.erase(std::unique(l.begin(), l.end()), l.end());
    a.start[v + 1] = a.start[v] + static_cast<int64_t>(l.size());
  }
  a.neighbours.reserve(size_t(a.start[nv]));
  for (auto& l : lists) a.neighbours.insert(a.neighbours.end(), l.begin(), l.end());
  return a;
}

double mean_edge_length(const Mesh& mesh) {
  double sum = 0;
  for (const auto& f : mesh.faces)
    for (int e = 0; e < 3; ++e) {
      const auto& a = mesh.vertices[size_t(f[e])];
      const auto& b = mesh.vertices[size_t(f[(e + 1) % 3])];
      sum += std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) +
                       (a[2] - b[2]) * (a[2] - b[2]));
    }
  return mesh.faces.empty() ? 1.0 : sum / (3.0 * mesh.faces.size());
}

// Lazy random-walk averaging: after `iterations` the values are blurred over the surface by a
// kernel of variance about iterations * edge^2 / 4 per direction.
void smooth_on_surface(std::vector<double>& values, const Adjacency& adj, int iterations) {
  std::vector<double> next(values.size());
  for (int it = 0; it < iterations; ++it) {
    parallel_for(static_cast<int64_t>(values.size()), [&](int64_t b, int64_t e) {
      for (int64_t v = b; v < e; ++v) {
        const int64_t s = adj.start[size_t(v)], t = adj.start[size_t(v) + 1];
        if (s == t) {
          next[size_t(v)] = values[size_t(v)];
          continue;
        }
        double sum = 0;
        for (int64_t k = s; k < t; ++k) sum += values[size_t(adj.neighbours[size_t(k)])];
        next[size_t(v)] = 0.5 * values[size_t(v)] + 0.5 * sum / double(t - s);
      }
    });
    values.swap(next);
  }
}

// The downward crossing of q through 0.5 nearest to t = 0, where q is sampled at
// t_k = -search + k * step; a crossing counts only when q rises above `high` within `window`
// inward of it and falls below `low` within `window` outward. NaN when there is none.
double nearest_step(const std::vector<float>& q, double search, double step, double low,
                    double high, double window) {
  const int64_t n = static_cast<int64_t>(q.size());
  const int64_t w = std::max<int64_t>(1, std::lround(window / step));
  double best = std::numeric_limits<double>::quiet_NaN();
  for (int64_t k = 0; k + 1 < n; ++k) {
    if (!(q[size_t(k)] >= 0.5f && q[size_t(k + 1)] < 0.5f)) continue;
    const double t =
        -search + step * (double(k) + (q[size_t(k)] - 0.5) / (q[size_t(k)] - q[size_t(k + 1)]));
    if (!std::isnan(best) && std::abs(best) <= std::abs(t)) continue;
    float inner = -1e9f, outer = 1e9f;
    for (int64_t j = std::max<int64_t>(0, k - w); j <= k; ++j)
      inner = std::max(inner, q[size_t(j)]);
    for (int64_t j = k + 1; j <= std::min(n - 1, k + 1 + w); ++j)
      outer = std::min(outer, q[size_t(j)]);
    if (inner >= high && outer <= low) best = t;
  }
  return best;
}

// A CSF gap narrower than the blur never reaches its own level: its profile dips without
// crossing half-way. Blurring keeps the dip's area (the gap's width, in units of tissue
// fraction) and its centroid (the gap's centre), so the near bank lies at centroid - area / 2.
// The dip starts at the tissue plateau within 2 mm inside and ends where the profile is back at
// 90 % of it (the far bank); NaN without such a dip, or with less than `min_width` of CSF.
double gap_near_bank(const std::vector<float>& q, double search, double step, double min_width) {
  const int64_t n = static_cast<int64_t>(q.size());
  const int64_t zero = std::lround(search / step),
                first = std::max<int64_t>(0, zero - std::lround(2.0 / step));
  int64_t k0 = first;
  for (int64_t k = first; k <= zero; ++k)
    if (q[size_t(k)] > q[size_t(k0)]) k0 = k;
  const double plateau = q[size_t(k0)];
  if (plateau < 0.7) return std::numeric_limits<double>::quiet_NaN();
  double area = 0, moment = 0;
  bool dipped = false, closed = false;
  for (int64_t k = k0 + 1; k < n; ++k) {
    const double deficit = std::clamp((plateau - q[size_t(k)]) / plateau, 0.0, 1.0);
    if (deficit > 0.1) dipped = true;
    if (dipped && q[size_t(k)] >= 0.9 * plateau) {
      closed = true;
      break;
    }
    const double t = -search + step * double(k);
    area += deficit * step;
    moment += deficit * step * t;
  }
  if (!closed || area < min_width) return std::numeric_limits<double>::quiet_NaN();
  return moment / area - 0.5 * area;
}

// Median of a profile (sampled at -search + k * step) 1-2 mm inside `boundary`; NaN where that
// falls outside the profile.
double inner_level(const std::vector<float>& a, double search, double step, double boundary) {
  std::vector<float> inside;
  for (size_t k = 0; k < a.size(); ++k) {
    const double t = -search + step * double(k) - boundary;
    if (t >= -2.0 - 1e-9 && t <= -1.0 + 1e-9) inside.push_back(a[k]);
  }
  if (inside.size() < 3) return std::numeric_limits<double>::quiet_NaN();
  auto mid = inside.begin() + inside.size() / 2;
  std::nth_element(inside.begin(), mid, inside.end());
  return *mid;
}

using Dev5 = std::array<double, 5>;

// Mean of a profile of deviatoric tensors (sampled at t0 + k * step) over [lo, hi]; false with
// fewer than three samples there.
bool window_mean(const std::vector<std::array<float, 5>>& profile, double t0, double step,
                 double lo, double hi, Dev5& mean) {
  mean = {};
  int n = 0;
  for (size_t k = 0; k < profile.size(); ++k) {
    const double t = t0 + step * double(k);
    if (t < lo - 1e-9 || t > hi + 1e-9) continue;
    for (size_t c = 0; c < 5; ++c) mean[c] += profile[k][c];
    ++n;
  }
  if (n < 3) return false;
  for (double& m : mean) m /= n;
  return true;
}

// How far along `dir` from x a signed distance map keeps moving away from zero in `sign`'s
// direction (sign -1: deeper inside; +1: farther outside), up to `reach`: where a blade's or a
// sulcus's medial sheet lies.
double room_to_medial_sheet(const Volume& sdf, const Vec3f& x, const Vec3f& dir, double reach,
                            double step, double sign) {
  double prev = sign * sdf.sample_linear({double(x[0]), double(x[1]), double(x[2])}, 0, 0.f);
  for (double t = step; t <= reach + 1e-9; t += step) {
    const double s = sign * sdf.sample_linear(along(x, dir, t), 0, float(sign * 1e3));
    if (s <= prev) return t - step;
    prev = s;
  }
  return reach;
}

// Self-intersections of `mesh` among the faces that have a vertex within `radius` of one of the
// `changed` vertices: after a round that only moved those, every new crossing involves such a
// face, and its partner crosses it, so it lies that close too (radius > longest edge + step).
std::vector<std::pair<int, int>> intersections_near(const Mesh& mesh,
                                                    const std::vector<int32_t>& changed,
                                                    double radius) {
  auto cell_of = [&](const Vec3f& p) {
    return std::array<int64_t, 3>{int64_t(std::floor(p[0] / radius)),
                                  int64_t(std::floor(p[1] / radius)),
                                  int64_t(std::floor(p[2] / radius))};
  };
  auto key = [](const std::array<int64_t, 3>& c) {
    return (uint64_t(c[0] & 0x1fffff) << 42) | (uint64_t(c[1] & 0x1fffff) << 21) |
           uint64_t(c[2] & 0x1fffff);
  };
  std::vector<uint64_t> cells;
  cells.reserve(changed.size());
  for (int32_t c : changed) cells.push_back(key(cell_of(mesh.vertices[size_t(c)])));
  std::sort(cells.begin(), cells.end());
  cells.erase(std::unique(cells.begin(), cells.end()), cells.end());
  std::vector<uint8_t> near(mesh.vertices.size(), 0);
  for (size_t v = 0; v < mesh.vertices.size(); ++v) {
    const auto c = cell_of(mesh.vertices[v]);
    for (int64_t dx = -1; dx <= 1 && !near[v]; ++dx)
      for (int64_t dy = -1; dy <= 1 && !near[v]; ++dy)
        for (int64_t dz = -1; dz <= 1 && !near[v]; ++dz)
          near[v] = std::binary_search(cells.begin(), cells.end(),
                                       key({c[0] + dx, c[1] + dy, c[2] + dz}));
  }
  Mesh sub;
  sub.vertices = mesh.vertices;
  std::vector<int> original;
  for (size_t f = 0; f < mesh.faces.size(); ++f) {
    const auto& t = mesh.faces[f];
    if (near[size_t(t[0])] || near[size_t(t[1])] || near[size_t(t[2])]) {
      sub.faces.push_back(t);
      original.push_back(int(f));
    }
  }
  std::vector<std::pair<int, int>> pairs;
  for (const auto& [f, g] : self_intersections(sub))
    pairs.emplace_back(original[size_t(f)], original[size_t(g)]);
  return pairs;
}

// The local share of vertices with evidence: 1 where a boundary was found, 0 elsewhere, averaged
// over the surface as the displacements are.
std::vector<double> evidence_share(const std::vector<double>& found, const Adjacency& adj,
                                   int iterations) {
  std::vector<double> share(found.size());
  for (size_t v = 0; v < found.size(); ++v) share[v] = std::isnan(found[v]) ? 0.0 : 1.0;
  smooth_on_surface(share, adj, iterations);
  return share;
}

// Evidence-weighted average of the found offsets over the surface (`share`: evidence_share() of
// them with the same iterations); moves fade where under `min_evidence` of the neighbourhood has
// evidence.
std::vector<double> smoothed_displacement(const std::vector<double>& found,
                                          const std::vector<double>& share, const Adjacency& adj,
                                          int iterations, double min_evidence) {
  const size_t nv = found.size();
  std::vector<double> num(nv, 0.0);
  for (size_t v = 0; v < nv; ++v)
    if (!std::isnan(found[v])) num[v] = found[v];
  smooth_on_surface(num, adj, iterations);
  std::vector<double> out(nv);
  for (size_t v = 0; v < nv; ++v) out[v] = num[v] / std::max(share[v], min_evidence);
  return out;
}

// Outward correction of the found boundaries for the curvature bias of the half-way level: the
// level of a blurred convex boundary lies inside it by variance * H (H = (k1 + k2) / 2, the mean
// curvature, convex positive; a Gaussian blur is mean-curvature flow of the level set for a time
// of half the variance), so the boundary lies that much beyond the level found. H is the
// surface's own, lightly smoothed (curvature from a mesh is noisy at single vertices); the
// correction is bounded by `cap_mm` and fades where under `min_evidence` of the neighbourhood
// found a boundary, as the displacements do.
std::vector<double> curvature_correction(const Mesh& surface, const std::vector<double>& share,
                                         const Adjacency& adj, double variance_mm2, double cap_mm,
                                         double min_evidence) {
  const size_t nv = share.size();
  const std::vector<float> concave = mean_curvature(surface);  // FreeSurfer's sign: -H
  std::vector<double> h(concave.begin(), concave.end());
  smooth_on_surface(h, adj, 2);
  std::vector<double> c(nv);
  for (size_t v = 0; v < nv; ++v)
    c[v] =
        std::clamp(-variance_mm2 * h[v], -cap_mm, cap_mm) * std::min(1.0, share[v] / min_evidence);
  return c;
}

void summarise(SurfacePlacement& s, const std::vector<double>& found,
               const std::vector<double>& correction) {
  const size_t nv = s.displacement.size();
  s.evidence_vertices = 0;
  double found_sum = 0;
  for (double f : found)
    if (!std::isnan(f)) {
      ++s.evidence_vertices;
      found_sum += f;
    }
  s.mean_found_offset_mm = s.evidence_vertices ? found_sum / double(s.evidence_vertices) : 0.0;
  std::vector<float> abs_d(nv);
  double sum = 0, sum_abs = 0;
  s.moved_vertices = 0;
  for (size_t v = 0; v < nv; ++v) {
    sum += s.displacement[v];
    abs_d[v] = std::abs(s.displacement[v]);
    sum_abs += abs_d[v];
    if (abs_d[v] >= 0.05f) ++s.moved_vertices;
  }
  if (nv == 0) return;
  s.mean_mm = sum / double(nv);
  s.mean_abs_mm = sum_abs / double(nv);
  auto p95 = abs_d.begin() + std::min(nv - 1, size_t(0.95 * double(nv)));
  std::nth_element(abs_d.begin(), p95, abs_d.end());
  s.p95_abs_mm = *p95;
  s.evidence_percent = 100.0 * double(s.evidence_vertices) / double(nv);
  s.moved_percent = 100.0 * double(s.moved_vertices) / double(nv);
  for (size_t v = 0; v < nv; ++v) abs_d[v] = float(std::abs(correction[v]));
  s.curvature_correction_mean_abs_mm =
      std::accumulate(abs_d.begin(), abs_d.end(), 0.0) / double(nv);
  std::nth_element(abs_d.begin(), p95, abs_d.end());
  s.curvature_correction_p95_abs_mm = *p95;
}

}  // namespace

HemispherePlacement place_surfaces(Mesh& white, Mesh& pial, const TissueEvidence& ev,
                                   const Volume& white_sdf, const std::vector<uint8_t>& excluded,
                                   const PlacementOptions& o) {
  if (!(o.search_mm > 0 && o.sample_mm > 0 && o.sample_mm < o.search_mm && o.max_step_mm > 0 &&
        o.smoothing_mm >= 0 && o.min_evidence > 0 && o.min_gap_mm >= 0 &&
        o.white_level_extrapolation >= 0 && o.white_level_extrapolation <= 2 && o.low < 0.5 &&
        o.high > 0.5 && o.max_rounds >= 1))
    throw UsageError("placement: invalid options");
  const size_t nv = white.vertices.size();
  if (pial.vertices.size() != nv || pial.faces.size() != white.faces.size())
    throw std::logic_error("placement: white and pial differ in their triangulation");
  HemispherePlacement result;
  if (nv == 0) return result;
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const Adjacency adj = adjacency_of(white);
  const auto white_normals = vertex_normals(white), pial_normals = vertex_normals(pial);
  const int64_t samples = 2 * std::lround(o.search_mm / o.sample_mm) + 1;
  const double window = 2.0;  // mm either side of a step in which its two levels must show
  // White matter's own level is read over 1 mm beyond the blur of the scan (a voxel, and as much
  // again for trilinear sampling), and its fall over 2 mm beyond the blur's whole support (1.5
  // voxels), so the profile reaches 1.5 voxels and 2 mm farther inside than the search.
  const Vec3 evidence_spacing = ev.anisotropy.spacing();
  const double blur_mm = std::max({evidence_spacing[0], evidence_spacing[1], evidence_spacing[2]});
  const int64_t skip = std::lround((1.5 * blur_mm + 2.0) / o.sample_mm);
  const double inner_depth = double(skip) * o.sample_mm;
  // Cortex's own tensor is read half a blur outside the boundary, over 1 mm: past most of
  // white matter's partial volume, short of the pial surface of a 2.5 mm cortex.
  const double outer_start = 0.5 * blur_mm, outer_end = outer_start + 1.0;
  const int64_t deep_samples = samples + skip + std::lround(outer_end / o.sample_mm);
  const bool tensors = ev.deviatoric.nvols == 5;
  // Every evidence map lies on the scan's grid: one voxel position serves them all.
  for (const Volume* m : {&ev.b0, &ev.tissue_fraction, &ev.deviatoric})
    if (!m->data.empty() && m->dims != ev.anisotropy.dims)
      throw std::logic_error("placement: evidence maps on different grids");
  const Affine ras2vox = ev.anisotropy.vox2ras.inverse();

  // Paired vertices: pial vertex i grew from white vertex i, so their distance is the thickness
  // the two may share between them.
  std::vector<double> pair_distance(nv);
  for (size_t v = 0; v < nv; ++v) {
    const auto& a = white.vertices[v];
    const auto& b = pial.vertices[v];
    pair_distance[v] = std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) +
                                 (a[2] - b[2]) * (a[2] - b[2]));
  }
  auto movable = [&](size_t v) {
    return pair_distance[v] >= o.min_thickness_mm && (excluded.empty() || !excluded[v]);
  };

  // Global contrast of white matter over cortex: regions where the regional levels differ by
  // far less than that carry no usable anisotropy step.
  const double global_contrast = std::max(1e-6, ev.white_anisotropy - ev.cortex_anisotropy);
  const double reach = o.max_step_mm + o.min_gap_mm;

  std::vector<double> white_found(nv, std::nan("")), pial_found(nv, std::nan(""));
  std::vector<double> white_room_in(nv, 0), pial_room_out(nv, 0), pial_to_white(nv, 0);
  parallel_for(static_cast<int64_t>(nv), [&](int64_t b, int64_t e) {
    std::vector<float> q(static_cast<size_t>(samples));
    std::vector<float> a(static_cast<size_t>(deep_samples)), s0(a.size());
    std::vector<std::array<float, 5>> dev(tensors ? a.size() : 0);
    for (int64_t vi = b; vi < e; ++vi) {
      const size_t v = size_t(vi);
      if (!movable(v)) continue;
      const Vec3f& xw = white.vertices[v];
      const Vec3f& nw = white_normals[v];
      Vec3f inward{-nw[0], -nw[1], -nw[2]};
      white_room_in[v] = room_to_medial_sheet(white_sdf, xw, inward, reach, o.sample_mm, -1.0);
      // DiffCoSeg stops pial short of the medial sheet of the space outside white (where two
      // banks' pial surfaces meet in a closed sulcus): outward room ends there too. Inward,
      // the white surface is as far as the white map says, or the partner vertex.
      const Vec3f& xp0 = pial.vertices[v];
      pial_room_out[v] =
          room_to_medial_sheet(white_sdf, xp0, pial_normals[v], reach, o.sample_mm, 1.0);
      pial_to_white[v] =
          std::min(pair_distance[v],
                   double(white_sdf.sample_linear({double(xp0[0]), double(xp0[1]), double(xp0[2])},
                                                  0, float(pair_distance[v]))));
      // White: anisotropy between cortex's regional level (0) and white matter's level just
      // beyond the blur inside the boundary (1). Measured locally, because white matter's
      // anisotropy falls towards the cortex where fibres turn into it; measured again once the
      // boundary is found, because that depth under a surface lying too far out is partly
      // cortex.
      const Vec3 xw3{xw[0], xw[1], xw[2]};
      const double lc = ev.cortex_level.sample_linear(xw3, 0, float(ev.cortex_anisotropy));
      const double cortex_b0 = ev.cortex_b0.sample_linear(xw3, 0, 0.f);
      for (int64_t k = 0; o.place_white && k < deep_samples; ++k) {
        const Vec3 ijk =
            ras2vox.apply(along(xw, nw, -o.search_mm - inner_depth + double(k) * o.sample_mm));
        a[size_t(k)] = ev.anisotropy.sample_voxel_linear(ijk);
        s0[size_t(k)] = ev.b0.sample_voxel_linear(ijk);
        if (tensors) ev.deviatoric.sample_voxel_linear_frames(ijk, 0, 5, dev[size_t(k)].data());
      }
      double boundary = 0;
      for (int pass = 0; o.place_white && pass < 2; ++pass) {
        const double depth = boundary - blur_mm + 1.0;
        double lw = inner_level(a, o.search_mm + inner_depth, o.sample_mm, depth);
        // How white matter's level falls towards the boundary: the slope between two readings
        // beyond the whole support of the blur (1.5 voxels), 1 mm apart. With it, the level read
        // beyond the blur (centred blur + 0.5 mm inside the boundary) is extrapolated to the
        // boundary.
        const double near = inner_level(a, o.search_mm + inner_depth, o.sample_mm,
                                        boundary - 1.5 * blur_mm + 1.0),
                     far = inner_level(a, o.search_mm + inner_depth, o.sample_mm,
                                       boundary - 1.5 * blur_mm);
        if (!std::isnan(lw) && !std::isnan(near) && !std::isnan(far) && far > near)
          lw = std::max(lw - o.white_level_extrapolation * (far - near) * (blur_mm + 0.5),
                        lc + 0.5 * (lw - lc));
        if (std::isnan(lw) || lw - lc < 0.3 * global_contrast) {
          white_found[v] = std::numeric_limits<double>::quiet_NaN();
          break;
        }
        // Signal share of white matter in a half-and-half voxel; bounded, because a level
        // read in a thin blade or beside a vessel can be far off.
        const double white_b0 = inner_level(s0, o.search_mm + inner_depth, o.sample_mm, depth);
        const double share = cortex_b0 > 0 && white_b0 > 0
                                 ? std::clamp(white_b0 / (white_b0 + cortex_b0), kMinWhiteShare,
                                              1.0 - kMinWhiteShare)
                                 : 0.5;
        // White matter's share f of a voxel x = f W + (1 - f) G. With the tensors, cortex's
        // own deviatoric tensor G (read just outside the boundary) is taken out and f solves
        // |x - (1 - f) G| = f |W|: exact for the mixture whatever the two orientations, where
        // the magnitude alone is not (radial cortex and tangential superficial white matter
        // partly cancel), and free of white matter's orientation, which turns with depth (a
        // projection onto the deep tensor is not). Without the tensors, or where cortex's is not
        // measured: the magnitude between the regional cortex level and white matter's.
        Dev5 cortex_dev{};
        const bool subtract =
            tensors && window_mean(dev, -o.search_mm - inner_depth, o.sample_mm,
                                   boundary + outer_start, boundary + outer_end, cortex_dev);
        double cortex2 = 0;
        for (double c : cortex_dev) cortex2 += c * c;
        const double white2 = lw * lw / 1.5;  // |W|^2 from sqrt(3/2)|dev W| = lw
        const double quad_a = white2 - cortex2;
        if (subtract && 1.5 * quad_a < std::pow(0.3 * global_contrast, 2)) {
          white_found[v] = std::numeric_limits<double>::quiet_NaN();
          break;
        }
        for (int64_t k = 0; k < samples; ++k) {
          double f;
          if (subtract) {
            // (|W|^2 - |G|^2) f^2 - 2 <x - G, G> f - |x - G|^2 = 0, the non-negative root.
            double xg_g = 0, xg2 = 0;
            for (size_t c = 0; c < 5; ++c) {
              const double xg = double(dev[size_t(k + skip)][c]) - cortex_dev[c];
              xg_g += xg * cortex_dev[c];
              xg2 += xg * xg;
            }
            const double half_b = -xg_g;
            f = (-half_b + std::sqrt(std::max(0.0, half_b * half_b + quad_a * xg2))) / quad_a;
          } else {
            f = (a[size_t(k + skip)] - lc) / (lw - lc);
          }
          q[size_t(k)] = static_cast<float>(f + 0.5 - share);
        }
        white_found[v] = nearest_step(q, o.search_mm, o.sample_mm, o.low, o.high, window);
        if (std::isnan(white_found[v])) break;
        boundary = white_found[v];
      }
      if (!o.place_pial) continue;
      // Pial: the tissue fraction itself (1 in tissue, 0 in CSF): a step where the CSF is wide,
      // else the near bank of a narrow gap.
      const Vec3f& xp = pial.vertices[v];
      const Vec3f& np = pial_normals[v];
      for (int64_t k = 0; k < samples; ++k)
        q[size_t(k)] = ev.tissue_fraction.sample_voxel_linear(
            ras2vox.apply(along(xp, np, -o.search_mm + double(k) * o.sample_mm)));
      pial_found[v] = nearest_step(q, o.search_mm, o.sample_mm, o.low, o.high, window);
      if (std::isnan(pial_found[v]))
        pial_found[v] = gap_near_bank(q, o.search_mm, o.sample_mm, kMinGapWidthMm);
    }
  });

  const double edge = mean_edge_length(white);
  const int iterations =
      o.smoothing_mm > 0
          ? std::max(1, int(std::lround(4.0 * o.smoothing_mm * o.smoothing_mm / (edge * edge))))
          : 0;
  const std::vector<double> white_share = evidence_share(white_found, adj, iterations),
                            pial_share = evidence_share(pial_found, adj, iterations);
  std::vector<double> dw =
      smoothed_displacement(white_found, white_share, adj, iterations, o.min_evidence);
  std::vector<double> dp =
      smoothed_displacement(pial_found, pial_share, adj, iterations, o.min_evidence);
  std::vector<double> white_correction(nv, 0.0), pial_correction(nv, 0.0);
  if (o.blur_variance_voxels > 0) {
    // The variance along the surface in mm^2: the voxel's mean squared size.
    const Vec3& h = evidence_spacing;
    const double variance = o.blur_variance_voxels * (h[0] * h[0] + h[1] * h[1] + h[2] * h[2]) / 3;
    const double cap = 0.5 * blur_mm;
    white_correction = curvature_correction(white, white_share, adj, variance, cap, o.min_evidence);
    pial_correction = curvature_correction(pial, pial_share, adj, variance, cap, o.min_evidence);
    for (size_t v = 0; v < nv; ++v) {
      dw[v] += white_correction[v];
      dp[v] += pial_correction[v];
    }
  }
  // Bounds: white stays inside pial and short of its blade's medial sheet, pial outside the
  // moved white and short of its sulcus's medial sheet.
  for (size_t v = 0; v < nv; ++v) {
    if (!movable(v)) {
      // Left still: no correction either, so the summary counts what was applied.
      dw[v] = dp[v] = white_correction[v] = pial_correction[v] = 0;
      continue;
    }
    const double gap = o.min_gap_mm;
    dw[v] = std::clamp(dw[v], -std::max(0.0, std::min(o.max_step_mm, white_room_in[v] - gap)),
                       std::max(0.0, std::min(o.max_step_mm, pair_distance[v] - gap)));
    const double room_in = pial_to_white[v] - dw[v] - gap;  // pial towards the moved white
    dp[v] = std::clamp(dp[v], -std::max(0.0, std::min(o.max_step_mm, room_in)),
                       std::max(0.0, std::min(o.max_step_mm, pial_room_out[v] - gap)));
  }

  const auto t1 = Clock::now();
  result.seconds_search = std::chrono::duration<double>(t1 - t0).count();
  // Moves, then an exact check of white and pial as one mesh: any pair of crossing faces of
  // which one has moved takes back the moves of its vertices, and halves those of their
  // neighbours, until nothing crosses that did not before.
  const Mesh white0 = white, pial0 = pial;
  Mesh both;
  both.vertices.resize(2 * nv);
  both.faces = white.faces;
  for (const auto& f : pial.faces)
    both.faces.push_back({f[0] + int32_t(nv), f[1] + int32_t(nv), f[2] + int32_t(nv)});
  auto apply = [&] {
    for (size_t v = 0; v < nv; ++v) {
      const Vec3 w = along(white0.vertices[v], white_normals[v], dw[v]);
      const Vec3 p = along(pial0.vertices[v], pial_normals[v], dp[v]);
      both.vertices[v] = {float(w[0]), float(w[1]), float(w[2])};
      both.vertices[v + nv] = {float(p[0]), float(p[1]), float(p[2])};
    }
  };
  std::vector<uint8_t> taken_back(2 * nv, 0);
  auto moved = [&](int32_t c) {
    return size_t(c) < nv ? dw[size_t(c)] != 0 : dp[size_t(c) - nv] != 0;
  };
  auto face_moved = [&](int f) {
    const auto& t = both.faces[size_t(f)];
    return moved(t[0]) || moved(t[1]) || moved(t[2]);
  };
  auto scale = [&](int32_t c, double factor) {
    if (size_t(c) < nv)
      dw[size_t(c)] *= factor;
    else
      dp[size_t(c) - nv] *= factor;
  };
  bool clean = false;
  const double recheck_radius = 2.0 * edge + 1.0;
  std::vector<int32_t> changed;
  for (int round = 0; round < o.max_rounds && !clean; ++round) {
    apply();
    result.rounds = round + 1;
    std::vector<int32_t> offending;
    const auto pairs =
        round == 0 ? self_intersections(both) : intersections_near(both, changed, recheck_radius);
    for (const auto& [f, g] : pairs) {
      for (int face : {f, g})
        if (face_moved(face))
          for (int32_t c : both.faces[size_t(face)]) offending.push_back(c);
    }
    clean = offending.empty();
    changed = offending;
    for (int32_t c : offending) {
      const size_t local = size_t(c) % nv;
      const int32_t base = size_t(c) < nv ? 0 : int32_t(nv);
      for (int64_t k = adj.start[local]; k < adj.start[local + 1]; ++k) {
        scale(base + adj.neighbours[size_t(k)], 0.5);
        changed.push_back(base + adj.neighbours[size_t(k)]);
      }
    }
    for (int32_t c : offending) {
      scale(c, 0.0);
      taken_back[size_t(c)] = 1;
    }
  }
  if (!clean) {
    std::fill(dw.begin(), dw.end(), 0.0);
    std::fill(dp.begin(), dp.end(), 0.0);
    apply();
    result.reverted = true;
  }
  for (size_t v = 0; v < nv; ++v) {
    white.vertices[v] = both.vertices[v];
    pial.vertices[v] = both.vertices[v + nv];
  }
  result.seconds_check = std::chrono::duration<double>(Clock::now() - t1).count();
  result.white.displacement.assign(dw.begin(), dw.end());
  result.pial.displacement.assign(dp.begin(), dp.end());
  summarise(result.white, white_found, white_correction);
  summarise(result.pial, pial_found, pial_correction);
  for (size_t v = 0; v < nv; ++v) {
    result.white.taken_back_vertices += taken_back[v];
    result.pial.taken_back_vertices += taken_back[v + nv];
  }
  return result;
}

}  // namespace ddcsr
