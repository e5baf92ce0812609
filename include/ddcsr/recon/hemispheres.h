// Assigning SDFNet's implicit surfaces to their hemisphere.
//
// The network learns from patches mirrored left-right; its only cue to which hemisphere it looks
// at is the midline feature, and far from the midline the cue is weak: lh.white and rh.white may
// each go negative over parts of both hemispheres. What the network does tell well is where white
// matter and cortex are. So both white maps are united and split at the midsagittal plane
// (features/midsagittal.h). A connected white region lying (almost) wholly on one side goes to
// that side whole; a region spanning both sides (white matter joined through the corpus callosum
// and brainstem) is cut at the plane, as a surface's medial wall is. The pial regions can touch
// across the fissure, so each hemisphere keeps the united pial voxels nearer its own white matter
// than the other's (a cut along the medial surface, not a plane).
#pragma once
#include "ddcsr/features/midsagittal.h"
#include "ddcsr/volume.h"

namespace ddcsr {

// The white matter of one hemisphere in a 3D SDF (negative inside), in place: the inside voxels are
// split between the sides of `plane` as described above and the largest 6-connected region on the
// requested side is kept. Inside voxels that are not kept get |value| (at least one voxel's
// width), so they read as outside. Returns the number of voxels kept (0: nothing on that side).
int64_t keep_hemisphere_white(Volume& sdf, const MidsagittalPlane& plane, bool left);

// The largest 6-connected inside region of a 3D SDF among the voxels where `allowed` (same grid)
// is nonzero, in place, as above; `allowed` marks one hemisphere (e.g. nearer its white matter).
int64_t keep_largest_region(Volume& sdf, const Volume& allowed);

}  // namespace ddcsr
