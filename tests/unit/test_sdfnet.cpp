// SDFNet: model files made by models/sdfnet.py load in C++ with their metadata checked; inference
// keeps the grid; sliding-window inference reproduces whole-volume inference; a tiny training run
// lowers the loss, checkpoints and resumes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "ddcsr/error.h"
#include "ddcsr/io/surface.h"
#include "ddcsr/mesh.h"
#include "ddcsr/sdfnet/sdfnet.h"
#include "ddcsr/sdfnet/train.h"
#include "ddcsr/sdfnet/training_data.h"
#include "sdfnet/sdfnet_impl.h"

namespace fs = std::filesystem;
using namespace ddcsr;

namespace {

const std::vector<std::string> kChannels{"white_like", "pial_like", "noise"};

class SdfNetTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ =
        (fs::temp_directory_path() / ("ddcsr_test_sdfnet_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // Two levels keep the CI training run short (oneDNN wants widths of 8 or more); 2 mm matches
    // the phantoms below.
    export_model(model(), "--channels white_like,pial_like,noise --spacing 2 --width 8 --levels 2");
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static void export_model(const std::string& out, const std::string& args) {
    const std::string cmd = "/usr/bin/python3 " DDCSR_SOURCE_DIR "/models/sdfnet.py export " +
                            args + " -o " + out + " > " + dir_ + "/export.log 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  static std::string model() { return dir_ + "/model.pt"; }
  static std::string dir_;
};
std::string SdfNetTest::dir_;

// A grid of 2 mm voxels centred on the origin, slightly oblique like a real scan.
Affine grid_affine(const std::array<int64_t, 3>& dims) {
  const double c = std::cos(0.1), s = std::sin(0.1);
  Affine a =
      Affine::from_linear_translation({2 * c, -2 * s, 0, 2 * s, 2 * c, 0, 0, 0, 2}, {0, 0, 0});
  Vec3 centre = a.apply({(dims[0] - 1) / 2.0, (dims[1] - 1) / 2.0, (dims[2] - 1) / 2.0});
  a(0, 3) = -centre[0];
  a(1, 3) = -centre[1];
  a(2, 3) = -centre[2];
  return a;
}

// Two hemispheres as spheres left and right of the midline; white radius 6 mm, pial 9 mm.
// Features: smoothed indicators of the white and pial balls, plus noise.
SdfTrainingPair sphere_phantom(const std::array<int64_t, 3>& dims, unsigned seed) {
  SdfTrainingPair p;
  p.name = "phantom" + std::to_string(seed);
  const Affine a = grid_affine(dims);
  p.features = Volume(dims, 3, a);
  p.sdf = Volume(dims, 4, a);
  std::srand(seed);
  const double shift = 1.0 * (seed % 3);
  for (int64_t k = 0; k < dims[2]; ++k)
    for (int64_t j = 0; j < dims[1]; ++j)
      for (int64_t i = 0; i < dims[0]; ++i) {
        const Vec3 r = a.apply({double(i), double(j), double(k)});
        const double dl = std::hypot(r[0] + 12, r[1] - shift, r[2]);
        const double dr = std::hypot(r[0] - 12, r[1] - shift, r[2]);
        p.sdf.at(i, j, k, 0) = float(dl - 6);
        p.sdf.at(i, j, k, 1) = float(dl - 9);
        p.sdf.at(i, j, k, 2) = float(dr - 6);
        p.sdf.at(i, j, k, 3) = float(dr - 9);
        const double dw = std::min(dl, dr) - 6, dp = std::min(dl, dr) - 9;
        p.features.at(i, j, k, 0) = float(1 / (1 + std::exp(dw)));
        p.features.at(i, j, k, 1) = float(1 / (1 + std::exp(dp)));
        p.features.at(i, j, k, 2) = float(std::rand() / double(RAND_MAX) - 0.5);
      }
  return p;
}

double max_abs_diff(const Volume& a, const Volume& b) {
  double m = 0;
  for (size_t i = 0; i < a.data.size(); ++i)
    m = std::max(m, double(std::fabs(a.data[i] - b.data[i])));
  return m;
}

}  // namespace

TEST_F(SdfNetTest, LoadsModelAndItsMetadata) {
  SdfNet net = SdfNet::load(model(), kChannels, Device::Cpu);
  const SdfNetMetadata& m = net.metadata();
  EXPECT_EQ(m.format, kSdfNetFormat);
  EXPECT_EQ(m.architecture, kSdfNetArchitecture);
  EXPECT_EQ(m.input_channels, kChannels);
  EXPECT_EQ(m.outputs, sdfnet_outputs());
  EXPECT_EQ(m.output_units, "mm");
  EXPECT_DOUBLE_EQ(m.grid_spacing_mm, 2.0);
  EXPECT_EQ(m.size_multiple, 4);
  EXPECT_FALSE(m.trained);
  EXPECT_EQ(net.device_name(), "cpu");
  EXPECT_NE(m.json.find("\"input_channels\""), std::string::npos);
}

TEST_F(SdfNetTest, RefusesMismatchedOrForeignModels) {
  try {
    SdfNet::load(model(), {"fa", "md", "noise"});
    FAIL() << "a model for other channels was accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(e.path(), model());
    EXPECT_NE(std::string(e.what()).find("white_like,pial_like,noise"), std::string::npos)
        << e.what();
  }
  // Same names in another order are other inputs.
  EXPECT_THROW(SdfNet::load(model(), {"pial_like", "white_like", "noise"}), InputError);
  export_model(dir_ + "/foreign.pt",
               "--channels white_like,pial_like,noise --spacing 2 --width 8 --levels 2 "
               "--architecture some-other-net");
  try {
    SdfNet::load(dir_ + "/foreign.pt", kChannels);
    FAIL() << "a model of another architecture was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("some-other-net"), std::string::npos) << e.what();
  }
  const std::string junk = dir_ + "/junk.pt";
  std::ofstream(junk) << "not a zip archive";
  EXPECT_THROW(SdfNet::load(junk), InputError);
  EXPECT_THROW(SdfNet::load(dir_ + "/missing.pt"), InputError);
  EXPECT_THROW(parse_sdfnet_metadata("{\"format\": \"ddcsr-sdfnet\",", "x.pt"), InputError);
  EXPECT_THROW(parse_sdfnet_metadata("{\"format\": \"other\"}", "x.pt"), InputError);
  EXPECT_THROW(parse_device("tpu"), UsageError);
  EXPECT_THROW(SdfNet::load(model(), kChannels, Device::Cuda), UsageError);  // CPU-only LibTorch
}

TEST_F(SdfNetTest, PredictsFourFramesOnTheFeatureGrid) {
  SdfNet net = SdfNet::load(model(), kChannels, Device::Cpu);
  const SdfTrainingPair p = sphere_phantom({21, 18, 13}, 1);  // not multiples of 4
  const Volume sdf = net.predict(p.features);
  EXPECT_EQ(sdf.dims, p.features.dims);
  EXPECT_EQ(sdf.nvols, 4);
  for (int i = 0; i < 16; ++i) EXPECT_DOUBLE_EQ(sdf.vox2ras.m[i], p.features.vox2ras.m[i]);
  for (float v : sdf.data) {
    ASSERT_TRUE(std::isfinite(v));
    ASSERT_LE(std::fabs(v), net.metadata().output_range_mm);
  }
  // Deterministic on CPU.
  EXPECT_EQ(max_abs_diff(sdf, net.predict(p.features)), 0.0);

  // Wrong channel count or grid spacing are refused, naming the input.
  Volume two(p.features.dims, 2, p.features.vox2ras);
  EXPECT_THROW(net.predict(two, {}, {}, "two.nii.gz"), InputError);
  Volume fine = p.features;
  fine.vox2ras = Affine::identity();
  try {
    net.predict(fine, {}, {}, "fine.nii.gz");
    FAIL() << "1 mm features accepted by a 2 mm model";
  } catch (const InputError& e) {
    EXPECT_EQ(e.path(), "fine.nii.gz");
  }
}

TEST_F(SdfNetTest, SlidingWindowMatchesWholeVolume) {
  // A briefly trained model, so outputs vary like real SDFs rather than staying near zero.
  SdfNet net = SdfNet::load(model(), kChannels, Device::Cpu);
  SdfTrainOptions o;
  o.steps = 12;
  o.patch = 16;
  o.clip_mm = 8;
  o.learning_rate = 5e-3;
  o.validation_every = 0;
  o.checkpoint_every = 0;
  train_sdfnet(net, {sphere_phantom({24, 24, 24}, 2)}, o);

  const SdfTrainingPair p = sphere_phantom({48, 40, 36}, 3);
  SdfInferenceOptions whole_opts, sliding_opts;
  whole_opts.mode = SdfInferenceOptions::Mode::Whole;
  sliding_opts.mode = SdfInferenceOptions::Mode::Sliding;
  sliding_opts.patch = 32;
  sliding_opts.overlap = 16;
  EXPECT_FALSE(net.uses_sliding_window(p.features.dims, whole_opts));
  EXPECT_TRUE(net.uses_sliding_window(p.features.dims, sliding_opts));
  int calls = 0;
  const Volume whole = net.predict(p.features, whole_opts);
  const Volume sliding = net.predict(p.features, sliding_opts, [&](double) { ++calls; });
  // Per pass (direct, then mirrored): start, then patches at i 0, 16 / j 0, 8 / k 0, 4.
  EXPECT_EQ(calls, 2 * (1 + 2 * 2 * 2));
  ASSERT_EQ(sliding.dims, whole.dims);
  double lo = 1e9, hi = -1e9;
  for (float v : whole.data) {
    lo = std::min(lo, double(v));
    hi = std::max(hi, double(v));
  }
  std::vector<double> diff(whole.data.size());
  for (size_t i = 0; i < diff.size(); ++i) diff[i] = std::fabs(whole.data[i] - sliding.data[i]);
  std::sort(diff.begin(), diff.end());
  double mean = 0;
  for (double d : diff) mean += d / diff.size();
  const double p99 = diff[diff.size() * 99 / 100];
  RecordProperty("output_range_mm", std::to_string(hi - lo));
  RecordProperty("mean_abs_diff_mm", std::to_string(mean));
  RecordProperty("p99_abs_diff_mm", std::to_string(p99));
  RecordProperty("max_abs_diff_mm", std::to_string(diff.back()));
  ASSERT_GT(hi - lo, 2.0) << "outputs too flat for a meaningful comparison";
  EXPECT_LT(mean, 0.01 * (hi - lo)) << "range " << hi - lo;
  EXPECT_LT(p99, 0.05 * (hi - lo)) << "range " << hi - lo;

  // Auto picks sliding when the whole volume exceeds the budget.
  SdfInferenceOptions tight;
  tight.memory_budget_mb = net.whole_volume_memory_mb(p.features.dims) / 2;
  EXPECT_TRUE(net.uses_sliding_window(p.features.dims, tight));
  tight.memory_budget_mb *= 4;
  EXPECT_FALSE(net.uses_sliding_window(p.features.dims, tight));
}

// The left-right mirror of a feature volume along voxel axis i, `signed_channel` negated.
Volume mirrored_along_i(const Volume& v, int64_t signed_channel = -1) {
  Volume out(v.dims, v.nvols, v.vox2ras);
  for (int64_t c = 0; c < v.nvols; ++c)
    for (int64_t k = 0; k < v.dims[2]; ++k)
      for (int64_t j = 0; j < v.dims[1]; ++j)
        for (int64_t i = 0; i < v.dims[0]; ++i)
          out.at(i, j, k, c) = (c == signed_channel ? -1 : 1) * v.at(v.dims[0] - 1 - i, j, k, c);
  return out;
}

TEST_F(SdfNetTest, MirrorAverageIsLeftRightSymmetric) {
  // The noise channel stands in for a feature like `midline` whose sign a mirror flips.
  const std::string signed_model = dir_ + "/signed.pt";
  export_model(signed_model,
               "--channels white_like,pial_like,noise --lr-signed noise --spacing 2 --width 8 "
               "--levels 2 --seed 3");
  SdfNet net = SdfNet::load(signed_model, kChannels, Device::Cpu);
  const SdfTrainingPair p = sphere_phantom({21, 18, 13}, 4);  // i is the left-right axis
  const Volume mirror_features = mirrored_along_i(p.features, 2);
  SdfInferenceOptions one_pass;
  one_pass.mirror_average = false;
  const Volume direct = net.predict(p.features, one_pass);
  const Volume from_mirror = net.predict(mirror_features, one_pass);
  const Volume averaged = net.predict(p.features);

  // The average is the direct pass and the mirrored pass mirrored back, lh and rh exchanged.
  const int64_t n = p.features.voxels_per_volume();
  const std::array<int64_t, 4> swap{2, 3, 0, 1};
  double worst = 0;
  for (int64_t t = 0; t < 4; ++t)
    for (int64_t k = 0; k < p.features.dims[2]; ++k)
      for (int64_t j = 0; j < p.features.dims[1]; ++j)
        for (int64_t i = 0; i < p.features.dims[0]; ++i) {
          const double expected = 0.5 * (direct.at(i, j, k, t) +
                                         from_mirror.at(p.features.dims[0] - 1 - i, j, k, swap[t]));
          worst = std::max(worst, std::fabs(averaged.at(i, j, k, t) - expected));
        }
  EXPECT_LT(worst, 1e-5);

  // So mirroring the input mirrors the output exactly, which a single pass does not.
  auto asymmetry = [&](const Volume& of_features, const Volume& of_mirror) {
    double m = 0;
    for (int64_t t = 0; t < 4; ++t)
      for (int64_t v = 0; v < n; ++v) {
        const int64_t i = v % p.features.dims[0], rest = v / p.features.dims[0];
        const int64_t w = rest * p.features.dims[0] + (p.features.dims[0] - 1 - i);
        m = std::max(
            m, double(std::fabs(of_features.data[t * n + v] - of_mirror.data[swap[t] * n + w])));
      }
    return m;
  };
  EXPECT_LT(asymmetry(averaged, net.predict(mirror_features)), 1e-5);
  EXPECT_GT(asymmetry(direct, from_mirror), 1e-3);
}

TEST_F(SdfNetTest, TinyTrainingLowersLossCheckpointsAndResumes) {
  SdfNet net = SdfNet::load(model(), kChannels, Device::Cpu);
  std::vector<SdfTrainingPair> pairs{sphere_phantom({28, 24, 24}, 4),
                                     sphere_phantom({28, 24, 24}, 5),
                                     sphere_phantom({28, 24, 24}, 6)};
  SdfTrainOptions o;
  o.steps = 40;
  o.patch = 16;
  o.clip_mm = 8;
  o.learning_rate = 5e-3;
  o.validation_fraction = 0.34;
  o.validation_every = 20;
  o.validation_patches = 4;
  o.checkpoint_every = 20;
  o.checkpoint_path = dir_ + "/ckpt.pt";
  int calls = 0;
  double first_val = -1;
  SdfTrainStatus last;
  const SdfTrainResult r = train_sdfnet(net, pairs, o, [&](const SdfTrainStatus& s) {
    ++calls;
    last = s;
    if (s.validated && first_val < 0) first_val = s.validation_loss;
  });
  EXPECT_EQ(calls, 40);
  EXPECT_EQ(last.step, 40);
  EXPECT_DOUBLE_EQ(last.eta_s, 0.0);
  EXPECT_EQ(r.validation_pairs.size(), 1u);
  EXPECT_EQ(r.training_pairs.size(), 2u);
  RecordProperty("first_loss", std::to_string(r.first_loss));
  RecordProperty("final_loss", std::to_string(r.final_loss));
  EXPECT_LT(r.final_loss, 0.6 * r.first_loss)
      << "first " << r.first_loss << " final " << r.final_loss;
  EXPECT_GT(r.validation_loss, 0);
  EXPECT_TRUE(net.metadata().trained);

  // The saved model and the checkpoint reload with the training record.
  net.save(dir_ + "/trained.pt");
  SdfNet reloaded = SdfNet::load(dir_ + "/trained.pt", kChannels);
  EXPECT_TRUE(reloaded.metadata().trained);
  EXPECT_NE(reloaded.metadata().json.find("\"training_pairs\""), std::string::npos);
  EXPECT_NE(reloaded.metadata().json.find("\"normalisation_values\""), std::string::npos);
  const Volume a = net.predict(pairs[0].features), b = reloaded.predict(pairs[0].features);
  EXPECT_EQ(max_abs_diff(a, b), 0.0);
  ASSERT_TRUE(fs::exists(o.checkpoint_path));
  ASSERT_TRUE(fs::exists(o.checkpoint_path + ".optim"));

  SdfNet ckpt = SdfNet::load(o.checkpoint_path, kChannels);
  SdfTrainOptions more = o;
  more.steps = 44;
  more.resume = true;
  const SdfTrainResult r2 = train_sdfnet(ckpt, pairs, more);
  EXPECT_EQ(r2.first_step, 40);
  EXPECT_EQ(r2.last_step, 44);
  EXPECT_NE(ckpt.metadata().json.find("\"step\": 44"), std::string::npos);

  // --stop-at ends a run early on the same schedule; --resume finishes it.
  SdfTrainOptions part = more;
  part.steps = 50;
  part.stop_at = 47;
  SdfNet ckpt2 = SdfNet::load(o.checkpoint_path, kChannels);
  ASSERT_NE(ckpt2.metadata().json.find("\"step\": 44"), std::string::npos);
  const SdfTrainResult r3 = train_sdfnet(ckpt2, pairs, part);
  EXPECT_EQ(r3.first_step, 44);
  EXPECT_EQ(r3.last_step, 47);
  SdfNet ckpt3 = SdfNet::load(o.checkpoint_path, kChannels);
  EXPECT_NE(ckpt3.metadata().json.find("\"step\": 47"), std::string::npos);
  part.stop_at = 0;
  const SdfTrainResult r4 = train_sdfnet(ckpt3, pairs, part);
  EXPECT_EQ(r4.first_step, 47);
  EXPECT_EQ(r4.last_step, 50);

  // Resuming from a model that is not a checkpoint is refused.
  SdfNet fresh = SdfNet::load(model(), kChannels);
  EXPECT_THROW(train_sdfnet(fresh, pairs, more), InputError);
}

// The weight average of checkpoints of one run is their parameters' element-wise mean; models
// with another input normalisation or another architecture are refused.
TEST_F(SdfNetTest, WeightAverageIsTheMeanOfTheCheckpoints) {
  SdfNet net = SdfNet::load(model(), kChannels, Device::Cpu);
  std::vector<SdfTrainingPair> pairs{sphere_phantom({28, 24, 24}, 4),
                                     sphere_phantom({28, 24, 24}, 5)};
  SdfTrainOptions o;
  o.steps = 6;
  o.patch = 16;
  o.learning_rate = 5e-3;
  o.validation_every = 0;
  o.checkpoint_path = dir_ + "/avg_ckpt.pt";
  train_sdfnet(net, pairs, o);
  net.save(dir_ + "/avg_a.pt");
  o.set_normalisation = false;  // the second half of the run keeps the inputs of the first
  train_sdfnet(net, pairs, o);
  net.save(dir_ + "/avg_b.pt");
  const SdfNet mean = average_sdfnet_weights({dir_ + "/avg_a.pt", dir_ + "/avg_b.pt"});
  const SdfNet a = SdfNet::load(dir_ + "/avg_a.pt", kChannels, Device::Cpu);
  const SdfNet b = SdfNet::load(dir_ + "/avg_b.pt", kChannels, Device::Cpu);
  std::vector<torch::Tensor> pa, pb;
  for (const auto& p : a.impl().module.parameters()) pa.push_back(p);
  for (const auto& p : b.impl().module.parameters()) pb.push_back(p);
  size_t k = 0;
  double changed = 0;
  for (const auto& p : mean.impl().module.parameters()) {
    ASSERT_LT(k, pa.size());
    EXPECT_TRUE(torch::allclose(p, 0.5 * (pa[k] + pb[k]), 1e-5, 1e-7)) << "parameter " << k;
    changed += (pa[k] - pb[k]).abs().sum().item<double>();
    ++k;
  }
  EXPECT_EQ(k, pa.size());
  EXPECT_GT(changed, 0);  // the two checkpoints differ, so the mean is not either of them
  // BatchNorm's running statistics belong to the weights: averaged too.
  std::vector<torch::Tensor> ba, bb;
  for (const auto& x : a.impl().module.named_buffers(true))
    if (x.name.find("running_mean") != std::string::npos) ba.push_back(x.value);
  for (const auto& x : b.impl().module.named_buffers(true))
    if (x.name.find("running_mean") != std::string::npos) bb.push_back(x.value);
  size_t r = 0;
  for (const auto& m : mean.impl().module.named_buffers(true))
    if (m.name.find("running_mean") != std::string::npos) {
      ASSERT_LT(r, ba.size());
      EXPECT_TRUE(torch::allclose(m.value, 0.5 * (ba[r] + bb[r]), 1e-5, 1e-7)) << m.name;
      ++r;
    }
  EXPECT_GT(r, 0u);
  EXPECT_EQ(r, ba.size());
  EXPECT_NE(mean.metadata().json.find("\"weight_average\""), std::string::npos);

  export_model(dir_ + "/avg_other.pt",
               "--channels white_like,pial_like,noise --spacing 2 --width 4 --levels 2");
  EXPECT_THROW(average_sdfnet_weights({dir_ + "/avg_a.pt", dir_ + "/avg_other.pt"}), InputError);
  EXPECT_THROW(average_sdfnet_weights({dir_ + "/avg_a.pt", model()}), InputError);  // inputs
}

TEST_F(SdfNetTest, ValidationOnlyPairsAreNeverTrainedOnAndTheBestModelIsKept) {
  std::vector<SdfTrainingPair> pairs{sphere_phantom({28, 24, 24}, 11),
                                     sphere_phantom({28, 24, 24}, 12),
                                     sphere_phantom({28, 24, 24}, 13)};
  pairs[0].validation_only = true;
  SdfTrainOptions o;
  o.steps = 18;
  o.patch = 16;
  o.clip_mm = 8;
  o.learning_rate = 5e-3;
  o.validation_fraction = 0.5;  // ignored: a validation-only pair is given
  o.validation_every = 3;
  o.validation_patches = 4;
  o.checkpoint_every = 0;
  o.checkpoint_path = dir_ + "/best_run.ckpt.pt";
  o.best_path = dir_ + "/best.pt";
  SdfNet net = SdfNet::load(model(), kChannels, Device::Cpu);
  std::vector<std::pair<int64_t, double>> validations;
  std::vector<int64_t> written;
  const SdfTrainResult r = train_sdfnet(net, pairs, o, [&](const SdfTrainStatus& s) {
    if (s.validated) validations.emplace_back(s.step, s.validation_mae_near_mm);
    if (s.best_written) written.push_back(s.step);
  });
  EXPECT_EQ(r.validation_pairs, std::vector<std::string>{pairs[0].name});
  EXPECT_EQ(r.training_pairs, (std::vector<std::string>{pairs[1].name, pairs[2].name}));
  ASSERT_EQ(validations.size(), 6u);
  // The best file is rewritten exactly at each new minimum, and the last one is the run's best.
  std::vector<int64_t> minima;
  double lowest = 1e30;
  for (const auto& [step, mae] : validations)
    if (mae < lowest) {
      lowest = mae;
      minima.push_back(step);
    }
  EXPECT_EQ(written, minima);
  EXPECT_EQ(r.best_step, minima.back());
  EXPECT_DOUBLE_EQ(r.best_validation_mae_near_mm, lowest);
  EXPECT_GT(minima.size(), 1u) << "the error never fell below its first value";
  SdfNet best = SdfNet::load(o.best_path, kChannels);
  EXPECT_NE(best.metadata().json.find("\"step\": " + std::to_string(r.best_step) + ","),
            std::string::npos);
  EXPECT_NE(best.metadata().json.find("\"best_step\": " + std::to_string(r.best_step)),
            std::string::npos);
  if (r.best_step != o.steps) {
    EXPECT_GT(max_abs_diff(best.predict(pairs[0].features), net.predict(pairs[0].features)), 0.0);
  }

  // A resumed run starts from the best its checkpoint recorded: it rewrites the best file only
  // for a lower error.
  SdfNet ckpt = SdfNet::load(o.checkpoint_path, kChannels);
  SdfTrainOptions more = o;
  more.steps = 21;
  more.resume = true;
  double resumed_mae = -1;
  bool rewritten = false;
  const SdfTrainResult r2 = train_sdfnet(ckpt, pairs, more, [&](const SdfTrainStatus& s) {
    if (s.validated) resumed_mae = s.validation_mae_near_mm;
    rewritten = rewritten || s.best_written;
  });
  EXPECT_EQ(rewritten, resumed_mae < lowest);
  EXPECT_EQ(r2.best_step, rewritten ? more.steps : r.best_step);

  for (auto& p : pairs) p.validation_only = true;
  SdfNet fresh = SdfNet::load(model(), kChannels);
  EXPECT_THROW(train_sdfnet(fresh, pairs, o), UsageError);
}

TEST_F(SdfNetTest, RefusesBadTrainingPairs) {
  SdfNet net = SdfNet::load(model(), kChannels);
  SdfTrainingPair p = sphere_phantom({16, 16, 16}, 7);
  SdfTrainOptions o;
  o.steps = 1;
  SdfTrainingPair wrong_frames = p;
  wrong_frames.sdf = p.sdf.frame(0);
  EXPECT_THROW(train_sdfnet(net, {wrong_frames}, o), InputError);
  SdfTrainingPair moved = p;
  moved.sdf.vox2ras(0, 3) += 5;
  EXPECT_THROW(train_sdfnet(net, {moved}, o), InputError);
  SdfTrainingPair nan = p;
  nan.sdf.data[5] = std::nanf("");
  EXPECT_THROW(train_sdfnet(net, {nan}, o), InputError);
}

TEST(SdfMae, CountsOnlyVoxelsNearTheSurface) {
  Volume truth({4, 1, 1}, 1, Affine::identity());
  truth.data = {-1, 0.5, 5, 10};
  Volume pred = truth;
  pred.data = {0, 0.5, 0, 0};
  const auto mae = sdf_mae_near_surface(pred, truth, 3.0);
  ASSERT_EQ(mae.size(), 1u);
  EXPECT_DOUBLE_EQ(mae[0], 0.5);
}

TEST(SdfTargets, ExactFromSurfacesAndResampled) {
  // Spheres: lh at x = -20, rh at x = +20; white radius 10, pial 13; on a 2 mm grid.
  const std::string dir =
      (fs::temp_directory_path() / ("ddcsr_test_sdftargets_" + std::to_string(::getpid())))
          .string();
  fs::create_directories(dir);
  for (const auto& [name, x, r] :
       std::vector<std::tuple<std::string, double, double>>{{"lh.white", -20, 10},
                                                            {"lh.pial", -20, 13},
                                                            {"rh.white", 20, 10},
                                                            {"rh.pial", 20, 13}}) {
    Mesh m = make_icosphere(4, r, {x, 0, 0});
    write_surface(m, dir + "/" + name);
  }
  TargetSurfaces surfaces = read_target_surfaces(dir);
  Volume grid({40, 20, 20}, 1,
              Affine::from_linear_translation({2, 0, 0, 0, 2, 0, 0, 0, 2}, {-39, -19, -19}));
  const Volume sdf = sdf_targets_from_surfaces(surfaces, grid);
  ASSERT_EQ(sdf.nvols, 4);
  // Voxel (10, 9, 9) is at (-19, -1, -1): 1.73 mm from the lh centre.
  const double d = std::sqrt(1 + 1 + 1.0);
  EXPECT_NEAR(sdf.at(10, 9, 9, 0), d - 10, 0.1);  // icosphere facets sit inside the sphere
  EXPECT_NEAR(sdf.at(10, 9, 9, 1), d - 13, 0.15);
  EXPECT_NEAR(sdf.at(10, 9, 9, 2), std::hypot(39.0, 1.0, 1.0) - 10, 0.1);

  // A RAS-to-RAS affine moves the surfaces: a 4 mm shift in x changes the SDF accordingly.
  std::ofstream(dir + "/shift.txt") << "# surfaces to scan\n1 0 0 4\n0 1 0 0\n0 0 1 0\n0 0 0 1\n";
  TargetSurfaces shifted = surfaces;
  transform_surfaces(shifted, read_ras_to_ras_affine(dir + "/shift.txt"));
  const Volume sdf_shifted = sdf_targets_from_surfaces(shifted, grid);
  EXPECT_NEAR(sdf_shifted.at(12, 9, 9, 0), sdf.at(10, 9, 9, 0), 0.05);
  // A mirror keeps the inside inside (faces re-oriented).
  TargetSurfaces mirrored = surfaces;
  transform_surfaces(mirrored,
                     Affine::from_linear_translation({-1, 0, 0, 0, 1, 0, 0, 0, 1}, {0, 0, 0}));
  EXPECT_LT(sdf_targets_from_surfaces(mirrored, grid).at(29, 9, 9, 0), -5);

  std::ofstream(dir + "/bad.txt") << "1 0 0\n0 1 0\n";
  EXPECT_THROW(read_ras_to_ras_affine(dir + "/bad.txt"), InputError);
  fs::remove(dir + "/rh.pial");
  EXPECT_THROW(read_target_surfaces(dir), InputError);

  // Resampling a 2 mm SDF onto a 1 mm grid is close to the exact SDF away from the centres.
  std::array<Volume, 4> frames{sdf.frame(0), sdf.frame(1), sdf.frame(2), sdf.frame(3)};
  Volume fine({60, 30, 30}, 1,
              Affine::from_linear_translation({1, 0, 0, 0, 1, 0, 0, 0, 1}, {-30, -15, -15}));
  const Volume resampled = resample_sdf_targets(frames, fine);
  const Volume exact = sdf_targets_from_surfaces(surfaces, fine);
  const auto mae = sdf_mae_near_surface(resampled, exact, 3.0);
  for (double e : mae) EXPECT_LT(e, 0.1);
  fs::remove_all(dir);
}

// Found by fuzz_model_metadata and its review: hostile metadata must be refused with InputError,
// never reach undefined behaviour or an unbounded allocation.
TEST(SdfNetMetadata, RefusesOutOfRangeNumbersAndDeepNesting) {
  const std::string good =
      R"({"format": "ddcsr-sdfnet", "format_version": 1, "architecture": "ddcsr-attention-unet3d",
          "architecture_version": 1, "input_channels": ["b0", "fa"],
          "outputs": ["lh.white", "lh.pial", "rh.white", "rh.pial"], "output_units": "mm",
          "grid_spacing_mm": 2.0, "size_multiple": 16, "output_range_mm": 24.0, "width": 8})";
  const SdfNetMetadata m = parse_sdfnet_metadata(good, "x.pt");
  EXPECT_EQ(m.size_multiple, 16);
  EXPECT_EQ(m.width, 8);
  auto with = [&](const std::string& from, const std::string& to) {
    std::string text = good;
    text.replace(text.find(from), from.size(), to);
    return text;
  };
  // A float beyond int's range made nlohmann's get<int>() cast undefined behaviour.
  for (const char* bad : {"1e300", "-1e300", "4294967297", "1.5", "\"1\""}) {
    try {
      parse_sdfnet_metadata(
          with("\"format_version\": 1", std::string("\"format_version\": ") + bad), "x.pt");
      ADD_FAILURE() << "format_version " << bad << " accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("format_version"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(parse_sdfnet_metadata(with("\"width\": 8", "\"width\": 8e9"), "x.pt"), InputError);
  EXPECT_THROW(parse_sdfnet_metadata(with("24.0", "1e999"), "x.pt"), InputError);  // infinite range
  // The document is kept and dumped indented: nesting deep enough to make that dump quadratic
  // is refused while parsing.
  const std::string deep =
      with("\"width\": 8", "\"deep\": " + std::string(100000, '[') + std::string(100000, ']'));
  try {
    parse_sdfnet_metadata(deep, "x.pt");
    ADD_FAILURE() << "deeply nested metadata accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("nests deeper"), std::string::npos) << e.what();
  }
}
