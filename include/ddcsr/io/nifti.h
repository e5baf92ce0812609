// NIfTI input and output through ITK, into the project's Volume.
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "ddcsr/volume.h"

namespace ddcsr {

// What the header says, read without loading voxels.
struct VolumeHeader {
  std::array<int64_t, 3> dims{0, 0, 0};
  int64_t nvols = 1;
  int ndim = 3;
  Affine vox2ras;
  std::string component_type;   // e.g. "short", "float"
  bool floating_point = false;  // stored as float32/float64 (may hold NaN/Inf)
};

// Reads the header and checks it is a sane image (positive finite voxel sizes, non-singular
// affine, dimensions that fit in memory). InputError otherwise.
VolumeHeader read_volume_header(const std::string& path);

// Reads a 3D or 4D NIfTI image as float. `require_4d` makes a 3D image an error.
// Rejects NaN/Inf voxels (InputError) unless `allow_nonfinite`.
Volume read_volume(const std::string& path, bool require_4d = false, bool allow_nonfinite = false);

// Writes float32 NIfTI with sform and qform set to the volume's affine (scanner RAS),
// atomically (temporary name, renamed when complete).
void write_volume(const Volume& volume, const std::string& path);

struct VolumeWriteOptions {
  // Int16 stores round(value / slope) with that NIfTI scl_slope, as scanners store images: half
  // the size and far faster to gzip than noisy float32. slope <= 0 picks max|value| / 32000.
  enum class Type { Float32, Int16 } type = Type::Float32;
  double int16_slope = 0;
  int compression_level = 0;  // zlib level 1-9 for .nii.gz; 0 = ITK's default
};
void write_volume(const Volume& volume, const std::string& path, const VolumeWriteOptions& opts);

// Returns true when `path` names a NIfTI file by extension.
bool is_nifti_path(const std::string& path);

}  // namespace ddcsr
