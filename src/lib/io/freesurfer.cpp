// FreeSurfer triangle surfaces (binary and ASCII) and "curv" per-vertex files.
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <sstream>
#include <stdexcept>

#include "ddcsr/error.h"
#include "ddcsr/io/atomic_file.h"
#include "io/surface_formats.h"

namespace ddcsr {

namespace {

// FreeSurfer files hold surface RAS; a mesh read with a valid footer is in scanner RAS
// (frames.h: scanner RAS = surface RAS + c_ras). Without the footer the two are the same.
Vec3 file_coordinates(const std::array<float, 3>& v, const VolumeGeometry& g) {
  const Vec3 p{v[0], v[1], v[2]};
  return g.valid ? scanner_ras_to_surface_ras(p, g.c_ras) : p;
}

constexpr uint32_t kTriangleMagic = 0xFFFFFE, kNewCurvMagic = 0xFFFFFF;

class BigEndianReader {
 public:
  BigEndianReader(const std::string& bytes, const std::string& source)
      : b_(bytes), source_(source) {}
  size_t remaining() const { return b_.size() - pos_; }
  size_t position() const { return pos_; }
  void seek(size_t p) { pos_ = p; }
  uint32_t u24() {
    need(3);
    const auto* p = reinterpret_cast<const unsigned char*>(b_.data() + pos_);
    pos_ += 3;
    return (uint32_t(p[0]) << 16) | (uint32_t(p[1]) << 8) | p[2];
  }
  uint32_t u32() {
    need(4);
    const auto* p = reinterpret_cast<const unsigned char*>(b_.data() + pos_);
    pos_ += 4;
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
  }
  int32_t i32() { return static_cast<int32_t>(u32()); }
  float f32() {
    const uint32_t u = u32();
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  std::string line() {
    const size_t end = b_.find('\n', pos_);
    if (end == std::string::npos) fail("truncated header");
    std::string out = b_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return out;
  }
  [[noreturn]] void fail(const std::string& what) const { throw InputError(source_, what); }

 private:
  void need(size_t n) const {
    if (remaining() < n) fail("file is truncated");
  }
  const std::string& b_;
  const std::string& source_;
  size_t pos_ = 0;
};

void put_u32(std::string& out, uint32_t v) {
  const char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  out.append(b, 4);
}
void put_f32(std::string& out, float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  put_u32(out, u);
}

std::string format_vec(const Vec3& v) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%.10g %.10g %.10g", v[0], v[1], v[2]);
  return buf;
}

Vec3 parse_vec(const std::string& text, const std::string& key, const std::string& source) {
  std::istringstream in(text);
  Vec3 v;
  if (!(in >> v[0] >> v[1] >> v[2]) || !std::isfinite(v[0]) || !std::isfinite(v[1]) ||
      !std::isfinite(v[2]))
    throw InputError(source, "volume info field '" + key + "' is not three numbers");
  return v;
}

// The volume-geometry footer: int32 2, 0, 20, then "key = value" lines.
VolumeGeometry parse_footer(BigEndianReader& in, const std::string& source) {
  VolumeGeometry g;
  if (in.remaining() < 4) return g;
  const size_t start = in.position();
  int32_t head = in.i32();
  if (head != 20) {
    if (in.remaining() < 8) return g;
    const int32_t b = in.i32(), c = in.i32();
    if (!(head == 2 && b == 0 && c == 20)) {
      in.seek(start);
      return g;  // another tag (e.g. a command line); no geometry
    }
  }
  const char* keys[] = {"valid", "filename", "volume", "voxelsize", "xras", "yras", "zras", "cras"};
  for (const char* key : keys) {
    const std::string line = in.line();
    const auto eq = line.find('=');
    std::string k = line.substr(0, eq == std::string::npos ? 0 : eq);
    k.erase(k.find_last_not_of(" \t") + 1);
    if (eq == std::string::npos || k != key)
      throw InputError(source, std::string("volume info footer: expected '") + key + "'");
    std::string value = line.substr(eq + 1);
    if (std::strcmp(key, "valid") == 0) {
      g.valid = std::atoi(value.c_str()) == 1;
    } else if (std::strcmp(key, "filename") == 0) {
      value.erase(0, value.find_first_not_of(' '));
      g.filename = value;
    } else if (std::strcmp(key, "volume") == 0) {
      const Vec3 d = parse_vec(value, key, source);
      for (int a = 0; a < 3; ++a) {
        if (!(d[a] >= 0 && d[a] <= 1e6))
          throw InputError(source, "volume info footer: dimensions out of range");
        g.dims[a] = static_cast<int>(d[a]);
      }
    } else if (std::strcmp(key, "voxelsize") == 0) {
      g.voxel_size = parse_vec(value, key, source);
    } else if (std::strcmp(key, "xras") == 0) {
      g.x_ras = parse_vec(value, key, source);
    } else if (std::strcmp(key, "yras") == 0) {
      g.y_ras = parse_vec(value, key, source);
    } else if (std::strcmp(key, "zras") == 0) {
      g.z_ras = parse_vec(value, key, source);
    } else {
      g.c_ras = parse_vec(value, key, source);
    }
  }
  return g;
}

// The time for the stamp when none is given: SOURCE_DATE_EPOCH when set (the reproducible-builds
// convention, so a pipeline can make byte-identical outputs on demand), else now.
std::time_t default_stamp_time() {
  if (const char* env = std::getenv("SOURCE_DATE_EPOCH"); env && *env) {
    char* end = nullptr;
    errno = 0;
    const long long t = std::strtoll(env, &end, 10);
    if (errno == 0 && *end == '\0' && t >= 0) return static_cast<std::time_t>(t);
  }
  return std::time(nullptr);
}

std::string stamp(const std::string& created_by, int64_t created_time) {
  const std::time_t now =
      created_time >= 0 ? static_cast<std::time_t>(created_time) : default_stamp_time();
  char date[64];
  std::strftime(date, sizeof date, "%a %b %d %H:%M:%S %Y", std::gmtime(&now));
  return "created by " + created_by + " on " + date;
}

}  // namespace

namespace detail {

Mesh parse_freesurfer_binary(const std::string& bytes, const std::string& source) {
  BigEndianReader in(bytes, source);
  const uint32_t magic = in.u24();
  if (magic != kTriangleMagic) {
    if (magic == kNewCurvMagic) in.fail("is a FreeSurfer per-vertex (curv) file, not a surface");
    in.fail("not a FreeSurfer triangle surface (bad magic number)");
  }
  in.line();  // "created by ..."
  in.line();  // empty line
  const int32_t nvert = in.i32(), nface = in.i32();
  if (nvert <= 0 || nface <= 0)
    in.fail("surface has " + std::to_string(nvert) + " vertices and " + std::to_string(nface) +
            " faces");
  // Refuse counts the file cannot hold before allocating anything.
  if (static_cast<uint64_t>(nvert) * 12 + static_cast<uint64_t>(nface) * 12 > in.remaining())
    in.fail("header claims " + std::to_string(nvert) + " vertices and " + std::to_string(nface) +
            " faces, more than the file holds (truncated?)");
  Mesh mesh;
  mesh.vertices.resize(nvert);
  for (auto& v : mesh.vertices)
    for (auto& c : v) c = in.f32();
  mesh.faces.resize(nface);
  for (auto& f : mesh.faces)
    for (auto& v : f) v = in.i32();
  mesh.geometry = parse_footer(in, source);
  if (mesh.geometry.valid)
    for (auto& v : mesh.vertices) {
      const Vec3 p = surface_ras_to_scanner_ras({v[0], v[1], v[2]}, mesh.geometry.c_ras);
      for (int a = 0; a < 3; ++a) v[a] = static_cast<float>(p[a]);
    }
  check_mesh(mesh, source);
  return mesh;
}

std::string serialize_freesurfer_binary(const Mesh& mesh, const std::string& created_by,
                                        int64_t created_time) {
  std::string out;
  out.reserve(64 + mesh.vertices.size() * 12 + mesh.faces.size() * 12 + 512);
  out += "\xFF\xFF\xFE";
  out += stamp(created_by, created_time) + "\n\n";
  put_u32(out, static_cast<uint32_t>(mesh.vertices.size()));
  put_u32(out, static_cast<uint32_t>(mesh.faces.size()));
  const VolumeGeometry& g = mesh.geometry;
  for (const auto& v : mesh.vertices) {
    const Vec3 p = file_coordinates(v, g);
    for (int a = 0; a < 3; ++a) put_f32(out, static_cast<float>(p[a]));
  }
  for (const auto& f : mesh.faces)
    for (int32_t v : f) put_u32(out, static_cast<uint32_t>(v));
  if (g.valid) {
    put_u32(out, 2);
    put_u32(out, 0);
    put_u32(out, 20);
    out += "valid = 1  # volume info valid\n";
    out += "filename = " + g.filename + "\n";
    out += "volume = " + std::to_string(g.dims[0]) + " " + std::to_string(g.dims[1]) + " " +
           std::to_string(g.dims[2]) + "\n";
    out += "voxelsize = " + format_vec(g.voxel_size) + "\n";
    out += "xras   = " + format_vec(g.x_ras) + "\n";
    out += "yras   = " + format_vec(g.y_ras) + "\n";
    out += "zras   = " + format_vec(g.z_ras) + "\n";
    out += "cras   = " + format_vec(g.c_ras) + "\n";
  }
  return out;
}

Mesh parse_freesurfer_ascii(const std::string& text, const std::string& source) {
  std::istringstream in(text);
  std::string line;
  // Comment lines start with '#'.
  std::streampos data_start = 0;
  while (in.peek() == '#') {
    std::getline(in, line);
    data_start = in.tellg();
  }
  (void)data_start;
  long long nvert = -1, nface = -1;
  if (!(in >> nvert >> nface) || nvert <= 0 || nface <= 0)
    throw InputError(source, "ASCII surface: bad vertex/face counts");
  // Each vertex line holds at least 4 numbers: refuse counts the text cannot hold.
  if (static_cast<unsigned long long>(nvert + nface) * 8 > text.size())
    throw InputError(source, "ASCII surface: counts larger than the file (truncated?)");
  Mesh mesh;
  mesh.vertices.resize(nvert);
  for (auto& v : mesh.vertices) {
    double x, y, z, flag;
    if (!(in >> x >> y >> z >> flag))
      throw InputError(source, "ASCII surface: truncated or non-numeric vertex list");
    v = {static_cast<float>(x), static_cast<float>(y), static_cast<float>(z)};
  }
  mesh.faces.resize(nface);
  for (auto& f : mesh.faces) {
    long long a, b, c, flag;
    if (!(in >> a >> b >> c >> flag))
      throw InputError(source, "ASCII surface: truncated or non-numeric face list");
    auto in_range = [&](long long i) { return i >= 0 && i < nvert; };
    if (!in_range(a) || !in_range(b) || !in_range(c))
      throw InputError(source, "ASCII surface: face index out of range");
    f = {static_cast<int32_t>(a), static_cast<int32_t>(b), static_cast<int32_t>(c)};
  }
  check_mesh(mesh, source);
  return mesh;
}

std::string serialize_freesurfer_ascii(const Mesh& mesh, const std::string& source_name) {
  std::string out = "#!ascii version of " + source_name + "\n";
  out += std::to_string(mesh.vertices.size()) + " " + std::to_string(mesh.faces.size()) + "\n";
  const VolumeGeometry& g = mesh.geometry;
  char buf[128];
  for (const auto& v : mesh.vertices) {
    const Vec3 p = file_coordinates(v, g);
    std::snprintf(buf, sizeof buf, "%.6f  %.6f  %.6f  0\n", p[0], p[1], p[2]);
    out += buf;
  }
  for (const auto& f : mesh.faces) {
    std::snprintf(buf, sizeof buf, "%d %d %d 0\n", f[0], f[1], f[2]);
    out += buf;
  }
  return out;
}

}  // namespace detail

std::vector<float> read_curv(const std::string& path) {
  const std::string bytes = read_file_maybe_gz(path, size_t(1) << 30);
  BigEndianReader in(bytes, path);
  if (in.u24() != kNewCurvMagic) in.fail("not a FreeSurfer curv file (bad magic number)");
  const int32_t nvert = in.i32();
  in.i32();  // faces
  const int32_t per_vertex = in.i32();
  if (nvert <= 0) in.fail("curv file has no vertices");
  if (per_vertex != 1)
    in.fail("curv file has " + std::to_string(per_vertex) + " values per vertex; expected 1");
  if (static_cast<uint64_t>(nvert) * 4 > in.remaining()) in.fail("curv file is truncated");
  std::vector<float> values(nvert);
  for (auto& v : values) {
    v = in.f32();
    if (!std::isfinite(v)) in.fail("curv file contains NaN or infinite values");
  }
  return values;
}

void write_curv(const std::vector<float>& values, int64_t num_faces, const std::string& path) {
  std::string out = "\xFF\xFF\xFF";
  put_u32(out, static_cast<uint32_t>(values.size()));
  put_u32(out, static_cast<uint32_t>(num_faces));
  put_u32(out, 1);
  for (float v : values) put_f32(out, v);
  write_file_atomic(path, out);
}

void write_label(const Mesh& mesh, const std::vector<int64_t>& vertices, const std::string& path) {
  const VolumeGeometry& g = mesh.geometry;
  std::string out =
      "#!ascii label, from ddcsr, vox2ras=TkReg\n" + std::to_string(vertices.size()) + "\n";
  char line[160];
  for (int64_t v : vertices) {
    if (v < 0 || size_t(v) >= mesh.vertices.size())
      throw std::out_of_range("write_label: vertex " + std::to_string(v) + " not in the mesh");
    const auto& p = mesh.vertices[size_t(v)];
    const Vec3 xyz = file_coordinates(p, g);
    std::snprintf(line, sizeof line, "%lld  %.3f  %.3f  %.3f 0.0000000000\n",
                  static_cast<long long>(v), xyz[0], xyz[1], xyz[2]);
    out += line;
  }
  write_file_atomic(path, out);
}

namespace {
int32_t annot_value(const std::array<uint8_t, 3>& c) {
  return int32_t(c[0]) | (int32_t(c[1]) << 8) | (int32_t(c[2]) << 16);
}
}  // namespace

Annotation read_annot(const std::string& path) {
  const std::string bytes = read_file_maybe_gz(path, size_t(1) << 30);
  BigEndianReader in(bytes, path);
  const int32_t n = in.i32();
  if (n <= 0 || uint64_t(n) * 8 > in.remaining())
    in.fail("not a FreeSurfer annot file (bad vertex count)");
  std::vector<int32_t> value(size_t(n), 0);
  for (int32_t k = 0; k < n; ++k) {
    const int32_t v = in.i32();
    if (v < 0 || v >= n) in.fail("annot vertex index " + std::to_string(v) + " out of range");
    value[size_t(v)] = in.i32();
  }
  Annotation a;
  a.labels.assign(size_t(n), -1);
  if (in.remaining() < 4 || in.i32() != 1) return a;  // no colour table: every vertex unlabelled
  const int32_t version = in.i32();
  if (version != -2)
    in.fail("annot colour table version " + std::to_string(version) + " (expected 2)");
  const int32_t max_index = in.i32();
  const int32_t name_len = in.i32();
  if (name_len < 0 || size_t(name_len) > in.remaining()) in.fail("annot colour table is truncated");
  in.seek(in.position() + size_t(name_len));
  const int32_t entries = in.i32();
  if (entries < 0 || max_index < 0 || entries > 100000)
    in.fail("annot colour table has a bad size");
  std::vector<int32_t> structure;
  for (int32_t e = 0; e < entries; ++e) {
    structure.push_back(in.i32());
    const int32_t len = in.i32();
    if (len < 0 || size_t(len) > in.remaining()) in.fail("annot colour table is truncated");
    std::string name(bytes.data() + in.position(), size_t(len));
    in.seek(in.position() + size_t(len));
    name = name.substr(0, name.find('\0'));
    std::array<uint8_t, 3> rgb;
    for (auto& c : rgb) c = uint8_t(in.i32());
    in.i32();  // transparency
    a.names.push_back(name);
    a.colours.push_back(rgb);
  }
  std::map<int32_t, int32_t> by_value;
  for (size_t e = 0; e < a.colours.size(); ++e)
    by_value.emplace(annot_value(a.colours[e]), int32_t(e));
  for (size_t v = 0; v < value.size(); ++v)
    if (auto it = by_value.find(value[v]); it != by_value.end()) a.labels[v] = it->second;
  return a;
}

void write_annot(const Annotation& a, const std::string& path) {
  if (a.names.size() != a.colours.size())
    throw std::invalid_argument("write_annot: one colour per region name");
  std::string out;
  put_u32(out, uint32_t(a.labels.size()));
  for (size_t v = 0; v < a.labels.size(); ++v) {
    const int32_t k = a.labels[v];
    if (k >= int32_t(a.names.size()))
      throw std::invalid_argument("write_annot: label out of range");
    put_u32(out, uint32_t(v));
    put_u32(out, uint32_t(k < 0 ? 0 : annot_value(a.colours[size_t(k)])));
  }
  put_u32(out, 1);
  put_u32(out, uint32_t(-2));
  put_u32(out, uint32_t(a.names.size()));
  const std::string table = "ddcsr";
  put_u32(out, uint32_t(table.size() + 1));
  out += table;
  out.push_back('\0');
  put_u32(out, uint32_t(a.names.size()));
  for (size_t e = 0; e < a.names.size(); ++e) {
    put_u32(out, uint32_t(e));
    put_u32(out, uint32_t(a.names[e].size() + 1));
    out += a.names[e];
    out.push_back('\0');
    for (uint8_t c : a.colours[e]) put_u32(out, c);
    put_u32(out, 0);
  }
  write_file_atomic(path, out);
}

}  // namespace ddcsr
