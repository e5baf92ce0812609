// Repairing the sign of SDFNet's maps far from the surfaces.
//
// The network is accurate within a few millimetres of the surfaces, where its loss weighs most,
// but deep inside the white matter it may answer "far outside" (+10..+20 mm) as confidently as it
// does beyond the brain (seen on held-out and training phantoms alike: most voxels deeper than
// 5 mm). Such a cavity meets the true inside along a jump of many millimetres per voxel, which a
// distance function cannot have; the true outside is reached from the edge of the field of view
// through values that change gently. So:
//  - the pial interior is every voxel not reached from the border through positive voxels whose
//    values change by at most `max_slope` per millimetre step;
//  - the white interior is, within the pial interior, what the white map calls inside, or
//    farther outside than any cortex is thick (a cavity), or deeper below the pial exterior and
//    the midsagittal plane than any cortex is thick; enclosed pockets are filled.
// The zero level sets where the network is reliable keep their values (sub-voxel positions);
// repaired voxels get the sign of their side.
// The depth rule also fills sulci whose banks the 2 mm pial map closes: cortex there lies deeper
// than max_thickness_mm below the pial exterior. That moves the white map away from the truth
// (phantom s301: mean |white SDF| at the true surface 0.74 mm without the rule, 1.27 mm with it),
// but DiffCoSeg's white flow cannot enter such sulci either, and without the rule the final
// surfaces were worse (s302: pial ASSD 0.97/1.02 -> 1.10/1.17 mm, HD90 up by 0.8 mm), so it stays.
#pragma once
#include "ddcsr/recon/hemispheres.h"
#include "ddcsr/volume.h"

namespace ddcsr {

struct SignRepairOptions {
  double max_slope = 2.5;  // |change| per mm a path from the outside may take
  double max_thickness_mm =
      6.0;  // white-map values beyond this, inside the pial interior, are cavities
};

struct SignRepairCounts {
  int64_t pial_voxels_flipped = 0, white_voxels_flipped = 0;
};

// Voxels (1) of the positive region of a 3D SDF reached from the border of the grid through
// positive voxels along 6-neighbour steps whose values differ by at most max_slope * step (mm).
std::vector<uint8_t> smooth_exterior(const Volume& sdf, double max_slope);

// Repairs, in place, a white and a pial SDF (3D, same grid) of both hemispheres, split by `plane`.
SignRepairCounts repair_far_field_signs(Volume& white, Volume& pial, const MidsagittalPlane& plane,
                                        const SignRepairOptions& options = {});

}  // namespace ddcsr
