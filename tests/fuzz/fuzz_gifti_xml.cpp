// GIFTI XML with its base64/zlib payloads, fed as a .gii file.
#include "ddcsr/io/surface.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_scratch("x.surf.gii", data, size);
  try {
    const ddcsr::Mesh mesh = ddcsr::read_surface(path);
    if (mesh.vertices.empty() || mesh.faces.empty()) std::abort();
  } catch (const ddcsr::InputError&) {
  }
  return 0;
}
