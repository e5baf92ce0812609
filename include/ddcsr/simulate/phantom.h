// A simulated diffusion MRI subject with ground-truth cortical surfaces ("ddcsr simulate").
//
// Pipeline: geometry (geometry.h) -> acquisition grid -> signed distance volumes of the four
// surfaces (distance.h) -> partial-volume fractions (rasterize.h: white, pial, ventricles, deep
// grey, cerebellum and brainstem; the intracranial CSF envelope, skull and scalp are distance
// bands around the pial surfaces and the hindbrain)
// -> multi-compartment signal (tissue.h) -> optional bias field -> point spread (blur, ringing;
// random physics) -> Rician or non-central chi noise -> skull stripping (stripped anatomy).
//
// Whole head (anatomy other than legacy): the layers outside the brain are distance bands of
// smoothly varying thickness (physics.h HeadModel): CSF, skull with marrow in its middle,
// muscle, fat, skin; the eyes with orbital fat sit in front; dura (falx, tentorium) takes the
// middle of the CSF gaps between the hemispheres and between the cerebrum and the hindbrain. The
// cerebellum gets folia: white branches from its core towards the surface, grey over them, CSF in
// the fissures between, a fan of lamellae about the left-right axis through its centre (folia, 3x
// the lobules' frequency, only in the outer 4 mm), evaluated at 8 points per voxel. Midline
// structures (geometry.h) fill what lies between the two white surfaces at the medial wall: the
// white surface runs across the corpus callosum and the diencephalon as FreeSurfer's does, so the
// truth's band between white and pial there holds callosal white matter or diencephalic grey
// matter, never cortex; everywhere else the extra anatomy is kept out of that band (cerebellum
// and brainstem 1.5 mm outside the pial surfaces, nuclei and ventricles inside white, the head
// outside the CSF). Nothing of it changes the truth surfaces or SDFs.
//
// Grid: voxels of --voxel-size mm covering the head (brain + CSF + 6 mm skull + 5 mm scalp +
// 4 mm air); the storage order sets the voxel axes: RAS (identity), LAS (first axis flipped,
// what dcm2niix writes for axial scans), LPI (all flipped), oblique (LAS turned by 15, -5
// and 8 degrees about x, y, z). The subject lives in scanner RAS and is the same for every
// orientation; only its sampling differs.
//
// White-matter fibres (in MNI-like template coordinates, carried to the scanner by the
// subject's similarity): a projection fan (corona radiata) from below the basal ganglia
// everywhere, crossed by callosal fibres (left-right, rising laterally) in the centrum
// semiovale and by an anterior-posterior association bundle laterally, each with a compactly
// supported weight, and bending into the gyri along the white surface normal within 3.5 mm of
// it. Fractions frame 4 holds 1 - (weight of the dominant population): 0 in single-fibre voxels.
// Cortical grey matter is oriented along the gradient of sdf_white + sdf_pial (radial).
//
// Determinism: no step depends on the thread count; noise is drawn per (volume, slice) from
// generators seeded by (seed, volume, slice). Same seed and version -> byte-identical files.
#pragma once
#include <array>
#include <string>
#include <vector>

#include "ddcsr/progress.h"
#include "ddcsr/simulate/geometry.h"
#include "ddcsr/simulate/physics.h"
#include "ddcsr/simulate/protocol.h"
#include "ddcsr/simulate/tissue.h"
#include "ddcsr/volume.h"

namespace ddcsr::sim {

struct SimulationOptions {
  GeometryOptions geometry;
  double voxel_size = 2.0;  // mm, isotropic
  // Voxel size of the written signed distance volumes when finer than the DWI voxels (same axes
  // and field of view); 0 = the DWI grid itself. Trilinear interpolation of a distance map bends
  // off the surface where it curves: on the 1.5 mm DWI grid the truth SDF reads 0.13-0.17 mm at
  // the truth vertices, on 0.8 mm below 0.1 mm, which a ground truth must be.
  double sdf_voxel_size = 0.8;
  std::vector<Shell> shells{{1000, 30}, {2000, 60}};
  int num_b0 = 6;
  double snr = 30;                  // b0 white-matter signal over the noise sd; 0 = noise-free
  double bias_field = 0;            // sd of the log of a smooth multiplicative field; 0 = none
  std::string orientation = "LAS";  // RAS, LAS, LPI or oblique
  int supersample = 4;              // sub-columns per voxel side for partial volumes
  double signal_scale = 1000;       // b0 of pure CSF
  double csf_margin = 2;            // mm of CSF around the brain before the skull
  TissueModel tissue;
  // legacy | whole-head | skull-stripped | random (physics.h). legacy reproduces the phantoms
  // of earlier versions byte for byte.
  std::string anatomy = "legacy";
  // fixed: voxel_size, snr, bias_field, orientation and tissue as given; random: all drawn
  // from the seed (physics.h), the voxel sizes too unless draw_resolution is false.
  std::string physics = "fixed";
  bool draw_resolution = true;
  // mm of head around the brain's box in the grid; 0 = what the anatomy needs. A fixed margin
  // is taken around the cerebrum's box alone (the hindbrain, larger in the whole head, and the
  // eyes left out), so that the legacy and whole-head phantoms of a seed share one grid and
  // their truth can be compared voxel by voxel.
  double grid_margin = 0;
  // both | lh | rh: the hemispheres in the image (issue 26). One hemisphere of the legacy anatomy
  // is an ex vivo-like specimen: the tissue inside its pial surface, no CSF, skull or hindbrain,
  // in a medium without signal (as a specimen in perfluoropolyether); of the whole head (and the
  // skull-stripped head), the head cut at the mid-surface between the two pial surfaces, so that
  // the hemisphere keeps its own CSF, meninges and half of the head. The cut is applied to the
  // signal before the point spread and noise; the same seed gives the same hemisphere as in
  // its two-hemisphere phantom, on the same grid. Truth surfaces and SDFs are written for the
  // hemisphere present only.
  std::string hemispheres = "both";
};

// Frames of Subject::fractions, in order. Non-cortical grey matter is the deep nuclei and the
// cerebellar cortex; white matter includes the cerebellar white matter and the brainstem.
inline const char* const kFractionFrames[] = {"white_matter", "cortical_grey_matter",
                                              "non_cortical_grey_matter", "csf",
                                              "white_matter_secondary"};

// Values of Subject::labels (whole head only): the structure with the largest fraction in the
// voxel, 0 where nothing (air) has more.
inline const char* const kLabelNames[] = {"background",
                                          "cerebral_white_matter",
                                          "cortex",
                                          "deep_grey_nuclei",
                                          "lateral_ventricles",
                                          "csf",
                                          "cerebellar_white_matter",
                                          "cerebellar_grey_matter",
                                          "brainstem",
                                          "corpus_callosum",
                                          "diencephalon",
                                          "third_ventricle",
                                          "skull",
                                          "marrow",
                                          "muscle",
                                          "fat",
                                          "skin",
                                          "eye",
                                          "dura"};

struct Subject {
  PhantomGeometry geometry;
  Physics physics;
  HeadModel head;
  Volume labels;      // whole head only: see kLabelNames
  Protocol protocol;  // b-vectors in scanner RAS
  Volume dwi;         // 4D
  Volume mask;        // intracranial, 0/1
  Volume fractions;   // 5 frames, see kFractionFrames
  // lh.white, lh.pial, rh.white, rh.pial (mm, negative inside), on the DWI grid or the finer
  // grid of sdf_voxel_size.
  std::array<Volume, 4> sdf;
  double noise_sigma = 0;
  // The hemispheres present (SimulationOptions::hemispheres): {0, 1}, {0} or {1}.
  std::vector<int> hemispheres{0, 1};
};

// The voxel axes (3x3 rotation with signs, row-major) of a storage order; UsageError otherwise.
std::array<double, 9> orientation_axes(const std::string& name);

// The acquisition grid for a subject's geometry (3D, data empty of meaning): the brain's box
// with the head's margin (and the eyes), cut to the partial field of view of the physics.
Volume acquisition_grid(const PhantomGeometry& geometry, const SimulationOptions& opts);
Volume acquisition_grid(const PhantomGeometry& geometry, const SimulationOptions& opts,
                        const Physics& physics, const HeadModel& head);
// A grid with the same axes covering the same field of view with voxels of `voxel_size`.
Volume resampled_grid(const Volume& grid, double voxel_size);

// Checks option ranges (UsageError) without doing any work.
void validate(const SimulationOptions& opts);

Subject simulate_subject(const SimulationOptions& opts, const ProgressFn& progress = {});

// Writes the subject folder: dwi.nii.gz/.bval/.bvec (FSL convention), mask.nii.gz,
// fractions.nii.gz, labels.nii.gz (whole head only), sdf/{lh,rh}.{white,pial}.nii.gz,
// surf/{lh,rh}.{white,pial} (FreeSurfer, with the volume-geometry footer of dwi.nii.gz) and
// .surf.gii (scanner RAS), meta.json. Everything goes to a hidden sibling folder first, which is
// renamed onto `dir` once complete; an existing non-empty `dir` is replaced only when `overwrite`,
// else UsageError.
void write_subject(const Subject& subject, const SimulationOptions& opts, const std::string& dir,
                   bool overwrite, const ProgressFn& progress = {});

// meta.json text: every option, the derived subject parameters, the seed and the version.
std::string meta_json(const Subject& subject, const SimulationOptions& opts);

}  // namespace ddcsr::sim
