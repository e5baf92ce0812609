// Diffusion tensor fit and the scalar maps derived from it, on the scan's own grid.
#pragma once
#include <string>
#include <vector>

#include "ddcsr/features/protocol.h"
#include "ddcsr/progress.h"
#include "ddcsr/volume.h"

namespace ddcsr {

struct DtiOptions {
  // Reweighting passes after the ordinary least-squares start. Each pass weights log-signals by
  // the squared predicted signal (Salvador et al. 2005; Veraart et al. 2013); one pass is
  // dipy's "WLS". Stops early once the tensor stops changing.
  int irls_iterations = 5;
  // Signals below this fraction of the voxel's mean b0 are raised to it before the logarithm,
  // so a zero sample (background, signal dropout) does not dominate the fit.
  double signal_floor = 1e-3;
  // Also keep the deviatoric part of each tensor (DiffusionMaps::deviatoric).
  bool keep_deviatoric = false;
};

// Per-voxel maps on the DWI's grid. Units: b0 as the scan; diffusivities in mm^2/s; FA and
// normalised signals unitless.
struct DiffusionMaps {
  enum Map : int { kB0 = 0, kFA, kMD, kAD, kRD, kL1, kL2, kL3, kNumTensorMaps };
  Volume maps;  // nvols = names.size(): the tensor maps, then one mean normalised signal per shell
  std::vector<std::string>
      names;  // "b0", "fa", "md", "ad", "rd", "l1", "l2", "l3", "shell_b1000", ...
  std::vector<double> shell_bvals;  // b-value of each shell map, ascending
  int64_t fitted_voxels = 0;
  // With DtiOptions::keep_deviatoric: the tensor's deviatoric part D - tr(D)/3 I as its five
  // coordinates in an orthonormal basis of traceless symmetric matrices (mm^2/s; the frame of
  // the gradient table), so a Frobenius inner product of two of them is a dot product and a
  // mixture's tensor, linear in its compartments, stays linear here.
  Volume deviatoric;
};

// Weighted (iteratively reweighted) least-squares tensor fit of log-signals in the voxels where
// `fit_mask` is nonzero; other voxels stay 0. Eigenvalues below zero are set to zero (as dipy).
// Also the mean b0 and, per shell, the mean of S/S0 over its directions. Multi-threaded.
DiffusionMaps fit_dti(const Volume& dwi, const Protocol& protocol, const Volume& fit_mask,
                      const DtiOptions& options = {}, const ProgressFn& progress = {});

// Fractional anisotropy of a tensor with eigenvalues l1, l2, l3 (0 for a zero tensor, at most 1).
double fractional_anisotropy(double l1, double l2, double l3);

// Spherical mean of the signal of an axially symmetric tensor (parallel diffusivity `lpar`,
// perpendicular `lperp`) at b, relative to b=0: exp(-b lperp) * int_0^1 exp(-b (lpar-lperp) x^2)
// dx.
double tensor_spherical_mean(double b, double lpar, double lperp);

}  // namespace ddcsr
