// read_volume's voxel path against hand-made NIfTI-1 files: every numeric type, both byte
// orders, scl_slope/scl_inter, plain and gzipped files, NaN and truncation.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "ddcsr/error.h"
#include "ddcsr/io/nifti.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace ddcsr;

namespace {

std::string temp_dir() { return test::fresh_dir("nifti_read"); }

template <typename T>
void put(std::string& buf, size_t off, T v, bool big_endian) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  if (big_endian) std::reverse(b, b + sizeof(T));
  std::memcpy(&buf[off], b, sizeof(T));
}

// A 3x4x2x2 image of type T holding `values` (as stored), written as .nii or .nii.gz.
template <typename T>
std::string write_nifti1(const std::string& path, int16_t datatype, const std::vector<T>& values,
                         bool big_endian, float slope = 1, float inter = 0, bool truncate = false) {
  std::string b(352, '\0');
  put<int32_t>(b, 0, 348, big_endian);
  const int16_t dim[8] = {4, 3, 4, 2, 2, 1, 1, 1};
  for (int i = 0; i < 8; ++i) put<int16_t>(b, 40 + 2 * i, dim[i], big_endian);
  put<int16_t>(b, 70, datatype, big_endian);
  put<int16_t>(b, 72, static_cast<int16_t>(8 * sizeof(T)), big_endian);
  const float pixdim[8] = {1, 2, 2, 3, 1, 1, 1, 1};
  for (int i = 0; i < 8; ++i) put<float>(b, 76 + 4 * i, pixdim[i], big_endian);
  put<float>(b, 108, 352.f, big_endian);
  put<float>(b, 112, slope, big_endian);
  put<float>(b, 116, inter, big_endian);
  b[123] = 2;                           // mm
  put<int16_t>(b, 254, 1, big_endian);  // sform_code: scanner
  const float srow[12] = {-2, 0, 0, 10, 0, 2, 0, -20, 0, 0, 3, 5};
  for (int i = 0; i < 12; ++i) put<float>(b, 280 + 4 * i, srow[i], big_endian);
  std::memcpy(&b[344], "n+1\0", 4);
  for (const T& v : values) {
    std::string one(sizeof(T), '\0');
    put<T>(one, 0, v, big_endian);
    b += one;
  }
  if (truncate) b.resize(b.size() - 5 * sizeof(T));
  if (path.size() > 3 && path.substr(path.size() - 3) == ".gz") {
    gzFile gz = gzopen(path.c_str(), "wb6");
    gzwrite(gz, b.data(), static_cast<unsigned>(b.size()));
    gzclose(gz);
  } else {
    std::ofstream(path, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
  }
  return path;
}

template <typename T>
std::vector<T> ramp(double start, double step) {
  std::vector<T> v(48);
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<T>(start + step * static_cast<double>(i));
  return v;
}

template <typename T>
void expect_reads(const std::string& name, int16_t datatype, const std::vector<T>& values,
                  float slope = 1, float inter = 0) {
  const std::string dir = temp_dir();
  for (bool big : {false, true})
    for (const char* ext : {".nii", ".nii.gz"}) {
      const std::string path = dir + "/" + name + (big ? "_be" : "_le") + ext;
      write_nifti1(path, datatype, values, big, slope, inter);
      const Volume v = read_volume(path);
      ASSERT_EQ(v.dims, (std::array<int64_t, 3>{3, 4, 2})) << path;
      ASSERT_EQ(v.nvols, 2) << path;
      EXPECT_DOUBLE_EQ(v.vox2ras(0, 0), -2) << path;
      EXPECT_DOUBLE_EQ(v.vox2ras(1, 3), -20) << path;
      for (size_t i = 0; i < values.size(); ++i) {
        const double expect =
            (slope != 0 ? slope : 1) * static_cast<double>(values[i]) + (slope != 0 ? inter : 0);
        ASSERT_FLOAT_EQ(v.data[i], static_cast<float>(expect)) << path << " voxel " << i;
      }
    }
}

}  // namespace

TEST(NiftiRead, EveryNumericTypeAndByteOrder) {
  expect_reads<uint8_t>("u8", 2, ramp<uint8_t>(3, 5));
  expect_reads<int8_t>("i8", 256, ramp<int8_t>(-100, 4));
  expect_reads<int16_t>("i16", 4, ramp<int16_t>(-20000, 877));
  expect_reads<uint16_t>("u16", 512, ramp<uint16_t>(100, 1300));
  expect_reads<int32_t>("i32", 8, ramp<int32_t>(-1e6, 40000));
  expect_reads<uint32_t>("u32", 768, ramp<uint32_t>(7, 100000));
  expect_reads<float>("f32", 16, ramp<float>(-1.5, 0.37));
  expect_reads<double>("f64", 64, ramp<double>(-2.25, 0.125));
  expect_reads<int64_t>("i64", 1024, ramp<int64_t>(-5000, 211));
}

TEST(NiftiRead, AppliesSclSlopeAndInter) {
  expect_reads<int16_t>("scaled", 4, ramp<int16_t>(-300, 13), 0.5f, 100.f);
  // slope 0 means "no scaling" (NIfTI-1 standard).
  expect_reads<int16_t>("slope0", 4, ramp<int16_t>(-300, 13), 0.f, 100.f);
}

TEST(NiftiRead, RejectsNanAndTruncation) {
  const std::string dir = temp_dir();
  auto values = ramp<float>(0, 1);
  values[30] = std::numeric_limits<float>::quiet_NaN();
  for (const char* ext : {".nii", ".nii.gz"}) {
    const std::string nan_path = write_nifti1(dir + "/nan" + ext, 16, values, false);
    try {
      read_volume(nan_path);
      FAIL() << "expected InputError for NaN";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("volume 1"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(std::isnan(read_volume(nan_path, false, true).data[30]));
    const std::string cut =
        write_nifti1(dir + "/cut" + std::string(ext), 4, ramp<int16_t>(0, 1), false, 1, 0, true);
    EXPECT_THROW(read_volume(cut), InputError);
  }
}
