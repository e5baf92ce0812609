// Ground-truth targets for SDFNet training: the four signed distance maps on the feature grid,
// exactly from surface meshes or resampled from SDF volumes.
#pragma once
#include <array>
#include <string>

#include "ddcsr/affine.h"
#include "ddcsr/features/features.h"
#include "ddcsr/mesh.h"
#include "ddcsr/progress.h"
#include "ddcsr/sdfnet/train.h"
#include "ddcsr/volume.h"

namespace ddcsr {

// Surfaces in sdfnet_outputs() order: lh.white, lh.pial, rh.white, rh.pial.
using TargetSurfaces = std::array<Mesh, 4>;

// Reads {lh,rh}.{white,pial} from a FreeSurfer `surf` folder (FreeSurfer binary; a .surf.gii or
// .gii of the same stem is accepted instead), into scanner RAS. InputError naming the missing or
// unusable file; each surface must be a closed manifold (the SDF sign needs an inside).
TargetSurfaces read_target_surfaces(const std::string& surf_dir);

// A 4x4 matrix in a text file (4 rows of 4 numbers; '#' comments) mapping the surfaces' scanner
// RAS (mm) into the scan's scanner RAS. InputError if malformed, singular or not affine.
Affine read_ras_to_ras_affine(const std::string& path);

// Applies `ras_to_ras` to every vertex; a reflection flips face orientation back to
// counter-clockwise-outside.
void transform_surfaces(TargetSurfaces& surfaces, const Affine& ras_to_ras);

// Exact signed distance (mm, negative inside) of each surface at every voxel centre of `grid`
// (dims and vox2ras; its data is ignored): a 4-frame volume on that grid.
Volume sdf_targets_from_surfaces(const TargetSurfaces& surfaces, const Volume& grid,
                                 const ProgressFn& progress = {});

// Trilinear resampling of four 3D SDF volumes (any grids) onto `grid`; beyond a volume's field
// of view the value at its nearest edge is used (SDFs there are far from the surfaces).
Volume resample_sdf_targets(const std::array<Volume, 4>& sdfs, const Volume& grid);

// Training pairs through the same feature code as `ddcsr recon` (compute_features), with targets
// on the feature grid.
struct TrainingDataOptions {
  FeatureOptions features;
  // Simulated folders: exact SDFs from surf/ (when present) instead of resampling sdf/*.nii.gz.
  bool exact_targets = true;
  // Simulated folders: the mask `recon` computes from the DWI instead of the simulator's
  // mask.nii.gz. The mask is an input channel; with the simulator's exact intracranial mask a
  // network can learn a fixed distance from the mask's edge to the pial surface, which no real
  // scan's mask keeps.
  bool computed_sim_masks = false;
};

// A folder written by `ddcsr simulate`: dwi.nii.gz (+ .bval/.bvec), mask.nii.gz, and
// sdf/{lh,rh}.{white,pial}.nii.gz and/or surf/{lh,rh}.{white,pial}. InputError naming what is
// missing or unusable.
SdfTrainingPair load_simulated_pair(const std::string& dir, const TrainingDataOptions& options,
                                    const ProgressFn& progress = {});

// A real scan (with .bval/.bvec beside it; `mask_path` optional) and a FreeSurfer `surf` folder
// whose surfaces lie in the scan's world space, or are brought there by the RAS-to-RAS affine in
// `affine_path` (optional).
SdfTrainingPair load_scan_pair(const std::string& dwi_path, const std::string& surf_dir,
                               const std::string& affine_path, const std::string& mask_path,
                               const TrainingDataOptions& options, const ProgressFn& progress = {});

}  // namespace ddcsr
