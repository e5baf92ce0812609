// Where ddcsr finds the files it ships (see shipped_files.h).
#include "ddcsr/shipped_files.h"

#include <cstdlib>
#include <filesystem>

namespace fs = std::filesystem;

namespace ddcsr {

std::string shipped_path(const std::string& executable_path, const std::string& relative,
                         const char* env_var, const std::string& marker) {
  if (const char* env = std::getenv(env_var); env && *env) return env;
  std::error_code ec;
  fs::path exe = fs::canonical(executable_path, ec);
  if (ec) exe = fs::canonical("/proc/self/exe", ec);
  const fs::path dir = exe.parent_path();
  const fs::path installed = dir / ".." / "share" / "ddcsr" / relative;
  for (const fs::path& candidate : {dir / ".." / relative, dir / ".." / ".." / relative, installed})
    if (fs::exists(marker.empty() ? candidate : candidate / marker, ec))
      return fs::weakly_canonical(candidate, ec).string();
  return installed.lexically_normal().string();
}

}  // namespace ddcsr
