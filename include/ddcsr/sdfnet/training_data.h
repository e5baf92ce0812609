// Ground-truth targets for SDFNet training: the four signed distance maps on the feature grid,
// exactly from surface meshes or resampled from SDF volumes.
#pragma once
#include <array>
#include <string>

#include "ddcsr/affine.h"
#include "ddcsr/mesh.h"
#include "ddcsr/progress.h"
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

}  // namespace ddcsr
