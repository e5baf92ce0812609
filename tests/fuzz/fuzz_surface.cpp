// Any surface file (FreeSurfer binary/ASCII, GIFTI in every encoding, gzipped): what parses must
// be a valid mesh and survive a write/read round trip in every format.
#include <algorithm>
#include <cmath>

#include "ddcsr/io/surface.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The name decides only the fallback format; content decides the reader.
  const char* names[] = {"lh.white", "lh.white.gii", "lh.white.asc"};
  const std::string path = fuzz::write_scratch(names[size % 3], data, size);
  ddcsr::Mesh mesh;
  try {
    mesh = ddcsr::read_surface(path);
  } catch (const ddcsr::InputError&) {
    return 0;
  }
  for (const auto& f : mesh.faces)
    for (int v : f)
      if (v < 0 || static_cast<size_t>(v) >= mesh.vertices.size()) std::abort();
  if (mesh.vertices.size() > 5000) return 0;  // round trips of big meshes only slow the fuzzer down
  // Coordinates near float's limit cannot survive the shift into surface RAS and back.
  double scale = 1;
  for (const auto& v : mesh.vertices)
    for (int a = 0; a < 3; ++a)
      scale = std::max(scale, std::abs(double(v[a])) + std::abs(mesh.geometry.c_ras[a]));
  if (scale > 1e30) return 0;
  for (const char* out : {"rt.white", "rt.surf.gii"}) {
    const std::string p = fuzz::scratch(out);
    ddcsr::write_surface(mesh, p);
    const ddcsr::Mesh back = ddcsr::read_surface(p);
    if (back.faces != mesh.faces || back.vertices.size() != mesh.vertices.size()) std::abort();
    for (size_t i = 0; i < mesh.vertices.size(); ++i)
      for (int a = 0; a < 3; ++a)
        if (std::abs(back.vertices[i][a] - mesh.vertices[i][a]) > 1e-6 * scale) std::abort();
  }
  return 0;
}
