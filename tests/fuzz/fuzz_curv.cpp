// FreeSurfer "curv" per-vertex files (lh.thickness).
#include <cmath>

#include "ddcsr/io/surface.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_scratch("lh.thickness", data, size);
  try {
    const auto values = ddcsr::read_curv(path);
    for (float v : values)
      if (!std::isfinite(v)) std::abort();
  } catch (const ddcsr::InputError&) {
  }
  return 0;
}
