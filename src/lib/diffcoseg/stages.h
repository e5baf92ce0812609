// The stages of DiffCoSeg, shared between its translation units (internal).
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "ddcsr/diffcoseg/diffcoseg.h"
#include "diffcoseg/flow_mesh.h"
#include "diffcoseg/sdf_field.h"

namespace ddcsr::diffcoseg {

struct WhiteStats {
  int64_t folded_faces = 0;  // faces whose normal reversed within one integration interval
  int stopped_levels = 0;    // flows stopped because the surface crumpled (max_folded_fraction)
};

// The genus-0 template: an icosphere mapped onto the ellipsoid with the second moments of the
// white SDF's inside voxels; edges near `edge_mm`.
Mesh place_template(const Volume& white_sdf, double edge_mm);

// Area of the zero level set estimated from the voxels within half a voxel of it.
double level_set_area(const Volume& sdf);

// Flows `mesh` to the zero level set of `field` for time `duration`, with remeshing to edge
// length `edge` between intervals. Stops early once at most `settled_fraction` of the vertices
// moved by more than a tenth of a voxel in an interval (a few may still creep along a thin
// gyrus; the next level takes them on). Far from the level set the flow follows the field's
// growth directions when it has them. Throws InputError when the surface's area passes
// `area_limit_mm2` (see DiffCoSegOptions::max_area_factor). When more than
// options.max_folded_fraction of the faces turn over in one interval, restores the mesh of the
// interval's start and returns (counted in stats.stopped_levels).
void flow_to_level_set(FlowMesh& mesh, const SdfField& field, double edge, double duration,
                       double settled_fraction, const DiffCoSegOptions& options, WhiteStats& stats,
                       double area_limit_mm2);

// Newton steps onto the zero level set of `field`, each at most `max_step` mm; only vertices
// with mask[v] when a mask is given.
void project_to_level_set(FlowMesh& mesh, const SdfField& field, int iterations, double max_step,
                          const std::vector<char>* mask = nullptr);

// Vertices of the faces in `pairs`, grown by `rings` rings of neighbours.
std::vector<char> vertices_near_faces(const FlowMesh& mesh,
                                      const std::vector<std::pair<int, int>>& pairs, int rings);
// As above, and also every vertex reachable through the mesh from a vertex of those faces
// without leaving the ball of `radius_mm` around it: a tangle whose triangles have collapsed
// to a speck holds many rings of vertices, and only a region measured in millimetres reaches
// the sound surface around it.
std::vector<char> vertices_around_faces(const FlowMesh& mesh,
                                        const std::vector<std::pair<int, int>>& pairs, int rings,
                                        double radius_mm);

// Moves the vertices where `mask` is set, in place, to the discrete membrane (uniform-weight
// harmonic map) spanning the unmasked vertices around them: each is the mean of its neighbours.
// Gauss-Seidel sweeps in vertex order (deterministic) until no vertex moves more than 1e-4 of
// the region's mean edge, or `max_sweeps`.
void relax_to_membrane(FlowMesh& mesh, const std::vector<char>& mask, int max_sweeps = 4000);

// Shortest edge between two vertices of `region` (infinity when there is none).
double shortest_region_edge(const FlowMesh& mesh, const std::vector<char>& region);

// A membrane crushes a region whose mesh holds a bubble behind a short cycle of edges (the flow
// wrapped a fragment of the map through a thin neck): however wide the region, the bubble's
// triangles shrink to a speck. While the region's shortest edge is under a fifth of `edge`
// (and at most `max_passes` times), remeshes the region alone towards `edge` (collapsing the
// speck; FlowMesh::remesh with a region) and relaxes it to the membrane again. Renumbers the
// mesh and `region` when it remeshes; returns the passes made.
int remesh_crushed_region(FlowMesh& mesh, std::vector<char>& region, double edge,
                          int max_passes = 8);

// Self-intersecting face pairs of the mesh among the faces whose bounding boxes come near
// those of the faces with a vertex in `mask`, in the mesh's face numbering: every pair that
// involves a marked face is found.
std::vector<std::pair<int, int>> local_self_intersections(const Mesh& mesh,
                                                          const std::vector<char>& mask);

}  // namespace ddcsr::diffcoseg

namespace ddcsr::diffcoseg {

// Walks from white vertices outward along the unit gradient of the smoothed signed distance of
// the white surface (RK2, steps of 0.05-0.25 mm) until the pial SDF turns non-negative, the raw
// white distance stops growing (the medial sheet of a sulcus the pial SDF leaves closed), or a
// length limit. Paths are deterministic, so a walk with a smaller limit retraces a prefix of a
// longer one.
class PialInflator {
 public:
  enum Stop : int { kPialZero = 0, kSulcus = 1, kLimit = 2 };
  PialInflator(const SdfField& direction, const SdfField& pial, const SdfField& white)
      : direction_(direction), pial_(pial), white_(white) {}
  // End point of the path from `start`, at most `limit` mm long; its length and why it stopped.
  Vec3 walk(const Vec3& start, double limit, double& length, Stop& stop) const;
  // Unit outward direction at x.
  Vec3 outward(const Vec3& x) const;

  double ridge_slope = 0.3;  // white distance growth per mm below which a sulcus is closed

 private:
  const SdfField& direction_;
  const SdfField& pial_;
  const SdfField& white_;
};

}  // namespace ddcsr::diffcoseg
