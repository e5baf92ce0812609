// Labels carried from the atlas, maps carried to it, and regional statistics.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "ddcsr/parcellation/parcellation.h"
#include "ddcsr/threads.h"
#include "diffcoseg/vec.h"
#include "parcellation/spherical_locator.h"

namespace ddcsr {

using namespace diffcoseg;

Annotation transfer_annotation(const Annotation& atlas_labels, const AtlasCorrespondence& c) {
  Annotation out;
  out.names = atlas_labels.names;
  out.colours = atlas_labels.colours;
  out.labels.assign(c.face.size(), -1);
  if (c.atlas_faces.empty()) throw std::invalid_argument("transfer_annotation: no atlas faces");
  for (size_t v = 0; v < c.face.size(); ++v) {
    if (c.face[v] < 0) continue;
    const auto& f = c.atlas_faces[size_t(c.face[v])];
    const auto& w = c.barycentric[v];
    const int k = w[0] >= w[1] && w[0] >= w[2] ? 0 : w[1] >= w[2] ? 1 : 2;
    if (size_t(f[k]) >= atlas_labels.labels.size())
      throw std::invalid_argument("transfer_annotation: annotation is not on the atlas mesh");
    out.labels[v] = atlas_labels.labels[size_t(f[k])];
  }
  return out;
}

std::vector<float> resample_to_sphere(const std::vector<float>& subject_values,
                                      const Mesh& subject_sphere_reg, const Mesh& target_sphere) {
  if (subject_values.size() != subject_sphere_reg.vertices.size())
    throw std::invalid_argument("resample_to_sphere: one value per subject vertex");
  const parcellation_detail::SphericalLocator locator(subject_sphere_reg);
  std::vector<float> out(target_sphere.vertices.size(), 0.0f);
  parallel_for(
      int64_t(out.size()),
      [&](int64_t b, int64_t e) {
        int32_t hint = -1;
        for (int64_t i = b; i < e; ++i) {
          const auto& p = target_sphere.vertices[size_t(i)];
          const auto hit = locator.locate({p[0], p[1], p[2]}, hint);
          hint = hit.face;
          if (hit.face < 0) continue;
          const auto& f = subject_sphere_reg.faces[size_t(hit.face)];
          double v = 0;
          for (int k = 0; k < 3; ++k) v += hit.weights[k] * subject_values[size_t(f[k])];
          out[size_t(i)] = float(v);
        }
      },
      1024);
  return out;
}

std::vector<RegionStats> region_stats(const Annotation& labels, const Mesh& white, const Mesh& pial,
                                      const std::vector<float>& thickness) {
  const size_t n = white.vertices.size();
  if (labels.labels.size() != n || pial.vertices.size() != n || thickness.size() != n)
    throw std::invalid_argument("region_stats: labels, surfaces and thickness differ in length");
  auto vertex_areas = [&](const Mesh& m) {
    std::vector<double> a(n, 0.0);
    for (const auto& f : m.faces) {
      Vec3 p[3];
      for (int k = 0; k < 3; ++k)
        p[k] = {m.vertices[f[k]][0], m.vertices[f[k]][1], m.vertices[f[k]][2]};
      const double fa = 0.5 * norm(cross(p[1] - p[0], p[2] - p[0]));
      for (int k = 0; k < 3; ++k) a[size_t(f[k])] += fa / 3.0;
    }
    return a;
  };
  const std::vector<double> wa = vertex_areas(white), pa = vertex_areas(pial);
  std::vector<RegionStats> out(labels.names.size());
  std::vector<double> sum(out.size(), 0.0), sum2(out.size(), 0.0);
  for (size_t r = 0; r < out.size(); ++r) out[r].name = labels.names[r];
  for (size_t v = 0; v < n; ++v) {
    const int32_t r = labels.labels[v];
    if (r < 0) continue;
    RegionStats& s = out[size_t(r)];
    ++s.vertices;
    s.white_area_mm2 += wa[v];
    s.pial_area_mm2 += pa[v];
    s.grey_volume_mm3 += thickness[v] * 0.5 * (wa[v] + pa[v]);
    sum[size_t(r)] += thickness[v];
    sum2[size_t(r)] += double(thickness[v]) * thickness[v];
  }
  for (size_t r = 0; r < out.size(); ++r) {
    if (out[r].vertices == 0) continue;
    const double k = double(out[r].vertices);
    out[r].thickness_mean_mm = sum[r] / k;
    out[r].thickness_sd_mm =
        k > 1 ? std::sqrt(std::max(0.0, (sum2[r] - sum[r] * sum[r] / k) / (k - 1))) : 0.0;
  }
  return out;
}

}  // namespace ddcsr
