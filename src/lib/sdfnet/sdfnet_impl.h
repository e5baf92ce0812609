// The torch side of ddcsr::SdfNet, shared by inference (sdfnet.cpp) and training (train.cpp).
#pragma once
#include <torch/script.h>

#include <nlohmann/json.hpp>
#include <string>

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

inline int64_t round_up(int64_t n, int64_t multiple) {
  return (n + multiple - 1) / multiple * multiple;
}

}  // namespace ddcsr
