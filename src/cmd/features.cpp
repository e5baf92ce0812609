// ddcsr features: the network's input maps of one diffusion scan, written for inspection.
#include "ddcsr/features/features.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <memory>

#include "cli/command.h"
#include "cli/progress.h"
#include "ddcsr/error.h"
#include "ddcsr/io/atomic_file.h"
#include "ddcsr/io/gradients.h"
#include "ddcsr/io/nifti.h"
#include "ddcsr/qc/qc.h"

namespace fs = std::filesystem;

namespace {

struct FeaturesCliOptions {
  std::string dwi, output, bval, bvec, mask;
  bool native = false;
  ddcsr::FeatureOptions features;
};

void write_outputs(const ddcsr::FeatureSet& f, const std::string& dir) {
  ddcsr::write_volume(f.channels, dir + "/features.nii.gz");
  ddcsr::write_volume(f.mask, dir + "/mask.nii.gz");
  ddcsr::write_file_atomic(dir + "/features.json", ddcsr::feature_sidecar_json(f));

  // FA (raw values) in three planes through the middle of the mask; the sagittal one cuts the
  // midline and the corpus callosum.
  const auto& names = f.channel_names;
  const int64_t fa_index = std::find(names.begin(), names.end(), "fa") - names.begin();
  ddcsr::Volume fa = f.channels.frame(fa_index);
  const auto& norm = f.normalisation[fa_index];
  for (size_t v = 0; v < fa.data.size(); ++v)
    fa.data[v] =
        f.mask.data[v] != 0.f ? static_cast<float>(fa.data[v] * norm.scale + norm.center) : 0.f;
  ddcsr::QcOptions qc;
  qc.pixel_mm = 1.0;
  qc.slice_fractions = {0.5};
  qc.region = &f.mask;
  ddcsr::RgbImage picture;
  for (auto view : {ddcsr::QcView::Axial, ddcsr::QcView::Coronal, ddcsr::QcView::Sagittal}) {
    const ddcsr::RgbImage panel = ddcsr::render_qc({&fa}, {}, view, qc);
    const int gap = picture.width ? 4 : 0;
    ddcsr::RgbImage joined;
    joined.width = picture.width + gap + panel.width;
    joined.height = std::max(picture.height, panel.height);
    joined.pixels.assign(static_cast<size_t>(joined.width) * joined.height * 3, 0);
    auto blit = [&](const ddcsr::RgbImage& src, int x0) {
      for (int y = 0; y < src.height; ++y)
        std::copy_n(&src.pixels[static_cast<size_t>(y) * src.width * 3],
                    static_cast<size_t>(src.width) * 3,
                    &joined.pixels[(static_cast<size_t>(y) * joined.width + x0) * 3]);
    };
    blit(picture, 0);
    blit(panel, picture.width + gap);
    picture = std::move(joined);
  }
  ddcsr::write_png(picture, dir + "/qc_fa.png");

  if (!f.native.names.empty()) {
    const std::string native_dir = dir + "/native";
    std::error_code ec;
    fs::create_directories(native_dir, ec);
    if (ec) throw ddcsr::InputError(native_dir, "cannot create folder: " + ec.message());
    for (size_t m = 0; m < f.native.names.size(); ++m)
      ddcsr::write_volume(f.native.maps.frame(static_cast<int64_t>(m)),
                          native_dir + "/" + f.native.names[m] + ".nii.gz");
    ddcsr::write_volume(f.native_mask, native_dir + "/mask.nii.gz");
  }
}

ddcsr::cli::Command make_features_command() {
  ddcsr::cli::Command c;
  c.name = "features";
  c.synopsis = "Diffusion features on the network grid (DTI maps, normalised signals, brain mask)";
  c.description =
      "Computes the SDF network's input from a diffusion series, exactly as training and `recon` "
      "do:\n"
      "gradient table analysis (b0 detection, shells, b-values rescaled for non-unit b-vectors),\n"
      "a brain mask (--mask, or automatic), a weighted least-squares tensor fit, spherical-mean\n"
      "signals at b=1000 and b=2500, resampling onto an isotropic RAS-aligned grid cropped around\n"
      "the mask (dimensions a multiple of 16), and robust per-channel normalisation within the "
      "mask.\n"
      "Writes DIR/features.nii.gz (4D, one frame per channel), DIR/features.json (channels,\n"
      "normalisation, grid affine, protocol), DIR/mask.nii.gz and DIR/qc_fa.png (FA slices);\n"
      "with --native also DIR/native/*.nii.gz (every map on the scan's own grid).\n"
      "Channels: b0 fa md ad rd l1 l2 l3 sm_b1000 sm_b2500 midline mask.";
  c.references = {
      "Basser, Mattiello, LeBihan (1994). MR diffusion tensor spectroscopy and imaging. Biophys J "
      "66:259-267.",
      "Veraart, Sijbers, Sunaert, Leemans, Jeurissen (2013). Weighted linear least squares "
      "estimation of "
      "diffusion MRI parameters: strengths, limitations, and pitfalls. NeuroImage 81:335-346."};
  c.order = 20;
  c.setup = [](CLI::App& app) {
    auto o = std::make_shared<FeaturesCliOptions>();
    auto& f = o->features;
    app.add_option("dwi", o->dwi, "4D diffusion series (NIfTI), with .bval/.bvec beside it")
        ->required();
    app.add_option("-o,--output", o->output, "Output folder (created if missing)")->required();
    app.add_option("--bval", o->bval, "b-value file (default: beside the image)");
    app.add_option("--bvec", o->bvec, "b-vector file, FSL convention (default: beside the image)");
    app.add_option("--mask", o->mask,
                   "Brain mask on the DWI's grid (default: computed automatically)");
    app.add_option("--spacing", f.grid.spacing_mm, "Network grid voxel size in mm")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--margin", f.grid.margin_mm, "Grid margin around the mask in mm")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    app.add_option("--b0-threshold", f.protocol.b0_threshold, "Volumes with b below this are b0")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--shell-tolerance", f.protocol.shell_tolerance,
                   "b-values closer than this share a shell")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--dti-max-b", f.protocol.dti_max_b,
                   "Highest shell b-value used by the tensor fit")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--irls-iterations", f.dti.irls_iterations,
                   "Reweighting passes of the tensor fit")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    app.add_flag("--native", o->native, "Also write every map on the scan's own grid");
    app.add_option("--hemi", f.hemispheres,
                   "auto, both, lh or rh, as recon's: on a scan of one hemisphere the midline "
                   "channel is measured from its medial face (default: from the fitted "
                   "midsagittal plane whatever the scan holds)")
        ->check(CLI::IsMember({"auto", "both", "lh", "rh"}));
    return [o]() -> int {
      if (o->bval.empty() != o->bvec.empty())
        throw ddcsr::UsageError("give both --bval and --bvec, or neither");
      std::error_code ec;
      fs::create_directories(o->output, ec);
      if (ec || !fs::is_directory(o->output))
        throw ddcsr::InputError(o->output,
                                "cannot create output folder" + (ec ? ": " + ec.message() : ""));
      std::string bval = o->bval, bvec = o->bvec;
      if (bval.empty()) std::tie(bval, bvec) = ddcsr::find_gradient_files(o->dwi);
      const ddcsr::GradientTable table = ddcsr::read_fsl_gradients(bval, bvec);
      spdlog::info("reading {}", o->dwi);
      const ddcsr::Volume dwi = ddcsr::read_volume(o->dwi, true);
      std::unique_ptr<ddcsr::Volume> mask;
      if (!o->mask.empty()) mask = std::make_unique<ddcsr::Volume>(ddcsr::read_volume(o->mask));
      auto opts = o->features;
      opts.image_path = o->dwi;
      opts.mask_path = o->mask;
      opts.keep_native = o->native;
      ddcsr::FeatureSet result;
      {
        ddcsr::cli::ProgressBar bar("Features");
        result =
            ddcsr::compute_features(dwi, table, mask.get(), opts, [&](double x) { bar.update(x); });
        bar.done();
      }
      const auto& p = result.protocol;
      std::string shells;
      for (const auto& s : p.shells)
        shells += (shells.empty() ? "" : ", ") + std::to_string(std::lround(s.bval)) + " (" +
                  std::to_string(s.volumes.size()) + ")";
      spdlog::info("{} b0 volumes; shells (volumes): {}; tensor fit on {} directions{}",
                   p.b0_volumes.size(), shells, p.dti_directions,
                   p.rescaled ? "; b-values rescaled by |bvec|^2" : "");
      for (const auto& n : result.nominal) spdlog::info("signal at b={}: {}", n.bval, n.method);
      spdlog::info("brain mask: {} ({:.0f} ml)", result.mask_given ? o->mask : "automatic",
                   result.mask_volume_ml);
      spdlog::info("{} hemisphere(s) present: {}", result.presence.count, result.presence.reason);
      spdlog::info("network grid {}x{}x{} at {} mm, {} channels", result.channels.dims[0],
                   result.channels.dims[1], result.channels.dims[2], opts.grid.spacing_mm,
                   result.channels.nvols);
      write_outputs(result, o->output);
      spdlog::info("wrote {}/features.nii.gz, features.json, mask.nii.gz, qc_fa.png{}", o->output,
                   o->native ? ", native/" : "");
      return 0;
    };
  };
  return c;
}

}  // namespace

DDCSR_COMMAND(make_features_command());
