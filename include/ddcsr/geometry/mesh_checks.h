// Geometric sanity of a surface: self-intersections and nesting of one surface in another.
// Topology counts (Euler characteristic, components) are mesh_topology() in ddcsr/mesh.h.
#pragma once
#include <utility>
#include <vector>

#include "ddcsr/mesh.h"

namespace ddcsr {

// Pairs (f, g), f < g, of faces that intersect although they are not adjacent, as CGAL's
// Polygon_mesh_processing::self_intersections defines it, but on the indexed triangle soup so
// that non-manifold meshes work too: faces sharing a vertex intersect only if an opposite edge
// pierces the other face; faces sharing an edge only if they are coplanar and fold onto each
// other. A degenerate (zero-area) face is reported as (f, f), as CGAL does. Exact predicates.
// Sorted; identical whatever the thread count.
std::vector<std::pair<int, int>> self_intersections(const Mesh& mesh);

// Percentage (0-100) of faces that appear in self_intersections(): the field's "SIF".
double self_intersection_fraction(const Mesh& mesh);
// The same from an already computed list.
double self_intersection_fraction(const std::vector<std::pair<int, int>>& pairs, size_t num_faces);

// Percentage (0-100) of the vertices of `inner` that lie outside the closed mesh `outer`
// (e.g. white vertices outside the pial surface). Vertices within 0.001 mm of `outer` count as
// inside: white and pial coincide along the medial wall.
double fraction_vertices_outside(const Mesh& inner, const Mesh& outer);

}  // namespace ddcsr
