// Fuzz inputs go through the same path-based entry points users hit, via a file in /dev/shm.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "ddcsr/error.h"

namespace fuzz {

inline std::string scratch(const std::string& name) {
  static const std::string dir = [] {
    std::string d = "/dev/shm";
    if (access(d.c_str(), W_OK) != 0) d = "/tmp";
    return d;
  }();
  return dir + "/ddcsr-fuzz-" + std::to_string(getpid()) + "-" + name;
}

inline std::string write_scratch(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = scratch(name);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  return path;
}

}  // namespace fuzz
