#include "diffcoseg/flow_mesh.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "ddcsr/error.h"
#include "ddcsr/threads.h"
#include "diffcoseg/vec.h"

namespace ddcsr::diffcoseg {

FlowMesh::FlowMesh(const Mesh& mesh) {
  pos.reserve(mesh.vertices.size());
  for (const auto& v : mesh.vertices) pos.push_back({v[0], v[1], v[2]});
  tri.assign(mesh.faces.begin(), mesh.faces.end());
  vdead_.assign(pos.size(), 0);
  fdead_.assign(tri.size(), 0);
  live_vertices_ = static_cast<int64_t>(pos.size());
  live_faces_ = static_cast<int64_t>(tri.size());
  build_twins();
  build_rings();
}

void FlowMesh::build_rings() {
  const int64_t nv = static_cast<int64_t>(pos.size());
  ring_offset_.assign(nv + 1, 0);
  for (int64_t v = 0; v < nv; ++v)
    ring_offset_[v + 1] = ring_offset_[v] + (vdead_[v] ? 0 : valence_[v]);
  ring_.resize(ring_offset_[nv]);
  parallel_for(
      nv,
      [&](int64_t begin, int64_t end) {
        for (int64_t v = begin; v < end; ++v) {
          if (vdead_[v]) continue;
          int32_t* out = ring_.data() + ring_offset_[v];
          const int32_t h0 = vhe_[v];
          int32_t h = h0;
          do {
            *out++ = to(h);
            h = twin_[prev(h)];
          } while (h != h0);
        }
      },
      8192);
}

void FlowMesh::build_twins() {
  const int32_t nh = static_cast<int32_t>(3 * tri.size());
  const int32_t nv = static_cast<int32_t>(pos.size());
  auto key = [](int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  };
  std::vector<std::pair<uint64_t, int32_t>> edges;
  edges.reserve(nh);
  for (int32_t h = 0; h < nh; ++h) {
    if (fdead_[h / 3]) continue;
    const int32_t a = from(h), b = to(h);
    if (a < 0 || b < 0 || a >= nv || b >= nv || a == b)
      throw InputError("", "template mesh has an invalid face");
    edges.emplace_back(key(a, b), h);
  }
  std::sort(edges.begin(), edges.end());
  for (size_t i = 1; i < edges.size(); ++i)
    if (edges[i].first == edges[i - 1].first)
      throw InputError("", "template mesh is not a consistently oriented two-manifold");
  twin_.assign(nh, -1);
  for (const auto& [k, h] : edges) {
    const uint64_t rev = key(to(h), from(h));
    auto it = std::lower_bound(edges.begin(), edges.end(), std::make_pair(rev, int32_t(-1)));
    if (it == edges.end() || it->first != rev)
      throw InputError("", "template mesh is not closed (boundary edge)");
    twin_[h] = it->second;
  }
  vhe_.assign(nv, -1);
  std::vector<int32_t> incident(nv, 0);
  for (int32_t h = 0; h < nh; ++h) {
    if (fdead_[h / 3]) continue;
    vhe_[from(h)] = h;
    ++incident[from(h)];
  }
  valence_.assign(nv, 0);
  for (int32_t v = 0; v < nv; ++v) {
    if (vdead_[v]) continue;
    if (vhe_[v] < 0) throw InputError("", "template mesh has an isolated vertex");
    int32_t h = vhe_[v], count = 0;
    do {
      ++count;
      h = twin_[prev(h)];
    } while (h != vhe_[v] && count <= incident[v]);
    if (count != incident[v]) throw InputError("", "template mesh has a non-manifold vertex");
    valence_[v] = count;
  }
}

Mesh FlowMesh::to_mesh() const {
  Mesh out;
  std::vector<int32_t> remap(pos.size(), -1);
  for (size_t v = 0; v < pos.size(); ++v) {
    if (vdead_[v]) continue;
    remap[v] = static_cast<int32_t>(out.vertices.size());
    out.vertices.push_back({static_cast<float>(pos[v][0]), static_cast<float>(pos[v][1]),
                            static_cast<float>(pos[v][2])});
  }
  for (size_t f = 0; f < tri.size(); ++f)
    if (!fdead_[f]) out.faces.push_back({remap[tri[f][0]], remap[tri[f][1]], remap[tri[f][2]]});
  return out;
}

void FlowMesh::compact(std::vector<char>* vertex_flags) {
  std::vector<int32_t> vmap(pos.size(), -1), fmap(tri.size(), -1);
  int32_t nv = 0, nf = 0;
  for (size_t v = 0; v < pos.size(); ++v)
    if (!vdead_[v]) {
      vmap[v] = nv;
      pos[nv] = pos[v];
      if (vertex_flags) (*vertex_flags)[nv] = (*vertex_flags)[v];
      ++nv;
    }
  if (vertex_flags) vertex_flags->resize(nv);
  for (size_t f = 0; f < tri.size(); ++f)
    if (!fdead_[f]) fmap[f] = nf++;
  auto map_he = [&](int32_t h) { return 3 * fmap[h / 3] + h % 3; };
  std::vector<int32_t> twin(3 * nf), vhe(nv), valence(nv);
  for (size_t f = 0; f < tri.size(); ++f) {
    if (fdead_[f]) continue;
    const int32_t g = fmap[f];
    tri[g] = {vmap[tri[f][0]], vmap[tri[f][1]], vmap[tri[f][2]]};
    for (int k = 0; k < 3; ++k) twin[3 * g + k] = map_he(twin_[3 * f + k]);
  }
  for (size_t v = 0; v < vmap.size(); ++v)
    if (vmap[v] >= 0) {
      vhe[vmap[v]] = map_he(vhe_[v]);
      valence[vmap[v]] = valence_[v];
    }
  pos.resize(nv);
  tri.resize(nf);
  twin_.swap(twin);
  vhe_.swap(vhe);
  valence_.swap(valence);
  vdead_.assign(nv, 0);
  fdead_.assign(nf, 0);
  live_vertices_ = nv;
  live_faces_ = nf;
  build_rings();
}

void FlowMesh::one_ring(int32_t v, std::vector<int32_t>& out) const {
  out.clear();
  const int32_t h0 = vhe_[v];
  int32_t h = h0;
  do {
    out.push_back(to(h));
    h = twin_[prev(h)];
  } while (h != h0);
}

bool FlowMesh::connected(int32_t a, int32_t b) const {
  const int32_t h0 = vhe_[a];
  int32_t h = h0;
  do {
    if (to(h) == b) return true;
    h = twin_[prev(h)];
  } while (h != h0);
  return false;
}

double FlowMesh::edge_length(int32_t h) const { return norm(pos[to(h)] - pos[from(h)]); }

std::vector<Vec3> FlowMesh::vertex_normals() const {
  std::vector<Vec3> normals(pos.size(), Vec3{0, 0, 0});
  parallel_for(
      static_cast<int64_t>(pos.size()),
      [&](int64_t begin, int64_t end) {
        for (int64_t v = begin; v < end; ++v) {
          const int32_t *r = ring_begin(v), *e = ring_end(v);
          if (r == e) continue;
          const Vec3& p = pos[v];
          Vec3 sum{0, 0, 0};
          Vec3 prev = pos[*(e - 1)] - p;
          for (; r != e; ++r) {
            const Vec3 cur = pos[*r] - p;
            sum += cross(prev, cur);
            prev = cur;
          }
          normals[v] = normalized(sum);
        }
      },
      8192);
  return normals;
}

Vec3 FlowMesh::offset_direction(int32_t v, double& min_cosine) const {
  min_cosine = 1.0;
  const int32_t *r = ring_begin(v), *e = ring_end(v);
  if (r == e) return {0, 0, 0};
  thread_local std::vector<Vec3> fn;
  fn.clear();
  const Vec3& p = pos[v];
  Vec3 sum{0, 0, 0};
  Vec3 prev = pos[*(e - 1)] - p;
  for (; r != e; ++r) {
    const Vec3 cur = pos[*r] - p;
    const Vec3 c = cross(prev, cur);
    sum += c;
    fn.push_back(normalized(c));
    prev = cur;
  }
  Vec3 d = normalized(sum);
  for (int it = 0; it < 8; ++it) {
    double worst = 1.0;
    Vec3 push{0, 0, 0};
    for (const Vec3& n : fn) {
      const double c = dot(d, n);
      worst = std::min(worst, c);
      if (c < 0.2) push += (0.2 - c) * n;
    }
    if (worst >= 0.2) break;
    d = normalized(d + push);
  }
  for (const Vec3& n : fn) min_cosine = std::min(min_cosine, dot(d, n));
  return d;
}

std::vector<Vec3> FlowMesh::offset_directions(std::vector<double>* min_cosine) const {
  std::vector<Vec3> dirs(pos.size(), Vec3{0, 0, 0});
  if (min_cosine) min_cosine->assign(pos.size(), 1.0);
  parallel_for(
      static_cast<int64_t>(pos.size()),
      [&](int64_t begin, int64_t end) {
        for (int64_t v = begin; v < end; ++v) {
          double c;
          dirs[v] = offset_direction(static_cast<int32_t>(v), c);
          if (min_cosine) (*min_cosine)[v] = c;
        }
      },
      8192);
  return dirs;
}

std::vector<double> FlowMesh::shortest_edges() const {
  std::vector<double> out(pos.size(), 0.0);
  parallel_for(
      static_cast<int64_t>(pos.size()),
      [&](int64_t begin, int64_t end) {
        for (int64_t v = begin; v < end; ++v) {
          double best = 1e30;
          for (const int32_t* r = ring_begin(v); r != ring_end(v); ++r) {
            const Vec3 d = pos[*r] - pos[v];
            best = std::min(best, dot(d, d));
          }
          out[v] = ring_begin(v) == ring_end(v) ? 0.0 : std::sqrt(best);
        }
      },
      8192);
  return out;
}

double FlowMesh::area() const {
  double a = 0;
  for (size_t f = 0; f < tri.size(); ++f) {
    if (fdead_[f]) continue;
    const auto& t = tri[f];
    a += 0.5 * norm(cross(pos[t[1]] - pos[t[0]], pos[t[2]] - pos[t[0]]));
  }
  return a;
}

double FlowMesh::mean_edge_length() const {
  double sum = 0;
  int64_t n = 0;
  for (int32_t h = 0; h < static_cast<int32_t>(3 * tri.size()); ++h) {
    if (fdead_[h / 3] || h > twin_[h]) continue;
    sum += edge_length(h);
    ++n;
  }
  return n ? sum / double(n) : 0.0;
}

void FlowMesh::split(int32_t h) {
  const int32_t t = twin_[h];
  const int32_t f = h / 3, g = t / 3;
  const int32_t hn = next(h), tn = next(t), tp = prev(t);
  const int32_t a = from(h), b = to(h), c = to(hn), d = to(tn);
  const int32_t t_bc = twin_[hn], t_ad = twin_[tn];
  (void)tp;
  const int32_t m = static_cast<int32_t>(pos.size());
  pos.push_back(0.5 * (pos[a] + pos[b]));
  vhe_.push_back(-1);
  valence_.push_back(4);
  vdead_.push_back(0);
  const int32_t nf = static_cast<int32_t>(tri.size()), ng = nf + 1;
  tri[f][(h % 3 + 1) % 3] = m;  // f: a, m, c
  tri[g][(t % 3 + 1) % 3] = m;  // g: b, m, d
  tri.push_back({m, b, c});
  tri.push_back({m, a, d});
  fdead_.push_back(0);
  fdead_.push_back(0);
  twin_.resize(3 * tri.size());
  auto link = [&](int32_t x, int32_t y) {
    twin_[x] = y;
    twin_[y] = x;
  };
  link(h, 3 * ng);
  link(3 * nf, t);
  link(hn, 3 * nf + 2);
  link(3 * nf + 1, t_bc);
  link(tn, 3 * ng + 2);
  link(3 * ng + 1, t_ad);
  vhe_[m] = 3 * nf;
  vhe_[a] = h;
  vhe_[b] = 3 * nf + 1;
  ++valence_[c];
  ++valence_[d];
  ++live_vertices_;
  live_faces_ += 2;
}

bool FlowMesh::try_flip(int32_t h) {
  const int32_t t = twin_[h];
  const int32_t f = h / 3, g = t / 3;
  const int32_t hn = next(h), hp = prev(h), tn = next(t), tp = prev(t);
  const int32_t a = from(h), b = to(h), c = to(hn), d = to(tn);
  if (c == d || valence_[a] <= 3 || valence_[b] <= 3) return false;
  auto dev = [](int32_t v) { return std::abs(v - 6); };
  const int before = dev(valence_[a]) + dev(valence_[b]) + dev(valence_[c]) + dev(valence_[d]);
  const int after =
      dev(valence_[a] - 1) + dev(valence_[b] - 1) + dev(valence_[c] + 1) + dev(valence_[d] + 1);
  if (after >= before) return false;
  // Only flip within a nearly flat quad, so the surface's shape stays where it was.
  const Vec3 nf = cross(pos[b] - pos[a], pos[c] - pos[a]);
  const Vec3 ng = cross(pos[a] - pos[b], pos[d] - pos[b]);
  const Vec3 n1 = cross(pos[d] - pos[a], pos[c] - pos[a]);
  const Vec3 n2 = cross(pos[c] - pos[b], pos[d] - pos[b]);
  const Vec3 navg = normalized(normalized(nf) + normalized(ng));
  if (dot(normalized(nf), normalized(ng)) < 0.7) return false;
  if (dot(normalized(n1), navg) < 0.5 || dot(normalized(n2), navg) < 0.5) return false;
  if (connected(c, d)) return false;
  const int32_t t_bc = twin_[hn], t_ca = twin_[hp], t_ad = twin_[tn], t_db = twin_[tp];
  tri[f] = {a, d, c};
  tri[g] = {b, c, d};
  auto link = [&](int32_t x, int32_t y) {
    twin_[x] = y;
    twin_[y] = x;
  };
  link(3 * f, t_ad);
  link(3 * f + 1, 3 * g + 1);
  link(3 * f + 2, t_ca);
  link(3 * g, t_bc);
  link(3 * g + 2, t_db);
  vhe_[a] = 3 * f;
  vhe_[d] = 3 * f + 1;
  vhe_[c] = 3 * f + 2;
  vhe_[b] = 3 * g;
  --valence_[a];
  --valence_[b];
  ++valence_[c];
  ++valence_[d];
  return true;
}

bool FlowMesh::try_collapse(int32_t h, double max_len, bool check_folds) {
  const int32_t t = twin_[h];
  const int32_t f = h / 3, g = t / 3;
  const int32_t hn = next(h), hp = prev(h), tn = next(t), tp = prev(t);
  const int32_t a = from(h), b = to(h), c = to(hn), d = to(tn);
  if (c == d || valence_[c] <= 3 || valence_[d] <= 3) return false;
  // A crushed region (no fold test) may hold vertices of high valence that must merge anyway.
  const int32_t merged_valence = valence_[a] + valence_[b] - 4;
  if (merged_valence < 3 || merged_valence > (check_folds ? 10 : 20)) return false;
  // Link condition: a and b share exactly the neighbours c and d.
  thread_local std::vector<int32_t> ring_a, ring_b;
  one_ring(a, ring_a);
  one_ring(b, ring_b);
  for (int32_t x : ring_b)
    if (x != a && x != c && x != d && std::find(ring_a.begin(), ring_a.end(), x) != ring_a.end())
      return false;
  const Vec3 p = 0.5 * (pos[a] + pos[b]);
  // No new long edge, no face around a or b that folds or degenerates.
  for (int32_t v : {a, b}) {
    const int32_t h0 = vhe_[v];
    int32_t e = h0;
    do {
      const int32_t face = e / 3;
      if (face != f && face != g) {
        const int32_t x = to(e), y = to(next(e));
        if (norm(pos[x] - p) > max_len) return false;
        if (check_folds) {
          const Vec3 before = cross(pos[x] - pos[v], pos[y] - pos[v]);
          const Vec3 after = cross(pos[x] - p, pos[y] - p);
          const double la = norm(after);
          if (la < 1e-12 || dot(before, after) < 0.2 * norm(before) * la) return false;
        }
      }
      e = twin_[prev(e)];
    } while (e != h0);
  }
  const int32_t t_bc = twin_[hn], t_ca = twin_[hp], t_ad = twin_[tn], t_db = twin_[tp];
  {
    const int32_t h0 = vhe_[b];
    int32_t e = h0;
    std::vector<int32_t> outgoing;
    do {
      outgoing.push_back(e);
      e = twin_[prev(e)];
    } while (e != h0);
    for (int32_t o : outgoing)
      if (o / 3 != f && o / 3 != g) tri[o / 3][o % 3] = a;
  }
  auto link = [&](int32_t x, int32_t y) {
    twin_[x] = y;
    twin_[y] = x;
  };
  link(t_ca, t_bc);
  link(t_ad, t_db);
  fdead_[f] = fdead_[g] = 1;
  vdead_[b] = 1;
  pos[a] = p;
  vhe_[a] = t_ca;
  vhe_[c] = t_bc;
  vhe_[d] = t_ad;
  valence_[a] += valence_[b] - 4;
  --valence_[c];
  --valence_[d];
  --live_vertices_;
  live_faces_ -= 2;
  return true;
}

RemeshCounts FlowMesh::remesh(double target, std::vector<char>* region) {
  RemeshCounts counts;
  const double hi = 4.0 / 3.0 * target, lo = 4.0 / 5.0 * target;
  // Live edges this pass may change: each once (h < twin), and inside `region` when given.
  auto open = [&](int32_t h) {
    if (fdead_[h / 3] || h > twin_[h]) return false;
    return !region || ((*region)[from(h)] && (*region)[to(h)]);
  };
  for (int pass = 0; pass < 8; ++pass) {
    int64_t n = 0;
    const int32_t nh = static_cast<int32_t>(3 * tri.size());
    for (int32_t h = 0; h < nh; ++h) {
      if (!open(h)) continue;
      if (edge_length(h) > hi) {
        split(h);
        if (region) region->push_back(1);
        ++n;
      }
    }
    counts.splits += n;
    if (n == 0) break;
  }
  for (int32_t h = 0; h < static_cast<int32_t>(3 * tri.size()); ++h) {
    if (!open(h)) continue;
    if (edge_length(h) < lo && try_collapse(h, hi, region == nullptr)) ++counts.collapses;
  }
  for (int pass = 0; pass < 2; ++pass)
    for (int32_t h = 0; h < static_cast<int32_t>(3 * tri.size()); ++h) {
      if (!open(h)) continue;
      if (try_flip(h)) ++counts.flips;
    }
  compact(region);
  return counts;
}

void FlowMesh::relax(double lambda, bool tangential, const std::vector<char>* mask) {
  const std::vector<Vec3> normals = tangential ? vertex_normals() : std::vector<Vec3>();
  std::vector<Vec3> moved(pos);
  parallel_for(
      static_cast<int64_t>(pos.size()),
      [&](int64_t begin, int64_t end) {
        for (int64_t v = begin; v < end; ++v) {
          const int32_t *r = ring_begin(v), *e = ring_end(v);
          if (r == e || (mask && !(*mask)[v])) continue;
          Vec3 centroid{0, 0, 0};
          for (const int32_t* q = r; q != e; ++q) centroid += pos[*q];
          Vec3 step = (1.0 / double(e - r)) * centroid - pos[v];
          if (tangential) step = step - dot(step, normals[v]) * normals[v];
          moved[v] = pos[v] + lambda * step;
        }
      },
      8192);
  pos.swap(moved);
}

}  // namespace ddcsr::diffcoseg
