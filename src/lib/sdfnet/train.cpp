#include "ddcsr/sdfnet/train.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "ddcsr/error.h"
#include "ddcsr/io/atomic_file.h"
#include "ddcsr/threads.h"
#include "sdfnet/sdfnet_impl.h"

namespace ddcsr {

namespace {

namespace F = torch::nn::functional;

struct PreparedPair {
  const SdfTrainingPair* pair = nullptr;
  std::vector<int64_t> near;  // voxels within near_mm of some surface
  std::vector<int64_t> band;  // voxels within clip_mm of some surface (the head, not the air)
  int lr_axis = 0;            // voxel axis closest to the world left-right axis
};

struct PatchRef {
  size_t pair = 0;
  std::array<int64_t, 3> origin{0, 0, 0};
  bool flip = false;
};

bool same_grid(const Volume& a, const Volume& b) {
  if (a.dims != b.dims) return false;
  for (int i = 0; i < 16; ++i)
    if (std::fabs(a.vox2ras.m[i] - b.vox2ras.m[i]) > 1e-3 * (1.0 + std::fabs(a.vox2ras.m[i])))
      return false;
  return true;
}

void check_pair(const SdfTrainingPair& p, int64_t channels) {
  if (p.features.nvols != channels)
    throw InputError(p.name, "features have " + std::to_string(p.features.nvols) +
                                 " frames, the model has " + std::to_string(channels) +
                                 " input channels");
  if (p.sdf.nvols != 4)
    throw InputError(p.name, "target SDF has " + std::to_string(p.sdf.nvols) +
                                 " frames, expected 4 (" + "lh.white, lh.pial, rh.white, rh.pial)");
  if (!same_grid(p.features, p.sdf))
    throw InputError(p.name, "features and target SDF are not on the same grid");
  if (p.features.data.size() != static_cast<size_t>(p.features.voxels_per_volume() * channels) ||
      p.sdf.data.size() != static_cast<size_t>(p.sdf.voxels_per_volume() * 4))
    throw InputError(p.name, "voxel data size does not match the dimensions");
  for (float v : p.features.data)
    if (!std::isfinite(v)) throw InputError(p.name, "features contain NaN or infinite values");
  for (float v : p.sdf.data)
    if (!std::isfinite(v)) throw InputError(p.name, "target SDF contains NaN or infinite values");
}

PreparedPair prepare(const SdfTrainingPair& p, double near_mm, double clip_mm) {
  PreparedPair out;
  out.pair = &p;
  out.lr_axis = lr_axis_of(p.features.vox2ras);
  const int64_t n = p.sdf.voxels_per_volume();
  for (int64_t v = 0; v < n; ++v) {
    float closest = std::numeric_limits<float>::infinity();
    for (int64_t t = 0; t < 4; ++t) closest = std::min(closest, std::fabs(p.sdf.data[t * n + v]));
    if (closest < near_mm) out.near.push_back(v);
    if (closest < clip_mm) out.band.push_back(v);
  }
  return out;
}

// Copies a cube of `patch` voxels starting at `origin` from every frame of `v` into `dst`
// ([frames, P, P, P], k slowest), with zeros outside the volume.
void extract(const Volume& v, const std::array<int64_t, 3>& origin, int64_t patch, float* dst) {
  const int64_t p3 = patch * patch * patch;
  std::fill(dst, dst + v.nvols * p3, 0.f);
  const int64_t i_lo = std::max<int64_t>(0, -origin[0]);
  const int64_t i_hi = std::min<int64_t>(patch, v.dims[0] - origin[0]);
  if (i_hi <= i_lo) return;
  for (int64_t t = 0; t < v.nvols; ++t)
    for (int64_t k = 0; k < patch; ++k) {
      const int64_t kk = origin[2] + k;
      if (kk < 0 || kk >= v.dims[2]) continue;
      for (int64_t j = 0; j < patch; ++j) {
        const int64_t jj = origin[1] + j;
        if (jj < 0 || jj >= v.dims[1]) continue;
        const float* src = &v.data[v.index(origin[0] + i_lo, jj, kk, t)];
        std::memcpy(dst + t * p3 + (k * patch + j) * patch + i_lo, src,
                    static_cast<size_t>(i_hi - i_lo) * sizeof(float));
      }
    }
}

void fill_mask(const Volume& v, const std::array<int64_t, 3>& origin, int64_t patch, float* dst) {
  for (int64_t k = 0; k < patch; ++k)
    for (int64_t j = 0; j < patch; ++j)
      for (int64_t i = 0; i < patch; ++i)
        dst[(k * patch + j) * patch + i] =
            v.inside(origin[0] + i, origin[1] + j, origin[2] + k) ? 1.f : 0.f;
}

struct Batch {
  torch::Tensor x, target, mask;  // [B, C|4|1, P, P, P]
};

struct LossTerms {
  torch::Tensor loss;  // weighted L1, differentiable
  double weighted_sum = 0, weight_sum = 0, near_abs_sum = 0, near_count = 0;
};

class Trainer {
 public:
  Trainer(SdfNet& net, const std::vector<SdfTrainingPair>& pairs, const SdfTrainOptions& o)
      : impl_(net.impl()),
        o_(o),
        channels_(static_cast<int64_t>(impl_.metadata.input_channels.size())) {
    patch_ = round_up(std::max<int64_t>(o.patch, impl_.metadata.size_multiple),
                      impl_.metadata.size_multiple);
    lr_signed_ = lr_signed_channel_indices(impl_.metadata);
    for (const auto& p : pairs) check_pair(p, channels_);
    for (const auto& p : pairs) prepared_.push_back(prepare(p, o.near_mm, o.clip_mm));
    split(pairs);
  }

  SdfTrainResult run(const SdfTrainProgressFn& progress);

 private:
  void split(const std::vector<SdfTrainingPair>& pairs) {
    const size_t n = pairs.size();
    if (std::any_of(pairs.begin(), pairs.end(), [](const auto& p) { return p.validation_only; })) {
      for (size_t i = 0; i < n; ++i)
        (pairs[i].validation_only ? validation_ : training_).push_back(i);
      if (training_.empty())
        throw UsageError("every pair is for validation only: nothing to train on");
      return;
    }
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(o_.seed ^ 0x9e3779b97f4a7c15ULL);
    std::shuffle(order.begin(), order.end(), rng);
    size_t n_val = 0;
    if (n >= 2 && o_.validation_fraction > 0)
      n_val = std::min(
          n - 1, std::max<size_t>(1, static_cast<size_t>(std::lround(o_.validation_fraction * n))));
    validation_.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n_val));
    training_.assign(order.begin() + static_cast<std::ptrdiff_t>(n_val), order.end());
    std::sort(validation_.begin(), validation_.end());
    std::sort(training_.begin(), training_.end());
  }

  PatchRef sample(std::mt19937_64& rng, const std::vector<size_t>& from, bool allow_flip) {
    std::uniform_int_distribution<size_t> pick_pair(0, from.size() - 1);
    std::uniform_real_distribution<double> u(0, 1);
    PatchRef ref;
    ref.pair = from[pick_pair(rng)];
    const PreparedPair& pp = prepared_[ref.pair];
    const Volume& v = pp.pair->features;
    const std::vector<int64_t>& list = u(rng) < o_.surface_fraction ? pp.near : pp.band;
    std::array<int64_t, 3> centre;
    if (!list.empty()) {
      std::uniform_int_distribution<size_t> pick(0, list.size() - 1);
      int64_t idx = list[pick(rng)];
      centre = {idx % v.dims[0], (idx / v.dims[0]) % v.dims[1], idx / (v.dims[0] * v.dims[1])};
    } else {
      for (int a = 0; a < 3; ++a)
        centre[a] = std::uniform_int_distribution<int64_t>(0, v.dims[a] - 1)(rng);
    }
    for (int a = 0; a < 3; ++a) ref.origin[a] = centre[a] - patch_ / 2;
    ref.flip = allow_flip && u(rng) < o_.flip_probability;
    return ref;
  }

  Batch assemble(const std::vector<PatchRef>& refs) {
    const int64_t b = static_cast<int64_t>(refs.size()), p = patch_;
    Batch batch;
    batch.x = torch::empty({b, channels_, p, p, p});
    batch.target = torch::empty({b, 4, p, p, p});
    batch.mask = torch::empty({b, 1, p, p, p});
    for (int64_t s = 0; s < b; ++s) {
      const PatchRef& ref = refs[static_cast<size_t>(s)];
      const SdfTrainingPair& pair = *prepared_[ref.pair].pair;
      extract(pair.features, ref.origin, p, batch.x[s].data_ptr<float>());
      extract(pair.sdf, ref.origin, p, batch.target[s].data_ptr<float>());
      fill_mask(pair.sdf, ref.origin, p, batch.mask[s].data_ptr<float>());
      if (ref.flip) {
        const int lr_axis = prepared_[ref.pair].lr_axis;
        batch.x[s].copy_(mirror_features(batch.x[s].unsqueeze(0), lr_axis, lr_signed_)[0]);
        batch.target[s].copy_(mirror_sdf(batch.target[s].unsqueeze(0), lr_axis)[0]);
        batch.mask[s].copy_(batch.mask[s].flip({tensor_dim_of_axis(lr_axis) - 1}));
      }
    }
    return batch;
  }

  void augment(Batch& batch, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(0, 1);
    torch::Tensor std_c =
        impl_.module.attr("input_std").toTensor().to(torch::kCPU).view({channels_, 1, 1, 1});
    for (int64_t s = 0; s < batch.x.size(0); ++s) {
      torch::Tensor x = batch.x[s];
      if (o_.intensity_scale > 0) {
        std::vector<float> f(static_cast<size_t>(channels_));
        for (auto& v : f) v = static_cast<float>(1.0 + o_.intensity_scale * (2 * u(rng) - 1));
        x.mul_(torch::tensor(f).view({channels_, 1, 1, 1}));
      }
      if (u(rng) < o_.lowres_probability) {
        torch::Tensor low = F::avg_pool3d(x.unsqueeze(0), F::AvgPool3dFuncOptions(2));
        x.copy_(F::interpolate(low, F::InterpolateFuncOptions()
                                        .scale_factor(std::vector<double>{2, 2, 2})
                                        .mode(torch::kTrilinear)
                                        .align_corners(false))
                    .squeeze(0));
      }
      if (o_.noise > 0) x.add_(torch::randn_like(x) * (o_.noise * std_c) * batch.mask[s]);
    }
  }

  LossTerms loss(const torch::Tensor& pred, const Batch& batch) const {
    const torch::Tensor& t = batch.target;
    torch::Tensor near = (t.abs() < o_.near_mm).to(torch::kFloat32) * batch.mask;
    torch::Tensor w = batch.mask + (o_.near_weight - 1.0) * near;
    torch::Tensor err = (pred - t.clamp(-o_.clip_mm, o_.clip_mm)).abs();
    LossTerms terms;
    torch::Tensor weighted = (w * err).sum();
    torch::Tensor wsum = w.sum();
    terms.loss = weighted / wsum.clamp_min(1.0);
    terms.weighted_sum = weighted.item<double>();
    terms.weight_sum = wsum.item<double>();
    terms.near_abs_sum = ((pred - t).abs() * near).sum().item<double>();
    terms.near_count = near.sum().item<double>();
    return terms;
  }

  // Returns {validation loss, MAE within near_mm}.
  std::pair<double, double> validate() {
    torch::NoGradGuard no_grad;
    impl_.module.eval();
    double ws = 0, w = 0, ns = 0, nc = 0;
    for (size_t i = 0; i < validation_patches_.size(); i += static_cast<size_t>(o_.batch)) {
      std::vector<PatchRef> refs(
          validation_patches_.begin() + static_cast<std::ptrdiff_t>(i),
          validation_patches_.begin() +
              static_cast<std::ptrdiff_t>(
                  std::min(validation_patches_.size(), i + static_cast<size_t>(o_.batch))));
      Batch batch = assemble(refs);
      torch::Tensor pred =
          impl_.module.forward({batch.x.to(impl_.device)}).toTensor().to(torch::kCPU);
      LossTerms terms = loss(pred, batch);
      ws += terms.weighted_sum;
      w += terms.weight_sum;
      ns += terms.near_abs_sum;
      nc += terms.near_count;
    }
    impl_.module.train(true);
    return {w > 0 ? ws / w : 0.0, nc > 0 ? ns / nc : 0.0};
  }

  void set_normalisation() {
    std::vector<double> mean(static_cast<size_t>(channels_), 0),
        var(static_cast<size_t>(channels_), 0);
    double count = 0;
    for (size_t idx : training_) {
      const PreparedPair& pp = prepared_[idx];
      const Volume& f = pp.pair->features;
      const int64_t n = f.voxels_per_volume();
      const std::vector<int64_t>& list = pp.band.empty() ? pp.near : pp.band;
      const size_t step = std::max<size_t>(1, list.size() / 200000);
      for (size_t i = 0; i < list.size(); i += step) {
        count += 1;
        for (int64_t c = 0; c < channels_; ++c) {
          const double v = f.data[static_cast<size_t>(c * n + list[i])];
          const double delta = v - mean[static_cast<size_t>(c)];
          mean[static_cast<size_t>(c)] += delta / count;
          var[static_cast<size_t>(c)] += delta * (v - mean[static_cast<size_t>(c)]);
        }
      }
    }
    if (count < 2) return;  // nothing to learn from; keep the model's values
    std::vector<float> m(mean.begin(), mean.end()), s(static_cast<size_t>(channels_));
    for (size_t c = 0; c < s.size(); ++c) {
      const double sd = std::sqrt(var[c] / (count - 1));
      s[c] = static_cast<float>(sd > 1e-6 * (1.0 + std::fabs(mean[c])) ? sd : 1.0);
    }
    torch::NoGradGuard no_grad;
    impl_.module.attr("input_mean")
        .toTensor()
        .copy_(torch::tensor(m).view({1, channels_, 1, 1, 1}));
    impl_.module.attr("input_std").toTensor().copy_(torch::tensor(s).view({1, channels_, 1, 1, 1}));
  }

  nlohmann::ordered_json record(int64_t step, double running, double val_loss,
                                double val_mae) const {
    nlohmann::ordered_json doc = nlohmann::ordered_json::parse(impl_.metadata.json);
    doc["trained"] = true;
    std::vector<std::string> tn, vn;
    for (size_t i : training_) tn.push_back(prepared_[i].pair->name);
    for (size_t i : validation_) vn.push_back(prepared_[i].pair->name);
    doc["training"] = {
        {"step", step},
        {"steps", o_.steps},
        {"batch", o_.batch},
        {"patch", patch_},
        {"learning_rate", o_.learning_rate},
        {"final_learning_rate_fraction", o_.final_learning_rate_fraction},
        {"loss", "L1 against the target clipped to +-clip_mm; weight near_weight within near_mm"},
        {"clip_mm", o_.clip_mm},
        {"near_mm", o_.near_mm},
        {"near_weight", o_.near_weight},
        {"surface_fraction", o_.surface_fraction},
        {"augmentation",
         {{"flip_probability", o_.flip_probability},
          {"intensity_scale", o_.intensity_scale},
          {"noise", o_.noise},
          {"lowres_probability", o_.lowres_probability}}},
        {"seed", o_.seed},
        {"training_loss", running},
        {"validation_loss", val_loss},
        {"validation_mae_near_mm", val_mae},
        {"training_pairs", tn},
        {"validation_pairs", vn},
    };
    if (best_step_ > 0) {
      doc["training"]["best_step"] = best_step_;
      doc["training"]["best_validation_mae_near_mm"] = best_mae_;
    }
    torch::Tensor m =
        impl_.module.attr("input_mean").toTensor().to(torch::kCPU).flatten().contiguous();
    torch::Tensor s =
        impl_.module.attr("input_std").toTensor().to(torch::kCPU).flatten().contiguous();
    doc["normalisation_values"] = {
        {"mean", std::vector<float>(m.data_ptr<float>(), m.data_ptr<float>() + channels_)},
        {"std", std::vector<float>(s.data_ptr<float>(), s.data_ptr<float>() + channels_)}};
    return doc;
  }

  SdfNet::Impl& impl_;
  const SdfTrainOptions& o_;
  int64_t channels_;
  int64_t patch_ = 64;
  std::vector<int64_t> lr_signed_;
  std::vector<PreparedPair> prepared_;
  std::vector<size_t> training_, validation_;
  std::vector<PatchRef> validation_patches_;
  int64_t best_step_ = 0;
  double best_mae_ = -1;
};

SdfTrainResult Trainer::run(const SdfTrainProgressFn& progress) {
  if (o_.steps < 1) throw UsageError("training needs at least one step");
  if (o_.batch < 1) throw UsageError("the batch needs at least one patch");
  if (prepared_.empty()) throw UsageError("no training pairs");
  at::set_num_threads(thread_count());
  torch::jit::Module& module = impl_.module;

  int64_t start_step = 0;
  if (o_.resume) {
    const auto doc = nlohmann::ordered_json::parse(impl_.metadata.json);
    const auto t = doc.find("training");
    if (t == doc.end() || !t->is_object() || !t->contains("step") ||
        !t->at("step").is_number_integer())
      throw InputError(impl_.path, "not a training checkpoint (its metadata has no training.step)");
    start_step = t->at("step").get<int64_t>();
    if (t->contains("best_step") && t->at("best_step").is_number_integer() &&
        t->contains("best_validation_mae_near_mm") &&
        t->at("best_validation_mae_near_mm").is_number()) {
      best_step_ = t->at("best_step").get<int64_t>();
      best_mae_ = t->at("best_validation_mae_near_mm").get<double>();
    }
  } else if (o_.set_normalisation) {
    set_normalisation();
  }

  std::vector<torch::Tensor> params;
  for (const auto& p : module.parameters()) {
    p.requires_grad_(true);
    params.push_back(p);
  }
  torch::optim::Adam optimizer(params, torch::optim::AdamOptions(o_.learning_rate));
  const std::string optim_path = o_.checkpoint_path.empty() ? "" : o_.checkpoint_path + ".optim";
  if (o_.resume) {
    std::ifstream probe(optim_path, std::ios::binary);
    if (optim_path.empty() || !probe)
      throw InputError(optim_path.empty() ? impl_.path : optim_path,
                       "optimiser state of the checkpoint is missing; cannot resume");
    try {
      torch::load(optimizer, optim_path);
    } catch (const c10::Error& e) {
      throw InputError(optim_path,
                       std::string("unreadable optimiser state: ") + e.what_without_backtrace());
    }
  }

  // Fixed validation patches (held-out pairs, else training pairs), drawn once.
  {
    std::mt19937_64 vrng(o_.seed ^ 0x5eedULL);
    const std::vector<size_t>& from = validation_.empty() ? training_ : validation_;
    for (int i = 0; i < o_.validation_patches; ++i)
      validation_patches_.push_back(sample(vrng, from, false));
  }

  std::mt19937_64 rng(o_.seed * 1000003ULL + static_cast<uint64_t>(start_step));
  torch::manual_seed(o_.seed * 1000003ULL + static_cast<uint64_t>(start_step));
  module.train(true);

  SdfTrainResult result;
  result.first_step = start_step;
  for (size_t i : training_) result.training_pairs.push_back(prepared_[i].pair->name);
  for (size_t i : validation_) result.validation_pairs.push_back(prepared_[i].pair->name);
  double running = 0, first_sum = 0;
  std::array<double, 5> last_losses{};
  int first_n = 0;
  double val_loss = -1, val_mae = -1;
  const auto t0 = std::chrono::steady_clock::now();

  auto save_model = [&](const std::string& path, int64_t step) {
    impl_.set_metadata(record(step, running, val_loss, val_mae));
    AtomicFile file(path);
    torch::jit::ExtraFilesMap extra{{kSdfNetMetadataFile, impl_.metadata.json}};
    module.save(file.temp_path(), extra);
    file.commit();
  };
  auto save_checkpoint = [&](int64_t step) {
    if (o_.checkpoint_path.empty()) return false;
    save_model(o_.checkpoint_path, step);
    {
      AtomicFile file(optim_path);
      torch::save(optimizer, file.temp_path());
      file.commit();
    }
    return true;
  };

  const int64_t last_step = o_.stop_at > 0 ? std::min(o_.stop_at, o_.steps) : o_.steps;
  for (int64_t step = start_step + 1; step <= last_step; ++step) {
    const double progress_frac = static_cast<double>(step - 1) / static_cast<double>(o_.steps);
    const double f = o_.final_learning_rate_fraction;
    const double lr = o_.learning_rate * (f + (1 - f) * 0.5 * (1 + std::cos(M_PI * progress_frac)));
    static_cast<torch::optim::AdamOptions&>(optimizer.param_groups()[0].options()).lr(lr);

    std::vector<PatchRef> refs;
    for (int b = 0; b < o_.batch; ++b) refs.push_back(sample(rng, training_, true));
    Batch batch = assemble(refs);
    augment(batch, rng);
    optimizer.zero_grad();
    torch::Tensor pred = module.forward({batch.x.to(impl_.device)}).toTensor();
    Batch on_device{batch.x, batch.target.to(impl_.device), batch.mask.to(impl_.device)};
    LossTerms terms = loss(pred, on_device);
    terms.loss.backward();
    optimizer.step();

    const double l = terms.loss.item<double>();
    if (!std::isfinite(l))
      throw std::runtime_error("training diverged (non-finite loss at step " +
                               std::to_string(step) + ")");
    if (first_n < 5) {
      first_sum += l;
      ++first_n;
    }
    const int64_t done = step - start_step;
    running =
        done == 1 ? l : running + (l - running) / static_cast<double>(std::min<int64_t>(done, 20));
    last_losses[static_cast<size_t>((done - 1) % 5)] = l;

    SdfTrainStatus status;
    status.step = step;
    status.steps = o_.steps;
    if (o_.validation_every > 0 && (step % o_.validation_every == 0 || step == last_step) &&
        !validation_patches_.empty()) {
      std::tie(val_loss, val_mae) = validate();
      status.validated = true;
      if (best_step_ == 0 || val_mae < best_mae_) {
        best_step_ = step;
        best_mae_ = val_mae;
        if (!o_.best_path.empty()) {
          save_model(o_.best_path, step);
          status.best_written = true;
        }
      }
    }
    if (o_.checkpoint_every > 0 && step % o_.checkpoint_every == 0 && step != last_step)
      status.checkpoint_written = save_checkpoint(step);
    if (step == last_step) status.checkpoint_written = save_checkpoint(step);
    status.loss = running;
    status.validation_loss = val_loss;
    status.validation_mae_near_mm = val_mae;
    status.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    status.seconds_per_step = status.elapsed_s / static_cast<double>(done);
    status.eta_s = status.seconds_per_step * static_cast<double>(last_step - step);
    if (progress) progress(status);
  }

  module.eval();
  result.last_step = std::max(start_step, last_step);
  result.first_loss = first_n ? first_sum / first_n : 0;
  const int64_t done_total = std::max<int64_t>(0, last_step - start_step);
  const int64_t n_last = std::min<int64_t>(5, done_total);
  result.final_loss =
      n_last ? std::accumulate(last_losses.begin(), last_losses.begin() + n_last, 0.0) / n_last
             : running;
  result.validation_loss = val_loss;
  result.validation_mae_near_mm = val_mae;
  result.best_step = best_step_;
  result.best_validation_mae_near_mm = best_mae_;
  impl_.set_metadata(record(result.last_step, running, val_loss, val_mae));
  return result;
}

}  // namespace

SdfTrainResult train_sdfnet(SdfNet& net, const std::vector<SdfTrainingPair>& pairs,
                            const SdfTrainOptions& options, const SdfTrainProgressFn& progress) {
  Trainer trainer(net, pairs, options);
  return trainer.run(progress);
}

std::vector<double> sdf_mae_near_surface(const Volume& predicted, const Volume& truth,
                                         double near_mm) {
  if (predicted.dims != truth.dims || predicted.nvols != truth.nvols)
    throw InputError("", "predicted and true SDF volumes differ in size");
  const int64_t n = truth.voxels_per_volume();
  std::vector<double> mae(static_cast<size_t>(truth.nvols), 0.0);
  for (int64_t t = 0; t < truth.nvols; ++t) {
    double sum = 0;
    int64_t count = 0;
    for (int64_t v = 0; v < n; ++v) {
      const size_t i = static_cast<size_t>(t * n + v);
      if (std::fabs(truth.data[i]) < near_mm) {
        sum += std::fabs(predicted.data[i] - truth.data[i]);
        ++count;
      }
    }
    mae[static_cast<size_t>(t)] = count ? sum / static_cast<double>(count) : 0.0;
  }
  return mae;
}

SdfNet average_sdfnet_weights(const std::vector<std::string>& paths) {
  if (paths.empty()) throw UsageError("no models to average");
  SdfNet first = SdfNet::load(paths[0], {}, Device::Cpu);
  torch::jit::Module& sum = first.impl().module;
  torch::NoGradGuard no_grad;
  const auto input_mean = sum.attr("input_mean").toTensor().clone();
  const auto input_std = sum.attr("input_std").toTensor().clone();
  // What is averaged: the parameters and the floating-point buffers (BatchNorm's running
  // statistics belong to the weights they were gathered with), not the input normalisation,
  // which must agree, nor integer counters.
  auto averaged = [](const torch::jit::Module& m) {
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (const auto& p : m.named_parameters(true)) tensors.emplace_back(p.name, p.value);
    for (const auto& b : m.named_buffers(true))
      if (b.value.is_floating_point() && b.name != "input_mean" && b.name != "input_std")
        tensors.emplace_back(b.name, b.value);
    return tensors;
  };
  const auto total = averaged(sum);
  for (size_t i = 1; i < paths.size(); ++i) {
    const SdfNet other = SdfNet::load(paths[i], {}, Device::Cpu);
    const torch::jit::Module& m = other.impl().module;
    if (!torch::equal(m.attr("input_mean").toTensor(), input_mean) ||
        !torch::equal(m.attr("input_std").toTensor(), input_std))
      throw InputError(paths[i], "input normalisation differs from " + paths[0] +
                                     "'s: weights learnt with other inputs do not average");
    const auto theirs = averaged(m);
    if (theirs.size() != total.size())
      throw InputError(paths[i], "has another number of weights than " + paths[0]);
    for (size_t k = 0; k < total.size(); ++k) {
      if (theirs[k].first != total[k].first ||
          !theirs[k].second.sizes().equals(total[k].second.sizes()))
        throw InputError(paths[i], "weights differ from " + paths[0] + "'s at " + total[k].first);
      total[k].second.add_(theirs[k].second);
    }
  }
  for (const auto& [name, tensor] : total) tensor.div_(double(paths.size()));
  nlohmann::ordered_json doc = nlohmann::ordered_json::parse(first.metadata().json);
  doc["weight_average"] = paths;
  first.impl().set_metadata(doc);
  return first;
}

}  // namespace ddcsr
