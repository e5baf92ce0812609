// One hemisphere's registration, labels, statistics and their files.
#include <cstdio>
#include <filesystem>

#include "ddcsr/error.h"
#include "ddcsr/io/atomic_file.h"
#include "ddcsr/io/nifti.h"
#include "ddcsr/parcellation/parcellation.h"
#include "ddcsr/shipped_files.h"

namespace fs = std::filesystem;

namespace ddcsr {

std::string default_fsaverage_dir(const std::string& executable_path) {
  return shipped_path(executable_path, "data/fsaverage5", "DDCSR_FSAVERAGE", "sphere_left.gii.gz");
}

HemisphereParcellation parcellate_hemisphere(const std::string& hemi, const Mesh& white,
                                             const Mesh& sphere, const std::vector<float>& sulc,
                                             const std::vector<float>& curv,
                                             const std::string& fsaverage_dir,
                                             const std::vector<std::string>& atlases) {
  // Read every atlas first: a missing file fails before the registration's seconds are spent.
  std::vector<std::pair<std::string, Annotation>> atlas_labels;
  for (const std::string& name : atlases) {
    const std::string path =
        (fs::path(fsaverage_dir) / "label" / (hemi + "." + name + ".annot")).string();
    if (!fs::exists(path)) throw InputError(path, "no such atlas annotation");
    atlas_labels.emplace_back(name, read_annot(path));
  }
  const SphericalAtlas atlas = load_spherical_atlas(fsaverage_dir, hemi);
  for (const auto& [name, a] : atlas_labels)
    if (a.labels.size() != atlas.white.vertices.size())
      throw InputError(name, "atlas annotation is not on the fsaverage5 mesh");
  HemisphereParcellation out;
  out.correspondence = register_to_atlas(white, sphere, sulc, curv, atlas);
  for (const auto& [name, a] : atlas_labels)
    out.annotations.emplace_back(name, transfer_annotation(a, out.correspondence));
  return out;
}

const std::string& region_stats_header() {
  static const std::string header =
      "region\tvertices\twhite_area_mm2\tpial_area_mm2\tgrey_volume_mm3\tthickness_mean_mm\t"
      "thickness_sd_mm";
  return header;
}

void write_parcellation(const HemisphereParcellation& p, const std::string& hemi, const Mesh& white,
                        const Mesh& pial, const std::vector<float>& thickness,
                        const VolumeGeometry& geometry, const std::string& subject_dir) {
  const fs::path root(subject_dir);
  fs::create_directories(root / "surf");
  fs::create_directories(root / "label");
  fs::create_directories(root / "stats");
  Mesh reg = p.correspondence.sphere_reg;
  reg.hemi = hemi;
  write_centred_sphere(reg, geometry, (root / "surf" / (hemi + ".sphere.reg")).string());
  for (const auto& [name, labels] : p.annotations) {
    write_annot(labels, (root / "label" / (hemi + "." + name + ".annot")).string());
    write_gifti_labels(labels, hemi,
                       (root / "label" / (hemi + "." + name + ".label.gii")).string());
    std::string tsv = region_stats_header() + "\n";
    for (const RegionStats& s : region_stats(labels, white, pial, thickness)) {
      char line[512];
      std::snprintf(line, sizeof line, "%s\t%lld\t%.1f\t%.1f\t%.1f\t%.3f\t%.3f\n", s.name.c_str(),
                    static_cast<long long>(s.vertices), s.white_area_mm2, s.pial_area_mm2,
                    s.grey_volume_mm3, s.thickness_mean_mm, s.thickness_sd_mm);
      tsv += line;
    }
    write_file_atomic((root / "stats" / (hemi + "." + name + ".tsv")).string(), tsv);
  }
}

void write_ribbon_labels(const std::vector<RibbonHemisphere>& hemispheres, const std::string& atlas,
                         const VolumeGeometry& geometry, const std::string& subject_dir) {
  if (!geometry.valid)
    throw InputError(subject_dir, "the surfaces carry no volume geometry: no grid for the ribbon");
  const fs::path label = fs::path(subject_dir) / "label";
  fs::create_directories(label);
  const Volume grid(
      {int64_t(geometry.dims[0]), int64_t(geometry.dims[1]), int64_t(geometry.dims[2])}, 1,
      geometry.vox2ras(), 0.f);
  VolumeWriteOptions as_labels;
  as_labels.type = VolumeWriteOptions::Type::Int16;
  as_labels.int16_slope = 1.0;
  write_volume(label_ribbon(grid, hemispheres, atlas),
               (label / (atlas + ".ribbon.nii.gz")).string(), as_labels);
  write_file_atomic((label / (atlas + ".ribbon_lut.txt")).string(),
                    ribbon_colour_table(hemispheres, atlas));
}

}  // namespace ddcsr
