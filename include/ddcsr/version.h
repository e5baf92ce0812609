// The program's version and the source commit it was built from (`git describe --always
// --dirty`, taken at every build; "unknown" outside a git checkout).
#pragma once

namespace ddcsr {
extern const char* const kVersion;
extern const char* const kGitDescribe;
}  // namespace ddcsr
