// Registration to fsaverage5 and labels carried through it, on fsaverage5 itself moved away
// from the atlas (the truth: vertex i is atlas vertex i), and the annot format.
#include <gtest/gtest.h>

#include <Eigen/Geometry>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "ddcsr/io/surface.h"
#include "ddcsr/parcellation/parcellation.h"
#include "ddcsr/surface_maps/surface_maps.h"

namespace fs = std::filesystem;

namespace ddcsr {
namespace {

std::string bundled_fsaverage() { return std::string(DDCSR_SOURCE_DIR) + "/data/fsaverage5"; }

TEST(Parcellation, AnnotRoundTrip) {
  Annotation a;
  a.names = {"unknown", "precentral", "insula"};
  a.colours = {{{25, 5, 25}}, {{60, 20, 220}}, {{255, 192, 32}}};
  a.labels = {0, 1, 2, 2, -1, 1};
  const std::string path = (fs::temp_directory_path() / "ddcsr_test_roundtrip.annot").string();
  write_annot(a, path);
  const Annotation b = read_annot(path);
  EXPECT_EQ(b.names, a.names);
  EXPECT_EQ(b.colours, a.colours);
  EXPECT_EQ(b.labels, a.labels);
  fs::remove(path);
}

TEST(Parcellation, ReadsFreeSurfersAparc) {
  const Annotation a = read_annot(bundled_fsaverage() + "/label/lh.aparc.annot");
  EXPECT_EQ(a.labels.size(), 10242u);
  EXPECT_EQ(a.names.size(), 36u);
  EXPECT_NE(std::find(a.names.begin(), a.names.end(), "precentral"), a.names.end());
  int64_t unlabelled = std::count(a.labels.begin(), a.labels.end(), -1);
  EXPECT_LT(unlabelled, 1000);
}

// fsaverage5's own white surface, rotated 12 degrees and stretched 10 % along y, registered
// back: the labels it gets are the atlas's own.
TEST(Parcellation, Fsaverage5MovedFindsItsOwnLabels) {
  const SphericalAtlas atlas = load_spherical_atlas(bundled_fsaverage(), "lh");
  const Mesh pial = read_surface(bundled_fsaverage() + "/pial_left.gii.gz");
  const Eigen::Matrix3d r =
      Eigen::AngleAxisd(12 * M_PI / 180, Eigen::Vector3d(0.3, 1, 0.2).normalized()).matrix();
  auto move = [&](Mesh m) {
    for (auto& v : m.vertices) {
      Eigen::Vector3d p = r * Eigen::Vector3d(v[0], v[1], v[2]);
      v = {float(p[0]), float(1.1 * p[1]), float(p[2])};
    }
    return m;
  };
  const Mesh white = move(atlas.white), moved_pial = move(pial);
  const HemisphereMaps maps = hemisphere_maps(white, moved_pial);
  const AtlasCorrespondence c = register_to_atlas(white, maps.sphere, maps.sulc, maps.curv, atlas);
  EXPECT_GT(c.final_correlation, 0.8);
  const Annotation aparc = read_annot(bundled_fsaverage() + "/label/lh.aparc.annot");
  const Annotation got = transfer_annotation(aparc, c);
  int64_t same = 0;
  for (size_t v = 0; v < got.labels.size(); ++v) same += got.labels[v] == aparc.labels[v];
  EXPECT_GT(double(same) / double(got.labels.size()), 0.9);
  // sphere.reg lands each vertex near its own place on FreeSurfer's sphere.
  std::vector<double> angle;
  for (size_t v = 0; v < got.labels.size(); ++v) {
    const auto& p = c.sphere_reg.vertices[v];
    const auto& q = atlas.freesurfer_sphere.vertices[v];
    const double dot = double(p[0]) * q[0] + double(p[1]) * q[1] + double(p[2]) * q[2];
    const double nq = std::sqrt(double(q[0]) * q[0] + double(q[1]) * q[1] + double(q[2]) * q[2]);
    angle.push_back(std::acos(std::clamp(dot / (100.0 * nq), -1.0, 1.0)) * 180 / M_PI);
  }
  std::nth_element(angle.begin(), angle.begin() + long(angle.size() / 2), angle.end());
  EXPECT_LT(angle[angle.size() / 2], 3.0);
  // Carried back to fsaverage5, a map of the subject is the atlas's own map.
  const std::vector<float> back =
      resample_to_sphere(atlas.sulc, c.sphere_reg, atlas.freesurfer_sphere);
  double sab = 0, saa = 0, sbb = 0;
  for (size_t v = 0; v < back.size(); ++v) {
    sab += double(back[v]) * atlas.sulc[v];
    saa += double(back[v]) * back[v];
    sbb += double(atlas.sulc[v]) * atlas.sulc[v];
  }
  EXPECT_GT(sab / std::sqrt(saa * sbb), 0.8);
}

// A reconstruction's mesh can hold a few spikes of tiny triangles whose curvature is 50-70 /mm
// (h1 lh: about a hundred of 153,000 vertices). Smoothed, they outweighed the folding, unless
// limited first.
TEST(Parcellation, CurvatureSpikesDoNotMisleadTheRegistration) {
  const SphericalAtlas atlas = load_spherical_atlas(bundled_fsaverage(), "lh");
  const Mesh pial = read_surface(bundled_fsaverage() + "/pial_left.gii.gz");
  HemisphereMaps maps = hemisphere_maps(atlas.white, pial);
  for (size_t v = 0; v < maps.curv.size(); v += 100) maps.curv[v] = -60.0f;
  const AtlasCorrespondence c =
      register_to_atlas(atlas.white, maps.sphere, maps.sulc, maps.curv, atlas);
  const Annotation aparc = read_annot(bundled_fsaverage() + "/label/lh.aparc.annot");
  const Annotation got = transfer_annotation(aparc, c);
  int64_t same = 0;
  for (size_t v = 0; v < got.labels.size(); ++v) same += got.labels[v] == aparc.labels[v];
  EXPECT_GT(double(same) / double(got.labels.size()), 0.95);
  EXPECT_GT(c.final_correlation, 0.8);
}

TEST(Parcellation, RegionStatisticsAddUp) {
  const Mesh white = make_icosphere(3, 10.0), pial = make_icosphere(3, 12.0);
  Annotation a;
  a.names = {"north", "south"};
  a.colours = {{{1, 2, 3}}, {{4, 5, 6}}};
  for (const auto& v : white.vertices) a.labels.push_back(v[2] >= 0 ? 0 : 1);
  const std::vector<float> thickness(white.vertices.size(), 2.0f);
  const auto stats = region_stats(a, white, pial, thickness);
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].vertices + stats[1].vertices, int64_t(white.vertices.size()));
  EXPECT_NEAR(stats[0].white_area_mm2 + stats[1].white_area_mm2, mesh_area(white), 1e-3);
  EXPECT_NEAR(stats[0].pial_area_mm2 + stats[1].pial_area_mm2, mesh_area(pial), 1e-3);
  EXPECT_NEAR(stats[0].thickness_mean_mm, 2.0, 1e-9);
  EXPECT_NEAR(stats[0].thickness_sd_mm, 0.0, 1e-9);
}

// The ribbon between two concentric spheres (white 20 mm, pial 24 mm), left half region 1 and
// right half region 2 of one "lh": voxel centres between the spheres carry 1000 + region by
// their side, all others 0; the colour table lists every region under FreeSurfer's names.
TEST(Parcellation, RibbonLabelsTheVoxelsBetweenWhiteAndPial) {
  const Mesh white = make_icosphere(5, 20.0), pial = make_icosphere(5, 24.0);
  Annotation labels;
  labels.names = {"unknown", "left_half", "right_half"};
  labels.colours = {{0, 0, 0}, {200, 10, 10}, {10, 10, 200}};
  for (const auto& v : white.vertices) labels.labels.push_back(v[0] < 0 ? 1 : 2);
  const int64_t n = 32;  // 1.75 mm voxels, oblique to the spheres' symmetry
  const Affine a =
      Affine::from_linear_translation({1.75, 0, 0, 0, 1.75, 0, 0, 0, 1.75}, {-27.3, -26.9, -27.1});
  const Volume grid({n, n, n}, 1, a, 0.f);
  const std::vector<RibbonHemisphere> hemis{{"lh", &white, &pial, &labels}};
  const Volume ribbon = label_ribbon(grid, hemis, "aparc");
  int64_t inside = 0, wrong = 0;
  for (int64_t k = 0; k < n; ++k)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < n; ++i) {
        const Vec3 p = a.apply({double(i), double(j), double(k)});
        const double r = std::sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
        const float got = ribbon.at(i, j, k);
        // The icosphere's flat faces lie up to 0.1 mm inside the sphere: judge away from them.
        if (r > 20.15 && r < 23.85 && std::abs(p[0]) > 0.5) {
          ++inside;
          if (got != (p[0] < 0 ? 1001.f : 1002.f)) ++wrong;
        } else if (r < 19.9 || r > 24.05) {
          if (got != 0.f) ++wrong;
        }
      }
  EXPECT_GT(inside, 1000);
  EXPECT_EQ(wrong, 0);
  const std::string lut = ribbon_colour_table(hemis, "aparc");
  EXPECT_NE(lut.find("0\tUnknown\t0\t0\t0\t0\n"), std::string::npos);
  EXPECT_NE(lut.find("1001\tctx-lh-left_half\t200\t10\t10\t0\n"), std::string::npos);
  EXPECT_NE(lut.find("1002\tctx-lh-right_half\t10\t10\t200\t0\n"), std::string::npos);
  EXPECT_EQ(ribbon_label_base("aparc.a2009s", "rh"), 12100);
  EXPECT_NE(ribbon_colour_table(hemis, "aparc.a2009s").find("11101\tctx_lh_left_half"),
            std::string::npos);
}

}  // namespace
}  // namespace ddcsr
