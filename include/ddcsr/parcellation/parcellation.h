// Correspondence with fsaverage and what it carries: each subject vertex's place on fsaverage's
// sphere (sphere.reg), cortical labels from atlases drawn on fsaverage, per-region statistics,
// and per-vertex maps carried to fsaverage for group analysis.
//
// Registration, as FreeSurfer's mris_register does it in spirit: the subject's sphere is aligned to
// the atlas's by the folding, a rigid rotation on smoothed sulcal depth first, then a smooth
// non-rigid warp, coarse to fine: sulcal depth smoothed over 1344, 336, 84 and 21 mm^2, then mean
// curvature over 21 and 8 mm^2, each feature first limited to its outer fences (quartiles -+ 3 IQR:
// a reconstruction's rare spikes of tiny triangles have curvatures of 50 /mm). The warp is
// estimated on the atlas's side (each atlas vertex finds its place on the subject's sphere by
// demons forces, regularised by smoothing the displacement over the atlas mesh, faces that fold
// over relaxed locally), and the subject's vertices are then located in the warped atlas mesh. The
// atlas is fsaverage5 (10,242 vertices per hemisphere): its white surface goes through the same
// surface maps as the subject's (ddcsr/surface_maps/surface_maps.h), so both spheres and both sets
// of features come from one method; subject positions are finally expressed on FreeSurfer's own
// fsaverage5 sphere, so a sphere.reg here is used as FreeSurfer's (mri_surf2surf --srcsurfreg
// sphere.reg).
// Thirion (1998), "Image matching as a diffusion process: an analogy with Maxwell's demons";
// Yeo et al. (2010), "Spherical demons"; Fischl et al. (1999), "High-resolution intersubject
// averaging and a coordinate system for the cortical surface".
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "ddcsr/io/surface.h"
#include "ddcsr/mesh.h"
#include "ddcsr/volume.h"

namespace ddcsr {

// fsaverage5, one hemisphere, ready to register to: its own sphere and features (computed by
// the surface maps) beside FreeSurfer's sphere, on one triangulation.
struct SphericalAtlas {
  std::string hemi;
  Mesh white;              // fsaverage5 white
  Mesh sphere;             // spherical map of `white` (surface_maps), radius 100
  Mesh freesurfer_sphere;  // FreeSurfer's fsaverage5 sphere (sphere.reg's target)
  std::vector<float> sulc, curv;
};
// From a folder holding {white,pial,sphere}_{left,right}.gii.gz (ddcsr's data/fsaverage5).
SphericalAtlas load_spherical_atlas(const std::string& fsaverage_dir, const std::string& hemi);

struct RegistrationOptions {
  // Demons iterations per level, and displacement smoothing per level (iterations of neighbour
  // averaging on the atlas mesh); levels as in the header comment.
  int iterations = 120;
  std::vector<int> smoothing = {160, 80, 40, 20, 10, 10};
};

// Where each subject vertex lands on the atlas mesh.
struct AtlasCorrespondence {
  std::vector<std::array<int32_t, 3>> atlas_faces;  // the atlas mesh's triangles
  std::vector<int32_t> face;                        // atlas face holding the vertex
  std::vector<std::array<float, 3>> barycentric;    // weights of the face's corners
  Mesh sphere_reg;               // subject vertices on FreeSurfer's fsaverage5 sphere (radius 100)
  double rigid_correlation = 0;  // smoothed sulcal depth, after the rotation
  double final_correlation = 0;  // finest level's feature, after the warp
  int64_t folded_atlas_faces = 0;  // atlas faces the warp turned over
};

AtlasCorrespondence register_to_atlas(const Mesh& subject_white, const Mesh& subject_sphere,
                                      const std::vector<float>& sulc,
                                      const std::vector<float>& curv, const SphericalAtlas& atlas,
                                      const RegistrationOptions& options = {});

// An atlas annotation carried to the subject: each vertex takes the region of the atlas corner
// with the largest weight.
Annotation transfer_annotation(const Annotation& atlas_labels, const AtlasCorrespondence& c);

// A per-vertex map of the subject on the vertices of `target_sphere` (FreeSurfer's fsaverage5
// sphere for a sphere.reg from register_to_atlas): linear inside the subject's faces.
std::vector<float> resample_to_sphere(const std::vector<float>& subject_values,
                                      const Mesh& subject_sphere_reg, const Mesh& target_sphere);

// Per region, as FreeSurfer's aparc.stats: vertices, white and pial area (mm^2), grey-matter
// volume (mm^3, thickness times the mean of white and pial vertex areas), thickness mean and
// SD (mm).
struct RegionStats {
  std::string name;
  int64_t vertices = 0;
  double white_area_mm2 = 0, pial_area_mm2 = 0, grey_volume_mm3 = 0;
  double thickness_mean_mm = 0, thickness_sd_mm = 0;
};
std::vector<RegionStats> region_stats(const Annotation& labels, const Mesh& white, const Mesh& pial,
                                      const std::vector<float>& thickness);
// The header row of stats/HEMI.ATLAS.tsv (write_parcellation), without its newline.
const std::string& region_stats_header();

// The cortical ribbon on a grid, labelled by region: connectome nodes in the scan's own space
// (no registration to a T1).
struct RibbonHemisphere {
  std::string hemi;  // "lh" or "rh"
  const Mesh* white = nullptr;
  const Mesh* pial = nullptr;  // the same triangulation as white
  const Annotation* labels = nullptr;
};
// FreeSurfer's numbers for cortical labels in volumes (FreeSurferColorLUT.txt): aparc and any
// other atlas 1000 + region index (lh), 2000 + index (rh); aparc.a2009s 11100 + index, 12100 +
// index.
int ribbon_label_base(const std::string& atlas, const std::string& hemi);
// Each voxel centre of `grid` (its dims and vox2ras; data ignored) that lies inside a
// hemisphere's pial surface and outside its white surface gets the region of the nearest point
// of that hemisphere's midthickness surface (label base + region index; 0 for an unlabelled
// vertex), every other voxel 0. A voxel in both hemispheres' ribbons (banks touching across the
// fissure) goes to the nearer midthickness. Multi-threaded.
Volume label_ribbon(const Volume& grid, const std::vector<RibbonHemisphere>& hemispheres,
                    const std::string& atlas);
// The colour table of those labels in FreeSurferColorLUT's text form ("index name R G B A"
// lines; names ctx-lh-REGION, or ctx_lh_REGION for aparc.a2009s), as MRtrix3's labelconvert and
// Freeview read it; label 0 is "Unknown".
std::string ribbon_colour_table(const std::vector<RibbonHemisphere>& hemispheres,
                                const std::string& atlas);

// Writes label/ATLAS.ribbon.nii.gz (label_ribbon on the grid `geometry` describes, int16) and
// label/ATLAS.ribbon_lut.txt (ribbon_colour_table) under a subject folder, each atomically.
// InputError when the geometry is not valid (surfaces without the scan's volume information).
void write_ribbon_labels(const std::vector<RibbonHemisphere>& hemispheres, const std::string& atlas,
                         const VolumeGeometry& geometry, const std::string& subject_dir);

// The bundled fsaverage5 folder (surfaces, sphere, label/*.annot): $DDCSR_FSAVERAGE when set,
// else data/fsaverage5 beside the executable's build or install tree.
std::string default_fsaverage_dir(const std::string& executable_path);

// Registration and the atlases' labels for one hemisphere. `atlases` name annotation files in
// the fsaverage folder's label/ (aparc, aparc.a2009s).
struct HemisphereParcellation {
  AtlasCorrespondence correspondence;
  std::vector<std::pair<std::string, Annotation>> annotations;  // atlas name, subject labels
};
HemisphereParcellation parcellate_hemisphere(const std::string& hemi, const Mesh& white,
                                             const Mesh& sphere, const std::vector<float>& sulc,
                                             const std::vector<float>& curv,
                                             const std::string& fsaverage_dir,
                                             const std::vector<std::string>& atlases);

// Writes, under a subject folder: surf/HEMI.sphere.reg (+ .surf.gii), label/HEMI.ATLAS.annot
// (+ .label.gii), stats/HEMI.ATLAS.tsv (region_stats with a header row), each atomically.
void write_parcellation(const HemisphereParcellation& p, const std::string& hemi, const Mesh& white,
                        const Mesh& pial, const std::vector<float>& thickness,
                        const VolumeGeometry& geometry, const std::string& subject_dir);

}  // namespace ddcsr
