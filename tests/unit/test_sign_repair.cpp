// Far-field sign repair of SDFNet maps (recon/sign_repair.h): cavities of "far outside" deep in the
// white matter become inside again; what lies beyond the brain stays outside.
#include <gtest/gtest.h>

#include <cmath>

#include "ddcsr/features/mask.h"
#include "ddcsr/recon/sign_repair.h"

namespace ddcsr {
namespace {

Volume ball_sdf(double radius, double cavity_radius, float cavity_value) {
  // 2 mm voxels, oblique-free grid centred on the origin.
  Volume v({40, 40, 40}, 1,
           Affine::from_linear_translation({2, 0, 0, 0, 2, 0, 0, 0, 2}, {-39, -39, -39}));
  for (int64_t k = 0; k < 40; ++k)
    for (int64_t j = 0; j < 40; ++j)
      for (int64_t i = 0; i < 40; ++i) {
        const Vec3 p = v.voxel_to_ras({double(i), double(j), double(k)});
        const double r = std::sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
        // Like the network: accurate near the surface, saturated at +20 far outside.
        float value = static_cast<float>(std::min(r - radius, 20.0));
        if (r < cavity_radius) value = cavity_value;
        v.data[v.index(i, j, k)] = value;
      }
  return v;
}

// A midsagittal plane beyond the grid: these phantoms are one hemisphere.
MidsagittalPlane far_plane() {
  MidsagittalPlane plane;
  plane.point = {100, 0, 0};
  return plane;
}

double radius_of(const Volume& v, size_t index) {
  const auto i = static_cast<int64_t>(index);
  const Vec3 p = v.voxel_to_ras({double(i % 40), double((i / 40) % 40), double(i / 1600)});
  return std::sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
}

TEST(SignRepair, DeepCavitiesBecomeInsideAndTheOutsideStays) {
  // White: a ball of radius 22 whose core (r < 14) the network calls 15 mm outside. Pial: radius
  // 27, core (r < 10) called 18 mm outside.
  Volume white = ball_sdf(22, 14, 15.f), pial = ball_sdf(27, 10, 18.f);
  const Volume white_before = white;
  const SignRepairCounts counts = repair_far_field_signs(white, pial, far_plane());
  EXPECT_GT(counts.white_voxels_flipped, 0);
  EXPECT_GT(counts.pial_voxels_flipped, 0);
  for (size_t v = 0; v < white.data.size(); ++v) {
    const double r = radius_of(white, v);
    if (r < 21) {
      EXPECT_LT(white.data[v], 0.f) << "white at r = " << r;
    }
    if (r > 23) {
      EXPECT_GT(white.data[v], 0.f) << "white at r = " << r;
    }
    if (r < 26) {
      EXPECT_LT(pial.data[v], 0.f) << "pial at r = " << r;
    }
    if (r > 28) {
      EXPECT_GT(pial.data[v], 0.f) << "pial at r = " << r;
    }
    // Near the true surface the network's values (its sub-voxel zero crossing) are kept.
    if (std::fabs(r - 22) < 3) {
      EXPECT_EQ(white.data[v], white_before.data[v]);
    }
  }
}

TEST(SignRepair, WhiteOutsideThePialInteriorIsOutside) {
  // A white blob the network placed beyond the brain (r > 30, no pial there) is dropped; a cortex
  // ribbon (white map 0..5 mm, inside pial) stays cortex.
  Volume white = ball_sdf(20, 0, 0.f), pial = ball_sdf(25, 0, 0.f);
  const size_t far = white.index(38, 20, 20);
  white.data[far] = -2.f;
  repair_far_field_signs(white, pial, far_plane());
  EXPECT_GT(white.data[far], 0.f);
  for (size_t v = 0; v < white.data.size(); ++v) {
    const double r = radius_of(white, v);
    if (r > 21 && r < 24) {
      EXPECT_GT(white.data[v], 0.f) << "cortex at r = " << r;
    }
  }
}

TEST(SignRepair, WhiteDeeperThanAnyCortexIsWhiteWhateverItsValue) {
  // The core (r < 12) of a white ball of radius 22 is called 3 mm outside: not far enough to be a
  // cavity by value, but 15 mm below the pial surface (radius 27), deeper than any cortex.
  Volume white = ball_sdf(22, 12, 3.f), pial = ball_sdf(27, 0, 0.f);
  repair_far_field_signs(white, pial, far_plane());
  for (size_t v = 0; v < white.data.size(); ++v) {
    const double r = radius_of(white, v);
    if (r < 21) {
      EXPECT_LT(white.data[v], 0.f) << "white at r = " << r;
    }
  }
  // With the midsagittal plane through the ball, the cortex along the plane is no white matter
  // for depth alone: a ribbon of cortex (white map 0..4 mm) along the plane stays cortex.
  Volume ribbon = ball_sdf(22, 0, 0.f), pial2 = ball_sdf(27, 0, 0.f);
  for (int64_t k = 0; k < 40; ++k)
    for (int64_t j = 0; j < 40; ++j)
      for (int64_t i = 19; i <= 20; ++i) ribbon.data[ribbon.index(i, j, k)] = 2.f;  // x = -1, +1
  repair_far_field_signs(ribbon, pial2, MidsagittalPlane{});
  EXPECT_GT(ribbon.data[ribbon.index(19, 20, 20)], 0.f);
  EXPECT_GT(ribbon.data[ribbon.index(20, 20, 20)], 0.f);
}

TEST(SignRepair, FillEnclosedFillsOnlyEnclosedPockets) {
  const std::array<int64_t, 3> dims{7, 7, 7};
  std::vector<uint8_t> inside(343, 0);
  // A hollow cube shell (1..5) with its centre empty, and an open cup (no top) beside nothing.
  for (int k = 1; k <= 5; ++k)
    for (int j = 1; j <= 5; ++j)
      for (int i = 1; i <= 5; ++i)
        if (i == 1 || i == 5 || j == 1 || j == 5 || k == 1 || k == 5)
          inside[(k * 7 + j) * 7 + i] = 1;
  inside = mask_ops::fill_enclosed(inside, dims);
  EXPECT_EQ(inside[(3 * 7 + 3) * 7 + 3], 1);
  EXPECT_EQ(inside[0], 0);
  // Open the shell's top: the pocket now reaches the border and stays empty.
  for (auto& b : inside) b = 0;
  for (int k = 1; k <= 5; ++k)
    for (int j = 1; j <= 5; ++j)
      for (int i = 1; i <= 5; ++i)
        if (i == 1 || i == 5 || j == 1 || j == 5 || k == 1) inside[(k * 7 + j) * 7 + i] = 1;
  inside = mask_ops::fill_enclosed(inside, dims);
  EXPECT_EQ(inside[(3 * 7 + 3) * 7 + 3], 0);
}

}  // namespace
}  // namespace ddcsr
