// White surface: template placement, coarse-to-fine SDF flows, projection.
#include <algorithm>
#include <cmath>
#include <limits>

#include "ddcsr/error.h"
#include "ddcsr/threads.h"
#include "diffcoseg/stages.h"
#include "diffcoseg/vec.h"

namespace ddcsr::diffcoseg {

namespace {

// Eigen-decomposition of a symmetric 3x3 matrix by cyclic Jacobi rotations: eigenvalues in
// `values`, eigenvectors in the columns of `vectors`.
void symmetric_eigen(double a[3][3], double values[3], double vectors[3][3]) {
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) vectors[r][c] = r == c;
  for (int sweep = 0; sweep < 50; ++sweep) {
    const double off = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2];
    if (off < 1e-30) break;
    for (int p = 0; p < 2; ++p)
      for (int q = p + 1; q < 3; ++q) {
        if (std::abs(a[p][q]) < 1e-300) continue;
        const double theta = 0.5 * (a[q][q] - a[p][p]) / a[p][q];
        const double t =
            (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < 3; ++k) {  // A <- A J
          const double akp = a[k][p], akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (int k = 0; k < 3; ++k) {  // A <- J^T A
          const double apk = a[p][k], aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (int k = 0; k < 3; ++k) {
          const double vkp = vectors[k][p], vkq = vectors[k][q];
          vectors[k][p] = c * vkp - s * vkq;
          vectors[k][q] = s * vkp + c * vkq;
        }
      }
  }
  for (int i = 0; i < 3; ++i) values[i] = a[i][i];
}

}  // namespace

Mesh place_template(const Volume& white_sdf, double edge_mm) {
  // Moments of the inside voxels in scanner RAS.
  double sum[3] = {0, 0, 0}, outer[3][3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
  int64_t n = 0;
  for (int64_t k = 0; k < white_sdf.dims[2]; ++k)
    for (int64_t j = 0; j < white_sdf.dims[1]; ++j)
      for (int64_t i = 0; i < white_sdf.dims[0]; ++i) {
        if (!(white_sdf.at(i, j, k) < 0)) continue;
        const Vec3 p = white_sdf.voxel_to_ras({double(i), double(j), double(k)});
        for (int r = 0; r < 3; ++r) {
          sum[r] += p[r];
          for (int c = 0; c < 3; ++c) outer[r][c] += p[r] * p[c];
        }
        ++n;
      }
  if (n == 0) throw InputError("", "white SDF has no voxel inside the surface");
  Vec3 centre;
  for (int r = 0; r < 3; ++r) centre[r] = sum[r] / double(n);
  double cov[3][3], values[3], axes[3][3];
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) cov[r][c] = outer[r][c] / double(n) - centre[r] * centre[c];
  symmetric_eigen(cov, values, axes);
  // Keep the frame right-handed so the faces stay counter-clockwise seen from outside.
  const double det = axes[0][0] * (axes[1][1] * axes[2][2] - axes[1][2] * axes[2][1]) -
                     axes[0][1] * (axes[1][0] * axes[2][2] - axes[1][2] * axes[2][0]) +
                     axes[0][2] * (axes[1][0] * axes[2][1] - axes[1][1] * axes[2][0]);
  if (det < 0)
    for (int r = 0; r < 3; ++r) axes[r][0] = -axes[r][0];
  const Vec3 spacing = white_sdf.spacing();
  const double voxel = std::min({spacing[0], spacing[1], spacing[2]});
  // A solid ellipsoid with semi-axis a has variance a^2/5 along it: the template is the
  // ellipsoid with the white matter's second moments.
  double semi[3];
  for (int a = 0; a < 3; ++a) semi[a] = std::max(std::sqrt(5.0 * std::max(0.0, values[a])), voxel);
  // Subdivisions so that the icosphere's edges (about 1.1 r / 2^s at radius r) match edge_mm.
  const double r = std::max({semi[0], semi[1], semi[2]});
  int subdivisions = 1;
  while (subdivisions < 7 && 1.1 * r / std::pow(2.0, subdivisions) > edge_mm) ++subdivisions;
  Mesh mesh = make_icosphere(subdivisions, 1.0);
  for (auto& v : mesh.vertices) {
    Vec3 p = centre;
    for (int a = 0; a < 3; ++a)
      for (int row = 0; row < 3; ++row) p[row] += axes[row][a] * semi[a] * v[a];
    v = {float(p[0]), float(p[1]), float(p[2])};
  }
  return mesh;
}

double level_set_area(const Volume& sdf) {
  const Vec3 spacing = sdf.spacing();
  const double h = std::cbrt(spacing[0] * spacing[1] * spacing[2]);
  int64_t shell = 0;
  for (float s : sdf.data)
    if (std::abs(s) < 0.5 * h) ++shell;
  // The shell |s| < h/2 of a distance function has volume area * h.
  return double(shell) * spacing[0] * spacing[1] * spacing[2] / h;
}

namespace {

// Velocity of the flow to the zero level set of `field`, a stationary field. Close to the
// surface (|s| below `growth_reach_mm`) it is the Newton field -s grad s / |grad s|^2, which
// converges onto the level set like exp(-t). Farther away it follows the field's growth directions
// (geodesic, see SdfField::add_growth_directions): a surface spanning the neck of a thin
// gyrus, where the nearest-surface direction only points at the gyrus' walls, thus still
// advances along the gyrus, and a surface over the mouth of a sulcus descends into it. Speed
// |s| / growth_tau, clamped.
inline Vec3 velocity(const SdfField& field, const Vec3& x, const DiffCoSegOptions& o) {
  Vec3 g, d;
  const double s = field.sample(x, &g, field.has_growth() ? &d : nullptr);
  const double g2 = std::max(dot(g, g), 0.25);
  Vec3 v = (-s / g2) * g;
  if (field.has_growth()) {
    const double dn = norm(d);
    const double w = dn > 0.5 ? std::min(1.0, std::abs(s) / o.growth_reach_mm) : 0.0;
    if (w > 0) v = (1 - w) * v + (w * std::abs(s) / (o.growth_tau * dn)) * d;
  }
  const double speed = norm(v);
  if (speed > o.max_speed) v = (o.max_speed / speed) * v;
  return v;
}

std::vector<Vec3> face_normals(const FlowMesh& mesh) {
  std::vector<Vec3> n(mesh.tri.size());
  parallel_for(static_cast<int64_t>(mesh.tri.size()), [&](int64_t b, int64_t e) {
    for (int64_t f = b; f < e; ++f) {
      const auto& t = mesh.tri[f];
      n[f] = cross(mesh.pos[t[1]] - mesh.pos[t[0]], mesh.pos[t[2]] - mesh.pos[t[0]]);
    }
  });
  return n;
}

}  // namespace

void flow_to_level_set(FlowMesh& mesh, const SdfField& field, double edge, double duration,
                       double settled_fraction, const DiffCoSegOptions& options, WhiteStats& stats,
                       double area_limit_mm2) {
  const double voxel = field.min_spacing();
  double elapsed = 0;
  while (elapsed < duration - 1e-9) {
    const double interval = std::min(options.remesh_interval, duration - elapsed);
    FlowMesh before = mesh;
    const std::vector<double> shortest = mesh.shortest_edges();
    const std::vector<Vec3> normals_before = face_normals(mesh);
    const int64_t nv = mesh.vertex_slots();
    std::vector<double> moved(nv, 0.0);
    parallel_for(
        nv,
        [&](int64_t begin, int64_t end) {
          for (int64_t v = begin; v < end; ++v) {
            const double max_move =
                options.max_step_fraction * std::max(1e-3, std::min(shortest[v], voxel));
            Vec3 x = mesh.pos[v];
            double t = 0;
            for (int steps = 0; t < interval - 1e-12 && steps < 1000; ++steps) {
              const Vec3 k1 = velocity(field, x, options);
              const double speed = norm(k1);
              if (speed < 1e-6) break;
              double dt = interval - t;
              if (speed * dt > max_move) dt = max_move / speed;
              const Vec3 k2 = velocity(field, x + (0.5 * dt) * k1, options);
              const Vec3 k3 = velocity(field, x + (0.5 * dt) * k2, options);
              const Vec3 k4 = velocity(field, x + dt * k3, options);
              x += (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
              t += dt;
            }
            moved[v] = norm(x - mesh.pos[v]);
            mesh.pos[v] = x;
          }
        },
        2048);
    // Faces that turned over: the discrete map folded where the flow squeezes the surface
    // faster than the step control saw. Smoothing their neighbourhood unfolds them before the
    // fold can grow.
    const std::vector<Vec3> normals_after = face_normals(mesh);
    std::vector<std::pair<int, int>> folded;
    for (size_t f = 0; f < normals_after.size(); ++f)
      if (dot(normals_before[f], normals_after[f]) < 0) folded.emplace_back(int(f), int(f));
    stats.folded_faces += static_cast<int64_t>(folded.size());
    if (double(folded.size()) > options.max_folded_fraction * double(normals_after.size())) {
      // The surface is crumpling faster than smoothing can undo (a fragmented SDF: the flow
      // squeezes it into strands and shells). Going on only multiplies tiny folded triangles;
      // keep the last sound surface and leave this level.
      mesh = std::move(before);
      ++stats.stopped_levels;
      return;
    }
    if (!folded.empty()) {
      const std::vector<char> mask = vertices_near_faces(mesh, folded, 1);
      for (int it = 0; it < 3; ++it) mesh.relax(0.5, false, &mask);
    }
    elapsed += interval;
    if (const double area = mesh.area(); area > area_limit_mm2)
      throw InputError("", "DiffCoSeg: the white surface grew to " + std::to_string(int64_t(area)) +
                               " mm^2, past " + std::to_string(int64_t(area_limit_mm2)) +
                               " mm^2 (the white SDF does not describe a cortex)");
    mesh.remesh(edge);
    mesh.relax(0.5, true);
    mesh.relax(0.5, true);
    double max_moved = 0;
    for (double m : moved) max_moved = std::max(max_moved, m);
    // Converged: hardly any vertex moves by more than a small fraction of a voxel per interval
    // (a few may still creep along a thin gyrus; the next level takes them on).
    const int64_t moving =
        std::count_if(moved.begin(), moved.end(), [&](double m) { return m > 0.1 * voxel; });
    if (max_moved < 0.02 * voxel || double(moving) <= settled_fraction * double(nv)) break;
  }
}

void project_to_level_set(FlowMesh& mesh, const SdfField& field, int iterations, double max_step,
                          const std::vector<char>* mask) {
  for (int it = 0; it < iterations; ++it) {
    parallel_for(
        mesh.vertex_slots(),
        [&](int64_t begin, int64_t end) {
          for (int64_t v = begin; v < end; ++v) {
            if (!mesh.vertex_alive(v) || (mask && !(*mask)[v])) continue;
            Vec3 g;
            const double s = field.sample(mesh.pos[v], &g);
            const double g2 = std::max(dot(g, g), 0.25);
            Vec3 step = (-s / g2) * g;
            const double len = norm(step);
            if (len > max_step) step = (max_step / len) * step;
            mesh.pos[v] += step;
          }
        },
        4096);
  }
}

std::vector<char> vertices_near_faces(const FlowMesh& mesh,
                                      const std::vector<std::pair<int, int>>& pairs, int rings) {
  std::vector<char> mask(mesh.vertex_slots(), 0);
  for (const auto& [f, g] : pairs)
    for (int face : {f, g})
      for (int32_t v : mesh.tri[face]) mask[v] = 1;
  std::vector<int32_t> ring;
  for (int r = 0; r < rings; ++r) {
    std::vector<char> grown(mask);
    for (int32_t v = 0; v < mesh.vertex_slots(); ++v) {
      if (!mask[v]) continue;
      mesh.one_ring(v, ring);
      for (int32_t w : ring) grown[w] = 1;
    }
    mask.swap(grown);
  }
  return mask;
}

void relax_to_membrane(FlowMesh& mesh, const std::vector<char>& mask, int max_sweeps) {
  std::vector<int32_t> free_vertices;
  double edge = 0;
  int64_t edges = 0;
  for (int32_t v = 0; v < mesh.vertex_slots(); ++v) {
    if (!mask[v] || mesh.ring_begin(v) == mesh.ring_end(v)) continue;
    free_vertices.push_back(v);
    for (const int32_t* q = mesh.ring_begin(v); q != mesh.ring_end(v); ++q, ++edges)
      edge += norm(mesh.pos[*q] - mesh.pos[v]);
  }
  if (free_vertices.empty()) return;
  const double tolerance = 1e-4 * edge / double(edges);
  for (int sweep = 0; sweep < max_sweeps; ++sweep) {
    double largest = 0;
    for (int32_t v : free_vertices) {
      Vec3 centroid{0, 0, 0};
      const int32_t *r = mesh.ring_begin(v), *e = mesh.ring_end(v);
      for (const int32_t* q = r; q != e; ++q) centroid += mesh.pos[*q];
      centroid = (1.0 / double(e - r)) * centroid;
      largest = std::max(largest, norm(centroid - mesh.pos[v]));
      mesh.pos[v] = centroid;
    }
    if (largest < tolerance) break;
  }
}

double shortest_region_edge(const FlowMesh& mesh, const std::vector<char>& region) {
  double shortest = std::numeric_limits<double>::infinity();
  for (int32_t v = 0; v < mesh.vertex_slots(); ++v)
    if (region[v])
      for (const int32_t* q = mesh.ring_begin(v); q != mesh.ring_end(v); ++q)
        if (region[*q]) shortest = std::min(shortest, norm(mesh.pos[*q] - mesh.pos[v]));
  return shortest;
}

int remesh_crushed_region(FlowMesh& mesh, std::vector<char>& region, double edge, int max_passes) {
  int pass = 0;
  while (pass < max_passes && shortest_region_edge(mesh, region) < 0.2 * edge) {
    mesh.remesh(edge, &region);
    relax_to_membrane(mesh, region);
    ++pass;
  }
  return pass;
}

std::vector<char> vertices_around_faces(const FlowMesh& mesh,
                                        const std::vector<std::pair<int, int>>& pairs, int rings,
                                        double radius_mm) {
  std::vector<char> mask = vertices_near_faces(mesh, pairs, rings);
  std::vector<int32_t> origin(mesh.vertex_slots(), -1), queue, ring;
  for (const auto& [f, g] : pairs)
    for (int face : {f, g})
      for (int32_t v : mesh.tri[face])
        if (origin[v] < 0) {
          origin[v] = v;
          queue.push_back(v);
        }
  const double r2 = radius_mm * radius_mm;
  for (size_t head = 0; head < queue.size(); ++head) {
    const int32_t v = queue[head];
    mesh.one_ring(v, ring);
    for (int32_t w : ring) {
      if (origin[w] >= 0) continue;
      const Vec3 d = mesh.pos[w] - mesh.pos[origin[v]];
      if (dot(d, d) > r2) continue;
      origin[w] = origin[v];
      mask[w] = 1;
      queue.push_back(w);
    }
  }
  return mask;
}

}  // namespace ddcsr::diffcoseg
