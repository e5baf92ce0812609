// Per-subject acquisition physics and head anatomy beyond the brain, drawn from the seed.
//
// Why: a network trained on phantoms with fixed tissue constants learns those constants (where
// a b0 or FA edge lies for *this* simulator) instead of where boundaries are. With
// `--physics random` every constant of the signal, the noise and the sampling is a fresh draw
// per seed over a wide range (the SynthSeg principle), so no constant can be relied on; with
// `fixed` everything comes from the options as before and the legacy phantom is reproduced
// byte for byte. `--anatomy` chooses the tissue around the brain: `legacy` (the old CSF band,
// dark skull band and scalp band), `whole-head` (variable CSF, skull with marrow, muscle, fat,
// skin, eyes, plus corpus callosum, diencephalon, third ventricle and cerebellar folia),
// `skull-stripped` (the same brain, signal zero outside a brain mask of varying tightness) or
// `random` (one of the last two per seed, 30 % stripped).
//
// Every drawn number is named; physics_values() and head_values() list them for meta.json and
// physics_ranges() gives the documented range of each (README, `ddcsr simulate`), which the
// tests hold the draws to. Each comes from its own generator (mix_seed(seed, 700) physics,
// 701 head), so that adding a draw never changes the geometry, and the truth, of a seed.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ddcsr/affine.h"
#include "ddcsr/simulate/tissue.h"

namespace ddcsr::sim {

struct SimulationOptions;

struct Physics {
  bool random = false;
  Vec3 voxel{2, 2, 2};  // mm along the voxel axes i, j, k
  std::string orientation = "LAS";
  // Partial field of view: `fov_cut_mm` of the head's extent removed at one end (side -1: low
  // index, +1: high index) of voxel axis `fov_axis`; -1 = the whole head.
  int fov_axis = -1, fov_side = 0;
  double fov_cut_mm = 0;
  TissueModel tissue;
  FibreModel fibres;
  // Partial-volume mixing: the white (pial) fractions are blended towards a linear ramp of
  // this width (mm) across the truth white (pial) surface, with weight w / (w + voxel): tissue
  // boundaries that are not sharp (myelin gradient, CSF in the outer cortex). The ramps are
  // centred on the truth, so the boundary's 50 % level stays where the surface is.
  double mix_white_mm = 0, mix_pial_mm = 0;
  double snr = 30;  // b0 of pure white matter over the noise sd of one receive channel
  int coils = 1;    // 1: Rician; L > 1: non-central chi with 2L degrees of freedom
  double bias_field = 0, bias_wavelength_mm = 220;
  // Point spread along each voxel axis: Gaussian blur (FWHM in voxels) and k-space truncation
  // (the data acquired at 1 / factor of the grid's k-space extent and zero-filled: a truncated
  // sinc kernel, whose side lobes are Gibbs ringing); factor 0 or 1 = none.
  Vec3 blur_fwhm_vox{0, 0, 0}, ringing_factor{0, 0, 0};
};

struct HeadModel {
  bool whole = false;     // whole-head anatomy (else the legacy bands)
  bool stripped = false;  // signal set to 0 outside the strip mask
  // Layer thicknesses (mm, before --scale): thickness(x) = mean (1 + variation tanh(field(x)))
  // with a smooth unit random field, so each layer thins and thickens over the head.
  double csf_mm = 2, csf_variation = 0;
  double skull_mm = 6, skull_variation = 0, marrow_share = 0.4;
  double muscle_mm = 1, fat_mm = 3, fat_variation = 0, skin_mm = 1.5;
  // Skull-stripped: the mask's edge lies csf(x) + strip_offset_mm (floored at 0.3 mm) outside
  // the brain, so it sometimes cuts into the outer CSF and sometimes keeps a rim of skull.
  double strip_offset_mm = 0;
  double orbit_fat_mm = 4;
  double dura_mm = 1;  // tentorium and falx
  // Cerebellar folia (phantom.cpp): lobules around the fan, phases of the lobules' and the
  // folia's pattern, grey over the white branches, depth of the fissures between folia and
  // between lobules.
  double cb_lobules = 17, cb_lobule_phase = 0, cb_folium_phase = 0, cb_grey_mm = 1.2;
  double cb_folium_fissure_mm = 3, cb_lobule_fissure_mm = 6;
  // The largest distance beyond the brain that any layer reaches (mm, scaled): the grid margin.
  double outer_extent(double scale) const;
};

// The physics of a subject: from the options (fixed), or drawn from the seed (random).
Physics make_physics(const SimulationOptions& opts);
HeadModel make_head(const SimulationOptions& opts);

// Name and value of every physics (head) number, in a fixed order, for meta.json and tests.
std::vector<std::pair<std::string, double>> physics_values(const Physics& p);
std::vector<std::pair<std::string, double>> head_values(const HeadModel& h);

struct DrawRange {
  std::string name;
  double lo, hi;
};
// Documented range of every randomly drawn value (names as in physics_values/head_values).
const std::vector<DrawRange>& physics_ranges();

// Normalised 1D kernel (odd length) of the point spread along one axis: a Gaussian of
// `fwhm_vox` convolved with a truncated sinc of `ringing_factor` (see Physics).
std::vector<double> psf_kernel(double fwhm_vox, double ringing_factor);

}  // namespace ddcsr::sim
