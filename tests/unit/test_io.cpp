#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "ddcsr/error.h"
#include "ddcsr/io/atomic_file.h"
#include "ddcsr/io/gradients.h"
#include "ddcsr/io/nifti.h"
#include "ddcsr/io/surface.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace ddcsr;

namespace {

std::string temp_dir(const std::string& name) { return test::fresh_dir("io", name); }

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string shared(const std::string& rel) { return std::string(DDCSR_SHARED_DATA) + "/" + rel; }

Affine oblique_affine() {
  const double c = std::cos(0.2), s = std::sin(0.2);
  return Affine::from_linear_translation({-2 * c, 0, 2.5 * s, 0, 2, 0, 2 * s, 0, 2.5 * c},
                                         {90, -110, -60});
}

// Files in `dir` whose names are hidden temporaries.
int leftover_temporaries(const std::string& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) ++n;
  return n;
}

}  // namespace

TEST(Nifti, RoundTrip4DObliqueKeepsAffineAndValues) {
  const std::string dir = temp_dir("nifti4d");
  Volume v({5, 6, 7}, 3, oblique_affine());
  for (size_t i = 0; i < v.data.size(); ++i) v.data[i] = static_cast<float>(i) * 0.5f - 3.f;
  const std::string path = dir + "/dwi.nii.gz";
  write_volume(v, path);
  EXPECT_EQ(leftover_temporaries(dir), 0);
  const Volume r = read_volume(path, true);
  EXPECT_EQ(r.dims, v.dims);
  EXPECT_EQ(r.nvols, 3);
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(r.vox2ras.m[i], v.vox2ras.m[i], 1e-5);
  EXPECT_EQ(r.data, v.data);
  const VolumeHeader h = read_volume_header(path);
  EXPECT_EQ(h.nvols, 3);
  EXPECT_EQ(h.ndim, 4);
}

TEST(Nifti, Requires4DAndRejectsNonNifti) {
  const std::string dir = temp_dir("nifti3d");
  Volume v({4, 4, 4}, 1, Affine::identity(), 1.f);
  write_volume(v, dir + "/t1.nii");
  EXPECT_THROW(read_volume(dir + "/t1.nii", true), InputError);
  EXPECT_NO_THROW(read_volume(dir + "/t1.nii", false));
  EXPECT_THROW(read_volume(dir + "/missing.nii.gz"), InputError);
  write_text(dir + "/fake.nii.gz", "not an image at all");
  EXPECT_THROW(read_volume(dir + "/fake.nii.gz"), InputError);
  EXPECT_THROW(read_volume(dir + "/fake.txt"), InputError);
}

TEST(Nifti, RejectsNaNVoxelsAndTruncatedGzip) {
  const std::string dir = temp_dir("niftibad");
  Volume v({6, 6, 6}, 2, Affine::identity(), 1.f);
  v.at(1, 2, 3, 1) = std::nanf("");
  write_volume(v, dir + "/nan.nii.gz");
  try {
    read_volume(dir + "/nan.nii.gz");
    FAIL() << "NaN voxels accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos);
  }
  Volume big({40, 40, 40}, 4, Affine::identity());
  for (size_t i = 0; i < big.data.size(); ++i) big.data[i] = static_cast<float>((i * 7919) % 1000);
  write_volume(big, dir + "/big.nii.gz");
  const auto size = fs::file_size(dir + "/big.nii.gz");
  fs::copy_file(dir + "/big.nii.gz", dir + "/cut.nii.gz");
  fs::resize_file(dir + "/cut.nii.gz", size / 2);
  EXPECT_THROW(read_volume(dir + "/cut.nii.gz"), InputError);
}

TEST(Nifti, ReadsRealLasScan) {
  const std::string path = shared("dwi/xa30/10_DWI_dir80_PA.nii.gz");
  if (!fs::exists(path)) GTEST_SKIP() << "shared data not present: " << path;
  const Volume v = read_volume(path, true);
  EXPECT_EQ(v.dims[0], 72);
  EXPECT_EQ(v.dims[2], 39);
  EXPECT_EQ(v.nvols, 21);
  EXPECT_LT(v.vox2ras(0, 0), 0);  // LAS storage: first axis points left
  EXPECT_NEAR(v.spacing()[0], 3.0, 1e-3);
}

TEST(Gradients, ParsesBothLayoutsAndFindsSidecars) {
  const std::string dir = temp_dir("grad");
  write_text(dir + "/a.bval", "0 1000 1000 2000\n");
  write_text(dir + "/a.bvec", "0 1 0 0\n0 0 1 0.6\n0 0 0 0.8\n");
  write_text(dir + "/b.bvec", "0 0 0\n1 0 0\n0 1 0\n0 0.6 0.8\n");
  const auto t1 = read_fsl_gradients(dir + "/a.bval", dir + "/a.bvec");
  const auto t2 = read_fsl_gradients(dir + "/a.bval", dir + "/b.bvec");
  ASSERT_EQ(t1.size(), 4u);
  for (size_t i = 0; i < 4; ++i)
    for (int a = 0; a < 3; ++a) EXPECT_EQ(t1.bvecs_fsl[i][a], t2.bvecs_fsl[i][a]);
  write_text(dir + "/a.nii.gz", "");
  const auto [bval, bvec] = find_gradient_files(dir + "/a.nii.gz");
  EXPECT_EQ(bval, dir + "/a.bval");
  EXPECT_EQ(bvec, dir + "/a.bvec");
  EXPECT_THROW(find_gradient_files(dir + "/missing.nii.gz"), InputError);
  EXPECT_NO_THROW(check_gradients(t1, 4, "a.nii.gz"));
  EXPECT_THROW(check_gradients(t1, 5, "a.nii.gz"), InputError);
}

TEST(Gradients, RejectsBadTables) {
  const std::string dir = temp_dir("gradbad");
  write_text(dir + "/ok.bval", "0 1000 1000\n");
  write_text(dir + "/nan.bval", "0 nan 1000\n");
  write_text(dir + "/word.bval", "0 b1000 1000\n");
  write_text(dir + "/nob0.bval", "1000 1000 1000\n");
  write_text(dir + "/ok.bvec", "0 1 0\n0 0 1\n0 0 0\n");
  write_text(dir + "/zero.bvec", "0 1 0\n0 0 0\n0 0 0\n");
  write_text(dir + "/ragged.bvec", "0 1 0\n0 0\n0 0 0\n");
  write_text(dir + "/short.bvec", "0 1\n0 0\n0 0\n");
  EXPECT_THROW(read_fsl_gradients(dir + "/nan.bval", dir + "/ok.bvec"), InputError);
  EXPECT_THROW(read_fsl_gradients(dir + "/word.bval", dir + "/ok.bvec"), InputError);
  EXPECT_THROW(read_fsl_gradients(dir + "/ok.bval", dir + "/ragged.bvec"), InputError);
  EXPECT_THROW(read_fsl_gradients(dir + "/ok.bval", dir + "/short.bvec"), InputError);
  EXPECT_THROW(check_gradients(read_fsl_gradients(dir + "/nob0.bval", dir + "/ok.bvec"), 3, "x"),
               InputError);
  EXPECT_THROW(check_gradients(read_fsl_gradients(dir + "/ok.bval", dir + "/zero.bvec"), 3, "x"),
               InputError);
}

TEST(Gradients, FslConventionToWorld) {
  GradientTable t;
  t.bvals = {1000, 1000, 1000};
  t.bvecs_fsl = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  // RAS storage (det > 0): FSL x is flipped, so FSL +x is world -x... and back.
  const Affine ras = Affine::from_linear_translation({2, 0, 0, 0, 2, 0, 0, 0, 2}, {0, 0, 0});
  auto w = bvecs_world(t, ras);
  EXPECT_NEAR(w[0][0], -1, 1e-12);
  EXPECT_NEAR(w[1][1], 1, 1e-12);
  // LAS storage (det < 0): FSL axes are the voxel axes; voxel +i points to world -x.
  const Affine las = Affine::from_linear_translation({-2, 0, 0, 0, 2, 0, 0, 0, 2}, {0, 0, 0});
  w = bvecs_world(t, las);
  EXPECT_NEAR(w[0][0], -1, 1e-12);
  // Same physical direction stored either way gives the same world vector.
  const Affine ob = oblique_affine();
  const std::vector<Vec3> world{{0.6, 0.8, 0}, {0, 0, 1}, {0.48, 0.6, 0.64}};
  const auto fsl = bvecs_fsl_from_world(world, ob);
  GradientTable back;
  back.bvals = {1000, 1000, 1000};
  back.bvecs_fsl = fsl;
  const auto w2 = bvecs_world(back, ob);
  for (int i = 0; i < 3; ++i)
    for (int a = 0; a < 3; ++a) EXPECT_NEAR(w2[i][a], world[i][a], 1e-12);
}

TEST(Surface, AllFormatsRoundTrip) {
  const std::string dir = temp_dir("surf");
  Mesh m = make_icosphere(3, 60.0, {-30, 10, 20});
  m.hemi = "lh";
  m.surface = "white";
  Volume ref({96, 100, 80}, 1, oblique_affine());
  m.geometry = volume_geometry_of(ref, "ref.nii.gz");
  for (const std::string name :
       {"lh.white", "lh.white.asc", "lh.white.surf.gii", "a.gii", "b.gii"}) {
    SurfaceWriteOptions opts;
    if (name == "a.gii") opts.gifti_encoding = GiftiEncoding::Ascii;
    if (name == "b.gii") opts.gifti_encoding = GiftiEncoding::Base64Binary;
    write_surface(m, dir + "/" + name, opts);
    Mesh r = read_surface(dir + "/" + name);
    if (name == "lh.white.asc")  // ASCII holds surface RAS and no footer, as FreeSurfer writes it
      for (auto& v : r.vertices)
        for (int a = 0; a < 3; ++a) v[a] = static_cast<float>(v[a] + m.geometry.c_ras[a]);
    ASSERT_EQ(r.vertices.size(), m.vertices.size()) << name;
    EXPECT_EQ(r.faces, m.faces) << name;
    double max_diff = 0;
    for (size_t i = 0; i < m.vertices.size(); ++i)
      for (int a = 0; a < 3; ++a)
        max_diff = std::max(max_diff, double(std::abs(r.vertices[i][a] - m.vertices[i][a])));
    EXPECT_LT(max_diff, 1e-4) << name;
    if (name != "lh.white.asc") {
      EXPECT_EQ(r.hemi, "lh") << name;
      EXPECT_EQ(r.surface, "white") << name;
    }
  }
  const Mesh fsr = read_surface(dir + "/lh.white");
  EXPECT_TRUE(fsr.geometry.valid);
  EXPECT_EQ(fsr.geometry.dims[1], 100);
  for (int a = 0; a < 3; ++a) EXPECT_NEAR(fsr.geometry.c_ras[a], m.geometry.c_ras[a], 1e-6);
  EXPECT_EQ(leftover_temporaries(dir), 0);
}

TEST(Surface, CurvRoundTripAndRejectsSurfaceAsCurv) {
  const std::string dir = temp_dir("curv");
  std::vector<float> thickness{1.5f, 2.25f, 3.f, 4.5f};
  write_curv(thickness, 4, dir + "/lh.thickness");
  EXPECT_EQ(read_curv(dir + "/lh.thickness"), thickness);
  EXPECT_THROW(read_surface(dir + "/lh.thickness"), InputError);
  write_surface(make_icosphere(1), dir + "/lh.sphere");
  EXPECT_THROW(read_curv(dir + "/lh.sphere"), InputError);
}

TEST(Surface, RejectsTruncatedAndLyingFiles) {
  const std::string dir = temp_dir("surfbad");
  write_surface(make_icosphere(2), dir + "/lh.white");
  const auto size = fs::file_size(dir + "/lh.white");
  fs::copy_file(dir + "/lh.white", dir + "/cut.white");
  fs::resize_file(dir + "/cut.white", size - 100);
  EXPECT_THROW(read_surface(dir + "/cut.white"), InputError);
  write_text(dir + "/bad.gii", "<GIFTI><DataArray Intent=\"NIFTI_INTENT_POINTSET\"");
  EXPECT_THROW(read_surface(dir + "/bad.gii"), InputError);
  write_text(dir + "/nopoints.gii",
             "<GIFTI Version=\"1.0\"><DataArray Intent=\"NIFTI_INTENT_TRIANGLE\" "
             "DataType=\"NIFTI_TYPE_INT32\" "
             "Dimensionality=\"2\" Dim0=\"1\" Dim1=\"3\" Encoding=\"ASCII\"><Data>0 1 "
             "2</Data></DataArray></GIFTI>");
  EXPECT_THROW(read_surface(dir + "/nopoints.gii"), InputError);
  write_text(dir + "/huge.gii",
             "<GIFTI Version=\"1.0\"><DataArray Intent=\"NIFTI_INTENT_POINTSET\" "
             "DataType=\"NIFTI_TYPE_FLOAT32\" "
             "Dimensionality=\"2\" Dim0=\"2000000000\" Dim1=\"3\" "
             "Encoding=\"Base64Binary\"><Data>AAAA</Data>"
             "</DataArray></GIFTI>");
  EXPECT_THROW(read_surface(dir + "/huge.gii"), InputError);
  write_text(dir + "/lh.asc", "#!ascii\n3 1\n0 0 0 0\n1 0 0 0\n0 1 0 0\n0 1 7 0\n");
  EXPECT_THROW(read_surface(dir + "/lh.asc"), InputError);
}

TEST(Surface, ReadsFsaverage5GzippedGifti) {
  const std::string path = shared("fsaverage5/white_left.gii.gz");
  if (!fs::exists(path)) GTEST_SKIP() << "shared data not present: " << path;
  const Mesh m = read_surface(path);
  EXPECT_EQ(m.num_vertices(), 10242u);
  EXPECT_EQ(m.num_faces(), 20480u);
  EXPECT_EQ(m.hemi, "lh");
  EXPECT_EQ(m.surface, "white");
  const MeshTopology t = mesh_topology(m);
  EXPECT_EQ(t.euler, 2);
  EXPECT_TRUE(t.closed_manifold());
}

TEST(AtomicFile, UncommittedLeavesNothingAndMissingFolderIsInputError) {
  const std::string dir = temp_dir("atomic");
  {
    AtomicFile f(dir + "/out.nii.gz");
    EXPECT_EQ(full_extension(f.temp_path()), ".nii.gz");
    std::ofstream(f.temp_path()) << "partial";
  }
  EXPECT_FALSE(fs::exists(dir + "/out.nii.gz"));
  EXPECT_EQ(leftover_temporaries(dir), 0);
  EXPECT_THROW(write_file_atomic(dir + "/no/such/folder/x.txt", "x"), InputError);
  write_file_atomic(dir + "/x.txt", "hello");
  EXPECT_EQ(read_file_maybe_gz(dir + "/x.txt"), "hello");
}

// Found by fuzz_gradients: a b-value beyond int's range reached an int cast in the error message.
TEST(Gradients, HugeBValueIsReportedNotCast) {
  GradientTable t;
  t.bvals = {0, 8.88889e31};
  t.bvecs_fsl = {Vec3{0, 0, 0}, Vec3{0, 0, 0}};
  t.bval_path = "huge.bval", t.bvec_path = "huge.bvec";
  try {
    check_gradients(t, 2, "huge.nii.gz");
    ADD_FAILURE() << "a zero b-vector with b > 0 was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("b=8.88889e+31"), std::string::npos) << e.what();
  }
}
