// Exact distances from points to a triangle mesh, inside/outside tests and signed distance
// volumes, on a bounding volume hierarchy private to the .cpp.
#pragma once
#include <cstdint>
#include <limits>
#include <memory>

#include "ddcsr/affine.h"
#include "ddcsr/mesh.h"
#include "ddcsr/progress.h"
#include "ddcsr/volume.h"

namespace ddcsr {

// Point queries against one mesh. Construction builds the search tree (O(F log F)); every query
// is const and safe to call from many threads at once.
class MeshDistance {
 public:
  explicit MeshDistance(const Mesh& mesh);
  ~MeshDistance();
  MeshDistance(MeshDistance&&) noexcept;
  MeshDistance& operator=(MeshDistance&&) noexcept;
  MeshDistance(const MeshDistance&) = delete;
  MeshDistance& operator=(const MeshDistance&) = delete;

  struct Closest {
    Vec3 point{0, 0, 0};
    int64_t face = -1;
    double distance = 0;
  };
  // Exact Euclidean distance to the nearest point of any triangle.
  double distance(const Vec3& p) const;
  Vec3 closest_point(const Vec3& p) const;
  Closest closest(const Vec3& p) const;
  // Same, seeded with a previous answer for a nearby point (much faster along scanlines).
  Closest closest(const Vec3& p, const Closest& hint) const;

  // The nearest point if it is within `max_distance`, else a Closest with face -1. Much cheaper
  // than closest() for far points: the search never looks beyond max_distance.
  Closest closest_within(const Vec3& p, double max_distance) const;
  Closest closest_within(const Vec3& p, double max_distance, const Closest& hint) const;

  // Whether p lies inside a closed mesh: parity of ray crossings, voted over three rays in
  // fixed directions; rays that graze an edge or a vertex are replaced, so the answer does not
  // depend on the triangulation near the ray.
  bool inside(const Vec3& p) const;

  // Distance, negative inside. The sign comes from the angle-weighted pseudo-normal of the
  // closest feature (face, edge or vertex; Baerentzen & Aanaes 2005), which is exact for a
  // closed, consistently oriented (counter-clockwise seen from outside) mesh without
  // self-intersections, and costs nothing beyond the distance query.
  double signed_distance(const Vec3& p) const;
  double signed_distance(const Closest& c, const Vec3& p) const;

  size_t num_faces() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Signed distance (mm, negative inside `mesh`) at every voxel centre of `grid` (its dims and
// vox2ras; its data is ignored). Exact distance everywhere; the sign as in
// MeshDistance::signed_distance. Runs on ddcsr::thread_count() threads.
Volume signed_distance_volume(const Mesh& mesh, const Volume& grid,
                              const ProgressFn& progress = {});

struct SignedDistanceOptions {
  // Exact within this distance of the surface; beyond it, +-max_distance with the right sign
  // (a truncated SDF), several times faster on a grid much larger than the surface. At least
  // twice the voxel spacing is used. Infinite: exact everywhere.
  double max_distance = std::numeric_limits<double>::infinity();
  // With a finite max_distance: beyond the band, instead of +-max_distance, the exact signed
  // distance on this coarser grid (its dims and vox2ras), interpolated trilinearly. A distance
  // field everywhere for little more than the band's cost on a fine grid. The band is widened to
  // the coarse voxel's diagonal, so every coarse corner of a voxel beyond it lies on the voxel's
  // side of the surface and the interpolated sign is right.
  const Volume* far_grid = nullptr;
};
Volume signed_distance_volume(const Mesh& mesh, const Volume& grid,
                              const SignedDistanceOptions& opts, const ProgressFn& progress = {});

}  // namespace ddcsr
