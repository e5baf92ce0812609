// Partial-volume fractions of closed meshes on a voxel grid.
//
// Each voxel is cut into n x n sub-columns along the grid's first axis (i); along each
// sub-column the entry and exit points of the meshes are found exactly (ray-triangle crossings
// in voxel coordinates), so the inside length is exact along i and the fraction is sampled
// n^2 times across it. Crossings are signed by the face orientation and summed: a point is
// inside where the winding number is positive, which makes several meshes a union and needs
// no parity trick. Points on an edge are given to exactly one of its two faces by evaluating
// every edge function in a canonical vertex order with a symbolic perturbation for exact zeros,
// so no crossing is counted twice or missed. Works in any grid orientation (oblique included).
// Deterministic: crossings are sorted per column and voxels are summed in a fixed order.
#pragma once
#include <cstdint>
#include <vector>

#include "ddcsr/mesh.h"
#include "ddcsr/volume.h"

namespace ddcsr::sim {

// Fraction in [0, 1] of each voxel of `grid` (dims and vox2ras; data ignored) inside the union
// of `meshes` (closed, either orientation). `supersample` >= 1 sub-columns per voxel side.
Volume inside_fraction(const std::vector<const Mesh*>& meshes, const Volume& grid, int supersample);

// 1 where the voxel centre lies inside the union of the meshes, else 0; i fastest. Exact
// scanline test through the centres (same crossing rules as inside_fraction).
std::vector<uint8_t> inside_centres(const std::vector<const Mesh*>& meshes, const Volume& grid);

}  // namespace ddcsr::sim
