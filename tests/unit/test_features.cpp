#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>

#include "ddcsr/error.h"
#include "ddcsr/features/dti.h"
#include "ddcsr/features/features.h"
#include "ddcsr/features/mask.h"
#include "ddcsr/features/protocol.h"
#include "ddcsr/io/gradients.h"
#include "ddcsr/io/nifti.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace ddcsr;

namespace {

std::string temp_dir(const std::string& name) { return test::fresh_dir("features", name); }

// The environment may point elsewhere (worktrees sit one level deeper than the main checkout).
std::string shared_root() {
  const char* env = std::getenv("DDCSR_SHARED_DATA");
  return env && *env ? env : DDCSR_SHARED_DATA;
}
std::string shared(const std::string& rel) { return shared_root() + "/" + rel; }

// LAS storage with a small rotation, as scanners write it.
Affine scanner_affine(double voxel) {
  const double c = std::cos(0.15), s = std::sin(0.15);
  return Affine::from_linear_translation(
      {-voxel * c, 0, voxel * s, 0, voxel, 0, voxel * s, 0, voxel * c}, {60.3, -71.7, -40.2});
}

// n well-spread unit directions (golden spiral on a hemisphere).
std::vector<Vec3> spiral(int n, double twist = 0) {
  std::vector<Vec3> d;
  for (int i = 0; i < n; ++i) {
    const double z = 1 - (i + 0.5) / n;  // upper hemisphere
    const double r = std::sqrt(1 - z * z), phi = i * M_PI * (3 - std::sqrt(5.0)) + twist;
    d.push_back({r * std::cos(phi), r * std::sin(phi), z});
  }
  return d;
}

// A table from b-values and world directions, stored the FSL way for `affine`.
GradientTable make_table(const std::vector<double>& bvals, const std::vector<Vec3>& world,
                         const Affine& affine) {
  GradientTable t;
  t.bvals = bvals;
  t.bvecs_fsl = bvecs_fsl_from_world(world, affine);
  for (size_t i = 0; i < world.size(); ++i)
    if (world[i][0] == 0 && world[i][1] == 0 && world[i][2] == 0) t.bvecs_fsl[i] = {0, 0, 0};
  t.bval_path = "test.bval";
  t.bvec_path = "test.bvec";
  return t;
}

// b0 volumes then one block per shell.
GradientTable shells_table(int nb0, const std::vector<std::pair<double, int>>& shells,
                           const Affine& affine) {
  std::vector<double> b(nb0, 0.0);
  std::vector<Vec3> g(nb0, Vec3{0, 0, 0});
  double twist = 0;
  for (const auto& [bval, n] : shells) {
    for (const Vec3& d : spiral(n, twist)) {
      b.push_back(bval);
      g.push_back(d);
    }
    twist += 0.9;
  }
  return make_table(b, g, affine);
}

struct Tensor {
  double l1, l2, l3;
  Vec3 e1, e2, e3;
  double gdg(const Vec3& g) const {
    auto dot = [&](const Vec3& a) { return a[0] * g[0] + a[1] * g[1] + a[2] * g[2]; };
    return l1 * dot(e1) * dot(e1) + l2 * dot(e2) * dot(e2) + l3 * dot(e3) * dot(e3);
  }
  double fa() const {
    const double d = (l1 - l2) * (l1 - l2) + (l2 - l3) * (l2 - l3) + (l3 - l1) * (l3 - l1);
    return std::sqrt(0.5 * d / (l1 * l1 + l2 * l2 + l3 * l3));
  }
  double md() const { return (l1 + l2 + l3) / 3; }
};

// Orthonormal frame from angles.
Tensor make_tensor(double l1, double l2, double l3, double theta, double phi, double psi) {
  const Vec3 e1{std::sin(theta) * std::cos(phi), std::sin(theta) * std::sin(phi), std::cos(theta)};
  Vec3 a{-std::sin(phi), std::cos(phi), 0};
  Vec3 b{e1[1] * a[2] - e1[2] * a[1], e1[2] * a[0] - e1[0] * a[2], e1[0] * a[1] - e1[1] * a[0]};
  const Vec3 e2{std::cos(psi) * a[0] + std::sin(psi) * b[0],
                std::cos(psi) * a[1] + std::sin(psi) * b[1],
                std::cos(psi) * a[2] + std::sin(psi) * b[2]};
  const Vec3 e3{e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2],
                e1[0] * e2[1] - e1[1] * e2[0]};
  return {l1, l2, l3, e1, e2, e3};
}

// A 4D series where voxel (i, j, k) holds a tensor whose FA grows with i, MD with j and whose
// orientation turns with k; Rician noise of `sigma` when positive.
struct TensorPhantom {
  Volume dwi;
  std::vector<Tensor> truth;
};
TensorPhantom tensor_phantom(const GradientTable& table, const Affine& affine, double sigma,
                             unsigned seed = 7) {
  const std::array<int64_t, 3> dims{10, 8, 6};
  TensorPhantom p;
  p.dwi = Volume(dims, static_cast<int64_t>(table.size()), affine, 0.f);
  const auto world = bvecs_world(table, affine);
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0, 1);
  for (int64_t k = 0; k < dims[2]; ++k)
    for (int64_t j = 0; j < dims[1]; ++j)
      for (int64_t i = 0; i < dims[0]; ++i) {
        const double md = 0.5e-3 + 0.15e-3 * j;
        const double aniso = 0.07 * i;  // 0 (isotropic) .. 0.63, FA up to about 0.8
        const double l1 = md * (1 + 2 * aniso), l2 = md * (1 - 0.6 * aniso),
                     l3 = md * (1 - 1.4 * aniso);
        const Tensor t = make_tensor(l1, l2, l3, 0.3 + 0.4 * k, 0.7 * k + 0.1 * i, 0.5 * j);
        p.truth.push_back(t);
        for (int64_t v = 0; v < p.dwi.nvols; ++v) {
          double s = 1000.0 * std::exp(-table.bvals[v] * t.gdg(world[v]));
          if (sigma > 0) s = std::hypot(s + sigma * noise(rng), sigma * noise(rng));
          p.dwi.at(i, j, k, v) = static_cast<float>(s);
        }
      }
  return p;
}

// The brain's radius of `p` in head_phantom and hemisphere_phantom: an ellipsoid's with bumps, 1 at
// its pial surface, about 1 / 66 per mm.
double phantom_radius(const Vec3& p, const Vec3& centre) {
  const double x = p[0] - centre[0], y = p[1] - centre[1], z = p[2] - centre[2];
  const double th = std::atan2(y, x), ph = std::atan2(z, std::hypot(x, y));
  const double bump = 1 + 0.04 * std::sin(7 * th) * std::cos(5 * ph);
  return std::sqrt((x / 66) * (x / 66) + (y / 82) * (y / 82) + (z / 60) * (z / 60)) / bump;
}

// A head: bumpy ellipsoidal brain (white matter core, cortex, ventricles, outer CSF) in a dark
// skull and a bright scalp, with a receive-coil bias and Rician noise. Returns the DWI and sets
// `truth` to the intracranial mask (brain plus outer CSF).
Volume head_phantom(const GradientTable& table, double voxel, Volume& truth, unsigned seed = 3) {
  const Affine affine = scanner_affine(voxel);
  const std::array<int64_t, 3> dims{static_cast<int64_t>(std::lround(180 / voxel)),
                                    static_cast<int64_t>(std::lround(216 / voxel)),
                                    static_cast<int64_t>(std::lround(170 / voxel))};
  Volume dwi(dims, static_cast<int64_t>(table.size()), affine, 0.f);
  truth = Volume(dims, 1, affine, 0.f);
  const auto world = bvecs_world(table, affine);
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0, 1);
  const Vec3 centre = affine.apply({0.5 * (dims[0] - 1), 0.5 * (dims[1] - 1), 0.5 * (dims[2] - 1)});
  for (int64_t k = 0; k < dims[2]; ++k)
    for (int64_t j = 0; j < dims[1]; ++j)
      for (int64_t i = 0; i < dims[0]; ++i) {
        const Vec3 p = affine.apply({double(i), double(j), double(k)});
        const double x = p[0] - centre[0], y = p[1] - centre[1], z = p[2] - centre[2];
        const double r = phantom_radius(p, centre);
        const double mm = 72.0;
        const bool ventricle =
            std::pow((std::abs(x) - 9) / 6, 2) + std::pow(y / 26, 2) + std::pow((z - 8) / 9, 2) < 1;
        double s0 = 0, lpar = 3e-3, lperp = 3e-3;
        Vec3 fibre{0, 0, 1};
        if (r < 1) {
          truth.at(i, j, k) = 1;
          if (ventricle) {
            s0 = 2200;
          } else if (r < 0.72) {
            s0 = 850, lpar = 1.7e-3, lperp = 0.35e-3;
            const double n = std::hypot(x, y) + 1e-9;
            fibre = {-y / n, x / n, 0};
          } else {
            s0 = 1100, lpar = 0.9e-3, lperp = 0.75e-3;
          }
        } else if (r < 1 + 2.5 / mm) {
          truth.at(i, j, k) = 1;
          s0 = 2000;
        } else if (r < 1 + 7 / mm) {
          s0 = 40;
        } else if (r < 1 + 13 / mm) {
          s0 = 700, lpar = 1.1e-3, lperp = 0.9e-3;
        }
        s0 *= 1.3 - 0.45 * (z + 90) / 180;  // brighter at the top, as head coils make it
        for (int64_t v = 0; v < dwi.nvols; ++v) {
          const Vec3& g = world[v];
          const double c = g[0] * fibre[0] + g[1] * fibre[1] + g[2] * fibre[2];
          const double s = s0 * std::exp(-table.bvals[v] * (lperp + (lpar - lperp) * c * c));
          dwi.at(i, j, k, v) = static_cast<float>(std::hypot(s + 15 * noise(rng), 15 * noise(rng)));
        }
      }
  return dwi;
}

double dice(const Volume& a, const Volume& b) {
  double both = 0, sa = 0, sb = 0;
  for (size_t i = 0; i < a.data.size(); ++i) {
    const bool x = a.data[i] != 0, y = b.data[i] != 0;
    both += x && y, sa += x, sb += y;
  }
  return 2 * both / (sa + sb);
}

double mask_ml(const Volume& m) {
  const Vec3 s = m.spacing();
  return std::count_if(m.data.begin(), m.data.end(), [](float v) { return v != 0; }) * s[0] * s[1] *
         s[2] / 1000;
}

}  // namespace

// ---------------------------------------------------------------- gradient tables

TEST(FeaturesProtocol, ClustersShellsWithTolerance) {
  const Affine a = scanner_affine(2);
  std::vector<double> b{0, 5, 995, 1000, 1005, 1990, 2010, 3000, 1000, 1000, 1000, 1000};
  std::vector<Vec3> g{{0, 0, 0}};
  for (const Vec3& d : spiral(11)) g.push_back(d);
  const Protocol p = analyse_protocol(make_table(b, g, a), a, 12, "dwi.nii");
  EXPECT_EQ(p.b0_volumes, (std::vector<int64_t>{0, 1}));
  ASSERT_EQ(p.shells.size(), 3u);
  EXPECT_NEAR(p.shells[0].bval, 1000, 1e-9);
  EXPECT_EQ(p.shells[0].volumes.size(), 7u);
  EXPECT_NEAR(p.shells[1].bval, 2000, 1e-9);
  EXPECT_EQ(p.shells[1].volumes, (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(p.shells[2].volumes, (std::vector<int64_t>{7}));
  EXPECT_FALSE(p.rescaled);
  // Only the b=1000 shell (7 directions) goes into the tensor fit.
  EXPECT_EQ(p.dti_shells, (std::vector<int>{0}));
  for (const Vec3& d : p.bvecs) {
    const double n = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    EXPECT_TRUE(n == 0 || std::abs(n - 1) < 1e-12);
  }

  ProtocolOptions tight;
  tight.shell_tolerance = 10;
  const Protocol q = analyse_protocol(make_table(b, g, a), a, 12, "dwi.nii", tight);
  ASSERT_EQ(q.shells.size(), 4u);  // 1990 and 2010 now apart
  EXPECT_EQ(q.shells[1].volumes, (std::vector<int64_t>{5}));
}

TEST(FeaturesProtocol, RescalesBValuesOfNonUnitVectors) {
  const Affine a = scanner_affine(2);
  GradientTable t;
  t.bval_path = "b.bval", t.bvec_path = "b.bvec";
  t.bvals.push_back(3000);
  t.bvecs_fsl.push_back({0, 0, 0});  // b0 encoded by a zero vector, as DSI/HCP-style tables do
  const auto dirs = spiral(12);
  for (int i = 0; i < 12; ++i) {
    const double scale = std::sqrt((i % 3 + 1) / 3.0);  // b = 1000, 2000, 3000
    t.bvals.push_back(3000);
    t.bvecs_fsl.push_back({dirs[i][0] * scale, dirs[i][1] * scale, dirs[i][2] * scale});
  }
  const Protocol p = analyse_protocol(t, a, 13, "dwi.nii");
  EXPECT_TRUE(p.rescaled);
  EXPECT_EQ(p.b0_volumes, (std::vector<int64_t>{0}));
  ASSERT_EQ(p.shells.size(), 3u);
  EXPECT_NEAR(p.shells[0].bval, 1000, 1e-6);
  EXPECT_NEAR(p.shells[1].bval, 2000, 1e-6);
  EXPECT_NEAR(p.shells[2].bval, 3000, 1e-6);
  // 4 directions per shell: the fit takes shells until it has 6 non-collinear directions.
  EXPECT_EQ(p.dti_shells, (std::vector<int>{0, 1}));
  EXPECT_GE(p.dti_directions, 6);
}

TEST(FeaturesProtocol, RejectsTooFewDirections) {
  const Affine a = scanner_affine(2);
  std::vector<double> b{0};
  std::vector<Vec3> g{{0, 0, 0}};
  const auto five = spiral(5);
  for (int r = 0; r < 4; ++r)
    for (const Vec3& d : five) {
      b.push_back(1000);
      // Repeats, one of them antipodal: still the same five axes.
      g.push_back(r == 1 ? Vec3{-d[0], -d[1], -d[2]} : d);
    }
  try {
    analyse_protocol(make_table(b, g, a), a, static_cast<int64_t>(b.size()), "dwi.nii");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("5 non-collinear"), std::string::npos) << e.what();
    EXPECT_EQ(e.path(), "test.bvec");
  }
  // Eight distinct directions in one plane do not determine a tensor either.
  std::vector<double> b2{0};
  std::vector<Vec3> g2{{0, 0, 0}};
  for (int i = 0; i < 8; ++i) {
    b2.push_back(1000);
    g2.push_back({std::cos(i * M_PI / 8), std::sin(i * M_PI / 8), 0});
  }
  EXPECT_EQ(count_noncollinear(g2), 8);
  EXPECT_FALSE(supports_tensor(g2));
  EXPECT_THROW(analyse_protocol(make_table(b2, g2, a), a, 9, "dwi.nii"), InputError);
  EXPECT_TRUE(supports_tensor(spiral(6)));
}

TEST(FeaturesProtocol, RejectsMismatchedOrB0LessTables) {
  const Affine a = scanner_affine(2);
  const GradientTable t = shells_table(1, {{1000, 12}}, a);
  EXPECT_THROW(analyse_protocol(t, a, 14, "dwi.nii"), InputError);
  GradientTable no_b0 = t;
  no_b0.bvals[0] = 1000;
  no_b0.bvecs_fsl[0] = {1, 0, 0};
  EXPECT_THROW(analyse_protocol(no_b0, a, 13, "dwi.nii"), InputError);
}

// ---------------------------------------------------------------- tensor fit

TEST(FeaturesDti, RecoversKnownTensorsExactlyWithoutNoise) {
  const Affine a = scanner_affine(2);
  const GradientTable table = shells_table(3, {{1000, 30}, {2000, 30}}, a);
  ProtocolOptions po;
  po.dti_max_b = 2500;  // both shells: the signal is exactly a tensor's
  const Protocol protocol =
      analyse_protocol(table, a, static_cast<int64_t>(table.size()), "phantom", po);
  const TensorPhantom p = tensor_phantom(table, a, 0);
  const Volume all = p.dwi.like(1, 1.f);
  const DiffusionMaps maps = fit_dti(p.dwi, protocol, all);
  ASSERT_EQ(maps.fitted_voxels, p.dwi.voxels_per_volume());
  const int64_t n = p.dwi.voxels_per_volume();
  double worst_fa = 0, worst_md = 0, worst_l = 0;
  for (int64_t v = 0; v < n; ++v) {
    const Tensor& t = p.truth[v];
    auto map = [&](int m) { return static_cast<double>(maps.maps.data[m * n + v]); };
    worst_fa = std::max(worst_fa, std::abs(map(DiffusionMaps::kFA) - t.fa()));
    worst_md = std::max(worst_md, std::abs(map(DiffusionMaps::kMD) / t.md() - 1));
    worst_l = std::max({worst_l, std::abs(map(DiffusionMaps::kL1) / t.l1 - 1),
                        std::abs(map(DiffusionMaps::kL3) / t.l3 - 1),
                        std::abs(map(DiffusionMaps::kAD) / t.l1 - 1),
                        std::abs(map(DiffusionMaps::kRD) / (0.5 * (t.l2 + t.l3)) - 1)});
    EXPECT_NEAR(map(DiffusionMaps::kB0), 1000, 1e-2);
    // Shell means of S/S0: the tensor's spherical mean over the shell's directions.
    EXPECT_GT(map(DiffusionMaps::kNumTensorMaps), map(DiffusionMaps::kNumTensorMaps + 1));
  }
  EXPECT_LT(worst_fa, 1e-4);
  EXPECT_LT(worst_md, 1e-4);
  EXPECT_LT(worst_l, 1e-3);
  EXPECT_EQ(maps.names[DiffusionMaps::kNumTensorMaps], "shell_b1000");
  EXPECT_EQ(maps.names[DiffusionMaps::kNumTensorMaps + 1], "shell_b2000");
}

TEST(FeaturesDti, WeightedFitIsAccurateUnderNoise) {
  const Affine a = scanner_affine(2);
  const GradientTable table = shells_table(6, {{1000, 60}}, a);
  const Protocol protocol =
      analyse_protocol(table, a, static_cast<int64_t>(table.size()), "phantom");
  const TensorPhantom p = tensor_phantom(table, a, 1000.0 / 40);  // SNR 40 at b=0
  const DiffusionMaps maps = fit_dti(p.dwi, protocol, p.dwi.like(1, 1.f));
  const int64_t n = p.dwi.voxels_per_volume();
  std::vector<double> fa_err, md_err;
  for (int64_t v = 0; v < n; ++v) {
    if (p.truth[v].fa() < 0.2) continue;  // FA of near-isotropic tensors is biased upward by noise
    fa_err.push_back(std::abs(maps.maps.data[DiffusionMaps::kFA * n + v] / p.truth[v].fa() - 1));
    md_err.push_back(std::abs(maps.maps.data[DiffusionMaps::kMD * n + v] / p.truth[v].md() - 1));
  }
  auto median = [](std::vector<double> x) {
    std::nth_element(x.begin(), x.begin() + x.size() / 2, x.end());
    return x[x.size() / 2];
  };
  EXPECT_LT(median(fa_err), 0.05);
  EXPECT_LT(median(md_err), 0.03);
}

TEST(FeaturesDti, TensorSphericalMeanMatchesQuadrature) {
  const double lpar = 1.7e-3, lperp = 0.3e-3;
  for (double b : {500.0, 1000.0, 2500.0}) {
    double sum = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {  // mean over the sphere = mean over cos(theta) in [0, 1]
      const double c = (i + 0.5) / n;
      sum += std::exp(-b * (lperp + (lpar - lperp) * c * c));
    }
    EXPECT_NEAR(tensor_spherical_mean(b, lpar, lperp), sum / n, 1e-7);
    EXPECT_NEAR(tensor_spherical_mean(b, 1e-3, 1e-3), std::exp(-b * 1e-3), 1e-12);
    // Oblate (lpar < lperp) uses its own branch.
    double sum2 = 0;
    for (int i = 0; i < n; ++i) {
      const double c = (i + 0.5) / n;
      sum2 += std::exp(-b * (lpar + (lperp - lpar) * c * c));
    }
    EXPECT_NEAR(tensor_spherical_mean(b, lperp, lpar), sum2 / n, 1e-6);
  }
}

TEST(FeaturesNominal, InterpolatesOrExtrapolatesByProtocol) {
  // A mono-exponential voxel (isotropic tensor): every method must give exp(-b D).
  const double d = 0.9e-3;
  auto means_for = [&](const std::vector<double>& shells) {
    std::vector<float> m;
    for (double b : shells) m.push_back(static_cast<float>(std::exp(-b * d)));
    return m;
  };
  for (const std::vector<double>& shells :
       {std::vector<double>{1000}, std::vector<double>{2500}, std::vector<double>{700, 2000, 3000},
        std::vector<double>{300, 600}}) {
    const auto plans = plan_nominal_signals(shells);
    ASSERT_EQ(plans.size(), feature_nominal_bvals().size());
    const auto m = means_for(shells);
    for (const auto& p : plans)
      EXPECT_NEAR(nominal_signal(p, shells, m.data(), d, d, d), std::exp(-p.bval * d), 2e-6)
          << p.method;
  }
  auto methods = [](const std::vector<double>& shells) {
    std::vector<std::string> m;
    for (const auto& p : plan_nominal_signals(shells)) m.push_back(p.method);
    return m;
  };
  EXPECT_EQ(methods({1000}), (std::vector<std::string>{"measured", "tensor-extrapolated"}));
  EXPECT_EQ(methods({2500}), (std::vector<std::string>{"tensor-extrapolated", "measured"}));
  EXPECT_EQ(methods({700, 2000, 3000}), (std::vector<std::string>{"interpolated", "interpolated"}));
  // Anisotropic voxel extrapolated from b=1000: the tensor's own prediction.
  const auto plans = plan_nominal_signals({1000});
  const float e1000 = static_cast<float>(tensor_spherical_mean(1000, 1.7e-3, 0.3e-3));
  EXPECT_NEAR(nominal_signal(plans[1], {1000}, &e1000, 1.7e-3, 0.35e-3, 0.25e-3),
              tensor_spherical_mean(2500, 1.7e-3, 0.3e-3), 1e-6);
}

// ---------------------------------------------------------------- masks

TEST(FeaturesMask, GivenMaskMustShareTheGrid) {
  const Affine a = scanner_affine(2);
  Volume dwi({8, 9, 10}, 4, a, 1.f);
  Volume mask({8, 9, 10}, 1, a, 0.f);
  mask.at(3, 4, 5) = 7.f;
  const Volume ok = check_mask(mask, dwi, "mask.nii");
  EXPECT_EQ(ok.data[ok.index(3, 4, 5)], 1.f);
  EXPECT_EQ(std::count(ok.data.begin(), ok.data.end(), 1.f), 1);

  Volume wrong_dims({8, 9, 11}, 1, a, 1.f);
  try {
    check_mask(wrong_dims, dwi, "mask.nii");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.path(), "mask.nii");
    EXPECT_NE(std::string(e.what()).find("differs from the DWI grid"), std::string::npos);
  }
  Affine shifted = a;
  shifted(0, 3) += 1.0;  // half a voxel
  EXPECT_THROW(check_mask(Volume({8, 9, 10}, 1, shifted, 1.f), dwi, "mask.nii"), InputError);
  EXPECT_THROW(check_mask(Volume({8, 9, 10}, 1, a, 0.f), dwi, "mask.nii"), InputError);  // empty
  // Float32 rounding of a NIfTI affine is the same grid.
  Affine rounded = a;
  for (double& x : rounded.m) x = static_cast<float>(x);
  EXPECT_NO_THROW(check_mask(Volume({8, 9, 10}, 1, rounded, 1.f), dwi, "mask.nii"));

  // Through the whole stage too.
  const GradientTable table = shells_table(1, {{1000, 12}}, a);
  Volume series({8, 9, 10}, static_cast<int64_t>(table.size()), a, 100.f);
  FeatureOptions fo;
  fo.mask_path = "mask.nii";
  EXPECT_THROW(compute_features(series, table, &wrong_dims, fo), InputError);
}

TEST(FeaturesMask, MorphologyBuildingBlocks) {
  const std::array<int64_t, 3> dims{20, 20, 20};
  const Vec3 sp{1, 1, 2};
  mask_ops::Bits m(8000, 0);
  auto at = [&](int i, int j, int k) -> unsigned char& { return m[(k * 20 + j) * 20 + i]; };
  at(10, 10, 10) = 1;
  const auto d = mask_ops::dilate(m, dims, sp, 2.0);
  // A ball of 2 mm: 2 voxels in-plane, 1 voxel through-plane (2 mm slices).
  EXPECT_TRUE(d[(10 * 20 + 10) * 20 + 12]);
  EXPECT_FALSE(d[(10 * 20 + 10) * 20 + 13]);
  EXPECT_TRUE(d[(11 * 20 + 10) * 20 + 10]);
  EXPECT_FALSE(d[(12 * 20 + 10) * 20 + 10]);
  EXPECT_FALSE(d[(11 * 20 + 11) * 20 + 11]);  // sqrt(1 + 1 + 4) > 2
  EXPECT_EQ(std::count(d.begin(), d.end(), 1),
            15);  // a 13-voxel disk and one voxel above and below
  // Eroding by 1 mm keeps the voxels whose four in-plane neighbours are all inside: the centre
  // and its four in-plane neighbours.
  const auto e = mask_ops::erode(d, dims, sp, 1.0);
  EXPECT_EQ(std::count(e.begin(), e.end(), 1), 5);
  // The field of view's edge is not background for erosion: a full image stays full.
  const mask_ops::Bits full(8000, 1);
  EXPECT_EQ(mask_ops::erode(full, dims, sp, 3.0), full);

  // Two blobs: the larger is kept.
  mask_ops::Bits two(8000, 0);
  for (int i = 2; i < 5; ++i) two[(5 * 20 + 5) * 20 + i] = 1;
  for (int i = 10; i < 12; ++i) two[(5 * 20 + 5) * 20 + i] = 1;
  const auto largest = mask_ops::largest_component(two, dims);
  EXPECT_EQ(std::count(largest.begin(), largest.end(), 1), 3);
  EXPECT_TRUE(largest[(5 * 20 + 5) * 20 + 3]);

  // A hollow box is filled; so is a cavity open only to the first slice (a slab's cut).
  mask_ops::Bits box(8000, 0);
  for (int k = 2; k < 18; ++k)
    for (int j = 2; j < 18; ++j)
      for (int i = 2; i < 18; ++i) {
        const bool wall = i == 2 || i == 17 || j == 2 || j == 17 || k == 17 ||
                          (k == 2 && !(i > 6 && i < 12 && j > 6 && j < 12));
        box[(k * 20 + j) * 20 + i] = wall;
      }
  // Open the cavity through the slab's first slice (k = 0, 1 are part of the wall here).
  for (int k = 0; k < 2; ++k)
    for (int j = 2; j < 18; ++j)
      for (int i = 2; i < 18; ++i)
        box[(k * 20 + j) * 20 + i] = !(i > 6 && i < 12 && j > 6 && j < 12);
  const auto filled = mask_ops::fill_holes(box, dims);
  EXPECT_TRUE(filled[(10 * 20 + 10) * 20 + 10]);  // the cavity
  EXPECT_TRUE(filled[(0 * 20 + 9) * 20 + 9]);     // its opening in the first slice
  EXPECT_FALSE(filled[(10 * 20 + 10) * 20 + 0]);  // outside stays outside
  EXPECT_FALSE(filled[(19 * 20 + 10) * 20 + 10]);

  // Otsu splits two clusters between them.
  const double t = mask_ops::otsu_threshold({1, 2, 2, 3, 3, 3, 7, 7, 8, 8, 9, 9.5});
  EXPECT_GE(t, 3.0);
  EXPECT_LT(t, 7.0);
}

TEST(FeaturesMask, AutomaticMaskMatchesHeadPhantom) {
  Volume truth;
  const Affine a = scanner_affine(2.5);
  const GradientTable table = shells_table(2, {{1000, 12}}, a);
  const Volume dwi = head_phantom(table, 2.5, truth);
  const Protocol protocol = analyse_protocol(table, dwi.vox2ras, dwi.nvols, "phantom");
  const Volume mask = auto_mask(dwi, protocol);
  const double d = dice(mask, truth);
  EXPECT_GE(d, 0.95) << "auto mask " << mask_ml(mask) << " ml, truth " << mask_ml(truth) << " ml";
}

// ---------------------------------------------------------------- network grid and features

TEST(FeaturesGrid, RasAlignedPaddedAndExact) {
  const Affine a = scanner_affine(2.5);
  Volume mask({30, 34, 28}, 1, a, 0.f);
  for (int64_t k = 5; k < 20; ++k)
    for (int64_t j = 4; j < 30; ++j)
      for (int64_t i = 6; i < 25; ++i) mask.at(i, j, k) = 1;
  for (double spacing : {1.0, 1.25, 0.5}) {
    GridOptions go;
    go.spacing_mm = spacing;
    const NetworkGrid g = network_grid(mask, go);
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) EXPECT_EQ(g.vox2ras(r, c), r == c ? spacing : 0.0);
    for (int ax = 0; ax < 3; ++ax) {
      EXPECT_EQ(g.dims[ax] % 16, 0);
      // The origin lies on the lattice of the spacing.
      const double steps = g.vox2ras(ax, 3) / spacing;
      EXPECT_EQ(steps, std::round(steps));
    }
    // Every mask voxel's corners lie inside the grid, at least the margin from its edge.
    const Affine to_grid = g.vox2ras.inverse();
    for (int64_t k = 0; k < 28; ++k)
      for (int64_t j = 0; j < 34; ++j)
        for (int64_t i = 0; i < 30; ++i) {
          if (mask.at(i, j, k) == 0) continue;
          const Vec3 q = to_grid.apply(mask.voxel_to_ras({double(i), double(j), double(k)}));
          for (int ax = 0; ax < 3; ++ax) {
            EXPECT_GE(q[ax] * spacing, go.margin_mm - 1e-9);
            EXPECT_LE((g.dims[ax] - 1 - q[ax]) * spacing, g.dims[ax] * spacing);
            EXPECT_GE((g.dims[ax] - 1 - q[ax]) * spacing, go.margin_mm - 1e-9);
          }
        }
  }
  EXPECT_THROW(network_grid(mask, GridOptions{0.0, 8, 16}), UsageError);
}

TEST(FeaturesGrid, ResamplesLinearFieldsExactly) {
  // Trilinear interpolation reproduces a linear function of position anywhere inside.
  const Affine a = scanner_affine(2.0);
  Volume src({20, 22, 18}, 2, a, 0.f);
  for (int64_t k = 0; k < 18; ++k)
    for (int64_t j = 0; j < 22; ++j)
      for (int64_t i = 0; i < 20; ++i) {
        const Vec3 p = a.apply({double(i), double(j), double(k)});
        src.at(i, j, k, 0) = static_cast<float>(0.5 * p[0] - 0.25 * p[1] + p[2]);
        src.at(i, j, k, 1) = 3.f;
      }
  Volume mask = src.frame(0);
  std::fill(mask.data.begin(), mask.data.end(), 0.f);
  mask.at(10, 11, 9) = 1;
  const NetworkGrid g = network_grid(mask, {1.0, 6.0, 16});
  const Volume out = resample_to_grid(src, g);
  ASSERT_EQ(out.nvols, 2);
  int checked = 0;
  for (int64_t k = 0; k < g.dims[2]; ++k)
    for (int64_t j = 0; j < g.dims[1]; ++j)
      for (int64_t i = 0; i < g.dims[0]; ++i) {
        const Vec3 p = g.vox2ras.apply({double(i), double(j), double(k)});
        const Vec3 v = src.ras_to_voxel(p);
        if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[0] > 19 || v[1] > 21 || v[2] > 17) continue;
        EXPECT_NEAR(out.at(i, j, k, 0), 0.5 * p[0] - 0.25 * p[1] + p[2], 1e-3);
        EXPECT_EQ(out.at(i, j, k, 1), 3.f);
        ++checked;
      }
  EXPECT_GT(checked, 1000);
}

TEST(FeaturesPipeline, SameChannelsForAnyProtocolAndExactGridRoundTrip) {
  Volume truth;
  const Affine a = scanner_affine(3.0);
  const GradientTable single = shells_table(2, {{2500, 20}}, a);
  const GradientTable multi = shells_table(3, {{700, 10}, {1500, 20}, {3000, 20}}, a);
  const std::string dir = temp_dir("pipeline");
  for (const GradientTable* table : {&single, &multi}) {
    const Volume dwi = head_phantom(*table, 3.0, truth);
    FeatureOptions fo;
    fo.keep_native = true;
    fo.grid.spacing_mm = 2.0;  // the test's speed; the grid logic is the same at 1 mm
    const FeatureSet f = compute_features(dwi, *table, nullptr, fo);
    ASSERT_EQ(f.channel_names, feature_channel_names());
    ASSERT_EQ(f.channels.nvols, static_cast<int64_t>(feature_channel_names().size()));
    ASSERT_EQ(f.normalisation.size(), feature_channel_names().size());
    for (int ax = 0; ax < 3; ++ax) EXPECT_EQ(f.channels.dims[ax] % 16, 0);
    EXPECT_EQ(f.mask.dims, f.channels.dims);
    EXPECT_GE(dice(f.native_mask, truth), 0.95);

    // Inside the mask each normalised channel has median ~0 and spread ~1; outside it is 0.
    const int64_t n = f.channels.voxels_per_volume();
    const int64_t midline = f.channels.nvols - 2;
    ASSERT_EQ(f.channel_names[static_cast<size_t>(midline)], "midline");
    for (int64_t c = 0; c + 1 < f.channels.nvols; ++c) {
      if (c == midline) continue;  // below
      std::vector<float> inside;
      for (int64_t v = 0; v < n; ++v) {
        const float x = f.channels.data[c * n + v];
        if (f.mask.data[v] != 0)
          inside.push_back(x);
        else
          ASSERT_EQ(x, 0.f);
      }
      std::nth_element(inside.begin(), inside.begin() + inside.size() / 2, inside.end());
      EXPECT_NEAR(inside[inside.size() / 2], 0.0, 0.05) << f.channel_names[c];
      EXPECT_GT(f.normalisation[c].scale, 0) << f.channel_names[c];
    }
    // The midline channel: distance to the fitted plane over 20 mm, negative on the left. The
    // phantom is mirror-symmetric about the scanner-RAS plane x = const through its centre.
    auto ras_of = [&](int64_t v) {
      const int64_t i = v % f.channels.dims[0], j = (v / f.channels.dims[0]) % f.channels.dims[1],
                    k = v / (f.channels.dims[0] * f.channels.dims[1]);
      return f.vox2ras().apply({double(i), double(j), double(k)});
    };
    Vec3 centroid{0, 0, 0};
    double count = 0;
    for (int64_t v = 0; v < n; ++v)
      if (f.mask.data[v] != 0) {
        const Vec3 ras = ras_of(v);
        for (int ax = 0; ax < 3; ++ax) centroid[ax] += ras[ax];
        count += 1;
      }
    for (double& x : centroid) x /= count;
    EXPECT_GT(f.midsagittal.normal[0], 0.99);
    EXPECT_NEAR(f.midsagittal.side(centroid), 0.0, 1.0);
    for (int64_t v = 0; v < n; v += 7) {
      if (f.mask.data[v] == 0) continue;
      const Vec3 ras = ras_of(v);
      ASSERT_NEAR(f.channels.data[midline * n + v], f.midsagittal.side(ras) / 20.0, 1e-5);
      if (std::fabs(ras[0] - centroid[0]) > 5) {
        ASSERT_EQ(f.channels.data[midline * n + v] < 0, ras[0] < centroid[0]);
      }
    }
    // The mask channel is the mask.
    for (int64_t v = 0; v < n; ++v)
      ASSERT_EQ(f.channels.data[(f.channels.nvols - 1) * n + v], f.mask.data[v]);
    // The phantom's white matter (over a third of the brain) is anisotropic, its cortex not.
    const int64_t fa = 1;
    int64_t high = 0, inside = 0;
    for (int64_t v = 0; v < n; ++v)
      if (f.mask.data[v] != 0) {
        ++inside;
        high +=
            f.channels.data[fa * n + v] * f.normalisation[fa].scale + f.normalisation[fa].center >
            0.5;
      }
    EXPECT_GT(high, inside / 5);
    EXPECT_LT(high, inside * 3 / 5);

    // The grid affine survives NIfTI storage bit for bit, so SDFs map back to scanner RAS.
    const std::string path = dir + "/features.nii.gz";
    write_volume(f.channels, path);
    const Volume back = read_volume(path);
    EXPECT_EQ(back.dims, f.channels.dims);
    for (int e = 0; e < 16; ++e) EXPECT_EQ(back.vox2ras.m[e], f.vox2ras().m[e]) << "element " << e;
    EXPECT_EQ(back.data, f.channels.data);
    const Affine inv = f.vox2ras().inverse();
    for (const Vec3 ijk :
         {Vec3{0, 0, 0}, Vec3{17, 3, 40}, Vec3{double(f.channels.dims[0] - 1), 5, 9}}) {
      const Vec3 again = inv.apply(f.vox2ras().apply(ijk));
      for (int ax = 0; ax < 3; ++ax) EXPECT_EQ(again[ax], ijk[ax]);
    }
  }
}

// ---------------------------------------------------------------- scans without CSF

// The left hemisphere of head_phantom's brain (flat medial face 3.5 mm left of its centre) in a
// medium without signal: with CSF (a 4.5 mm outer layer, the medial fissure's half and a
// ventricle, as a head cut to one hemisphere keeps), or without (an ex vivo specimen: tissue
// only, the ventricle collapsed into white matter). Without CSF a fin of cortex stands 8 mm out of
// its lateral surface, 6 mm thick, as a gyrus's crown that no CSF joins to the rest (in_fin).
// Sets `mask` to the brain mask without the fin and `centre` to the brain's centre (scanner RAS).
bool in_fin(const Vec3& p, const Vec3& centre) {
  const double x = p[0] - centre[0], y = p[1] - centre[1], z = p[2] - centre[2];
  return x > -74 && x < -60 && std::fabs(y) < 3 && std::fabs(z) < 10;
}

Volume hemisphere_phantom(const GradientTable& table, bool with_csf, Volume& mask, Vec3& centre) {
  const double voxel = 2.5;
  const Affine affine = scanner_affine(voxel);
  const std::array<int64_t, 3> dims{64, 80, 64};
  Volume dwi(dims, static_cast<int64_t>(table.size()), affine, 0.f);
  mask = Volume(dims, 1, affine, 0.f);
  const auto world = bvecs_world(table, affine);
  std::mt19937 rng(5);
  std::normal_distribution<double> noise(0, 1);
  centre = affine.apply({0.5 * (dims[0] - 1), 0.5 * (dims[1] - 1), 0.5 * (dims[2] - 1)});
  for (int64_t k = 0; k < dims[2]; ++k)
    for (int64_t j = 0; j < dims[1]; ++j)
      for (int64_t i = 0; i < dims[0]; ++i) {
        const Vec3 p = affine.apply({double(i), double(j), double(k)});
        const double x = p[0] - centre[0], y = p[1] - centre[1], z = p[2] - centre[2];
        const double r = phantom_radius(p, centre);
        const bool ventricle =
            std::pow((x + 9) / 6, 2) + std::pow(y / 26, 2) + std::pow((z - 8) / 9, 2) < 1;
        double s0 = 0, lpar = 3e-3, lperp = 3e-3;
        Vec3 fibre{0, 0, 1};
        if (x < -3.5 && r < 1) {
          if (ventricle && with_csf) {
            s0 = 2200;
          } else if (r < 0.72) {
            s0 = 850, lpar = 1.7e-3, lperp = 0.35e-3;
            const double n = std::hypot(y, z) + 1e-9;
            fibre = {0, -z / n, y / n};
          } else {
            s0 = 1100, lpar = 0.9e-3, lperp = 0.75e-3;
          }
        } else if (with_csf && x < -1 && r < 1 + 4.5 / 72.0) {
          s0 = 2000;
        } else if (!with_csf && in_fin(p, centre)) {
          s0 = 1100, lpar = 0.9e-3, lperp = 0.75e-3;
        }
        if (s0 == 0) continue;
        if (!in_fin(p, centre) || r < 1) mask.at(i, j, k) = 1;
        for (int64_t v = 0; v < dwi.nvols; ++v) {
          const Vec3& g = world[v];
          const double c = g[0] * fibre[0] + g[1] * fibre[1] + g[2] * fibre[2];
          const double s = s0 * std::exp(-table.bvals[v] * (lperp + (lpar - lperp) * c * c));
          dwi.at(i, j, k, v) = static_cast<float>(std::hypot(s + 15 * noise(rng), 15 * noise(rng)));
        }
      }
  return dwi;
}

TEST(FeaturesNormalisation, SpecimenIsSeenWholeWithAShellOfCsf) {
  const GradientTable table = shells_table(2, {{1000, 12}, {2000, 12}}, scanner_affine(2.5));
  struct Scan {
    FeatureSet f;
    Vec3 centre;
  };
  // The automatic mask's opening cuts the specimen's fin; a given mask leaves it out.
  auto features = [&](bool with_csf, bool given_mask) {
    Volume mask;
    Scan s;
    const Volume dwi = hemisphere_phantom(table, with_csf, mask, s.centre);
    FeatureOptions fo;
    fo.grid.spacing_mm = 2.0;
    fo.hemispheres = "auto";
    s.f = compute_features(dwi, table, given_mask ? &mask : nullptr, fo);
    return s;
  };
  const Scan head = features(true, true), specimen = features(false, false),
             given = features(false, true);
  ASSERT_EQ(head.f.hemispheres, std::vector<std::string>{"lh"});
  ASSERT_EQ(specimen.f.hemispheres, std::vector<std::string>{"lh"});
  // A hemisphere that keeps its CSF is normalised over its mask and left as it is.
  EXPECT_GT(head.f.water_share, 0.1);
  EXPECT_FALSE(head.f.tissue_only);
  EXPECT_EQ(head.f.void_filled_voxels, 0);
  EXPECT_LT(specimen.f.water_share, 0.05);
  EXPECT_TRUE(specimen.f.tissue_only);
  EXPECT_GT(specimen.f.void_filled_voxels, 0);
  EXPECT_TRUE(given.f.tissue_only);

  // Grid voxels of the hemisphere (x < -3.5) by the phantom's radius (1 at the pial surface,
  // about 1 / 66 per mm), away from the fin.
  const int64_t b0 = 0, fa = 1, md = 2;
  // The grid voxels of `s` whose centre satisfies `keep` (scanner RAS relative to the centre).
  auto grid_voxels = [](const Scan& s, const std::function<bool(const Vec3&)>& keep) {
    std::vector<int64_t> out;
    const Volume& c = s.f.channels;
    for (int64_t k = 0; k < c.dims[2]; ++k)
      for (int64_t j = 0; j < c.dims[1]; ++j)
        for (int64_t i = 0; i < c.dims[0]; ++i) {
          const Vec3 p = c.vox2ras.apply({double(i), double(j), double(k)});
          if (keep({p[0] - s.centre[0], p[1] - s.centre[1], p[2] - s.centre[2]}))
            out.push_back((k * c.dims[1] + j) * c.dims[0] + i);
        }
    return out;
  };
  auto voxels = [&](const Scan& s, double r0, double r1) {
    return grid_voxels(s, [&](const Vec3& d) {
      const double r = phantom_radius(d, {0, 0, 0});
      return d[0] <= -6 && r >= r0 && r < r1 && (std::fabs(d[1]) >= 15 || std::fabs(d[2]) >= 20);
    });
  };
  auto in_mask = [](const Scan& s, const std::vector<int64_t>& v) {
    int64_t n = 0;
    for (int64_t x : v) n += s.f.mask.data[size_t(x)] != 0.f;
    return double(n) / double(v.size());
  };
  auto median = [](const Scan& s, int64_t c, const std::vector<int64_t>& v) {
    const int64_t n = s.f.channels.voxels_per_volume();
    std::vector<float> x;
    for (int64_t q : v)
      if (s.f.mask.data[size_t(q)] != 0.f) x.push_back(s.f.channels.data[size_t(c * n + q)]);
    std::nth_element(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(x.size() / 2), x.end());
    return static_cast<double>(x[x.size() / 2]);
  };
  // The fin's voxels 3.5-7 mm out of the lateral surface (x from -73 to -69.5).
  auto fin = [&](const Scan& s) {
    return grid_voxels(s, [&](const Vec3& d) {
      return in_fin(d, {0, 0, 0}) && d[0] > -73 && d[0] < -69.5 && std::fabs(d[1]) < 2 &&
             std::fabs(d[2]) < 8;
    });
  };
  // The specimen is seen whole: the fin the automatic mask's opening cut is back, with cortex's
  // diffusion (MD as the cortex elsewhere, not water's); a given mask is kept as given. A shell
  // of about 3 mm surrounds the specimen, as the head's CSF surrounds the head (nothing 8 mm
  // out).
  const auto cortex = voxels(specimen, 0.8, 0.9), crown = fin(specimen);
  ASSERT_FALSE(crown.empty());
  EXPECT_GT(in_mask(specimen, crown), 0.9);
  EXPECT_NEAR(median(specimen, md, crown), median(specimen, md, cortex), 0.5);
  EXPECT_LT(in_mask(given, fin(given)), 0.5);
  for (const Scan* s : {&specimen, &given}) {
    EXPECT_GT(in_mask(*s, voxels(*s, 1.0, 1.015)), 0.9);
    EXPECT_EQ(in_mask(*s, voxels(*s, 1.13, 1.3)), 0.0);
  }
  // The shell's void is given free water's signal: brighter in b0 than the cortex, diffusing
  // faster, isotropic, as the head's CSF shell is (in the network's units, over each scan's mask).
  for (const Scan* s : {&head, &specimen}) {
    const auto c = voxels(*s, 0.8, 0.9), w = voxels(*s, 1.0, 1.02);
    const std::string name = s == &head ? "head" : "specimen";
    EXPECT_GT(median(*s, b0, w), median(*s, b0, c) + 1.0) << name;
    EXPECT_GT(median(*s, md, w), median(*s, md, c) + 1.0) << name;
    EXPECT_LT(median(*s, fa, w), median(*s, fa, c)) << name;
  }
}

// ---------------------------------------------------------------- real scans

TEST(FeaturesRealData, AutomaticMaskOnEveryScan) {
  struct Case {
    std::string rel;
    double min_ml, max_ml, min_fraction;
  };
  // XA30: whole brain above the skull base in a 117 mm slab; Philips: a 64 mm slab; tiny: a
  // crop from inside a brain, so nearly all of it is brain.
  const std::vector<Case> cases{{"dwi/xa30/10_DWI_dir80_PA", 1000, 1800, 0},
                                {"dwi/xa30/17_DWI_dir80_AP", 1000, 1800, 0},
                                {"dwi/philips/dwi", 700, 1400, 0},
                                {"dwi/tiny/small_101D", 0, 1e9, 0.8}};
  int ran = 0;
  for (const Case& c : cases) {
    const std::string image = shared(c.rel + ".nii.gz");
    if (!fs::exists(image)) continue;
    ++ran;
    const Volume dwi = read_volume(image, true);
    const GradientTable table =
        read_fsl_gradients(shared(c.rel + ".bval"), shared(c.rel + ".bvec"));
    const Protocol protocol = analyse_protocol(table, dwi.vox2ras, dwi.nvols, image);
    const Volume mask = auto_mask(dwi, protocol);
    const double ml = mask_ml(mask);
    const double fraction =
        ml * 1000 /
        (dwi.voxels_per_volume() * dwi.spacing()[0] * dwi.spacing()[1] * dwi.spacing()[2]);
    EXPECT_GE(ml, c.min_ml) << c.rel;
    EXPECT_LE(ml, c.max_ml) << c.rel;
    EXPECT_GE(fraction, c.min_fraction) << c.rel;
    EXPECT_LT(fraction, 0.999 + (c.min_fraction > 0 ? 1 : 0)) << c.rel;
  }
  if (ran == 0) GTEST_SKIP() << "shared data absent: " << shared_root();
}
