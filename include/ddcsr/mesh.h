// The project's one triangle-mesh type. Coordinates are scanner RAS (mm) in memory, whatever
// the file held; surface writers convert to surface RAS where the format needs it.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ddcsr/frames.h"

namespace ddcsr {

struct Mesh {
  std::vector<std::array<float, 3>> vertices;
  std::vector<std::array<int32_t, 3>> faces;  // 0-based, counter-clockwise seen from outside
  std::map<std::string, std::vector<float>> scalars;  // per-vertex maps, e.g. "thickness"
  // Volume the surface belongs to (FreeSurfer footer); invalid when unknown.
  VolumeGeometry geometry;
  std::string hemi;     // "lh", "rh" or empty
  std::string surface;  // "white", "pial", ... or empty

  size_t num_vertices() const { return vertices.size(); }
  size_t num_faces() const { return faces.size(); }
};

// Counts of a mesh's combinatorial structure.
struct MeshTopology {
  int64_t vertices = 0, edges = 0, faces = 0;
  int64_t euler = 0;              // V - E + F
  int64_t components = 0;         // connected components over faces
  int64_t boundary_edges = 0;     // edges with one incident face
  int64_t nonmanifold_edges = 0;  // edges with more than two incident faces
  bool closed_manifold() const { return boundary_edges == 0 && nonmanifold_edges == 0; }
};
MeshTopology mesh_topology(const Mesh& mesh);

// Validates indices, finiteness of coordinates; throws InputError naming `source`.
void check_mesh(const Mesh& mesh, const std::string& source);

// Icosphere with `subdivisions` levels (0 = icosahedron, 20 faces), radius r, centred at c.
Mesh make_icosphere(int subdivisions, double radius = 1.0, const Vec3& centre = {0, 0, 0});

// Area-weighted per-vertex normals (unit length).
std::vector<std::array<float, 3>> vertex_normals(const Mesh& mesh);
double mesh_area(const Mesh& mesh);
// Signed volume enclosed (positive for outward-facing counter-clockwise faces).
double mesh_volume(const Mesh& mesh);
// Mean curvature per vertex (1/mm, FreeSurfer's sign: positive where the surface is concave, in
// sulci), from the cotangent Laplace-Beltrami operator with mixed Voronoi areas.
std::vector<float> mean_curvature(const Mesh& surface);

}  // namespace ddcsr
