// ddcsr surface-maps: the inflated, spherical and midthickness surfaces and sulc/curv of one
// hemisphere's white and pial surfaces, as recon writes them; for surfaces from another run or
// another tool (FreeSurfer, FastSurfer, CIVET converted), in any format ddcsr reads.
#include "ddcsr/surface_maps/surface_maps.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <memory>

#include "cli/command.h"
#include "ddcsr/error.h"
#include "ddcsr/io/surface.h"

namespace fs = std::filesystem;

namespace {

struct SurfaceMapsOptions {
  std::string white, pial, output, hemi;
};

ddcsr::cli::Command make_surface_maps_command() {
  ddcsr::cli::Command c;
  c.name = "surface-maps";
  c.synopsis = "Inflated, spherical and midthickness surfaces and sulc/curv of one hemisphere";
  c.description =
      "Writes into the output folder, with FreeSurfer's names, units and signs: HEMI.inflated,\n"
      "HEMI.sphere (radius 100, one-to-one), HEMI.midthickness (each with a .surf.gii twin) and\n"
      "HEMI.sulc, HEMI.curv (FreeSurfer curv files, with .shape.gii twins). curv is the white\n"
      "surface's mean curvature (1/mm) and sulc the depth found by inflating it (mm); both are\n"
      "positive in sulci. White and pial must share one triangulation (vertex i of white pairs\n"
      "with vertex i of pial), as recon's, FreeSurfer's and FastSurfer's do. FreeSurfer outputs\n"
      "carry the white surface's volume geometry. recon writes the same files for every subject\n"
      "unless --no-surface-maps.";
  c.references = {
      "Fischl, Sereno, Dale (1999). Cortical surface-based analysis II: inflation, flattening, "
      "and a surface-based coordinate system. NeuroImage 9.",
      "Angenent, Haker, Tannenbaum, Kikinis (1999). On the Laplace-Beltrami operator and brain "
      "surface flattening. IEEE TMI 18.",
      "Floater (2003). One-to-one piecewise linear mappings over triangulations. Math. Comp. 72."};
  c.order = 47;
  c.setup = [](CLI::App& app) {
    auto o = std::make_shared<SurfaceMapsOptions>();
    app.add_option("--white", o->white, "White surface (any format ddcsr reads)")->required();
    app.add_option("--pial", o->pial, "Pial surface with the white surface's triangles")
        ->required();
    app.add_option("-o,--output", o->output, "Output folder (created if missing)")->required();
    app.add_option("--hemi", o->hemi, "Hemisphere prefix of the outputs (default: from the name)")
        ->check(CLI::IsMember({"lh", "rh"}));
    return [o]() -> int {
      const ddcsr::Mesh white = ddcsr::read_surface(o->white);
      const ddcsr::Mesh pial = ddcsr::read_surface(o->pial);
      if (pial.vertices.size() != white.vertices.size() || pial.faces != white.faces)
        throw ddcsr::InputError(o->pial, "does not share the triangles of " + o->white);
      const ddcsr::MeshTopology t = ddcsr::mesh_topology(white);
      if (!t.closed_manifold() || t.components != 1 || t.euler != 2)
        throw ddcsr::InputError(o->white, "not a closed genus-0 surface (Euler " +
                                              std::to_string(t.euler) + ", " +
                                              std::to_string(t.components) + " components)");
      const std::string hemi = o->hemi.empty() ? white.hemi : o->hemi;
      if (hemi != "lh" && hemi != "rh")
        throw ddcsr::UsageError("cannot tell the hemisphere from " + o->white + ": give --hemi");
      const ddcsr::HemisphereMaps maps = ddcsr::hemisphere_maps(white, pial);
      fs::create_directories(o->output);
      ddcsr::write_hemisphere_maps(maps, hemi, white.geometry, o->output);
      spdlog::info(
          "wrote {}/{}.{{inflated,sphere,midthickness,sulc,curv}}: sphere {} folded "
          "faces, median area distortion {:.2f}",
          o->output, hemi, maps.sphere_folded_faces, maps.sphere_area_distortion);
      return maps.sphere_folded_faces == 0 ? 0 : 1;
    };
  };
  return c;
}

}  // namespace

DDCSR_COMMAND(make_surface_maps_command());
