#include "cli/subject_folder.h"

#include <filesystem>

#include "ddcsr/parcellation/parcellation.h"

namespace fs = std::filesystem;

namespace ddcsr::cli {

void add_subject_folder_options(CLI::App& app, SubjectFolderOptions& o) {
  app.add_option("subject", o.subject_dir, "Subject folder (recon's output)")->required();
  app.add_option("--hemi", o.hemi, "lh, rh or both")
      ->check(CLI::IsMember({"lh", "rh", "both"}))
      ->capture_default_str();
  app.add_option("--fsaverage", o.fsaverage,
                 "fsaverage5 folder (default: the bundled data/fsaverage5)");
}

std::string fsaverage_dir(const SubjectFolderOptions& o) {
  return o.fsaverage.empty() ? default_fsaverage_dir("/proc/self/exe") : o.fsaverage;
}

std::vector<std::string> subject_hemispheres(const SubjectFolderOptions& o,
                                             const std::string& probe) {
  if (o.hemi != "both") return {o.hemi};
  std::vector<std::string> out;
  for (const std::string hemi : {"lh", "rh"})
    if (fs::exists(fs::path(o.subject_dir) / "surf" / (hemi + "." + probe))) out.push_back(hemi);
  return out;
}

}  // namespace ddcsr::cli
