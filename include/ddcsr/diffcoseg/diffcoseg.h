// DiffCoSeg: closed, genus-0, intersection-free white and pial surfaces of one hemisphere from
// its white-matter and pial signed distance functions (SDFs).
//
// White surface. A genus-0 icosphere is placed in the white SDF's interior (the ellipsoid of
// the inside voxels' second moments, shrunk) and carried to the SDF's zero level set by the flows
// of stationary velocity fields v(x) = -s(x) grad s(x) / max(|grad s|^2, g_min^2), clamped in
// speed, where s is the white SDF Gaussian-smoothed at a decreasing series of widths (coarse to
// fine: thin gyri appear as the smoothing shrinks and the surface follows them continuously).
// Each vertex is integrated with RK4 in steps that move it less than a fraction of its shortest
// edge and of a voxel, so neighbouring trajectories cannot pass each other and the discrete map
// stays a diffeomorphism in practice. Between short integration intervals, topology-preserving
// isotropic remeshing (edge split / collapse with link condition / flip, tangential relaxation)
// keeps edges even while the surface grows into gyri. A final Newton projection onto the zero
// level set of the unsmoothed SDF, with step limits, fixes the vertices.
//
// Pial surface. The white mesh (same vertices and triangles) is inflated along the outward unit
// field of the white SDF (smoothed; its streamlines cannot cross) until each vertex reaches the
// pial SDF's zero level set. A vertex also stops short of the medial sheet of the space outside
// the white surface, i.e. where the banks of a sulcus that the pial SDF cannot resolve at voxel
// size would meet, so opposite banks meet but never cross and pial never crosses white.
//
// Guarantees, checked on every output mesh and reported (never hidden): closed two-manifold, one
// component, Euler characteristic 2, no self-intersecting face (exact predicates through CGAL),
// no white vertex outside the pial surface. Self-intersections left by the discretisation are
// repaired locally (white: smoothing of the involved vertices; pial: pulling the involved
// vertices back towards white). Whatever remains after repair is in the report and in
// `problems`.
//
// Thickness: per vertex, the mean of the distance from the white vertex to the pial surface and
// from the pial vertex to the white surface (FreeSurfer's mris_thickness definition).
//
// Method family: CortexODE (Ma et al. 2022), CorticalFlow (Lebrat et al. 2021), CoSeg / DDCSR
// (diffeomorphic deformation of a template to predicted SDFs), DeepCSR (Cruz et al. 2021);
// remeshing after Botsch & Kobbelt, "A remeshing approach to multiresolution modeling" (2004).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ddcsr/mesh.h"
#include "ddcsr/progress.h"
#include "ddcsr/volume.h"

namespace ddcsr {

struct DiffCoSegOptions {
  // Vertices per hemisphere surface. The edge length is chosen from the white SDF's area so that
  // the final mesh lands near this count (typically within 10%).
  int64_t target_vertices = 150000;
  // Gaussian widths (mm) of the white SDF, coarse to fine; the last should be 0 (the SDF itself).
  std::vector<double> sigmas_mm = {6.0, 4.0, 2.5, 1.5, 0.8, 0.0};
  // Integration time per smoothing level (the flow converges like exp(-t) near the surface) and
  // the length of one interval between remeshings.
  double level_time = 6.0;
  double remesh_interval = 0.5;
  // Edge length (mm) while following the smoothing levels; the mesh is refined to the final
  // vertex count afterwards and follows the unsmoothed SDF for `final_time`.
  double flow_edge_mm = 1.0;
  double final_time = 1.5;
  // A vertex moves at most this fraction of min(its shortest edge, voxel size) per RK4 step.
  double max_step_fraction = 0.3;
  // Speed clamp (mm per unit time) of the velocity fields; away from the surface the speed is
  // |s| / growth_tau, and beyond growth_reach_mm the coarsest SDF's normal steers the growth.
  double max_speed = 3.0;
  double growth_tau = 0.5;
  double growth_reach_mm = 1.0;
  // Depth (mm) of the interior and exterior seeds of the geodesic growth directions: deeper
  // than the half-width of any gyrus, and than the half-width of any sulcal cave's mouth.
  double growth_depth_mm = 3.0;
  double growth_outside_depth_mm = 8.0;
  // Growth does not pass necks thinner than twice this (mm): a mesh with edges about a voxel
  // long cannot enter them without tangling; the surface spans such a neck instead.
  double growth_neck_mm = 0.5;
  // Newton projection iterations onto the unsmoothed zero level set at the end.
  int projection_iterations = 6;
  // Pial: maximum cortical thickness (mm), the smoothing (mm) of the white SDF whose gradient
  // gives the outward direction, and the gap (mm) each bank keeps from the medial sheet of a
  // sulcus that the pial SDF does not open.
  double max_thickness_mm = 8.0;
  double pial_direction_sigma_mm = 1.0;
  double sulcus_margin_mm = 0.1;
  // Rounds of local self-intersection repair before giving up and reporting.
  int repair_rounds = 45;
};

// What the checks found on one output surface.
struct SurfaceCheck {
  int64_t vertices = 0, faces = 0;
  int64_t euler = 0, components = 0;
  bool closed_manifold = false;
  int64_t self_intersecting_faces = 0;  // after repair
  double sif_percent = 0;               // self-intersecting faces, percent of faces
  int64_t repaired_vertices = 0;        // vertices moved by the local repair
  int repair_rounds = 0;                // rounds the repair needed
  bool genus0() const { return closed_manifold && components == 1 && euler == 2; }
  bool ok() const { return genus0() && self_intersecting_faces == 0; }
};

struct HemisphereSurfaces {
  std::string hemi;  // "lh" or "rh"
  Mesh white, pial;  // scanner RAS, same triangles, vertex i of white pairs with vertex i of pial
  std::vector<float> thickness;  // per vertex, mm
  SurfaceCheck white_check, pial_check;
  int64_t white_vertices_outside_pial = 0;
  double white_outside_pial_percent = 0;
  // Diagnostics of the flow: faces that turned over (normal reversed) during an integration
  // interval, and the vertices whose pial stop was set by a closed sulcus.
  int64_t flow_folded_faces = 0;
  int64_t pial_sulcus_stops = 0;
  // Pial vertices that coincide with their white vertex (zero thickness: where white touches
  // itself there is no room for cortex, or the pial SDF says there is none).
  int64_t pial_zero_thickness_vertices = 0;
  double seconds_white = 0, seconds_pial = 0, seconds_checks = 0;
  // Every failed guarantee, one line each; empty when all hold.
  std::vector<std::string> problems;
  bool ok() const { return problems.empty(); }
};

// Reconstructs one hemisphere. `white_sdf` and `pial_sdf` are 3D volumes in mm, negative inside,
// on any grids (vox2ras to scanner RAS). `hemi` ("lh"/"rh") is stored in the meshes. Throws
// InputError when an SDF has no inside voxel or the pial SDF does not contain the white
// interior; never throws for a failed guarantee (see `problems`). Runs on thread_count() threads;
// the result does not depend on the thread count.
HemisphereSurfaces reconstruct_hemisphere(const Volume& white_sdf, const Volume& pial_sdf,
                                          const std::string& hemi, const DiffCoSegOptions& options,
                                          const ProgressFn& progress = {});

// Per-vertex thickness of paired surfaces (same vertex count): the mean of the distances from
// each white vertex to the pial surface and from each pial vertex to the white surface.
std::vector<float> cortical_thickness(const Mesh& white, const Mesh& pial);

}  // namespace ddcsr
