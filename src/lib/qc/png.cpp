// PNG output through ITK's PNG writer (ITK stays in this translation unit).
#include <itkImage.h>
#include <itkImageFileWriter.h>
#include <itkPNGImageIO.h>
#include <itkRGBPixel.h>

#include "ddcsr/error.h"
#include "ddcsr/io/atomic_file.h"
#include "ddcsr/qc/qc.h"

namespace ddcsr {

void write_png(const RgbImage& picture, const std::string& path) {
  using Pixel = itk::RGBPixel<unsigned char>;
  using Image = itk::Image<Pixel, 2>;
  if (picture.width <= 0 || picture.height <= 0)
    throw std::invalid_argument("write_png: empty picture");
  auto image = Image::New();
  Image::RegionType region;
  region.SetSize(0, picture.width);
  region.SetSize(1, picture.height);
  image->SetRegions(region);
  image->Allocate();
  Pixel* out = image->GetBufferPointer();
  for (size_t i = 0; i < static_cast<size_t>(picture.width) * picture.height; ++i)
    for (int c = 0; c < 3; ++c) out[i][c] = picture.pixels[i * 3 + c];
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
