// SDFNet: the TorchScript network that maps the feature volume to signed distance maps (mm) of
// lh-white, lh-pial, rh-white and rh-pial. The model file (defined in models/sdfnet.py) carries
// its metadata as a JSON document in the archive member `extra/metadata.json`; loading checks it.
// No torch types here: the module lives behind a pimpl.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ddcsr/progress.h"
#include "ddcsr/volume.h"

namespace ddcsr {

constexpr const char* kSdfNetFormat = "ddcsr-sdfnet";
constexpr int kSdfNetFormatVersion = 1;
constexpr const char* kSdfNetArchitecture = "ddcsr-attention-unet3d";
constexpr int kSdfNetArchitectureVersion = 1;
// The member of the TorchScript archive (torch.jit.save `_extra_files`) holding the metadata.
constexpr const char* kSdfNetMetadataFile = "metadata.json";

// Output frames, in this order, of every SDFNet.
const std::vector<std::string>& sdfnet_outputs();

// "a,b,c": how channel and output names are written in messages.
std::string name_list(const std::vector<std::string>& names);

// What a model file says about itself.
struct SdfNetMetadata {
  std::string format;  // kSdfNetFormat
  int format_version = 0;
  std::string architecture;  // kSdfNetArchitecture
  int architecture_version = 0;
  std::vector<std::string> input_channels;      // feature names, in input order
  std::vector<std::string> lr_signed_channels;  // features whose sign flips in a left-right mirror
  std::vector<std::string> outputs;             // sdfnet_outputs()
  std::string output_units;                     // "mm"
  std::string sign_convention;                  // negative inside
  std::string normalisation;                    // how inputs are normalised (inside the model)
  double grid_spacing_mm = 0;  // isotropic spacing of the feature grid the model expects
  int size_multiple = 16;      // input extents must be multiples of this (2^levels)
  double output_range_mm = 0;  // outputs are bounded by +-this
  int width = 0, levels = 0;
  bool trained = false;
  std::string json;  // the whole document, including keys not interpreted here ("training")
};

// Parses and checks the document: InputError naming `path` when it is not JSON, is not an SDFNet
// metadata document of a supported format and architecture version, or is inconsistent.
SdfNetMetadata parse_sdfnet_metadata(const std::string& json_text, const std::string& path);

// InputError naming `path` when the model's input channels differ from `expected` (in names or
// order); an empty `expected` accepts any.
void check_sdfnet_channels(const SdfNetMetadata& metadata, const std::vector<std::string>& expected,
                           const std::string& path);

enum class Device { Auto, Cpu, Cuda };
// "auto", "cpu" or "cuda"; UsageError otherwise.
Device parse_device(const std::string& name);

struct SdfInferenceOptions {
  enum class Mode { Auto, Whole, Sliding };
  // Auto: whole volume when its memory estimate fits `memory_budget_mb`, else sliding window.
  Mode mode = Mode::Auto;
  double memory_budget_mb = 3072;
  // Sliding window: cubic patches of `patch` voxels overlapping by at least `overlap` voxels,
  // blended with a cosine-squared taper. Both are rounded to the model's size multiple so that
  // every patch sees the same pooling grid as the whole volume.
  int patch = 96;
  int overlap = 32;
  // Also predict from the left-right mirror of the features (lr-signed channels negated) and
  // average it, mirrored back, with the direct prediction. Training shows the network mirrored
  // patches, so both are estimates of the same maps; their mean is closer to the truth (held-out
  // MAE 5-7 % lower, models/README.md) for twice the inference time.
  bool mirror_average = true;
};

class SdfNet {
 public:
  // Loads a model file. InputError naming the file when it is unreadable, not TorchScript, lacks
  // or has unsupported metadata, or its channels differ from `expected_channels` (when given).
  // UsageError when `device` is Cuda and no CUDA device is usable. Sets LibTorch's intra-op
  // threads to ddcsr::thread_count().
  static SdfNet load(const std::string& path,
                     const std::vector<std::string>& expected_channels = {},
                     Device device = Device::Auto);

  SdfNet(SdfNet&&) noexcept;
  SdfNet& operator=(SdfNet&&) noexcept;
  ~SdfNet();

  const SdfNetMetadata& metadata() const;
  const std::string& path() const;
  std::string device_name() const;  // "cpu" or "cuda"

  // The four SDF frames (mm, sdfnet_outputs() order) on the grid of `features`, whose frames are
  // the model's input channels in order. InputError naming `source` when the frame count or the
  // grid spacing does not match the model. Deterministic on CPU for a given thread count.
  Volume predict(const Volume& features, const SdfInferenceOptions& options = {},
                 const ProgressFn& progress = {}, const std::string& source = "features") const;

  // Estimated peak memory (MB) of whole-volume inference on a grid of `dims`.
  double whole_volume_memory_mb(const std::array<int64_t, 3>& dims) const;
  // Whether predict() with `options` would run patch by patch on a grid of `dims`.
  bool uses_sliding_window(const std::array<int64_t, 3>& dims,
                           const SdfInferenceOptions& options) const;

  // Writes the module and its metadata (metadata().json) atomically.
  void save(const std::string& path) const;

  struct Impl;
  Impl& impl() { return *impl_; }  // for the training code in src/lib/sdfnet
  const Impl& impl() const { return *impl_; }

 private:
  explicit SdfNet(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ddcsr
