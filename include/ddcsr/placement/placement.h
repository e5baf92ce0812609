// Placement: the white and pial surfaces moved onto the boundaries the subject's own scan shows.
//
// The network learns the contrast of the phantoms it was trained on; DiffCoSeg follows its maps,
// so every bias of the network ends in the surfaces (phantoms of another tissue model: white
// +0.5 mm, pial +1.2 to +1.5 mm too far out). FreeSurfer places its final surfaces on the image's
// own intensity transitions; this stage does the same with the diffusion signal, after DiffCoSeg.
//
// Evidence, from the scan alone and for any protocol:
// - Pial: the CSF volume fraction of the b0, between the regional b0 of cortex and of CSF. Those
//   levels are measured in the subject's voxels, which the mean normalised signal S/S0 picks
//   (linear in the signal fractions of tissue and free water, free of the receive field:
//   r = (1 - w) a_tissue + w a_water, a_tissue around its white surface, a_water in its CSF or,
//   without enough CSF, free water at body temperature); a two-compartment model removes their
//   partial volumes. The boundary itself is read on the b0 alone, whose geometry is one, where
//   diffusion-weighted volumes without eddy-current correction sit slightly apart from it.
//   Around an ex vivo specimen in a medium without signal there is no CSF to be brighter than
//   cortex: the tissue fraction is then the b0 over cortex's level (tissue against void).
// - White: white matter's share f of each sample x = f W + (1 - f) G of the tensor's deviatoric
//   part along the vertex's normal, where |W| is white matter's anisotropy at the boundary,
//   extrapolated from two readings beyond the scan's blur inside it (it varies with the fibre
//   configuration and falls where fibres turn into cortex) and G is cortex's own deviatoric
//   tensor read just outside it; f
//   solves |x - (1 - f) G| = f |W|. Exact for the mixture whatever the two orientations: the
//   magnitude alone is not, because radial cortex and tangential superficial white matter
//   (U-fibres) partly cancel and a half-and-half voxel looks mostly cortex; and free of white
//   matter's turning with depth, which a projection onto the deep tensor is not. Without the
//   tensors (DiffusionMaps::deviatoric), the magnitude sqrt(3/2)|dev D| between cortex's
//   regional level and white matter's. The tensor of a mixed voxel averages its compartments by
//   signal, not by volume, and cortex is brighter than white matter in b0 (T2): a half-and-half
//   voxel has f = Sw / (Sw + Sg) (Sw, Sg: their b0 levels), which is where the boundary lies.
// A boundary blurred by a symmetric point-spread function crosses half-way between its two
// sides' levels where it lies if it is flat, and inside it by the blur's variance times its mean
// curvature where it bends (outside in a fundus), which is corrected. Each vertex searches its
// normal over +-search_mm for that crossing nearest to the surface; where the profile shows no
// clear step (a closed sulcus, a thin blade whose white matter never reaches its level, a
// field-of-view cut) it has no evidence. The displacements are averaged over the surface, weighted
// by evidence, so vertices without evidence follow their neighbours or stay where they are.
//
// Guarantees: steps are bounded (`max_step_mm`); white stays inside pial with a gap, neither
// crosses the medial sheet of a sulcus or gyral blade (measured on the network's maps); the
// topology is untouched, and a final exact self-intersection check of white and pial as one mesh
// takes back every displacement that made a face cross another, so DiffCoSeg's guarantees
// (Euler 2, no self-intersection, white inside pial) still hold.
#pragma once
#include <cstdint>
#include <vector>

#include "ddcsr/mesh.h"
#include "ddcsr/volume.h"

namespace ddcsr {

struct DiffusionMaps;  // ddcsr/features/dti.h

// What the subject's scan says about its tissues, on the scan's grid.
struct TissueEvidence {
  Volume tissue_fraction;    // volume fraction of brain tissue (against free water), 0..1
  Volume anisotropy;         // sqrt(3/2)|dev D|, um2/ms
  Volume cortex_level;       // regional anisotropy of cortex, um2/ms
  Volume cortex_b0, csf_b0;  // regional b0 of cortex and of CSF (the scan's units)
  Volume b0;                 // the scan's mean b0
  Volume deviatoric;         // 5 frames: DiffusionMaps::deviatoric in um2/ms; empty without it
  // The signatures measured in the subject.
  double reference_bval = 0;      // s/mm2: the shell the free-water fraction leans on most
  double tissue_attenuation = 0;  // S/S0 of tissue at reference_bval
  double water_attenuation = 0;   // S/S0 of free water at reference_bval
  double water_to_tissue_s0 = 1;  // T2 weighting: S0 of CSF over S0 of tissue
  double white_anisotropy = 0, cortex_anisotropy = 0;  // medians, um2/ms
  int64_t tissue_voxels = 0, water_voxels = 0, white_voxels = 0, cortex_voxels = 0;
  bool water_measured = false;  // false: free water at 37 C assumed (3.0 um2/ms)
  // false: no CSF brighter than cortex around the brain (a specimen in a medium without
  // signal); the tissue fraction is then tissue against void.
  bool csf_outside = true;
};

struct PlacementOptions {
  // Which surfaces move; the other stays where DiffCoSeg put it (and still bounds the one that
  // moves).
  bool place_white = true, place_pial = true;
  double search_mm = 3.0;      // each vertex looks this far along its normal, both ways
  double sample_mm = 0.2;      // profile step
  double max_step_mm = 2.5;    // no vertex moves farther
  double smoothing_mm = 2.0;   // Gaussian width of the evidence-weighted averaging over the surface
  double min_evidence = 0.15;  // local share of vertices with evidence below which moves fade
  double min_gap_mm =
      0.2;  // white keeps this far inside pial; surfaces this far from medial sheets
  double min_thickness_mm = 0.3;  // thinner pairs (white touching itself, medial wall) stay
  // White matter's anisotropy falls towards the cortex where fibres turn into the gyri and
  // U-fibres cross them; read beyond the scan's blur, its level is too high for the white matter
  // at the boundary, and white lands too deep (simulate's fsaverage5 subject s9102 −0.49 mm, the
  // T1 of philips_enh +0.38 mm on rh). Its level at the boundary is therefore extrapolated
  // linearly, with the slope between two 1 mm readings beyond the whole support of the blur
  // (1.5 voxels: cortex's partial volume would fake a fall), times this gain (0: the level read
  // beyond the blur alone); never above that level, never below half-way to cortex's. Where white
  // matter does not fall, the readings agree and nothing changes (docs/experiments.md).
  double white_level_extrapolation = 1.0;
  // A step must rise from below `low` to above `high` of its two levels across the search range.
  double low = 0.3, high = 0.7;
  // The half-way level of a boundary blurred by the scan lies inside the boundary where it is
  // convex and outside where it is concave, by the blur's variance along the surface times the
  // mean curvature: gyral crowns and sulcal fundi come out rounded off, and the thickness too
  // large (+0.2 mm at 1.5 mm voxels, +0.4 mm at 2.5 mm on the held-out phantoms). Each found
  // boundary is moved back by that much, with the surface's own mean curvature. The variance is
  // in units of the voxel's squared size: a voxel's box and trilinear sampling alone make 0.25,
  // the profiles of a ball phantom show 0.45-0.7, and 0.4 gives the lowest ASSD on the held-out
  // phantoms (docs/experiments.md). 0 turns the correction off.
  double blur_variance_voxels = 0.4;
  int max_rounds = 12;  // rounds of taking back displacements that made faces cross
};

// The tissue evidence from the tensor maps and per-shell mean signals of the scan (`maps`,
// features/dti.h), its brain `mask`, and a signed distance map of the white surfaces (mm,
// negative inside, any grid) that says where the unambiguous voxels are. InputError when the
// maps hold no shell or the mask no voxel.
TissueEvidence estimate_tissue_evidence(const DiffusionMaps& maps, const Volume& mask,
                                        const Volume& white_sdf);

// What placement did to one surface.
struct SurfacePlacement {
  std::vector<float> displacement;  // per vertex, mm along the outward normal (+ outward)
  int64_t evidence_vertices = 0;    // vertices whose profile showed a boundary
  int64_t moved_vertices = 0;       // |displacement| >= 0.05 mm
  int64_t taken_back_vertices = 0;  // displacement withdrawn by the self-intersection check
  double mean_mm = 0, mean_abs_mm = 0, p95_abs_mm = 0;
  double evidence_percent = 0, moved_percent = 0;
  // Mean raw offset of the boundary found, over the vertices with evidence (+ outward).
  double mean_found_offset_mm = 0;
  // Mean and 95th percentile of |the curvature correction| added to the found boundaries.
  double curvature_correction_mean_abs_mm = 0, curvature_correction_p95_abs_mm = 0;
};

struct HemispherePlacement {
  SurfacePlacement white, pial;
  int rounds = 0;         // rounds of the self-intersection check
  bool reverted = false;  // the check could not be satisfied: surfaces left as they were
  double seconds_search = 0, seconds_check = 0;
};

// Moves `white` and `pial` (one hemisphere, one triangulation, scanner RAS) onto the scan's
// boundaries. `white_sdf`: this hemisphere's white signed distance map (the network's,
// reinitialised, which DiffCoSeg followed), whose medial sheets inside (gyral blades) and outside
// (closed sulci) no vertex may cross. `excluded` (may be empty): vertices to leave where they are
// (field-of-view cuts). Throws UsageError for invalid options.
HemispherePlacement place_surfaces(Mesh& white, Mesh& pial, const TissueEvidence& evidence,
                                   const Volume& white_sdf, const std::vector<uint8_t>& excluded,
                                   const PlacementOptions& options = {});

}  // namespace ddcsr
