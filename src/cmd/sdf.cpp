// ddcsr sdf: run SDFNet on a feature volume and write the four signed distance maps.
#include <spdlog/spdlog.h>

#include <chrono>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "cli/progress.h"
#include "ddcsr/error.h"
#include "ddcsr/features/features.h"
#include "ddcsr/io/gradients.h"
#include "ddcsr/io/nifti.h"
#include "ddcsr/sdfnet/sdfnet.h"

namespace {

struct SdfOptions {
  std::string model, features, dwi, mask, output, device = "auto", mode = "auto";
  int patch = 96, overlap = 32;
  double memory_mb = 3072;
  bool info = false, no_mirror = false;
};

ddcsr::cli::Command make_sdf_command() {
  ddcsr::cli::Command c;
  c.name = "sdf";
  c.synopsis = "Predict white and pial signed distance maps from a feature volume with SDFNet";
  c.description =
      "Runs an SDFNet model (TorchScript, made by models/sdfnet.py and trained by `ddcsr train`) "
      "on a\n"
      "4D feature volume whose frames are the model's input channels in order, on the model's "
      "grid\n"
      "spacing (--features), or on the features of a diffusion scan computed as `ddcsr recon` "
      "does\n"
      "(--dwi). Writes one 4D NIfTI with frames lh.white, lh.pial, rh.white, rh.pial: signed "
      "distance\n"
      "in mm, negative inside each surface, on the feature grid.\n"
      "Inference runs on the whole volume when its estimated memory fits --memory-mb, else on\n"
      "overlapping patches blended smoothly (--mode forces either). Deterministic on CPU.\n"
      "The prediction is averaged with the one from the left-right mirrored features (mirrored\n"
      "back, hemispheres exchanged), which lowers the error for twice the time (--no-mirror: one\n"
      "pass).\n"
      "--info prints the model's metadata (JSON) and exits.";
  c.references = {
      "Oktay et al. (2018). Attention U-Net: learning where to look for the pancreas. MIDL.",
      "Woo et al. (2018). CBAM: convolutional block attention module. ECCV."};
  c.order = 35;
  c.setup = [](CLI::App& app) {
    auto o = std::make_shared<SdfOptions>();
    app.add_option("--model", o->model, "SDFNet model file (.pt)")->required();
    app.add_option("--features", o->features, "4D feature volume (NIfTI), frames = model channels");
    app.add_option("--dwi", o->dwi,
                   "Diffusion scan (.bval/.bvec beside it): features computed as in recon");
    app.add_option("--mask", o->mask, "Brain mask for --dwi (default: automatic)");
    app.add_option("-o,--output", o->output, "Output 4D SDF volume (.nii.gz)");
    app.add_option("--device", o->device, "auto, cpu or cuda")
        ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    app.add_option("--mode", o->mode, "auto, whole or sliding")
        ->check(CLI::IsMember({"auto", "whole", "sliding"}));
    app.add_option("--patch", o->patch, "Sliding-window patch edge (voxels)")
        ->check(CLI::Range(16, 512));
    app.add_option("--overlap", o->overlap, "Sliding-window overlap (voxels)")
        ->check(CLI::Range(0, 256));
    app.add_option("--memory-mb", o->memory_mb, "Memory budget of whole-volume inference (MB)")
        ->check(CLI::PositiveNumber);
    app.add_flag("--no-mirror", o->no_mirror,
                 "One pass instead of averaging it with the left-right mirrored pass");
    app.add_flag("--info", o->info, "Print the model's metadata and exit");
    return [o]() -> int {
      ddcsr::SdfNet net = ddcsr::SdfNet::load(o->model, {}, ddcsr::parse_device(o->device));
      if (o->info) {
        std::cout << net.metadata().json << "\n";
        return 0;
      }
      if (o->features.empty() == o->dwi.empty() || o->output.empty())
        throw ddcsr::UsageError("give --output and one of --features or --dwi (or --info)");
      ddcsr::Volume features;
      std::string source = o->features;
      if (!o->dwi.empty()) {
        source = o->dwi;
        ddcsr::check_sdfnet_channels(net.metadata(), ddcsr::feature_channel_names(), o->model);
        const auto [bval, bvec] = ddcsr::find_gradient_files(o->dwi);
        const ddcsr::GradientTable table = ddcsr::read_fsl_gradients(bval, bvec);
        const ddcsr::Volume dwi = ddcsr::read_volume(o->dwi, true);
        ddcsr::check_gradients(table, dwi.nvols, o->dwi);
        std::unique_ptr<ddcsr::Volume> mask;
        if (!o->mask.empty()) mask = std::make_unique<ddcsr::Volume>(ddcsr::read_volume(o->mask));
        ddcsr::FeatureOptions fo;
        fo.grid.spacing_mm = net.metadata().grid_spacing_mm;
        fo.grid.multiple = net.metadata().size_multiple;
        fo.image_path = o->dwi;
        fo.mask_path = o->mask;
        ddcsr::cli::ProgressBar bar("Features");
        features = ddcsr::compute_features(dwi, table, mask.get(), fo, [&](double f) {
                     bar.update(f);
                   }).channels;
        bar.done();
      } else {
        features = ddcsr::read_volume(o->features);
      }
      ddcsr::SdfInferenceOptions opts;
      opts.mode = o->mode == "whole"     ? ddcsr::SdfInferenceOptions::Mode::Whole
                  : o->mode == "sliding" ? ddcsr::SdfInferenceOptions::Mode::Sliding
                                         : ddcsr::SdfInferenceOptions::Mode::Auto;
      opts.patch = o->patch;
      opts.overlap = o->overlap;
      opts.memory_budget_mb = o->memory_mb;
      opts.mirror_average = !o->no_mirror;
      const bool sliding = net.uses_sliding_window(features.dims, opts);
      spdlog::info("{}: {}x{}x{} voxels, {} inference on {} (whole-volume estimate {:.0f} MB)",
                   source, features.dims[0], features.dims[1], features.dims[2],
                   sliding ? "sliding-window" : "whole-volume", net.device_name(),
                   net.whole_volume_memory_mb(features.dims));
      const auto t0 = std::chrono::steady_clock::now();
      ddcsr::Volume sdf;
      {
        ddcsr::cli::ProgressBar bar("SDFNet");
        sdf = net.predict(
            features, opts, [&](double f) { bar.update(f); }, source);
        bar.done();
      }
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ddcsr::write_volume(sdf, o->output);
      spdlog::info("wrote {} (inference {:.1f} s)", o->output, seconds);
      return 0;
    };
  };
  return c;
}

}  // namespace

DDCSR_COMMAND(make_sdf_command());
