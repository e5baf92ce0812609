// Diffusion gradient tables: FSL/BIDS .bval/.bvec files and their conversion to world RAS.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "ddcsr/affine.h"

namespace ddcsr {

struct GradientTable {
  std::vector<double> bvals;         // s/mm^2, one per volume
  std::vector<Vec3> bvecs_fsl;       // as stored by FSL: image voxel axes, x flipped if det > 0
  std::string bval_path, bvec_path;  // where they came from, for messages
  size_t size() const { return bvals.size(); }
};

// The .bval/.bvec beside an image with the same stem (dwi.nii.gz -> dwi.bval, dwi.bvec).
// InputError naming the missing file when either is absent.
std::pair<std::string, std::string> find_gradient_files(const std::string& dwi_path);

// Parses FSL-style files: bvals one row (or column); bvecs 3xN or Nx3.
// InputError for non-numeric, NaN/Inf or ragged entries.
GradientTable read_fsl_gradients(const std::string& bval_path, const std::string& bvec_path);

// Checks the table against an image with `nvols` volumes: counts match, at least one b0
// (b < b0_threshold), non-zero b-vectors on diffusion-weighted volumes.
void check_gradients(const GradientTable& table, int64_t nvols, const std::string& image_path,
                     double b0_threshold = 50.0);

// Unit b-vectors in scanner RAS, following the FSL convention: flip x when the image's
// voxel->world determinant is positive, then rotate by the voxel->world rotation.
// Zero vectors (b0) stay zero.
std::vector<Vec3> bvecs_world(const GradientTable& table, const Affine& vox2ras);
// The inverse, for writing FSL files of an image with this affine.
std::vector<Vec3> bvecs_fsl_from_world(const std::vector<Vec3>& world, const Affine& vox2ras);

// Writes .bval and .bvec (3 rows) atomically.
void write_fsl_gradients(const std::vector<double>& bvals, const std::vector<Vec3>& bvecs_fsl,
                         const std::string& bval_path, const std::string& bvec_path);

}  // namespace ddcsr
