// Brain masks for diffusion scans: checking a given mask, or computing one from the data.
#pragma once
#include <string>
#include <vector>

#include "ddcsr/features/protocol.h"
#include "ddcsr/volume.h"

namespace ddcsr {

struct MaskOptions {
  // Voxels below this fraction of the local brain intensity are background. Local, because
  // receive-coil sensitivity makes one end of the brain several times brighter than the other.
  double threshold = 0.5;
  double bias_sigma_mm = 20.0;  // scale of the intensity field that is divided out
  int bias_iterations = 3;
  // Opening radius: cuts the thin bridges (scalp, eyes, skull base) that join the brain to
  // bright tissue outside it.
  double open_mm = 5.0;
  double smooth_mm = 2.0;  // Gaussian sigma that rounds the final edge
  // Scans finer than this are masked on a grid of about this voxel size (block means), and the
  // smoothed mask interpolated back.
  double working_mm = 2.5;
};

// True when two grids agree: same dimensions and affines within `tolerance_mm` at every corner.
bool same_grid(const Volume& a, const Volume& b, double tolerance_mm = 1e-3);

// A given mask (nonzero = brain) as 0/1 on the DWI's grid. InputError naming `mask_path` when the
// grids differ (dimensions or affine) or the mask is empty.
Volume check_mask(const Volume& mask, const Volume& dwi, const std::string& mask_path);

// The image the automatic mask thresholds: the mean of the b0 volumes and of each shell's mean,
// each scaled by its 98th percentile, so that brain (bright at b0 and at high b) stands out from
// scalp (bright at b0 only) and from background (dark in both).
Volume mask_contrast(const Volume& dwi, const Protocol& protocol);

// Automatic brain mask (0/1 on the DWI's grid): the contrast image divided by a smooth intensity
// field estimated within the mask (iterated from an Otsu threshold), thresholded, opened, the
// largest component kept, holes filled (in 3D and slice by slice, for slabs), then the edge
// smoothed. InputError when nothing is left.
Volume auto_mask(const Volume& dwi, const Protocol& protocol, const MaskOptions& options = {},
                 const std::string& image_path = "");

// Where an ex vivo specimen lies, for the network's inputs (issue 26): `brain` (its automatic or
// given mask, on the DWI's grid) with the tissue its opening cut away restored, then a shell of
// `shell_mm` around it. A specimen in a medium without signal has no CSF around its gyri, so the
// opening that cuts a head's bridges to the scalp cuts gyral crowns too (simulate's fsaverage5
// specimen: 9.5 % of the hemisphere outside its mask); and every scan the network learnt from has
// CSF between the cortex and the mask's edge, which the shell stands for once its void is given
// water (features.cpp). Restored: voxels within `reach_mm` of `brain` whose mask contrast is at
// least half the brain's median, connected to it (none when `reach_mm` is 0, for a mask the user
// gave). 0/1 on the DWI's grid.
Volume specimen_extent(const Volume& dwi, const Protocol& protocol, const Volume& brain,
                       double reach_mm, double shell_mm);

// Building blocks, exposed for tests and for other stages that clean binary masks.
namespace mask_ops {
using Bits = std::vector<unsigned char>;
// Otsu's threshold of `values` over `bins` bins between their minimum and maximum.
double otsu_threshold(const std::vector<float>& values, int bins = 256);
// Erosion/dilation by an ellipsoid of radius `radius_mm`. Erosion treats the space beyond the
// field of view as foreground, since the brain continues past a slab's edge.
Bits erode(const Bits& m, const std::array<int64_t, 3>& dims, const Vec3& spacing,
           double radius_mm);
Bits dilate(const Bits& m, const std::array<int64_t, 3>& dims, const Vec3& spacing,
            double radius_mm);
// The largest 6-connected component.
Bits largest_component(const Bits& m, const std::array<int64_t, 3>& dims);
// Background not 6-connected to the edge of the field of view becomes foreground (3D only).
Bits fill_enclosed(const Bits& m, const std::array<int64_t, 3>& dims);
// fill_enclosed, then the same for each slice along every axis whose in-plane background does
// not reach that slice's edge.
Bits fill_holes(const Bits& m, const std::array<int64_t, 3>& dims);
// Squared Euclidean distance (mm^2) from each voxel to the nearest voxel where `feature` is set,
// exact (Felzenszwalb and Huttenlocher 2012), with anisotropic voxel sizes; 1e20 when none is.
std::vector<double> squared_distance(const Bits& feature, const std::array<int64_t, 3>& dims,
                                     const Vec3& spacing);
}  // namespace mask_ops

}  // namespace ddcsr
