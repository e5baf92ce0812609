#include "ddcsr/qc/qc.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ddcsr {

namespace {

struct Box {
  Vec3 lo{std::numeric_limits<double>::max(), std::numeric_limits<double>::max(),
          std::numeric_limits<double>::max()};
  Vec3 hi{-std::numeric_limits<double>::max(), -std::numeric_limits<double>::max(),
          -std::numeric_limits<double>::max()};
  void add(const Vec3& p) {
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], p[a]);
      hi[a] = std::max(hi[a], p[a]);
    }
  }
  bool empty() const { return lo[0] > hi[0]; }
};

// Corners of every voxel that is nonzero (of all voxels when `nonzero_only` is false).
Box volume_box(const Volume& v, bool nonzero_only) {
  Box box;
  int64_t lo[3] = {v.dims[0], v.dims[1], v.dims[2]}, hi[3] = {-1, -1, -1};
  for (int64_t k = 0; k < v.dims[2]; ++k)
    for (int64_t j = 0; j < v.dims[1]; ++j)
      for (int64_t i = 0; i < v.dims[0]; ++i)
        if (!nonzero_only || v.at(i, j, k) != 0) {
          lo[0] = std::min(lo[0], i), lo[1] = std::min(lo[1], j), lo[2] = std::min(lo[2], k);
          hi[0] = std::max(hi[0], i), hi[1] = std::max(hi[1], j), hi[2] = std::max(hi[2], k);
        }
  if (hi[0] < 0) return box;
  for (int c = 0; c < 8; ++c)
    box.add(
        v.voxel_to_ras({(c & 1) ? hi[0] + 0.5 : lo[0] - 0.5, (c & 2) ? hi[1] + 0.5 : lo[1] - 0.5,
                        (c & 4) ? hi[2] + 0.5 : lo[2] - 0.5}));
  return box;
}

// In-plane axes of a view: horizontal then vertical, each a scanner-RAS axis increasing right/up.
void plane_axes(QcView view, int& h, int& v) {
  switch (view) {
    case QcView::Sagittal:
      h = 1, v = 2;
      break;  // anterior to the right, superior up
    case QcView::Coronal:
      h = 0, v = 2;
      break;  // subject's right to the right (neurological)
    default:
      h = 0, v = 1;
      break;  // axial: anterior up
  }
}

std::pair<float, float> window(const Volume& image, const Volume* region) {
  std::vector<float> values;
  const int64_t n = image.voxels_per_volume();
  const bool same_grid = region && region->dims == image.dims;
  for (int64_t i = 0; i < n; ++i) {
    const float x = image.data[i];
    if (same_grid ? region->data[i] != 0 : x != 0) values.push_back(x);
  }
  if (values.empty()) return {0.f, 1.f};
  auto at = [&](double q) {
    const size_t k = std::min(values.size() - 1, static_cast<size_t>(q * (values.size() - 1)));
    std::nth_element(values.begin(), values.begin() + k, values.end());
    return values[k];
  };
  const float lo = at(0.01), hi = at(0.995);
  return {lo, hi > lo ? hi : lo + 1.f};
}

void put_pixel(RgbImage& img, int x, int y, const std::array<uint8_t, 3>& rgb) {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  uint8_t* p = &img.pixels[(static_cast<size_t>(y) * img.width + x) * 3];
  p[0] = rgb[0], p[1] = rgb[1], p[2] = rgb[2];
}

void draw_line(RgbImage& img, double x0, double y0, double x1, double y1,
               const std::array<uint8_t, 3>& rgb, int clip_x0, int clip_x1) {
  const int steps = static_cast<int>(std::ceil(std::max(std::abs(x1 - x0), std::abs(y1 - y0)))) + 1;
  for (int s = 0; s <= steps; ++s) {
    const double t = static_cast<double>(s) / steps;
    const int x = static_cast<int>(std::lround(x0 + t * (x1 - x0)));
    const int y = static_cast<int>(std::lround(y0 + t * (y1 - y0)));
    if (x >= clip_x0 && x < clip_x1) put_pixel(img, x, y, rgb);
  }
}

}  // namespace

RgbImage render_qc(const std::vector<const Volume*>& images, const std::vector<QcContour>& contours,
                   QcView view, const QcOptions& options) {
  RgbImage out;
  if (images.empty()) return out;
  Box box = options.region ? volume_box(*options.region, true) : Box{};
  if (box.empty()) box = volume_box(*images[0], false);
  const int axis = static_cast<int>(view);
  int h, v;
  plane_axes(view, h, v);
  const double margin = 4.0;
  const double h0 = box.lo[h] - margin, v1 = box.hi[v] + margin;
  const int w = std::max(
      1, static_cast<int>(std::ceil((box.hi[h] - box.lo[h] + 2 * margin) / options.pixel_mm)));
  const int ht = std::max(
      1, static_cast<int>(std::ceil((box.hi[v] - box.lo[v] + 2 * margin) / options.pixel_mm)));
  const int gap = 2;
  const int cols = static_cast<int>(images.size()),
            rows = static_cast<int>(options.slice_fractions.size());
  out.width = cols * w + (cols - 1) * gap;
  out.height = rows * ht + (rows - 1) * gap;
  out.pixels.assign(static_cast<size_t>(out.width) * out.height * 3, 0);

  std::vector<std::pair<float, float>> windows;
  std::vector<Affine> ras2vox;
  for (const Volume* image : images) {
    windows.push_back(window(*image, options.region));
    ras2vox.push_back(image->vox2ras.inverse());
  }
  for (int r = 0; r < rows; ++r) {
    const double slice = box.lo[axis] + options.slice_fractions[r] * (box.hi[axis] - box.lo[axis]);
    const int y_origin = r * (ht + gap);
    for (int c = 0; c < cols; ++c) {
      const int x_origin = c * (w + gap);
      const auto [lo, hi] = windows[c];
      for (int y = 0; y < ht; ++y)
        for (int x = 0; x < w; ++x) {
          Vec3 p;
          p[axis] = slice;
          p[h] = h0 + (x + 0.5) * options.pixel_mm;
          p[v] = v1 - (y + 0.5) * options.pixel_mm;
          const float value = images[c]->sample_voxel_linear(ras2vox[c].apply(p), 0, lo);
          const auto g =
              static_cast<uint8_t>(std::clamp((value - lo) / (hi - lo), 0.f, 1.f) * 255.f + 0.5f);
          put_pixel(out, x_origin + x, y_origin + y, {g, g, g});
        }
      // Where each triangle crosses the plane, a segment of the contour.
      for (const QcContour& contour : contours) {
        if (!contour.mesh) continue;
        const Mesh& mesh = *contour.mesh;
        const bool per_face = contour.face_rgb.size() == mesh.faces.size();
        for (size_t fi = 0; fi < mesh.faces.size(); ++fi) {
          const auto& f = mesh.faces[fi];
          double d[3];
          for (int k = 0; k < 3; ++k) d[k] = mesh.vertices[f[k]][axis] - slice;
          std::vector<std::pair<double, double>> hits;
          for (int k = 0; k < 3; ++k) {
            const int m = (k + 1) % 3;
            if ((d[k] < 0) == (d[m] < 0)) continue;
            const double t = d[k] / (d[k] - d[m]);
            const auto& a = mesh.vertices[f[k]];
            const auto& b = mesh.vertices[f[m]];
            const double ph = a[h] + t * (b[h] - a[h]), pv = a[v] + t * (b[v] - a[v]);
            hits.emplace_back(x_origin + (ph - h0) / options.pixel_mm - 0.5,
                              y_origin + (v1 - pv) / options.pixel_mm - 0.5);
          }
          if (hits.size() == 2)
            draw_line(out, hits[0].first, hits[0].second, hits[1].first, hits[1].second,
                      per_face ? contour.face_rgb[fi] : contour.rgb, x_origin, x_origin + w);
        }
      }
    }
  }
  return out;
}

}  // namespace ddcsr
