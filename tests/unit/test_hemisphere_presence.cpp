// How many hemispheres a scan holds (features/hemisphere_presence.h): whole brains, one
// hemisphere of either side, a hemisphere lying in an arbitrary orientation, and a slab of a
// whole brain (thin, but because the field of view cut it).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "ddcsr/error.h"
#include "ddcsr/features/hemisphere_presence.h"

namespace ddcsr {
namespace {

// 2 mm voxels, LAS storage (x flipped) so that left and right must come from the affine.
Volume grid(int64_t nz = 72, double z0 = -72) {
  const Affine a = Affine::from_linear_translation({-2, 0, 0, 0, 2, 0, 0, 0, 2}, {80, -96, z0});
  return Volume({80, 96, nz}, 1, a);
}

// A mask of the points where `inside` holds, and an FA-like image that is mirror-symmetric about
// x = 0 (folding-like waves in |x|, y, z), as a head's nearly is.
struct Scan {
  Volume mask, image;
};
// `head` maps scanner RAS to the head's own frame (a specimen lying otherwise).
Scan make_scan(
    const std::function<bool(const Vec3&)>& inside, Volume g = grid(),
    const std::function<Vec3(const Vec3&)>& head = [](const Vec3& p) { return p; }) {
  Scan s{g, g};
  for (int64_t k = 0; k < g.dims[2]; ++k)
    for (int64_t j = 0; j < g.dims[1]; ++j)
      for (int64_t i = 0; i < g.dims[0]; ++i) {
        const Vec3 p = head(g.vox2ras.apply({double(i), double(j), double(k)}));
        const bool in = inside(p);
        s.mask.at(i, j, k) = in ? 1.f : 0.f;
        s.image.at(i, j, k) =
            in ? static_cast<float>(0.4 + 0.3 * std::sin(0.21 * std::fabs(p[0]) + 0.3) *
                                              std::cos(0.17 * p[1]) * std::cos(0.13 * p[2] + 0.5))
               : 0.f;
      }
  return s;
}

bool in_ellipsoid(const Vec3& p, double a, double b, double c) {
  return (p[0] / a) * (p[0] / a) + (p[1] / b) * (p[1] / b) + (p[2] / c) * (p[2] / c) <= 1;
}

// A whole brain: 130 mm wide, 160 long, 120 high; a hemisphere: its left (x < -1) or right half.
bool whole_brain(const Vec3& p) { return in_ellipsoid(p, 65, 80, 60); }
bool left_hemisphere(const Vec3& p) { return p[0] < -1 && in_ellipsoid(p, 65, 80, 60); }
bool right_hemisphere(const Vec3& p) { return p[0] > 1 && in_ellipsoid(p, 65, 80, 60); }

MidsagittalPlane plane_at(double x) {
  MidsagittalPlane plane;
  plane.point = {x, 0, 0};
  return plane;
}

TEST(HemispherePresence, WholeBrainHasTwo) {
  const Scan s = make_scan(whole_brain);
  const HemispherePresence p = detect_hemispheres(s.image, s.mask, plane_at(0), &s.mask);
  EXPECT_EQ(p.count, 2) << p.reason;
  EXPECT_GT(p.thinnest_ratio, 0.6);
  EXPECT_GT(p.mirror_overlap, 0.95);
  EXPECT_GT(p.mirror_correlation, 0.9);
  EXPECT_NEAR(p.end_mass_ratio, 1.0, 0.05);
}

TEST(HemispherePresence, OneHemisphereIsNamedByItsMedialFace) {
  for (const bool left : {true, false}) {
    const Scan s = make_scan(left ? left_hemisphere : right_hemisphere);
    // The symmetry fit finds some plane through the hemisphere's middle.
    const HemispherePresence p =
        detect_hemispheres(s.image, s.mask, plane_at(left ? -25 : 25), &s.mask);
    EXPECT_EQ(p.count, 1) << p.reason;
    EXPECT_EQ(p.side, left ? "lh" : "rh") << p.reason;
    EXPECT_LT(p.thinnest_ratio, 0.5);
    EXPECT_LT(p.thin_axis_lr_degrees, 5);
    // The medial face is the flat side at x = -1 / +1; the plane is 1 mm outside the mask there.
    const MidsagittalPlane m = medial_face_plane(p, left ? "lh" : "rh");
    EXPECT_GT(m.normal[0], 0.99);
    EXPECT_NEAR(m.point[0], left ? 1.0 : -1.0, 2.1);
    // The whole hemisphere lies on its own side: negative for lh, positive for rh.
    for (const Vec3& q : {Vec3{left ? -60.0 : 60.0, 0, 0}, Vec3{left ? -3.0 : 3.0, 40, 20}})
      EXPECT_EQ(m.side(q) < 0, left) << q[0];
    EXPECT_EQ(hemispheres_to_reconstruct(p, "auto", "x.nii.gz"),
              std::vector<std::string>{left ? "lh" : "rh"});
  }
}

TEST(HemispherePresence, MedialFaceIsTheFlatSideNotTheThinnestAxis) {
  // A left hemisphere with a temporal lobe hanging below its lateral half: the lobe's mass tilts
  // the smallest principal axis away from left-right, as a real hemisphere's does (fsaverage5's
  // by 14 degrees), while the medial face stays the flat side at x = -1.
  const auto with_temporal_lobe = [](const Vec3& p) {
    return p[0] < -1 && (in_ellipsoid(p, 65, 80, 60) ||
                         in_ellipsoid({p[0] + 42, p[1] - 5, p[2] + 45}, 22, 45, 18));
  };
  const Scan s = make_scan(with_temporal_lobe, grid(80, -104));
  const HemispherePresence p = detect_hemispheres(s.image, s.mask, plane_at(-25), &s.mask);
  ASSERT_EQ(p.count, 1) << p.reason;
  ASSERT_EQ(p.side, "lh") << p.reason;
  EXPECT_GT(p.thin_axis_lr_degrees, 6);
  const MidsagittalPlane m = medial_face_plane(p, "lh");
  EXPECT_GT(m.normal[0], std::cos(2 * M_PI / 180)) << m.normal[1] << " " << m.normal[2];
  EXPECT_NEAR(m.point[0], 1.0, 2.1);
}

TEST(HemispherePresence, HemisphereInAnArbitraryOrientationAsksForItsSide) {
  // The left hemisphere lying on its medial face: its thin axis is superior-inferior.
  const Scan s = make_scan(left_hemisphere, grid(), [](const Vec3& p) {
    return Vec3{p[2], p[1], -p[0]};
  });
  const HemispherePresence p = detect_hemispheres(s.image, s.mask, plane_at(0), &s.mask);
  EXPECT_EQ(p.count, 1) << p.reason;
  EXPECT_EQ(p.side, "") << p.reason;
  EXPECT_GT(p.thin_axis_lr_degrees, 60);
  try {
    hemispheres_to_reconstruct(p, "auto", "specimen.nii.gz");
    FAIL() << "auto on a hemisphere of unknown side must ask for --hemi";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("specimen.nii.gz: ", 0), 0u) << m;
    EXPECT_NE(m.find("--hemi lh or --hemi rh"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  EXPECT_EQ(hemispheres_to_reconstruct(p, "rh", "s"), std::vector<std::string>{"rh"});
  // Labelled rh by the user: the hemisphere lies on the positive side of its medial plane.
  const MidsagittalPlane m = medial_face_plane(p, "rh");
  EXPECT_GT(m.side({0, 0, -40}), 0);
  EXPECT_GT(m.side({0, 10, -3}), 0);
}

TEST(HemispherePresence, SlabOfAWholeBrainHasTwo) {
  // A 60 mm axial slab (the Philips sample has 64 mm): thinner than a hemisphere along z, but
  // the field of view cuts the brain there, and it is as wide as a head.
  const Volume slab = grid(30, -30);
  const Scan s = make_scan(whole_brain, slab);
  const HemispherePresence p = detect_hemispheres(s.image, s.mask, plane_at(0), &s.mask);
  EXPECT_LT(p.thinnest_ratio, 0.5);
  EXPECT_TRUE(p.cut_along_thin_axis);
  EXPECT_EQ(p.count, 2) << p.reason;
}

TEST(HemispherePresence, NeverInventsAHemisphere) {
  const Scan s = make_scan(left_hemisphere);
  const HemispherePresence p = detect_hemispheres(s.image, s.mask, plane_at(-25), &s.mask);
  ASSERT_EQ(p.side, "lh");
  EXPECT_EQ(hemispheres_to_reconstruct(p, "lh", "s"), std::vector<std::string>{"lh"});
  for (const std::string request : {"both", "rh"}) {
    try {
      hemispheres_to_reconstruct(p, request, "left.nii.gz");
      FAIL() << request << " on a left hemisphere must be an error";
    } catch (const InputError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("left.nii.gz: holds only the left hemisphere"), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  }
  // Two hemispheres: any request is served.
  const Scan w = make_scan(whole_brain);
  const HemispherePresence two = detect_hemispheres(w.image, w.mask, plane_at(0), &w.mask);
  EXPECT_EQ(hemispheres_to_reconstruct(two, "auto", "s"), (std::vector<std::string>{"lh", "rh"}));
  EXPECT_EQ(hemispheres_to_reconstruct(two, "both", "s"), (std::vector<std::string>{"lh", "rh"}));
  EXPECT_EQ(hemispheres_to_reconstruct(two, "rh", "s"), std::vector<std::string>{"rh"});
  EXPECT_THROW(hemispheres_to_reconstruct(two, "left", "s"), std::invalid_argument);
}

}  // namespace
}  // namespace ddcsr
