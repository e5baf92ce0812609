// ddcsr surfaces: DiffCoSeg alone, on signed distance maps already made (recon --save-sdf,
// simulate's truth, another method's), so that the explicit stage can be re-run with other
// options without the network, and measured apart from it on exact maps.
#include <spdlog/spdlog.h>

#include <array>
#include <filesystem>
#include <memory>
#include <vector>

#include "cli/command.h"
#include "cli/progress.h"
#include "ddcsr/diffcoseg/diffcoseg.h"
#include "ddcsr/error.h"
#include "ddcsr/frames.h"
#include "ddcsr/io/nifti.h"
#include "ddcsr/io/surface.h"
#include "ddcsr/threads.h"

namespace fs = std::filesystem;

namespace {

struct SurfacesOptions {
  std::string sdf_dir, output, hemi = "both";
  ddcsr::DiffCoSegOptions diffcoseg;
};

// Writes one hemisphere's surfaces and thickness; returns whether every guarantee held.
bool write_hemisphere(ddcsr::HemisphereSurfaces& h, const ddcsr::VolumeGeometry& geometry,
                      const fs::path& surf) {
  for (auto [mesh, name] : {std::pair{&h.white, "white"}, std::pair{&h.pial, "pial"}}) {
    mesh->geometry = geometry;
    mesh->hemi = h.hemi;
    mesh->surface = name;
    const std::string base = (surf / (h.hemi + "." + name)).string();
    ddcsr::write_surface(*mesh, base);
    ddcsr::write_surface(*mesh, base + ".surf.gii");
  }
  ddcsr::write_curv(h.thickness, static_cast<int64_t>(h.white.faces.size()),
                    (surf / (h.hemi + ".thickness")).string());
  double mean_thickness = 0;
  for (float t : h.thickness) mean_thickness += t;
  if (!h.thickness.empty()) mean_thickness /= static_cast<double>(h.thickness.size());
  spdlog::info(
      "{}: {} vertices; white {:.1f} s, pial {:.1f} s; mean thickness {:.2f} mm; pial stopped "
      "at closed sulci {}, pial repair {} vertices, white repair {} vertices",
      h.hemi, h.white.vertices.size(), h.seconds_white, h.seconds_pial, mean_thickness,
      h.pial_sulcus_stops, h.pial_check.repaired_vertices, h.white_check.repaired_vertices);
  for (const auto& p : h.problems) spdlog::error("{}: {}", h.hemi, p);
  return h.ok();
}

ddcsr::cli::Command make_surfaces_command() {
  ddcsr::cli::Command c;
  c.name = "surfaces";
  c.synopsis = "DiffCoSeg alone: white and pial surfaces from a folder of signed distance maps";
  c.description =
      "Reads SDF_DIR/{lh,rh}.{white,pial}.nii.gz (mm, negative inside, any grid), as written by\n"
      "recon --save-sdf or simulate, and runs recon's explicit stage on them: a genus-0 template\n"
      "deformed to the white map, then inflated to the pial map. Writes OUT/surf/{lh,rh}.{white,\n"
      "pial} (FreeSurfer binary, with the volume geometry of the white map), the same as\n"
      ".surf.gii (scanner RAS), and OUT/surf/{lh,rh}.thickness. recon's saved maps are exact\n"
      "distances already; other maps should be too (far from the surface the flows follow their\n"
      "gradient). On simulate's truth maps this measures what the explicit stage loses by\n"
      "itself (bench/diffcoseg_floor.py).\n"
      "Exit code 3 when a surface fails a guarantee (closed, genus 0, no self-intersection, white\n"
      "inside pial): the surfaces are written anyway and every failure is printed.";
  c.references = {
      "Li, Chen, Sochen, Zhang, Westin, Rathi, O'Donnell, Pasternak, Zhang (2025). DDCSR: "
      "diffusion-MRI-based cortical surface reconstruction."};
  c.order = 35;
  c.setup = [](CLI::App& app) {
    auto o = std::make_shared<SurfacesOptions>();
    ddcsr::DiffCoSegOptions& d = o->diffcoseg;
    app.add_option("sdf_dir", o->sdf_dir, "Folder with {lh,rh}.{white,pial}.nii.gz")->required();
    app.add_option("-o,--output", o->output, "Output folder (surfaces go to OUT/surf)")->required();
    app.add_option("--hemi", o->hemi, "lh, rh or both")
        ->check(CLI::IsMember({"lh", "rh", "both"}))
        ->capture_default_str();
    app.add_option("--vertices", d.target_vertices, "Target vertices per surface")
        ->check(CLI::Range(int64_t(2000), int64_t(1000000)))
        ->capture_default_str();
    app.add_option("--level-time", d.level_time,
                   "White flow: integration time per smoothing level (longer follows the map "
                   "deeper into sulci, and slower)")
        ->check(CLI::Range(0.5, 50.0))
        ->capture_default_str();
    app.add_option("--final-time", d.final_time,
                   "White flow: integration time on the unsmoothed map after refinement")
        ->check(CLI::Range(0.0, 20.0))
        ->capture_default_str();
    app.add_option("--growth-neck", d.growth_neck_mm,
                   "White flow: growth does not pass necks thinner than twice this (mm)")
        ->check(CLI::Range(0.05, 5.0))
        ->capture_default_str();
    app.add_option("--max-thickness", d.max_thickness_mm, "Pial: longest walk out of white (mm)")
        ->check(CLI::Range(0.5, 20.0))
        ->capture_default_str();
    return [o]() -> int {
      const std::vector<std::string> hemis = o->hemi == "both"
                                                 ? std::vector<std::string>{"lh", "rh"}
                                                 : std::vector<std::string>{o->hemi};
      auto path_of = [&](const std::string& name) {
        return (fs::path(o->sdf_dir) / (name + ".nii.gz")).string();
      };
      // Every map is read before the minutes of work, so a missing one fails at once.
      std::vector<std::array<ddcsr::Volume, 2>> maps;
      for (const std::string& hemi : hemis)
        maps.push_back({ddcsr::read_volume(path_of(hemi + ".white")),
                        ddcsr::read_volume(path_of(hemi + ".pial"))});
      const fs::path surf = fs::path(o->output) / "surf";
      std::error_code ec;
      fs::create_directories(surf, ec);
      if (ec) throw ddcsr::InputError(surf.string(), "cannot create the folder: " + ec.message());

      ddcsr::cli::ProgressBar bar("DiffCoSeg");
      auto progress = [&](double f) { bar.update(f); };
      std::vector<ddcsr::HemisphereSurfaces> results;
      // Both hemispheres side by side when there are cores for it, as recon does.
      if (hemis.size() == 2 && ddcsr::thread_count() > 1) {
        auto both = ddcsr::reconstruct_hemispheres(maps[0][0], maps[0][1], maps[1][0], maps[1][1],
                                                   o->diffcoseg, progress);
        for (auto& h : both) results.push_back(std::move(h));
      } else {
        for (size_t h = 0; h < hemis.size(); ++h)
          results.push_back(
              ddcsr::reconstruct_hemisphere(maps[h][0], maps[h][1], hemis[h], o->diffcoseg,
                                            [&](double f) { bar.update((h + f) / hemis.size()); }));
      }
      bar.done();
      bool all_ok = true;
      for (size_t h = 0; h < results.size(); ++h) {
        const ddcsr::VolumeGeometry geometry = ddcsr::volume_geometry_of(
            maps[h][0], fs::path(path_of(hemis[h] + ".white")).filename().string());
        all_ok = write_hemisphere(results[h], geometry, surf) && all_ok;
      }
      spdlog::info("surfaces in {}", surf.string());
      return all_ok ? 0 : 3;
    };
  };
  return c;
}

}  // namespace

DDCSR_COMMAND(make_surfaces_command());
