// Assigning SDFNet's implicit surfaces to their hemisphere.
//
// The network sees patches (or a whole brain through a receptive field smaller than the head)
// and the two hemispheres are near mirror images, so a map such as lh.white may also go negative
// over the right hemisphere. DiffCoSeg needs one region per map. White matter of the two
// hemispheres lies several millimetres apart, so each white map keeps its largest inside region
// whose centre lies on its side of the midline; the pial regions can touch across the fissure,
// so each pial map keeps the inside voxels nearer its own hemisphere's white matter than the
// other's (a cut along the medial surface, not a flat plane), then the largest region of those.
#pragma once
#include "ddcsr/volume.h"

namespace ddcsr {

// Scanner-RAS x of the midsagittal plane: the centroid of a brain mask (any volume, > 0.5 inside).
double midline_x(const Volume& mask);

// In a 3D SDF (negative inside), keep the largest 6-connected inside region among those whose
// centroid lies left (x < midline) or right of the midline and, when `allowed` is given (same
// grid, nonzero = allowed), only inside voxels where it is nonzero. Inside voxels that are not
// kept get |value| (at least one voxel's width), so they read as outside. Returns the number of
// voxels kept (0: no region on that side).
int64_t keep_hemisphere_region(Volume& sdf, double midline, bool left, const Volume* allowed = nullptr);

}  // namespace ddcsr
