// Files of the derived surfaces and maps (see surface_maps.h).
#include <filesystem>
#include <utility>

#include "ddcsr/io/surface.h"
#include "ddcsr/surface_maps/surface_maps.h"

namespace fs = std::filesystem;

namespace ddcsr {

void write_hemisphere_maps(const HemisphereMaps& maps, const std::string& hemi,
                           const VolumeGeometry& geometry, const std::string& surf_dir) {
  const fs::path surf(surf_dir);
  const int64_t faces = int64_t(maps.inflated.faces.size());
  for (const Mesh* mesh : {&maps.inflated, &maps.midthickness}) {
    Mesh out = *mesh;
    out.geometry = geometry;
    out.hemi = hemi;
    const std::string base = (surf / (hemi + "." + out.surface)).string();
    write_surface(out, base);
    write_surface(out, base + ".surf.gii");
  }
  Mesh sphere = maps.sphere;
  sphere.hemi = hemi;
  write_centred_sphere(sphere, geometry, (surf / (hemi + ".sphere")).string());
  for (const auto& [name, values] :
       {std::pair<std::string, const std::vector<float>&>{"sulc", maps.sulc},
        {"curv", maps.curv}}) {
    write_curv(values, faces, (surf / (hemi + "." + name)).string());
    write_gifti_shape(values, hemi, name, (surf / (hemi + "." + name + ".shape.gii")).string());
  }
}

}  // namespace ddcsr
