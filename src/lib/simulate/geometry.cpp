// Procedural and real-surface ground-truth geometry; the design and its guarantees are in
// include/ddcsr/simulate/geometry.h.
#include "ddcsr/simulate/geometry.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "ddcsr/error.h"
#include "ddcsr/geometry/mesh_distance.h"
#include "ddcsr/io/surface.h"
#include "ddcsr/simulate/random.h"
#include "ddcsr/threads.h"

namespace fs = std::filesystem;

namespace ddcsr::sim {

namespace {

inline Vec3 add(const Vec3& a, const Vec3& b) { return {a[0] + b[0], a[1] + b[1], a[2] + b[2]}; }
inline Vec3 sub(const Vec3& a, const Vec3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
inline Vec3 mul(const Vec3& a, double s) { return {a[0] * s, a[1] * s, a[2] * s}; }
inline double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
inline Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
inline double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
inline Vec3 normalized(const Vec3& a) { return mul(a, 1.0 / norm(a)); }

// Polynomial smooth minimum: <= min(a, b), nondecreasing in both arguments and
// smin(a + c, b + c) = smin(a, b) + c; those three properties carry the nesting guarantee.
double smin(double a, double b, double k) {
  const double h = std::max(k - std::fabs(a - b), 0.0) / k;
  return std::min(a, b) - h * h * k * 0.25;
}
double smax(double a, double b, double k) { return -smin(-a, -b, k); }
// Smooth step from 0 (x << 0) to 1 (x >> 0), half-way at 0, over about [-1, 1].
double psi(double x) { return 0.5 + 0.5 * std::tanh(2.0 * x); }
double sigmoid01(double x) { return 0.5 + 0.5 * std::tanh(x); }
double smoothstep(double x) {
  x = std::clamp(x, 0.0, 1.0);
  return x * x * (3 - 2 * x);
}
// 1 over most of the unit disc, falling smoothly to 0 at its rim.
double plateau2(double x, double y) { return smoothstep((1.0 - (x * x + y * y)) / 0.35); }

// Smooth isotropic random field with unit variance: a sum of plane waves of one wavelength in
// random directions (a "random wave" model), so its level sets have a characteristic spacing.
struct WaveField {
  std::vector<Vec3> k;
  std::vector<double> phase;
  double amp = 0;
  WaveField() = default;
  WaveField(Random& rng, int n, double wavelength) {
    const double kk = 2 * M_PI / wavelength;
    for (int i = 0; i < n; ++i) {
      double d[3];
      rng.unit_vector(d);
      k.push_back({d[0] * kk, d[1] * kk, d[2] * kk});
      phase.push_back(rng.uniform(0, 2 * M_PI));
    }
    amp = std::sqrt(2.0 / n);
  }
  double value(const Vec3& x, Vec3* grad = nullptr) const {
    double v = 0;
    Vec3 g{0, 0, 0};
    for (size_t i = 0; i < k.size(); ++i) {
      const double arg = dot(k[i], x) + phase[i];
      v += std::cos(arg);
      if (grad) {
        const double s = -std::sin(arg);
        for (int c = 0; c < 3; ++c) g[c] += s * k[i][c];
      }
    }
    if (grad) *grad = mul(g, amp);
    return v * amp;
  }
};

// A bump on the unit sphere: amplitude * exp((u . dir - 1) / width).
struct Bump {
  Vec3 dir;
  double amplitude, width;
};

// Primary sulci of the right hemisphere, MNI-like mm (control points) and depth in mm.
struct SulcusSpec {
  std::vector<Vec3> points;
  double depth;
};
const SulcusSpec kPrimarySulci[] = {
    {{{38, 22, -14}, {48, 4, -4}, {52, -20, 8}, {50, -40, 20}, {44, -52, 30}},
     15},                                                                      // lateral (Sylvian)
    {{{58, -6, 28}, {48, -16, 50}, {32, -26, 66}, {12, -34, 76}}, 14},         // central
    {{{52, 14, -24}, {60, -14, -10}, {56, -40, 4}, {48, -58, 18}}, 12},        // superior temporal
    {{{2, -100, 2}, {3, -86, 6}, {4, -68, 6}}, 13},                            // calcarine
    {{{3, -66, 8}, {4, -72, 30}, {6, -72, 52}}, 13},                           // parieto-occipital
    {{{3, 36, 8}, {3, 24, 30}, {3, -4, 42}, {3, -34, 44}, {6, -46, 56}}, 11},  // cingulate
};

// A primary sulcus: a polyline on the hull (template mm) with its depth; the valley tapers to
// nothing over the last 12 mm at each end.
struct Curve {
  std::vector<Vec3> points;
  std::vector<double> arc;  // arc length at each point
  double depth = 12;
  Vec3 lo, hi;  // bounding box of the points
  // Distance from x to the polyline, the arc length of the closest point and, when asked, the
  // point itself.
  double distance(const Vec3& x, double& at, Vec3* closest = nullptr) const {
    double best = 1e30;
    at = 0;
    for (size_t i = 0; i + 1 < points.size(); ++i) {
      const Vec3 d = sub(points[i + 1], points[i]);
      const double len2 = dot(d, d);
      const double t = len2 > 0 ? std::clamp(dot(sub(x, points[i]), d) / len2, 0.0, 1.0) : 0.0;
      const Vec3 q = add(points[i], mul(d, t));
      const double dist = norm(sub(x, q));
      if (dist < best) {
        best = dist;
        at = arc[i] + t * (arc[i + 1] - arc[i]);
        if (closest) *closest = q;
      }
    }
    return best;
  }
  // Valleys are evaluated only within the bounding box of the points.
  bool in_box(const Vec3& x) const {
    return !(x[0] < lo[0] || x[1] < lo[1] || x[2] < lo[2] || x[0] > hi[0] || x[1] > hi[1] ||
             x[2] > hi[2]);
  }
  // 0 at either end, rising to 1 over 12 mm of arc length: sulci fade out rather than stop.
  double taper(double at) const { return smoothstep(std::min(at, arc.back() - at) / 12.0); }
};

// One right hemisphere (the left one is built the same way with its own draws, then mirrored).
struct HemisphereModel {
  Vec3 centre;            // star centre C in template space (mm)
  double sy = 1, sz = 1;  // A = diag(1, sy, sz)
  // Pre-stretch semi-axes: lateral (+x), medial (-x), anterior, posterior, superior, inferior.
  double ax_lat, ax_med, ay_ant, ay_post, az_sup, az_inf;
  std::vector<Bump> bumps;
  double half_gap;   // distance of each pial surface from the midplane (mm)
  double wall_ramp;  // w_w: width of the white valley walls (mm)
  double epsilon;    // regularises |grad f| near saddles of the fold field
  double touching;   // b where the pial banks touch: as narrow as the mesh can hold (mm)
  WaveField fold, depth, thickness, bank_gap;
  std::vector<Curve> curves;
  const GeometryOptions* opts;

  Vec3 stretch(const Vec3& v) const { return {v[0], sy * v[1], sz * v[2]}; }
  Vec3 to_template(const Vec3& u, double r) const { return add(centre, stretch(mul(u, r))); }
  // The hull point on the ray from the centre towards template point p.
  Vec3 project_to_hull(const Vec3& p) const {
    const Vec3 q = sub(p, centre);
    const Vec3 u = normalized(Vec3{q[0], q[1] / sy, q[2] / sz});
    return to_template(u, hull_radius(u));
  }

  // Ray parameter where the ray from C along u meets the fissure plane x = half_gap.
  double medial_limit(const Vec3& u) const {
    if (u[0] > -1e-6) return 1e6;
    return (centre[0] - half_gap) / (-u[0]);
  }

  double hull_radius(const Vec3& u) const {
    const double ax = u[0] >= 0 ? ax_lat : ax_med, ay = u[1] >= 0 ? ay_ant : ay_post,
                 az = u[2] >= 0 ? az_sup : az_inf;
    const double q =
        (u[0] / ax) * (u[0] / ax) + (u[1] / ay) * (u[1] / ay) + (u[2] / az) * (u[2] / az);
    double log_mod = 0;
    for (const auto& b : bumps) log_mod += b.amplitude * std::exp((dot(u, b.dir) - 1.0) / b.width);
    const double r = std::exp(log_mod) / std::sqrt(q);
    // Flatten the medial side: the hull keeps 2 mm clear of the fissure plane, room for a thin
    // cortex; thicker cortex is flattened against the plane by the final clamp in vertex().
    return smin(r, medial_limit(u) - 2.0, 8.0);
  }

  // The hull point on the ray along u and the hull's outward unit normal there.
  void hull_frame(const Vec3& u, Vec3& x, Vec3& n) const {
    x = to_template(u, hull_radius(u));
    // Hull normal by finite differences along two tangent directions.
    const Vec3 e = std::fabs(u[0]) < 0.6 ? Vec3{1, 0, 0} : Vec3{0, 1, 0};
    const Vec3 t1 = normalized(cross(u, e)), t2 = cross(u, t1);
    const double h = 2e-4;
    const Vec3 u1 = normalized(add(u, mul(t1, h))), u2 = normalized(add(u, mul(t2, h)));
    const Vec3 x1 = to_template(u1, hull_radius(u1)), x2 = to_template(u2, hull_radius(u2));
    n = normalized(cross(sub(x1, x), sub(x2, x)));
    if (dot(n, sub(x, centre)) < 0) n = mul(n, -1.0);
  }

  // Flat medial side (1 where the hull faces the fissure) and, on it, the non-cortical medial
  // wall around the corpus callosum and thalamus, which has no folds.
  static double medial_side(const Vec3& n) { return smoothstep((-n[0] - 0.7) / 0.2); }
  static double medial_wall(const Vec3& x, const Vec3& n) {
    return medial_side(n) * plateau2((x[1] + 5) / 42, (x[2] - 10) / 22);
  }

  // b, the half-gap between the opposite pial banks of a valley (mm). Where the bank_gap field
  // is below -0.1 (46% of the hull) the banks touch (b = touching, a CSF gap of ~0.1 mm, none
  // at imaging resolution, as in most adult sulci); elsewhere they open smoothly up to 0.9 mm.
  double bank_half_gap(const Vec3& x) const {
    const double open = smoothstep((bank_gap.value(x) + 0.1) / 1.4);
    return touching + (0.9 - touching) * open;
  }

  // 1 away from the primary sulci, falling to 0 between `from` + `over` and `from` mm of one
  // (less towards its tapered ends). At full strength (3 and 4 mm) it keeps the fold field's
  // valleys off the primary sulci, which run between unbroken gyri as the central sulcus does;
  // two valleys crossing at an angle would also need rays packed across both at once, which
  // the squeeze below cannot do.
  double fold_freedom(const Vec3& x, double from = 3.0, double over = 4.0) const {
    double free = 1.0;
    for (const auto& c : curves) {
      if (!c.in_box(x)) continue;
      double at;
      const double dist = c.distance(x, at);
      const double taper = c.taper(at);
      free *= 1.0 - taper * (1.0 - smoothstep((dist - from) / over));
    }
    return free;
  }

  // How far a ray at signed distance sigma (mm) from a valley's fundus moves towards it. The
  // pial valley reaches ~1.6 b from the fundus (b plus its ramp), for touching banks far less
  // than the ~0.6 mm triangles of the default mesh, and would fall between the vertices as a
  // row of pits. The rays within kCore of the fundus are packed into that width instead, at
  // c = 1.6 b / kCore times their spacing (~3 rows of the default mesh across a touching
  // valley), and those beyond follow, less and less from 1 mm to none at 2.5 mm (rays borrowed
  // from further out would thin the white valley's walls). sigma - squeeze(sigma) increases
  // with slope >= c > 0, so the rays keep their order: t / (1 + t^4)^(1/4) has slope in (0, 1]
  // and the fade only adds to the slope.
  static constexpr double kCore = 1.0;
  static double squeeze(double sigma, double b) {
    const double c = std::min(1.0, 1.6 * b / kCore);
    const double t = sigma / kCore;
    const double fade = 1.0 - smoothstep((std::fabs(sigma) - 1.0) / 1.5);
    return (1.0 - c) * kCore * t / std::sqrt(std::sqrt(1.0 + t * t * t * t)) * fade;
  }

  // The direction of the ray that replaces icosphere direction u0: moved on the hull towards
  // the nearest fold and primary-sulcus fundi by squeeze(). radial_hemisphere() checks the
  // triangulation of the moved directions, all the radial construction needs.
  Vec3 ray(const Vec3& u0) const {
    Vec3 x, n;
    hull_frame(u0, x, n);
    Vec3 grad;
    const double f = fold.value(x, &grad);
    const Vec3 grad_t = sub(grad, mul(n, dot(grad, n)));
    const double g = std::sqrt(dot(grad_t, grad_t) + epsilon * epsilon);
    // radii() takes |f| / g as the distance to the fold fundus; a step d along -grad_t / g
    // lowers f / g by d |grad_t|^2 / g^2 <= d, less near saddles, where the direction is
    // ill-defined and the valleys merge anyway. The fold squeeze fades out from 4 to 2 mm of a
    // primary sulcus, where the fold valleys are shallow or gone and the curve's own squeeze
    // takes over (it reaches 2.5 mm), so the two never compound.
    const double fold_move = fold_freedom(x, 2.0, 2.0) * squeeze(f / g, bank_half_gap(x));
    Vec3 y = sub(x, mul(grad_t, fold_move / g));
    for (const auto& c : curves) {
      if (!c.in_box(x)) continue;
      double at;
      Vec3 q{0, 0, 0};
      const double dist = c.distance(y, at, &q);
      if (!(dist > 1e-9)) continue;
      // Towards the closest point of the curve, in the tangent plane; squeeze(dist) / dist is
      // smooth across the curve. The move fades at the curve's ends over half the length of
      // the valley's own taper: a valley a few mm deep still needs its rays.
      Vec3 d = sub(y, q);
      d = sub(d, mul(n, dot(d, n)));
      const double taper = smoothstep(std::min(at, c.arc.back() - at) / 6.0);
      y = sub(y, mul(d, taper * squeeze(dist, bank_half_gap(y)) / dist));
    }
    const Vec3 q = sub(y, centre);
    return normalized(Vec3{q[0], q[1] / sy, q[2] / sz});
  }

  // Ray parameters of the white and pial surfaces along the ray u: the vertices are
  // to_template(u, rw) and to_template(u, rp).
  void radii(const Vec3& u, double& rw, double& rp) const {
    const GeometryOptions& o = *opts;
    const double r0 = hull_radius(u);
    Vec3 x, n;
    hull_frame(u, x, n);

    Vec3 grad;
    const double f = fold.value(x, &grad);
    const Vec3 grad_t = sub(grad, mul(n, dot(grad, n)));
    const double s = std::fabs(f) / std::sqrt(dot(grad_t, grad_t) + epsilon * epsilon);

    const double medial = medial_side(n);
    const double wall = medial_wall(x, n);
    double depth_here = o.depth_min + (o.depth_max - o.depth_min) * sigmoid01(1.5 * depth.value(x));
    // Shallower folds on the rest of the flat medial side, none next to a primary sulcus.
    depth_here *= (1.0 - 0.35 * medial) * (1.0 - wall) * fold_freedom(x);
    double crown = o.thickness_min + 0.3 +
                   (o.thickness_max - o.thickness_min - 0.3) * sigmoid01(1.2 * thickness.value(x));
    crown = o.thickness_min + (crown - o.thickness_min) * (1.0 - wall);
    const double b = bank_half_gap(x);
    const double a = b + crown;
    // A ramp of 0.6 b keeps the pial fundus at 96% of the valley depth (psi(1 / 0.6)) and the
    // banks within ~2.7 b of each other over 80% of it.
    const double pial_ramp = std::max(0.6 * b, b * wall_ramp / a);
    // psi((b - s)/pial_ramp) <= psi((a - s)/wall_ramp) for s >= 0 because pial_ramp >= b
    // wall_ramp / a (at s = 0) and pial_ramp <= 0.6 * 0.9 < wall_ramp (the slopes): every
    // valley digs the pial surface less than the white one.
    double dw = depth_here * psi((a - s) / wall_ramp);
    double dp = depth_here * psi((b - s) / pial_ramp);
    for (const auto& c : curves) {
      if (!c.in_box(x)) continue;
      double at;
      const double dist = c.distance(x, at);
      const double taper = c.taper(at);
      const double dc = c.depth * taper * (1.0 - wall);
      // Smooth maxima are nondecreasing in both arguments, so dp <= dw survives the union.
      dw = smax(dw, dc * psi((a - dist) / wall_ramp), 1.0);
      dp = smax(dp, dc * psi((b - dist) / pial_ramp), 1.0);
    }
    dp = std::min(dp, dw);
    const double thick =
        o.thickness_min +
        (crown - o.thickness_min) * (1.0 - 0.5 * std::min(1.0, dw / std::max(o.depth_max, 1.0)));

    const Vec3 au = stretch(u);
    const double au_len = norm(au);
    const double cos_theta = std::max(dot(mul(au, 1.0 / au_len), n), 0.6);
    const double q = cos_theta * au_len;  // template mm along the hull normal per unit of r
    rw = r0 - dw / q;
    rp = r0 + (thick - dp) / q;
    // Both radii go through the same monotone, translation-equivariant maps, the white one
    // shifted by delta, which keeps rp - rw >= delta (thickness_min along the ray).
    const double delta = o.thickness_min / au_len;
    const double floor_r = 0.4 * r0;
    rw = smax(rw, floor_r, 1.0);
    rp = smax(rp, floor_r + delta, 1.0);
    const double lim = medial_limit(u);
    rp = smin(rp, lim, 1.0);
    rw = smin(rw, lim - delta, 1.0);
  }

  // Where the warp is followed exactly along the ray u (see warp_along_rays()): 2 mm out from
  // the hull, about the pial surface of the convexity, and just inside the fissure plane on
  // the flat medial side, where the pial surface is flattened against it.
  double anchor_radius(const Vec3& u) const {
    return smin(hull_radius(u) + 2.0 / norm(stretch(u)), medial_limit(u), 1.0);
  }
};

HemisphereModel draw_hemisphere(const GeometryOptions& o, int hemi) {
  Random rng(mix_seed(o.seed, 100 + hemi));
  auto jitter = [&](double v, double rel) { return v * (1.0 + rng.uniform(-rel, rel)); };
  HemisphereModel m;
  m.opts = &o;
  m.half_gap = 0.5 * o.fissure_gap;
  // MNI-like placement (origin near the anterior commissure), in template mm.
  m.centre = {jitter(34, 0.03), -16 + rng.uniform(-2, 2), 12 + rng.uniform(-2, 2)};
  m.sy = jitter(1.55, 0.04);
  m.sz = jitter(1.25, 0.04);
  // Semi-axes after the stretch, divided by it: the body before stretching is nearly round.
  m.ax_lat = jitter(34, 0.05);
  m.ax_med = m.centre[0] + 6;
  m.ay_ant = jitter(84, 0.04) / m.sy;
  m.ay_post = jitter(86, 0.04) / m.sy;
  m.az_sup = jitter(62, 0.04) / m.sz;
  m.az_inf = jitter(44, 0.05) / m.sz;
  // Bumps are placed by their template direction; the stretch changes directions, so map them
  // back through A^-1 to the pre-stretch sphere.
  auto pre_dir = [&](Vec3 d) { return normalized(Vec3{d[0], d[1] / m.sy, d[2] / m.sz}); };
  // Temporal lobe: bulges down and forward on the lateral side; occipital pole a little.
  m.bumps.push_back({pre_dir(normalized({0.55, 0.25, -0.8})), jitter(0.16, 0.2), 0.12});
  m.bumps.push_back({pre_dir(normalized({0.2, -1.0, -0.1})), jitter(0.05, 0.4), 0.2});
  // Orbitofrontal flattening.
  m.bumps.push_back({pre_dir(normalized({0.3, 0.6, -0.75})), -jitter(0.08, 0.3), 0.1});
  for (int i = 0; i < 6; ++i) {
    double d[3];
    rng.unit_vector(d);
    m.bumps.push_back({{d[0], d[1], d[2]}, rng.uniform(-0.05, 0.05), rng.uniform(0.1, 0.35)});
  }
  const double wavelength = jitter(o.fold_wavelength, 0.08);
  m.wall_ramp = jitter(1.2, 0.1);
  m.epsilon = 0.25 * 2 * M_PI / wavelength;
  // Touching banks 0.12 mm apart on the default mesh (level 7: ~0.6 mm triangles, packed ~10x
  // across the valley by HemisphereModel::squeeze); a coarser mesh cannot hold them, so there
  // the narrowest gap doubles per level, up to the 0.8 mm of the open valleys' low end.
  m.touching = std::min(0.4, 0.06 * std::ldexp(1.0, std::max(0, 7 - o.mesh_level)));
  m.fold = WaveField(rng, 64, wavelength);
  m.depth = WaveField(rng, 16, 80);
  m.thickness = WaveField(rng, 16, 60);
  m.bank_gap = WaveField(rng, 16, 50);
  // Primary sulci at MNI-like positions, each control point jittered, then laid on the hull.
  for (const auto& spec : kPrimarySulci) {
    Curve c;
    c.depth = std::min(o.depth_max, spec.depth) * rng.uniform(0.85, 1.0);
    std::vector<Vec3> ctrl;
    for (const auto& p : spec.points)
      ctrl.push_back(
          {p[0] + rng.uniform(-3, 3), p[1] + rng.uniform(-4, 4), p[2] + rng.uniform(-4, 4)});
    for (size_t i = 0; i + 1 < ctrl.size(); ++i)
      for (int t = 0; t < 8; ++t) {
        const Vec3 p = add(ctrl[i], mul(sub(ctrl[i + 1], ctrl[i]), t / 8.0));
        c.points.push_back(m.project_to_hull(p));
      }
    c.points.push_back(m.project_to_hull(ctrl.back()));
    c.arc.assign(1, 0.0);
    c.lo = c.hi = c.points[0];
    for (size_t i = 1; i < c.points.size(); ++i) {
      c.arc.push_back(c.arc.back() + norm(sub(c.points[i], c.points[i - 1])));
      for (int a = 0; a < 3; ++a) {
        c.lo[a] = std::min(c.lo[a], c.points[i][a]);
        c.hi[a] = std::max(c.hi[a], c.points[i][a]);
      }
    }
    // The box grows by the widest valley reach so the quick rejection test stays exact enough.
    for (int a = 0; a < 3; ++a) {
      c.lo[a] -= 12;
      c.hi[a] += 12;
    }
    m.curves.push_back(std::move(c));
  }
  return m;
}

Vec3 to_vec3(const std::array<float, 3>& v) { return {v[0], v[1], v[2]}; }
std::array<float, 3> to_float3(const Vec3& v) {
  return {static_cast<float>(v[0]), static_cast<float>(v[1]), static_cast<float>(v[2])};
}

void transform_mesh(Mesh& mesh, const SmoothWarp& warp, const Affine& similarity) {
  parallel_for(
      static_cast<int64_t>(mesh.vertices.size()),
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
          mesh.vertices[i] = to_float3(similarity.apply(warp.apply(to_vec3(mesh.vertices[i]))));
      },
      4096);
}

struct Box {
  Vec3 lo{1e30, 1e30, 1e30}, hi{-1e30, -1e30, -1e30};
  void add(const Vec3& p) {
    for (int c = 0; c < 3; ++c) {
      lo[c] = std::min(lo[c], p[c]);
      hi[c] = std::max(hi[c], p[c]);
    }
  }
  Vec3 centre() const { return mul(::ddcsr::sim::add(lo, hi), 0.5); }
};

// Bounding-box centre of fsaverage's pial surfaces (MNI305): where the MNI-like positions of
// ventricles and nuclei below are anchored; other inputs shift them by their own box centre.
const Vec3 kMniBrainCentre{0.0, -17.0, 15.0};
const double kTypicalScale = 0.92;

// Ventricles and deep grey nuclei of the right hemisphere in MNI-like mm: centre, semi-axes,
// Euler angles (degrees). The left ones mirror them.
struct EllipsoidSpec {
  Vec3 centre, semi_axes, angles_deg;
};
const EllipsoidSpec kVentricles[] = {
    {{11, 2, 16}, {5, 26, 7}, {-12, 0, 0}},       // frontal horn and body
    {{21, -36, 10}, {6, 13, 8}, {25, 0, 18}},     // atrium and occipital horn
    {{29, -14, -12}, {3.5, 13, 4}, {28, 0, -8}},  // temporal horn
};
const EllipsoidSpec kDeepGrey[] = {
    {{11, -18, 6}, {8, 14, 9}, {0, 0, 0}},    // thalamus
    {{24, 1, 0}, {6.5, 15, 10}, {0, 0, -5}},  // lentiform nucleus
    {{13, 13, 10}, {5, 10, 8}, {-15, 0, 0}},  // caudate head
};

// Hindbrain of the right side (the left mirrors it): cerebellar hemisphere around its white
// core; the brainstem is on the midline.
const EllipsoidSpec kCerebellum{{24, -64, -34}, {24, 25, 16}, {-10, 0, 0}};
const EllipsoidSpec kCerebellarWhite{{17, -58, -31}, {10, 13, 8}, {-10, 0, 0}};
const EllipsoidSpec kBrainstem{{0, -28, -40}, {11, 12, 28}, {-15, 0, 0}};

// Midline structures of the whole head, inside the procedural medial wall's plateau
// (((y + 5) / 42)^2 + ((z - 10) / 22)^2 < 0.65, where the wall has no folds and the thinnest
// cortex): genu, body and splenium of the corpus callosum; the diencephalon below the body;
// the third ventricle in it (its width is drawn).
const EllipsoidSpec kCallosum[] = {
    {{0, 18, 12}, {12, 7, 7}, {0, 0, 0}},
    {{0, -6, 19}, {14, 26, 4.5}, {0, 0, 0}},
    {{0, -30, 13}, {12, 6, 7}, {0, 0, 0}},
};
const EllipsoidSpec kDiencephalon{{0, -16, 2}, {9, 13, 7}, {0, 0, 0}};
const EllipsoidSpec kThirdVentricle{{0, -12, 4}, {2, 11, 5}, {0, 0, 0}};
const Vec3 kEye{32, 54, -38};

}  // namespace

std::array<double, 9> rotation_xyz(double ax, double ay, double az) {
  const double cx = std::cos(ax), sx = std::sin(ax), cy = std::cos(ay), sy = std::sin(ay),
               cz = std::cos(az), sz = std::sin(az);
  // Rz * Ry * Rx
  return {cz * cy,
          cz * sy * sx - sz * cx,
          cz * sy * cx + sz * sx,
          sz * cy,
          sz * sy * sx + cz * cx,
          sz * sy * cx - cz * sx,
          -sy,
          cy * sx,
          cy * cx};
}

Vec3 SmoothWarp::apply(const Vec3& x) const {
  Vec3 y = x;
  const double inv = 1.0 / (2 * sigma * sigma);
  for (size_t j = 0; j < centres.size(); ++j) {
    const Vec3 d = sub(x, centres[j]);
    const double g = std::exp(-dot(d, d) * inv);
    for (int c = 0; c < 3; ++c) y[c] += amplitudes[j][c] * g;
  }
  return y;
}

std::array<double, 9> SmoothWarp::jacobian(const Vec3& x) const {
  std::array<double, 9> J{1, 0, 0, 0, 1, 0, 0, 0, 1};
  const double inv = 1.0 / (2 * sigma * sigma);
  for (size_t j = 0; j < centres.size(); ++j) {
    const Vec3 d = sub(x, centres[j]);
    const double g = std::exp(-dot(d, d) * inv);
    // d/dx_c of a exp(-|d|^2/(2 s^2)) = -a d_c / s^2 * g
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) J[r * 3 + c] -= amplitudes[j][r] * d[c] * g / (sigma * sigma);
  }
  return J;
}

double SmoothWarp::lipschitz_bound() const {
  double sum = 0;
  for (const auto& a : amplitudes) sum += norm(a);
  return sum / (sigma * std::sqrt(std::exp(1.0)));
}

Mesh ellipsoid_mesh(const Vec3& centre, const Vec3& semi_axes,
                    const std::array<double, 9>& rotation, int level) {
  Mesh m = make_icosphere(level, 1.0);
  for (auto& v : m.vertices) {
    const Vec3 p{v[0] * semi_axes[0], v[1] * semi_axes[1], v[2] * semi_axes[2]};
    Vec3 q;
    for (int r = 0; r < 3; ++r)
      q[r] = centre[r] + rotation[r * 3] * p[0] + rotation[r * 3 + 1] * p[1] +
             rotation[r * 3 + 2] * p[2];
    v = to_float3(q);
  }
  return m;
}

namespace {

// A procedural hemisphere as rays from its star centre, kept until the warp (see
// warp_along_rays()). The left one is built as a right one and mirrored (x -> -x) at the end.
struct RadialHemisphere {
  HemisphereModel model;
  bool mirror = false;
  std::vector<Vec3> dir;                      // ray direction of each vertex
  std::vector<double> r_white, r_pial;        // ray parameters of its white and pial vertices
  std::vector<std::array<int32_t, 3>> faces;  // counter-clockwise seen from outside
  int64_t rays_repaired = 0;
  Vec3 point(size_t i, double r) const {
    Vec3 p = model.to_template(dir[i], r);
    if (mirror) p[0] = -p[0];
    return p;
  }
};

RadialHemisphere radial_hemisphere(const GeometryOptions& opts, int hemi) {
  if (opts.mesh_level < 2 || opts.mesh_level > 8)
    throw UsageError("--mesh-level must be between 2 and 8");
  if (!(opts.thickness_min >= 0.5 && opts.thickness_max > opts.thickness_min + 0.3))
    throw UsageError("thickness range must satisfy 0.5 <= min and min + 0.3 < max");
  if (!(opts.depth_min >= 0 && opts.depth_max >= opts.depth_min && opts.depth_max <= 25))
    throw UsageError("sulcal depth range must satisfy 0 <= min <= max <= 25 mm");
  RadialHemisphere h;
  h.model = draw_hemisphere(opts, hemi);
  h.mirror = hemi == 0;
  const Mesh sphere = make_icosphere(opts.mesh_level, 1.0);
  const int64_t n = static_cast<int64_t>(sphere.vertices.size());
  std::vector<Vec3> base(n), dir(n);
  parallel_for(
      n,
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          base[i] = normalized(to_vec3(sphere.vertices[i]));
          dir[i] = h.model.ray(base[i]);
        }
      },
      2048);
  // The radial construction holds for any triangulation of the sphere whose triangles all keep
  // their orientation: the moved directions are within a few hundredths of a radian of the
  // icosphere's, so the map has degree 1, and with no face turned over it is one-to-one and the
  // cones over the faces still tile space. A squeeze that varies much within one triangle (where
  // valleys meet) can turn it over, or nearly: a determinant below a twentieth of the
  // icosphere's (a sliver that float coordinates could turn). Such a face's corners move to
  // the centre of their neighbours, from the fourth round with the neighbours too, which
  // untangles the few there are (tens of rays per default hemisphere, in two or three rounds).
  // From the twelfth round they take back their icosphere directions instead: a face with
  // three of those is never flagged, so this ends, at the icosphere itself at the worst.
  const auto& faces = sphere.faces;
  auto det3 = [](const Vec3& a, const Vec3& b, const Vec3& c) { return dot(a, cross(b, c)); };
  std::vector<std::vector<int32_t>> neighbours(n);
  std::vector<char> touched(n, 0);
  for (int round = 0;; ++round) {
    std::vector<int32_t> flagged;
    for (const auto& f : faces)
      if (!(det3(dir[f[0]], dir[f[1]], dir[f[2]]) >
            0.05 * det3(base[f[0]], base[f[1]], base[f[2]])))
        flagged.insert(flagged.end(), f.begin(), f.end());
    if (flagged.empty()) break;
    if (round == 0)
      for (const auto& f : faces)
        for (int c = 0; c < 3; ++c) neighbours[f[c]].push_back(f[(c + 1) % 3]);
    std::vector<int32_t> ring = flagged;
    if (round >= 3)
      for (int32_t v : flagged) ring.insert(ring.end(), neighbours[v].begin(), neighbours[v].end());
    std::sort(ring.begin(), ring.end());
    ring.erase(std::unique(ring.begin(), ring.end()), ring.end());
    for (int32_t v : ring) touched[v] = 1;
    if (round < 12) {
      std::vector<Vec3> next(ring.size());
      for (size_t i = 0; i < ring.size(); ++i) {
        Vec3 sum{0, 0, 0};
        for (int32_t w : neighbours[ring[i]]) sum = add(sum, dir[w]);
        next[i] = normalized(sum);
      }
      for (size_t i = 0; i < ring.size(); ++i) dir[ring[i]] = next[i];
    } else {
      for (int32_t v : ring) dir[v] = base[v];
    }
  }
  h.rays_repaired = std::count(touched.begin(), touched.end(), 1);

  h.dir = std::move(dir);
  h.r_white.resize(n);
  h.r_pial.resize(n);
  parallel_for(
      n,
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) h.model.radii(h.dir[i], h.r_white[i], h.r_pial[i]);
      },
      2048);
  h.faces = sphere.faces;
  if (h.mirror)
    for (auto& f : h.faces) std::swap(f[1], f[2]);  // mirroring turns the faces inside out
  return h;
}

void template_meshes(const RadialHemisphere& h, Mesh& white, Mesh& pial) {
  const size_t n = h.dir.size();
  white.vertices.resize(n);
  pial.vertices.resize(n);
  for (size_t i = 0; i < n; ++i) {
    white.vertices[i] = to_float3(h.point(i, h.r_white[i]));
    pial.vertices[i] = to_float3(h.point(i, h.r_pial[i]));
  }
  white.faces = pial.faces = h.faces;
  white.hemi = pial.hemi = h.mirror ? "lh" : "rh";
  white.surface = "white";
  pial.surface = "pial";
}

// The warp W along the rays: the anchor point X_a = point(anchor_radius) of each ray goes to
// W(X_a) exactly, and the ray's other points keep their place on the straight line from W(C)
// through it, C the star centre: X = C + t (X_a - C) goes to W(C) + t (W(X_a) - W(C)). The warped
// hemisphere is thus again a radial surface, around W(C), over the directions of the W(X_a),
// and all of the guarantees of the construction carry over exactly once those directions'
// triangles keep their orientation, which is checked here (false when one does not; it holds
// unless the warp bends the anchor surface edge-on to W(C)). Applying W to the vertices would
// not do: the straight triangles between warped vertices miss the warped surface by up to
// |Hessian| L^2 / 8, tenths of a mm for the ~10 mm triangles of a steep sulcal wall, more than
// the gap between touching banks. With W = I + D, |D(x) - D(y)| <= 0.3 |x - y|, a point
// lands within 0.6 t |X - X_a| of where W would take it, and on the flat medial side the pial
// vertices lie within a mm of X_a (both near the fissure plane), so the hemispheres stay apart
// across the fissure much as under W (1.2-1.5 mm at the narrowest; the tests check that no
// faces meet). Along each ray, distances scale by |W(X_a) - W(C)| / |X_a - C|, in [0.7, 1.3].
bool warp_along_rays(const RadialHemisphere& h, const SmoothWarp& warp, const Affine& similarity,
                     Mesh& white, Mesh& pial) {
  const int64_t n = static_cast<int64_t>(h.dir.size());
  Vec3 c = h.model.centre;
  if (h.mirror) c[0] = -c[0];
  const Vec3 cw = warp.apply(c);
  std::vector<double> ra(n);
  std::vector<Vec3> anchor(n), moved(n);
  parallel_for(
      n,
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          ra[i] = h.model.anchor_radius(h.dir[i]);
          anchor[i] = h.point(i, ra[i]);
          moved[i] = warp.apply(anchor[i]);
        }
      },
      2048);
  auto det3 = [](const Vec3& a, const Vec3& b, const Vec3& c) { return dot(a, cross(b, c)); };
  for (const auto& f : h.faces) {
    const double before = det3(sub(anchor[f[0]], c), sub(anchor[f[1]], c), sub(anchor[f[2]], c));
    const double after = det3(sub(moved[f[0]], cw), sub(moved[f[1]], cw), sub(moved[f[2]], cw));
    if (!(after > 0.02 * before)) return false;
  }
  white.vertices.resize(n);
  pial.vertices.resize(n);
  parallel_for(
      n,
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          const Vec3 d = sub(moved[i], cw);
          white.vertices[i] = to_float3(similarity.apply(add(cw, mul(d, h.r_white[i] / ra[i]))));
          pial.vertices[i] = to_float3(similarity.apply(add(cw, mul(d, h.r_pial[i] / ra[i]))));
        }
      },
      2048);
  return true;
}

}  // namespace

void procedural_hemisphere(const GeometryOptions& opts, int hemi, Mesh& white, Mesh& pial,
                           int64_t* rays_repaired) {
  const RadialHemisphere h = radial_hemisphere(opts, hemi);
  template_meshes(h, white, pial);
  if (rays_repaired) *rays_repaired = h.rays_repaired;
}

std::vector<std::string> find_geometry_files(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw InputError(dir, "geometry folder does not exist");
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.is_regular_file(ec)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  std::vector<std::string> out;
  for (const char* hemi : {"lh", "rh"})
    for (const char* surf : {"white", "pial"}) {
      const std::string h = hemi, s = surf, side = h == "lh" ? "left" : "right";
      // Exact conventional names first, in this order of preference.
      const std::vector<std::string> preferred = {h + "." + s,
                                                  h + "." + s + ".surf.gii",
                                                  h + "." + s + ".gii",
                                                  h + "." + s + ".gii.gz",
                                                  s + "_" + side + ".gii.gz",
                                                  s + "_" + side + ".gii",
                                                  s + "_" + side + ".surf.gii"};
      std::string found;
      for (const auto& p : preferred)
        if (std::binary_search(names.begin(), names.end(), p)) {
          found = p;
          break;
        }
      if (found.empty()) {
        std::vector<std::string> guesses;
        for (const auto& name : names) {
          std::string gh, gs;
          guess_hemi_surface(name, gh, gs);
          if (gh == h && gs == s) guesses.push_back(name);
        }
        if (guesses.size() > 1)
          throw InputError(dir, "several files could be the " + h + " " + s +
                                    " surface: " + guesses[0] + ", " + guesses[1]);
        if (guesses.empty())
          throw InputError(dir, "no " + h + " " + s + " surface (expected e.g. " + h + "." + s +
                                    " or " + s + "_" + side + ".gii.gz)");
        found = guesses[0];
      }
      out.push_back((fs::path(dir) / found).string());
    }
  return out;
}

namespace {

void add_whole_head(const GeometryOptions& opts, const Vec3& anchor, PhantomGeometry& g) {
  Random rng(mix_seed(opts.seed, 203));
  auto place = [&](const EllipsoidSpec& spec, const Vec3& size) {
    const double j = opts.variability ? 1.0 : 0.0;
    const Vec3 c{spec.centre[0] + anchor[0], spec.centre[1] + j * rng.uniform(-2, 2) + anchor[1],
                 spec.centre[2] + j * rng.uniform(-1.5, 1.5) + anchor[2]};
    Mesh m = ellipsoid_mesh(
        c, {spec.semi_axes[0] * size[0], spec.semi_axes[1] * size[1], spec.semi_axes[2] * size[2]},
        rotation_xyz(0, 0, 0), 4);
    transform_mesh(m, g.warp, g.similarity);
    return m;
  };
  const double v = opts.variability ? 1.0 : 0.0;
  const double cc = 1 + v * rng.uniform(-0.15, 0.15);
  for (const auto& spec : kCallosum) g.callosum.push_back(place(spec, {1, 1, cc}));
  g.diencephalon.push_back(place(kDiencephalon, {1, 1, 1}));
  // Wider in older and atrophic brains.
  const double third = opts.variability ? rng.uniform(0.5, 1.6) : 1.0;
  g.third_ventricle.push_back(place(kThirdVentricle, {third, 1, 1}));
  g.parameters.push_back({"callosum_thickness_factor", cc});
  g.parameters.push_back({"third_ventricle_width_factor", third});

  // Eyes: pushed forwards (in the subject's frame) until clear of the pial surfaces.
  const MeshDistance pial_distance[2] = {MeshDistance(g.pial[0]), MeshDistance(g.pial[1])};
  const double lin_scale = std::cbrt(std::fabs(g.similarity.determinant()));
  const double radius = (opts.variability ? rng.uniform(11, 12.5) : 12.0) * lin_scale;
  const Vec3 forward = normalized(g.similarity.apply_linear({0, 1, 0}));
  const double clear = 12.0 * opts.scale;
  for (double side : {-1.0, 1.0}) {
    const Vec3 t{side * kEye[0] + anchor[0], kEye[1] + anchor[1], kEye[2] + anchor[2]};
    Vec3 c = g.similarity.apply(g.warp.apply(t));
    for (int it = 0; it < 200; ++it) {
      const double d =
          std::min(pial_distance[0].signed_distance(c), pial_distance[1].signed_distance(c)) -
          radius;
      if (d >= clear) break;
      c = add(c, mul(forward, std::max(0.5 * opts.scale, clear - d)));
    }
    g.eyes.push_back({c, radius});
  }
  g.parameters.push_back({"eye_radius_mm", radius});
}

}  // namespace

PhantomGeometry make_geometry(const GeometryOptions& opts, const ProgressFn& progress) {
  if (!(opts.scale >= 0.2 && opts.scale <= 2.0)) throw UsageError("--scale must be in [0.2, 2]");
  PhantomGeometry g;
  RadialHemisphere radial[2];  // procedural hemispheres as rays
  report(progress, 0.0);
  if (opts.geometry_dir.empty()) {
    g.source = "procedural";
    for (int h = 0; h < 2; ++h) {
      radial[h] = radial_hemisphere(opts, h);
      template_meshes(radial[h], g.white[h], g.pial[h]);
      g.parameters.push_back(
          {std::string(h == 0 ? "lh" : "rh") + "_rays_repaired", double(radial[h].rays_repaired)});
    }
  } else {
    g.source = opts.geometry_dir;
    g.source_files = find_geometry_files(opts.geometry_dir);
    Mesh* slots[] = {&g.white[0], &g.pial[0], &g.white[1], &g.pial[1]};
    for (int i = 0; i < 4; ++i) {
      Mesh m = read_surface(g.source_files[i]);
      const MeshTopology topo = mesh_topology(m);
      if (!topo.closed_manifold() || topo.components != 1)
        throw InputError(g.source_files[i],
                         "surface must be one closed manifold (has " +
                             std::to_string(topo.boundary_edges) + " boundary and " +
                             std::to_string(topo.nonmanifold_edges) + " non-manifold edges, " +
                             std::to_string(topo.components) + " components)");
      // Counter-clockwise seen from outside, as everything downstream assumes.
      if (mesh_volume(m) < 0)
        for (auto& f : m.faces) std::swap(f[1], f[2]);
      m.scalars.clear();
      m.geometry = VolumeGeometry{};
      m.hemi = i < 2 ? "lh" : "rh";
      m.surface = i % 2 == 0 ? "white" : "pial";
      *slots[i] = std::move(m);
    }
  }
  report(progress, 0.3);

  // Box of the template brain, for the warp centres and the extras' anchor.
  Box box;
  for (int h = 0; h < 2; ++h)
    for (const auto& v : g.pial[h].vertices) box.add(to_vec3(v));
  // The procedural template is MNI-like by construction; real surfaces may sit anywhere.
  const Vec3 anchor =
      opts.geometry_dir.empty() ? Vec3{0, 0, 0} : sub(box.centre(), kMniBrainCentre);
  g.mni_offset = anchor;

  // Extras in template space.
  Random extra_rng(mix_seed(opts.seed, 202));
  std::vector<std::pair<Mesh, int>> ventricles, nuclei;  // mesh and hemisphere
  for (int h = 0; h < 2; ++h) {
    const double side = h == 0 ? -1.0 : 1.0;
    const double ventricle_size = opts.variability ? extra_rng.uniform(0.8, 1.3) : 1.0;
    auto place = [&](const EllipsoidSpec& spec, double size,
                     std::vector<std::pair<Mesh, int>>& out) {
      const double jx = opts.variability ? extra_rng.uniform(-1.5, 1.5) : 0.0;
      const double jy = opts.variability ? extra_rng.uniform(-3, 3) : 0.0;
      const double jz = opts.variability ? extra_rng.uniform(-2, 2) : 0.0;
      const Vec3 c{side * (spec.centre[0] + jx) + anchor[0], spec.centre[1] + jy + anchor[1],
                   spec.centre[2] + jz + anchor[2]};
      const double d2r = M_PI / 180;
      // Mirroring x flips the sense of rotations about y and z.
      const auto rot = rotation_xyz(spec.angles_deg[0] * d2r, side * spec.angles_deg[1] * d2r,
                                    side * spec.angles_deg[2] * d2r);
      out.emplace_back(ellipsoid_mesh(c, mul(spec.semi_axes, size), rot, 3), h);
    };
    for (const auto& spec : kVentricles) place(spec, ventricle_size, ventricles);
    for (const auto& spec : kDeepGrey)
      place(spec, opts.variability ? extra_rng.uniform(0.9, 1.1) : 1.0, nuclei);
    g.parameters.push_back({std::string(h == 0 ? "lh" : "rh") + "_ventricle_size", ventricle_size});
  }
  // The hindbrain moves as one piece: outer surfaces first (cerebellum lh, rh, brainstem), then
  // the white cores (cerebellar lh, rh, brainstem again: it is all white matter).
  std::vector<Mesh> hindbrain;
  {
    const double size = opts.variability ? extra_rng.uniform(0.9, 1.1) : 1.0;
    // The legacy cerebellum (~60 ml) is half an adult's (~130 ml); the whole head, made to
    // teach where the cerebrum ends, grows it to 90-140 ml (a draw of its own generator).
    Vec3 grow{1, 1, 1};
    if (opts.whole_head) {
      Random grow_rng(mix_seed(opts.seed, 204));
      const double f = opts.variability ? grow_rng.uniform(1.1, 1.3) : 1.2;
      grow = {1.1 * f, f, f};
      g.parameters.push_back({"cerebellum_growth", f});
    }
    auto make = [&](const EllipsoidSpec& spec, double side) {
      const Vec3 c{side * spec.centre[0] + anchor[0], spec.centre[1] + anchor[1],
                   spec.centre[2] + anchor[2]};
      const double d2r = M_PI / 180;
      Vec3 semi = mul(spec.semi_axes, size);
      if (&spec != &kBrainstem)
        for (int a = 0; a < 3; ++a) semi[a] *= grow[a];
      return ellipsoid_mesh(c, semi,
                            rotation_xyz(spec.angles_deg[0] * d2r, side * spec.angles_deg[1] * d2r,
                                         side * spec.angles_deg[2] * d2r),
                            4);
    };
    hindbrain = {make(kCerebellum, -1),      make(kCerebellum, 1),      make(kBrainstem, 1),
                 make(kCerebellarWhite, -1), make(kCerebellarWhite, 1), make(kBrainstem, 1)};
  }

  // Warp and similarity.
  if (opts.variability) {
    Random rng(mix_seed(opts.seed, 200));
    g.warp.sigma = rng.uniform(32, 45);
    const int count = 8;
    for (int j = 0; j < count; ++j) {
      Vec3 c;
      for (int a = 0; a < 3; ++a) c[a] = rng.uniform(box.lo[a], box.hi[a]);
      double d[3];
      rng.unit_vector(d);
      g.warp.centres.push_back(c);
      g.warp.amplitudes.push_back({d[0], d[1], d[2]});
    }
    // Random magnitudes, then scaled so the Lipschitz bound of the displacement is 0.3.
    for (auto& a : g.warp.amplitudes) a = mul(a, rng.uniform(0.3, 1.0));
    const double bound = g.warp.lipschitz_bound();
    for (auto& a : g.warp.amplitudes) a = mul(a, 0.3 / bound);
  }
  Random sim_rng(mix_seed(opts.seed, 201));
  // Templates are MNI-sized, larger than a typical adult brain; kTypicalScale brings them to
  // ~1.15 l of brain tissue before the random scaling.
  const double iso =
      kTypicalScale *
      (opts.variability ? std::exp(std::clamp(sim_rng.normal(0, 0.06), -0.15, 0.15)) : 1.0);
  Vec3 axis_scale{1, 1, 1}, angles{0, 0, 0}, shift{0, 0, 0};
  if (opts.variability) {
    for (auto& s : axis_scale) s = std::exp(std::clamp(sim_rng.normal(0, 0.03), -0.08, 0.08));
    const double d2r = M_PI / 180;
    angles = {sim_rng.uniform(-10, 10) * d2r, sim_rng.uniform(-6, 6) * d2r,
              sim_rng.uniform(-8, 8) * d2r};
    for (auto& t : shift) t = sim_rng.uniform(-10, 10);
  }
  {
    const auto R = rotation_xyz(angles[0], angles[1], angles[2]);
    std::array<double, 9> lin;
    const double total = iso * opts.scale;
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) lin[r * 3 + c] = R[r * 3 + c] * axis_scale[c] * total;
    // Scale about the brain centre so that small --scale values shrink the head in place.
    const Vec3 centre = box.centre();
    Vec3 t;
    for (int r = 0; r < 3; ++r)
      t[r] = centre[r] + shift[r] -
             (lin[r * 3] * centre[0] + lin[r * 3 + 1] * centre[1] + lin[r * 3 + 2] * centre[2]);
    g.similarity = Affine::from_linear_translation(lin, t);
  }
  g.parameters.push_back({"scale_isotropic", iso * opts.scale});
  for (int a = 0; a < 3; ++a)
    g.parameters.push_back({std::string("scale_") + "xyz"[a], axis_scale[a]});
  for (int a = 0; a < 3; ++a)
    g.parameters.push_back({std::string("rotation_deg_") + "xyz"[a], angles[a] * 180 / M_PI});
  for (int a = 0; a < 3; ++a)
    g.parameters.push_back({std::string("shift_mm_") + "xyz"[a], shift[a]});
  report(progress, 0.4);

  if (opts.geometry_dir.empty()) {
    // Procedural hemispheres follow the warp along their rays, which keeps them radial surfaces
    // (see warp_along_rays()). Should a warp bend one edge-on, the warp is halved, for all of
    // the head, until neither does; no warp at all always passes.
    double warp_scale = 1.0;
    for (int attempt = 0;; ++attempt) {
      Mesh white[2] = {g.white[0], g.white[1]}, pial[2] = {g.pial[0], g.pial[1]};
      if (warp_along_rays(radial[0], g.warp, g.similarity, white[0], pial[0]) &&
          warp_along_rays(radial[1], g.warp, g.similarity, white[1], pial[1])) {
        for (int h = 0; h < 2; ++h) {
          g.white[h] = std::move(white[h]);
          g.pial[h] = std::move(pial[h]);
        }
        break;
      }
      const double factor = attempt < 4 ? 0.5 : 0.0;
      warp_scale *= factor;
      for (auto& a : g.warp.amplitudes) a = mul(a, factor);
    }
    g.parameters.push_back({"warp_scale", warp_scale});
  } else {
    for (int h = 0; h < 2; ++h) {
      transform_mesh(g.white[h], g.warp, g.similarity);
      transform_mesh(g.pial[h], g.warp, g.similarity);
    }
  }
  g.parameters.push_back({"warp_sigma_mm", g.warp.sigma});
  g.parameters.push_back({"warp_lipschitz_bound", g.warp.lipschitz_bound()});
  for (auto& e : ventricles) transform_mesh(e.first, g.warp, g.similarity);
  for (auto& e : nuclei) transform_mesh(e.first, g.warp, g.similarity);
  for (auto& m : hindbrain) transform_mesh(m, g.warp, g.similarity);
  report(progress, 0.5);

  // Shrink each extra about its centroid until it sits at least `margin` inside its
  // hemisphere's white surface; drop it when even a small copy does not.
  const MeshDistance white_distance[2] = {MeshDistance(g.white[0]), MeshDistance(g.white[1])};
  auto fit = [&](std::vector<std::pair<Mesh, int>>& list, double margin, std::vector<Mesh>& out,
                 const std::string& name) {
    for (size_t item = 0; item < list.size(); ++item) {
      auto& [mesh, h] = list[item];
      Vec3 c{0, 0, 0};
      for (const auto& v : mesh.vertices) c = add(c, to_vec3(v));
      c = mul(c, 1.0 / mesh.vertices.size());
      const std::vector<std::array<float, 3>> original = mesh.vertices;
      bool ok = false;
      double f = 1.0;
      for (; f > 0.3; f *= 0.92) {
        for (size_t i = 0; i < original.size(); ++i)
          mesh.vertices[i] = to_float3(add(c, mul(sub(to_vec3(original[i]), c), f)));
        ok = true;
        for (const auto& v : mesh.vertices)
          if (white_distance[h].signed_distance(to_vec3(v)) > -margin * opts.scale) {
            ok = false;
            break;
          }
        if (ok) break;
      }
      g.parameters.push_back({name + std::to_string(item) + "_fit", ok ? f : 0.0});
      if (ok) out.push_back(std::move(mesh));
    }
  };
  fit(ventricles, 2.0, g.ventricles, "ventricle");
  fit(nuclei, 1.5, g.deep_grey, "deep_grey");
  // The hindbrain tucks under the occipital and temporal lobes with a tentorium-like gap of
  // 1.5 mm: moved down (in the subject's frame) while most of it overlaps the hemispheres, then
  // every vertex still too close is pushed down on its own until clear, so its top takes the
  // shape of the lobes above it. White cores keep 2.5 mm more.
  {
    const MeshDistance pial_distance[2] = {MeshDistance(g.pial[0]), MeshDistance(g.pial[1])};
    const Vec3 down = normalized(g.similarity.apply_linear({0, 0, -1}));
    const double gap = 1.5 * opts.scale, step = 1.0 * opts.scale;
    auto clearance = [&](const Vec3& p) {
      return std::min(pial_distance[0].signed_distance(p), pial_distance[1].signed_distance(p));
    };
    // Smallest rigid move (whole mm) after which at most a tenth of a sample of the outer
    // vertices is too close: a bisection, as clearance only grows as the hindbrain goes down
    // (near enough for a placement).
    std::vector<Vec3> sample;
    for (size_t m = 0; m < 3; ++m)
      for (size_t v = 0; v < hindbrain[m].vertices.size(); v += 5)
        sample.push_back(to_vec3(hindbrain[m].vertices[v]));
    auto too_close = [&](int k) {
      size_t close = 0;
      for (const auto& p : sample) close += clearance(add(p, mul(down, k * step))) < gap;
      return close > sample.size() / 10;
    };
    int lo = 0, hi = 32;
    if (!too_close(0)) {
      hi = 0;
    } else {
      while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        (too_close(mid) ? lo : hi) = mid;
      }
    }
    const int moves = hi;
    for (auto& mesh : hindbrain)
      for (auto& v : mesh.vertices) v = to_float3(add(to_vec3(v), mul(down, moves * step)));
    bool ok = true;
    for (size_t m = 0; m < hindbrain.size(); ++m) {
      const double need = m < 3 ? gap : gap + 2.5 * opts.scale;
      auto& verts = hindbrain[m].vertices;
      std::vector<char> done(verts.size(), 0);
      parallel_for(
          static_cast<int64_t>(verts.size()),
          [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) {
              Vec3 p = to_vec3(verts[i]);
              for (int it = 0; it < 200; ++it) {
                const double c = clearance(p);
                if (c >= need) {
                  done[i] = 1;
                  break;
                }
                p = add(p, mul(down, std::max(0.25 * opts.scale, need - c)));
              }
              verts[i] = to_float3(p);
            }
          },
          256);
      ok = ok && std::all_of(done.begin(), done.end(), [](char d) { return d != 0; });
    }
    if (ok) {
      g.hindbrain.assign(hindbrain.begin(), hindbrain.begin() + 3);
      g.hindbrain_white.assign(hindbrain.begin() + 3, hindbrain.end());
    }
    g.parameters.push_back({"hindbrain_moved_mm", moves * step});
    g.parameters.push_back({"hindbrain_meshes", double(g.hindbrain.size())});
  }
  g.parameters.push_back({"ventricle_meshes", double(g.ventricles.size())});
  g.parameters.push_back({"deep_grey_meshes", double(g.deep_grey.size())});
  if (opts.whole_head) add_whole_head(opts, anchor, g);
  report(progress, 1.0);
  return g;
}

}  // namespace ddcsr::sim
