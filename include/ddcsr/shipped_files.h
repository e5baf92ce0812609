// Where ddcsr finds the files it ships beside the executable (the SDFNet model, fsaverage5).
#pragma once
#include <string>

namespace ddcsr {

// The path of a shipped file or folder `relative` (e.g. "models/sdfnet.pt"): the environment
// variable `env_var` when set; else the first of EXE_DIR/../RELATIVE (a build tree: build/ddcsr),
// EXE_DIR/../../RELATIVE and EXE_DIR/../share/ddcsr/RELATIVE (an install prefix) where `marker`
// exists inside it (or it exists itself, for an empty marker); else the install-prefix path, so
// that the error naming it says where the file was expected.
std::string shipped_path(const std::string& executable_path, const std::string& relative,
                         const char* env_var, const std::string& marker = "");

}  // namespace ddcsr
