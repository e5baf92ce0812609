// Quick-look pictures for quality control: orthogonal slices of a volume as a PNG.
#pragma once
#include <cstdint>
#include <string>

#include "ddcsr/volume.h"

namespace ddcsr {

// Writes an 8-bit grey PNG with three panels side by side: axial, coronal and sagittal planes
// through `center_ras`, sampled on RAS-aligned planes every `pixel_mm` over the volume's extent
// (trilinear, whatever the volume's orientation). Neurological convention: the subject's right
// is on the image's right in the axial and coronal panels; anterior is up in the axial panel and
// left in the sagittal one; superior is up in the coronal and sagittal panels.
// Values map linearly from [lo, hi] to [0, 255]. Written atomically.
void write_orthogonal_slices_png(const Volume& volume, int64_t frame, const Vec3& center_ras, double lo, double hi,
                                 const std::string& path, double pixel_mm = 1.0);

}  // namespace ddcsr
