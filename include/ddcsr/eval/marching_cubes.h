// Marching cubes: the iso-surface of a 3D volume as a triangle mesh in scanner RAS. The
// benchmark's baseline (a surface straight from the predicted SDF, with no topology guarantee).
#pragma once
#include <cstdint>

#include "ddcsr/mesh.h"
#include "ddcsr/volume.h"

namespace ddcsr {

struct MarchingCubesOptions {
  float iso = 0.f;
  int64_t frame = 0;  // which 3D frame of a 4D volume
  // Treat the outside of the grid as above `iso`, so that a region touching the border still
  // gives a closed surface.
  bool close_at_border = true;
};

// Vertices lie on voxel edges where the trilinear field crosses `iso` and are shared between
// neighbouring cubes. Each cube face is resolved from its own four corners (asymptotic decider),
// so neighbouring cubes agree and the result is a closed 2-manifold (when close_at_border),
// though its genus is whatever the field's sampling gives. Faces are counter-clockwise seen from
// the side where values exceed `iso`: outward for an SDF that is negative inside.
Mesh marching_cubes(const Volume& volume, const MarchingCubesOptions& opts = {});

}  // namespace ddcsr
