#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "ddcsr/io/surface.h"
#include "ddcsr/recon/field_of_view.h"
#include "test_util.h"

namespace ddcsr {
namespace {

// A 2 mm grid stored LAS (first axis toward the left), 40 x 40 x 12 voxels: an axial slab 24 mm
// thick, centred at the world origin.
Volume slab_grid() {
  Affine a = Affine::from_linear_translation({-2, 0, 0, 0, 2, 0, 0, 0, 2}, {39, -39, -11});
  return Volume({40, 40, 12}, 1, a, 0.f);
}

// A ball of brain mask of `radius_mm` around `centre` (scanner RAS).
void fill_ball(Volume& mask, const Vec3& centre, double radius_mm) {
  for (int64_t k = 0; k < mask.dims[2]; ++k)
    for (int64_t j = 0; j < mask.dims[1]; ++j)
      for (int64_t i = 0; i < mask.dims[0]; ++i) {
        const Vec3 p = mask.voxel_to_ras({double(i), double(j), double(k)});
        const double d = std::hypot(p[0] - centre[0], p[1] - centre[1], p[2] - centre[2]);
        mask.at(i, j, k) = d <= radius_mm ? 1.f : 0.f;
      }
}

TEST(FieldOfView, FacesWhereTheMaskLeavesTheImageAreNamedByTheirSideOfTheHead) {
  Volume mask = slab_grid();
  fill_ball(mask, {0, 0, 0}, 8.0);  // inside the 24 mm slab: no cut
  EXPECT_TRUE(field_of_view_cuts(mask).empty());

  fill_ball(mask, {0, 0, 0}, 30.0);  // a head larger than the slab: cut above and below
  const auto cuts = field_of_view_cuts(mask);
  ASSERT_EQ(cuts.size(), 2u);
  for (const auto& c : cuts) EXPECT_EQ(c.axis, 2);
  EXPECT_TRUE((cuts[0].face == "inferior" && cuts[1].face == "superior") ||
              (cuts[0].face == "superior" && cuts[1].face == "inferior"));
  // The outermost slices lie 11 mm from the centre: a disc of radius sqrt(30^2 - 11^2).
  const double disc_cm2 = M_PI * (30.0 * 30.0 - 11.0 * 11.0) / 100.0;
  for (const auto& c : cuts) EXPECT_NEAR(c.mask_area_cm2, disc_cm2, 0.1 * disc_cm2);

  // Off to the left (negative x), the ball leaves through the face at the last i index, which
  // in LAS storage is on the left of the head.
  fill_ball(mask, {-38, 0, 0}, 6.0);
  const auto left = field_of_view_cuts(mask);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].axis, 0);
  EXPECT_EQ(left[0].side, 1);
  EXPECT_EQ(left[0].face, "left");
  // A threshold above the touch's area hides it.
  EXPECT_TRUE(field_of_view_cuts(mask, 1000.0).empty());
}

TEST(FieldOfView, VerticesOnTheCutAreThoseAtTheBorderOverBrain) {
  Volume mask = slab_grid();
  fill_ball(mask, {0, 0, 0}, 30.0);
  // Brain mask only where x < 0 in the outermost slices: the cut exists on one side only.
  for (int64_t k : {int64_t(0), int64_t(11)})
    for (int64_t j = 0; j < 40; ++j)
      for (int64_t i = 0; i < 40; ++i)
        if (mask.voxel_to_ras({double(i), double(j), double(k)})[0] >= 0) mask.at(i, j, k) = 0;
  const auto cuts = field_of_view_cuts(mask);
  ASSERT_EQ(cuts.size(), 2u);

  // A sphere of radius 16 mm pokes 5 mm out of the slab at both faces.
  const Mesh white = make_icosphere(4, 16.0), pial = make_icosphere(4, 17.0);
  const auto on_cut = field_of_view_cut_vertices(white, pial, mask, cuts);
  ASSERT_EQ(on_cut.size(), white.vertices.size());
  int64_t flagged = 0;
  for (size_t v = 0; v < on_cut.size(); ++v) {
    const auto& p = pial.vertices[v];
    const auto& w = white.vertices[v];
    // The slab's outermost voxel centres are at z = +-11 mm, one voxel is 2 mm.
    const double z = std::max(std::abs(p[2]), std::abs(w[2]));
    const bool near_face = z >= 9.0 - 1e-4;
    if (on_cut[v]) {
      ++flagged;
      EXPECT_TRUE(near_face) << v;
      EXPECT_LT(std::min(p[0], w[0]), 2.0 + 1e-4) << v;  // over brain mask (x < 0, one voxel)
    } else if (near_face && std::max(p[0], w[0]) < -2.0) {
      ADD_FAILURE() << "vertex " << v << " at the border over brain mask is not flagged";
    }
  }
  EXPECT_GT(flagged, 0);
  // No cut, nothing flagged.
  const auto none = field_of_view_cut_vertices(white, pial, mask, {});
  EXPECT_EQ(std::count(none.begin(), none.end(), 1), 0);
}

TEST(FieldOfView, LabelHoldsSurfaceRasOfTheListedVertices) {
  Mesh white = make_icosphere(1, 10.0, {5, -3, 2});
  white.geometry.valid = true;
  white.geometry.c_ras = {1.5, -2.0, 3.25};
  const std::string path = test::fresh_dir("fov", "label") + "/lh.fov_cut.label";
  write_label(white, {0, 7, 41}, path);
  std::ifstream in(path);
  std::string header;
  std::getline(in, header);
  EXPECT_EQ(header.rfind("#!ascii label", 0), 0u);
  int count = 0;
  in >> count;
  ASSERT_EQ(count, 3);
  for (int64_t expected : {0, 7, 41}) {
    int64_t v;
    double x, y, z, value;
    in >> v >> x >> y >> z >> value;
    EXPECT_EQ(v, expected);
    const auto& p = white.vertices[size_t(v)];
    EXPECT_NEAR(x, p[0] - 1.5, 1e-3);
    EXPECT_NEAR(y, p[1] + 2.0, 1e-3);
    EXPECT_NEAR(z, p[2] - 3.25, 1e-3);
  }
  EXPECT_THROW(write_label(white, {int64_t(white.vertices.size())}, path), std::out_of_range);
}

}  // namespace
}  // namespace ddcsr
