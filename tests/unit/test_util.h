// Helpers shared by the unit tests.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>

namespace ddcsr::test {

// An empty folder <tmp>/ddcsr_test_<suite>_<pid>/<name>: per process, so parallel ctest runs of
// the same binary never share one.
inline std::string fresh_dir(const std::string& suite, const std::string& name = "") {
  namespace fs = std::filesystem;
  const fs::path p =
      fs::temp_directory_path() / ("ddcsr_test_" + suite + "_" + std::to_string(::getpid())) / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

}  // namespace ddcsr::test
