// ddcsr isosurface: marching cubes on a volume (typically a signed distance map), written as a
// surface file. The benchmark's baseline: a surface straight from the predicted SDF, with no
// template and no topology guarantee, to set beside DiffCoSeg's.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <memory>

#include "cli/command.h"
#include "ddcsr/error.h"
#include "ddcsr/eval/marching_cubes.h"
#include "ddcsr/frames.h"
#include "ddcsr/io/nifti.h"
#include "ddcsr/io/surface.h"

namespace fs = std::filesystem;

namespace {

struct IsosurfaceOptions {
  std::string input, output, ref, hemi, surface;
  double level = 0;
  int64_t frame = 0;
  bool open_at_border = false;
};

ddcsr::cli::Command make_isosurface_command() {
  ddcsr::cli::Command c;
  c.name = "isosurface";
  c.synopsis = "Mesh a level set of a volume (e.g. a signed distance map) by marching cubes";
  c.description =
      "Writes the surface where the trilinear field crosses --level (0 by default: the zero level\n"
      "set of a signed distance map such as recon --save-sdf's sdf/lh.white.nii.gz or simulate's\n"
      "sdf/*.nii.gz), in scanner RAS, faces outward for a map that is negative inside.\n"
      "Output format by extension, as in convert: .gii/.surf.gii GIFTI, .asc FreeSurfer ASCII,\n"
      "anything else FreeSurfer binary with the volume-geometry footer of the input (or --ref).\n"
      "No smoothing, no topology correction: the mesh has whatever handles and pieces the sampled\n"
      "field has (the baseline that recon's template deformation is compared with). The region\n"
      "inside is closed at the grid border unless --open-at-border. Prints vertices, faces, Euler\n"
      "characteristic and components.";
  c.references = {
      "Lorensen, Cline (1987). Marching cubes: a high resolution 3D surface construction "
      "algorithm. SIGGRAPH.",
      "Nielson, Hamann (1991). The asymptotic decider: resolving the ambiguity in marching "
      "cubes. IEEE Visualization."};
  c.order = 45;
  c.setup = [](CLI::App& app) {
    auto o = std::make_shared<IsosurfaceOptions>();
    app.add_option("input", o->input, "3D or 4D NIfTI volume")->required();
    app.add_option("-o,--output", o->output, "Output surface (format by extension)")->required();
    app.add_option("--level", o->level, "Iso-value")->capture_default_str();
    app.add_option("--frame", o->frame,
                   "Frame of a 4D volume (ddcsr sdf: 0 lh.white, 1 lh.pial, "
                   "2 rh.white, 3 rh.pial)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    app.add_option("--ref", o->ref,
                   "Image whose geometry FreeSurfer output carries (default: the input)");
    app.add_option("--hemi", o->hemi, "Hemisphere recorded in the output (default: from the name)")
        ->check(CLI::IsMember({"lh", "rh"}));
    app.add_option("--surface", o->surface,
                   "Surface type recorded in the output (default: from the name)")
        ->check(CLI::IsMember({"white", "pial", "midthickness", "orig"}));
    app.add_flag("--open-at-border", o->open_at_border,
                 "Leave the surface open where the region inside touches the grid border");
    return [o]() -> int {
      const ddcsr::Volume volume = ddcsr::read_volume(o->input);
      if (o->frame >= volume.nvols)
        throw ddcsr::UsageError("--frame " + std::to_string(o->frame) + ": " + o->input + " has " +
                                std::to_string(volume.nvols) + " frame(s)");
      ddcsr::MarchingCubesOptions mc;
      mc.iso = static_cast<float>(o->level);
      mc.frame = o->frame;
      mc.close_at_border = !o->open_at_border;
      ddcsr::Mesh mesh = ddcsr::marching_cubes(volume, mc);
      if (mesh.faces.empty())
        throw ddcsr::InputError(o->input, "no surface at level " + std::to_string(o->level) +
                                              " (frame " + std::to_string(o->frame) + ")");

      // FreeSurfer output carries a geometry footer so that viewers overlay it on the volume it
      // came from; the SDF's own grid is the natural default.
      if (o->ref.empty()) {
        mesh.geometry = ddcsr::volume_geometry_of(volume, fs::path(o->input).filename().string());
      } else {
        const auto header = ddcsr::read_volume_header(o->ref);
        ddcsr::Volume grid;
        grid.dims = header.dims;
        grid.vox2ras = header.vox2ras;
        mesh.geometry = ddcsr::volume_geometry_of(grid, fs::path(o->ref).filename().string());
      }
      std::string hemi, surface;
      ddcsr::guess_hemi_surface(o->input, hemi, surface);
      mesh.hemi = o->hemi.empty() ? hemi : o->hemi;
      mesh.surface = o->surface.empty() ? surface : o->surface;
      ddcsr::write_surface(mesh, o->output);

      const ddcsr::MeshTopology t = ddcsr::mesh_topology(mesh);
      spdlog::info("wrote {}: {} vertices, {} faces, Euler {}, {} component(s){}", o->output,
                   t.vertices, t.faces, t.euler, t.components,
                   t.closed_manifold() ? "" : ", not closed");
      return 0;
    };
  };
  return c;
}

}  // namespace

DDCSR_COMMAND(make_isosurface_command());
