// The deforming surface of DiffCoSeg (internal): a closed triangle mesh in a corner table
// (half-edge h = 3 * face + corner runs from corner h to the next corner of the same face), with
// the topology-preserving local operations of isotropic remeshing (Botsch & Kobbelt 2004): edge
// split, edge collapse under the link condition, edge flip, tangential relaxation. None of them
// changes the genus or the number of components.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <vector>

#include "ddcsr/affine.h"
#include "ddcsr/mesh.h"

namespace ddcsr::diffcoseg {

struct RemeshCounts {
  int64_t splits = 0, collapses = 0, flips = 0;
};

class FlowMesh {
 public:
  // Throws InputError unless `mesh` is a closed two-manifold.
  explicit FlowMesh(const Mesh& mesh);

  // Compacted copy (dead elements dropped) with float coordinates.
  Mesh to_mesh() const;
  // Drops dead elements in place, renumbering vertices and faces (and `vertex_flags` with them).
  void compact(std::vector<char>* vertex_flags = nullptr);

  int64_t num_vertices() const { return live_vertices_; }
  int64_t num_faces() const { return live_faces_; }
  int64_t vertex_slots() const { return static_cast<int64_t>(pos.size()); }
  int64_t face_slots() const { return static_cast<int64_t>(tri.size()); }
  bool vertex_alive(int64_t v) const { return !vdead_[v]; }
  bool face_alive(int64_t f) const { return !fdead_[f]; }

  // One remeshing pass toward edge length `target`: split edges longer than 4/3 target,
  // collapse edges shorter than 4/5 target (only when no neighbouring face folds and no new
  // edge gets long), flip edges towards valence 6. Leaves the mesh compacted.
  // With `region`, only edges between two of its vertices change, collapses skip the fold
  // test and may merge vertices of higher valence (for a crushed region about to be relaxed
  // again), vertices made by splits join it, and it is renumbered with the mesh.
  RemeshCounts remesh(double target, std::vector<char>* region = nullptr);
  // Moves every vertex (or those with mask[v]) a fraction `lambda` towards the centroid of its
  // neighbours, within its tangent plane when `tangential`. Jacobi style: deterministic.
  void relax(double lambda, bool tangential, const std::vector<char>* mask = nullptr);

  // Neighbours of v in rotation order (consecutive neighbours b, c span the face v, b, c).
  void one_ring(int32_t v, std::vector<int32_t>& out) const;
  // The same from a table built after the last topology change (valid after the constructor,
  // remesh() and compact()).
  const int32_t* ring_begin(int32_t v) const { return ring_.data() + ring_offset_[v]; }
  const int32_t* ring_end(int32_t v) const { return ring_.data() + ring_offset_[v + 1]; }
  // Area-weighted unit vertex normals (zero for dead vertices).
  std::vector<Vec3> vertex_normals() const;
  // Per vertex, a unit direction that points out of every incident face as far as possible
  // (the area-weighted normal, nudged away from faces it points behind), and the smallest
  // cosine it makes with those faces' normals (<= 0: no step along it clears every face).
  std::vector<Vec3> offset_directions(std::vector<double>* min_cosine = nullptr) const;
  Vec3 offset_direction(int32_t v, double& min_cosine) const;
  // Shortest incident edge length per vertex.
  std::vector<double> shortest_edges() const;
  double area() const;
  double mean_edge_length() const;

  std::vector<Vec3> pos;
  std::vector<std::array<int32_t, 3>> tri;

 private:
  static int32_t next(int32_t h) { return h - h % 3 + (h % 3 + 1) % 3; }
  static int32_t prev(int32_t h) { return h - h % 3 + (h % 3 + 2) % 3; }
  int32_t from(int32_t h) const { return tri[h / 3][h % 3]; }
  int32_t to(int32_t h) const { return tri[h / 3][(h % 3 + 1) % 3]; }
  void build_twins();
  void build_rings();
  double edge_length(int32_t h) const;
  bool connected(int32_t a, int32_t b) const;
  void split(int32_t h);
  bool try_collapse(int32_t h, double max_len, bool check_folds = true);
  bool try_flip(int32_t h);

  std::vector<int32_t> twin_;
  std::vector<int32_t> vhe_;  // one outgoing half-edge per vertex
  std::vector<int32_t> valence_;
  std::vector<char> vdead_, fdead_;
  std::vector<int64_t> ring_offset_;
  std::vector<int32_t> ring_;
  int64_t live_vertices_ = 0, live_faces_ = 0;
};

}  // namespace ddcsr::diffcoseg
