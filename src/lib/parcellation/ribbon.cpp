// The cortical ribbon of a grid labelled by region (connectome nodes in the scan's space).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

#include "ddcsr/geometry/mesh_distance.h"
#include "ddcsr/parcellation/parcellation.h"
#include "ddcsr/surface_maps/surface_maps.h"
#include "ddcsr/threads.h"

namespace ddcsr {

namespace {

// Cortex is at most about 5 mm thick (Fischl and Dale 2000): a ribbon voxel lies within this of
// both surfaces, so farther voxels need no exact sign.
constexpr double kRibbonReachMm = 6.0;

}  // namespace

int ribbon_label_base(const std::string& atlas, const std::string& hemi) {
  const bool left = hemi == "lh";
  if (atlas == "aparc.a2009s") return left ? 11100 : 12100;
  return left ? 1000 : 2000;
}

Volume label_ribbon(const Volume& grid, const std::vector<RibbonHemisphere>& hemispheres,
                    const std::string& atlas) {
  Volume labels(grid.dims, 1, grid.vox2ras, 0.f);
  std::vector<float> nearest(labels.data.size(), std::numeric_limits<float>::infinity());
  for (const RibbonHemisphere& h : hemispheres) {
    if (!h.white || !h.pial || !h.labels || h.white->vertices.size() != h.pial->vertices.size() ||
        h.labels->labels.size() != h.white->vertices.size())
      throw std::invalid_argument("label_ribbon: " + h.hemi +
                                  ": white, pial and labels differ in their vertices");
    if (h.white->vertices.empty()) continue;
    const int base = ribbon_label_base(atlas, h.hemi);
    const Mesh mid = midthickness_surface(*h.white, *h.pial);
    const MeshDistance white_d(*h.white), pial_d(*h.pial), mid_d(mid);
    // The voxels of the pial surface's bounding box, a voxel beyond it.
    std::array<int64_t, 3> lo{}, hi{};
    for (int a = 0; a < 3; ++a) {
      lo[size_t(a)] = std::numeric_limits<int64_t>::max();
      hi[size_t(a)] = std::numeric_limits<int64_t>::min();
    }
    for (const auto& x : h.pial->vertices) {
      const Vec3 ijk = grid.ras_to_voxel({double(x[0]), double(x[1]), double(x[2])});
      for (int a = 0; a < 3; ++a) {
        lo[size_t(a)] = std::min(lo[size_t(a)], int64_t(std::floor(ijk[size_t(a)])) - 1);
        hi[size_t(a)] = std::max(hi[size_t(a)], int64_t(std::ceil(ijk[size_t(a)])) + 1);
      }
    }
    for (int a = 0; a < 3; ++a) {
      lo[size_t(a)] = std::max<int64_t>(lo[size_t(a)], 0);
      hi[size_t(a)] = std::min<int64_t>(hi[size_t(a)], grid.dims[size_t(a)] - 1);
    }
    if (lo[0] > hi[0] || lo[1] > hi[1] || lo[2] > hi[2]) continue;
    parallel_for(hi[2] - lo[2] + 1, [&](int64_t k0, int64_t k1) {
      for (int64_t k = lo[2] + k0; k < lo[2] + k1; ++k)
        for (int64_t j = lo[1]; j <= hi[1]; ++j)
          for (int64_t i = lo[0]; i <= hi[0]; ++i) {
            const Vec3 p = grid.voxel_to_ras({double(i), double(j), double(k)});
            const MeshDistance::Closest cp = pial_d.closest_within(p, kRibbonReachMm);
            if (cp.face < 0 || pial_d.signed_distance(cp, p) > 0) continue;
            const MeshDistance::Closest cw = white_d.closest_within(p, kRibbonReachMm);
            if (cw.face < 0 || white_d.signed_distance(cw, p) <= 0) continue;
            const MeshDistance::Closest cm = mid_d.closest(p);
            const size_t v = labels.index(i, j, k);
            if (!(cm.distance < nearest[v])) continue;
            // The face's vertex nearest to the closest point carries the label.
            const auto& f = mid.faces[size_t(cm.face)];
            int32_t best = f[0];
            double best_d2 = std::numeric_limits<double>::infinity();
            for (int c = 0; c < 3; ++c) {
              const auto& x = mid.vertices[size_t(f[size_t(c)])];
              double d2 = 0;
              for (int a = 0; a < 3; ++a)
                d2 += std::pow(double(x[size_t(a)]) - cm.point[size_t(a)], 2);
              if (d2 < best_d2) {
                best_d2 = d2;
                best = f[size_t(c)];
              }
            }
            const int32_t region = h.labels->labels[size_t(best)];
            nearest[v] = float(cm.distance);
            labels.data[v] = region >= 0 ? float(base + region) : 0.f;
          }
    });
  }
  return labels;
}

std::string ribbon_colour_table(const std::vector<RibbonHemisphere>& hemispheres,
                                const std::string& atlas) {
  const bool destrieux = atlas == "aparc.a2009s";
  std::string out = "# ddcsr: cortical ribbon labels of atlas " + atlas +
                    " (FreeSurferColorLUT numbering)\n0\tUnknown\t0\t0\t0\t0\n";
  for (const RibbonHemisphere& h : hemispheres) {
    if (!h.labels) continue;
    const int base = ribbon_label_base(atlas, h.hemi);
    for (size_t r = 0; r < h.labels->names.size(); ++r) {
      const auto& c =
          r < h.labels->colours.size() ? h.labels->colours[r] : std::array<uint8_t, 3>{0, 0, 0};
      char line[256];
      std::snprintf(line, sizeof line, "%d\tctx%s%s%s%s\t%d\t%d\t%d\t0\n", base + int(r),
                    destrieux ? "_" : "-", h.hemi.c_str(), destrieux ? "_" : "-",
                    h.labels->names[r].c_str(), int(c[0]), int(c[1]), int(c[2]));
      out += line;
    }
  }
  return out;
}

}  // namespace ddcsr
