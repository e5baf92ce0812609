#include "ddcsr/features/features.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "ddcsr/error.h"
#include "ddcsr/features/midsagittal.h"
#include "ddcsr/threads.h"

namespace ddcsr {

namespace {

// Progress shares of the stages (measured on a whole-brain scan).
constexpr double kMaskShare = 0.15, kFitShare = 0.7, kResampleShare = 0.15;

// The midline channel in mm per unit: a hemisphere is about 70 mm wide.
constexpr double kMidlineScaleMm = 20.0;

// The fit covers the mask and one voxel beyond it, so trilinear resampling at the mask's edge
// reads fitted values rather than zeros.
Volume dilate_one_voxel(const Volume& mask) {
  Volume out = mask;
  const auto& d = mask.dims;
  parallel_for(
      d[2],
      [&](int64_t k0, int64_t k1) {
        for (int64_t k = k0; k < k1; ++k)
          for (int64_t j = 0; j < d[1]; ++j)
            for (int64_t i = 0; i < d[0]; ++i) {
              if (mask.at(i, j, k) != 0.f) continue;
              bool near = false;
              for (int64_t dk = -1; dk <= 1 && !near; ++dk)
                for (int64_t dj = -1; dj <= 1 && !near; ++dj)
                  for (int64_t di = -1; di <= 1 && !near; ++di)
                    near = mask.inside(i + di, j + dj, k + dk) &&
                           mask.at(i + di, j + dj, k + dk) != 0.f;
              if (near) out.at(i, j, k) = 1.f;
            }
      },
      1);
  return out;
}

}  // namespace

std::vector<NominalSignalPlan> plan_nominal_signals(const std::vector<double>& shell_bvals) {
  std::vector<NominalSignalPlan> plans;
  const int n = static_cast<int>(shell_bvals.size());
  for (double b : feature_nominal_bvals()) {
    NominalSignalPlan p;
    p.bval = b;
    int nearest = 0;
    for (int s = 1; s < n; ++s)
      if (std::abs(shell_bvals[s] - b) < std::abs(shell_bvals[nearest] - b)) nearest = s;
    if (std::abs(shell_bvals[nearest] - b) <= 0.05 * b) {
      p.method = "measured";  // with the tensor's correction for the small b offset
      p.shell_a = nearest;
    } else if (b > shell_bvals.front() && b < shell_bvals.back()) {
      p.method = "interpolated";
      p.shell_b = static_cast<int>(std::upper_bound(shell_bvals.begin(), shell_bvals.end(), b) -
                                   shell_bvals.begin());
      p.shell_a = p.shell_b - 1;
    } else {
      p.method = "tensor-extrapolated";
      p.shell_a = nearest;
    }
    plans.push_back(p);
  }
  return plans;
}

double nominal_signal(const NominalSignalPlan& p, const std::vector<double>& shell_bvals,
                      const float* shell_means, double l1, double l2, double l3) {
  const double floor = 1e-4;
  if (p.shell_b >= 0) {  // interpolated
    const double ba = shell_bvals[p.shell_a], bb = shell_bvals[p.shell_b];
    const double ea = std::max<double>(floor, shell_means[p.shell_a]),
                 eb = std::max<double>(floor, shell_means[p.shell_b]);
    const double f = (p.bval - ba) / (bb - ba);
    return std::exp((1 - f) * std::log(ea) + f * std::log(eb));
  }
  const double lpar = l1, lperp = 0.5 * (l2 + l3);
  const double ta = tensor_spherical_mean(shell_bvals[p.shell_a], lpar, lperp);
  const double tb = tensor_spherical_mean(p.bval, lpar, lperp);
  const double ratio = ta > 1e-12 ? tb / ta : 0.0;
  return std::max(0.0, static_cast<double>(shell_means[p.shell_a])) * ratio;
}

namespace {

// Median and IQR-based scale of `values` (reordered).
ChannelNormalisation robust_normalisation(std::vector<float>& values, double clip) {
  ChannelNormalisation n;
  n.clip = clip;
  if (values.empty()) return n;
  auto q = [&](double f) {
    const auto k = static_cast<size_t>(f * static_cast<double>(values.size() - 1));
    std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
    return static_cast<double>(values[k]);
  };
  n.center = q(0.5);
  const double iqr = q(0.75) - q(0.25);
  double scale = iqr / 1.349;
  if (!(scale > 0)) {
    // Nearly constant within the mask: fall back to the full range so nothing divides by zero.
    scale = (q(1.0) - q(0.0)) / 4.0;
  }
  n.scale = scale > 0 ? scale : 1.0;
  return n;
}

// Free water at body temperature diffuses at 3.0 um2/ms; a voxel of MD 2.7 holds at least about
// 85 % of it by signal (as placement's tissue evidence counts CSF).
constexpr double kWaterMd = 2.7e-3;

// Tissue stays under 1.5 um2/ms (white and grey matter 0.6-1.0 in vivo); voxels diffusing faster
// hold free water.
constexpr double kTissueMd = 1.5e-3;
// CSF's b0 over cortex's is 1.3-3.5 in every in vivo protocol measured (placement's tissue
// evidence), and cortex is brighter than white matter: a voxel 1.5 times as bright as the
// tissue's median b0 holds free water. It tells where MD cannot: at b = 2500 alone CSF's signal
// sinks into the noise floor and its fitted MD stays under 2 um2/ms (XA30: no voxel of the mask at
// 2.7, 18 % at 1.5 times the tissue's b0).
constexpr double kWaterOverTissueB0 = 1.5;
// Below this share of free-water voxels in the mask the scan holds no CSF. Measured on the 2 mm
// network grid (MD >= 2.7 um2/ms or b0 >= 1.5 times the tissue's): in vivo scans and phantoms with
// CSF 0.14-0.36 (philips_enh 0.14, philips_achieva 0.14, XA30 0.18, the Philips slab 0.27,
// simulate s301 0.28, fsaverage5 seed 303 0.36); simulate's ex vivo-like specimens of the same
// phantoms 0.012 and 0.016 (partial volumes at their edge, and noise).
constexpr double kMaxTissueOnlyWaterShare = 0.05;
// A specimen's extent (mask.h specimen_extent): tissue within this reach of its automatic mask,
// whose opening of 5 mm radius can cut a gyrus's crown (a given mask is kept as given), and a shell
// as thick as the CSF between a head's cortex and its mask's edge (simulate's margin 2 mm, 1-4 mm
// in vivo).
constexpr double kSpecimenReachMm = 10.0;
constexpr double kSpecimenShellMm = 3.0;

// A specimen's surface and sulci border a medium without signal where every scan the network
// learnt from has CSF: void darkens the b0 of the voxels it shares without changing their S/S0
// (tissue-like diffusion), which no trained contrast has, and the network's pial stayed out of
// the sulci (issue 26: truth-to-prediction pial distance 1.58 mm on simulate's s301 lh specimen
// against 1.13 on its two-hemisphere scan, evenly over the hemisphere). So on a scan without CSF
// the void is given free water's signal, as the scan would be with CSF: a voxel of b0 s under
// cortex's level G holds a void share w = 1 - s / G; it gets b0 s + w C (CSF's b0 C = 2 G), and
// the signal-weighted mixture with free water: spherical means (s S + w C exp(-b D)) / (s + w C),
// tensor eigenvalues (1 - f) l + f D with f = w C / (s + w C) the water's share of the b0 signal,
// FA and the other diffusivities from those. Given water: cortex-like voxels (FA under 0.2;
// cortex 0.1-0.2; white matter darkens in b0 too, but is anisotropic) darker than G, and any
// voxel under half of G, which no tissue is and whose FA is the noise's. G is the 75th percentile
// of the tissue's b0 there (void darkens cortex, so the brighter half's middle is its level, as
// placement takes the brighter half). CSF over cortex in b0 is 2 at the echo times of diffusion
// scans (placement's default when no CSF is seen; 1.3-3.5 measured in vivo); free water at body
// temperature diffuses at 3.0 um2/ms.
constexpr double kCortexMaxFa = 0.2;
constexpr double kVoidBelowCortexB0 = 0.5;
constexpr double kCsfOverCortexB0 = 2.0;
constexpr double kFreeWaterDiffusivity = 3.0e-3;

// Cortex's b0 level G on the grid: the 75th percentile of the b0 of tissue voxels of FA under
// kCortexMaxFa; 0 when there are none.
double cortex_b0_level(const Volume& channels, const std::vector<uint8_t>& tissue) {
  const int64_t n = channels.voxels_per_volume();
  const float* b0 = channels.data.data() + DiffusionMaps::kB0 * n;
  const float* fa = channels.data.data() + DiffusionMaps::kFA * n;
  std::vector<float> cortex;
  for (int64_t v = 0; v < n; ++v)
    if (tissue[size_t(v)] && fa[v] < kCortexMaxFa) cortex.push_back(b0[v]);
  if (cortex.empty()) return 0;
  auto q = cortex.begin() + static_cast<std::ptrdiff_t>(cortex.size() * 3 / 4);
  std::nth_element(cortex.begin(), q, cortex.end());
  return *q;
}

// Returns the number of voxels given water.
int64_t fill_void_with_water(Volume& channels, const Volume& mask, double g) {
  if (!(g > 0)) return 0;
  const int64_t n = channels.voxels_per_volume();
  auto at = [&](int64_t c, int64_t v) -> float& { return channels.data[size_t(c * n + v)]; };
  const double csf = kCsfOverCortexB0 * g;
  const int64_t sm = DiffusionMaps::kNumTensorMaps;  // sm_b1000, then sm_b2500
  const auto& nominal_b = feature_nominal_bvals();
  int64_t filled = 0;
  for (int64_t v = 0; v < n; ++v) {
    if (mask.data[size_t(v)] == 0.f) continue;
    const double s = std::max(0.f, at(DiffusionMaps::kB0, v));
    const bool cortex_like = at(DiffusionMaps::kFA, v) < kCortexMaxFa;
    if (!(s < g && (cortex_like || s < kVoidBelowCortexB0 * g))) continue;
    const double w = 1.0 - s / g;
    ++filled;
    const double b0 = s + w * csf, f = w * csf / b0;
    for (size_t p = 0; p < nominal_b.size(); ++p) {
      float& x = at(sm + static_cast<int64_t>(p), v);
      x = static_cast<float>((s * std::clamp<double>(x, 0.0, 1.0) +
                              w * csf * std::exp(-nominal_b[p] * kFreeWaterDiffusivity)) /
                             b0);
    }
    double l[3];
    // A voxel mostly void fits its noise: no tissue diffuses faster than free water.
    for (int e = 0; e < 3; ++e)
      l[e] =
          (1 - f) * std::clamp<double>(at(DiffusionMaps::kL1 + e, v), 0.0, kFreeWaterDiffusivity) +
          f * kFreeWaterDiffusivity;
    at(DiffusionMaps::kL1, v) = static_cast<float>(l[0]);
    at(DiffusionMaps::kL2, v) = static_cast<float>(l[1]);
    at(DiffusionMaps::kL3, v) = static_cast<float>(l[2]);
    at(DiffusionMaps::kAD, v) = static_cast<float>(l[0]);
    at(DiffusionMaps::kRD, v) = static_cast<float>((l[1] + l[2]) / 2);
    at(DiffusionMaps::kMD, v) = static_cast<float>((l[0] + l[1] + l[2]) / 3);
    at(DiffusionMaps::kFA, v) = static_cast<float>(fractional_anisotropy(l[0], l[1], l[2]));
    at(DiffusionMaps::kB0, v) = static_cast<float>(b0);
  }
  return filled;
}

}  // namespace

const std::vector<std::string>& feature_channel_names() {
  static const std::vector<std::string> names{
      "b0", "fa", "md", "ad", "rd", "l1", "l2", "l3", "sm_b1000", "sm_b2500", "midline", "mask"};
  return names;
}

const std::vector<std::string>& feature_lr_signed_channel_names() {
  static const std::vector<std::string> names{"midline"};
  return names;
}

const std::vector<double>& feature_nominal_bvals() {
  static const std::vector<double> b{1000.0, 2500.0};
  return b;
}

NetworkGrid network_grid(const Volume& mask, const GridOptions& options) {
  const double s = options.spacing_mm;
  if (!(s > 0) || !std::isfinite(s))
    throw UsageError("network grid spacing must be a positive number of mm");
  if (options.multiple < 1) throw UsageError("network grid multiple must be at least 1");
  Vec3 lo{1e300, 1e300, 1e300}, hi{-1e300, -1e300, -1e300};
  bool any = false;
  for (int64_t k = 0; k < mask.dims[2]; ++k)
    for (int64_t j = 0; j < mask.dims[1]; ++j)
      for (int64_t i = 0; i < mask.dims[0]; ++i) {
        if (mask.at(i, j, k) == 0.f) continue;
        any = true;
        const Vec3 p = mask.voxel_to_ras({double(i), double(j), double(k)});
        for (int a = 0; a < 3; ++a) {
          lo[a] = std::min(lo[a], p[a]);
          hi[a] = std::max(hi[a], p[a]);
        }
      }
  if (!any) throw std::invalid_argument("network_grid: empty mask");
  NetworkGrid g;
  g.vox2ras = Affine::identity();
  for (int a = 0; a < 3; ++a) {
    // Half a voxel's extent along this RAS axis, so the box holds whole voxels.
    double half = 0;
    for (int c = 0; c < 3; ++c) half += 0.5 * std::abs(mask.vox2ras(a, c));
    const double first = std::floor((lo[a] - half - options.margin_mm) / s);
    const double last = std::ceil((hi[a] + half + options.margin_mm) / s);
    const auto n = static_cast<int64_t>(last - first) + 1;
    const int64_t padded = (n + options.multiple - 1) / options.multiple * options.multiple;
    const double start = first - static_cast<double>((padded - n) / 2);
    g.dims[a] = padded;
    g.vox2ras(a, a) = s;
    g.vox2ras(a, 3) = start * s;
  }
  const double voxels = double(g.dims[0]) * double(g.dims[1]) * double(g.dims[2]);
  if (voxels > 1024.0 * 1024 * 1024)
    throw UsageError("network grid of " + std::to_string(g.dims[0]) + "x" +
                     std::to_string(g.dims[1]) + "x" + std::to_string(g.dims[2]) +
                     " voxels is too large; use a coarser spacing");
  return g;
}

Volume resample_to_grid(const Volume& source, const NetworkGrid& grid) {
  Volume out(grid.dims, source.nvols, grid.vox2ras, 0.f);
  const Affine to_source = source.vox2ras.inverse() * grid.vox2ras;
  const int64_t nsrc = source.voxels_per_volume(), nout = out.voxels_per_volume();
  const auto& sd = source.dims;
  const int64_t nv = source.nvols;
  parallel_for(
      grid.dims[2] * grid.dims[1],
      [&](int64_t r0, int64_t r1) {
        for (int64_t row = r0; row < r1; ++row) {
          const int64_t j = row % grid.dims[1], k = row / grid.dims[1];
          for (int64_t i = 0; i < grid.dims[0]; ++i) {
            const Vec3 p = to_source.apply({double(i), double(j), double(k)});
            // As Volume::sample_voxel_linear: half a voxel beyond the edge takes the edge value.
            bool inside = true;
            int64_t i0[3], i1[3];
            double f[3];
            for (int a = 0; a < 3 && inside; ++a) {
              if (!(p[a] >= -0.5 && p[a] <= sd[a] - 0.5)) {
                inside = false;
                break;
              }
              const double c = std::clamp(p[a], 0.0, double(sd[a] - 1));
              i0[a] = static_cast<int64_t>(std::floor(c));
              i1[a] = std::min<int64_t>(i0[a] + 1, sd[a] - 1);
              f[a] = c - double(i0[a]);
            }
            if (!inside) continue;
            int64_t idx[8];
            double w[8];
            for (int c = 0; c < 8; ++c) {
              const int64_t x = (c & 1) ? i1[0] : i0[0], y = (c & 2) ? i1[1] : i0[1],
                            z = (c & 4) ? i1[2] : i0[2];
              idx[c] = (z * sd[1] + y) * sd[0] + x;
              w[c] = ((c & 1) ? f[0] : 1 - f[0]) * ((c & 2) ? f[1] : 1 - f[1]) *
                     ((c & 4) ? f[2] : 1 - f[2]);
            }
            const int64_t o = (k * grid.dims[1] + j) * grid.dims[0] + i;
            for (int64_t t = 0; t < nv; ++t) {
              const float* src = source.data.data() + t * nsrc;
              double v = 0;
              for (int c = 0; c < 8; ++c) v += w[c] * src[idx[c]];
              out.data[t * nout + o] = static_cast<float>(v);
            }
          }
        }
      },
      16);
  return out;
}

namespace {

// The channels on the scan's own grid in the network's order, the mask last.
Volume native_channels(const DiffusionMaps& maps, const std::vector<NominalSignalPlan>& nominal,
                       const Volume& brain) {
  const int64_t nch = static_cast<int64_t>(feature_channel_names().size());
  const int64_t nvox = brain.voxels_per_volume();
  Volume native = brain.like(nch, 0.f);
  const int64_t nshell = static_cast<int64_t>(maps.shell_bvals.size());
  parallel_for(
      nvox,
      [&](int64_t begin, int64_t end) {
        std::vector<float> means(static_cast<size_t>(nshell));
        for (int64_t v = begin; v < end; ++v) {
          for (int m = 0; m < DiffusionMaps::kNumTensorMaps; ++m)
            native.data[m * nvox + v] = maps.maps.data[m * nvox + v];
          for (int64_t s = 0; s < nshell; ++s)
            means[s] = maps.maps.data[(DiffusionMaps::kNumTensorMaps + s) * nvox + v];
          const double l1 = maps.maps.data[DiffusionMaps::kL1 * nvox + v],
                       l2 = maps.maps.data[DiffusionMaps::kL2 * nvox + v],
                       l3 = maps.maps.data[DiffusionMaps::kL3 * nvox + v];
          for (size_t p = 0; p < nominal.size(); ++p)
            native.data[(DiffusionMaps::kNumTensorMaps + p) * nvox + v] =
                maps.maps.data[DiffusionMaps::kB0 * nvox + v] > 0
                    ? static_cast<float>(
                          nominal_signal(nominal[p], maps.shell_bvals, means.data(), l1, l2, l3))
                    : 0.f;
          native.data[(nch - 1) * nvox + v] = brain.data[v];
        }
      },
      1 << 14);
  return native;
}

}  // namespace

FeatureSet compute_features(const Volume& dwi, const GradientTable& table, const Volume* mask,
                            const FeatureOptions& options, const ProgressFn& progress) {
  if (dwi.nvols < 2)
    throw InputError(options.image_path, "is a 3D image; a 4D diffusion series is required");
  FeatureSet fs;
  fs.grid = options.grid;
  fs.protocol =
      analyse_protocol(table, dwi.vox2ras, dwi.nvols, options.image_path, options.protocol);
  report(progress, 0.01);

  Volume brain;
  if (mask) {
    brain = check_mask(*mask, dwi, options.mask_path);
    fs.mask_given = true;
  } else {
    brain = auto_mask(dwi, fs.protocol, options.mask, options.image_path);
  }
  const Vec3 sp = dwi.spacing();
  fs.mask_volume_ml = static_cast<double>(std::count(brain.data.begin(), brain.data.end(), 1.f)) *
                      sp[0] * sp[1] * sp[2] / 1000.0;
  report(progress, kMaskShare);

  DtiOptions dti = options.dti;
  dti.keep_deviatoric = dti.keep_deviatoric || options.keep_native;  // placement reads it
  DiffusionMaps maps = fit_dti(dwi, fs.protocol, dilate_one_voxel(brain), dti,
                               [&](double f) { report(progress, kMaskShare + kFitShare * f); });

  // Native channels in the network's order (mask last), then onto the grid.
  fs.nominal = plan_nominal_signals(maps.shell_bvals);
  const auto& names = feature_channel_names();
  const int64_t nch = static_cast<int64_t>(names.size());
  Volume native = native_channels(maps, fs.nominal, brain);

  const NetworkGrid grid = network_grid(brain, options.grid);
  fs.channels = resample_to_grid(native, grid);
  native = Volume();
  report(progress, kMaskShare + kFitShare + 0.6 * kResampleShare);

  const int64_t nout = fs.channels.voxels_per_volume();
  fs.mask = Volume(grid.dims, 1, grid.vox2ras, 0.f);
  // The mask on the grid: where the resampled mask channel holds at least half a voxel.
  const auto mask_from_channel = [&] {
    const float* grid_mask = fs.channels.data.data() + (nch - 1) * nout;
    for (int64_t v = 0; v < nout; ++v) fs.mask.data[v] = grid_mask[v] >= 0.5f ? 1.f : 0.f;
  };
  mask_from_channel();
  fs.channel_names = names;
  fs.normalisation.resize(static_cast<size_t>(nch));
  const int64_t midline = nch - 2;
  if (std::count(fs.mask.data.begin(), fs.mask.data.end(), 1.f) == 0)
    throw InputError(options.mask_path.empty() ? options.image_path : options.mask_path,
                     "the brain mask has no voxel on the network grid");
  // Tissue and free water, from the raw b0 and MD: the share of free water says whether the scan
  // holds CSF, and the tissue's cortex gives the b0 level of a specimen's void fill.
  std::vector<uint8_t> tissue(static_cast<size_t>(nout), 0);
  {
    const float* b0 = fs.channels.data.data() + DiffusionMaps::kB0 * nout;
    const float* md = fs.channels.data.data() + DiffusionMaps::kMD * nout;
    std::vector<float> slow;
    for (int64_t v = 0; v < nout; ++v)
      if (fs.mask.data[v] != 0.f && md[v] < kTissueMd) slow.push_back(b0[v]);
    double tissue_b0 = 0;
    if (!slow.empty()) {
      auto mid = slow.begin() + static_cast<std::ptrdiff_t>(slow.size() / 2);
      std::nth_element(slow.begin(), mid, slow.end());
      tissue_b0 = *mid;
    }
    int64_t in_mask = 0, water = 0;
    for (int64_t v = 0; v < nout; ++v) {
      if (fs.mask.data[v] == 0.f) continue;
      ++in_mask;
      const bool bright = b0[v] >= kWaterOverTissueB0 * tissue_b0;
      if (md[v] >= kWaterMd || bright)
        ++water;
      else if (md[v] < kTissueMd)
        tissue[static_cast<size_t>(v)] = 1;
    }
    fs.water_share = static_cast<double>(water) / static_cast<double>(in_mask);
  }
  // Each channel's robust centre and scale over the mask (the mask itself stays 0/1; the
  // midline needs the normalised FA, below).
  fs.normalisation[static_cast<size_t>(nch - 1)] = ChannelNormalisation{0, 1, 0};
  const auto normalise_over_mask = [&] {
    parallel_for(
        midline,
        [&](int64_t c0, int64_t c1) {
          for (int64_t c = c0; c < c1; ++c) {
            const float* x = fs.channels.data.data() + c * nout;
            std::vector<float> inside;
            inside.reserve(static_cast<size_t>(nout / 4));
            for (int64_t v = 0; v < nout; ++v)
              if (fs.mask.data[v] != 0.f) inside.push_back(x[v]);
            fs.normalisation[c] = robust_normalisation(inside, options.clip);
          }
        },
        1);
  };
  normalise_over_mask();
  auto normalised = [&](const float* x, const ChannelNormalisation& n, float* out) {
    for (int64_t v = 0; v < nout; ++v)
      out[v] = fs.mask.data[v] != 0.f
                   ? static_cast<float>(std::clamp((x[v] - n.center) / n.scale, -n.clip, n.clip))
                   : 0.f;
  };

  // Which hemisphere a voxel is in cannot be seen in a patch of the brain, and the network learns
  // from patches mirrored left-right: the signed distance to the midsagittal plane tells it.
  // Centred at 0 so that a mirror negates it exactly (feature_lr_signed_channel_names).
  {
    Volume fa = fs.channels.frame(DiffusionMaps::kFA);
    normalised(fa.data.data(), fs.normalisation[DiffusionMaps::kFA], fa.data.data());
    fs.symmetry_plane = midsagittal_plane(fa, fs.mask);
    fs.presence = detect_hemispheres(fa, fs.mask, fs.symmetry_plane, &brain);
  }
  fs.midsagittal = fs.symmetry_plane;
  if (!options.hemispheres.empty()) {
    fs.hemispheres =
        hemispheres_to_reconstruct(fs.presence, options.hemispheres, options.image_path);
    // One hemisphere, whole: the network's hemisphere cue measured from its medial face, where a
    // head's midline would be, so that it sees the medial wall as in a head and nothing of a
    // second hemisphere.
    if (fs.one_hemisphere()) fs.midsagittal = medial_face_plane(fs.presence, fs.hemispheres[0]);
  }
  fs.tissue_only = fs.one_hemisphere() && fs.water_share < kMaxTissueOnlyWaterShare;
  if (fs.tissue_only) {
    // A specimen is given what every scan the network learnt from has: its whole extent with a
    // shell of CSF around it (specimen_extent), refitted there, its void given free water; then it
    // is normalised over that as any scan over its mask. Normalised over its bare mask (all
    // tissue) its tissue contrast was doubled in the network's units and its surfaces came out
    // 1-1.6 mm too deep (issue 26, docs/experiments.md).
    const double cortex_b0 = cortex_b0_level(fs.channels, tissue);
    const Volume extent = specimen_extent(dwi, fs.protocol, brain,
                                          fs.mask_given ? 0.0 : kSpecimenReachMm, kSpecimenShellMm);
    DtiOptions fit = options.dti;
    fit.keep_deviatoric = false;
    fs.channels = resample_to_grid(
        native_channels(fit_dti(dwi, fs.protocol, extent, fit), fs.nominal, extent), grid);
    mask_from_channel();
    fs.void_filled_voxels = fill_void_with_water(fs.channels, fs.mask, cortex_b0);
    fs.specimen_extent_ml =
        static_cast<double>(std::count(fs.mask.data.begin(), fs.mask.data.end(), 1.f)) *
        std::pow(options.grid.spacing_mm, 3) / 1000.0;
    normalise_over_mask();
  }
  parallel_for(
      midline,
      [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
          float* x = fs.channels.data.data() + c * nout;
          normalised(x, fs.normalisation[c], x);
        }
      },
      1);
  std::copy(fs.mask.data.begin(), fs.mask.data.end(), fs.channels.data.data() + (nch - 1) * nout);
  fs.normalisation[static_cast<size_t>(midline)] =
      ChannelNormalisation{0, kMidlineScaleMm, 1000.0 / kMidlineScaleMm};
  {
    float* x = fs.channels.data.data() + midline * nout;
    const auto& d = grid.dims;
    parallel_for(
        d[2],
        [&](int64_t k0, int64_t k1) {
          for (int64_t k = k0; k < k1; ++k)
            for (int64_t j = 0; j < d[1]; ++j)
              for (int64_t i = 0; i < d[0]; ++i) {
                const int64_t v = (k * d[1] + j) * d[0] + i;
                x[v] = fs.mask.data[v] != 0.f
                           ? static_cast<float>(fs.midsagittal.side(grid.vox2ras.apply(
                                                    {double(i), double(j), double(k)})) /
                                                kMidlineScaleMm)
                           : 0.f;
              }
        },
        4);
  }

  if (options.keep_native) {
    fs.native = std::move(maps);
    fs.native_mask = std::move(brain);
  }
  report(progress, 1.0);
  return fs;
}

std::string feature_sidecar_json(const FeatureSet& fs) {
  using nlohmann::json;
  static const std::map<std::string, std::pair<std::string, std::string>> about{
      {"b0", {"mean b0 signal", "scanner units"}},
      {"fa", {"fractional anisotropy", "1"}},
      {"md", {"mean diffusivity", "mm^2/s"}},
      {"ad", {"axial diffusivity (largest eigenvalue)", "mm^2/s"}},
      {"rd", {"radial diffusivity (mean of the two smaller eigenvalues)", "mm^2/s"}},
      {"l1", {"largest tensor eigenvalue", "mm^2/s"}},
      {"l2", {"middle tensor eigenvalue", "mm^2/s"}},
      {"l3", {"smallest tensor eigenvalue", "mm^2/s"}},
      {"sm_b1000", {"spherical-mean signal S/S0 at b=1000 s/mm^2", "1"}},
      {"sm_b2500", {"spherical-mean signal S/S0 at b=2500 s/mm^2", "1"}},
      {"midline",
       {"signed distance to the midsagittal plane, negative in the left hemisphere", "mm"}},
      {"mask", {"brain mask", "1"}},
  };
  json j;
  j["format"] = "ddcsr-features";
  j["version"] = 1;
  json channels = json::array();
  for (size_t c = 0; c < fs.channel_names.size(); ++c) {
    const auto& name = fs.channel_names[c];
    const auto& n = fs.normalisation[c];
    json ch{{"index", c}, {"name", name}};
    if (auto it = about.find(name); it != about.end()) {
      ch["description"] = it->second.first;
      ch["raw_units"] = it->second.second;
    }
    if (name == "midline")
      ch["normalisation"] = {{"method", "scaled"},
                             {"scale", n.scale},
                             {"formula", "raw / scale inside the mask, 0 outside"}};
    else if (n.clip > 0)
      ch["normalisation"] = {
          {"method", "robust_z"},
          {"center", n.center},
          {"scale", n.scale},
          {"clip", n.clip},
          {"formula", "clip((raw - center) / scale, -clip, clip) inside the mask, 0 outside"}};
    else
      ch["normalisation"] = {{"method", "none"}};
    channels.push_back(ch);
  }
  j["channels"] = channels;
  json affine = json::array();
  for (int r = 0; r < 4; ++r) {
    json row = json::array();
    for (int c = 0; c < 4; ++c) row.push_back(fs.channels.vox2ras(r, c));
    affine.push_back(row);
  }
  j["grid"] = {{"dims", {fs.channels.dims[0], fs.channels.dims[1], fs.channels.dims[2]}},
               {"spacing_mm", fs.grid.spacing_mm},
               {"margin_mm", fs.grid.margin_mm},
               {"multiple", fs.grid.multiple},
               {"orientation", "RAS"},
               {"vox2ras", affine}};
  json shells = json::array();
  for (size_t s = 0; s < fs.protocol.shells.size(); ++s) {
    const bool in_fit = std::find(fs.protocol.dti_shells.begin(), fs.protocol.dti_shells.end(),
                                  int(s)) != fs.protocol.dti_shells.end();
    shells.push_back({{"bval", fs.protocol.shells[s].bval},
                      {"volumes", fs.protocol.shells[s].volumes.size()},
                      {"in_tensor_fit", in_fit}});
  }
  j["protocol"] = {{"volumes", fs.protocol.bvals.size()},
                   {"b0_volumes", fs.protocol.b0_volumes.size()},
                   {"bvals_rescaled_by_bvec_norm", fs.protocol.rescaled},
                   {"shells", shells},
                   {"tensor_fit_directions", fs.protocol.dti_directions},
                   {"tensor_fit_volumes", fs.protocol.dti_volumes}};
  json nominal = json::array();
  for (const auto& p : fs.nominal) {
    json e{{"bval", p.bval}, {"method", p.method}};
    json from = json::array();
    for (int s : {p.shell_a, p.shell_b})
      if (s >= 0) from.push_back(fs.protocol.shells[s].bval);
    e["from_shells"] = from;
    nominal.push_back(e);
  }
  j["nominal_signals"] = nominal;
  j["input_normalisation"] = {{"basis", fs.tissue_only ? "specimen_extent" : "mask"},
                              {"water_share", fs.water_share},
                              {"specimen_extent_ml", fs.specimen_extent_ml},
                              {"void_filled_voxels", fs.void_filled_voxels}};
  j["hemispheres_present"] = json::parse(hemisphere_presence_json(fs.presence));
  j["midsagittal_plane"] = {{"point_ras", fs.midsagittal.point},
                            {"normal_ras", fs.midsagittal.normal},
                            {"tilt_degrees", fs.midsagittal.tilt_degrees()}};
  j["mask"] = {{"source", fs.mask_given ? "given" : "automatic"}, {"volume_ml", fs.mask_volume_ml}};
  return j.dump(2) + "\n";
}

}  // namespace ddcsr
