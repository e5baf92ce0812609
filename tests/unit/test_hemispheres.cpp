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
                                    (p[2] - c[2]) * (p[2] - c[2])) -
                              r);
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

double max_inside_x(const Volume& v) {
  double max_x = -1e9;
  for (int64_t k = 0; k < v.dims[2]; ++k)
    for (int64_t j = 0; j < v.dims[1]; ++j)
      for (int64_t i = 0; i < v.dims[0]; ++i)
        if (v.data[v.index(i, j, k)] < 0)
          max_x = std::max(max_x, v.vox2ras.apply({double(i), double(j), double(k)})[0]);
  return max_x;
}

TEST(Hemispheres, MidsagittalPlaneIsFoundUnderTiltAndOffset) {
  // An image mirror-symmetric about a plane tilted 8 degrees in yaw and -6 in roll through
  // (4, 2, 0): Gaussian blobs at asymmetric places plus their mirror images. The mask is a ball
  // centred off the plane, so its centroid alone would misplace it.
  MidsagittalPlane truth;
  const double yaw = 8 * M_PI / 180, roll = -6 * M_PI / 180;
  truth.normal = {std::cos(yaw) * std::cos(roll), std::sin(yaw) * std::cos(roll), std::sin(roll)};
  truth.point = {4, 2, 0};
  auto mirror = [&](const Vec3& x) {
    const double d = 2 * truth.side(x);
    return Vec3{x[0] - d * truth.normal[0], x[1] - d * truth.normal[1], x[2] - d * truth.normal[2]};
  };
  const std::vector<Vec3> blobs = {
      {-20, 10, 5}, {-8, -22, -10}, {-30, -5, 18}, {-14, 20, -20}, {-3, 0, 12}};
  Volume image = las_grid(), mask = las_grid();
  for (int64_t k = 0; k < image.dims[2]; ++k)
    for (int64_t j = 0; j < image.dims[1]; ++j)
      for (int64_t i = 0; i < image.dims[0]; ++i) {
        const Vec3 p = image.vox2ras.apply({double(i), double(j), double(k)});
        double value = 0;
        for (const Vec3& b : blobs)
          for (const Vec3& c : {b, mirror(b)})
            value += std::exp(-((p[0] - c[0]) * (p[0] - c[0]) + (p[1] - c[1]) * (p[1] - c[1]) +
                                (p[2] - c[2]) * (p[2] - c[2])) /
                              (2 * 5.0 * 5.0));
        image.data[image.index(i, j, k)] = static_cast<float>(value);
        const double r2 = (p[0] - 10) * (p[0] - 10) + p[1] * p[1] + p[2] * p[2];
        mask.data[mask.index(i, j, k)] = r2 < 36.0 * 36.0 ? 1.f : 0.f;
      }
  const MidsagittalPlane found = midsagittal_plane(image, mask);
  const double cosine =
      std::fabs(found.normal[0] * truth.normal[0] + found.normal[1] * truth.normal[1] +
                found.normal[2] * truth.normal[2]);
  EXPECT_LT(std::acos(std::min(cosine, 1.0)) * 180 / M_PI, 1.0);
  EXPECT_NEAR(found.side(truth.point), 0.0, 0.5);
  EXPECT_NEAR(found.tilt_degrees(), truth.tilt_degrees(), 1.0);
  EXPECT_GT(found.normal[0], 0.0);  // towards the right, whatever the storage order
  EXPECT_THROW(midsagittal_plane(image, las_grid()), std::invalid_argument);
}

TEST(Hemispheres, WhiteMapKeepsItsOwnSideOnly) {
  // A mirrored copy on the right, larger than the true left region, and a small stray blob left.
  Volume lh_white = spheres({{{-25, 0, 0}, 12}, {{25, 0, 0}, 14}, {{-8, 25, 20}, 3}});
  const int64_t kept = keep_hemisphere_white(lh_white, MidsagittalPlane{}, true);
  int64_t count = 0;
  const double cx = inside_centre_x(lh_white, &count);
  EXPECT_EQ(kept, count);
  EXPECT_NEAR(cx, -25.0, 1.0);
  EXPECT_NEAR(count * 8.0, 4.0 / 3.0 * M_PI * 12 * 12 * 12, 0.1 * 4.0 / 3.0 * M_PI * 12 * 12 * 12);
  // Rejected voxels read as outside, at least a voxel away.
  const Vec3 right = las_grid().vox2ras.inverse().apply({25, 0, 0});
  EXPECT_GE(lh_white.data[lh_white.index(std::lround(right[0]), std::lround(right[1]),
                                         std::lround(right[2]))],
            2.0f);

  Volume rh_white = spheres({{{-25, 0, 0}, 12}, {{25, 0, 0}, 14}});
  keep_hemisphere_white(rh_white, MidsagittalPlane{}, false);
  EXPECT_NEAR(inside_centre_x(rh_white, &count), 25.0, 1.0);

  Volume none = spheres({{{25, 0, 0}, 14}});
  EXPECT_EQ(keep_hemisphere_white(none, MidsagittalPlane{}, true), 0);
  EXPECT_EQ(inside_centre_x(none, &count), 0.0);
  EXPECT_EQ(count, 0);
}

TEST(Hemispheres, TouchingPialRegionsAreCutBetweenTheWhiteMatter) {
  // Pial balls of radius 20 around white balls at x = -/+19 overlap across the midline; the
  // white matter sits off-centre (x = -10 and +28) so the cut is not the plane x = 0.
  Volume pial = spheres({{{-10, 0, 0}, 20}, {{28, 0, 0}, 20}});
  const Volume lh_white = spheres({{{-10, 0, 0}, 10}}), rh_white = spheres({{{28, 0, 0}, 10}});
  Volume nearer_lh = lh_white;
  for (size_t v = 0; v < nearer_lh.data.size(); ++v)
    nearer_lh.data[v] = lh_white.data[v] < rh_white.data[v];
  Volume lh_pial = pial;
  ASSERT_GT(keep_largest_region(lh_pial, nearer_lh), 0);
  const double max_x = max_inside_x(lh_pial);
  EXPECT_LE(max_x, 9.0 + 1e-6);  // the medial cut at x = 9, halfway between the white centres
  EXPECT_GE(max_x, 7.0 - 1e-6);  // and the left pial region reaches it (not the plane x = 0)
}

TEST(Hemispheres, WhiteMatterJoinedAcrossTheMidlineIsCutAtThePlane) {
  // Two white balls joined through a bridge on the midline (a corpus callosum): one region that
  // spans both sides. Each side keeps its half, cut at the plane.
  std::vector<std::pair<Vec3, double>> balls = {{{-22, 0, 0}, 12}, {{22, 0, 0}, 12}};
  for (int x = -12; x <= 12; x += 2) balls.push_back({{double(x), 0, 4}, 4});
  const Volume white = spheres(balls);
  Volume lh = white, rh = white;
  const int64_t lh_kept = keep_hemisphere_white(lh, MidsagittalPlane{}, true);
  const int64_t rh_kept = keep_hemisphere_white(rh, MidsagittalPlane{}, false);
  EXPECT_GT(lh_kept, 0);
  EXPECT_NEAR(double(lh_kept), double(rh_kept), 0.05 * double(lh_kept));
  EXPECT_LT(max_inside_x(lh), 0.0);
  int64_t count = 0;
  EXPECT_NEAR(inside_centre_x(rh, &count), 20.0, 2.5);
}

TEST(Hemispheres, RegionOverhangingATiltedPlaneStaysWhole) {
  // A left white ball reaching 3 mm past a plane tilted 10 degrees: a small overhang stays with
  // its region instead of being sliced off.
  MidsagittalPlane plane;
  plane.normal = {std::cos(10 * M_PI / 180), std::sin(10 * M_PI / 180), 0};
  Volume white = spheres({{{-12, 0, 0}, 15}, {{26, 0, 0}, 12}});
  const int64_t kept = keep_hemisphere_white(white, plane, true);
  int64_t count = 0;
  const Volume left_ball = spheres({{{-12, 0, 0}, 15}});
  inside_centre_x(left_ball, &count);
  EXPECT_EQ(kept, count);
  EXPECT_GT(max_inside_x(white), 0.0);
}

}  // namespace
}  // namespace ddcsr
