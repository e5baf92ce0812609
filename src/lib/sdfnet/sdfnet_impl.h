// The torch side of ddcsr::SdfNet, shared by inference (sdfnet.cpp) and training (train.cpp).
#pragma once
#include <torch/script.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ddcsr/sdfnet/sdfnet.h"

namespace ddcsr {

struct SdfNet::Impl {
  torch::jit::Module module;
  SdfNetMetadata metadata;
  std::string path;
  torch::Device device{torch::kCPU};

  // Replaces the metadata document (re-parsed and checked, so what is saved is what loads).
  void set_metadata(const nlohmann::ordered_json& document);
};

// A Volume's frames as a [1, nvols, K, J, I] tensor (voxel i fastest, as in Volume::data).
// The tensor views the Volume's memory: keep the Volume alive and unchanged while it is used.
torch::Tensor volume_as_tensor(const Volume& volume);

// Tensor dimension of voxel axis `axis` (0 = i, 1 = j, 2 = k) in a [N, C, K, J, I] tensor.
inline int64_t tensor_dim_of_axis(int axis) { return 4 - axis; }

// Voxel axis (0 = i, 1 = j, 2 = k) closest to the world left-right axis.
int lr_axis_of(const Affine& vox2ras);

// Indices of the model's input channels whose sign flips in a left-right mirror.
std::vector<int64_t> lr_signed_channel_indices(const SdfNetMetadata& metadata);

// The left-right mirror of features [N, C, K, J, I] along voxel axis `lr_axis`, with the
// lr-signed channels negated: what training shows the network as a flipped patch.
torch::Tensor mirror_features(const torch::Tensor& features, int lr_axis,
                              const std::vector<int64_t>& lr_signed);

// The left-right mirror of SDF maps [N, 4, K, J, I]: flipped, and lh and rh exchanged, because
// a mirrored left hemisphere is a right one.
torch::Tensor mirror_sdf(const torch::Tensor& sdf, int lr_axis);

inline int64_t round_up(int64_t n, int64_t multiple) {
  return (n + multiple - 1) / multiple * multiple;
}

}  // namespace ddcsr
