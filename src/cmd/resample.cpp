// ddcsr resample: per-vertex maps of a subject carried to fsaverage5 through its sphere.reg, for
// vertex-wise group statistics (as FreeSurfer's mri_surf2surf --trgsubject fsaverage5).
#include <spdlog/spdlog.h>

#include <filesystem>
#include <memory>

#include "cli/command.h"
#include "cli/subject_folder.h"
#include "ddcsr/error.h"
#include "ddcsr/io/surface.h"
#include "ddcsr/parcellation/parcellation.h"

namespace fs = std::filesystem;

namespace {

struct ResampleOptions : ddcsr::cli::SubjectFolderOptions {
  std::string output;
  std::vector<std::string> maps = {"thickness"};
};

ddcsr::cli::Command make_resample_command() {
  ddcsr::cli::Command c;
  c.name = "resample";
  c.synopsis = "Carry per-vertex maps of a subject to fsaverage5 through its sphere.reg";
  c.description =
      "For each --map NAME, reads SUBJECT/surf/{lh,rh}.NAME (FreeSurfer curv or GIFTI shape)\n"
      "and SUBJECT/surf/{lh,rh}.sphere.reg (recon or parcellate), and writes\n"
      "OUTPUT/{lh,rh}.NAME.fsaverage5 (FreeSurfer curv, 10,242 values) and its .shape.gii twin:\n"
      "the map at each fsaverage5 vertex, linear inside the subject's faces. Every subject of a\n"
      "cohort then has one value per fsaverage5 vertex, ready for vertex-wise statistics.";
  c.references = {
      "Fischl, Sereno, Tootell, Dale (1999). High-resolution intersubject averaging and a "
      "coordinate system for the cortical surface. Human Brain Mapping 8."};
  c.order = 49;
  c.setup = [](CLI::App& app) {
    auto o = std::make_shared<ResampleOptions>();
    ddcsr::cli::add_subject_folder_options(app, *o);
    app.add_option("--map", o->maps, "Per-vertex map under surf/ (repeatable)")
        ->capture_default_str();
    app.add_option("-o,--output", o->output, "Output folder (default: SUBJECT/fsaverage5)");
    return [o]() -> int {
      const std::string fsavg = ddcsr::cli::fsaverage_dir(*o);
      const fs::path surf = fs::path(o->subject_dir) / "surf";
      const std::string out =
          o->output.empty() ? (fs::path(o->subject_dir) / "fsaverage5").string() : o->output;
      int written = 0;
      for (const std::string& hemi : ddcsr::cli::subject_hemispheres(*o, "sphere.reg")) {
        const fs::path reg_path = surf / (hemi + ".sphere.reg");
        if (!fs::exists(reg_path))
          throw ddcsr::InputError(reg_path.string(),
                                  "no sphere.reg: run recon with an --atlas, or ddcsr parcellate");
        const ddcsr::Mesh reg = ddcsr::read_centred_sphere(reg_path.string());
        const ddcsr::Mesh target = ddcsr::read_surface(
            (fs::path(fsavg) / (hemi == "lh" ? "sphere_left.gii.gz" : "sphere_right.gii.gz"))
                .string());
        std::vector<std::pair<std::string, std::vector<float>>> values;
        for (const std::string& name : o->maps) {  // every input read before anything is written
          const std::string path = (surf / (hemi + "." + name)).string();
          if (!fs::exists(path)) throw ddcsr::InputError(path, "no such per-vertex map");
          values.emplace_back(name, ddcsr::read_vertex_map(path));
          if (values.back().second.size() != reg.vertices.size())
            throw ddcsr::InputError(path, "holds " + std::to_string(values.back().second.size()) +
                                              " values; " + hemi + ".sphere.reg has " +
                                              std::to_string(reg.vertices.size()) + " vertices");
        }
        fs::create_directories(out);
        for (const auto& [name, v] : values) {
          const std::vector<float> r = ddcsr::resample_to_sphere(v, reg, target);
          const std::string base = (fs::path(out) / (hemi + "." + name + ".fsaverage5")).string();
          ddcsr::write_curv(r, int64_t(target.faces.size()), base);
          ddcsr::write_gifti_shape(r, hemi, name, base + ".shape.gii");
          ++written;
        }
      }
      if (written == 0) throw ddcsr::InputError(surf.string(), "no sphere.reg to resample with");
      spdlog::info("wrote {} map(s) on fsaverage5 into {}", written, out);
      return 0;
    };
  };
  return c;
}

}  // namespace

DDCSR_COMMAND(make_resample_command());
