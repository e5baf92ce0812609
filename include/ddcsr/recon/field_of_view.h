// Diffusion scans often do not cover the whole brain: an axial slab (the Philips sample stops
// above the temporal lobes), a vertex or cerebellum left out to save time. The surfaces are
// closed there all the same, along the border of the image, where they follow no cortex and their
// thickness means nothing. These functions find where the brain mask leaves the field of view and
// the surface vertices on that cut, so that recon can say so, label them and leave them out of
// its statistics.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ddcsr/mesh.h"
#include "ddcsr/volume.h"

namespace ddcsr {

struct FieldOfViewCut {
  int axis = 0;              // voxel axis of the image (0-2)
  int side = 0;              // 0: the face at index 0, 1: the face at the last index
  std::string face;          // the side of the head it lies on: "inferior", "left", ...
  double mask_area_cm2 = 0;  // brain mask in the outermost slice on that face
};

// The faces of `mask`'s grid whose outermost slice holds at least `min_area_cm2` of brain mask,
// largest first.
std::vector<FieldOfViewCut> field_of_view_cuts(const Volume& mask, double min_area_cm2 = 1.0);

// Per vertex of a hemisphere (white and pial share the triangulation): 1 where the white or the
// pial vertex lies within one voxel of a cut face (or beyond it) over brain mask in that face's
// outermost slice, else 0.
std::vector<uint8_t> field_of_view_cut_vertices(const Mesh& white, const Mesh& pial,
                                                const Volume& mask,
                                                const std::vector<FieldOfViewCut>& cuts);

}  // namespace ddcsr
