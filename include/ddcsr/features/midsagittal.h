// The midsagittal plane of a head, found from the image's own mirror symmetry: heads are rarely
// straight in the scanner, and both the network's hemisphere cue (the `midline` feature) and the
// split of the surfaces between the hemispheres (recon/hemispheres.h) need the true plane, not the
// scanner's x = const.
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

}  // namespace ddcsr
