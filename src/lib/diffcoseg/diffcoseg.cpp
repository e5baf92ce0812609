// DiffCoSeg orchestration: white flow, pial inflation, repair, checks, thickness.
#include "ddcsr/diffcoseg/diffcoseg.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

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
                                                          const std::vector<char>& mask) {
  // Faces that can meet a face with a marked vertex are those whose bounding boxes overlap
  // its box. The boxes of the marked faces go into a uniform grid (cells the size of a typical
  // edge); every face whose box touches an occupied cell joins the check. Exact predicates
  // then decide on that submesh.
  struct Box {
    float lo[3], hi[3];
  };
  auto box_of = [&](const std::array<int32_t, 3>& f) {
    Box b;
    for (int a = 0; a < 3; ++a) {
      b.lo[a] = std::min({mesh.vertices[f[0]][a], mesh.vertices[f[1]][a], mesh.vertices[f[2]][a]});
      b.hi[a] = std::max({mesh.vertices[f[0]][a], mesh.vertices[f[1]][a], mesh.vertices[f[2]][a]});
    }
    return b;
  };
  std::vector<Box> marked;
  double extent = 0;
  for (const auto& f : mesh.faces)
    if (mask[f[0]] || mask[f[1]] || mask[f[2]]) {
      marked.push_back(box_of(f));
      for (int a = 0; a < 3; ++a)
        extent = std::max(extent, double(marked.back().hi[a] - marked.back().lo[a]));
    }
  if (marked.empty()) return {};
  const double cell = std::max(extent, 1e-3);
  auto key = [](int64_t x, int64_t y, int64_t z) {
    return ((x + (1 << 20)) << 42) ^ ((y + (1 << 20)) << 21) ^ (z + (1 << 20));
  };
  auto cell_range = [&](const Box& b, int64_t lo[3], int64_t hi[3]) {
    for (int a = 0; a < 3; ++a) {
      lo[a] = static_cast<int64_t>(std::floor(b.lo[a] / cell));
      hi[a] = static_cast<int64_t>(std::floor(b.hi[a] / cell));
    }
  };
  // A marked box is at most one cell wide, so it touches at most 2 x 2 x 2 cells.
  std::vector<int64_t> cells;
  for (const Box& b : marked) {
    int64_t lo[3], hi[3];
    cell_range(b, lo, hi);
    for (int64_t z = lo[2]; z <= hi[2]; ++z)
      for (int64_t y = lo[1]; y <= hi[1]; ++y)
        for (int64_t x = lo[0]; x <= hi[0]; ++x) cells.push_back(key(x, y, z));
  }
  std::sort(cells.begin(), cells.end());
  cells.erase(std::unique(cells.begin(), cells.end()), cells.end());
  // Cell coordinates once per vertex; a face's cells span those of its corners (floor is
  // monotone, so this is the cell range of its box).
  std::vector<std::array<int32_t, 3>> vcell(mesh.vertices.size());
  parallel_for(
      static_cast<int64_t>(mesh.vertices.size()),
      [&](int64_t begin, int64_t end) {
        for (int64_t v = begin; v < end; ++v)
          for (int a = 0; a < 3; ++a)
            vcell[v][a] = static_cast<int32_t>(std::floor(mesh.vertices[v][a] / cell));
      },
      16384);
  Mesh sub;
  std::vector<int32_t> vmap(mesh.vertices.size(), -1);
  std::vector<int> fmap;
  for (size_t f = 0; f < mesh.faces.size(); ++f) {
    const auto& t = mesh.faces[f];
    int64_t lo[3], hi[3];
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min({vcell[t[0]][a], vcell[t[1]][a], vcell[t[2]][a]});
      hi[a] = std::max({vcell[t[0]][a], vcell[t[1]][a], vcell[t[2]][a]});
    }
    bool near = false;
    // Long faces span many cells; cap the scan and include them anyway.
    if ((hi[0] - lo[0] + 1) * (hi[1] - lo[1] + 1) * (hi[2] - lo[2] + 1) > 64) near = true;
    for (int64_t z = lo[2]; z <= hi[2] && !near; ++z)
      for (int64_t y = lo[1]; y <= hi[1] && !near; ++y)
        for (int64_t x = lo[0]; x <= hi[0] && !near; ++x)
          near = std::binary_search(cells.begin(), cells.end(), key(x, y, z));
    if (!near) continue;
    std::array<int32_t, 3> face;
    for (int k = 0; k < 3; ++k) {
      int32_t& m = vmap[t[k]];
      if (m < 0) {
        m = static_cast<int32_t>(sub.vertices.size());
        sub.vertices.push_back(mesh.vertices[t[k]]);
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

using Pairs = std::vector<std::pair<int, int>>;

void check_volume(const Volume& v, const std::string& what) {
  if (v.nvols != 1 || v.voxels_per_volume() <= 0 ||
      v.data.size() != static_cast<size_t>(v.voxels_per_volume()))
    throw InputError("", what + " must be a non-empty 3D volume");
  for (float s : v.data)
    if (!std::isfinite(s)) throw InputError("", what + " holds a non-finite value");
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
    Pairs kept;
    for (const auto& pr : pairs_) {
      bool touched = false;
      for (int face : {pr.first, pr.second})
        for (int32_t v : mesh.faces[face]) touched |= moved[v] != 0;
      if (!touched) kept.push_back(pr);
    }
    const Pairs fresh = local_self_intersections(mesh, moved);
    kept.insert(kept.end(), fresh.begin(), fresh.end());
    std::sort(kept.begin(), kept.end());
    kept.erase(std::unique(kept.begin(), kept.end()), kept.end());
    pairs_.swap(kept);
  }

 private:
  Pairs pairs_;
};

// White and pial as one mesh (pial vertices and faces after white's), so one check finds the
// self-intersections of each and the places where one passes through the other. A pial vertex
// that coincides with its white vertex (`copy`) is that white vertex in the combined mesh, so
// faces meeting there are judged by the adjacency rules (touching at a shared corner is not an
// intersection) rather than as strangers that happen to share a point.
void set_combined_faces(const Mesh& white, const Mesh& pial, const std::vector<char>& copy,
                        Mesh& both) {
  const int32_t nv = static_cast<int32_t>(white.vertices.size());
  both.faces.resize(white.faces.size() + pial.faces.size());
  std::copy(white.faces.begin(), white.faces.end(), both.faces.begin());
  for (size_t f = 0; f < pial.faces.size(); ++f)
    for (int k = 0; k < 3; ++k) {
      const int32_t v = pial.faces[f][k];
      both.faces[white.faces.size() + f][k] = copy[v] ? v : v + nv;
    }
}
Mesh combine(const Mesh& white, const Mesh& pial, const std::vector<char>& copy) {
  Mesh both;
  both.vertices = white.vertices;
  both.vertices.insert(both.vertices.end(), pial.vertices.begin(), pial.vertices.end());
  set_combined_faces(white, pial, copy, both);
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
    if (d3 >= 0 && d4 <= d3)
      q = b;
    else if (d6 >= 0 && d5 <= d6)
      q = c;
    else if (vc <= 0 && d1 >= 0 && d3 <= 0)
      q = a + (d1 / (d1 - d3)) * ab;
    else if (vb <= 0 && d2 >= 0 && d6 <= 0)
      q = a + (d2 / (d2 - d6)) * ac;
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
  thread_local std::vector<std::pair<double, int32_t>> frontier;
  frontier.clear();
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
  parallel_for(
      n,
      [&](int64_t begin, int64_t end) {
        std::vector<int32_t> visited;
        for (int64_t i = begin; i < end; ++i) {
          const Vec3 w{white.vertices[i][0], white.vertices[i][1], white.vertices[i][2]};
          const Vec3 p{pial.vertices[i][0], pial.vertices[i][1], pial.vertices[i][2]};
          const double to_pial = local_distance(pial, vf, w, int32_t(i), visited);
          const double to_white = local_distance(white, vf, p, int32_t(i), visited);
          thickness[i] = static_cast<float>(0.5 * (to_pial + to_white));
        }
      },
      2048);
  return thickness;
}

// Whether p lies inside the closed mesh: parity of the crossings of rays in three fixed,
// unremarkable directions (a ray grazing an edge is a measure-zero accident), majority vote.
bool inside_by_rays(const Mesh& mesh, const Vec3& p) {
  static const Vec3 kDirs[3] = {normalized(Vec3{0.5773, 0.4163, 0.7023}),
                                normalized(Vec3{-0.6419, 0.7318, -0.2289}),
                                normalized(Vec3{0.1237, -0.8412, 0.5263})};
  int votes = 0;
  for (const Vec3& d : kDirs) {
    int crossings = 0;
    for (const auto& f : mesh.faces) {
      auto at = [&](int32_t v) {
        return Vec3{mesh.vertices[v][0], mesh.vertices[v][1], mesh.vertices[v][2]};
      };
      const Vec3 a = at(f[0]), e1 = at(f[1]) - a, e2 = at(f[2]) - a;
      const Vec3 h = cross(d, e2);
      const double det = dot(e1, h);
      if (std::abs(det) < 1e-14) continue;
      const Vec3 t = p - a;
      const double u = dot(t, h) / det;
      if (u < 0 || u > 1) continue;
      const Vec3 q = cross(t, e1);
      const double v = dot(d, q) / det;
      if (v < 0 || u + v > 1) continue;
      if (dot(e2, q) / det > 0) ++crossings;
    }
    votes += crossings % 2;
  }
  return votes >= 2;
}

// White vertices outside the pial surface, by exact inside tests (ray votes); only needed when
// the surfaces cross somewhere.
int64_t count_outside(const Mesh& white, const Mesh& pial) {
  const MeshDistance to_pial(pial);
  const int64_t n = static_cast<int64_t>(white.vertices.size());
  std::vector<char> out(n, 0);
  parallel_for(
      n,
      [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const Vec3 w{white.vertices[i][0], white.vertices[i][1], white.vertices[i][2]};
          const MeshDistance::Closest c = to_pial.closest(w);
          // On the surface is not outside; the pseudo-normal sign may err only near crossings,
          // so any doubt goes to the ray vote.
          if (c.distance > 1e-5 && !to_pial.inside(w)) out[i] = 1;
        }
      },
      1024);
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
      !(options.final_time >= 0) || !(options.flow_edge_mm > 0) || options.repair_rounds < 0 ||
      options.pial_repair_rounds < 0 || !(options.max_area_factor > 0) ||
      !(options.max_folded_fraction > 0) || options.membrane_rounds < 0)
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
  // Room around the white matter for the smoothing and the exterior seeds of the growth
  // directions; replicated edges beyond it only blur what lies far from the surface.
  const int64_t pad = static_cast<int64_t>(
      std::ceil((std::max(1.5 * sigma_max, options.growth_outside_depth_mm) + 2.0) / wvox));
  const VoxelBox wbox = box_below(white_sdf, 0.f, pad);
  if (wbox.voxels() == 0) throw InputError("", "white SDF has no voxel inside the surface");
  const double white_area = level_set_area(white_sdf);
  const double area_limit = options.max_area_factor * std::max(white_area, 1.0);
  double edge = std::sqrt(2.0 * white_area / (std::sqrt(3.0) * double(options.target_vertices)));
  edge = std::max(edge, 0.05 * wvox);

  // Step (mm) of the pial surface's start out of white along the normals.
  constexpr double kPialOffset = 0.02;
  WhiteStats stats;
  const size_t nlevels = options.sigmas_mm.size();
  std::unique_ptr<FlowMesh> flow_mesh;
  const int64_t inside_raw =
      std::count_if(white_sdf.data.begin(), white_sdf.data.end(), [](float v) { return v < 0; });
  for (size_t k = 0; k < nlevels; ++k) {
    const double sigma = options.sigmas_mm[k];
    SdfField field(white_sdf, wbox, sigma);
    // A smoothing that loses half of the white matter (a thin shell, a ribbon: nothing like a
    // brain, but possible from a network) would collapse the surface; skip such levels.
    if (k + 1 < nlevels) {
      int64_t inside = 0;
      const auto& d = field.dims();
      for (int64_t z = 0; z < d[2]; ++z)
        for (int64_t y = 0; y < d[1]; ++y)
          for (int64_t x = 0; x < d[0]; ++x) inside += field.value(x, y, z) < 0;
      if (2 * inside < inside_raw) continue;
    }
    field.add_growth_directions(options.growth_depth_mm, options.growth_outside_depth_mm,
                                options.growth_neck_mm);
    const double level_edge = std::max({edge, options.flow_edge_mm, 0.5 * sigma});
    if (!flow_mesh) flow_mesh = std::make_unique<FlowMesh>(place_template(white_sdf, level_edge));
    flow_mesh->remesh(level_edge);
    flow_to_level_set(*flow_mesh, field, level_edge, options.level_time,
                      k + 1 < nlevels ? 0.01 : 0.002, options, stats, area_limit);
    report(progress, 0.6 * double(k + 1) / double(nlevels));
  }
  FlowMesh& fm = *flow_mesh;
  const SdfField white_raw(white_sdf, wbox, 0.0);
  // Refine to the requested vertex count (the area is known now), follow the unsmoothed SDF
  // briefly at full resolution, then settle the vertices onto the level set.
  edge = std::max(0.05 * wvox,
                  std::sqrt(2.0 * fm.area() / (std::sqrt(3.0) * double(options.target_vertices))));
  for (int it = 0; it < 2; ++it) {
    fm.remesh(edge);
    fm.relax(0.5, true);
  }
  flow_to_level_set(fm, white_raw, edge, options.final_time, 0.01, options, stats, area_limit);
  for (int it = 0; it < options.projection_iterations; ++it) {
    if (it + 2 < options.projection_iterations) fm.relax(0.3, true);
    project_to_level_set(fm, white_raw, 1, 0.3 * edge);
  }
  out.flow_folded_faces = stats.folded_faces;
  if (stats.stopped_levels > 0)
    out.problems.push_back("the white flow was stopped " + std::to_string(stats.stopped_levels) +
                           " time(s) because the surface folded onto itself (a fragmented white "
                           "SDF); the white surface follows it only roughly");

  // Local repair of white self-intersections left by the discretisation, and of spikes
  // (vertices whose normal points behind one of their own faces: the pial surface, which
  // starts a small step out along the normals, would cross that face). Smooth the involved
  // vertices and a growing neighbourhood, re-projecting gently in the first rounds.
  Mesh white = fm.to_mesh();
  std::vector<double> min_cosine;
  fm.offset_directions(&min_cosine);
  auto spikes = [&]() {
    Pairs bad;
    for (int32_t f = 0; f < static_cast<int32_t>(fm.tri.size()); ++f)
      for (int32_t v : fm.tri[f])
        if (min_cosine[v] <= 0.02) {
          bad.emplace_back(f, f);
          break;
        }
    return bad;
  };
  IntersectionTracker white_si(white);
  {
    std::vector<char> touched(fm.vertex_slots(), 0);
    int64_t repaired_before_renumbering = 0;
    std::vector<int32_t> ring;
    // After the vertices in `mask` moved: the white mesh, the offset directions of the moved
    // vertices and their neighbours (only those change shape), and the intersections follow.
    auto moved = [&](const std::vector<char>& mask) {
      std::vector<char> changed = mask;
      for (int32_t v = 0; v < fm.vertex_slots(); ++v)
        if (mask[v]) {
          touched[v] = 1;
          white.vertices[v] = {float(fm.pos[v][0]), float(fm.pos[v][1]), float(fm.pos[v][2])};
          fm.one_ring(v, ring);
          for (int32_t w : ring) changed[w] = 1;
        }
      for (int32_t v = 0; v < fm.vertex_slots(); ++v)
        if (changed[v]) fm.offset_direction(v, min_cosine[v]);
      white_si.update(white, mask);
    };
    int round = 0;
    // Spikes alone get a limited number of rounds; the pial repair copes with any that remain.
    int spike_rounds = 0;
    for (Pairs bad = spikes(); (!white_si.pairs().empty() || (!bad.empty() && spike_rounds < 20)) &&
                               round < options.repair_rounds;
         bad = spikes()) {
      ++round;
      if (white_si.pairs().empty()) ++spike_rounds;
      bad.insert(bad.end(), white_si.pairs().begin(), white_si.pairs().end());
      const std::vector<char> mask = vertices_near_faces(fm, bad, 1 + round / 4);
      // Escalating: first Taubin's lambda|mu smoothing, which removes folds without shrinking
      // thin blades of white matter, with a gentle re-projection; then plain Laplacian
      // smoothing, re-projected; at last Laplacian smoothing alone over a growing region,
      // which flattens any tangle.
      const int stage = 3 * round / std::max(1, options.repair_rounds);
      for (int it = 0; it < 2; ++it) {
        fm.relax(0.5, false, &mask);
        if (stage == 0) fm.relax(-0.53, false, &mask);
      }
      if (stage < 2) project_to_level_set(fm, white_raw, 1, 0.05 * edge, &mask);
      moved(mask);
    }
    // What the rounds above leave are tangles (faces crumpled into each other, off the level
    // set, some collapsed to a speck) that a couple of smoothing steps per round only creep
    // over. Solve them away: the tangle and the surface around it, in rings and in millimetres,
    // relax to the membrane spanning the region's boundary; the region widens each round.
    int membrane = 0;
    for (; !white_si.pairs().empty() && membrane < options.membrane_rounds; ++membrane) {
      std::vector<char> mask =
          vertices_around_faces(fm, white_si.pairs(), 2 + membrane, 0.5 * (1 + membrane));
      // A membrane over most of the surface would flatten the hemisphere: leave it to the report.
      if (std::count(mask.begin(), mask.end(), 1) > fm.num_vertices() / 4) break;
      relax_to_membrane(fm, mask);
      if (remesh_crushed_region(fm, mask, edge) > 0) {
        // Renumbered: the white mesh, offset directions and intersections from scratch. The
        // count of repaired vertices carries over (a vertex repaired on both sides counts twice).
        repaired_before_renumbering += std::count(touched.begin(), touched.end(), 1);
        white = fm.to_mesh();
        fm.offset_directions(&min_cosine);
        white_si = IntersectionTracker(white);
        touched = mask;
      } else {
        moved(mask);
      }
    }
    out.white_check.repair_rounds = round + membrane;
    out.white_check.repaired_vertices =
        repaired_before_renumbering + std::count(touched.begin(), touched.end(), 1);
  }
  out.seconds_white = seconds_since(t0);
  report(progress, 0.7);

  // --- Pial surface: inflate the white mesh.
  t0 = Clock::now();
  const Vec3 psp = pial_sdf.spacing();
  const double pvox = std::min({psp[0], psp[1], psp[2]});
  const VoxelBox pbox = box_below(pial_sdf, 0.f, static_cast<int64_t>(std::ceil(4.0 / pvox)));
  if (pbox.voxels() == 0) throw InputError("", "pial SDF has no voxel inside the surface");
  const SdfField pial_field(pial_sdf, pbox, 0.0);
  // The walks follow the signed distance of the white surface as made, not the white SDF. The
  // two differ where the white flow spans the neck of a thin gyrus it did not enter: there the
  // map's field points across the gyrus' white blade toward its walls, so walks from the neck
  // end on the walls and the pial surface misses the crown (on the procedural phantoms' true
  // maps pial ASSD 0.84 -> 0.62 mm); the surface's own field points up the gyrus.
  SignedDistanceOptions band;
  band.max_distance = options.max_thickness_mm + 3 * options.pial_direction_sigma_mm + 2 * wvox;
  const VoxelBox walk_box =
      box_below(white_sdf, 0.f, static_cast<int64_t>(std::ceil(band.max_distance / wvox)));
  const Volume white_distance = signed_distance_volume(white, crop_grid(white_sdf, walk_box), band);
  const SdfField direction(white_distance, whole_box(white_distance),
                           options.pial_direction_sigma_mm);
  const SdfField white_distance_raw(white_distance, whole_box(white_distance), 0.0);
  const PialInflator inflator(direction, pial_field, white_distance_raw);
  const int64_t nv = static_cast<int64_t>(white.vertices.size());
  // Every pial vertex starts a small step out of white (along a direction that clears every
  // face around the vertex), so that where the cortex vanishes (the medial wall) the pial
  // surface is a thin offset of white that contains it instead of coinciding with it. The
  // repair may shrink the step to 1e-4 mm; where even that finds no room (white touches
  // itself), white gives way inward; only as a last resort the pial vertex is the white vertex.
  const std::vector<Vec3> normals = fm.offset_directions();
  constexpr double kMinOffset = 1e-4, kYield = 0.02;
  constexpr int kMaxYields = 10;
  // Pial repair: retractions of one vertex by a fifth before halving, and rounds per widening
  // of the ring pulled back around the faces that cross (XA30 / Philips and true maps of the
  // procedural phantoms in bench/README.md).
  constexpr int kGentleRetractions = 4, kRingEvery = 8;
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
  parallel_for(
      nv,
      [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          double len = 0;
          PialInflator::Stop stop;
          inflator.walk(start[i], options.max_thickness_mm, len, stop);
          sulcus[i] = stop == PialInflator::kSulcus;
          place(i, sulcus[i] ? len - options.sulcus_margin_mm : len);
        }
      },
      1024);
  out.pial_sulcus_stops = std::count(sulcus.begin(), sulcus.end(), 1);

  // Repair: pull pial vertices back along their paths toward white where pial faces intersect
  // each other or white. At length zero a pial vertex is its white vertex plus the small
  // offset, which then halves; the fully retracted surface is a thin offset of the clean white
  // one, so every round moves toward a valid state. White and pial are checked as one mesh.
  std::vector<char> copy(nv, 0);
  Mesh both = combine(white, pial, copy);
  IntersectionTracker both_si(both);
  const int32_t nf = static_cast<int32_t>(white.faces.size());
  // A pial face whose three vertices are their white vertices is a copy of a white face: in
  // the combined mesh it is that face twice, which is no intersection. Every other pair with a
  // copy is real (a copy meets what its white face meets) and counts, as it would in a check
  // of the pial surface alone.
  auto is_copy = [&](int face) {
    if (face < nf) return false;
    for (int32_t v : pial.faces[face - nf])
      if (!copy[v]) return false;
    return true;
  };
  auto mirrored = [&](int f, int g) {  // f < g
    return f < nf && g == f + nf && is_copy(g);
  };
  auto pial_pairs_of = [&](const Pairs& all) {
    // Pial faces involved in anything, except copies (which cannot retract further).
    Pairs pial_faces;
    for (const auto& [f, g] : all) {
      if (mirrored(f, g)) continue;
      for (int face : {f, g})
        if (face >= nf && !is_copy(face)) pial_faces.emplace_back(face - nf, face - nf);
    }
    return pial_faces;
  };
  {
    std::vector<char> touched(nv, 0);
    int round = 0;
    // White vertices that gave way, and those that may not (giving way made white cross
    // itself: a blade of white matter thinner than the step).
    std::vector<int> yielded(nv, 0);
    std::vector<char> no_yield(nv, 0);
    std::vector<int> retractions(nv, 0);
    const std::vector<std::array<float, 3>> white_before = white.vertices;
    for (;;) {
      const Pairs involved = pial_pairs_of(both_si.pairs());
      std::vector<char> restore(nv, 0);
      bool any_restore = false;
      for (const auto& [f, g] : both_si.pairs())
        if (g < nf)
          for (int face : {f, g})
            for (int32_t v : white.faces[face])
              if (yielded[v]) restore[v] = any_restore = true;
      if ((involved.empty() && !any_restore) || round >= options.pial_repair_rounds) break;
      ++round;
      std::vector<char> mask = involved.empty()
                                   ? std::vector<char>(nv, 0)
                                   : vertices_near_faces(fm, involved, 1 + round / kRingEvery);
      // A vertex at white goes further (shrinks its offset, moves white, copies white) only
      // for a pair that no retraction can undo: while a longer walk of the pair may still be
      // pulled back, it waits. Otherwise the short walks of a bank met by a long one from the
      // other bank ended as copies of white before the long one had retracted enough.
      std::vector<char> may_go_beyond(nv, 0);
      for (const auto& [f, g] : both_si.pairs()) {
        if (mirrored(f, g)) continue;
        bool retractable = false;
        for (int face : {f, g})
          if (face >= nf)
            for (int32_t v : pial.faces[face - nf]) retractable |= length[v] > 0;
        if (retractable) continue;
        for (int face : {f, g})
          if (face >= nf)
            for (int32_t v : pial.faces[face - nf]) may_go_beyond[v] = 1;
      }
      // Only the vertices of the faces that still intersect may go beyond a full retraction
      // (shrink the offset, move white, coincide with white); the rings around them retract.
      // Otherwise a ring vertex already retracted, far from any intersection, went on to
      // coincide with white as the rings widened: most of the zero-thickness vertices on the
      // real scans (XA30 10 / 254 -> 4 / 18, Philips 113 / 0 -> 9 / 0).
      const std::vector<char> core =
          involved.empty() ? std::vector<char>(nv, 0) : vertices_near_faces(fm, involved, 0);
      for (int64_t i = 0; i < nv; ++i) mask[i] |= restore[i];
      std::vector<char> moved(2 * nv, 0);
      parallel_for(
          nv,
          [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
              if (!mask[i]) continue;
              touched[i] = 1;
              moved[nv + i] = 1;
              if (restore[i]) {
                white.vertices[i] = white_before[i];
                yielded[i] = 0;
                no_yield[i] = 1;
                moved[i] = 1;
              } else if (length[i] <= 0 && core[i] && may_go_beyond[i]) {
                if (offset[i] > kMinOffset) {
                  offset[i] = std::max(kMinOffset, 0.5 * offset[i]);
                } else if (!no_yield[i] && yielded[i] < kMaxYields) {
                  // No room between white and pial: white nearly touches itself here (a sulcus
                  // closed below voxel size). White gives way, a little inward.
                  const Vec3 w = white_at(i) - kYield * normals[i];
                  white.vertices[i] = {float(w[0]), float(w[1]), float(w[2])};
                  ++yielded[i];
                  moved[i] = 1;
                } else {
                  copy[i] = 1;
                  moved[i] = 1;
                }
              }
              if (moved[i]) both.vertices[i] = white.vertices[i];
              if (copy[i]) offset[i] = 0;
              start[i] = white_at(i) + offset[i] * normals[i];
              // Gently at first (most crossings are two banks overlapping by a little), then
              // by halves, so that a crumpled white surface still clears in few rounds.
              place(i, retractions[i]++ < kGentleRetractions ? 0.8 * length[i] - 0.05
                                                             : 0.5 * length[i] - 0.1);
            }
          },
          1024);
      for (int64_t i = 0; i < nv; ++i) both.vertices[nv + i] = pial.vertices[i];
      set_combined_faces(white, pial, copy, both);
      both_si.update(both, moved);
    }
    out.white_yielded_vertices =
        std::count_if(yielded.begin(), yielded.end(), [](int y) { return y > 0; });
    out.pial_check.repair_rounds = round;
    out.pial_check.repaired_vertices = std::count(touched.begin(), touched.end(), 1);
  }
  out.seconds_pial = seconds_since(t0);
  report(progress, 0.85);

  // --- Checks, from the combined pairs, and thickness.
  t0 = Clock::now();
  Pairs white_pairs, pial_pairs;
  int64_t crossings = 0;
  out.pial_zero_thickness_vertices = std::count(copy.begin(), copy.end(), 1);
  for (const auto& [f, g] : both_si.pairs()) {
    if (g < nf)
      white_pairs.emplace_back(f, g);
    else if (mirrored(f, g))
      continue;
    else if (f >= nf)
      pial_pairs.emplace_back(f - nf, g - nf);
    else
      ++crossings;
  }
  fill_check(white, white_pairs, out.white_check);
  fill_check(pial, pial_pairs, out.pial_check);
  // White is one closed surface: if it crosses pial nowhere (touching where pial copies it is
  // no crossing), all of it lies on one side of pial, and one vertex tells which. Otherwise
  // count exactly. White vertices on the pial surface are not outside it.
  if (crossings == 0) {
    int64_t deepest = 0;
    for (int64_t i = 1; i < nv; ++i)
      if (length[i] + offset[i] > length[deepest] + offset[deepest]) deepest = i;
    out.white_vertices_outside_pial = inside_by_rays(pial, white_at(deepest)) ? 0 : nv;
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
  if (out.pial_zero_thickness_vertices > 0)
    out.problems.push_back(std::to_string(out.pial_zero_thickness_vertices) +
                           " white vertices lie on the pial surface (zero thickness where white "
                           "touches itself)");

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

std::array<HemisphereSurfaces, 2> reconstruct_hemispheres(
    const Volume& lh_white_sdf, const Volume& lh_pial_sdf, const Volume& rh_white_sdf,
    const Volume& rh_pial_sdf, const DiffCoSegOptions& options, const ProgressFn& progress) {
  std::array<HemisphereSurfaces, 2> out;
  std::array<double, 2> done{0, 0};
  std::mutex mutex;
  auto part = [&](int h) -> ProgressFn {
    if (!progress) return {};
    return [&, h](double f) {
      std::lock_guard<std::mutex> lock(mutex);
      done[h] = f;
      progress(0.5 * (done[0] + done[1]));
    };
  };
  std::exception_ptr error;
  std::thread rh([&] {
    try {
      out[1] = reconstruct_hemisphere(rh_white_sdf, rh_pial_sdf, "rh", options, part(1));
    } catch (...) {
      error = std::current_exception();
    }
  });
  try {
    out[0] = reconstruct_hemisphere(lh_white_sdf, lh_pial_sdf, "lh", options, part(0));
  } catch (...) {
    rh.join();
    throw;
  }
  rh.join();
  if (error) std::rethrow_exception(error);
  return out;
}

}  // namespace ddcsr
