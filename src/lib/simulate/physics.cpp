#include "ddcsr/simulate/physics.h"

#include <algorithm>
#include <cmath>

#include "ddcsr/simulate/phantom.h"
#include "ddcsr/simulate/random.h"

namespace ddcsr::sim {

namespace {

// The ranges are wide on purpose: each covers what 1.5 T to 7 T scanners, TE 50-120 ms,
// b-values of 700-3000 and healthy to atrophic adults give, and then some, so that real scans
// sit well inside the training distribution rather than at its edge.
const std::vector<DrawRange> kRanges = {
    {"voxel_base_mm", 1.25, 3.0},
    {"voxel_i_mm", 1.25, 3.0},
    {"voxel_j_mm", 1.25, 3.0},
    {"voxel_k_mm", 1.25, 3.0},
    {"fov_cut_mm", 0, 45},
    {"wm_s0", 0.15, 0.45},
    {"cortex_s0_over_wm", 1.05, 1.8},
    {"deep_grey_s0_share", 0.3, 0.9},
    {"csf_s0_over_wm", 0.7, 6.0},
    {"muscle_s0_over_wm", 0.3, 1.5},
    {"fat_s0_over_wm", 0.0, 1.5},
    {"marrow_s0_over_wm", 0.0, 1.0},
    {"eye_s0_over_csf", 0.8, 1.1},
    {"wm_md", 0.6e-3, 0.9e-3},
    {"wm_fa", 0.45, 0.85},
    {"cortex_md", 0.7e-3, 1.1e-3},
    {"cortex_fa", 0.05, 0.3},
    {"deep_grey_md", 0.65e-3, 1.0e-3},
    {"deep_grey_fa", 0.05, 0.3},
    {"csf_d", 2.5e-3, 3.2e-3},
    {"muscle_md", 0.8e-3, 1.6e-3},
    {"muscle_fa", 0.1, 0.5},
    {"fat_d", 0.005e-3, 0.1e-3},
    {"marrow_d", 0.05e-3, 0.4e-3},
    {"eye_d", 2.5e-3, 3.2e-3},
    {"fibre_callosal", 0.25, 0.75},
    {"fibre_association", 0.2, 0.7},
    {"fibre_gyral", 0.3, 0.9},
    {"fibre_wobble", 0.05, 0.3},
    {"mix_white_mm", 0, 1.0},
    {"mix_pial_mm", 0, 1.0},
    {"snr", 8, 50},
    {"coils", 1, 8},
    {"bias_field", 0, 0.3},
    {"bias_wavelength_mm", 120, 300},
    {"blur_fwhm_vox_i", 0, 1.0},
    {"blur_fwhm_vox_j", 0, 1.0},
    {"blur_fwhm_vox_k", 0, 1.0},
    {"ringing_factor_i", 0, 1.6},
    {"ringing_factor_j", 0, 1.6},
    {"ringing_factor_k", 0, 1.6},
    {"csf_mm", 1.0, 4.5},
    {"csf_variation", 0.2, 0.7},
    {"skull_mm", 4, 8},
    {"skull_variation", 0.1, 0.35},
    {"marrow_share", 0.2, 0.6},
    {"muscle_mm", 0.5, 2.0},
    {"fat_mm", 1.5, 6.0},
    {"fat_variation", 0.1, 0.5},
    {"skin_mm", 1.0, 2.5},
    {"strip_offset_mm", -1.0, 2.0},
    {"orbit_fat_mm", 3, 5},
    {"dura_mm", 0.5, 1.5},
    {"cb_lobules", 14, 20},
    {"cb_lobule_phase", 0, 2 * M_PI},
    {"cb_folium_phase", 0, 2 * M_PI},
    {"cb_grey_mm", 0.8, 1.6},
    {"cb_folium_fissure_mm", 2, 4},
    {"cb_lobule_fissure_mm", 4, 8},
};

double log_uniform(Random& r, double lo, double hi) {
  return std::exp(r.uniform(std::log(lo), std::log(hi)));
}

}  // namespace

const std::vector<DrawRange>& physics_ranges() { return kRanges; }

double HeadModel::outer_extent(double scale) const {
  if (!whole) return 0;
  return (csf_mm * (1 + csf_variation) + skull_mm * (1 + skull_variation) + muscle_mm +
          fat_mm * (1 + fat_variation) + skin_mm) *
         scale;
}

Physics make_physics(const SimulationOptions& o) {
  Physics p;
  p.voxel = {o.voxel_size, o.voxel_size, o.voxel_size};
  p.orientation = o.orientation;
  p.tissue = o.tissue;
  p.snr = o.snr;
  p.bias_field = o.bias_field;
  if (o.physics != "random") return p;

  p.random = true;
  Random r(mix_seed(o.geometry.seed, 700));
  // Resolution: half the subjects get thicker slices along one axis, as 2D EPI often has.
  const double base = r.uniform(1.25, 3.0);
  const bool anisotropic = r.uniform() < 0.5;
  const int slice_axis = std::min(2, static_cast<int>(r.uniform() * 3));
  const double slice = std::min(3.0, base * r.uniform(1.1, 1.8));
  if (o.draw_resolution) {
    p.voxel = {base, base, base};
    if (anisotropic) p.voxel[slice_axis] = slice;
  }
  const char* orientations[4] = {"RAS", "LAS", "LPI", "oblique"};
  p.orientation = orientations[std::min(3, static_cast<int>(r.uniform() * 4))];
  // Partial field of view in 40 % of subjects: a slab that misses the vertex or the
  // cerebellum, or a box that clips the frontal or occipital pole.
  const bool cut = r.uniform() < 0.4;
  const int cut_axis = std::min(2, static_cast<int>(r.uniform() * 3));
  const int cut_side = r.uniform() < 0.5 ? -1 : 1;
  const double cut_mm = r.uniform(0, 45);
  if (cut) {
    p.fov_axis = cut_axis;
    p.fov_side = cut_side;
    p.fov_cut_mm = cut_mm;
  }

  // T2 weighting: white matter's b0 sets the scale; the other tissues are ratios to it, CSF
  // anywhere from darker than white matter (short TE, partial inversion) to far brighter.
  TissueModel& T = p.tissue;
  const double wm_s0 = r.uniform(0.15, 0.45);
  const double cortex_s0 = wm_s0 * r.uniform(1.05, 1.8);
  const double deep_s0 = wm_s0 + r.uniform(0.3, 0.9) * (cortex_s0 - wm_s0);
  const double csf_s0 = wm_s0 * log_uniform(r, 0.7, 6.0);
  const double muscle_s0 = wm_s0 * r.uniform(0.3, 1.5);
  const double fat_s0 = wm_s0 * r.uniform(0.0, 1.5);
  const double marrow_s0 = wm_s0 * r.uniform(0.0, 1.0);
  const double eye_s0 = csf_s0 * r.uniform(0.8, 1.1);
  T.white = compartment_with_fa(wm_s0, r.uniform(0.6e-3, 0.9e-3), r.uniform(0.45, 0.85));
  T.cortex = compartment_with_fa(cortex_s0, r.uniform(0.7e-3, 1.1e-3), r.uniform(0.05, 0.3));
  T.deep_grey = compartment_with_fa(deep_s0, r.uniform(0.65e-3, 1.0e-3), r.uniform(0.05, 0.3));
  const double csf_d = r.uniform(2.5e-3, 3.2e-3);
  T.csf = Compartment{csf_s0, csf_d, csf_d};
  T.muscle = compartment_with_fa(muscle_s0, r.uniform(0.8e-3, 1.6e-3), r.uniform(0.1, 0.5));
  T.scalp = compartment_with_fa(muscle_s0, T.muscle.md(), 0.0);
  const double fat_d = r.uniform(0.005e-3, 0.1e-3), marrow_d = r.uniform(0.05e-3, 0.4e-3),
               eye_d = r.uniform(2.5e-3, 3.2e-3);
  T.fat = Compartment{fat_s0, fat_d, fat_d};
  T.marrow = Compartment{marrow_s0, marrow_d, marrow_d};
  T.eye = Compartment{eye_s0, eye_d, eye_d};

  p.fibres.callosal = r.uniform(0.25, 0.75);
  p.fibres.association = r.uniform(0.2, 0.7);
  p.fibres.gyral = r.uniform(0.3, 0.9);
  p.fibres.wobble = r.uniform(0.05, 0.3);
  p.mix_white_mm = r.uniform(0, 1.0);
  p.mix_pial_mm = r.uniform(0, 1.0);

  p.snr = log_uniform(r, 8, 50);
  // Half Rician (one channel, or adaptive combination), half sum-of-squares of 2-8 channels.
  p.coils = r.uniform() < 0.5 ? 1 : 2 + std::min(6, static_cast<int>(r.uniform() * 7));
  p.bias_field = r.uniform(0, 0.3);
  p.bias_wavelength_mm = r.uniform(120, 300);
  for (int a = 0; a < 3; ++a) p.blur_fwhm_vox[a] = r.uniform(0, 1.0);
  // Ringing in 60 % of subjects, along the in-plane axes where partial Fourier and no
  // apodisation leave it in EPI.
  const bool ringing = r.uniform() < 0.6;
  for (int a = 0; a < 3; ++a) {
    const double f = r.uniform(1.15, 1.6);
    if (ringing && a != slice_axis) p.ringing_factor[a] = f;
  }
  return p;
}

HeadModel make_head(const SimulationOptions& o) {
  HeadModel h;
  if (o.anatomy == "legacy") return h;
  Random r(mix_seed(o.geometry.seed, 701));
  const double stripped_draw = r.uniform();
  h.whole = true;
  h.stripped = o.anatomy == "skull-stripped" || (o.anatomy == "random" && stripped_draw < 0.3);
  h.csf_mm = r.uniform(1.0, 4.5);
  h.csf_variation = r.uniform(0.2, 0.7);
  h.skull_mm = r.uniform(4, 8);
  h.skull_variation = r.uniform(0.1, 0.35);
  h.marrow_share = r.uniform(0.2, 0.6);
  h.muscle_mm = r.uniform(0.5, 2.0);
  h.fat_mm = r.uniform(1.5, 6.0);
  h.fat_variation = r.uniform(0.1, 0.5);
  h.skin_mm = r.uniform(1.0, 2.5);
  h.strip_offset_mm = r.uniform(-1.0, 2.0);
  h.orbit_fat_mm = r.uniform(3, 5);
  h.dura_mm = r.uniform(0.5, 1.5);
  h.cb_lobules = r.uniform(14, 20);
  h.cb_lobule_phase = r.uniform(0, 2 * M_PI);
  h.cb_folium_phase = r.uniform(0, 2 * M_PI);
  h.cb_grey_mm = r.uniform(0.8, 1.6);
  h.cb_folium_fissure_mm = r.uniform(2, 4);
  h.cb_lobule_fissure_mm = r.uniform(4, 8);
  return h;
}

std::vector<std::pair<std::string, double>> physics_values(const Physics& p) {
  const TissueModel& T = p.tissue;
  const double wm = T.white.s0;
  return {
      {"voxel_base_mm", std::min({p.voxel[0], p.voxel[1], p.voxel[2]})},
      {"voxel_i_mm", p.voxel[0]},
      {"voxel_j_mm", p.voxel[1]},
      {"voxel_k_mm", p.voxel[2]},
      {"fov_axis", p.fov_axis},
      {"fov_side", p.fov_side},
      {"fov_cut_mm", p.fov_cut_mm},
      {"wm_s0", wm},
      {"cortex_s0_over_wm", T.cortex.s0 / wm},
      {"deep_grey_s0_share", T.cortex.s0 > wm ? (T.deep_grey.s0 - wm) / (T.cortex.s0 - wm) : 0.0},
      {"csf_s0_over_wm", T.csf.s0 / wm},
      {"muscle_s0_over_wm", T.muscle.s0 / wm},
      {"fat_s0_over_wm", T.fat.s0 / wm},
      {"marrow_s0_over_wm", T.marrow.s0 / wm},
      {"eye_s0_over_csf", T.eye.s0 / T.csf.s0},
      {"wm_md", T.white.md()},
      {"wm_fa", T.white.fa()},
      {"cortex_md", T.cortex.md()},
      {"cortex_fa", T.cortex.fa()},
      {"deep_grey_md", T.deep_grey.md()},
      {"deep_grey_fa", T.deep_grey.fa()},
      {"csf_d", T.csf.md()},
      {"muscle_md", T.muscle.md()},
      {"muscle_fa", T.muscle.fa()},
      {"fat_d", T.fat.md()},
      {"marrow_d", T.marrow.md()},
      {"eye_d", T.eye.md()},
      {"fibre_callosal", p.fibres.callosal},
      {"fibre_association", p.fibres.association},
      {"fibre_gyral", p.fibres.gyral},
      {"fibre_wobble", p.fibres.wobble},
      {"mix_white_mm", p.mix_white_mm},
      {"mix_pial_mm", p.mix_pial_mm},
      {"snr", p.snr},
      {"coils", p.coils},
      {"bias_field", p.bias_field},
      {"bias_wavelength_mm", p.bias_wavelength_mm},
      {"blur_fwhm_vox_i", p.blur_fwhm_vox[0]},
      {"blur_fwhm_vox_j", p.blur_fwhm_vox[1]},
      {"blur_fwhm_vox_k", p.blur_fwhm_vox[2]},
      {"ringing_factor_i", p.ringing_factor[0]},
      {"ringing_factor_j", p.ringing_factor[1]},
      {"ringing_factor_k", p.ringing_factor[2]},
  };
}

std::vector<std::pair<std::string, double>> head_values(const HeadModel& h) {
  return {{"whole", h.whole ? 1.0 : 0.0},
          {"stripped", h.stripped ? 1.0 : 0.0},
          {"csf_mm", h.csf_mm},
          {"csf_variation", h.csf_variation},
          {"skull_mm", h.skull_mm},
          {"skull_variation", h.skull_variation},
          {"marrow_share", h.marrow_share},
          {"muscle_mm", h.muscle_mm},
          {"fat_mm", h.fat_mm},
          {"fat_variation", h.fat_variation},
          {"skin_mm", h.skin_mm},
          {"strip_offset_mm", h.strip_offset_mm},
          {"orbit_fat_mm", h.orbit_fat_mm},
          {"dura_mm", h.dura_mm},
          {"cb_lobules", h.cb_lobules},
          {"cb_lobule_phase", h.cb_lobule_phase},
          {"cb_folium_phase", h.cb_folium_phase},
          {"cb_grey_mm", h.cb_grey_mm},
          {"cb_folium_fissure_mm", h.cb_folium_fissure_mm},
          {"cb_lobule_fissure_mm", h.cb_lobule_fissure_mm}};
}

std::vector<double> psf_kernel(double fwhm_vox, double ringing_factor) {
  std::vector<double> gauss{1.0};
  if (fwhm_vox > 0.05) {
    const double sigma = fwhm_vox / (2 * std::sqrt(2 * std::log(2.0)));
    const int half = static_cast<int>(std::ceil(3 * sigma));
    gauss.assign(2 * half + 1, 0.0);
    for (int n = -half; n <= half; ++n) gauss[n + half] = std::exp(-0.5 * n * n / (sigma * sigma));
  }
  std::vector<double> sinc{1.0};
  if (ringing_factor > 1.0) {
    // k-space kept up to 1 / factor of the grid's Nyquist and zero-filled: the image is
    // convolved with sinc(n / factor); six lobes carry the visible ringing.
    const int half = static_cast<int>(std::ceil(6 * ringing_factor));
    sinc.assign(2 * half + 1, 0.0);
    for (int n = -half; n <= half; ++n) {
      const double x = M_PI * n / ringing_factor;
      sinc[n + half] = n == 0 ? 1.0 : std::sin(x) / x;
    }
  }
  std::vector<double> k(gauss.size() + sinc.size() - 1, 0.0);
  for (size_t a = 0; a < gauss.size(); ++a)
    for (size_t b = 0; b < sinc.size(); ++b) k[a + b] += gauss[a] * sinc[b];
  double sum = 0;
  for (double v : k) sum += v;
  for (double& v : k) v /= sum;
  return k;
}

}  // namespace ddcsr::sim
