// ITK's PNG writer lives here; no Eigen in this file (ITK bundles its own).
#include "ddcsr/qc/slices.h"

#include <itkImage.h>
#include <itkImageFileWriter.h>
#include <itkPNGImageIO.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ddcsr/error.h"
#include "ddcsr/io/atomic_file.h"

namespace ddcsr {

void write_orthogonal_slices_png(const Volume& volume, int64_t frame, const Vec3& center_ras, double lo, double hi,
                                 const std::string& path, double pixel_mm) {
  if (!(pixel_mm > 0)) throw std::invalid_argument("write_orthogonal_slices_png: pixel size must be positive");
  if (frame < 0 || frame >= volume.nvols) throw std::invalid_argument("write_orthogonal_slices_png: no such frame");
  // The volume's extent in RAS.
  Vec3 bmin{1e300, 1e300, 1e300}, bmax{-1e300, -1e300, -1e300};
  for (int c = 0; c < 8; ++c) {
    const Vec3 p = volume.voxel_to_ras({(c & 1) ? volume.dims[0] - 0.5 : -0.5, (c & 2) ? volume.dims[1] - 0.5 : -0.5,
                                        (c & 4) ? volume.dims[2] - 0.5 : -0.5});
    for (int a = 0; a < 3; ++a) {
      bmin[a] = std::min(bmin[a], p[a]);
      bmax[a] = std::max(bmax[a], p[a]);
    }
  }
  auto pixels = [&](int a) { return std::max<int64_t>(1, static_cast<int64_t>(std::ceil((bmax[a] - bmin[a]) / pixel_mm))); };
  const int64_t nx = pixels(0), ny = pixels(1), nz = pixels(2);
  const Affine to_voxel = volume.vox2ras.inverse();
  auto grey = [&](double x, double y, double z) -> unsigned char {
    const double v = volume.sample_voxel_linear(to_voxel.apply({x, y, z}), frame, static_cast<float>(lo));
    const double g = std::clamp((v - lo) / (hi > lo ? hi - lo : 1.0), 0.0, 1.0);
    return static_cast<unsigned char>(std::lround(255.0 * g));
  };
  auto coord = [&](int a, int64_t n, bool reverse) {
    const double u = (static_cast<double>(reverse ? -n : n) + (reverse ? -0.5 : 0.5)) * pixel_mm;
    return reverse ? bmax[a] + u : bmin[a] + u;
  };
  // Panels: (width, height) = axial (nx, ny), coronal (nx, nz), sagittal (ny, nz), 4 px apart.
  const int64_t gap = 4, width = nx + gap + nx + gap + ny, height = std::max(ny, nz);
  std::vector<unsigned char> img(static_cast<size_t>(width * height), 0);
  for (int64_t r = 0; r < ny; ++r)
    for (int64_t c = 0; c < nx; ++c) img[r * width + c] = grey(coord(0, c, false), coord(1, r, true), center_ras[2]);
  for (int64_t r = 0; r < nz; ++r)
    for (int64_t c = 0; c < nx; ++c)
      img[r * width + nx + gap + c] = grey(coord(0, c, false), center_ras[1], coord(2, r, true));
  for (int64_t r = 0; r < nz; ++r)
    for (int64_t c = 0; c < ny; ++c)
      img[r * width + 2 * (nx + gap) + c] = grey(center_ras[0], coord(1, c, true), coord(2, r, true));

  using Image = itk::Image<unsigned char, 2>;
  auto image = Image::New();
  Image::RegionType region;
  region.SetSize(0, static_cast<itk::SizeValueType>(width));
  region.SetSize(1, static_cast<itk::SizeValueType>(height));
  image->SetRegions(region);
  image->Allocate();
  std::copy(img.begin(), img.end(), image->GetBufferPointer());
  AtomicFile file(path);
  auto writer = itk::ImageFileWriter<Image>::New();
  writer->SetImageIO(itk::PNGImageIO::New());
  writer->SetFileName(file.temp_path());
  writer->SetInput(image);
  try {
    writer->Update();
  } catch (const itk::ExceptionObject& e) {
    throw InputError(path, std::string("cannot write PNG: ") + e.GetDescription());
  }
  file.commit();
}

}  // namespace ddcsr
