// Hemisphere assignment of SDFNet's maps (recon/hemispheres.h): a map that is negative over both
// hemispheres keeps only its own side; touching pial regions are cut between the white matter.
#include <gtest/gtest.h>

#include <cmath>

#include "ddcsr/recon/hemispheres.h"

namespace ddcsr {
namespace {

// 2 mm voxels, LAS storage (x flipped) so that "left" must come from the affine, not the index.
Volume las_grid() {
  const Affine a = Affine::from_linear_translation({-2, 0, 0, 0, 2, 0, 0, 0, 2}, {62, -40, -40});
  return Volume({64, 40, 40}, 1, a);
}

// Signed distance to the union of spheres (negative inside).
Volume spheres(const std::vector<std::pair<Vec3, double>>& balls) {
  Volume v = las_grid();
  for (int64_t k = 0; k < v.dims[2]; ++k)
    for (int64_t j = 0; j < v.dims[1]; ++j)
      for (int64_t i = 0; i < v.dims[0]; ++i) {
        const Vec3 p = v.vox2ras.apply({double(i), double(j), double(k)});
        double d = 1e9;
        for (const auto& [c, r] : balls)
          d = std::min(d, std::sqrt((p[0] - c[0]) * (p[0] - c[0]) + (p[1] - c[1]) * (p[1] - c[1]) +
                                    (p[2] - c[2]) * (p[2] - c[2])) - r);
        v.data[v.index(i, j, k)] = static_cast<float>(d);
      }
  return v;
}

double inside_centre_x(const Volume& v, int64_t* count) {
  double sum = 0;
  *count = 0;
  for (int64_t k = 0; k < v.dims[2]; ++k)
    for (int64_t j = 0; j < v.dims[1]; ++j)
      for (int64_t i = 0; i < v.dims[0]; ++i)
        if (v.data[v.index(i, j, k)] < 0) {
          sum += v.vox2ras.apply({double(i), double(j), double(k)})[0];
          ++*count;
        }
  return *count ? sum / double(*count) : 0.0;
}

TEST(Hemispheres, MidlineIsTheMaskCentroidInScannerRas) {
  Volume mask = las_grid();
  for (int64_t k = 0; k < 40; ++k)
    for (int64_t j = 0; j < 40; ++j)
      for (int64_t i = 10; i < 30; ++i) mask.data[mask.index(i, j, k)] = 1;
  // Voxels i = 10..29 lie at x = 62 - 2i: 42 down to 4, centre 23.
  EXPECT_NEAR(midline_x(mask), 23.0, 1e-9);
  EXPECT_THROW(midline_x(las_grid()), std::invalid_argument);
}

TEST(Hemispheres, WhiteMapKeepsItsOwnSideOnly) {
  // A mirrored copy on the right, larger than the true left region, and a small stray blob left.
  Volume lh_white = spheres({{{-25, 0, 0}, 12}, {{25, 0, 0}, 14}, {{-8, 25, 20}, 3}});
  const int64_t kept = keep_hemisphere_region(lh_white, 0.0, true);
  int64_t count = 0;
  const double cx = inside_centre_x(lh_white, &count);
  EXPECT_EQ(kept, count);
  EXPECT_NEAR(cx, -25.0, 1.0);
  EXPECT_NEAR(count * 8.0, 4.0 / 3.0 * M_PI * 12 * 12 * 12, 0.1 * 4.0 / 3.0 * M_PI * 12 * 12 * 12);
  // Rejected voxels read as outside, at least a voxel away.
  const Vec3 right = las_grid().vox2ras.inverse().apply({25, 0, 0});
  EXPECT_GE(lh_white.data[lh_white.index(std::lround(right[0]), std::lround(right[1]), std::lround(right[2]))], 2.0f);

  Volume rh_white = spheres({{{-25, 0, 0}, 12}, {{25, 0, 0}, 14}});
  keep_hemisphere_region(rh_white, 0.0, false);
  EXPECT_NEAR(inside_centre_x(rh_white, &count), 25.0, 1.0);

  Volume none = spheres({{{25, 0, 0}, 14}});
  EXPECT_EQ(keep_hemisphere_region(none, 0.0, true), 0);
  EXPECT_EQ(inside_centre_x(none, &count), 0.0);
  EXPECT_EQ(count, 0);
}

TEST(Hemispheres, TouchingPialRegionsAreCutBetweenTheWhiteMatter) {
  // Pial balls of radius 20 around white balls at x = -/+19 overlap across the midline; the
  // white matter sits off-centre (x = -10 and +28) so the cut is not the plane x = 0.
  Volume pial = spheres({{{-10, 0, 0}, 20}, {{28, 0, 0}, 20}});
  const Volume lh_white = spheres({{{-10, 0, 0}, 10}}), rh_white = spheres({{{28, 0, 0}, 10}});
  Volume nearer_lh = lh_white;
  for (size_t v = 0; v < nearer_lh.data.size(); ++v) nearer_lh.data[v] = lh_white.data[v] < rh_white.data[v];
  Volume lh_pial = pial;
  ASSERT_GT(keep_hemisphere_region(lh_pial, 0.0, true, &nearer_lh), 0);
  double max_x = -1e9;
  for (int64_t k = 0; k < lh_pial.dims[2]; ++k)
    for (int64_t j = 0; j < lh_pial.dims[1]; ++j)
      for (int64_t i = 0; i < lh_pial.dims[0]; ++i)
        if (lh_pial.data[lh_pial.index(i, j, k)] < 0)
          max_x = std::max(max_x, lh_pial.vox2ras.apply({double(i), double(j), double(k)})[0]);
  EXPECT_LE(max_x, 9.0 + 1e-6);  // the medial cut at x = 9, halfway between the white centres
  EXPECT_GE(max_x, 7.0 - 1e-6);  // and the left pial region reaches it (not the plane x = 0)
}

}  // namespace
}  // namespace ddcsr
