// DiffCoSeg: closed, genus-0, intersection-free white and pial surfaces of one hemisphere from
// its white-matter and pial signed distance functions (SDFs, mm, negative inside).
//
// White surface. A genus-0 icosphere, mapped onto the ellipsoid with the second moments of the
// white SDF's inside voxels, is carried to the SDF's zero level set by the flows of stationary
// velocity fields, coarse to fine: the SDF Gaussian-smoothed at decreasing widths, so that
// folds appear gradually (a width that loses half of the white matter, as for a thin shell no
// brain has, is skipped). Near the level set (|s| < growth_reach_mm) the field is the Newton
// field v = -s grad s / |grad s|^2; farther away it follows geodesic growth directions (the
// gradient of the distance from the deep interior, measured inside the white matter, and from
// the far exterior, measured outside), so a surface spanning the neck of a thin gyrus advances
// along the gyrus instead of being pulled sideways onto its walls, and a surface over the
// mouth of a sulcus descends into it. Each vertex is integrated with RK4 in steps shorter than
// a fraction of its shortest edge and of a voxel, so neighbouring trajectories cannot pass each
// other and the discrete map stays a diffeomorphism in practice; faces that still turn over in
// an interval are smoothed at once. Between intervals, topology-preserving isotropic remeshing
// (edge split, collapse under the link condition, flip; tangential relaxation) keeps edges
// even while the surface grows into gyri. At the end the mesh is refined to the requested
// vertex count and Newton-projected, with step limits, onto the unsmoothed zero level set.
//
// Pial surface. The white mesh (same vertices and triangles) is inflated: each vertex starts a
// small step (0.02 mm) out along the white normal and walks along the outward unit field of the
// (smoothed) white SDF, whose streamlines cannot cross, until the pial SDF turns non-negative.
// Where the pial SDF does not open a sulcus (banks closer than a voxel) the walk stops
// `sulcus_margin_mm` before the medial sheet of the space outside white (where the white SDF
// stops growing), so opposite banks meet but do not cross, and pial never crosses white.
//
// Guarantees, checked on every output and reported, never hidden: closed two-manifold, one
// component, Euler characteristic 2, no self-intersecting face (exact predicates, CGAL, via
// ddcsr/geometry/mesh_checks.h), no white vertex outside pial. White and pial are checked as
// one mesh, which also finds every place where pial passes through white. Intersections left
// by the discretisation are repaired locally: white by smoothing the involved vertices
// (Taubin, then Laplacian, with gentle re-projection), then, for small tangles that smoothing
// only creeps over, by relaxing them and a widening ring around them to the membrane spanning
// the ring's boundary; pial by pulling the involved vertices
// back along their paths to the small starting step, which then shrinks; where white nearly
// touches itself (a sulcus closed below voxel size) white gives way by up to 0.2 mm inward.
// As a last resort a pial vertex coincides with its white vertex (touching, not crossing).
// Whatever the repair cannot fix is listed in `problems` and in the checks.
//
// Thickness: per vertex, the mean of the distance from the white vertex to the pial surface and
// from the pial vertex to the white surface (FreeSurfer's mris_thickness definition), each
// searched over the surface around the partner vertex.
//
// Method family: CortexODE (Ma et al. 2022), CorticalFlow (Lebrat et al. 2021), CoSeg / DDCSR
// (diffeomorphic deformation of a template to predicted SDFs), DeepCSR (Cruz et al. 2021),
// Laplace/streamline thickness (Jones et al. 2000); remeshing after Botsch & Kobbelt, "A
// remeshing approach to multiresolution modeling" (2004); Taubin, "A signal processing
// approach to fair surface design" (1995).
#pragma once
#include <array>
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
  // the length of one interval between remeshings. Longer flows follow the SDF deeper into
  // sulci and gyri. level_time 10, final_time 1.5: ASSD 2-5 % lower on the phantoms (s305 white
  // 0.478 / 0.459 -> 0.461 / 0.435, pial 0.669 / 0.655 -> 0.644 / 0.632), but on the real XA30
  // scan the lh white surface agrees less with the same-session T1 (contrast 0.069 -> 0.064,
  // positive at 80 -> 77 % of vertices), 147 / 66 vertices have zero thickness instead of 4 / 18,
  // and recon takes 42 s instead of 28. level_time 15, final_time 3, growth_neck_mm 0.2 gains
  // more on phantoms, but the XA30 lh flow then folds onto itself and takes minutes.
  double level_time = 6.0;
  double remesh_interval = 1.0;
  // Edge length (mm) while following the smoothing levels; the mesh is refined to the final
  // vertex count afterwards and follows the unsmoothed SDF for `final_time`.
  double flow_edge_mm = 1.0;
  double final_time = 0.5;
  // A vertex moves at most this fraction of min(its shortest edge, voxel size) per RK4 step.
  double max_step_fraction = 0.3;
  // Speed clamp (mm per unit time) of the velocity fields; beyond growth_reach_mm from the level
  // set the geodesic growth directions steer, at speed |s| / growth_tau.
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
  // The white flow may grow the surface to this multiple of the area of the white SDF's zero
  // level set. A flow that keeps crumpling past it (an SDF that is no cortex: speckle, sheets)
  // would otherwise remesh ever more triangles for hours; it fails with an error instead.
  double max_area_factor = 4.0;
  // A flow interval in which more than this fraction of the faces turn over is undone and its
  // level left (phantoms stay below 0.5 %; a fragmented SDF from a scan the network does not
  // know crumpled at 2-50 %, multiplying tiny folded triangles for tens of minutes).
  double max_folded_fraction = 0.02;
  // Pial: maximum cortical thickness (mm), the smoothing (mm) of the white surface's signed
  // distance whose gradient gives the outward direction, and the gap (mm) each bank keeps from
  // the medial sheet of a sulcus that the pial SDF does not open.
  double max_thickness_mm = 8.0;
  double pial_direction_sigma_mm = 1.0;
  double sulcus_margin_mm = 0.1;
  // Rounds of local self-intersection repair before giving up and reporting.
  int repair_rounds = 45;
  // Then rounds in which what still intersects in white, and a region around it that widens
  // each round, relaxes to the membrane spanning the region's boundary.
  int membrane_rounds = 10;
  // Rounds of the pial repair (each pulls the involved pial vertices back toward white; most
  // surfaces need under 20, a crumpled white surface from a poor scan about 70).
  int pial_repair_rounds = 100;
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
  // White vertices moved inward (by 0.02-0.2 mm) to make room for pial where white nearly
  // touches itself, and pial vertices left coinciding with their white vertex where even that
  // was impossible (zero thickness; such white vertices lie on pial, which strict inside
  // tests may count as outside, so they are listed in `problems`).
  int64_t white_yielded_vertices = 0;
  int64_t pial_zero_thickness_vertices = 0;
  double seconds_white = 0, seconds_pial = 0, seconds_checks = 0;
  // Every failed guarantee, one line each; empty when all hold.
  std::vector<std::string> problems;
  bool ok() const { return problems.empty(); }
};

// Reconstructs one hemisphere. `white_sdf` and `pial_sdf` are 3D volumes in mm, negative inside,
// on any grids (vox2ras to scanner RAS). `hemi` ("lh"/"rh") is stored in the meshes, with the
// white SDF's volume geometry. Throws InputError when an SDF is not a finite 3D volume or has
// no inside voxel, UsageError for invalid options; never throws for a failed guarantee (see
// `problems`). Runs on thread_count() threads; the result does not depend on the thread count.
HemisphereSurfaces reconstruct_hemisphere(const Volume& white_sdf, const Volume& pial_sdf,
                                          const std::string& hemi, const DiffCoSegOptions& options,
                                          const ProgressFn& progress = {});

// Both hemispheres at once, each on its own thread (each also runs its loops on
// thread_count() threads): [0] is "lh", [1] is "rh". Results are those of
// reconstruct_hemisphere; progress reports the mean of the two.
std::array<HemisphereSurfaces, 2> reconstruct_hemispheres(
    const Volume& lh_white_sdf, const Volume& lh_pial_sdf, const Volume& rh_white_sdf,
    const Volume& rh_pial_sdf, const DiffCoSegOptions& options, const ProgressFn& progress = {});

// Per-vertex thickness of paired surfaces (one triangulation): the mean of the distances from
// each white vertex to the pial surface and from each pial vertex to the white surface, each
// searched over the surface around the partner vertex. Throws InputError when the
// triangulations differ.
std::vector<float> cortical_thickness(const Mesh& white, const Mesh& pial);

}  // namespace ddcsr
