// Ground-truth geometry of a simulated head: white and pial surfaces of both hemispheres plus
// closed meshes of the structures that have no surface truth (ventricles, deep grey nuclei).
//
// Procedural hemispheres, and why they are valid by construction:
// Each hemisphere is built around a star centre C as a "radial" surface X(u) = C + A (r(u) u)
// over the unit directions u of an icosphere, with A = diag(1, sy, sz) a fixed stretch that
// turns a nearly round body into the elongated hemisphere (it keeps the midplane x = 0).
// For positive radii, the flat triangle over an icosphere face is exactly the cross-section of
// the cone spanned by its three directions, and those cones tile space, so ANY positive radius
// function gives a closed, genus-0 surface without self-intersections; A is linear and keeps
// that. If r_pial(u) > r_white(u) at every vertex, the pial surface lies strictly outside the
// white one (in each cone the two cross-sections are nested). Pial surfaces of the two
// hemispheres stay on their own side of a midplane gap (the fissure) because every pial vertex
// does, and triangles are convex hulls of their vertices.
//
// Folding: sulci lie along the zero set of a smooth random field f (a sum of plane waves of one
// wavelength, ~30 mm, evaluated on the smooth hull), a labyrinth with the spacing of real
// gyri. With s = |f| / |grad_T f| (distance to the zero set, tangential gradient), the white
// surface is dug in by dw = D psi((a - s)/w_w) and the pial by dp = D psi((b - s)/w_p), where
// psi is a smooth step, D the local sulcal depth (a smooth field, 4-15 mm), b the half-gap
// between the pial banks (a smooth field: 0.06 mm, banks touching, over ~46% of the hull, up
// to 0.9 mm elsewhere), a = b + thickness the white valley half-width. Choosing
// b w_w / a <= w_p <= w_w makes (b - s)/w_p <= (a - s)/w_w for all s >= 0, hence
// dp <= dw: r_pial - r_white = thickness + (dw - dp) / ... >= thickness >= 1.5 mm at every
// vertex. Thickness is a smooth field between 1.5 and 4.5 mm, thinner in fundi. Depth and
// thickness are measured along the hull normal (the radial offset is divided by the cosine of
// the angle between the ray and that normal). The medial side is flattened against the
// fissure plane by smooth minima that are monotone and translation-equivariant, which keeps
// the pial - white >= 1.5 mm guarantee. The fold valleys stop 3-7 mm short of six primary
// sulci (lateral, central, superior temporal, calcarine, parieto-occipital, cingulate), which
// are valleys of the same profile along curves at MNI-like positions.
//
// Touching banks need vertices: a pial valley ~0.1 mm wide falls between the ~0.6 mm vertices
// of the default icosphere. The rays are therefore not the icosphere's directions but those
// directions moved on the hull towards the nearest fundus, packing the rays of ~1 mm on either
// side into the pial valley (~10x denser across it, ~3 rows of vertices), with no vertex added.
// Any triangulation of the sphere whose faces keep their orientation tiles space with its cones
// as the icosphere does, so the guarantees above hold for the moved rays; the rare faces that
// the move would turn over (where valleys meet) are untangled before the radii are computed.
// Coarser meshes (--mesh-level below 7) cannot hold touching banks: their narrowest pial gap
// doubles per level below 7.
//
// Subject variability: per seed, the hull shape, fields, a random smooth warp and a similarity.
// The warp is x + sum_j a_j exp(-|x - c_j|^2 / (2 sigma^2)) with sum_j |a_j| / (sigma sqrt(e))
// <= 0.3, so its Jacobian is within 0.3 of the identity in operator norm: a diffeomorphism.
// Procedural hemispheres follow it along their rays: each ray's point ~2 mm out from the hull
// (on the fissure plane medially) goes where the warp takes it, and the rest of the ray stays
// on the straight line from the warped star centre through that point. The result is again a
// radial surface, so the guarantees above hold exactly, whatever the length of the triangles
// (applying the warp to the vertices would bend the ~10 mm triangles of steep sulcal walls by
// tenths of a mm, more than touching banks are apart); make_geometry() checks that the warped
// directions' triangles keep their orientation and halves the warp until they do (meta.json:
// warp_scale, 1 in practice). Real surfaces and the extras have their vertices warped: the
// straight triangles between them differ from the warped curved ones by under
// (1/8) |Hessian| L^2, a few hundredths of a mm for their short triangles.
//
// Real-surface mode reads lh/rh white/pial from a folder and applies the same warp and
// similarity. Ventricles and deep grey nuclei are ellipsoid meshes at MNI-like positions
// (shifted with the input's bounding box), warped likewise, then shrunk about their centre
// until every vertex lies at least 2 mm inside the white surface. The hindbrain (cerebellum,
// brainstem) is placed likewise and moved down until it clears the pial surfaces. The
// whole-head structures (corpus callosum, diencephalon, third ventricle, eyes) are made last
// from their own generator.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ddcsr/affine.h"
#include "ddcsr/mesh.h"
#include "ddcsr/progress.h"

namespace ddcsr::sim {

// Rotation matrix (row-major) Rz * Ry * Rx for angles in radians about x, y, z.
std::array<double, 9> rotation_xyz(double ax, double ay, double az);

struct GeometryOptions {
  uint64_t seed = 1;
  std::string geometry_dir;  // empty: procedural hemispheres; else lh/rh white/pial read there
  int mesh_level = 7;        // icosphere subdivisions of procedural surfaces (7: 163,842 vertices)
  double scale = 1.0;        // overall size factor applied with the similarity (tiny test phantoms)
  bool variability = true;   // random warp, scaling and rigid motion; off: template as is
  double fold_wavelength = 13;           // mm; sulci of the pattern are ~0.87 of it apart (~11 mm)
  double depth_min = 5, depth_max = 15;  // sulcal depth range (mm)
  double thickness_min = 1.5, thickness_max = 4.5;  // cortical thickness range (mm)
  double fissure_gap = 1.5;  // mm between the two pial surfaces at the midplane
  // Also build the midline structures and the eyes of the whole-head anatomy (phantom.h). Their
  // draws use a generator of their own, so the hemispheres, the extras above and the truth are
  // the same with and without them.
  bool whole_head = false;
};

// A smooth random diffeomorphism x -> x + sum_j a_j exp(-|x - c_j|^2 / (2 sigma^2)).
struct SmoothWarp {
  std::vector<Vec3> centres, amplitudes;
  double sigma = 40;
  Vec3 apply(const Vec3& x) const;
  // Jacobian matrix (row-major) of the map at x.
  std::array<double, 9> jacobian(const Vec3& x) const;
  // Upper bound of the operator norm of (Jacobian - identity) over all of space.
  double lipschitz_bound() const;
};

struct PhantomGeometry {
  Mesh white[2], pial[2];        // [0] lh, [1] rh; scanner RAS
  std::vector<Mesh> ventricles;  // closed meshes, their union is ventricular CSF
  std::vector<Mesh> deep_grey;   // closed meshes, their union is deep grey matter
  // Cerebellum and brainstem (no surface truth): the union of `hindbrain` is their extent, the
  // union of `hindbrain_white` their white matter; the rest is cerebellar grey matter. Outside
  // both pial surfaces by at least 1.5 mm.
  std::vector<Mesh> hindbrain, hindbrain_white;
  // Whole head only. Midline structures at MNI-like positions inside the flat, fold-free medial
  // wall (the corpus callosum above, the diencephalon with the third ventricle below): FreeSurfer
  // runs the white surface across them, so they are tissue only where they lie outside both
  // white surfaces and between the two hemispheres (phantom.cpp); inside white they are white.
  std::vector<Mesh> callosum, diencephalon, third_ventricle;
  // Eyes (spheres in scanner RAS), in front of and below the frontal lobes, at least
  // 12 mm (scaled) outside the pial surfaces.
  struct Eye {
    Vec3 centre;
    double radius;
  };
  std::vector<Eye> eyes;
  SmoothWarp warp;           // template -> warped template
  Affine similarity;         // warped template -> scanner RAS (scaling, rotation, shift)
  Vec3 mni_offset{0, 0, 0};  // template = MNI-like position + mni_offset (anatomy anchor)
  std::string source;        // "procedural" or the geometry folder
  std::vector<std::string> source_files;  // lh.white, lh.pial, rh.white, rh.pial when read
  // Named numbers describing this subject for meta.json (scales, angles, shape parameters).
  std::vector<std::pair<std::string, double>> parameters;
};

// Builds the subject. InputError for unreadable or unusable surfaces in geometry_dir,
// UsageError for options outside their ranges.
PhantomGeometry make_geometry(const GeometryOptions& opts, const ProgressFn& progress = {});

// The procedural hemisphere (0 lh, 1 rh) in template space, before warp and similarity.
// rays_repaired, when given, receives the number of rays whose move towards a fundus had to be
// reduced to keep every face's orientation.
void procedural_hemisphere(const GeometryOptions& opts, int hemi, Mesh& white, Mesh& pial,
                           int64_t* rays_repaired = nullptr);

// Finds lh/rh white/pial in a folder, FreeSurfer style (lh.white, lh.pial.surf.gii, ...) or
// nilearn style (white_left.gii.gz, pial_right.gii). Order: lh.white, lh.pial, rh.white,
// rh.pial. InputError when one is missing or ambiguous.
std::vector<std::string> find_geometry_files(const std::string& dir);

// Closed ellipsoid mesh: `rotation` (row-major) maps the ellipsoid's axes to the world.
Mesh ellipsoid_mesh(const Vec3& centre, const Vec3& semi_axes,
                    const std::array<double, 9>& rotation, int level = 3);

}  // namespace ddcsr::sim
