// ddcsr convert: surface format conversion with volume geometry, like mris_convert.
#include <spdlog/spdlog.h>

#include "cli/command.h"
#include "ddcsr/error.h"
#include "ddcsr/io/nifti.h"
#include "ddcsr/io/surface.h"

namespace {

struct ConvertOptions {
  std::string input, output, ref, hemi, surface;
  bool input_surface_ras = false;
  std::string encoding = "GZipBase64Binary";
};

ddcsr::cli::Command make_convert_command() {
  ddcsr::cli::Command c;
  c.name = "convert";
  c.synopsis = "Convert surfaces between FreeSurfer binary, FreeSurfer ASCII and GIFTI";
  c.description =
      "Converts a surface by output extension, like mris_convert: .gii/.surf.gii is GIFTI (scanner "
      "RAS),\n"
      ".asc is FreeSurfer ASCII, anything else FreeSurfer binary. Input format is detected from "
      "content\n"
      "(.gii.gz and gzipped files are read too).\n"
      "FreeSurfer files with a volume-geometry footer are read back into scanner RAS (surface RAS "
      "+ c_ras).\n"
      "With --ref IMAGE, FreeSurfer output carries that image's geometry footer and holds surface "
      "RAS\n"
      "(scanner RAS - c_ras), so Freeview, nibabel and Workbench overlay it on the image.";
  c.order = 60;
  c.setup = [](CLI::App& app) {
    auto o = std::make_shared<ConvertOptions>();
    app.add_option("input", o->input, "Input surface")->required();
    app.add_option("output", o->output, "Output surface (format by extension)")->required();
    app.add_option("--ref", o->ref,
                   "Reference NIfTI image whose geometry FreeSurfer output carries");
    app.add_option("--hemi", o->hemi, "Hemisphere recorded in GIFTI metadata")
        ->check(CLI::IsMember({"lh", "rh"}));
    app.add_option("--surface", o->surface, "Surface type recorded in GIFTI metadata")
        ->check(CLI::IsMember(
            {"white", "pial", "midthickness", "inflated", "sphere", "smoothwm", "orig"}));
    app.add_flag(
        "--input-surface-ras", o->input_surface_ras,
        "Input coordinates without a geometry footer (e.g. .asc from mris_convert) are surface RAS "
        "of --ref: add its c_ras");
    app.add_option("--encoding", o->encoding, "GIFTI encoding")
        ->check(CLI::IsMember({"ASCII", "Base64Binary", "GZipBase64Binary"}));
    return [o]() -> int {
      ddcsr::Mesh mesh = ddcsr::read_surface(o->input);
      if (o->input_surface_ras && o->ref.empty())
        throw ddcsr::UsageError("--input-surface-ras needs --ref");
      if (!o->ref.empty()) {
        const auto header = ddcsr::read_volume_header(o->ref);
        ddcsr::Volume grid;
        grid.dims = header.dims;
        grid.vox2ras = header.vox2ras;
        const auto geometry = ddcsr::volume_geometry_of(grid, o->ref);
        if (o->input_surface_ras && !mesh.geometry.valid)
          for (auto& v : mesh.vertices)
            for (int a = 0; a < 3; ++a) v[a] = static_cast<float>(v[a] + geometry.c_ras[a]);
        mesh.geometry = geometry;
      }
      if (!o->hemi.empty()) mesh.hemi = o->hemi;
      if (!o->surface.empty()) mesh.surface = o->surface;
      ddcsr::SurfaceWriteOptions opts;
      opts.gifti_encoding = o->encoding == "ASCII" ? ddcsr::GiftiEncoding::Ascii
                            : o->encoding == "Base64Binary"
                                ? ddcsr::GiftiEncoding::Base64Binary
                                : ddcsr::GiftiEncoding::GZipBase64Binary;
      ddcsr::write_surface(mesh, o->output, opts);
      spdlog::info("wrote {} ({} vertices, {} faces)", o->output, mesh.num_vertices(),
                   mesh.num_faces());
      return 0;
    };
  };
  return c;
}

}  // namespace

DDCSR_COMMAND(make_convert_command());
