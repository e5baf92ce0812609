// Errors that map onto the command's exit codes.
#pragma once
#include <stdexcept>
#include <string>

namespace ddcsr {

// Bad input data (exit code 3). The message names the file and the fault on one line.
class InputError : public std::runtime_error {
 public:
  InputError(const std::string& path, const std::string& problem)
      : std::runtime_error(path.empty() ? problem : path + ": " + problem), path_(path) {}
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Options that contradict each other or name nothing usable (exit code 2).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum ExitCode : int { kExitOk = 0, kExitInternal = 1, kExitUsage = 2, kExitBadInput = 3 };

}  // namespace ddcsr
