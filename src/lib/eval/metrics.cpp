#include "ddcsr/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <sstream>

#include "ddcsr/error.h"
#include "ddcsr/geometry/mesh_checks.h"
#include "ddcsr/geometry/mesh_distance.h"
#include "ddcsr/io/surface.h"
#include "ddcsr/threads.h"
#include "ddcsr/volume.h"

namespace ddcsr {

namespace {

// SplitMix64: a counter-based generator, so sample i can be drawn by any thread.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
inline double unit_double(uint64_t bits) { return double(bits >> 11) * 0x1.0p-53; }  // [0, 1)

Vec3 vertex(const Mesh& m, int32_t i) {
  const auto& v = m.vertices[i];
  return {v[0], v[1], v[2]};
}

double triangle_area(const Vec3& a, const Vec3& b, const Vec3& c) {
  const Vec3 u{b[0] - a[0], b[1] - a[1], b[2] - a[2]}, w{c[0] - a[0], c[1] - a[1], c[2] - a[2]};
  const Vec3 x{u[1] * w[2] - u[2] * w[1], u[2] * w[0] - u[0] * w[2], u[0] * w[1] - u[1] * w[0]};
  return 0.5 * std::sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]);
}

// Distances from `points` to the mesh; with `signed_out`, also the signed ones (negative inside),
// from the same closest-point query.
std::vector<double> distances_to(const std::vector<Vec3>& points, const MeshDistance& to,
                                 std::vector<double>* signed_out = nullptr) {
  std::vector<double> d(points.size());
  if (signed_out) signed_out->resize(points.size());
  parallel_for(
      static_cast<int64_t>(points.size()),
      [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          if (!signed_out) {
            d[i] = to.distance(points[i]);
            continue;
          }
          const MeshDistance::Closest c = to.closest(points[i]);
          d[i] = c.distance;
          (*signed_out)[i] = to.signed_distance(c, points[i]);
        }
      },
      256);
  return d;
}

double percentile_of_sorted(const std::vector<double>& sorted, double q) {
  const double pos = std::clamp(q, 0.0, 100.0) / 100.0 * double(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - double(lo)) * (sorted[hi] - sorted[lo]);
}

DirectionalDistance summarise(const std::vector<double>& d, double& mean_square) {
  DirectionalDistance s;
  if (d.empty()) return s;
  double sum = 0, sum2 = 0;  // in sample order: the same sum whatever the thread count
  for (double x : d) {
    sum += x;
    sum2 += x * x;
    s.max = std::max(s.max, x);
  }
  s.mean = sum / double(d.size());
  mean_square = sum2 / double(d.size());
  s.rms = std::sqrt(mean_square);
  std::vector<double> sorted = d;
  std::sort(sorted.begin(), sorted.end());
  s.p90 = percentile_of_sorted(sorted, 90);
  s.p95 = percentile_of_sorted(sorted, 95);
  return s;
}

std::string pad(int indent) { return std::string(static_cast<size_t>(indent), ' '); }

std::string directional_json(const DirectionalDistance& d) {
  return "{\"mean_mm\": " + json_number(d.mean) + ", \"rms_mm\": " + json_number(d.rms) +
         ", \"p90_mm\": " + json_number(d.p90) + ", \"p95_mm\": " + json_number(d.p95) +
         ", \"max_mm\": " + json_number(d.max) + "}";
}

std::string quality_json(const MeshQuality& q) {
  return "{\"vertices\": " + std::to_string(q.vertices) +
         ", \"faces\": " + std::to_string(q.faces) + ", \"euler\": " + std::to_string(q.euler) +
         ", \"components\": " + std::to_string(q.components) +
         ", \"closed_manifold\": " + (q.closed_manifold ? "true" : "false") +
         ", \"sif_percent\": " + json_number(q.sif) +
         ", \"self_intersecting_faces\": " + std::to_string(q.self_intersecting_faces) + "}";
}

}  // namespace

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::vector<Vec3> sample_surface(const Mesh& mesh, int64_t n, uint64_t seed) {
  if (n <= 0) return {};
  const size_t nf = mesh.faces.size();
  std::vector<double> cumulative(nf);
  double total = 0;
  for (size_t f = 0; f < nf; ++f) {
    const auto& t = mesh.faces[f];
    total += triangle_area(vertex(mesh, t[0]), vertex(mesh, t[1]), vertex(mesh, t[2]));
    cumulative[f] = total;
  }
  if (!(total > 0)) throw InputError("", "surface has no area to sample");
  std::vector<Vec3> points(static_cast<size_t>(n));
  const uint64_t stream = splitmix64(seed);
  parallel_for(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const uint64_t base = stream ^ (static_cast<uint64_t>(i) * 0xd1b54a32d192ed03ULL);
      const double u0 = unit_double(splitmix64(base));
      double u1 = unit_double(splitmix64(base + 1));
      double u2 = unit_double(splitmix64(base + 2));
      const size_t f = std::min<size_t>(
          nf - 1,
          std::upper_bound(cumulative.begin(), cumulative.end(), u0 * total) - cumulative.begin());
      // Uniform on the triangle: fold the unit square onto the lower-left half.
      if (u1 + u2 > 1) {
        u1 = 1 - u1;
        u2 = 1 - u2;
      }
      const auto& t = mesh.faces[f];
      const Vec3 a = vertex(mesh, t[0]), b = vertex(mesh, t[1]), c = vertex(mesh, t[2]);
      for (int k = 0; k < 3; ++k) points[i][k] = a[k] + u1 * (b[k] - a[k]) + u2 * (c[k] - a[k]);
    }
  });
  return points;
}

double percentile(std::vector<double> values, double q) {
  if (values.empty()) throw std::invalid_argument("percentile of no values");
  std::sort(values.begin(), values.end());
  return percentile_of_sorted(values, q);
}

SurfaceDistance surface_distance(const Mesh& pred, const Mesh& ref, const SamplingOptions& opts,
                                 const ProgressFn& progress) {
  if (opts.samples <= 0) throw UsageError("the number of samples must be positive");
  SurfaceDistance out;
  out.samples = opts.samples;
  report(progress, 0.0);
  // The two search trees are independent: build them side by side.
  std::unique_ptr<MeshDistance> to_ref, to_pred;
  parallel_for(
      2,
      [&](int64_t begin, int64_t end) {
        for (int64_t which = begin; which < end; ++which) {
          if (which == 0)
            to_ref = std::make_unique<MeshDistance>(ref);
          else
            to_pred = std::make_unique<MeshDistance>(pred);
        }
      },
      1);
  report(progress, 0.15);
  // Different streams for the two meshes, so that identical meshes are not sampled alike.
  std::vector<double> signed_pr;
  const std::vector<double> d_pr =
      distances_to(sample_surface(pred, opts.samples, opts.seed), *to_ref, &signed_pr);
  report(progress, 0.55);
  const std::vector<double> d_rp =
      distances_to(sample_surface(ref, opts.samples, opts.seed + 1), *to_pred);
  report(progress, 0.95);
  double ms_pr = 0, ms_rp = 0;
  out.pred_to_ref = summarise(d_pr, ms_pr);
  out.ref_to_pred = summarise(d_rp, ms_rp);
  out.assd = 0.5 * (out.pred_to_ref.mean + out.ref_to_pred.mean);
  out.hd90 = std::max(out.pred_to_ref.p90, out.ref_to_pred.p90);
  out.hd95 = std::max(out.pred_to_ref.p95, out.ref_to_pred.p95);
  out.hausdorff = std::max(out.pred_to_ref.max, out.ref_to_pred.max);
  out.chamfer = ms_pr + ms_rp;
  double signed_sum = 0;  // in sample order, as in summarise()
  for (double x : signed_pr) signed_sum += x;
  // The sign needs an inside: an open or non-manifold reference has none.
  out.offset = mesh_topology(ref).closed_manifold() ? signed_sum / double(signed_pr.size())
                                                    : std::numeric_limits<double>::quiet_NaN();
  report(progress, 1.0);
  return out;
}

SurfaceContrast contrast_across_surface(const Mesh& mesh, const Volume& image, int expect,
                                        const Volume* region, double offset_mm,
                                        const std::vector<uint8_t>* excluded) {
  const std::vector<std::array<float, 3>> normals = vertex_normals(mesh);
  auto usable = [&](const Vec3& p) {
    const Vec3 ijk = image.ras_to_voxel(p);
    for (int a = 0; a < 3; ++a)
      if (!(ijk[a] >= 0 && ijk[a] <= double(image.dims[a] - 1))) return false;
    if (!region) return true;
    const Vec3 r = region->ras_to_voxel(p);
    const int64_t i = std::lround(r[0]), j = std::lround(r[1]), k = std::lround(r[2]);
    return region->inside(i, j, k) && region->at(i, j, k) != 0;
  };
  SurfaceContrast out;
  double sum = 0;
  int64_t positive = 0;
  for (size_t v = 0; v < mesh.vertices.size(); ++v) {
    if (excluded && v < excluded->size() && (*excluded)[v]) continue;
    Vec3 in, outside;
    for (int a = 0; a < 3; ++a) {
      in[a] = mesh.vertices[v][a] - offset_mm * normals[v][a];
      outside[a] = mesh.vertices[v][a] + offset_mm * normals[v][a];
    }
    if (!usable(in) || !usable(outside)) continue;
    const double step = expect * (double(image.sample_linear(in)) - image.sample_linear(outside));
    sum += step;
    positive += step > 0;
    ++out.vertices;
  }
  if (out.vertices > 0) {
    out.mean_step = sum / double(out.vertices);
    out.positive_percent = 100.0 * double(positive) / double(out.vertices);
  }
  return out;
}

MeshQuality mesh_quality(const Mesh& mesh) {
  MeshQuality q;
  const MeshTopology t = mesh_topology(mesh);
  q.vertices = static_cast<int64_t>(mesh.vertices.size());
  q.faces = static_cast<int64_t>(mesh.faces.size());
  q.euler = t.euler;
  q.components = t.components;
  q.closed_manifold = t.closed_manifold();
  const auto pairs = self_intersections(mesh);
  std::vector<char> involved(mesh.faces.size(), 0);
  for (const auto& [f, g] : pairs) involved[f] = involved[g] = 1;
  q.self_intersecting_faces = std::count(involved.begin(), involved.end(), 1);
  q.sif = self_intersection_fraction(pairs, mesh.faces.size());
  return q;
}

SurfaceComparison compare_surfaces(const Mesh& pred, const Mesh& ref, const std::string& name,
                                   const SamplingOptions& opts, const ProgressFn& progress) {
  SurfaceComparison c;
  c.name = name;
  c.distance = surface_distance(pred, ref, opts, [&](double f) { report(progress, 0.7 * f); });
  // Independent, and partly sequential inside (the box sweep): the two meshes side by side.
  parallel_for(
      2,
      [&](int64_t begin, int64_t end) {
        for (int64_t which = begin; which < end; ++which)
          (which == 0 ? c.pred : c.ref) = mesh_quality(which == 0 ? pred : ref);
      },
      1);
  report(progress, 1.0);
  return c;
}

std::string SurfaceComparison::to_json(int indent) const {
  const std::string p = pad(indent + 2);
  std::ostringstream o;
  o << "{\n"
    << p << "\"name\": " << json_string(name) << ",\n"
    << p << "\"samples\": " << distance.samples << ",\n"
    << p << "\"assd_mm\": " << json_number(distance.assd) << ",\n"
    << p << "\"hd90_mm\": " << json_number(distance.hd90) << ",\n"
    << p << "\"hd95_mm\": " << json_number(distance.hd95) << ",\n"
    << p << "\"chamfer_mm2\": " << json_number(distance.chamfer) << ",\n"
    << p << "\"hausdorff_mm\": " << json_number(distance.hausdorff) << ",\n"
    << p << "\"offset_mm\": " << json_number(distance.offset) << ",\n"
    << p << "\"pred_to_ref\": " << directional_json(distance.pred_to_ref) << ",\n"
    << p << "\"ref_to_pred\": " << directional_json(distance.ref_to_pred) << ",\n"
    << p << "\"pred\": " << quality_json(pred) << ",\n"
    << p << "\"ref\": " << quality_json(ref) << "\n"
    << pad(indent) << "}";
  return o.str();
}

std::string ReconstructionEvaluation::to_json() const {
  std::ostringstream o;
  o << "{\n  \"sampling\": {\"samples\": " << sampling.samples << ", \"seed\": " << sampling.seed
    << "},\n  \"surfaces\": [";
  for (size_t i = 0; i < surfaces.size(); ++i) o << (i ? ", " : "\n    ") << surfaces[i].to_json(4);
  o << "\n  ],\n  \"nesting\": [";
  for (size_t i = 0; i < nesting.size(); ++i) {
    const auto& n = nesting[i];
    o << (i ? ",\n    " : "\n    ") << "{\"hemi\": " << json_string(n.hemi)
      << ", \"pred_white_outside_pial_percent\": " << json_number(n.pred_white_outside_pial)
      << ", \"ref_white_outside_pial_percent\": " << json_number(n.ref_white_outside_pial) << "}";
  }
  o << "\n  ]\n}";
  return o.str();
}

namespace {

// The file of surface `name` (e.g. "lh.white") under dir/surf, or "" when there is none.
std::string find_surface(const std::string& dir, const std::string& name) {
  namespace fs = std::filesystem;
  for (const char* ext : {".surf.gii", ".surf.gii.gz", ".gii", ""}) {
    const fs::path p = fs::path(dir) / "surf" / (name + ext);
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return "";
}

}  // namespace

std::vector<SurfaceFilePair> reconstruction_surface_files(const std::string& recon_dir,
                                                          const std::string& truth_dir) {
  namespace fs = std::filesystem;
  for (const std::string& d : {recon_dir, truth_dir}) {
    std::error_code ec;
    if (!fs::is_directory(d, ec)) throw InputError(d, "not a directory");
  }
  std::vector<SurfaceFilePair> pairs;
  for (const char* hemi : {"lh", "rh"})
    for (const char* surf : {"white", "pial"}) {
      const std::string name = std::string(hemi) + "." + surf;
      const std::string pred = find_surface(recon_dir, name);
      if (pred.empty()) continue;
      const std::string ref = find_surface(truth_dir, name);
      if (ref.empty())
        throw InputError((fs::path(truth_dir) / "surf" / name).string(),
                         "no such surface (.surf.gii or FreeSurfer) to compare " + pred + " with");
      pairs.push_back({name, pred, ref});
    }
  if (pairs.empty())
    throw InputError((fs::path(recon_dir) / "surf").string(),
                     "no {lh,rh}.{white,pial} surfaces found");
  return pairs;
}

ReconstructionEvaluation evaluate_reconstruction(const std::vector<SurfaceFilePair>& pairs,
                                                 const SamplingOptions& opts,
                                                 const ProgressFn& progress) {
  ReconstructionEvaluation ev;
  ev.sampling = opts;
  std::map<std::string, Mesh> preds, refs;
  const double step = 1.0 / double(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    const SurfaceFilePair& p = pairs[i];
    Mesh pred = read_surface(p.pred_path);
    Mesh ref = read_surface(p.ref_path);
    check_mesh(pred, p.pred_path);
    check_mesh(ref, p.ref_path);
    ev.surfaces.push_back(compare_surfaces(pred, ref, p.name, opts, [&](double f) {
      report(progress, 0.9 * step * (double(i) + f));
    }));
    preds[p.name] = std::move(pred);
    refs[p.name] = std::move(ref);
  }
  for (const char* hemi : {"lh", "rh"}) {
    const std::string w = std::string(hemi) + ".white", pl = std::string(hemi) + ".pial";
    if (!preds.count(w) || !preds.count(pl)) continue;
    HemisphereNesting n;
    n.hemi = hemi;
    n.pred_white_outside_pial = fraction_vertices_outside(preds[w], preds[pl]);
    n.ref_white_outside_pial = fraction_vertices_outside(refs[w], refs[pl]);
    ev.nesting.push_back(n);
  }
  report(progress, 1.0);
  return ev;
}

}  // namespace ddcsr
