// NIfTI through ITK. The only translation unit that sees ITK images; everything else uses Volume.
#include "ddcsr/io/nifti.h"

#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkImageIOFactory.h>
#include <itkNiftiImageIO.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <type_traits>
#include <vector>

#include "ddcsr/error.h"
#include "ddcsr/frames.h"
#include "ddcsr/io/atomic_file.h"
#include "ddcsr/threads.h"

namespace fs = std::filesystem;

namespace ddcsr {

namespace {

// An absurd header must be refused before anything is allocated: cap at 3/4 of physical memory.
size_t memory_budget_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return size_t(16) << 30;
  return static_cast<size_t>(pages) / 4 * 3 * static_cast<size_t>(page);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// ITK messages span several lines with file/line noise; keep the description's first line.
std::string itk_reason(const itk::ExceptionObject& e) {
  std::string d = e.GetDescription();
  const auto nl = d.find('\n');
  if (nl != std::string::npos) d = d.substr(0, nl);
  return d.empty() ? "unreadable image" : d;
}

template <unsigned D>
Volume read_with_itk(const std::string& path, const VolumeHeader& header) {
  using Image = itk::Image<float, D>;
  auto reader = itk::ImageFileReader<Image>::New();
  reader->SetFileName(path);
  reader->SetImageIO(itk::NiftiImageIO::New());
  try {
    reader->Update();
  } catch (const itk::ExceptionObject& e) {
    throw InputError(path, "cannot read voxel data (truncated or corrupt file?): " + itk_reason(e));
  }
  typename Image::Pointer image = reader->GetOutput();
  Volume volume;
  volume.dims = header.dims;
  volume.nvols = header.nvols;
  volume.vox2ras = header.vox2ras;
  const size_t n = static_cast<size_t>(volume.voxels_per_volume() * volume.nvols);
  if (image->GetBufferedRegion().GetNumberOfPixels() != n)
    throw InputError(path, "voxel data does not match the header's dimensions");
  volume.data.assign(image->GetBufferPointer(), image->GetBufferPointer() + n);
  return volume;
}

// Compresses `from` into the gzip file `to`: one member, mtime 0, its data deflated in 4 MiB
// blocks on the project's threads (a 1.5 mm subject's DWI, 250 MB of noisy int16, takes 7 s
// on one core). Each block is a deflate stream of its own, primed with the 32 KiB of data
// before it and ended by a sync flush (pigz's layout), so the bytes depend only on the data and
// the level, never on the thread count, and any gzip reader reads them.
bool gzip_file(const std::string& from, const std::string& to, int level) {
  std::error_code ec;
  const uint64_t size = fs::file_size(from, ec);
  if (ec) return false;
  std::FILE* in = std::fopen(from.c_str(), "rb");
  if (!in) return false;
  std::FILE* out = std::fopen(to.c_str(), "wb");
  if (!out) {
    std::fclose(in);
    return false;
  }
  // Deflate, no flags, mtime 0, "fastest"/"best" hint as zlib sets it, Unix.
  const unsigned char xfl = level == 1 ? 4 : level == 9 ? 2 : 0;
  const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3};
  bool ok = std::fwrite(header, 1, sizeof header, out) == sizeof header;
  const size_t block = size_t(4) << 20, window = 32768, batch = 8;
  const uint64_t blocks = std::max<uint64_t>(1, (size + block - 1) / block);
  // data holds the window before the batch, then the batch.
  std::vector<unsigned char> data(window + batch * block);
  std::vector<std::vector<unsigned char>> packed(batch);
  uLong crc = crc32(0L, Z_NULL, 0);
  size_t have_window = 0;
  for (uint64_t first = 0; ok && first < blocks; first += batch) {
    const uint64_t count = std::min<uint64_t>(batch, blocks - first);
    const uint64_t start = first * block;
    const size_t length = static_cast<size_t>(std::min<uint64_t>(count * block, size - start));
    if (std::fread(data.data() + window, 1, length, in) != length) {
      ok = false;
      break;
    }
    std::vector<char> failed(count, 0);
    parallel_for(
        static_cast<int64_t>(count),
        [&](int64_t b, int64_t e) {
          for (int64_t q = b; q < e; ++q) {
            const size_t offset = static_cast<size_t>(q) * block;
            const size_t n = std::min(block, length - std::min(length, offset));
            const unsigned char* src = data.data() + window + offset;
            const bool last = first + static_cast<uint64_t>(q) + 1 == blocks;
            z_stream z{};
            if (deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
              failed[q] = 1;
              continue;
            }
            const size_t prior = q > 0 ? window : have_window;
            if (prior > 0) deflateSetDictionary(&z, src - prior, static_cast<uInt>(prior));
            auto& dst = packed[q];
            dst.resize(deflateBound(&z, static_cast<uLong>(n)) + 64);
            z.next_in = const_cast<unsigned char*>(src);
            z.avail_in = static_cast<uInt>(n);
            z.next_out = dst.data();
            z.avail_out = static_cast<uInt>(dst.size());
            const int rc = deflate(&z, last ? Z_FINISH : Z_SYNC_FLUSH);
            if (rc != (last ? Z_STREAM_END : Z_OK) || z.avail_in != 0 || z.avail_out == 0)
              failed[q] = 1;
            dst.resize(dst.size() - z.avail_out);
            deflateEnd(&z);
          }
        },
        1);
    crc = crc32(crc, data.data() + window, static_cast<uInt>(length));
    for (uint64_t q = 0; q < count && ok; ++q) {
      const auto& bytes = packed[q];
      ok = !failed[q] && std::fwrite(bytes.data(), 1, bytes.size(), out) == bytes.size();
    }
    // The next batch's first block is primed with the end of this one.
    have_window = std::min(window, length);
    std::memmove(data.data() + window - have_window, data.data() + window + length - have_window,
                 have_window);
  }
  unsigned char trailer[8];
  for (int b = 0; b < 4; ++b) {
    trailer[b] = static_cast<unsigned char>((crc >> (8 * b)) & 0xff);
    trailer[4 + b] = static_cast<unsigned char>((size >> (8 * b)) & 0xff);
  }
  ok = ok && std::fwrite(trailer, 1, sizeof trailer, out) == sizeof trailer;
  if (std::ferror(in)) ok = false;
  std::fclose(in);
  if (std::fclose(out) != 0) ok = false;
  return ok;
}

template <typename Pixel, unsigned D>
void write_with_itk(const Volume& volume, const std::string& path, const VolumeWriteOptions& opts) {
  using Image = itk::Image<Pixel, D>;
  typename Image::Pointer image = Image::New();
  typename Image::RegionType region;
  typename Image::SpacingType spacing;
  typename Image::PointType origin;
  typename Image::DirectionType direction;
  direction.SetIdentity();
  Vec3 origin_lps, spacing3;
  std::array<double, 9> dir3;
  itk_from_vox2ras(volume.vox2ras, origin_lps, spacing3, dir3);
  for (unsigned a = 0; a < D; ++a) {
    region.SetSize(a, a < 3 ? volume.dims[a] : volume.nvols);
    spacing[a] = a < 3 ? spacing3[a] : 1.0;
    origin[a] = a < 3 ? origin_lps[a] : 0.0;
  }
  for (unsigned r = 0; r < 3; ++r)
    for (unsigned c = 0; c < 3; ++c) direction(r, c) = dir3[r * 3 + c];
  image->SetRegions(region);
  image->SetSpacing(spacing);
  image->SetOrigin(origin);
  image->SetDirection(direction);
  image->Allocate();
  auto io = itk::NiftiImageIO::New();
  if constexpr (std::is_same_v<Pixel, float>) {
    std::copy(volume.data.begin(), volume.data.end(), image->GetBufferPointer());
  } else {
    // Integers with a scl_slope, as scanners store images: value = stored * slope.
    double slope = opts.int16_slope;
    if (!(slope > 0)) {
      float largest = 0;
      for (float v : volume.data) largest = std::max(largest, std::fabs(v));
      slope = largest > 0 ? largest / 32000.0 : 1.0;
    }
    Pixel* out = image->GetBufferPointer();
    for (size_t i = 0; i < volume.data.size(); ++i)
      out[i] = static_cast<Pixel>(std::clamp(std::lround(volume.data[i] / slope), -32768L, 32767L));
    io->SetRescaleSlope(slope);
    io->SetRescaleIntercept(0.0);
  }

  AtomicFile file(path);
  const bool gz = lower(path).size() > 3 && lower(path).substr(lower(path).size() - 3) == ".gz";
  // ITK's NIfTI writer ignores compression levels; for a chosen level it writes plain NIfTI
  // beside the temporary file and zlib compresses that here.
  const bool own_gzip = gz && opts.compression_level > 0;
  const std::string itk_path =
      own_gzip ? file.temp_path().substr(0, file.temp_path().size() - 3) : file.temp_path();
  auto writer = itk::ImageFileWriter<Image>::New();
  writer->SetFileName(itk_path);
  writer->SetImageIO(io);
  writer->SetInput(image);
  writer->SetUseCompression(gz && !own_gzip);
  try {
    writer->Update();
  } catch (const itk::ExceptionObject& e) {
    std::remove(itk_path.c_str());
    throw InputError(path, "cannot write image: " + itk_reason(e));
  }
  if (own_gzip) {
    image = nullptr;  // the raw copy is on disk; free it before compressing
    const bool ok = gzip_file(itk_path, file.temp_path(), std::clamp(opts.compression_level, 1, 9));
    std::remove(itk_path.c_str());
    if (!ok) throw InputError(path, "cannot write image (compression failed; disk full?)");
  }
  file.commit();
}

// What niftilib hides: it silently turns NaN/Inf floats into 0 and zero-fills data missing from a
// truncated file. So the raw header is read here too, to check both.
struct RawNifti {
  bool valid = false, swap = false;
  int datatype = 0, bytes_per_voxel = 0;
  int64_t offset = 0, count = 1;
  double slope = 1, inter = 0;  // scl_slope/scl_inter; slope 0 or not finite means none
  // Voxel sizes that niftilib would silently replace by 1: zero or NaN pixdim when no sform
  // overrides them.
  bool pixdim_ok = true;
  // Dimensions niftilib refuses (dim[0] outside 1..7, dim[1] < 1) or whose product overflows.
  std::string dims_fault;
};

RawNifti read_raw_header(const std::string& path) {
  RawNifti r;
  gzFile gz = gzopen(path.c_str(), "rb");
  if (!gz) return r;
  unsigned char hdr[540] = {};
  const int got = gzread(gz, hdr, sizeof hdr);
  gzclose(gz);
  auto u32 = [&](int off) {
    uint32_t v;
    std::memcpy(&v, hdr + off, 4);
    return r.swap ? __builtin_bswap32(v) : v;
  };
  auto i16 = [&](int off) {
    uint16_t v;
    std::memcpy(&v, hdr + off, 2);
    return static_cast<int16_t>(r.swap ? __builtin_bswap16(v) : v);
  };
  auto i64 = [&](int off) {
    uint64_t v;
    std::memcpy(&v, hdr + off, 8);
    return static_cast<int64_t>(r.swap ? __builtin_bswap64(v) : v);
  };
  // niftilib's rules: dim[0] in 1..7 and dim[1] positive; later dimensions below 1 count as 1.
  auto check_dims = [&](int64_t ndim, auto dim) {
    if (ndim < 1 || ndim > 7) {
      r.dims_fault = "header dim[0] is " + std::to_string(ndim) + ", not 1 to 7";
      return;
    }
    if (dim(1) < 1) {
      r.dims_fault = "header dimension 1 is " + std::to_string(dim(1));
      return;
    }
    for (int d = 1; d <= ndim; ++d)
      if (__builtin_mul_overflow(r.count, std::max<int64_t>(1, dim(d)), &r.count)) {
        r.dims_fault = "header dimensions overflow";
        return;
      }
  };
  uint32_t size_field;
  std::memcpy(&size_field, hdr, 4);
  if (got >= 348 && (size_field == 348 || __builtin_bswap32(size_field) == 348)) {
    r.swap = size_field != 348;
    r.datatype = i16(70);
    r.bytes_per_voxel = i16(72) / 8;
    check_dims(i16(40), [&](int d) { return static_cast<int64_t>(i16(40 + 2 * d)); });
    if (i16(254) <= 0)
      for (int d = 1; d <= 3; ++d) {
        const uint32_t bits = u32(76 + 4 * d);
        float p;
        std::memcpy(&p, &bits, 4);
        if (!std::isfinite(p) || p == 0.f) r.pixdim_ok = false;
      }
    const uint32_t raw = u32(108);
    float vox_offset;
    std::memcpy(&vox_offset, &raw, 4);
    if (!(vox_offset >= 348 && vox_offset < 1e9f)) return r;
    r.offset = static_cast<int64_t>(vox_offset);
    float slope, inter;
    const uint32_t slope_bits = u32(112), inter_bits = u32(116);
    std::memcpy(&slope, &slope_bits, 4);
    std::memcpy(&inter, &inter_bits, 4);
    r.slope = slope, r.inter = inter;
  } else if (got >= 540 && (size_field == 540 || __builtin_bswap32(size_field) == 540)) {
    r.swap = size_field != 540;
    r.datatype = i16(12);
    r.bytes_per_voxel = i16(14) / 8;
    check_dims(i64(16), [&](int d) { return i64(16 + 8 * d); });
    r.offset = i64(168);
    const int64_t slope_bits = i64(176), inter_bits = i64(184);
    std::memcpy(&r.slope, &slope_bits, 8);
    std::memcpy(&r.inter, &inter_bits, 8);
    if (r.offset < 540) return r;
  } else {
    return r;
  }
  if (!(r.slope != 0 && std::isfinite(r.slope) && std::isfinite(r.inter))) r.slope = 1, r.inter = 0;
  r.valid = r.bytes_per_voxel > 0 && r.dims_fault.empty();
  return r;
}

itk::ImageIOBase::Pointer open_nifti_io(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(path, "file not found");
  if (fs::is_directory(path, ec)) throw InputError(path, "is a folder, not a NIfTI image");
  if (!is_nifti_path(path)) throw InputError(path, "not a NIfTI image (expected .nii or .nii.gz)");
  auto io = itk::NiftiImageIO::New();
  if (!io->CanReadFile(path.c_str()))
    throw InputError(path, "not a readable NIfTI image (bad header or corrupt gzip)");
  // niftilib prints its own complaint about these to stderr before ITK's exception; refuse first.
  if (const std::string fault = read_raw_header(path).dims_fault; !fault.empty())
    throw InputError(path, fault);
  io->SetFileName(path);
  try {
    io->ReadImageInformation();
  } catch (const itk::ExceptionObject& e) {
    throw InputError(path, "cannot read NIfTI header: " + itk_reason(e));
  }
  return io;
}

bool is_gzip(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char magic[2] = {};
  in.read(reinterpret_cast<char*>(magic), 2);
  return in && magic[0] == 0x1f && magic[1] == 0x8b;
}

// True when the file holds every voxel the header promises. For gzip the trailer's ISIZE (the
// uncompressed size mod 2^32) is checked first; only a mismatch costs a full decompression pass.
bool holds_all_voxels(const std::string& path, const RawNifti& raw) {
  const uint64_t expected =
      static_cast<uint64_t>(raw.offset) + static_cast<uint64_t>(raw.count) * raw.bytes_per_voxel;
  std::error_code ec;
  const uint64_t file_size = fs::file_size(path, ec);
  if (ec) return false;
  if (!is_gzip(path)) return file_size >= expected;
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(file_size) - 4);
  unsigned char tail[4] = {};
  in.read(reinterpret_cast<char*>(tail), 4);
  const uint32_t isize = tail[0] | (tail[1] << 8) | (tail[2] << 16) | (uint32_t(tail[3]) << 24);
  if (in && isize == static_cast<uint32_t>(expected)) return true;
  gzFile gz = gzopen(path.c_str(), "rb");
  if (!gz) return false;
  std::vector<char> buffer(size_t(1) << 20);
  uint64_t total = 0;
  int n;
  while ((n = gzread(gz, buffer.data(), static_cast<unsigned>(buffer.size()))) > 0)
    total += static_cast<uint64_t>(n);
  int code = Z_OK;
  gzerror(gz, &code);
  gzclose(gz);
  return n == 0 && code == Z_OK && total >= expected;
}

// Index of the first NaN/Inf voxel of a float32/float64 image, or -1.
int64_t first_nonfinite_raw(const std::string& path, const RawNifti& raw) {
  const int elem = raw.datatype == 16 ? 4 : raw.datatype == 64 ? 8 : 0;
  if (!raw.valid || elem == 0) return -1;
  gzFile gz = gzopen(path.c_str(), "rb");
  if (!gz) return -1;
  if (gzseek(gz, raw.offset, SEEK_SET) != raw.offset) {
    gzclose(gz);
    return -1;
  }
  std::vector<char> buffer(size_t(1) << 20);  // a multiple of 8: values never straddle reads
  int64_t index = 0;
  while (index < raw.count) {
    const int n = gzread(gz, buffer.data(), static_cast<unsigned>(buffer.size()));
    if (n <= 0) break;
    for (int b = 0; b + elem <= n && index < raw.count; b += elem, ++index) {
      double v;
      if (elem == 4) {
        uint32_t u;
        std::memcpy(&u, buffer.data() + b, 4);
        if (raw.swap) u = __builtin_bswap32(u);
        float f;
        std::memcpy(&f, &u, 4);
        v = f;
      } else {
        uint64_t u;
        std::memcpy(&u, buffer.data() + b, 8);
        if (raw.swap) u = __builtin_bswap64(u);
        std::memcpy(&v, &u, 8);
      }
      if (!std::isfinite(v)) {
        gzclose(gz);
        return index;
      }
    }
  }
  gzclose(gz);
  return -1;
}

// Voxels of a NIfTI file of a plain numeric type, decompressed in chunks straight into the
// Volume with byte order and scl_slope/scl_inter applied: no second copy of the image (niftilib
// loads the whole file into its own buffer first), and NaN/Inf stay visible for the caller's
// check. Returns false, touching nothing, for types it does not handle.
template <typename T>
void convert_chunk(const char* bytes, size_t count, bool swap, double slope, double inter,
                   float* out) {
  const bool scaled = slope != 1 || inter != 0;
  for (size_t i = 0; i < count; ++i) {
    T v;
    if (swap) {
      char b[sizeof(T)];
      for (size_t k = 0; k < sizeof(T); ++k) b[k] = bytes[i * sizeof(T) + sizeof(T) - 1 - k];
      std::memcpy(&v, b, sizeof(T));
    } else {
      std::memcpy(&v, bytes + i * sizeof(T), sizeof(T));
    }
    out[i] =
        scaled ? static_cast<float>(static_cast<double>(v) * slope + inter) : static_cast<float>(v);
  }
}

// A NIfTI datatype code, its reader and its size in bytes.
struct VoxelReader {
  int datatype;
  void (*convert)(const char*, size_t, bool, double, double, float*);
  int size;
};

template <typename T>
constexpr VoxelReader voxel_reader(int datatype) {
  return {datatype, convert_chunk<T>, static_cast<int>(sizeof(T))};
}

constexpr VoxelReader kVoxelReaders[] = {voxel_reader<uint8_t>(2),     voxel_reader<int8_t>(256),
                                         voxel_reader<int16_t>(4),     voxel_reader<uint16_t>(512),
                                         voxel_reader<int32_t>(8),     voxel_reader<uint32_t>(768),
                                         voxel_reader<float>(16),      voxel_reader<int64_t>(1024),
                                         voxel_reader<uint64_t>(1280), voxel_reader<double>(64)};

bool read_voxels_direct(const std::string& path, const RawNifti& raw, Volume& volume) {
  const auto* reader =
      std::find_if(std::begin(kVoxelReaders), std::end(kVoxelReaders),
                   [&](const VoxelReader& r) { return r.datatype == raw.datatype; });
  if (reader == std::end(kVoxelReaders)) return false;
  const auto convert = reader->convert;
  const int size = reader->size;
  const size_t n = static_cast<size_t>(volume.voxels_per_volume() * volume.nvols);
  if (!raw.valid || raw.bytes_per_voxel != size || static_cast<size_t>(raw.count) != n)
    return false;
  gzFile gz = gzopen(path.c_str(), "rb");
  if (!gz) return false;
  gzbuffer(gz, 1u << 20);
  if (gzseek(gz, raw.offset, SEEK_SET) != raw.offset) {
    gzclose(gz);
    throw InputError(path, "file is truncated: no voxel data after the header");
  }
  volume.data.resize(n);
  const size_t chunk = (size_t(8) << 20) / size;  // voxels per read
  std::vector<char> buffer(chunk * size);
  size_t done = 0;
  while (done < n) {
    const size_t want = std::min(chunk, n - done);
    const int got = gzread(gz, buffer.data(), static_cast<unsigned>(want * size));
    if (got < static_cast<int>(want * size)) {
      gzclose(gz);
      throw InputError(path, "file is truncated or its compressed data is corrupt");
    }
    // Conversion in parallel slices of the chunk while the next read waits: cheap, but it keeps
    // decompression the only serial part.
    parallel_for(
        static_cast<int64_t>(want),
        [&](int64_t b, int64_t e) {
          convert(buffer.data() + b * size, static_cast<size_t>(e - b), raw.swap, raw.slope,
                  raw.inter, volume.data.data() + done + b);
        },
        int64_t(1) << 18);
    done += want;
  }
  gzclose(gz);
  return true;
}

}  // namespace

bool is_nifti_path(const std::string& path) {
  const std::string p = lower(path);
  auto ends = [&](const std::string& e) {
    return p.size() > e.size() && p.compare(p.size() - e.size(), e.size(), e) == 0;
  };
  return ends(".nii") || ends(".nii.gz");
}

VolumeHeader read_volume_header(const std::string& path) {
  auto io = open_nifti_io(path);
  if (!read_raw_header(path).pixdim_ok)
    throw InputError(path, "voxel size (pixdim) is zero or not a number");
  VolumeHeader h;
  const unsigned ndim = io->GetNumberOfDimensions();
  if (ndim < 2 || ndim > 4)
    throw InputError(path,
                     "has " + std::to_string(ndim) + " dimensions; expected a 3D or 4D image");
  if (io->GetNumberOfComponents() != 1)
    throw InputError(path, "has " + std::to_string(io->GetNumberOfComponents()) +
                               " components per voxel; expected scalar voxels");
  h.ndim = static_cast<int>(std::max(3u, ndim));
  double total = 1.0;
  for (unsigned a = 0; a < 4; ++a) {
    const double n = a < ndim ? static_cast<double>(io->GetDimensions(a)) : 1.0;
    if (n < 1) throw InputError(path, "header has a zero dimension");
    if (a < 3)
      h.dims[a] = static_cast<int64_t>(n);
    else
      h.nvols = static_cast<int64_t>(n);
    total *= n;
  }
  if (total * sizeof(float) > static_cast<double>(memory_budget_bytes()))
    throw InputError(path, "header dimensions " + std::to_string(h.dims[0]) + "x" +
                               std::to_string(h.dims[1]) + "x" + std::to_string(h.dims[2]) + "x" +
                               std::to_string(h.nvols) + " exceed available memory");
  Vec3 origin{0, 0, 0}, spacing{1, 1, 1};
  std::array<double, 9> direction{1, 0, 0, 0, 1, 0, 0, 0, 1};
  for (unsigned a = 0; a < std::min(ndim, 3u); ++a) {
    spacing[a] = io->GetSpacing(a);
    origin[a] = io->GetOrigin(a);
    const auto axis = io->GetDirection(a);
    for (unsigned r = 0; r < std::min(ndim, 3u); ++r) direction[r * 3 + a] = axis[r];
  }
  for (int a = 0; a < 3; ++a) {
    if (!std::isfinite(spacing[a]) || spacing[a] <= 0)
      throw InputError(path, "voxel size along axis " + std::to_string(a) +
                                 " is zero, negative or not a number");
    if (!std::isfinite(origin[a])) throw InputError(path, "origin is not a finite number");
  }
  for (double d : direction)
    if (!std::isfinite(d)) throw InputError(path, "orientation matrix is not finite");
  h.vox2ras = vox2ras_from_itk(origin, spacing, direction);
  try {
    (void)h.vox2ras.inverse();
  } catch (const std::domain_error&) {
    throw InputError(path, "voxel-to-world affine is singular");
  }
  h.component_type = itk::ImageIOBase::GetComponentTypeAsString(io->GetComponentType());
  h.floating_point = io->GetComponentType() == itk::IOComponentEnum::FLOAT ||
                     io->GetComponentType() == itk::IOComponentEnum::DOUBLE;
  return h;
}

Volume read_volume(const std::string& path, bool require_4d, bool allow_nonfinite) {
  const VolumeHeader header = read_volume_header(path);
  if (require_4d && header.nvols < 2)
    throw InputError(path,
                     "is a 3D image; a 4D diffusion series (one volume per gradient) is required");
  const RawNifti raw = read_raw_header(path);
  if (raw.valid && !holds_all_voxels(path, raw))
    throw InputError(path, "file is truncated: it holds fewer voxels than its header declares");
  Volume volume;
  volume.dims = header.dims;
  volume.nvols = header.nvols;
  volume.vox2ras = header.vox2ras;
  const bool direct = read_voxels_direct(path, raw, volume);
  if (!direct)
    volume = header.ndim == 4 ? read_with_itk<4>(path, header) : read_with_itk<3>(path, header);
  if (!allow_nonfinite) {
    int64_t at = -1;
    const auto bad = std::find_if(volume.data.begin(), volume.data.end(),
                                  [](float v) { return !std::isfinite(v); });
    if (bad != volume.data.end()) at = bad - volume.data.begin();
    // niftilib turns NaN/Inf into 0, so after an ITK read the file itself is checked.
    if (at < 0 && header.floating_point && !direct) at = first_nonfinite_raw(path, raw);
    if (at >= 0)
      throw InputError(path, "contains NaN or infinite voxel values (first in volume " +
                                 std::to_string(at / volume.voxels_per_volume()) + ")");
  }
  return volume;
}

void write_volume(const Volume& volume, const std::string& path) {
  write_volume(volume, path, VolumeWriteOptions{});
}

void write_volume(const Volume& volume, const std::string& path, const VolumeWriteOptions& opts) {
  if (!is_nifti_path(path)) throw InputError(path, "output must be .nii or .nii.gz");
  if (volume.data.size() != static_cast<size_t>(volume.voxels_per_volume() * volume.nvols))
    throw std::logic_error("write_volume: data size does not match dimensions");
  const bool int16 = opts.type == VolumeWriteOptions::Type::Int16;
  if (volume.nvols > 1) {
    if (int16)
      write_with_itk<int16_t, 4>(volume, path, opts);
    else
      write_with_itk<float, 4>(volume, path, opts);
  } else {
    if (int16)
      write_with_itk<int16_t, 3>(volume, path, opts);
    else
      write_with_itk<float, 3>(volume, path, opts);
  }
}

}  // namespace ddcsr
