// Eigen lives here, away from ITK's bundled copy: this file includes no ITK header.
#include "ddcsr/features/dti.h"

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <mutex>
#include <stdexcept>

#include "ddcsr/threads.h"

namespace ddcsr {

namespace {

using Mat7 = Eigen::Matrix<double, 7, 7>;
using Vec7 = Eigen::Matrix<double, 7, 1>;
using RowMatX7 = Eigen::Matrix<double, Eigen::Dynamic, 7, Eigen::RowMajor>;

// b in ms/um^2 (b/1000) puts diffusivities in um^2/ms, of order 1 like log-S0, so the normal
// equations stay well conditioned.
constexpr double kBScale = 1e-3;

std::string shell_name(double b) {
  return "shell_b" + std::to_string(static_cast<long>(std::lround(b)));
}

// The per-scan pieces of the fit that do not depend on the voxel.
struct Design {
  RowMatX7 x;             // rows: [1, -b gx^2, -b gy^2, -b gz^2, -2b gx gy, -2b gx gz, -2b gy gz]
  Eigen::MatrixXd ols;    // (X^T X)^-1 X^T, 7 x N
  Eigen::MatrixXd outer;  // N x 28: the upper triangle of x_n x_n^T, for X^T W X = outer^T w
  std::vector<int64_t> vols;  // series index of each row
};

Design make_design(const Protocol& p) {
  Design d;
  d.vols = p.dti_volumes;
  const auto n = static_cast<Eigen::Index>(d.vols.size());
  d.x.resize(n, 7);
  for (Eigen::Index r = 0; r < n; ++r) {
    const double b = p.bvals[d.vols[r]] * kBScale;
    const Vec3& g = p.bvecs[d.vols[r]];
    // A b0 volume with a zero vector gets [1, 0, ...] whatever its small b-value.
    d.x.row(r) << 1, -b * g[0] * g[0], -b * g[1] * g[1], -b * g[2] * g[2], -2 * b * g[0] * g[1],
        -2 * b * g[0] * g[2], -2 * b * g[1] * g[2];
  }
  const Mat7 xtx = d.x.transpose() * d.x;
  d.ols = xtx.ldlt().solve(d.x.transpose());
  d.outer.resize(n, 28);
  for (Eigen::Index r = 0; r < n; ++r) {
    int c = 0;
    for (int i = 0; i < 7; ++i)
      for (int j = i; j < 7; ++j) d.outer(r, c++) = d.x(r, i) * d.x(r, j);
  }
  return d;
}

struct TensorScalars {
  double l1 = 0, l2 = 0, l3 = 0;
};

// The five coordinates of the deviatoric part of the tensor in beta, in the orthonormal basis
// diag(1,-1,0)/sqrt2, diag(1,1,-2)/sqrt6, and (e_i e_j^T + e_j e_i^T)/sqrt2 for xy, xz, yz.
std::array<double, 5> deviatoric_coordinates(const Vec7& beta) {
  const double xx = beta(1), yy = beta(2), zz = beta(3), xy = beta(4), xz = beta(5), yz = beta(6);
  const double r2 = std::sqrt(2.0), r6 = std::sqrt(6.0);
  return {kBScale * (xx - yy) / r2, kBScale * (xx + yy - 2 * zz) / r6, kBScale * r2 * xy,
          kBScale * r2 * xz, kBScale * r2 * yz};
}

TensorScalars eigenvalues(const Vec7& beta) {
  Eigen::Matrix3d tensor;
  tensor << beta(1), beta(4), beta(5), beta(4), beta(2), beta(6), beta(5), beta(6), beta(3);
  Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> es;
  // Scaling to order 1 keeps the closed-form solver accurate for diffusivities of order 1e-3.
  const double scale = tensor.cwiseAbs().maxCoeff();
  if (!(scale > 0) || !std::isfinite(scale)) return {};
  es.computeDirect(tensor / scale, Eigen::EigenvaluesOnly);
  const Eigen::Vector3d ev = es.eigenvalues() * (scale * kBScale);  // ascending, mm^2/s
  TensorScalars t;
  t.l1 = std::max(0.0, ev(2));
  t.l2 = std::max(0.0, ev(1));
  t.l3 = std::max(0.0, ev(0));
  return t;
}

}  // namespace

double tensor_spherical_mean(double b, double lpar, double lperp) {
  const double a = b * (lpar - lperp);
  double integral;
  if (std::abs(a) < 1e-6) {
    integral = 1.0 - a / 3.0;
  } else if (a > 0) {
    const double r = std::sqrt(a);
    integral = 0.5 * std::sqrt(M_PI) * std::erf(r) / r;
  } else {
    // Oblate (lpar < lperp): composite Simpson on a smooth integrand.
    const int n = 64;
    double s = 0;
    for (int i = 0; i <= n; ++i) {
      const double x = static_cast<double>(i) / n;
      const double w = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
      s += w * std::exp(-a * x * x);
    }
    integral = s / (3.0 * n);
  }
  return std::exp(-b * lperp) * integral;
}

double fractional_anisotropy(double l1, double l2, double l3) {
  const double norm2 = l1 * l1 + l2 * l2 + l3 * l3;
  if (!(norm2 > 0)) return 0;
  const double d = (l1 - l2) * (l1 - l2) + (l2 - l3) * (l2 - l3) + (l3 - l1) * (l3 - l1);
  return std::min(1.0, std::sqrt(0.5 * d / norm2));
}

DiffusionMaps fit_dti(const Volume& dwi, const Protocol& protocol, const Volume& fit_mask,
                      const DtiOptions& options, const ProgressFn& progress) {
  if (fit_mask.dims != dwi.dims)
    throw std::invalid_argument("fit_dti: mask grid differs from the DWI grid");
  if (static_cast<int64_t>(protocol.bvals.size()) != dwi.nvols)
    throw std::invalid_argument("fit_dti: protocol does not match the DWI series");
  const Design design = make_design(protocol);
  const auto nfit = static_cast<Eigen::Index>(design.vols.size());
  const int nshell = static_cast<int>(protocol.shells.size());

  DiffusionMaps out;
  out.names = {"b0", "fa", "md", "ad", "rd", "l1", "l2", "l3"};
  for (const Shell& s : protocol.shells) {
    out.names.push_back(shell_name(s.bval));
    out.shell_bvals.push_back(s.bval);
  }
  const int64_t nmaps = static_cast<int64_t>(out.names.size());
  out.maps = dwi.like(nmaps, 0.f);
  if (options.keep_deviatoric) out.deviatoric = dwi.like(5, 0.f);
  const int64_t nvox = dwi.voxels_per_volume();
  const int64_t nvols = dwi.nvols;
  const auto nb0 = static_cast<double>(protocol.b0_volumes.size());
  const int iterations = std::max(0, options.irls_iterations);

  std::atomic<int64_t> done{0}, fitted{0};
  std::mutex progress_mutex;
  const int64_t chunk = 2048;
  parallel_for(
      nvox,
      [&](int64_t begin, int64_t end) {
        const int64_t len = end - begin;
        bool any = false;
        for (int64_t v = begin; v < end && !any; ++v) any = fit_mask.data[v] != 0.f;
        if (any) {
          // Copy this block of voxels volume by volume: streaming reads instead of one
          // cache miss per volume per voxel.
          std::vector<float> block(static_cast<size_t>(len * nvols));
          for (int64_t t = 0; t < nvols; ++t)
            std::copy(dwi.data.begin() + t * nvox + begin, dwi.data.begin() + t * nvox + end,
                      block.begin() + t * len);
          Eigen::VectorXd y(nfit), w(nfit), pred(nfit);
          Eigen::Matrix<double, 28, 1> a_upper;
          Mat7 a;
          Vec7 beta, rhs, previous;
          int64_t local_fitted = 0;
          for (int64_t o = 0; o < len; ++o) {
            const int64_t v = begin + o;
            if (fit_mask.data[v] == 0.f) continue;
            const float* s = block.data() + o;  // s[t * len]
            double s0 = 0;
            for (int64_t t : protocol.b0_volumes) s0 += s[t * len];
            s0 /= nb0;
            if (!(s0 > 0)) continue;  // no signal: nothing to fit, maps stay 0
            const double floor = options.signal_floor * s0;
            for (Eigen::Index r = 0; r < nfit; ++r)
              y(r) = std::log(std::max<double>(s[design.vols[r] * len], floor));
            beta.noalias() = design.ols * y;
            for (int it = 0; it < iterations; ++it) {
              previous = beta;
              pred.noalias() = design.x * beta;
              // Weights are S^2; relative to the largest, so their scale stays near 1.
              const double top = pred.maxCoeff();
              w = (2.0 * (pred.array() - top)).exp();
              a_upper.noalias() = design.outer.transpose() * w;
              int c = 0;
              for (int i = 0; i < 7; ++i)
                for (int j = i; j < 7; ++j) a(i, j) = a(j, i) = a_upper(c++);
              rhs.noalias() = design.x.transpose() * (w.array() * y.array()).matrix();
              const Eigen::LDLT<Mat7> ldlt(a);
              if (ldlt.info() != Eigen::Success) break;
              const Vec7 next = ldlt.solve(rhs);
              if (!next.allFinite()) break;
              beta = next;
              const double change = (beta.tail<6>() - previous.tail<6>()).cwiseAbs().maxCoeff();
              if (change < 1e-4 * std::max(1e-12, beta.segment<3>(1).cwiseAbs().maxCoeff())) break;
            }
            const TensorScalars t = eigenvalues(beta);
            const double md = (t.l1 + t.l2 + t.l3) / 3.0;
            const double fa = fractional_anisotropy(t.l1, t.l2, t.l3);
            auto put = [&](int64_t map, double value) {
              out.maps.data[map * nvox + v] = static_cast<float>(value);
            };
            put(DiffusionMaps::kB0, s0);
            put(DiffusionMaps::kFA, fa);
            put(DiffusionMaps::kMD, md);
            put(DiffusionMaps::kAD, t.l1);
            put(DiffusionMaps::kRD, 0.5 * (t.l2 + t.l3));
            put(DiffusionMaps::kL1, t.l1);
            put(DiffusionMaps::kL2, t.l2);
            put(DiffusionMaps::kL3, t.l3);
            if (options.keep_deviatoric) {
              const auto dev = deviatoric_coordinates(beta);
              for (int64_t c = 0; c < 5; ++c)
                out.deviatoric.data[size_t(c * nvox + v)] = static_cast<float>(dev[size_t(c)]);
            }
            for (int sh = 0; sh < nshell; ++sh) {
              double sum = 0;
              for (int64_t t2 : protocol.shells[sh].volumes) sum += s[t2 * len];
              put(DiffusionMaps::kNumTensorMaps + sh,
                  sum / static_cast<double>(protocol.shells[sh].volumes.size()) / s0);
            }
            ++local_fitted;
          }
          fitted += local_fitted;
        }
        const int64_t now = done += len;
        if (progress) {
          std::lock_guard<std::mutex> lock(progress_mutex);
          progress(static_cast<double>(now) / static_cast<double>(nvox));
        }
      },
      chunk);
  out.fitted_voxels = fitted;
  return out;
}

}  // namespace ddcsr
