// DiffCoSeg orchestration: white flow, pial inflation, repair, checks, thickness.
#include "ddcsr/diffcoseg/diffcoseg.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>   // DEVDEBUG
#include <cstdlib>  // DEVDEBUG
#include <ctime>    // DEVDEBUG
#include <memory>
#include <sstream>

#include "ddcsr/error.h"
#include "ddcsr/frames.h"
#include "ddcsr/geometry/mesh_checks.h"
#include "ddcsr/geometry/mesh_distance.h"
#include "ddcsr/threads.h"
#include "diffcoseg/stages.h"
#include "diffcoseg/vec.h"

namespace ddcsr {

namespace diffcoseg {

std::vector<std::pair<int, int>> local_self_intersections(const Mesh& mesh,
                                                          const std::vector<char>& mask,
                                                          double radius) {
  auto cell_of = [&](const std::array<float, 3>& p) {
    return std::array<int64_t, 3>{static_cast<int64_t>(std::floor(p[0] / radius)),
                                  static_cast<int64_t>(std::floor(p[1] / radius)),
                                  static_cast<int64_t>(std::floor(p[2] / radius))};
  };
  auto key = [](int64_t x, int64_t y, int64_t z) {
    return ((x + (1 << 20)) << 42) ^ ((y + (1 << 20)) << 21) ^ (z + (1 << 20));
  };
  // Cells of the marked vertices and their neighbours, sorted for lookup.
  std::vector<int64_t> cells;
  for (size_t v = 0; v < mesh.vertices.size(); ++v)
    if (mask[v]) {
      const auto c = cell_of(mesh.vertices[v]);
      for (int dz = -1; dz <= 1; ++dz)
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx) cells.push_back(key(c[0] + dx, c[1] + dy, c[2] + dz));
    }
  if (cells.empty()) return {};
  std::sort(cells.begin(), cells.end());
  cells.erase(std::unique(cells.begin(), cells.end()), cells.end());
  Mesh sub;
  std::vector<int32_t> vmap(mesh.vertices.size(), -1);
  std::vector<int> fmap;
  for (size_t f = 0; f < mesh.faces.size(); ++f) {
    bool near = false;
    for (int k = 0; k < 3 && !near; ++k) {
      const auto c = cell_of(mesh.vertices[mesh.faces[f][k]]);
      near = std::binary_search(cells.begin(), cells.end(), key(c[0], c[1], c[2]));
    }
    if (!near) continue;
    std::array<int32_t, 3> face;
    for (int k = 0; k < 3; ++k) {
      int32_t& m = vmap[mesh.faces[f][k]];
      if (m < 0) {
        m = static_cast<int32_t>(sub.vertices.size());
        sub.vertices.push_back(mesh.vertices[mesh.faces[f][k]]);
      }
      face[k] = m;
    }
    sub.faces.push_back(face);
    fmap.push_back(static_cast<int>(f));
  }
  std::vector<std::pair<int, int>> pairs = self_intersections(sub);
  for (auto& [f, g] : pairs) {
    f = fmap[f];
    g = fmap[g];
  }
  return pairs;
}

}  // namespace diffcoseg

using namespace diffcoseg;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
bool debug() { return std::getenv("DCS_DEBUG") != nullptr; }  // DEVDEBUG

using Pairs = std::vector<std::pair<int, int>>;

void check_volume(const Volume& v, const std::string& what) {
  if (v.nvols != 1 || v.voxels_per_volume() <= 0 ||
      v.data.size() != static_cast<size_t>(v.voxels_per_volume()))
    throw InputError("", what + " must be a non-empty 3D volume");
  for (float s : v.data)
    if (!std::isfinite(s)) throw InputError("", what + " holds a non-finite value");
}

double longest_edge(const Mesh& mesh) {
  double longest = 0;
  for (const auto& f : mesh.faces)
    for (int k = 0; k < 3; ++k) {
      const auto& a = mesh.vertices[f[k]];
      const auto& b = mesh.vertices[f[(k + 1) % 3]];
      longest = std::max(longest, double(std::hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2])));
    }
  return longest;
}

// The self-intersecting face pairs of a mesh whose vertices move in small groups: one full
// check, then after each move only the neighbourhood of the moved vertices is checked again.
// A pair involving a moved face is always inside that neighbourhood (its faces' boxes
// overlap), and the status of a pair of unmoved faces cannot change, so the list stays exact.
class IntersectionTracker {
 public:
  explicit IntersectionTracker(const Mesh& mesh) : pairs_(self_intersections(mesh)) {}
  const Pairs& pairs() const { return pairs_; }
  void update(const Mesh& mesh, const std::vector<char>& moved) {
    // Cells twice the longest edge: every face meeting a moved face lies in a neighbour cell.
    const double radius = 2.0 * longest_edge(mesh) + 1e-3;
    Pairs kept;
    for (const auto& pr : pairs_) {
      bool touched = false;
      for (int face : {pr.first, pr.second})
        for (int32_t v : mesh.faces[face]) touched |= moved[v] != 0;
      if (!touched) kept.push_back(pr);
    }
    const Pairs fresh = local_self_intersections(mesh, moved, radius);
    kept.insert(kept.end(), fresh.begin(), fresh.end());
    std::sort(kept.begin(), kept.end());
    kept.erase(std::unique(kept.begin(), kept.end()), kept.end());
    pairs_.swap(kept);
  }

 private:
  Pairs pairs_;
};

// White and pial as one mesh (pial vertices and faces after white's), so one check finds the
// self-intersections of each and the places where one passes through the other.
Mesh combine(const Mesh& white, const Mesh& pial) {
  Mesh both;
  both.vertices = white.vertices;
  both.vertices.insert(both.vertices.end(), pial.vertices.begin(), pial.vertices.end());
  both.faces = white.faces;
  const int32_t nv = static_cast<int32_t>(white.vertices.size());
  for (const auto& f : pial.faces) both.faces.push_back({f[0] + nv, f[1] + nv, f[2] + nv});
  return both;
}

void fill_check(const Mesh& mesh, const Pairs& pairs, SurfaceCheck& check) {
  const MeshTopology topo = mesh_topology(mesh);
  check.vertices = topo.vertices;
  check.faces = topo.faces;
  check.euler = topo.euler;
  check.components = topo.components;
  check.closed_manifold = topo.closed_manifold();
  std::vector<char> involved(mesh.faces.size(), 0);
  for (const auto& [f, g] : pairs) involved[f] = involved[g] = 1;
  check.self_intersecting_faces = std::count(involved.begin(), involved.end(), 1);
  check.sif_percent = self_intersection_fraction(pairs, mesh.faces.size());
}

void report_problems(const std::string& name, const SurfaceCheck& c,
                     std::vector<std::string>& problems) {
  if (!c.closed_manifold) problems.push_back(name + ": not a closed two-manifold");
  if (c.components != 1)
    problems.push_back(name + ": " + std::to_string(c.components) + " connected components");
  if (c.euler != 2)
    problems.push_back(name + ": Euler characteristic " + std::to_string(c.euler) + " (not 2)");
  if (c.self_intersecting_faces > 0) {
    std::ostringstream s;
    s << name << ": " << c.self_intersecting_faces << " self-intersecting faces (" << c.sif_percent
      << "% SIF) remain after " << c.repair_rounds << " repair rounds";
    problems.push_back(s.str());
  }
}

// Squared distance from p to triangle abc (Ericson, Real-Time Collision Detection, 5.1.5).
double point_triangle_distance2(const Vec3& p, const Vec3& a, const Vec3& b, const Vec3& c) {
  const Vec3 ab = b - a, ac = c - a, ap = p - a;
  const double d1 = dot(ab, ap), d2 = dot(ac, ap);
  Vec3 q;
  if (d1 <= 0 && d2 <= 0) {
    q = a;
  } else {
    const Vec3 bp = p - b;
    const double d3 = dot(ab, bp), d4 = dot(ac, bp);
    const Vec3 cp = p - c;
    const double d5 = dot(ab, cp), d6 = dot(ac, cp);
    const double vc = d1 * d4 - d3 * d2, vb = d5 * d2 - d1 * d6, va = d3 * d6 - d5 * d4;
    if (d3 >= 0 && d4 <= d3) q = b;
    else if (d6 >= 0 && d5 <= d6) q = c;
    else if (vc <= 0 && d1 >= 0 && d3 <= 0) q = a + (d1 / (d1 - d3)) * ab;
    else if (vb <= 0 && d2 >= 0 && d6 <= 0) q = a + (d2 / (d2 - d6)) * ac;
    else if (va <= 0 && (d4 - d3) >= 0 && (d5 - d6) >= 0)
      q = b + ((d4 - d3) / ((d4 - d3) + (d5 - d6))) * (c - b);
    else {
      const double denom = 1.0 / (va + vb + vc);
      q = a + (vb * denom) * ab + (vc * denom) * ac;
    }
  }
  const Vec3 d = p - q;
  return dot(d, d);
}

// Faces around each vertex (compressed rows).
struct VertexFaces {
  std::vector<int64_t> offset;
  std::vector<int32_t> faces;
  explicit VertexFaces(const Mesh& mesh) : offset(mesh.vertices.size() + 1, 0) {
    for (const auto& f : mesh.faces)
      for (int32_t v : f) ++offset[v + 1];
    for (size_t v = 0; v < mesh.vertices.size(); ++v) offset[v + 1] += offset[v];
    faces.resize(offset.back());
    std::vector<int64_t> fill(offset.begin(), offset.end() - 1);
    for (size_t f = 0; f < mesh.faces.size(); ++f)
      for (int32_t v : mesh.faces[f]) faces[fill[v]++] = static_cast<int32_t>(f);
  }
};

// Distance from q to `mesh`, searched outward over the mesh from the faces around vertex
// `seed`: best-first over faces sharing a vertex, until no face next to the visited ones is
// closer than the best. This finds the nearest point of the surface patch around the partner
// vertex, as FreeSurfer's thickness does within a neighbourhood.
double local_distance(const Mesh& mesh, const VertexFaces& vf, const Vec3& q, int32_t seed,
                      std::vector<int32_t>& visited) {
  auto face_d2 = [&](int32_t f) {
    const auto& t = mesh.faces[f];
    auto at = [&](int32_t v) {
      return Vec3{mesh.vertices[v][0], mesh.vertices[v][1], mesh.vertices[v][2]};
    };
    return point_triangle_distance2(q, at(t[0]), at(t[1]), at(t[2]));
  };
  visited.clear();
  std::vector<std::pair<double, int32_t>> frontier;
  auto push = [&](int32_t f) {
    if (std::find(visited.begin(), visited.end(), f) != visited.end()) return;
    visited.push_back(f);
    frontier.emplace_back(face_d2(f), f);
  };
  for (int64_t k = vf.offset[seed]; k < vf.offset[seed + 1]; ++k) push(vf.faces[k]);
  double best = 1e300;
  while (!frontier.empty()) {
    auto it = std::min_element(frontier.begin(), frontier.end());
    const auto [d2, f] = *it;
    frontier.erase(it);
    if (d2 > best) break;  // every face left is farther: the basin is explored
    best = d2;
    for (int32_t v : mesh.faces[f])
      for (int64_t k = vf.offset[v]; k < vf.offset[v + 1]; ++k) push(vf.faces[k]);
    if (visited.size() > 4096) break;
  }
  return std::sqrt(best);
}

std::vector<float> local_thickness(const Mesh& white, const Mesh& pial) {
  const VertexFaces vf(white);
  const int64_t n = static_cast<int64_t>(white.vertices.size());
  std::vector<float> thickness(n);
  parallel_for(n, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> visited;
    for (int64_t i = begin; i < end; ++i) {
      const Vec3 w{white.vertices[i][0], white.vertices[i][1], white.vertices[i][2]};
      const Vec3 p{pial.vertices[i][0], pial.vertices[i][1], pial.vertices[i][2]};
      const double to_pial = local_distance(pial, vf, w, int32_t(i), visited);
      const double to_white = local_distance(white, vf, p, int32_t(i), visited);
      thickness[i] = static_cast<float>(0.5 * (to_pial + to_white));
    }
  }, 2048);
  return thickness;
}

// White vertices outside the pial surface, by exact inside tests (ray votes); only needed when
// the surfaces cross somewhere.
int64_t count_outside(const Mesh& white, const Mesh& pial) {
  const MeshDistance to_pial(pial);
  const int64_t n = static_cast<int64_t>(white.vertices.size());
  std::vector<char> out(n, 0);
  parallel_for(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const Vec3 w{white.vertices[i][0], white.vertices[i][1], white.vertices[i][2]};
      const MeshDistance::Closest c = to_pial.closest(w);
      // On the surface is not outside; the pseudo-normal sign may err only near crossings,
      // so any doubt goes to the ray vote.
      if (c.distance > 1e-5 && !to_pial.inside(w)) out[i] = 1;
    }
  }, 1024);
  return std::count(out.begin(), out.end(), 1);
}

}  // namespace

std::vector<float> cortical_thickness(const Mesh& white, const Mesh& pial) {
  if (white.vertices.size() != pial.vertices.size() || white.faces != pial.faces)
    throw InputError("", "white and pial surfaces do not share one triangulation");
  return local_thickness(white, pial);
}

HemisphereSurfaces reconstruct_hemisphere(const Volume& white_sdf, const Volume& pial_sdf,
                                          const std::string& hemi, const DiffCoSegOptions& options,
                                          const ProgressFn& progress) {
  if (options.target_vertices < 100) throw UsageError("DiffCoSeg: target vertices below 100");
  if (options.sigmas_mm.empty()) throw UsageError("DiffCoSeg: no smoothing levels");
  for (double s : options.sigmas_mm)
    if (!(s >= 0)) throw UsageError("DiffCoSeg: smoothing widths must be >= 0");
  if (!(options.level_time > 0) || !(options.remesh_interval > 0) ||
      !(options.max_step_fraction > 0 && options.max_step_fraction <= 1) ||
      !(options.max_speed > 0) || !(options.max_thickness_mm > 0) ||
      !(options.sulcus_margin_mm >= 0) || !(options.pial_direction_sigma_mm >= 0) ||
      !(options.growth_tau > 0) || !(options.growth_reach_mm > 0) ||
      !(options.growth_depth_mm > 0) || !(options.growth_outside_depth_mm > 0) ||
      !(options.final_time >= 0) || !(options.flow_edge_mm > 0) || options.repair_rounds < 0)
    throw UsageError("DiffCoSeg: invalid option value");
  check_volume(white_sdf, "white SDF");
  check_volume(pial_sdf, "pial SDF");

  HemisphereSurfaces out;
  out.hemi = hemi;
  auto t0 = Clock::now();

  // --- White surface: coarse-to-fine flows of the template.
  const double sigma_max = *std::max_element(options.sigmas_mm.begin(), options.sigmas_mm.end());
  const Vec3 wsp = white_sdf.spacing();
  const double wvox = std::min({wsp[0], wsp[1], wsp[2]});
  const int64_t pad = static_cast<int64_t>(
      std::ceil((std::max(3.0 * sigma_max, options.growth_outside_depth_mm) + 4.0) / wvox));
  const VoxelBox wbox = box_below(white_sdf, 0.f, pad);
  if (wbox.voxels() == 0) throw InputError("", "white SDF has no voxel inside the surface");
  double edge = std::sqrt(2.0 * level_set_area(white_sdf) /
                          (std::sqrt(3.0) * double(options.target_vertices)));
  edge = std::max(edge, 0.05 * wvox);

  // Step (mm) of the pial surface's start out of white along the normals.
  constexpr double kPialOffset = 0.02;
  WhiteStats stats;
  const size_t nlevels = options.sigmas_mm.size();
  std::unique_ptr<FlowMesh> flow_mesh;
  for (size_t k = 0; k < nlevels; ++k) {
    const double sigma = options.sigmas_mm[k];
    SdfField field(white_sdf, wbox, sigma);
    field.add_growth_directions(options.growth_depth_mm, options.growth_outside_depth_mm);
    const double level_edge = std::max({edge, options.flow_edge_mm, 0.5 * sigma});
    if (!flow_mesh) flow_mesh = std::make_unique<FlowMesh>(place_template(white_sdf, level_edge));
    flow_mesh->remesh(level_edge);
    flow_to_level_set(*flow_mesh, field, level_edge, options.level_time, options, stats);
    if (debug())
      std::fprintf(stderr, "DEVDEBUG level %zu sigma %.2f verts %lld t %.2f cpu %.2f\n", k, sigma,
                   (long long)flow_mesh->num_vertices(), seconds_since(t0),
                   double(std::clock()) / CLOCKS_PER_SEC);
    report(progress, 0.6 * double(k + 1) / double(nlevels));
  }
  FlowMesh& fm = *flow_mesh;
  const SdfField white_raw(white_sdf, wbox, 0.0);
  // Refine to the requested vertex count (the area is known now), follow the unsmoothed SDF
  // briefly at full resolution, then settle the vertices onto the level set.
  edge = std::max(0.05 * wvox,
                  std::sqrt(2.0 * fm.area() / (std::sqrt(3.0) * double(options.target_vertices))));
  fm.remesh(edge);
  fm.relax(0.5, true);
  flow_to_level_set(fm, white_raw, edge, options.final_time, options, stats);
  for (int it = 0; it < options.projection_iterations; ++it) {
    if (it + 2 < options.projection_iterations) fm.relax(0.3, true);
    project_to_level_set(fm, white_raw, 1, 0.3 * edge);
  }
  out.flow_folded_faces = stats.folded_faces;
  if (debug())
    std::fprintf(stderr, "DEVDEBUG projected verts %lld t %.2f cpu %.2f\n",
                 (long long)fm.num_vertices(), seconds_since(t0),
                 double(std::clock()) / CLOCKS_PER_SEC);

  // Local repair of white self-intersections left by the discretisation, and of places where
  // white nearly touches itself or pinches (the pial surface starts a small step out along the
  // normals and needs that room): the check runs on white pushed out by that step. Repair
  // smooths the involved vertices and a growing neighbourhood, re-projecting gently in the
  // first rounds.
  auto offset_white = [&]() {
    const std::vector<Vec3> n = fm.vertex_normals();
    Mesh m = fm.to_mesh();
    for (size_t i = 0; i < m.vertices.size(); ++i)
      for (int a = 0; a < 3; ++a) m.vertices[i][a] += float(kPialOffset * n[i][a]);
    return m;
  };
  // Spikes: vertices whose normal points away from one of their own faces; stepping out along
  // it would cross that face.
  auto spikes = [&]() {
    const std::vector<Vec3> n = fm.vertex_normals();
    Pairs bad;
    for (int32_t f = 0; f < static_cast<int32_t>(fm.tri.size()); ++f) {
      const auto& t = fm.tri[f];
      const Vec3 fn = normalized(cross(fm.pos[t[1]] - fm.pos[t[0]], fm.pos[t[2]] - fm.pos[t[0]]));
      for (int32_t v : t)
        if (dot(fn, n[v]) < 0.2) {
          bad.emplace_back(f, f);
          break;
        }
    }
    return bad;
  };
  IntersectionTracker white_si(offset_white());
  {
    std::vector<char> touched(fm.vertex_slots(), 0);
    int round = 0;
    for (Pairs bad = spikes(); (!white_si.pairs().empty() || !bad.empty()) &&
                               round < options.repair_rounds;
         bad = spikes()) {
      ++round;
      bad.insert(bad.end(), white_si.pairs().begin(), white_si.pairs().end());
      const std::vector<char> mask = vertices_near_faces(fm, bad, 1 + round / 4);
      for (size_t v = 0; v < mask.size(); ++v) touched[v] |= mask[v];
      fm.relax(0.5, false, &mask);
      fm.relax(0.5, false, &mask);
      if (2 * round <= options.repair_rounds)
        project_to_level_set(fm, white_raw, 1, 0.05 * edge, &mask);
      // Normals change one ring beyond the moved vertices.
      std::vector<char> changed = mask;
      std::vector<int32_t> ring;
      for (int32_t v = 0; v < fm.vertex_slots(); ++v)
        if (mask[v]) {
          fm.one_ring(v, ring);
          for (int32_t w : ring) changed[w] = 1;
        }
      white_si.update(offset_white(), changed);
    }
    out.white_check.repair_rounds = round;
    out.white_check.repaired_vertices = std::count(touched.begin(), touched.end(), 1);
  }
  Mesh white = fm.to_mesh();
  out.seconds_white = seconds_since(t0);
  if (debug())
    std::fprintf(stderr, "DEVDEBUG white repaired pairs %zu t %.2f cpu %.2f\n",
                 white_si.pairs().size(), seconds_since(t0), double(std::clock()) / CLOCKS_PER_SEC);
  report(progress, 0.7);

  // --- Pial surface: inflate the white mesh.
  t0 = Clock::now();
  const Vec3 psp = pial_sdf.spacing();
  const double pvox = std::min({psp[0], psp[1], psp[2]});
  const VoxelBox pbox = box_below(pial_sdf, 0.f, static_cast<int64_t>(std::ceil(4.0 / pvox)));
  if (pbox.voxels() == 0) throw InputError("", "pial SDF has no voxel inside the surface");
  const SdfField pial_field(pial_sdf, pbox, 0.0);
  const SdfField direction(white_sdf, wbox, options.pial_direction_sigma_mm);
  const PialInflator inflator(direction, pial_field, white_raw);
  const int64_t nv = static_cast<int64_t>(white.vertices.size());
  // Every pial vertex starts a small step out along the white surface's normal, so that where
  // the cortex vanishes (the medial wall) the pial surface is a thin offset of white that
  // contains it instead of coinciding with it. The repair may shrink the step, never to zero.
  const std::vector<Vec3> normals = fm.vertex_normals();
  constexpr double kMinOffset = 0.005, kWhiteYield = 0.5;
  std::vector<double> offset(nv, kPialOffset);
  std::vector<Vec3> start(nv);
  auto white_at = [&](int64_t i) {
    return Vec3{white.vertices[i][0], white.vertices[i][1], white.vertices[i][2]};
  };
  for (int64_t i = 0; i < nv; ++i) start[i] = white_at(i) + offset[i] * normals[i];
  std::vector<double> length(nv);
  std::vector<char> sulcus(nv, 0);
  Mesh pial = white;
  auto place = [&](int64_t i, double limit) {
    Vec3 p = start[i];
    double len = 0;
    PialInflator::Stop stop;
    if (limit > 0) p = inflator.walk(start[i], limit, len, stop);
    length[i] = len;
    pial.vertices[i] = {float(p[0]), float(p[1]), float(p[2])};
  };
  parallel_for(nv, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double len = 0;
      PialInflator::Stop stop;
      inflator.walk(start[i], options.max_thickness_mm, len, stop);
      sulcus[i] = stop == PialInflator::kSulcus;
      place(i, sulcus[i] ? len - options.sulcus_margin_mm : len);
    }
  }, 1024);
  out.pial_sulcus_stops = std::count(sulcus.begin(), sulcus.end(), 1);
  if (debug())
    std::fprintf(stderr, "DEVDEBUG pial walked t %.2f cpu %.2f\n", seconds_since(t0),
                 double(std::clock()) / CLOCKS_PER_SEC);

  // Repair: pull pial vertices back along their paths toward white where pial faces intersect
  // each other or white. At length zero a pial vertex is its white vertex plus the small
  // offset, which then halves; the fully retracted surface is a thin offset of the clean white
  // one, so every round moves toward a valid state. White and pial are checked as one mesh.
  Mesh both = combine(white, pial);
  IntersectionTracker both_si(both);
  if (debug())
    std::fprintf(stderr, "DEVDEBUG combined pairs %zu t %.2f cpu %.2f\n", both_si.pairs().size(),
                 seconds_since(t0), double(std::clock()) / CLOCKS_PER_SEC);
  const int32_t nf = static_cast<int32_t>(white.faces.size());
  auto pial_pairs_of = [&](const Pairs& all) {
    // Pial faces involved in anything: pial-pial pairs and white-pial crossings.
    Pairs pial_faces;
    for (const auto& [f, g] : all)
      for (int face : {f, g})
        if (face >= nf) pial_faces.emplace_back(face - nf, face - nf);
    return pial_faces;
  };
  {
    std::vector<char> touched(nv, 0);
    int round = 0;
    for (Pairs involved = pial_pairs_of(both_si.pairs());
         !involved.empty() && round < options.repair_rounds;
         involved = pial_pairs_of(both_si.pairs())) {
      ++round;
      const std::vector<char> mask = vertices_near_faces(fm, involved, round / 4);
      std::vector<char> moved(2 * nv, 0);
      parallel_for(nv, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          if (!mask[i]) continue;
          touched[i] = 1;
          moved[nv + i] = 1;
          if (length[i] <= 0) {
            if (offset[i] > kMinOffset) {
              offset[i] = std::max(kMinOffset, 0.5 * offset[i]);
            } else {
              // No room between white and pial: white pinches or touches itself here. White
              // gives way: a smoothing step toward its neighbours.
              Vec3 centroid{0, 0, 0};
              int count = 0;
              for (const int32_t* r = fm.ring_begin(i); r != fm.ring_end(i); ++r, ++count)
                centroid += white_at(*r);
              const Vec3 w = white_at(i) + (kWhiteYield / double(count)) * centroid -
                             kWhiteYield * white_at(i);
              white.vertices[i] = {float(w[0]), float(w[1]), float(w[2])};
              both.vertices[i] = white.vertices[i];
              moved[i] = 1;
              ++out.white_yielded;
            }
            start[i] = white_at(i) + offset[i] * normals[i];
          }
          place(i, 0.6 * length[i] - 0.05);
        }
      }, 1024);
      for (int64_t i = 0; i < nv; ++i) both.vertices[nv + i] = pial.vertices[i];
      both_si.update(both, moved);
    }
    out.pial_check.repair_rounds = round;
    out.pial_check.repaired_vertices = std::count(touched.begin(), touched.end(), 1);
  }
  out.seconds_pial = seconds_since(t0);
  report(progress, 0.85);

  // --- Checks, from the combined pairs, and thickness.
  t0 = Clock::now();
  Pairs white_pairs, pial_pairs;
  int64_t crossings = 0;
  for (const auto& [f, g] : both_si.pairs()) {
    if (g < nf) white_pairs.emplace_back(f, g);
    else if (f >= nf) pial_pairs.emplace_back(f - nf, g - nf);
    else ++crossings;
  }
  if (debug()) {
    int shown = 0;
    for (const auto& [f, g] : both_si.pairs())
      if (f < nf && g >= nf && shown++ < 8) {
        const auto& pf = pial.faces[g - nf];
        const auto& wf = white.faces[f];
        std::fprintf(stderr, "DEVDEBUG cross w%d (%d %d %d) p%d (%d %d %d) len %.3f %.3f %.3f off %.4f %.4f %.4f at %.2f %.2f %.2f\n", f, wf[0], wf[1], wf[2], g - nf, pf[0], pf[1], pf[2], length[pf[0]], length[pf[1]], length[pf[2]], offset[pf[0]], offset[pf[1]], offset[pf[2]], pial.vertices[pf[0]][0], pial.vertices[pf[0]][1], pial.vertices[pf[0]][2]);
      }
  }
  fill_check(white, white_pairs, out.white_check);
  fill_check(pial, pial_pairs, out.pial_check);
  // White is one closed surface: if it meets pial nowhere, all of it lies on one side of pial,
  // and one vertex tells which. Otherwise count exactly.
  if (crossings == 0) {
    int64_t deepest = 0;
    for (int64_t i = 1; i < nv; ++i)
      if (length[i] + offset[i] > length[deepest] + offset[deepest]) deepest = i;
    const MeshDistance to_pial(pial);
    out.white_vertices_outside_pial = to_pial.inside(white_at(deepest)) ? 0 : nv;
  } else {
    out.white_vertices_outside_pial = count_outside(white, pial);
  }
  out.white_outside_pial_percent = 100.0 * double(out.white_vertices_outside_pial) / double(nv);
  out.thickness = local_thickness(white, pial);
  out.seconds_checks = seconds_since(t0);

  report_problems("white", out.white_check, out.problems);
  report_problems("pial", out.pial_check, out.problems);
  if (crossings > 0)
    out.problems.push_back(std::to_string(crossings) +
                           " white-pial face pairs intersect after repair");
  if (out.white_vertices_outside_pial > 0)
    out.problems.push_back(std::to_string(out.white_vertices_outside_pial) +
                           " white vertices lie outside the pial surface");

  const VolumeGeometry geometry = volume_geometry_of(white_sdf, "");
  for (Mesh* m : {&white, &pial}) {
    m->hemi = hemi;
    m->geometry = geometry;
  }
  white.surface = "white";
  pial.surface = "pial";
  out.white = std::move(white);
  out.pial = std::move(pial);
  report(progress, 1.0);
  return out;
}

}  // namespace ddcsr
