// How many cerebral hemispheres a scan holds (issue 26). Ex vivo scans of one hemisphere, scans
// after hemispherectomy, and fields of view that hold one hemisphere are common, and a pipeline
// that assumes two splits such a hemisphere at a "midsagittal plane" through its middle and
// invents the other. The brain mask's shape tells: a whole brain is about as wide (left-right) as
// it is high and four fifths as long; one hemisphere is half as wide as it is long, flat on its
// medial face and round on its lateral side, so that more of it lies near its medial face than near
// its lateral extreme. The mirror symmetry that the midsagittal fit (midsagittal.h) finds in a
// whole brain is measured too: FA correlates with its mirror image across the fissure; across the
// middle of one hemisphere it hardly does.
#pragma once
#include <string>
#include <vector>

#include "ddcsr/features/midsagittal.h"
#include "ddcsr/volume.h"

namespace ddcsr {

struct HemispherePresence {
  int count = 2;       // 2, or 1
  std::string side;    // one hemisphere: "lh" or "rh", or "" when its orientation does not tell
  std::string reason;  // one line: what decided
  // The measures (report.json `hemispheres_present`):
  double width_ratio = 0;  // sd of the mask along the fitted plane's normal / largest in-plane sd
  double thinnest_ratio = 0;        // smallest / largest principal sd of the mask
  double thin_axis_lr_degrees = 0;  // angle of the smallest principal axis to left-right
  // Mask within the outer 15 % of its extent along that axis at its right (+x) end over that at
  // its left end: the flat medial face holds more than the round lateral side.
  double end_mass_ratio = 1;
  double mirror_overlap = 0;      // share of mask voxels whose mirror (fitted plane) is in the mask
  double mirror_correlation = 0;  // correlation of the image with its mirror where both in mask
  bool cut_along_thin_axis = false;  // the mask reaches the image border across its thinnest axis
  // One hemisphere: its medial face at the end of the smallest principal axis towards which its
  // mass lies: the face's normal (a unit vector out of the hemisphere; the direction within 30
  // degrees of that axis whose outermost slab holds the most mask), and a point 1 mm outside the
  // mask there.
  Vec3 medial_direction{1, 0, 0};
  Vec3 medial_point{0, 0, 0};
};

// One hemisphere labelled `hemi` ("lh" or "rh"): the plane of its medial face, 1 mm outside the
// mask, with its normal towards the subject's right as MidsagittalPlane's is, so that the whole
// hemisphere lies on its own side (negative for lh). What the `midline` feature and the far-field
// sign repair measure from: the network then sees the medial wall where a head has it.
MidsagittalPlane medial_face_plane(const HemispherePresence& presence, const std::string& hemi);

// The decision and its measures as a JSON object (features.json and report.json
// `hemispheres_present`): count, side (null unless one hemisphere of known side), reason, measures.
std::string hemisphere_presence_json(const HemispherePresence& presence);

// The hemispheres to reconstruct for a request ("auto", "both", "lh" or "rh"; recon's --hemi)
// on a scan with `presence`, in lh, rh order. Never one that is not in the image: a request for
// a hemisphere the scan does not hold, or "auto" on one hemisphere whose side its orientation
// does not tell, is an InputError naming `path` and the reason. std::invalid_argument for an
// unknown request.
std::vector<std::string> hemispheres_to_reconstruct(const HemispherePresence& presence,
                                                    const std::string& request,
                                                    const std::string& path);

struct HemispherePresenceOptions {
  // Smallest/largest principal sd of the mask below which it is a hemisphere's shape, not a whole
  // brain's. Measured (docs/experiments.md, issue 26): real scans and phantoms 0.63-0.76 outside
  // slabs (the Philips slab 0.43, cut across its thin axis), one hemisphere 0.36-0.41.
  double hemisphere_shape_ratio = 0.5;
  // Within this angle (degrees) of left-right the hemisphere lies as it does in a head.
  double lr_axis_degrees = 35;
  // end_mass_ratio above which (or below whose inverse) the medial face is clear (phantom
  // hemispheres 1.29-1.81).
  double medial_face_ratio = 1.15;
  // Mirror correlation above which the fitted plane is a true midsagittal plane.
  double two_hemisphere_correlation = 0.5;
};

// Decides from the brain mask (and an image such as FA for the mirror correlation; same grid, an
// isotropic one is best) and the plane fitted to the image's mirror symmetry. `native_mask`, the
// mask on the scan's own grid, says whether the field of view cut the brain across its thinnest
// axis (a slab of a whole brain is thin but cut; a hemisphere is thin whole); may be null.
// Throws std::invalid_argument on an empty mask or differing grids.
HemispherePresence detect_hemispheres(const Volume& image, const Volume& mask,
                                      const MidsagittalPlane& fitted, const Volume* native_mask,
                                      const HemispherePresenceOptions& options = {});

}  // namespace ddcsr
