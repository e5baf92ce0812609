// ddcsr train: train SDFNet's parameters in C++ from feature/SDF pairs.
#include "ddcsr/sdfnet/train.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "cli/command.h"
#include "cli/progress.h"
#include "ddcsr/error.h"
#include "ddcsr/io/nifti.h"
#include "ddcsr/sdfnet/sdfnet.h"
#include "ddcsr/sdfnet/training_data.h"

namespace {

struct TrainCliOptions {
  std::string model, output, checkpoint, device = "auto";
  std::string normalisation = "auto";            // auto, data or keep
  std::vector<std::string> pairs;                // FEATURES SDF, repeated
  std::vector<std::string> sims;                 // `ddcsr simulate` folders
  std::vector<std::string> scans;                // DWI,SURF_DIR[,AFFINE[,MASK]]
  std::vector<std::string> val_sims, val_scans;  // the same, for validation only
  std::vector<std::string> average;              // models whose weights are averaged instead
  std::string save_pairs;
  bool resample_targets = false;
  std::string sim_mask = "truth";
  double grid_mm = 0;
  ddcsr::SdfTrainOptions train;
  double log_every_s = 30;
};

std::string duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600)
    return std::to_string(s / 3600) + "h" + (s % 3600 / 60 < 10 ? "0" : "") +
           std::to_string(s % 3600 / 60) + "m";
  if (s >= 60)
    return std::to_string(s / 60) + "m" + (s % 60 < 10 ? "0" : "") + std::to_string(s % 60) + "s";
  return std::to_string(s) + "s";
}

ddcsr::cli::Command make_train_command() {
  ddcsr::cli::Command c;
  c.name = "train";
  c.synopsis = "Train SDFNet from feature volumes and ground-truth signed distance maps";
  c.description =
      "Trains the parameters of an SDFNet TorchScript model (from models/sdfnet.py export, or a\n"
      "previous `ddcsr train`) with Adam in C++, and writes the trained model with its metadata "
      "and\n"
      "a record of the run.\n"
      "Data (all repeatable, freely mixed):\n"
      "  --sim DIR: a folder written by `ddcsr simulate` (dwi.nii.gz, .bval/.bvec, mask.nii.gz,\n"
      "    surf/ and sdf/). Targets are exact SDFs of surf/{lh,rh}.{white,pial} on the feature "
      "grid\n"
      "    (--resample-targets: trilinear resampling of sdf/*.nii.gz instead, faster).\n"
      "  --scan DWI,SURF_DIR[,AFFINE[,MASK]]: a diffusion scan (.bval/.bvec beside it) and a\n"
      "    FreeSurfer surf/ folder in the scan's world space, or brought there by AFFINE (a text\n"
      "    4x4 scanner-RAS-to-scanner-RAS matrix); optional brain MASK. Targets: exact SDFs.\n"
      "  --pair FEATURES SDF: precomputed 4D feature volume (frames = the model's channels) and\n"
      "    4D SDF volume (lh.white, lh.pial, rh.white, rh.pial; mm, negative inside), same grid.\n"
      "Features of --sim and --scan come from the same code as `ddcsr recon` (compute_features);\n"
      "--save-pairs DIR writes them with their targets for reuse with --pair.\n"
      "Patches are drawn mostly around the surfaces; augmentation mirrors left-right (swapping "
      "the\n"
      "lh/rh outputs), scales intensities, adds noise and blurs. Whole pairs are held out for\n"
      "validation: those of --val-sim and --val-scan, else --val-fraction of the others. The\n"
      "loss is L1 against the target clipped to +-clip mm, weighted toward the surfaces.\n"
      "Checkpoints (model + optimiser state) are written every --checkpoint-every steps;\n"
      "--resume continues from the checkpoint. --best FILE keeps the model of the lowest\n"
      "validation error: validated on subjects from outside the training cohort (another\n"
      "simulator version, real scans with surfaces), it keeps the step that does best there,\n"
      "which a subject of the cohort itself cannot tell (models/README.md).\n"
      "Input normalisation (per-channel mean and standard deviation inside the model): an\n"
      "untrained export gets it from the training features; a trained model (fine-tuning, e.g.\n"
      "models/sdfnet.pt on your own --scan pairs) keeps its own, which its weights were learnt\n"
      "with. --normalisation data|keep overrides either.\n"
      "--average A.pt B.pt ... writes the mean of the models' weights to --output (checkpoints of\n"
      "one run with one input normalisation), a model steadier on unseen data than its rounds.";
  c.references = {
      "Oktay et al. (2018). Attention U-Net: learning where to look for the pancreas. MIDL.",
      "Kingma & Ba (2015). Adam: a method for stochastic optimization. ICLR.",
      "Izmailov et al. (2018). Averaging weights leads to wider optima and better generalization. "
      "UAI."};
  c.order = 80;
  c.setup = [](CLI::App& app) {
    auto o = std::make_shared<TrainCliOptions>();
    auto& t = o->train;
    app.add_option("--model", o->model, "Starting model (.pt); not needed with --resume");
    app.add_option("-o,--output", o->output, "Trained model to write (.pt)")->required();
    app.add_option("--pair", o->pairs, "FEATURES.nii.gz SDF.nii.gz (repeatable)")
        ->expected(2)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    app.add_option("--sim", o->sims, "Folder written by `ddcsr simulate` (repeatable)");
    app.add_option("--scan", o->scans, "DWI,SURF_DIR[,AFFINE[,MASK]] (repeatable)");
    app.add_option("--val-sim", o->val_sims, "Like --sim, for validation only (repeatable)");
    app.add_option("--val-scan", o->val_scans, "Like --scan, for validation only (repeatable)");
    app.add_option("--best", t.best_path, "Write the model of the lowest validation MAE here");
    app.add_flag("--resample-targets", o->resample_targets,
                 "Resample sdf/*.nii.gz of --sim folders");
    app.add_option(
           "--sim-mask", o->sim_mask,
           "Brain mask of --sim folders: truth (their mask.nii.gz) or computed (recon's own, "
           "as on a real scan)")
        ->check(CLI::IsMember({"truth", "computed"}));
    app.add_option("--average", o->average,
                   "Write the mean of these models' weights (checkpoints of one run, repeatable) "
                   "to --output instead of training")
        ->check(CLI::ExistingFile);
    app.add_option("--save-pairs", o->save_pairs, "Write the computed features and targets here");
    app.add_option("--grid-mm", o->grid_mm, "Feature grid spacing (default: the model's)")
        ->check(CLI::PositiveNumber);
    app.add_option("--checkpoint", o->checkpoint,
                   "Checkpoint file (default: OUTPUT with .ckpt.pt)");
    app.add_flag("--resume", t.resume, "Continue from the checkpoint's step and optimiser state");
    app.add_option("--stop-at", t.stop_at,
                   "Stop after this step; the schedule still spans --steps (then --resume)")
        ->check(CLI::PositiveNumber);
    app.add_option("--steps", t.steps, "Total optimisation steps")->check(CLI::PositiveNumber);
    app.add_option("--batch", t.batch, "Patches per step")->check(CLI::Range(1, 64));
    app.add_option("--patch", t.patch, "Patch edge (voxels)")->check(CLI::Range(16, 256));
    app.add_option("--lr", t.learning_rate, "Initial learning rate (cosine decay)")
        ->check(CLI::PositiveNumber);
    app.add_option("--clip-mm", t.clip_mm, "Targets clipped to +-this in the loss (mm)")
        ->check(CLI::PositiveNumber);
    app.add_option("--near-mm", t.near_mm, "Band around the surfaces weighted more (mm)")
        ->check(CLI::PositiveNumber);
    app.add_option("--near-weight", t.near_weight, "Loss weight inside the band")
        ->check(CLI::Range(1.0, 100.0));
    app.add_option("--surface-fraction", t.surface_fraction,
                   "Fraction of patches centred near a surface")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--aug-flip", t.flip_probability, "Probability of a left-right mirror")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--aug-scale", t.intensity_scale, "Per-channel intensity scale range")
        ->check(CLI::Range(0.0, 0.9));
    app.add_option("--aug-noise", t.noise, "Noise, in channel standard deviations")
        ->check(CLI::Range(0.0, 10.0));
    app.add_option("--aug-lowres", t.lowres_probability, "Probability of a 2x blur")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--val-fraction", t.validation_fraction, "Fraction of pairs held out")
        ->check(CLI::Range(0.0, 0.9));
    app.add_option("--val-every", t.validation_every, "Validate every N steps (0: never)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--val-patches", t.validation_patches, "Fixed validation patches")
        ->check(CLI::Range(1, 4096));
    app.add_option("--checkpoint-every", t.checkpoint_every,
                   "Checkpoint every N steps (0: only at the end)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--seed", t.seed, "Random seed");
    app.add_option("--device", o->device, "auto, cpu or cuda")
        ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    app.add_option("--normalisation", o->normalisation,
                   "auto (keep a trained model's, else from the data), data or keep")
        ->check(CLI::IsMember({"auto", "data", "keep"}));
    app.add_option("--log-every", o->log_every_s, "Seconds between progress lines")
        ->check(CLI::PositiveNumber);
    return [o]() -> int {
      auto& t = o->train;
      if (!o->average.empty()) {
        if (!o->model.empty() || !o->pairs.empty() || !o->sims.empty() || !o->scans.empty())
          throw ddcsr::UsageError("--average trains nothing: give no --model or training data");
        ddcsr::average_sdfnet_weights(o->average).save(o->output);
        spdlog::info("{}: mean of the weights of {} models", o->output, o->average.size());
        return 0;
      }
      t.checkpoint_path =
          o->checkpoint.empty()
              ? std::filesystem::path(o->output).replace_extension(".ckpt.pt").string()
              : o->checkpoint;
      if (!t.resume && o->model.empty())
        throw ddcsr::UsageError("--model is required unless --resume");
      if (o->pairs.empty() && o->sims.empty() && o->scans.empty())
        throw ddcsr::UsageError("no training data: give --sim, --scan or --pair");
      struct ScanSpec {
        std::string dwi, surf, affine, mask;
        bool validation_only = false;
      };
      std::vector<ScanSpec> scans;
      std::vector<std::pair<std::string, bool>> sims;  // folder, validation only
      for (const auto& dir : o->sims) sims.emplace_back(dir, false);
      for (const auto& dir : o->val_sims) sims.emplace_back(dir, true);
      std::vector<std::pair<std::string, bool>> scan_specs;
      for (const auto& spec : o->scans) scan_specs.emplace_back(spec, false);
      for (const auto& spec : o->val_scans) scan_specs.emplace_back(spec, true);
      for (const auto& [spec, validation_only] : scan_specs) {
        std::vector<std::string> parts;
        std::string part;
        std::istringstream in(spec);
        while (std::getline(in, part, ',')) parts.push_back(part);
        if (parts.size() < 2 || parts.size() > 4 || parts[0].empty() || parts[1].empty())
          throw ddcsr::UsageError((validation_only ? "--val-scan " : "--scan ") + spec +
                                  ": expected DWI,SURF_DIR[,AFFINE[,MASK]]");
        parts.resize(4);
        scans.push_back({parts[0], parts[1], parts[2], parts[3], validation_only});
      }
      const std::string start = t.resume ? t.checkpoint_path : o->model;
      ddcsr::SdfNet net = ddcsr::SdfNet::load(start, {}, ddcsr::parse_device(o->device));
      spdlog::info("model {} ({} channels: {}), device {}", start,
                   net.metadata().input_channels.size(),
                   fmt::join(net.metadata().input_channels, ","), net.device_name());
      t.set_normalisation =
          o->normalisation == "data" || (o->normalisation == "auto" && !net.metadata().trained);
      if (!t.resume)
        spdlog::info("input normalisation: {}", t.set_normalisation
                                                    ? "from the training features"
                                                    : "kept from the starting model");

      std::vector<ddcsr::SdfTrainingPair> pairs;
      if (!sims.empty() || !scans.empty())
        ddcsr::check_sdfnet_channels(net.metadata(), ddcsr::feature_channel_names(), start);
      if (net.metadata().input_channels == ddcsr::feature_channel_names() &&
          net.metadata().lr_signed_channels != ddcsr::feature_lr_signed_channel_names())
        throw ddcsr::InputError(
            start, "model's left-right signed channels [" +
                       ddcsr::name_list(net.metadata().lr_signed_channels) + "] are not [" +
                       ddcsr::name_list(ddcsr::feature_lr_signed_channel_names()) +
                       "]: mirrored patches would teach it the wrong hemisphere");
      ddcsr::TrainingDataOptions data;
      data.exact_targets = !o->resample_targets;
      data.computed_sim_masks = o->sim_mask == "computed";
      data.features.grid.spacing_mm = o->grid_mm > 0 ? o->grid_mm : net.metadata().grid_spacing_mm;
      data.features.grid.multiple = net.metadata().size_multiple;
      auto keep = [&](ddcsr::SdfTrainingPair p, const std::string& stem) {
        if (!o->save_pairs.empty()) {
          std::filesystem::create_directories(o->save_pairs);
          const std::string base = (std::filesystem::path(o->save_pairs) / stem).string();
          ddcsr::write_volume(p.features, base + "_features.nii.gz");
          ddcsr::write_volume(p.sdf, base + "_sdf.nii.gz");
        }
        spdlog::info("{}: {}x{}x{} voxels", p.name, p.features.dims[0], p.features.dims[1],
                     p.features.dims[2]);
        pairs.push_back(std::move(p));
      };
      auto stem_of = [&](const std::string& path) {
        std::string s = std::filesystem::path(path).lexically_normal().string();
        while (!s.empty() && s.back() == '/') s.pop_back();
        for (auto& ch : s)
          if (ch == '/' || ch == ' ') ch = '_';
        return std::to_string(pairs.size()) + "_" + s.substr(s.size() > 60 ? s.size() - 60 : 0);
      };
      for (const auto& [dir, validation_only] : sims) {
        ddcsr::cli::ProgressBar bar("Preparing " + dir);
        ddcsr::SdfTrainingPair p =
            ddcsr::load_simulated_pair(dir, data, [&](double f) { bar.update(f); });
        p.validation_only = validation_only;
        keep(std::move(p), stem_of(dir));
      }
      for (const auto& s : scans) {
        ddcsr::cli::ProgressBar bar("Preparing " + s.dwi);
        ddcsr::SdfTrainingPair p = ddcsr::load_scan_pair(s.dwi, s.surf, s.affine, s.mask, data,
                                                         [&](double f) { bar.update(f); });
        p.validation_only = s.validation_only;
        keep(std::move(p), stem_of(s.dwi));
      }
      for (size_t i = 0; i + 1 < o->pairs.size(); i += 2) {
        ddcsr::SdfTrainingPair p;
        p.name = o->pairs[i];
        p.features = ddcsr::read_volume(o->pairs[i]);
        p.sdf = ddcsr::read_volume(o->pairs[i + 1], true);
        pairs.push_back(std::move(p));
      }
      const auto n_val = std::count_if(pairs.begin(), pairs.end(),
                                       [](const auto& p) { return p.validation_only; });
      spdlog::info("{} pairs ({} for validation only); {} steps of {} patches of {}^3 voxels",
                   pairs.size(), n_val, t.steps, t.batch, t.patch);

      auto last_log = std::chrono::steady_clock::now();
      const ddcsr::SdfTrainResult r =
          ddcsr::train_sdfnet(net, pairs, t, [&](const ddcsr::SdfTrainStatus& s) {
            const auto now = std::chrono::steady_clock::now();
            const bool due =
                std::chrono::duration<double>(now - last_log).count() >= o->log_every_s;
            if (!(due || s.validated || s.checkpoint_written || s.step == s.steps)) return;
            last_log = now;
            std::string val;
            if (s.validation_loss >= 0)
              val = fmt::format(" | val loss {:.3f} MAE<{}mm {:.3f} mm", s.validation_loss,
                                t.near_mm, s.validation_mae_near_mm);
            spdlog::info("step {}/{} | loss {:.3f}{} | {:.2f} s/step | ETA {}{}{}", s.step, s.steps,
                         s.loss, val, s.seconds_per_step, duration(s.eta_s),
                         s.checkpoint_written ? " | checkpoint written" : "",
                         s.best_written ? " | best so far written" : "");
          });
      net.save(o->output);
      spdlog::info(
          "wrote {}: steps {}-{}, loss {:.3f} -> {:.3f}, validation loss {:.3f}, MAE within {} mm "
          "{:.3f} mm",
          o->output, r.first_step, r.last_step, r.first_loss, r.final_loss, r.validation_loss,
          t.near_mm, r.validation_mae_near_mm);
      if (!t.best_path.empty() && r.best_step > 0)
        spdlog::info("best validation: step {}, MAE within {} mm {:.3f} mm, in {}", r.best_step,
                     t.near_mm, r.best_validation_mae_near_mm, t.best_path);
      return 0;
    };
  };
  return c;
}

}  // namespace

DDCSR_COMMAND(make_train_command());
