#include "ddcsr/features/protocol.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <numeric>

#include "ddcsr/error.h"

namespace ddcsr {

namespace {

double norm(const Vec3& v) { return std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]); }

std::string fmt_b(double b) { return std::to_string(static_cast<long>(std::lround(b))); }

}  // namespace

int count_noncollinear(const std::vector<Vec3>& directions, double tolerance_deg) {
  const double cos_tol = std::cos(tolerance_deg * M_PI / 180.0);
  std::vector<Vec3> axes;
  for (const Vec3& d : directions) {
    const double n = norm(d);
    if (n < 1e-9) continue;
    const Vec3 u{d[0] / n, d[1] / n, d[2] / n};
    bool seen = false;
    for (const Vec3& a : axes)
      if (std::abs(a[0] * u[0] + a[1] * u[1] + a[2] * u[2]) > cos_tol) {
        seen = true;
        break;
      }
    if (!seen) axes.push_back(u);
  }
  return static_cast<int>(axes.size());
}

bool supports_tensor(const std::vector<Vec3>& directions) {
  Eigen::MatrixXd q(static_cast<Eigen::Index>(directions.size()), 6);
  Eigen::Index rows = 0;
  for (const Vec3& d : directions) {
    const double n = norm(d);
    if (n < 1e-9) continue;
    const double x = d[0] / n, y = d[1] / n, z = d[2] / n;
    q.row(rows++) << x * x, y * y, z * z, 2 * x * y, 2 * x * z, 2 * y * z;
  }
  if (rows < 6) return false;
  const Eigen::JacobiSVD<Eigen::MatrixXd> svd(q.topRows(rows));
  const auto& s = svd.singularValues();
  // A relative threshold well above rounding but far below any usable scheme (a 6-direction
  // icosahedral set has a condition number of about 2).
  return s(5) > 1e-3 * s(0);
}

std::vector<Shell> cluster_shells(const std::vector<double>& bvals,
                                  const std::vector<int64_t>& which, double tolerance) {
  std::vector<int64_t> order(which);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return bvals[a] < bvals[b]; });
  std::vector<Shell> shells;
  double previous = 0;
  for (int64_t v : order) {
    if (shells.empty() || bvals[v] - previous > tolerance) shells.emplace_back();
    shells.back().volumes.push_back(v);
    previous = bvals[v];
  }
  for (Shell& s : shells) {
    double sum = 0;
    for (int64_t v : s.volumes) sum += bvals[v];
    s.bval = sum / static_cast<double>(s.volumes.size());
    std::sort(s.volumes.begin(), s.volumes.end());
  }
  return shells;
}

Protocol analyse_protocol(const GradientTable& table, const Affine& vox2ras, int64_t nvols,
                          const std::string& image_path, const ProtocolOptions& options) {
  const size_t n = table.size();
  if (table.bvecs_fsl.size() != n)
    throw InputError(table.bvec_path, "b-vector count differs from the b-value count");
  if (static_cast<int64_t>(n) != nvols)
    throw InputError(table.bval_path, "has " + std::to_string(n) + " entries but " + image_path +
                                          " has " + std::to_string(nvols) + " volumes");
  const double thr = options.b0_threshold;

  // Tables that encode several b-values with one nominal b and shorter b-vectors (HCP, DSI
  // grids) give each volume b * |g|^2; unit tables with rounding noise in the norms are kept as
  // they are so shells stay on their nominal values.
  bool scaled = false;
  for (size_t i = 0; i < n; ++i) {
    const double g = norm(table.bvecs_fsl[i]);
    if (table.bvals[i] >= thr && g > 1e-6 && std::abs(g - 1.0) > 0.01) scaled = true;
  }
  Protocol p;
  p.rescaled = scaled;
  p.bvals.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const double g = norm(table.bvecs_fsl[i]);
    p.bvals[i] = scaled ? table.bvals[i] * g * g : table.bvals[i];
  }
  p.bvecs = bvecs_world(table, vox2ras);

  std::vector<int64_t> dw;
  for (size_t i = 0; i < n; ++i) {
    if (p.bvals[i] < thr) {
      p.b0_volumes.push_back(static_cast<int64_t>(i));
      continue;
    }
    if (norm(table.bvecs_fsl[i]) < 1e-6)
      throw InputError(table.bvec_path, "volume " + std::to_string(i) + " has b=" +
                                            fmt_b(table.bvals[i]) + " but a zero-length b-vector");
    dw.push_back(static_cast<int64_t>(i));
  }
  if (p.b0_volumes.empty())
    throw InputError(table.bval_path, "has no b0 volume (no b-value below " + fmt_b(thr) + ")");
  if (dw.empty())
    throw InputError(table.bval_path, "has no diffusion-weighted volume (every b-value is below " +
                                          fmt_b(thr) + ")");
  p.shells = cluster_shells(p.bvals, dw, options.shell_tolerance);

  // The fit's shells: those up to dti_max_b (at least the lowest), then more until a tensor is
  // determined.
  std::vector<Vec3> dirs;
  size_t used = 0;
  auto add_shell = [&](size_t s) {
    for (int64_t v : p.shells[s].volumes) dirs.push_back(p.bvecs[v]);
    p.dti_shells.push_back(static_cast<int>(s));
    used = s + 1;
  };
  add_shell(0);
  while (used < p.shells.size() && p.shells[used].bval <= options.dti_max_b) add_shell(used);
  while (used < p.shells.size() &&
         (count_noncollinear(dirs, options.collinear_deg) < 6 || !supports_tensor(dirs)))
    add_shell(used);
  p.dti_directions = count_noncollinear(dirs, options.collinear_deg);
  if (p.dti_directions < 6)
    throw InputError(table.bvec_path,
                     "has " + std::to_string(p.dti_directions) +
                         " non-collinear gradient directions; a diffusion tensor fit needs at "
                         "least 6");
  if (!supports_tensor(dirs))
    throw InputError(table.bvec_path,
                     "gradient directions do not determine a diffusion tensor (they lie on one "
                     "plane or cone)");
  p.dti_volumes = p.b0_volumes;
  for (int s : p.dti_shells)
    p.dti_volumes.insert(p.dti_volumes.end(), p.shells[s].volumes.begin(),
                         p.shells[s].volumes.end());
  std::sort(p.dti_volumes.begin(), p.dti_volumes.end());
  return p;
}

}  // namespace ddcsr
