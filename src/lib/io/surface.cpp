#include "ddcsr/io/surface.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "ddcsr/error.h"
#include "ddcsr/frames.h"
#include "ddcsr/io/atomic_file.h"
#include "io/surface_formats.h"

namespace fs = std::filesystem;

namespace ddcsr {

namespace {
std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}
bool ends_with(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}
}  // namespace

SurfaceFormat surface_format_from_path(const std::string& path) {
  const std::string p = lower(path);
  if (ends_with(p, ".gii") || ends_with(p, ".gii.gz")) return SurfaceFormat::Gifti;
  if (ends_with(p, ".asc")) return SurfaceFormat::FreeSurferAscii;
  return SurfaceFormat::FreeSurferBinary;
}

void guess_hemi_surface(const std::string& path, std::string& hemi, std::string& surface) {
  const std::string name = lower(fs::path(path).filename().string());
  hemi.clear();
  surface.clear();
  if (name.rfind("lh.", 0) == 0 || name.find("hemi-l_") != std::string::npos ||
      name.find("_left") != std::string::npos || name.find("left_") != std::string::npos)
    hemi = "lh";
  else if (name.rfind("rh.", 0) == 0 || name.find("hemi-r_") != std::string::npos ||
           name.find("_right") != std::string::npos || name.find("right_") != std::string::npos)
    hemi = "rh";
  for (const char* s : {"white", "pial", "midthickness", "inflated", "sphere", "smoothwm", "orig"})
    if (name.find(s) != std::string::npos) {
      surface = s;
      break;
    }
}

Mesh read_surface(const std::string& path) {
  const std::string bytes = read_file_maybe_gz(path, size_t(2) << 30);
  Mesh mesh;
  // By content first: the extension of a FreeSurfer file says nothing (lh.white).
  if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
      static_cast<unsigned char>(bytes[1]) == 0xFF)
    mesh = detail::parse_freesurfer_binary(bytes, path);
  else if (bytes.find("<GIFTI") != std::string::npos && bytes.find("<GIFTI") < 4096)
    mesh = detail::parse_gifti(bytes, path);
  else if (surface_format_from_path(path) == SurfaceFormat::FreeSurferAscii ||
           (!bytes.empty() && bytes[0] == '#'))
    mesh = detail::parse_freesurfer_ascii(bytes, path);
  else if (surface_format_from_path(path) == SurfaceFormat::Gifti)
    throw InputError(path, "not a GIFTI file (no <GIFTI> element)");
  else
    throw InputError(path, "not a recognised surface file (FreeSurfer binary/ASCII or GIFTI)");
  std::string hemi, surface;
  guess_hemi_surface(path, hemi, surface);
  if (mesh.hemi.empty()) mesh.hemi = hemi;
  if (mesh.surface.empty()) mesh.surface = surface;
  return mesh;
}

void write_surface(const Mesh& mesh, const std::string& path, const SurfaceWriteOptions& opts) {
  check_mesh(mesh, path);
  std::string bytes;
  switch (surface_format_from_path(path)) {
    case SurfaceFormat::Gifti:
      if (ends_with(lower(path), ".gz"))
        throw InputError(path, "writing gzipped GIFTI (.gii.gz) is not supported; use .gii");
      bytes = detail::serialize_gifti(mesh, opts.gifti_encoding);
      break;
    case SurfaceFormat::FreeSurferAscii:
      bytes = detail::serialize_freesurfer_ascii(mesh, fs::path(path).filename().string());
      break;
    case SurfaceFormat::FreeSurferBinary:
      bytes = detail::serialize_freesurfer_binary(mesh, opts.created_by, opts.created_time);
      break;
  }
  write_file_atomic(path, bytes);
}

namespace {
// Every vertex through one of frames.h's conversions between surface RAS and scanner RAS, with
// c_ras rounded to float as the vertices are: the sum then rounds as float arithmetic would, and
// a sphere written and read back keeps its coordinates.
void convert_vertices(Mesh& mesh, const Vec3& c_ras, Vec3 (*convert)(const Vec3&, const Vec3&)) {
  const Vec3 c{double(float(c_ras[0])), double(float(c_ras[1])), double(float(c_ras[2]))};
  for (auto& v : mesh.vertices) {
    const Vec3 p = convert({v[0], v[1], v[2]}, c);
    for (int d = 0; d < 3; ++d) v[size_t(d)] = float(p[size_t(d)]);
  }
}
}  // namespace

void write_centred_sphere(const Mesh& sphere, const VolumeGeometry& geometry,
                          const std::string& freesurfer_path) {
  Mesh out = sphere;
  out.geometry = VolumeGeometry();
  write_surface(out, freesurfer_path + ".surf.gii");
  if (geometry.valid) {  // the FreeSurfer writer subtracts c_ras
    out.geometry = geometry;
    convert_vertices(out, geometry.c_ras, surface_ras_to_scanner_ras);
  }
  write_surface(out, freesurfer_path);
}

Mesh read_centred_sphere(const std::string& path) {
  Mesh sphere = read_surface(path);
  if (sphere.geometry.valid)
    convert_vertices(sphere, sphere.geometry.c_ras, scanner_ras_to_surface_ras);
  return sphere;
}

std::vector<float> read_vertex_map(const std::string& path) {
  const std::string bytes = read_file_maybe_gz(path, size_t(1) << 30);
  if (bytes.find("<GIFTI") != std::string::npos) return detail::parse_gifti_vertex_map(bytes, path);
  return read_curv(path);
}

void write_gifti_shape(const std::vector<float>& values, const std::string& hemi,
                       const std::string& name, const std::string& path, GiftiEncoding encoding) {
  for (float v : values)
    if (!std::isfinite(v)) throw InputError(path, "per-vertex map holds NaN or infinite values");
  write_file_atomic(path, detail::serialize_gifti_vertex_map(values, hemi, name, encoding));
}

void write_gifti_labels(const Annotation& annotation, const std::string& hemi,
                        const std::string& path, GiftiEncoding encoding) {
  for (int32_t l : annotation.labels)
    if (l < -1 || l >= int32_t(annotation.names.size()))
      throw std::invalid_argument("write_gifti_labels: label out of range");
  write_file_atomic(path, detail::serialize_gifti_labels(annotation, hemi, encoding));
}

}  // namespace ddcsr
