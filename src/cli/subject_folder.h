// What the commands that work on a finished subject folder against fsaverage5 (parcellate,
// resample) share: the folder, the hemispheres, the atlas folder.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace ddcsr::cli {

struct SubjectFolderOptions {
  std::string subject_dir, hemi = "both", fsaverage;
};

// Declares `subject`, --hemi and --fsaverage on `app`.
void add_subject_folder_options(CLI::App& app, SubjectFolderOptions& o);

// --fsaverage, or the bundled fsaverage5 beside the executable.
std::string fsaverage_dir(const SubjectFolderOptions& o);

// The hemispheres to work on: --hemi's one, or with "both" those whose SUBJECT/surf/HEMI.`probe`
// exists (a scan of one hemisphere has only its own). An explicit hemisphere is returned even
// when the file is missing, so that reading it names the file.
std::vector<std::string> subject_hemispheres(const SubjectFolderOptions& o,
                                             const std::string& probe);

}  // namespace ddcsr::cli
