// Point location on a spherical mesh (internal to parcellation).
#pragma once
#include <array>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "ddcsr/affine.h"
#include "ddcsr/mesh.h"

namespace ddcsr::parcellation_detail {

// The face of a mesh on a sphere centred at the origin that the ray from the origin through a
// point crosses, with the point's barycentric weights in it. The weights are the signed volumes
// the ray spans with each edge, which needs no tolerance on the sphere's radius and finds a
// face that folded over as well. Faces are bucketed in a grid of cells about three edges wide;
// a hint (the previous answer for a point that moved a little) is tried first, with its
// neighbours.
class SphericalLocator {
 public:
  explicit SphericalLocator(const Mesh& sphere);
  struct Hit {
    int32_t face = -1;
    std::array<double, 3> weights{1, 0, 0};
  };
  Hit locate(const Vec3& point, int32_t hint = -1) const;
  const std::vector<std::array<int32_t, 3>>& faces() const { return faces_; }

 private:
  bool inside(int32_t face, const Vec3& d, std::array<double, 3>& w) const;
  int64_t key(const Vec3& p) const;
  std::vector<Vec3> x_;
  std::vector<std::array<int32_t, 3>> faces_;
  std::vector<std::vector<int32_t>> vertex_faces_;
  double cell_ = 1;
  std::unordered_map<int64_t, std::vector<int32_t>> cells_;
};

}  // namespace ddcsr::parcellation_detail
