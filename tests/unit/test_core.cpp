#include <gtest/gtest.h>

#include <cmath>

#include "ddcsr/affine.h"
#include "ddcsr/filters.h"
#include "ddcsr/frames.h"
#include "ddcsr/mesh.h"
#include "ddcsr/threads.h"
#include "ddcsr/volume.h"

using namespace ddcsr;

TEST(Affine, InverseRoundTripsOblique) {
  const double c = std::cos(0.3), s = std::sin(0.3);
  const Affine a = Affine::from_linear_translation(
      {2 * c, -1.5 * s, 0, 2 * s, 1.5 * c, 0, 0, 0, -3}, {10, -20, 5});
  const Affine id = a * a.inverse();
  for (int r = 0; r < 4; ++r)
    for (int k = 0; k < 4; ++k) EXPECT_NEAR(id(r, k), r == k ? 1.0 : 0.0, 1e-12);
  const Vec3 p{1.5, -2, 7}, q = a.inverse().apply(a.apply(p));
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(q[i], p[i], 1e-12);
  EXPECT_NEAR(a.determinant(), 2 * 1.5 * -3, 1e-12);
}

TEST(Affine, SingularThrows) {
  const Affine a = Affine::from_linear_translation({1, 0, 0, 2, 0, 0, 0, 0, 1}, {0, 0, 0});
  EXPECT_THROW(a.inverse(), std::domain_error);
}

TEST(Frames, ItkRoundTripAndLpsFlip) {
  const Affine vox2ras =
      Affine::from_linear_translation({-2, 0, 0, 0, 2, 0, 0, 0, 3}, {100, -120, -40});
  Vec3 origin, spacing;
  std::array<double, 9> dir;
  itk_from_vox2ras(vox2ras, origin, spacing, dir);
  EXPECT_NEAR(origin[0], -100, 1e-12);  // LPS x = -RAS x
  EXPECT_NEAR(origin[1], 120, 1e-12);
  EXPECT_NEAR(origin[2], -40, 1e-12);
  EXPECT_NEAR(spacing[0], 2, 1e-12);
  EXPECT_NEAR(dir[0], 1, 1e-12);  // RAS -x is LPS +x
  const Affine back = vox2ras_from_itk(origin, spacing, dir);
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(back.m[i], vox2ras.m[i], 1e-12);
}

TEST(Frames, VolumeGeometryCrasIsCentreVoxel) {
  Volume v({64, 64, 30}, 1,
           Affine::from_linear_translation({-2, 0, 0, 0, 2, 0, 0, 0, 3}, {63, -70, -40}));
  const VolumeGeometry g = volume_geometry_of(v, "ref.nii.gz");
  const Vec3 centre = v.voxel_to_ras({32, 32, 15});
  for (int a = 0; a < 3; ++a) EXPECT_NEAR(g.c_ras[a], centre[a], 1e-9);
  EXPECT_NEAR(g.x_ras[0], -1, 1e-12);
  const Affine rebuilt = g.vox2ras();
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(rebuilt.m[i], v.vox2ras.m[i], 1e-9);
  const Vec3 p{12, -3, 8}, surf = scanner_ras_to_surface_ras(p, g.c_ras),
                           back = surface_ras_to_scanner_ras(surf, g.c_ras);
  for (int a = 0; a < 3; ++a) EXPECT_DOUBLE_EQ(back[a], p[a]);
}

TEST(Volume, TrilinearIsExactForLinearFields) {
  Volume v({8, 9, 10}, 2,
           Affine::from_linear_translation({1.5, 0, 0, 0, 1.5, 0, 0, 0, 2}, {-5, -6, -10}));
  for (int64_t t = 0; t < 2; ++t)
    for (int64_t k = 0; k < 10; ++k)
      for (int64_t j = 0; j < 9; ++j)
        for (int64_t i = 0; i < 8; ++i) {
          const Vec3 p = v.voxel_to_ras({double(i), double(j), double(k)});
          v.at(i, j, k, t) = static_cast<float>(p[0] + 2 * p[1] - p[2] + 10 * t);
        }
  const Vec3 q{0.3, 1.7, -2.2};
  EXPECT_NEAR(v.sample_linear(q, 1), q[0] + 2 * q[1] - q[2] + 10, 1e-4);
  EXPECT_EQ(v.sample_linear({1000, 0, 0}, 0, -7.f), -7.f);
  const Volume f = v.frame(1);
  EXPECT_EQ(f.nvols, 1);
  EXPECT_EQ(f.at(3, 4, 5), v.at(3, 4, 5, 1));
  // All frames at once: the same values, also at the clamped edge and outside.
  for (const Vec3& ijk : {Vec3{2.3, 4.6, 7.1}, Vec3{-0.4, 8.3, 9.2}, Vec3{8.0, 1.0, 1.0}}) {
    float both[2];
    v.sample_voxel_linear_frames(ijk, 0, 2, both, -3.f);
    for (int64_t t = 0; t < 2; ++t)
      EXPECT_NEAR(both[t], v.sample_voxel_linear(ijk, t, -3.f), 1e-5) << ijk[0];
  }
}

TEST(Filters, BsplineResamplingPassesThroughSamplesAndReproducesCubics) {
  // An oblique 2 mm grid, two frames: a cubic polynomial and a sine of wavelength 4 voxels.
  const Affine a = Affine::from_linear_translation({0, 2, 0, -2, 0, 0, 0, 0, 2}, {30, -20, 5});
  Volume v({30, 31, 32}, 2, a);
  auto cubic = [](const Vec3& x) {
    const double u = x[0] / 10, w = x[1] / 10, z = x[2] / 10;
    return u * u * w - 0.5 * z * z * z + u * z + 2 * w - 1;
  };
  auto wave = [](const Vec3& ijk) { return std::sin(2 * M_PI * (ijk[0] + 0.5) / 4.0); };
  for (int64_t k = 0; k < 32; ++k)
    for (int64_t j = 0; j < 31; ++j)
      for (int64_t i = 0; i < 30; ++i) {
        const Vec3 ijk{double(i), double(j), double(k)};
        v.at(i, j, k, 0) = static_cast<float>(cubic(v.voxel_to_ras(ijk)));
        v.at(i, j, k, 1) = static_cast<float>(wave(ijk));
      }
  const Volume fine = resample_bspline(v, 0.5);
  // Same orientation and first voxel centre, a quarter of the step; stops at the last centre.
  EXPECT_EQ(fine.dims, (std::array<int64_t, 3>{117, 121, 125}));
  EXPECT_EQ(fine.nvols, 2);
  for (int r = 0; r < 3; ++r) {
    EXPECT_NEAR(fine.vox2ras(r, 3), a(r, 3), 1e-9);
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(fine.vox2ras(r, c), a(r, c) / 4, 1e-12);
  }
  double worst_sample = 0, worst_cubic = 0, spline_wave = 0, linear_wave = 0;
  for (int64_t k = 0; k < 125; ++k)
    for (int64_t j = 0; j < 121; ++j)
      for (int64_t i = 0; i < 117; ++i) {
        const Vec3 src{i / 4.0, j / 4.0, k / 4.0};
        if (i % 4 == 0 && j % 4 == 0 && k % 4 == 0)
          worst_sample = std::max(
              worst_sample, double(std::abs(fine.at(i, j, k, 0) - v.at(i / 4, j / 4, k / 4, 0))));
        // Mirror boundaries bend a polynomial near the edges; 10 voxels in, z^10 < 2e-6.
        const bool interior = src[0] >= 10 && src[0] <= 19 && src[1] >= 10 && src[1] <= 20 &&
                              src[2] >= 10 && src[2] <= 21;
        if (interior) {
          worst_cubic = std::max(
              worst_cubic, std::abs(fine.at(i, j, k, 0) -
                                    cubic(fine.voxel_to_ras({double(i), double(j), double(k)}))));
          spline_wave = std::max(spline_wave, std::abs(fine.at(i, j, k, 1) - wave(src)));
          linear_wave = std::max(linear_wave, std::abs(v.sample_voxel_linear(src, 1) - wave(src)));
        }
      }
  EXPECT_LT(worst_sample, 1e-4);
  EXPECT_LT(worst_cubic, 1e-3);
  // Between samples the spline keeps what trilinear interpolation cuts: the wave's peaks fall
  // midway between voxel centres, where trilinear reads 0.71 instead of 1.
  EXPECT_GT(linear_wave, 0.25);
  EXPECT_LT(spline_wave, 0.1);
  // Coarsening also works, and a grid that is one voxel thick along an axis stays one.
  const Volume coarse = resample_bspline(v, 3.0);
  EXPECT_EQ(coarse.dims, (std::array<int64_t, 3>{20, 21, 21}));
  Volume slab({5, 6, 1}, 1, Affine{}, 2.5f);
  const Volume slab_fine = resample_bspline(slab, 0.5);
  EXPECT_EQ(slab_fine.dims, (std::array<int64_t, 3>{9, 11, 1}));
  for (float x : slab_fine.data) EXPECT_NEAR(x, 2.5f, 1e-5);
}

TEST(Mesh, IcosphereIsClosedGenusZeroOutwardFacing) {
  for (int s : {0, 1, 3}) {
    const Mesh m = make_icosphere(s, 10.0, {1, 2, 3});
    const MeshTopology t = mesh_topology(m);
    EXPECT_EQ(t.euler, 2);
    EXPECT_EQ(t.components, 1);
    EXPECT_TRUE(t.closed_manifold());
    EXPECT_EQ(t.faces, 20 * (1 << (2 * s)));
    EXPECT_GT(mesh_volume(m), 0.0);
  }
  const Mesh fine = make_icosphere(5, 10.0);
  EXPECT_NEAR(mesh_volume(fine), 4.0 / 3.0 * M_PI * 1000, 0.01 * 4.0 / 3.0 * M_PI * 1000);
  EXPECT_NEAR(mesh_area(fine), 4 * M_PI * 100, 0.01 * 4 * M_PI * 100);
  const auto normals = vertex_normals(fine);
  EXPECT_NEAR(normals[0][0] * fine.vertices[0][0] + normals[0][1] * fine.vertices[0][1] +
                  normals[0][2] * fine.vertices[0][2],
              10.0, 1e-2);
}

TEST(Mesh, TopologyDetectsHolesAndComponents) {
  Mesh m = make_icosphere(1);
  m.faces.pop_back();
  MeshTopology t = mesh_topology(m);
  EXPECT_EQ(t.boundary_edges, 3);
  EXPECT_FALSE(t.closed_manifold());
  Mesh two = make_icosphere(1);
  const Mesh other = make_icosphere(1, 1.0, {5, 0, 0});
  const auto offset = static_cast<int32_t>(two.vertices.size());
  two.vertices.insert(two.vertices.end(), other.vertices.begin(), other.vertices.end());
  for (auto f : other.faces) two.faces.push_back({f[0] + offset, f[1] + offset, f[2] + offset});
  t = mesh_topology(two);
  EXPECT_EQ(t.components, 2);
  EXPECT_EQ(t.euler, 4);
}

TEST(Threads, ParallelForCoversRangeAndPropagatesErrors) {
  set_thread_count(2);
  std::vector<int> hits(10007, 0);
  parallel_for(
      static_cast<int64_t>(hits.size()),
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i]++;
      },
      100);
  for (int h : hits) ASSERT_EQ(h, 1);
  EXPECT_THROW(parallel_for(
                   1000,
                   [](int64_t b, int64_t) {
                     if (b >= 500) throw std::runtime_error("x");
                   },
                   10),
               std::runtime_error);
}

TEST(Threads, ResolvePolicy) {
  EXPECT_EQ(resolve_thread_count(3), 3);
  setenv("SLURM_CPUS_PER_TASK", "5", 1);
  setenv("OMP_NUM_THREADS", "7", 1);
  EXPECT_EQ(resolve_thread_count(0), 5);
  unsetenv("SLURM_CPUS_PER_TASK");
  EXPECT_EQ(resolve_thread_count(0), 7);
  unsetenv("OMP_NUM_THREADS");
  EXPECT_GE(resolve_thread_count(0), 1);
}

#include "ddcsr/checksum.h"
TEST(Checksum, Sha256KnownVectors) {
  EXPECT_EQ(sha256(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256(std::string(1000, 'a')),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}
