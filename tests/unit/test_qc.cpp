#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "ddcsr/qc/qc.h"
#include "ddcsr/resources.h"

using namespace ddcsr;

TEST(Qc, ContoursLandWhereTheSurfaceCutsTheSlice) {
  // 2 mm LAS volume whose intensity is the distance from the origin; a sphere of radius 30 mm.
  Volume image({60, 60, 60}, 1,
               Affine::from_linear_translation({-2, 0, 0, 0, 2, 0, 0, 0, 2}, {59, -59, -59}));
  for (int64_t k = 0; k < 60; ++k)
    for (int64_t j = 0; j < 60; ++j)
      for (int64_t i = 0; i < 60; ++i) {
        const Vec3 p = image.voxel_to_ras({double(i), double(j), double(k)});
        image.at(i, j, k) = static_cast<float>(std::sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]));
      }
  const Mesh sphere = make_icosphere(5, 30.0);
  QcOptions opts;
  opts.pixel_mm = 1.0;
  opts.slice_fractions = {0.5};
  const RgbImage pic =
      render_qc({&image, &image}, {{&sphere, {255, 0, 0}, {}}}, QcView::Axial, opts);
  ASSERT_GT(pic.width, 200);  // two panels of ~124 px
  // Red pixels: on a circle of radius ~30 mm about each panel's centre.
  const int panel = (pic.width - 2) / 2;
  int red = 0, off_circle = 0;
  for (int y = 0; y < pic.height; ++y)
    for (int x = 0; x < pic.width; ++x) {
      const uint8_t* p = &pic.pixels[(size_t(y) * pic.width + x) * 3];
      if (p[0] == 255 && p[1] == 0 && p[2] == 0) {
        ++red;
        const int px = x < panel ? x : x - panel - 2;
        const double r = std::hypot(px + 0.5 - panel / 2.0, y + 0.5 - pic.height / 2.0);
        if (std::abs(r - 30.0) > 2.0) ++off_circle;
      }
    }
  EXPECT_GT(red, 2 * 150);  // two circumferences of ~188 px
  EXPECT_EQ(off_circle, 0);
  // The grey level grows with distance from the centre (a windowed copy of the image).
  const auto grey = [&](int x, int y) { return pic.pixels[(size_t(y) * pic.width + x) * 3 + 1]; };
  EXPECT_LT(grey(panel / 2, pic.height / 2), grey(5, 5));
  const std::string path = (std::filesystem::temp_directory_path() / "ddcsr_qc_test.png").string();
  write_png(pic, path);
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");
}

TEST(Resources, PeakTracksAnAllocation) {
  StageMeter meter("alloc");
  std::vector<char> block(size_t(200) << 20, 1);
  const StageUsage u = meter.finish();
  EXPECT_GE(u.peak_rss_mb, 200.0);
  EXPECT_GE(u.seconds, 0.0);
  EXPECT_EQ(block[12345], 1);
}
