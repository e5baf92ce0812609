#include "ddcsr/sdfnet/sdfnet.h"

#include <ATen/Parallel.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ddcsr/error.h"
#include "ddcsr/io/atomic_file.h"
#include "ddcsr/threads.h"
#include "sdfnet/sdfnet_impl.h"

namespace ddcsr {

namespace {

std::string short_torch_message(const c10::Error& e) {
  std::string msg = e.what_without_backtrace();
  auto nl = msg.find('\n');
  return nl == std::string::npos ? msg : msg.substr(0, nl);
}

// 1D blending weight at voxel x of a patch of n voxels. Sides inside the volume give no weight
// to their outer `margin` voxels (where zero padding stands in for missing context), then rise
// as sin^2 over `ramp` voxels; neighbours overlapping by 2 * margin + ramp cross-fade with
// weights summing to one. Sides on the padded volume's border see the same zero padding as
// whole-volume inference and keep full weight.
std::vector<float> taper(int64_t n, int64_t margin, int64_t ramp, bool low_border,
                         bool high_border) {
  auto rise = [&](double d) {
    if (d < margin) return 0.0;
    if (d >= margin + ramp) return 1.0;
    const double s = std::sin(0.5 * M_PI * (d - margin) / static_cast<double>(ramp));
    return s * s;
  };
  std::vector<float> w(static_cast<size_t>(n));
  for (int64_t x = 0; x < n; ++x) {
    const double low = low_border ? 1.0 : rise(x + 0.5);
    const double high = high_border ? 1.0 : rise(n - x - 0.5);
    w[static_cast<size_t>(x)] = static_cast<float>(low * high);
  }
  return w;
}

// Patch starts along one axis of extent `extent` (a multiple of the patch size's multiple).
std::vector<int64_t> patch_starts(int64_t extent, int64_t patch, int64_t stride) {
  std::vector<int64_t> starts{0};
  while (starts.back() + patch < extent)
    starts.push_back(std::min(starts.back() + stride, extent - patch));
  return starts;
}

}  // namespace

void SdfNet::Impl::set_metadata(const nlohmann::ordered_json& document) {
  metadata = parse_sdfnet_metadata(document.dump(1), path);
}

int lr_axis_of(const Affine& vox2ras) {
  int best = 0;
  for (int a = 1; a < 3; ++a)
    if (std::fabs(vox2ras(0, a)) > std::fabs(vox2ras(0, best))) best = a;
  return best;
}

std::vector<int64_t> lr_signed_channel_indices(const SdfNetMetadata& metadata) {
  std::vector<int64_t> out;
  const auto& names = metadata.input_channels;
  for (const auto& c : metadata.lr_signed_channels)
    out.push_back(std::find(names.begin(), names.end(), c) - names.begin());
  return out;
}

torch::Tensor mirror_features(const torch::Tensor& features, int lr_axis,
                              const std::vector<int64_t>& lr_signed) {
  torch::Tensor out = features.flip({tensor_dim_of_axis(lr_axis)});
  for (int64_t c : lr_signed) out.select(1, c).neg_();
  return out;
}

torch::Tensor mirror_sdf(const torch::Tensor& sdf, int lr_axis) {
  return sdf.flip({tensor_dim_of_axis(lr_axis)})
      .index_select(1, torch::tensor({2, 3, 0, 1}, torch::kLong));
}

torch::Tensor volume_as_tensor(const Volume& volume) {
  return torch::from_blob(const_cast<float*>(volume.data.data()),
                          {1, volume.nvols, volume.dims[2], volume.dims[1], volume.dims[0]},
                          torch::kFloat32);
}

SdfNet::SdfNet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SdfNet::SdfNet(SdfNet&&) noexcept = default;
SdfNet& SdfNet::operator=(SdfNet&&) noexcept = default;
SdfNet::~SdfNet() = default;

SdfNet SdfNet::load(const std::string& path, const std::vector<std::string>& expected_channels,
                    Device device) {
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) throw InputError(path, "cannot open the model file");
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  if (device == Device::Cuda && !torch::cuda::is_available())
    throw UsageError("--device cuda: no usable CUDA device (this LibTorch may be CPU-only)");
  impl->device = (device == Device::Cuda || (device == Device::Auto && torch::cuda::is_available()))
                     ? torch::Device(torch::kCUDA)
                     : torch::Device(torch::kCPU);
  at::set_num_threads(thread_count());

  torch::jit::ExtraFilesMap extra{{kSdfNetMetadataFile, ""}};
  try {
    impl->module = torch::jit::load(path, impl->device, extra);
  } catch (const c10::Error& e) {
    throw InputError(path, "not a loadable TorchScript model: " + short_torch_message(e));
  }
  if (extra[kSdfNetMetadataFile].empty())
    throw InputError(path,
                     std::string("TorchScript file without extra/") + kSdfNetMetadataFile +
                         ": not a ddcsr SDFNet model (make one with models/sdfnet.py export)");
  impl->metadata = parse_sdfnet_metadata(extra[kSdfNetMetadataFile], path);
  check_sdfnet_channels(impl->metadata, expected_channels, path);

  // The file's code must match what the metadata claims.
  if (!impl->module.find_method("forward")) throw InputError(path, "model has no forward method");
  for (const char* buffer : {"input_mean", "input_std"}) {
    if (!impl->module.hasattr(buffer) || !impl->module.attr(buffer).isTensor())
      throw InputError(path, std::string("model lacks its normalisation buffer ") + buffer);
    if (impl->module.attr(buffer).toTensor().numel() !=
        static_cast<int64_t>(impl->metadata.input_channels.size()))
      throw InputError(path, std::string("normalisation buffer ") + buffer +
                                 " does not have one value per input channel");
  }
  impl->module.eval();
  return SdfNet(std::move(impl));
}

const SdfNetMetadata& SdfNet::metadata() const { return impl_->metadata; }
const std::string& SdfNet::path() const { return impl_->path; }
std::string SdfNet::device_name() const { return impl_->device.is_cuda() ? "cuda" : "cpu"; }

double SdfNet::whole_volume_memory_mb(const std::array<int64_t, 3>& dims) const {
  const auto& m = impl_->metadata;
  double voxels = 1;
  for (int a = 0; a < 3; ++a) voxels *= static_cast<double>(round_up(dims[a], m.size_multiple));
  // Floats per voxel at the peak, calibrated on the 1 mm whole-brain bench (width 8, 11 channels:
  // 2.1 GB peak RSS): the features and their padded copy, the output and its copy, and about
  // eight full-resolution feature maps of `width` channels in the decoder.
  const double width = m.width > 0 ? m.width : 16;
  const double channels = static_cast<double>(m.input_channels.size());
  const double floats = 2 * channels + 8 + 8 * width;
  return voxels * floats * 4.0 / 1e6;
}

bool SdfNet::uses_sliding_window(const std::array<int64_t, 3>& dims,
                                 const SdfInferenceOptions& options) const {
  switch (options.mode) {
    case SdfInferenceOptions::Mode::Whole:
      return false;
    case SdfInferenceOptions::Mode::Sliding:
      return true;
    case SdfInferenceOptions::Mode::Auto:
      break;
  }
  return whole_volume_memory_mb(dims) > options.memory_budget_mb;
}

Volume SdfNet::predict(const Volume& features, const SdfInferenceOptions& options,
                       const ProgressFn& progress, const std::string& source) const {
  const SdfNetMetadata& meta = impl_->metadata;
  const int64_t channels = static_cast<int64_t>(meta.input_channels.size());
  if (features.nvols != channels)
    throw InputError(source, "has " + std::to_string(features.nvols) + " frames but the model " +
                                 impl_->path + " expects " + std::to_string(channels) +
                                 " channels [" + name_list(meta.input_channels) + "]");
  if (features.data.size() != static_cast<size_t>(features.voxels_per_volume() * features.nvols))
    throw InputError(source, "voxel data size does not match its dimensions");
  const Vec3 spacing = features.spacing();
  for (int a = 0; a < 3; ++a) {
    if (std::fabs(spacing[a] - meta.grid_spacing_mm) > 0.02 * meta.grid_spacing_mm) {
      std::ostringstream msg;
      msg << "grid spacing " << spacing[0] << " x " << spacing[1] << " x " << spacing[2]
          << " mm, but the model " << impl_->path << " expects " << meta.grid_spacing_mm
          << " mm isotropic";
      throw InputError(source, msg.str());
    }
  }

  at::set_num_threads(thread_count());
  torch::NoGradGuard no_grad;
  // The profiling executor would run the first forward passes instrumented, about twice as slow;
  // plain interpretation of the scripted graph is what a one-shot inference (a pass or two, or
  // one per patch) wants.
  torch::jit::GraphOptimizerEnabledGuard no_optimize(false);
  torch::jit::Module& module = impl_->module;
  module.eval();

  const int64_t m = meta.size_multiple;
  const auto& d = features.dims;
  const bool sliding = uses_sliding_window(d, options);
  int64_t patch = round_up(std::max<int64_t>(options.patch, m), m);
  std::array<int64_t, 3> extent{};
  for (int a = 0; a < 3; ++a)
    extent[a] = sliding ? std::max(patch, round_up(d[a], m)) : round_up(d[a], m);

  auto run = [&](const torch::Tensor& x) {
    torch::Tensor y = module.forward({x.to(impl_->device)}).toTensor().to(torch::kCPU);
    if (y.dim() != 5 || y.size(1) != 4 || y.size(2) != x.size(2) || y.size(3) != x.size(3) ||
        y.size(4) != x.size(4))
      throw InputError(impl_->path, "model output has shape " + c10::str(y.sizes()) +
                                        ", expected [1, 4, " + c10::str(x.sizes().slice(2)) + "]");
    return y;
  };

  // The four maps on the grid of `voxels` ([1, C, d2, d1, d0]); progress runs from p0 to p1.
  auto infer = [&](const torch::Tensor& voxels, double p0, double p1) {
    auto step = [&](double f) { report(progress, p0 + (p1 - p0) * f); };
    // Zero padding at the high end keeps the whole-volume and patch grids aligned at voxel 0.
    torch::Tensor input = torch::zeros({1, channels, extent[2], extent[1], extent[0]});
    input.narrow(2, 0, d[2]).narrow(3, 0, d[1]).narrow(4, 0, d[0]).copy_(voxels);
    torch::Tensor sdf;
    if (!sliding) {
      step(0.0);
      sdf = run(input);
      step(1.0);
    } else {
      // Stride at least half a patch keeps both tapers of a patch inside it.
      const int64_t overlap = std::min(round_up(std::max<int64_t>(options.overlap, 0), m),
                                       std::max(m, patch / 2 / m * m));
      const int64_t stride = patch - overlap;
      const int64_t margin = overlap / 4, ramp = std::max<int64_t>(1, overlap - 2 * margin);
      std::array<std::vector<int64_t>, 3> starts;
      for (int a = 0; a < 3; ++a) starts[a] = patch_starts(extent[a], patch, stride);
      auto axis_weight = [&](int a, int64_t start) {
        std::vector<float> w = taper(patch, margin, ramp, start == 0, start + patch == extent[a]);
        return torch::tensor(w);
      };
      torch::Tensor accum = torch::zeros({1, 4, extent[2], extent[1], extent[0]});
      torch::Tensor weight = torch::zeros({extent[2], extent[1], extent[0]});
      const size_t total = starts[0].size() * starts[1].size() * starts[2].size();
      size_t done = 0;
      step(0.0);
      for (int64_t k0 : starts[2])
        for (int64_t j0 : starts[1])
          for (int64_t i0 : starts[0]) {
            torch::Tensor window =
                (axis_weight(2, k0).view({patch, 1, 1}) * axis_weight(1, j0).view({1, patch, 1}) *
                 axis_weight(0, i0).view({1, 1, patch}));
            torch::Tensor x =
                input.narrow(2, k0, patch).narrow(3, j0, patch).narrow(4, i0, patch).contiguous();
            torch::Tensor y = run(x);
            accum.narrow(2, k0, patch).narrow(3, j0, patch).narrow(4, i0, patch).add_(y * window);
            weight.narrow(0, k0, patch).narrow(1, j0, patch).narrow(2, i0, patch).add_(window);
            step(static_cast<double>(++done) / static_cast<double>(total));
          }
      sdf = accum / weight;
    }
    return sdf.narrow(2, 0, d[2]).narrow(3, 0, d[1]).narrow(4, 0, d[0]);
  };

  const torch::Tensor voxels = volume_as_tensor(features);
  torch::Tensor sdf;
  if (!options.mirror_average) {
    sdf = infer(voxels, 0.0, 1.0);
  } else {
    const int lr_axis = lr_axis_of(features.vox2ras);
    const torch::Tensor mirrored =
        mirror_features(voxels, lr_axis, lr_signed_channel_indices(meta));
    sdf = infer(voxels, 0.0, 0.5);
    sdf = 0.5 * (sdf + mirror_sdf(infer(mirrored, 0.5, 1.0), lr_axis));
  }

  Volume out(d, 4, features.vox2ras);
  torch::Tensor out_view =
      torch::from_blob(out.data.data(), {1, 4, d[2], d[1], d[0]}, torch::kFloat32);
  out_view.copy_(sdf);
  return out;
}

void SdfNet::save(const std::string& path) const {
  AtomicFile file(path);
  torch::jit::ExtraFilesMap extra{{kSdfNetMetadataFile, impl_->metadata.json}};
  try {
    impl_->module.save(file.temp_path(), extra);
  } catch (const c10::Error& e) {
    throw InputError(path, "cannot write the model: " + short_torch_message(e));
  }
  file.commit();
}

}  // namespace ddcsr
