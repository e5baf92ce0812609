// Quality-control pictures: slices of scalar volumes (b0, FA, ...) side by side with surface
// contours drawn where the meshes cut the slice plane. The picture a user opens first.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "ddcsr/mesh.h"
#include "ddcsr/volume.h"

namespace ddcsr {

struct QcContour {
  const Mesh* mesh = nullptr;  // scanner RAS
  std::array<uint8_t, 3> rgb{255, 255, 0};
  // When not empty, one colour per face of `mesh` instead of `rgb` (cortical regions).
  std::vector<std::array<uint8_t, 3>> face_rgb;
};

enum class QcView { Sagittal = 0, Coronal = 1, Axial = 2 };  // the scanner-RAS axis cut

struct QcOptions {
  double pixel_mm = 0.5;  // in-plane sampling of the picture
  // Slice positions as fractions of the extent of `region` (or of the first image) along the view
  // axis; one row of the picture per slice.
  std::vector<double> slice_fractions{0.35, 0.5, 0.65};
  const Volume* region = nullptr;  // e.g. the brain mask: its nonzero bounding box frames the view
};

// RGB picture (row-major, 3 bytes per pixel): rows are slices, columns are `images`, in
// neurological convention (subject's left on the left; superior or anterior up).
struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;
};

RgbImage render_qc(const std::vector<const Volume*>& images, const std::vector<QcContour>& contours,
                   QcView view, const QcOptions& options = {});

// PNG through ITK, written atomically.
void write_png(const RgbImage& image, const std::string& path);

}  // namespace ddcsr
