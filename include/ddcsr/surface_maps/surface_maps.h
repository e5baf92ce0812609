// The surfaces and per-vertex maps that FreeSurfer's recon-all derives from white and pial, and
// that Freeview, Workbench and connectome pipelines load next: mean curvature (curv), the
// inflated surface and its sulcal depth (sulc), a spherical map (sphere) and the midthickness
// surface. Names, units and signs follow FreeSurfer, so that files written from these read
// like FreeSurfer's own:
// - curv: mean curvature of the white surface (1/mm), positive where the surface bends away
//   from its outward normal (sulcal fundi), negative on gyral crowns.
// - sulc: how far each vertex moved outward along its normal while the surface was inflated
//   (mm), so positive in sulci, negative on gyri; zero area-weighted mean.
// - inflated: the white surface smoothed until its folds are gone, rescaled to its area.
// - sphere: a bijective map of the white surface onto the sphere of radius 100 centred at the
//   origin (FreeSurfer's sphere convention), oriented like the hemisphere (anterior points
//   anterior, superior superior), with each region's share of the sphere close to its share of
//   the inflated surface.
// Inflation depends on the mesh when counted in iterations of neighbour averaging: on its
// resolution, and on where its vertices are (a patch refined to tiny triangles inflates into a
// bulge). Here it is counted in mm^2 of diffusion time of the surface's own Laplace-Beltrami
// operator, so a 150,000-vertex reconstruction and fsaverage5 (10,242 vertices) inflate alike.
// Method: inflation by implicit (backward Euler) Laplace-Beltrami smoothing (cotangent
// stiffness, lumped mass, both of the white surface); the sphere by a
// Tutte embedding of the surface punctured at the middle of its medial face (positive weights:
// one-to-one by Tutte's theorem; clamped cotangents, or uniform where those fold), inverse
// stereographic projection, Moebius centring of the area measure, and the rotation that best aligns
// it with the inflated surface's radial directions (Angenent et al. 1999, "On the Laplace-Beltrami
// operator and brain surface flattening"; Floater 2003, "One-to-one piecewise linear mappings over
// triangulations"; Desbrun et al. 1999 for implicit fairing).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ddcsr/mesh.h"

namespace ddcsr {

struct InflationOptions {
  // Total smoothing, in mm^2 of diffusion time as neighbour averaging on a regular mesh counts
  // it (four times the Laplace-Beltrami time). 420 mm^2 reproduces FreeSurfer's fsaverage5
  // inflated surface (vertex coordinates correlate at 0.997-0.999) and its sulc (r = 0.98).
  double diffusion_mm2 = 420.0;
  // Implicit steps the smoothing is split into; sulc integrates the normal motion per step.
  int steps = 12;
  // The conformal spherical map is made from the surface inflated this many times longer
  // (rounder): labels on the held-out family 84.7 % against 81.6 % (docs/experiments.md).
  double sphere_diffusion_factor = 4.0;
};

struct InflatedSurface {
  Mesh inflated;
  std::vector<float> sulc;  // mm, positive in sulci
};

InflatedSurface inflate_surface(const Mesh& white, const InflationOptions& options = {});

struct SphericalMap {
  Mesh sphere;                 // radius 100, centred at the origin
  int64_t folded_faces = 0;    // faces whose orientation on the sphere is reversed (0 expected)
  double area_distortion = 0;  // median |log(sphere area share / surface area share)| per face
  int64_t puncture_face = -1;  // the face left out of the planar embedding (see spherical_map)
};

// Maps `white` onto the sphere; `inflated` (same triangles) gives the puncture, the orientation
// and, for cotangent weights, the geometry. Cotangent weights give a nearly conformal map, the
// one registration to fsaverage5 works best with (labels on the held-out family 84-88 % against
// 64-75 % with uniform weights, whose map follows the mesh's vertex density, not the surface);
// uniform weights (Tutte's own) are the robust fallback: the conformal map of an elongated
// hemisphere (a slab scan's, flattened where the field of view cuts it) crowds its ends by
// factors of e^10 and folds.
enum class SphereWeights { Cotangent, Uniform };
SphericalMap spherical_map(const Mesh& white, const Mesh& inflated,
                           SphereWeights weights = SphereWeights::Cotangent);

// The surface half-way between white and pial, vertex by vertex (same triangles).
Mesh midthickness_surface(const Mesh& white, const Mesh& pial);

// Everything above for one hemisphere (white and pial share triangles).
struct HemisphereMaps {
  std::vector<float> curv, sulc;
  Mesh inflated, sphere, midthickness;
  int64_t sphere_folded_faces = 0;
  double sphere_area_distortion = 0;
  bool sphere_uniform_weights = false;  // the conformal map folded; the fallback was used
};
HemisphereMaps hemisphere_maps(const Mesh& white, const Mesh& pial,
                               const InflationOptions& options = {});

// Writes them into `surf_dir` with FreeSurfer's names (lh.inflated, lh.sphere, lh.midthickness,
// lh.sulc, lh.curv) and GIFTI twins (.surf.gii in scanner RAS, .shape.gii), each atomically.
// FreeSurfer files carry `geometry` (when valid); the sphere is centred at the origin of surface
// RAS in lh.sphere, and of the file's space in lh.sphere.surf.gii, as Workbench's spheres are.
void write_hemisphere_maps(const HemisphereMaps& maps, const std::string& hemi,
                           const VolumeGeometry& geometry, const std::string& surf_dir);

}  // namespace ddcsr
