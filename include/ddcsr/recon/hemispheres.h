// Assigning SDFNet's implicit surfaces to their hemisphere.
//
// The network is trained with left-right mirroring, so it cannot tell the hemispheres apart: each
// of lh.white and rh.white may go negative over both (on real scans they usually do). What it does
// tell is where white matter and cortex are. So both white maps are united and split at the
// midsagittal plane, found from the image's own mirror symmetry (heads are rarely straight in the
// scanner). A connected white region lying (almost) wholly on one side goes to that side whole; a
// region spanning both sides (white matter joined through the corpus callosum and brainstem) is
// cut at the plane, as a surface's medial wall is. The pial regions can touch across the fissure,
// so each hemisphere keeps the united pial voxels nearer its own white matter than the other's
// (a cut along the medial surface, not a plane).
#pragma once
#include "ddcsr/volume.h"

namespace ddcsr {

struct MidsagittalPlane {
  Vec3 point{0, 0, 0};   // scanner RAS (mm)
  Vec3 normal{1, 0, 0};  // unit, towards the subject's right (+x RAS)
  // Signed distance (mm) of a scanner-RAS point: negative in the left hemisphere.
  double side(const Vec3& ras) const;
  // Angle (degrees) between the plane and the scanner's sagittal plane x = const.
  double tilt_degrees() const;
};

// The plane about which `image` (e.g. FA), over the voxels where `mask` > 0.5, is most nearly
// mirror-symmetric: least mean squared difference between the image and its reflection, searched
// within 20 degrees of the scanner's sagittal plane and 12 mm of the mask centroid, then refined.
// Same grid for both volumes. Throws std::invalid_argument on an empty mask.
MidsagittalPlane midsagittal_plane(const Volume& image, const Volume& mask);

// The white matter of one hemisphere in a 3D SDF (negative inside), in place: the inside voxels are
// split between the sides of `plane` as described above and the largest 6-connected region on the
// requested side is kept. Inside voxels that are not kept get |value| (at least one voxel's
// width), so they read as outside. Returns the number of voxels kept (0: nothing on that side).
int64_t keep_hemisphere_white(Volume& sdf, const MidsagittalPlane& plane, bool left);

// The largest 6-connected inside region of a 3D SDF among the voxels where `allowed` (same grid)
// is nonzero, in place, as above; `allowed` marks one hemisphere (e.g. nearer its white matter).
int64_t keep_largest_region(Volume& sdf, const Volume& allowed);

}  // namespace ddcsr
