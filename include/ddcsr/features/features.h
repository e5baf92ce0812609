// The network's input: rotation-invariant diffusion features on an isotropic RAS-aligned grid.
// One code path for training and inference, so the two never disagree.
//
// Channels (fixed, whatever the protocol, so that one model serves every scan):
//   b0        mean b0 signal
//   fa md ad rd l1 l2 l3   tensor fit (FA; mean, axial, radial diffusivity; eigenvalues)
//   sm_b1000 sm_b2500      spherical-mean signal S/S0 at nominal b = 1000 and 2500 s/mm^2
//   midline   signed distance (mm) to the midsagittal plane fitted to the FA map's mirror symmetry,
//             negative in the left hemisphere (features/midsagittal.h); scaled by 1/20 mm, not
//             clipped, so that a left-right mirror negates it
//   mask      the brain mask (1 inside, 0 outside)
// The spherical means come from the measured shells: a shell within 5% of the nominal b-value
// is used as measured (corrected for the small offset by the fitted tensor's predicted ratio);
// otherwise they are interpolated log-linearly in b between the two shells around the nominal
// b-value; outside the measured range, they are the nearest shell times the ratio the fitted
// tensor predicts between the two b-values (spherical mean of an axially symmetric tensor, closed
// form). So a b=1000-only scan predicts b=2500 from its tensor, and a b=2500-only scan predicts
// b=1000 from its own.
// Every channel but the midline and the mask is normalised within the mask: (x - median) / (IQR
// / 1.349), clipped to +-clip; voxels outside the mask are 0. A scan of one hemisphere without
// CSF (an ex vivo specimen in a medium without signal; issue 26) has no CSF in its mask, which
// narrows the spread and moves the median of b0 and the diffusivities: there the median and
// scale come from its tissue voxels (MD under 1.5 um2/ms, b0 under 1.5 times the tissue's
// median), moved to where a scan with CSF has its mask's relative to its tissue's (measured on
// real scans and phantoms; features.cpp), and the void share of its cortex-like voxels is given
// free water's signal, as the scan would be with CSF. Every scan with CSF keeps its mask's
// normalisation and its signal.
#pragma once
#include <string>
#include <vector>

#include "ddcsr/features/dti.h"
#include "ddcsr/features/hemisphere_presence.h"
#include "ddcsr/features/mask.h"
#include "ddcsr/features/midsagittal.h"
#include "ddcsr/features/protocol.h"
#include "ddcsr/io/gradients.h"
#include "ddcsr/progress.h"
#include "ddcsr/volume.h"

namespace ddcsr {

// The channel names in order; their count is the network's number of input channels.
const std::vector<std::string>& feature_channel_names();
// The channels whose sign flips under a left-right mirror of the head (the midline).
const std::vector<std::string>& feature_lr_signed_channel_names();
// The nominal b-values of the sm_b* channels.
const std::vector<double>& feature_nominal_bvals();

struct GridOptions {
  double spacing_mm = 1.0;
  double margin_mm = 8.0;  // around the mask's bounding box
  int multiple = 16;       // each dimension is padded to a multiple of this (the network's stride)
};

// An isotropic grid with axes along R, A, S that covers the mask's bounding box plus a margin.
// Its origin lies on the lattice of multiples of the spacing, so the affine (and its float32
// copy in NIfTI, for spacings such as 1, 1.25 or 0.5 mm) is exact.
struct NetworkGrid {
  std::array<int64_t, 3> dims{0, 0, 0};
  Affine vox2ras;
};
NetworkGrid network_grid(const Volume& mask, const GridOptions& options = {});

// Resamples every frame of `source` onto `grid` (trilinear; 0 outside its field of view).
Volume resample_to_grid(const Volume& source, const NetworkGrid& grid);

struct ChannelNormalisation {
  double center = 0, scale = 1, clip = 0;  // clip 0: not normalised (the mask)
};

struct FeatureOptions {
  ProtocolOptions protocol;
  MaskOptions mask;
  DtiOptions dti;
  GridOptions grid;
  double clip = 5.0;
  bool keep_native = false;  // also return the maps on the scan's grid
  // For messages only.
  std::string image_path, mask_path;
  // The hemispheres the scan holds (features/hemisphere_presence.h) are always measured. "" (the
  // default): the midline channel is measured from the fitted midsagittal plane, as for a whole
  // brain. "auto", "both", "lh", "rh" (recon's --hemi): resolved by hemispheres_to_reconstruct
  // (an InputError for a hemisphere not in the image), and on one hemisphere the midline
  // channel is measured from the plane of its medial face.
  std::string hemispheres;
};

// How each sm_b* channel was obtained for this protocol.
struct NominalSignalPlan {
  double bval = 0;
  std::string method;              // "interpolated", "measured" or "tensor-extrapolated"
  int shell_a = -1, shell_b = -1;  // shells used; shell_b >= 0 only when interpolating
};

// For each nominal b-value: the method and shells, given the measured shells' b-values (ascending).
std::vector<NominalSignalPlan> plan_nominal_signals(const std::vector<double>& shell_bvals);
// One voxel's spherical-mean signal at the plan's b-value from its per-shell mean S/S0 and its
// tensor eigenvalues (l1 >= l2 >= l3).
double nominal_signal(const NominalSignalPlan& plan, const std::vector<double>& shell_bvals,
                      const float* shell_means, double l1, double l2, double l3);

struct FeatureSet {
  Volume channels;  // the network grid; nvols = channel count
  Volume mask;      // the brain mask on the network grid (0/1)
  std::vector<std::string> channel_names;
  std::vector<ChannelNormalisation> normalisation;
  // The mask's share of free water (voxels of MD >= 2.7 um2/ms or b0 >= 1.5 times the tissue's
  // median; features.cpp).
  double water_share = 0;
  // One hemisphere without CSF (an ex vivo specimen): `channels` and `mask` cover its whole extent
  // and a shell of would-be CSF around it, whose void and the void in its sulci were given free
  // water's signal, and `normalisation` is over that extent (features.cpp).
  bool tissue_only = false;
  double specimen_extent_ml = 0;  // that extent on the network grid
  int64_t void_filled_voxels = 0;
  Protocol protocol;
  std::vector<NominalSignalPlan> nominal;
  MidsagittalPlane midsagittal;     // the midline channel's zero: symmetry_plane, or on one
                                    // hemisphere the plane of its medial face
  MidsagittalPlane symmetry_plane;  // fitted to the FA channel's mirror symmetry
  HemispherePresence presence;
  std::vector<std::string> hemispheres{"lh", "rh"};  // to reconstruct (FeatureOptions)
  bool one_hemisphere() const { return presence.count == 1 && hemispheres.size() == 1; }
  bool mask_given = false;
  double mask_volume_ml = 0;  // on the scan's grid
  GridOptions grid;
  // With keep_native: the maps on the scan's grid and the mask there.
  DiffusionMaps native;
  Volume native_mask;

  const Affine& vox2ras() const { return channels.vox2ras; }
};

// The whole feature stage: protocol analysis, brain mask (given, checked on the DWI's grid; or
// automatic), tensor fit, nominal-b signals, resampling onto the network grid, normalisation.
// `mask` may be null. InputError for unusable inputs.
FeatureSet compute_features(const Volume& dwi, const GradientTable& table, const Volume* mask,
                            const FeatureOptions& options = {}, const ProgressFn& progress = {});

// The JSON sidecar text describing a FeatureSet: channels, normalisation, grid, protocol.
std::string feature_sidecar_json(const FeatureSet& features);

}  // namespace ddcsr
