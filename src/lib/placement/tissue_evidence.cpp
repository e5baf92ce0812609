#include <algorithm>
#include <cmath>

#include "ddcsr/error.h"
#include "ddcsr/features/dti.h"
#include "ddcsr/filters.h"
#include "ddcsr/placement/placement.h"
#include "ddcsr/threads.h"

namespace ddcsr {

namespace {

// Free water at body temperature (Pierpaoli et al. 1996: 3.0 um2/ms at 37 C), in mm2/s.
constexpr double kFreeWaterDiffusivity = 3.0e-3;
// Voxels diffusing faster than this are mostly CSF: tissue stays under 1.5 um2/ms, and a voxel
// of MD 2.7 holds at least about 85 % free water by signal.
constexpr double kWaterVoxelMd = 2.7e-3;
// Fewer such voxels than this and the free water's signature is taken from physics instead.
constexpr int64_t kMinWaterVoxels = 50;
// CSF over cortex in b0 at the echo times of diffusion scans (T2 about 2 s against 80-110 ms,
// TE 60-110 ms), used only when the scan shows no CSF to measure it in.
constexpr double kDefaultWaterToTissueS0 = 2.0;
// Below this ratio of "CSF" over cortex b0 the scan shows no CSF outside its brain (a specimen
// in a medium without signal: 1.08 on simulate's); in vivo scans measured 1.29-3.35.
constexpr double kMinCsfOverCortexB0 = 1.15;

double median(std::vector<float> v) {
  if (v.empty()) return 0;
  auto mid = v.begin() + v.size() / 2;
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

// Gaussian-weighted mean of `values` over the voxels where `weight` is 1, with `fallback` where
// no such voxel is near (normalised convolution, Knutsson and Westin 1993). The levels vary over
// centimetres, so the sums are blurred on a grid of blocks about a fifth of sigma across and
// interpolated back: a hundredth of the work of blurring the scan's grid.
Volume regional_level(const Volume& values, const std::vector<uint8_t>& weight, double sigma_mm,
                      double fallback) {
  const Vec3 sp = values.spacing();
  std::array<int64_t, 3> block{}, coarse{};
  for (int a = 0; a < 3; ++a) {
    block[size_t(a)] = std::max<int64_t>(1, int64_t(std::floor(0.2 * sigma_mm / sp[size_t(a)])));
    coarse[size_t(a)] = (values.dims[size_t(a)] + block[size_t(a)] - 1) / block[size_t(a)];
  }
  const size_t nc = size_t(coarse[0] * coarse[1] * coarse[2]);
  std::vector<float> num(nc, 0.f), den(nc, 0.f);
  for (int64_t k = 0; k < values.dims[2]; ++k)
    for (int64_t j = 0; j < values.dims[1]; ++j)
      for (int64_t i = 0; i < values.dims[0]; ++i) {
        const size_t v = values.index(i, j, k);
        if (!weight[v]) continue;
        const size_t c =
            size_t(((k / block[2]) * coarse[1] + j / block[1]) * coarse[0] + i / block[0]);
        num[c] += values.data[v];
        den[c] += 1.f;
      }
  const Vec3 coarse_spacing{sp[0] * double(block[0]), sp[1] * double(block[1]),
                            sp[2] * double(block[2])};
  gaussian_blur(num, coarse, coarse_spacing, sigma_mm);
  gaussian_blur(den, coarse, coarse_spacing, sigma_mm);
  // Below a few per cent of a full neighbourhood the mean rests on a handful of voxels.
  const float min_density = 0.02f * float(block[0] * block[1] * block[2]);
  Volume level = values.like();
  auto coarse_at = [&](const std::vector<float>& g, int64_t i, int64_t j, int64_t k) {
    i = std::clamp<int64_t>(i, 0, coarse[0] - 1);
    j = std::clamp<int64_t>(j, 0, coarse[1] - 1);
    k = std::clamp<int64_t>(k, 0, coarse[2] - 1);
    return g[size_t((k * coarse[1] + j) * coarse[0] + i)];
  };
  parallel_for(values.dims[2], [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k)
      for (int64_t j = 0; j < values.dims[1]; ++j)
        for (int64_t i = 0; i < values.dims[0]; ++i) {
          // Block centres sit at (I + 0.5) * block - 0.5 in fine voxel indices.
          const double x = (double(i) + 0.5) / double(block[0]) - 0.5,
                       y = (double(j) + 0.5) / double(block[1]) - 0.5,
                       z = (double(k) + 0.5) / double(block[2]) - 0.5;
          const int64_t i0 = int64_t(std::floor(x)), j0 = int64_t(std::floor(y)),
                        k0c = int64_t(std::floor(z));
          const double fx = x - double(i0), fy = y - double(j0), fz = z - double(k0c);
          double n_sum = 0, d_sum = 0;
          for (int c = 0; c < 8; ++c) {
            const int dx = c & 1, dy = (c >> 1) & 1, dz = (c >> 2) & 1;
            const double wgt = (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy) * (dz ? fz : 1 - fz);
            n_sum += wgt * coarse_at(num, i0 + dx, j0 + dy, k0c + dz);
            d_sum += wgt * coarse_at(den, i0 + dx, j0 + dy, k0c + dz);
          }
          level.at(i, j, k) = d_sum > min_density ? static_cast<float>(n_sum / d_sum)
                                                  : static_cast<float>(fallback);
        }
  });
  return level;
}

}  // namespace

TissueEvidence estimate_tissue_evidence(const DiffusionMaps& maps, const Volume& mask,
                                        const Volume& white_sdf) {
  const Volume& m = maps.maps;
  if (maps.shell_bvals.empty())
    throw InputError("", "placement needs at least one diffusion-weighted shell");
  if (mask.dims != m.dims) throw std::logic_error("placement: mask and maps on different grids");
  const int64_t n = m.voxels_per_volume();
  const int64_t first_shell = DiffusionMaps::kNumTensorMaps;
  const size_t nshells = maps.shell_bvals.size();

  // Where each voxel lies against the network's white surface: deep white matter, the ribbon
  // around the white surface (tissue, no CSF), and cortex outside it.
  std::vector<float> depth(static_cast<size_t>(n));
  parallel_for(m.dims[2], [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k)
      for (int64_t j = 0; j < m.dims[1]; ++j)
        for (int64_t i = 0; i < m.dims[0]; ++i) {
          const Vec3 ras = m.voxel_to_ras({double(i), double(j), double(k)});
          depth[m.index(i, j, k)] = white_sdf.sample_linear(ras, 0, 100.f);
        }
  });
  auto map_at = [&](int64_t frame, int64_t v) { return m.data[size_t(frame * n + v)]; };

  TissueEvidence ev;
  std::vector<int64_t> tissue, water;
  for (int64_t v = 0; v < n; ++v) {
    if (mask.data[size_t(v)] == 0 || map_at(DiffusionMaps::kB0, v) <= 0) continue;
    if (std::abs(depth[size_t(v)]) <= 1.0f) tissue.push_back(v);
    if (map_at(DiffusionMaps::kMD, v) >= kWaterVoxelMd) water.push_back(v);
  }
  if (tissue.empty())
    throw InputError("", "placement: no brain voxel near the white surface to measure tissue in");
  ev.tissue_voxels = static_cast<int64_t>(tissue.size());
  ev.water_voxels = static_cast<int64_t>(water.size());
  ev.water_measured = ev.water_voxels >= kMinWaterVoxels;

  // Per shell: tissue's and free water's mean S/S0. The free-water signal fraction is their
  // least-squares blend over shells, each weighted by the contrast it carries.
  std::vector<double> a_tissue(nshells), a_water(nshells);
  double best_contrast = -1;
  for (size_t s = 0; s < nshells; ++s) {
    const int64_t frame = first_shell + static_cast<int64_t>(s);
    std::vector<float> values;
    values.reserve(tissue.size());
    for (int64_t v : tissue) values.push_back(map_at(frame, v));
    a_tissue[s] = median(values);
    if (ev.water_measured) {
      values.clear();
      for (int64_t v : water) values.push_back(map_at(frame, v));
      a_water[s] = median(values);
    } else {
      a_water[s] = std::exp(-maps.shell_bvals[s] * kFreeWaterDiffusivity);
    }
    if (a_tissue[s] - a_water[s] > best_contrast) {
      best_contrast = a_tissue[s] - a_water[s];
      ev.reference_bval = maps.shell_bvals[s];
      ev.tissue_attenuation = a_tissue[s];
      ev.water_attenuation = a_water[s];
    }
  }
  if (best_contrast <= 0.02)
    throw InputError("", "placement: the scan's signal does not tell tissue from free water");
  double norm = 0;
  for (size_t s = 0; s < nshells; ++s)
    norm += (a_tissue[s] - a_water[s]) * (a_tissue[s] - a_water[s]);

  std::vector<float> water_signal_fraction(static_cast<size_t>(n), 1.f);
  for (int64_t v = 0; v < n; ++v) {
    if (map_at(DiffusionMaps::kB0, v) <= 0) continue;  // outside the fitted region: no tissue
    double num = 0;
    for (size_t s = 0; s < nshells; ++s)
      num += (a_tissue[s] - a_water[s]) *
             (a_tissue[s] - map_at(first_shell + static_cast<int64_t>(s), v));
    water_signal_fraction[size_t(v)] = static_cast<float>(std::clamp(num / norm, 0.0, 1.0));
  }

  // Anisotropy magnitude, and a CSF-free "cortex" selection for the regional levels below.
  ev.anisotropy = mask.like();
  for (int64_t v = 0; v < n; ++v) {
    const double l1 = map_at(DiffusionMaps::kL1, v), l2 = map_at(DiffusionMaps::kL2, v),
                 l3 = map_at(DiffusionMaps::kL3, v);
    const double dev2 =
        0.5 * ((l1 - l2) * (l1 - l2) + (l2 - l3) * (l2 - l3) + (l3 - l1) * (l3 - l1));
    ev.anisotropy.data[size_t(v)] = static_cast<float>(1000.0 * std::sqrt(dev2));
  }

  // The CSF fraction from the b0 itself, between the regional b0 of cortex and of CSF. The ratio
  // S/S0 above picks the voxels but is not used for the boundary: on real scans without eddy-
  // current and motion correction the diffusion-weighted volumes sit a little apart from the
  // b0, which moves a ratio's edges (philips_enh: its CSF edge lies 0.7 mm outside the b0's and
  // the T1's); the b0 alone has one geometry, a strong T2 contrast in every protocol, and a
  // receive field that the regional levels absorb.
  std::vector<uint8_t> cortex_voxel(static_cast<size_t>(n), 0),
      water_voxel(static_cast<size_t>(n), 0);
  std::vector<float> white_values, cortex_values, cortex_b0, water_b0;
  for (int64_t v = 0; v < n; ++v) {
    if (mask.data[size_t(v)] == 0 || map_at(DiffusionMaps::kB0, v) <= 0) continue;
    const float d = depth[size_t(v)];
    const float w = water_signal_fraction[size_t(v)];
    // Unambiguous white matter: 2 mm and deeper inside the white surface. Unambiguous cortex:
    // 0.75-3 mm outside it with little free water (cortex is 1.5-4.5 mm thick; the median
    // shrugs off the white matter a coarse voxel near the inner end still holds).
    if (d <= -2.0f) {
      white_values.push_back(ev.anisotropy.data[size_t(v)]);
    } else if (d >= 0.75f && d <= 3.0f && w <= 0.25f) {
      cortex_voxel[size_t(v)] = 1;
      cortex_values.push_back(ev.anisotropy.data[size_t(v)]);
      cortex_b0.push_back(map_at(DiffusionMaps::kB0, v));
    }
    if (w >= 0.8f) {
      water_voxel[size_t(v)] = 1;
      water_b0.push_back(map_at(DiffusionMaps::kB0, v));
    }
  }
  if (cortex_b0.empty())
    throw InputError("", "placement: no cortex outside the white surface to measure it in");
  ev.white_voxels = static_cast<int64_t>(white_values.size());
  ev.cortex_voxels = static_cast<int64_t>(cortex_values.size());
  ev.white_anisotropy = median(white_values);
  ev.cortex_anisotropy = median(cortex_values);
  const double cortex_b0_median = median(cortex_b0);
  constexpr double kLevelSigmaMm = 10.0;
  ev.cortex_level =
      regional_level(ev.anisotropy, cortex_voxel, kLevelSigmaMm, ev.cortex_anisotropy);
  // Two-compartment levels: a voxel's b0 is (1 - f) G + f C for a CSF volume fraction f, and its
  // free-water signal fraction w = f C / b0 (from the ratio, bias-free), so the cortex's level is
  // G = (1 - w) b0 / (1 - f) and the CSF's C = w b0 / f. Taken from voxels with a little free
  // water (cortex) and much of it (CSF), which no coarse scan has pure, then averaged regionally.
  const Volume b0 = m.frame(DiffusionMaps::kB0);
  Volume cortex_b0_level = regional_level(b0, cortex_voxel, kLevelSigmaMm, cortex_b0_median);
  Volume csf_b0_level;
  const bool csf_seen = static_cast<int64_t>(water_b0.size()) >= kMinWaterVoxels;
  for (int pass = 0; pass < 2; ++pass) {
    if (csf_seen) {
      Volume csf_estimate = b0.like();
      for (int64_t v = 0; v < n; ++v) {
        if (!water_voxel[size_t(v)]) continue;
        const double w = water_signal_fraction[size_t(v)], s = b0.data[size_t(v)];
        const double f = 1.0 - (1.0 - w) * s / cortex_b0_level.data[size_t(v)];
        csf_estimate.data[size_t(v)] = static_cast<float>(f > 0.05 ? w * s / f : s);
      }
      csf_b0_level = regional_level(csf_estimate, water_voxel, kLevelSigmaMm, median(water_b0));
      // CSF against the skull or outside the mask mixes with no signal, which the two
      // compartments do not know and which lowers its b0: the brighter half of the regional
      // CSF voxels is the CSF.
      std::vector<uint8_t> brighter(water_voxel.size(), 0);
      for (size_t v = 0; v < brighter.size(); ++v)
        brighter[v] = water_voxel[v] && csf_estimate.data[v] >= csf_b0_level.data[v];
      csf_b0_level = regional_level(csf_estimate, brighter, kLevelSigmaMm, median(water_b0));
    } else {
      csf_b0_level = cortex_b0_level;
      for (float& x : csf_b0_level.data) x *= static_cast<float>(kDefaultWaterToTissueS0);
    }
    if (pass == 1) break;
    Volume cortex_estimate = b0.like();
    for (int64_t v = 0; v < n; ++v) {
      if (!cortex_voxel[size_t(v)]) continue;
      const double w = water_signal_fraction[size_t(v)], s = b0.data[size_t(v)];
      const double f = w * s / csf_b0_level.data[size_t(v)];
      cortex_estimate.data[size_t(v)] =
          static_cast<float>(f < 0.95 ? (1.0 - w) * s / (1.0 - f) : s);
    }
    cortex_b0_level =
        regional_level(cortex_estimate, cortex_voxel, kLevelSigmaMm, cortex_b0_median);
  }
  {
    std::vector<float> g, c;
    for (int64_t v = 0; v < n; ++v)
      if (mask.data[size_t(v)] != 0 && b0.data[size_t(v)] > 0) {
        g.push_back(cortex_b0_level.data[size_t(v)]);
        c.push_back(csf_b0_level.data[size_t(v)]);
      }
    const double gm = median(g);
    ev.water_to_tissue_s0 = gm > 0 ? median(c) / gm : kDefaultWaterToTissueS0;
  }
  ev.csf_outside = csf_seen && ev.water_to_tissue_s0 >= kMinCsfOverCortexB0;
  if (!ev.csf_outside) {
    // Void mixes into cortex's voxels without changing S/S0, so the two compartments above do
    // not see it; it only darkens them, as white matter does: the brighter half is the cortex.
    std::vector<uint8_t> brighter(cortex_voxel.size(), 0);
    for (size_t v = 0; v < brighter.size(); ++v)
      brighter[v] = cortex_voxel[v] && b0.data[v] >= cortex_b0_level.data[v];
    cortex_b0_level = regional_level(b0, brighter, kLevelSigmaMm, cortex_b0_median);
  }
  ev.cortex_b0 = cortex_b0_level;
  ev.csf_b0 = csf_b0_level;
  ev.b0 = b0;
  if (maps.deviatoric.nvols == 5 && maps.deviatoric.dims == m.dims) {
    ev.deviatoric = maps.deviatoric;
    for (float& x : ev.deviatoric.data) x *= 1000.f;
  }
  // Outside the brain: CSF, brighter than cortex in b0 in every in vivo protocol (1.3-3.5 times
  // in the scans and phantoms measured), or, around an ex vivo specimen in a medium without
  // signal (no CSF seen, or "CSF" as dark as cortex: partial volumes at the void's edge), nothing:
  // then the tissue fraction is the b0 over cortex's level (a two-compartment model of tissue and
  // void).
  ev.tissue_fraction = mask.like();
  for (int64_t v = 0; v < n; ++v) {
    const double s = map_at(DiffusionMaps::kB0, v);
    if (s <= 0) continue;  // outside the fitted region: no brain
    const double g = cortex_b0_level.data[size_t(v)], c = csf_b0_level.data[size_t(v)];
    double tissue;
    if (ev.csf_outside)
      tissue = 1.0 - (c > g * 1.05 ? (s - g) / (c - g) : 0.0);
    else
      tissue = g > 0 ? s / g : 1.0;
    ev.tissue_fraction.data[size_t(v)] = static_cast<float>(std::clamp(tissue, 0.0, 1.0));
  }
  return ev;
}

}  // namespace ddcsr
