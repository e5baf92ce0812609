// What a diffusion gradient table offers the feature stage: b0 volumes, shells, unit directions in
// scanner RAS, and which volumes the tensor fit uses.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ddcsr/affine.h"
#include "ddcsr/io/gradients.h"

namespace ddcsr {

struct ProtocolOptions {
  double b0_threshold = 50.0;  // s/mm^2: volumes below are b0 (as FSL, MRtrix, dipy)
  double shell_tolerance =
      100.0;  // s/mm^2: b-values closer than this (single linkage) share a shell
  // The tensor fit uses the shells up to this b-value; above it the signal departs from
  // mono-exponential decay (kurtosis) and the tensor stops describing it. When no shell lies
  // below, or those below hold fewer than 6 non-collinear directions, higher shells join in
  // order of b-value until they do.
  double dti_max_b = 1600.0;
  double collinear_deg = 2.0;  // directions closer than this (up to sign) count as one
};

struct Shell {
  double bval = 0;               // mean effective b-value of its volumes
  std::vector<int64_t> volumes;  // indices into the series
};

struct Protocol {
  // Per volume: b-value after rescaling by |g|^2 (HCP-style tables with non-unit b-vectors) and
  // the unit direction in scanner RAS (zero where the b-vector is zero). A b0 volume keeps its
  // small b-value and direction: the tensor fit uses them, as dipy does.
  std::vector<double> bvals;
  std::vector<Vec3> bvecs;
  bool rescaled = false;  // some b-value was rescaled by its b-vector's squared norm
  std::vector<int64_t> b0_volumes;
  std::vector<Shell> shells;         // ascending b
  std::vector<int64_t> dti_volumes;  // b0 volumes and the shells the tensor fit uses, ascending
  std::vector<int> dti_shells;       // indices into `shells`
  int dti_directions = 0;            // non-collinear directions among the fit's volumes
};

// Directions that differ by more than `tolerance_deg`, treating g and -g as the same axis.
int count_noncollinear(const std::vector<Vec3>& directions, double tolerance_deg = 2.0);

// True when the quadratic forms g^T D g of these directions determine all six tensor elements
// (rank 6). Six distinct directions that lie on one cone or plane do not.
bool supports_tensor(const std::vector<Vec3>& directions);

// Groups b-values (single linkage, gaps larger than `tolerance` split shells); returns the groups
// as indices into `bvals`, ascending by b. Only the indices given in `which` are grouped.
std::vector<Shell> cluster_shells(const std::vector<double>& bvals,
                                  const std::vector<int64_t>& which, double tolerance);

// Analyses a table for an image with `nvols` volumes and voxel->RAS affine `vox2ras`.
// InputError (naming the gradient file) on a count mismatch, no b0, a zero b-vector on a
// diffusion-weighted volume, or too few non-collinear directions for a tensor fit.
Protocol analyse_protocol(const GradientTable& table, const Affine& vox2ras, int64_t nvols,
                          const std::string& image_path, const ProtocolOptions& options = {});

}  // namespace ddcsr
