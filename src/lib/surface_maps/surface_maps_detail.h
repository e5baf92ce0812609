// Geometry shared by the surface-map computations (internal).
#pragma once
#include <utility>
#include <vector>

#include "ddcsr/mesh.h"
#include "diffcoseg/vec.h"

namespace ddcsr::surface_maps_detail {

using namespace ddcsr::diffcoseg;  // the 3-vector operators
using V3 = Vec3;

V3 face_normal_unscaled(const std::vector<V3>& x, const std::array<int32_t, 3>& f);
std::vector<V3> to_v3(const Mesh& m);
void from_v3(const std::vector<V3>& x, Mesh& m);
std::vector<V3> vertex_normals_of(const std::vector<V3>& x, const Mesh& m);
std::vector<double> vertex_areas(const std::vector<V3>& x, const Mesh& m);
double total_area(const std::vector<V3>& x, const Mesh& m);
double mean_edge_length(const std::vector<V3>& x, const Mesh& m);
std::vector<std::pair<int32_t, int32_t>> unique_edges(const Mesh& m);

}  // namespace ddcsr::surface_maps_detail
