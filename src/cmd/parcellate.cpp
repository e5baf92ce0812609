// ddcsr parcellate: registration to fsaverage and cortical labels for a finished subject folder
// (recon's, or any with FreeSurfer-named surf/ files), e.g. to add an atlas afterwards.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <memory>
#include <sstream>

#include "cli/command.h"
#include "cli/subject_folder.h"
#include "ddcsr/error.h"
#include "ddcsr/io/surface.h"
#include "ddcsr/parcellation/parcellation.h"

namespace fs = std::filesystem;

namespace {

struct ParcellateOptions : ddcsr::cli::SubjectFolderOptions {
  std::string atlases = "aparc";
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

ddcsr::cli::Command make_parcellate_command() {
  ddcsr::cli::Command c;
  c.name = "parcellate";
  c.synopsis = "Register a subject's spheres to fsaverage and label its cortex by atlases";
  c.description =
      "Reads SUBJECT/surf/{lh,rh}.{white,pial,sphere,sulc,curv,thickness} (as recon writes them)\n"
      "and writes SUBJECT/surf/{lh,rh}.sphere.reg (+ .surf.gii; FreeSurfer's fsaverage5 sphere\n"
      "coordinates), label/{lh,rh}.ATLAS.annot and stats/{lh,rh}.ATLAS.tsv (per region:\n"
      "vertices, white and pial area, grey-matter volume, thickness mean and SD) for each atlas.\n"
      "Atlases: the annotations in the fsaverage5 folder's label/ (bundled: aparc = Desikan-\n"
      "Killiany, aparc.a2009s = Destrieux). The registration aligns sulcal depth, then mean\n"
      "curvature, coarse to fine (ddcsr/parcellation/parcellation.h).";
  c.references = {
      "Fischl, Sereno, Tootell, Dale (1999). High-resolution intersubject averaging and a "
      "coordinate system for the cortical surface. Human Brain Mapping 8.",
      "Desikan et al. (2006). An automated labeling system for subdividing the human cerebral "
      "cortex on MRI scans into gyral based regions of interest. NeuroImage 31.",
      "Destrieux, Fischl, Dale, Halgren (2010). Automatic parcellation of human cortical gyri and "
      "sulci using standard anatomical nomenclature. NeuroImage 53."};
  c.order = 48;
  c.setup = [](CLI::App& app) {
    auto o = std::make_shared<ParcellateOptions>();
    ddcsr::cli::add_subject_folder_options(app, *o);
    app.add_option("--atlas", o->atlases, "Comma-separated atlases")->capture_default_str();
    return [o]() -> int {
      const std::string fsavg = ddcsr::cli::fsaverage_dir(*o);
      const std::vector<std::string> atlases = split_list(o->atlases);
      if (atlases.empty()) throw ddcsr::UsageError("--atlas: give at least one atlas");
      const fs::path surf = fs::path(o->subject_dir) / "surf";
      // Kept for the ribbon, which labels both hemispheres in one volume.
      std::vector<ddcsr::Mesh> whites, pials;
      std::vector<std::string> hemis;
      std::vector<std::vector<std::pair<std::string, ddcsr::Annotation>>> labels;
      for (const std::string& hemi : ddcsr::cli::subject_hemispheres(*o, "white")) {
        const ddcsr::Mesh white = ddcsr::read_surface((surf / (hemi + ".white")).string());
        const ddcsr::Mesh pial = ddcsr::read_surface((surf / (hemi + ".pial")).string());
        // The sphere as FreeSurfer stores it, centred at surface RAS 0.
        const ddcsr::Mesh sphere = ddcsr::read_centred_sphere((surf / (hemi + ".sphere")).string());
        const std::vector<float> sulc = ddcsr::read_curv((surf / (hemi + ".sulc")).string());
        const std::vector<float> curv = ddcsr::read_curv((surf / (hemi + ".curv")).string());
        const std::vector<float> thickness =
            ddcsr::read_curv((surf / (hemi + ".thickness")).string());
        for (const auto& [what, n] : {std::pair<std::string, size_t>{"pial", pial.vertices.size()},
                                      {"sphere", sphere.vertices.size()},
                                      {"sulc", sulc.size()},
                                      {"curv", curv.size()},
                                      {"thickness", thickness.size()}})
          if (n != white.vertices.size())
            throw ddcsr::InputError((surf / (hemi + "." + what)).string(),
                                    "holds " + std::to_string(n) + " vertices, " + hemi +
                                        ".white " + std::to_string(white.vertices.size()));
        const ddcsr::HemisphereParcellation p =
            ddcsr::parcellate_hemisphere(hemi, white, sphere, sulc, curv, fsavg, atlases);
        ddcsr::write_parcellation(p, hemi, white, pial, thickness, white.geometry, o->subject_dir);
        spdlog::info(
            "{}: registered to fsaverage5 (sulcal depth r {:.2f} after rotation, final "
            "r {:.2f}, {} atlas faces folded); wrote label/{}.{{{}}}.annot",
            hemi, p.correspondence.rigid_correlation, p.correspondence.final_correlation,
            p.correspondence.folded_atlas_faces, hemi, o->atlases);
        hemis.push_back(hemi);
        whites.push_back(white);
        pials.push_back(pial);
        labels.push_back(p.annotations);
      }
      for (const std::string& atlas : atlases) {
        std::vector<ddcsr::RibbonHemisphere> ribbon;
        for (size_t i = 0; i < hemis.size(); ++i)
          for (const auto& [name, l] : labels[i])
            if (name == atlas) ribbon.push_back({hemis[i], &whites[i], &pials[i], &l});
        if (ribbon.empty()) continue;
        ddcsr::write_ribbon_labels(ribbon, atlas, whites.front().geometry, o->subject_dir);
        spdlog::info("wrote label/{}.ribbon.nii.gz and its colour table", atlas);
      }
      return 0;
    };
  };
  return c;
}

}  // namespace

DDCSR_COMMAND(make_parcellate_command());
