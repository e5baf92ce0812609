// Geometry shared by the surface-map computations (internal).
#pragma once
#include <tuple>
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
// The cotangent Laplacian's edge weights at positions x: half the sum of the cotangents opposite
// each edge, clamped to at least 1e-3 (obtuse corners give negative weights; positive ones keep
// the smoothing system positive definite and Tutte's embedding one-to-one). One (i, j, w) per
// edge, i < j, sorted.
std::vector<std::tuple<int32_t, int32_t, double>> cotangent_weights(const std::vector<V3>& x,
                                                                    const Mesh& m);

}  // namespace ddcsr::surface_maps_detail
