#include "ddcsr/recon/field_of_view.h"

#include <algorithm>
#include <cmath>

namespace ddcsr {

namespace {

// The anatomical side a face of the grid lies on: where its voxel axis points (side 1) or the
// opposite (side 0).
std::string face_name(const Affine& vox2ras, int axis, int side) {
  const char letter = orientation_code(vox2ras)[axis];
  const std::string toward = "RLAPSI";
  static const char* names[] = {"right", "left", "anterior", "posterior", "superior", "inferior"};
  const size_t i = toward.find(letter);
  return names[side == 1 ? i : i ^ 1];
}

// Brain mask in the outermost slice of a face, within one voxel (in plane) of (u, v).
bool mask_on_face_near(const Volume& mask, int axis, int64_t slice, double u, double v) {
  const int a1 = (axis + 1) % 3, a2 = (axis + 2) % 3;
  const int64_t cu = std::llround(u), cv = std::llround(v);
  for (int64_t du = -1; du <= 1; ++du)
    for (int64_t dv = -1; dv <= 1; ++dv) {
      int64_t ijk[3];
      ijk[axis] = slice;
      ijk[a1] = cu + du;
      ijk[a2] = cv + dv;
      if (mask.inside(ijk[0], ijk[1], ijk[2]) && mask.at(ijk[0], ijk[1], ijk[2]) != 0) return true;
    }
  return false;
}

}  // namespace

std::vector<FieldOfViewCut> field_of_view_cuts(const Volume& mask, double min_area_cm2) {
  std::vector<FieldOfViewCut> cuts;
  const Vec3 spacing = mask.spacing();
  for (int axis = 0; axis < 3; ++axis) {
    const int a1 = (axis + 1) % 3, a2 = (axis + 2) % 3;
    const double voxel_cm2 = spacing[a1] * spacing[a2] / 100.0;
    for (int side = 0; side < 2; ++side) {
      int64_t ijk[3];
      ijk[axis] = side == 0 ? 0 : mask.dims[axis] - 1;
      int64_t count = 0;
      for (ijk[a2] = 0; ijk[a2] < mask.dims[a2]; ++ijk[a2])
        for (ijk[a1] = 0; ijk[a1] < mask.dims[a1]; ++ijk[a1])
          count += mask.at(ijk[0], ijk[1], ijk[2]) != 0;
      const double area = double(count) * voxel_cm2;
      if (count > 0 && area >= min_area_cm2)
        cuts.push_back({axis, side, face_name(mask.vox2ras, axis, side), area});
    }
  }
  std::sort(cuts.begin(), cuts.end(), [](const FieldOfViewCut& a, const FieldOfViewCut& b) {
    return a.mask_area_cm2 > b.mask_area_cm2;
  });
  return cuts;
}

std::vector<uint8_t> field_of_view_cut_vertices(const Mesh& white, const Mesh& pial,
                                                const Volume& mask,
                                                const std::vector<FieldOfViewCut>& cuts) {
  std::vector<uint8_t> cut(white.vertices.size(), 0);
  if (cuts.empty()) return cut;
  const Affine ras2vox = mask.vox2ras.inverse();
  for (const Mesh* m : {&white, &pial})
    for (size_t v = 0; v < m->vertices.size() && v < cut.size(); ++v) {
      if (cut[v]) continue;
      const auto& p = m->vertices[v];
      const Vec3 ijk = ras2vox.apply(Vec3{p[0], p[1], p[2]});
      for (const FieldOfViewCut& c : cuts) {
        const int64_t last = mask.dims[c.axis] - 1;
        // Within one voxel of the outermost voxel centres, or beyond them: the network saw the
        // border there, and the flows closed the surface along it.
        const bool near_face = c.side == 0 ? ijk[c.axis] <= 1.0 : ijk[c.axis] >= double(last) - 1.0;
        if (near_face && mask_on_face_near(mask, c.axis, c.side == 0 ? 0 : last,
                                           ijk[(c.axis + 1) % 3], ijk[(c.axis + 2) % 3])) {
          cut[v] = 1;
          break;
        }
      }
    }
  return cut;
}

}  // namespace ddcsr
