// File checksums for provenance (the model file a reconstruction used).
#pragma once
#include <string>

namespace ddcsr {
// SHA-256 of a file's bytes as 64 lowercase hex digits; InputError when unreadable.
std::string sha256_file(const std::string& path);
std::string sha256(const std::string& bytes);
}  // namespace ddcsr
