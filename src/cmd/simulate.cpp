// ddcsr simulate: diffusion MRI phantoms with ground-truth cortical surfaces.
#include <spdlog/spdlog.h>

#include <chrono>

#include "cli/command.h"
#include "cli/progress.h"
#include "ddcsr/error.h"
#include "ddcsr/simulate/phantom.h"

namespace {

struct SimulateCliOptions {
  ddcsr::sim::SimulationOptions sim;
  std::string output, shells = "1000:30,2000:60";
  bool force = false, no_variability = false;
  double white_matter_fa = ddcsr::sim::TissueModel{}.white.fa();
};

ddcsr::cli::Command make_simulate_command() {
  ddcsr::cli::Command c;
  c.name = "simulate";
  c.synopsis = "Simulate a diffusion MRI subject with ground-truth white and pial surfaces";
  c.description =
      "Writes one subject folder: dwi.nii.gz with dwi.bval/dwi.bvec (FSL convention),\n"
      "mask.nii.gz (intracranial), fractions.nii.gz (white matter, cortical grey, non-cortical\n"
      "grey, CSF, and the weight of non-dominant fibre populations),\n"
      "sdf/{lh,rh}.{white,pial}.nii.gz (signed distances in mm, negative inside),\n"
      "surf/{lh,rh}.{white,pial} (FreeSurfer, with the geometry footer of dwi.nii.gz) and\n"
      ".surf.gii (scanner RAS), and meta.json with every parameter and the seed.\n"
      "\n"
      "Geometry: procedural folded hemispheres (closed, genus 0, no self-intersections by\n"
      "construction; sulci up to 15 mm deep, thickness 1.5-4.5 mm (--max-thickness), pial\n"
      "banks that touch in ~40% of the sulcal banks at the default --mesh-level, a fissure,\n"
      "ventricles, deep grey nuclei, cerebellum and brainstem), or real surfaces from\n"
      "--geometry DIR (lh/rh white/pial, FreeSurfer or GIFTI, e.g. lh.white or\n"
      "white_left.gii.gz). Each seed adds a random smooth diffeomorphic warp, scaling and rigid\n"
      "motion. Signal: white matter tensors along smooth fibre fields with crossings, radial\n"
      "low-anisotropy cortex, free-water CSF, T2-weighted b0 contrast, Rician noise, optional\n"
      "bias field. The same seed and version give byte-identical files whatever the thread\n"
      "count.\n"
      "\n"
      "--anatomy whole-head adds what real heads have around and between the hemispheres:\n"
      "CSF of varying thickness, skull with marrow, muscle, fat, skin, eyes, corpus callosum,\n"
      "diencephalon, third ventricle and cerebellar folia (labels.nii.gz names the structure\n"
      "of each voxel); skull-stripped zeroes the signal outside a brain mask; random picks one\n"
      "per seed. --physics random draws every tissue constant, the noise (Rician or\n"
      "non-central chi, SNR 8-50), bias field, blur, ringing, voxel sizes (1.25-3 mm,\n"
      "anisotropic), storage order and field of view per seed (ranges in meta.json and the\n"
      "README). The truth surfaces and SDFs are the cerebral white and pial surfaces in\n"
      "every mode. legacy and fixed, the defaults, reproduce earlier phantoms.\n"
      "\n"
      "--hemispheres lh|rh keeps one hemisphere (scans of a single hemisphere): of the legacy\n"
      "anatomy an ex vivo-like specimen (the tissue inside its pial surface, no CSF, skull or\n"
      "hindbrain, in a medium without signal); of the whole head, the head cut at the mid-surface\n"
      "between the hemispheres. Same seed: the same hemisphere as in the two-hemisphere phantom,\n"
      "on the same grid. Truth surfaces and SDFs only for the hemisphere present.";
  c.order = 80;
  c.setup = [](CLI::App& app) {
    auto o = std::make_shared<SimulateCliOptions>();
    auto& s = o->sim;
    app.add_option("output", o->output, "Subject folder to create")->required();
    app.add_option("--seed", s.geometry.seed, "Random seed: one subject per seed")
        ->capture_default_str();
    app.add_option(
        "--geometry", s.geometry.geometry_dir,
        "Folder with lh/rh white/pial surfaces to use instead of procedural hemispheres");
    CLI::Option* voxel_size =
        app.add_option("--voxel-size", s.voxel_size,
                       "Isotropic voxel size in mm (1.0-3.0 typical); with --physics random it "
                       "pins the resolution, which is otherwise drawn")
            ->capture_default_str();
    app.add_option("--sdf-voxel-size", s.sdf_voxel_size,
                   "Voxel size of the written SDF volumes when finer than the DWI voxels (same "
                   "axes and field of view); 0 = the DWI grid")
        ->capture_default_str();
    app.add_option("--shells", o->shells, "Shells as bval:directions, comma-separated")
        ->capture_default_str();
    app.add_option("--b0", s.num_b0, "Number of b=0 volumes")->capture_default_str();
    CLI::Option* snr =
        app.add_option("--snr", s.snr, "b0 white-matter SNR of the Rician noise; 0 = noise-free")
            ->capture_default_str();
    CLI::Option* bias =
        app.add_option("--bias-field", s.bias_field,
                       "Strength (sd of the log) of a smooth multiplicative bias field; 0 = none")
            ->capture_default_str();
    CLI::Option* orientation = app.add_option("--orientation", s.orientation,
                                              "Voxel storage order: RAS, LAS, LPI or oblique")
                                   ->capture_default_str();
    app.add_option("--scale", s.geometry.scale,
                   "Overall head size factor (small values: tiny test phantoms)")
        ->capture_default_str();
    app.add_option(
           "--mesh-level", s.geometry.mesh_level,
           "Icosphere subdivisions of procedural surfaces (7 = 163,842 vertices per surface)")
        ->capture_default_str();
    CLI::Option* max_thickness =
        app.add_option(
               "--max-thickness", s.geometry.thickness_max,
               "Procedural cortex: thickest crown (mm); 4.5 makes 3-9 % of the pial surface "
               "lie over 5 mm from white, 3.2 about 0.1 % (fsaverage5: 0.2 %)")
            ->check(CLI::Range(2.0, 4.5))
            ->capture_default_str();
    CLI::Option* white_fa =
        app.add_option("--white-matter-fa", o->white_matter_fa,
                       "FA of one white-matter fibre population (MD kept at its default)")
            ->check(CLI::Range(0.2, 0.9))
            ->capture_default_str();
    app.add_option("--supersample", s.supersample, "Partial-volume sub-columns per voxel side")
        ->capture_default_str();
    app.add_option("--anatomy", s.anatomy,
                   "legacy, whole-head, skull-stripped, or random (whole-head or skull-stripped "
                   "per seed)")
        ->capture_default_str();
    app.add_option("--hemispheres", s.hemispheres,
                   "both, or lh or rh alone (an ex vivo-like specimen; with --anatomy whole-head, "
                   "the head cut to that hemisphere)")
        ->check(CLI::IsMember({"both", "lh", "rh"}))
        ->capture_default_str();
    app.add_option("--physics", s.physics,
                   "fixed (the options' values) or random (every tissue constant, noise, "
                   "resolution, blur, ringing, bias and field of view drawn per seed)")
        ->capture_default_str();
    app.add_flag("--no-variability", o->no_variability,
                 "No random warp, scaling or rigid motion (the seed still draws the folds)");
    app.add_flag("--force", o->force, "Replace an existing output folder");
    return [o, max_thickness, white_fa, voxel_size, snr, bias, orientation]() -> int {
      auto& s = o->sim;
      s.draw_resolution = voxel_size->count() == 0;
      if (s.physics == "random")
        for (const CLI::Option* given : {snr, bias, orientation, white_fa})
          if (given->count() > 0)
            spdlog::warn("{} is drawn per seed with --physics random; the value given is unused",
                         given->get_name());
      if (white_fa->count() > 0)
        s.tissue.white = ddcsr::sim::compartment_with_fa(s.tissue.white.s0, s.tissue.white.md(),
                                                         o->white_matter_fa);
      s.shells = ddcsr::sim::parse_shells(o->shells);
      s.geometry.variability = !o->no_variability;
      if (!s.geometry.geometry_dir.empty() && max_thickness->count() > 0)
        throw ddcsr::UsageError("--max-thickness shapes procedural hemispheres, not --geometry");
      ddcsr::sim::validate(s);
      const auto start = std::chrono::steady_clock::now();
      ddcsr::sim::Subject subject;
      {
        ddcsr::cli::ProgressBar bar("Simulating");
        subject = ddcsr::sim::simulate_subject(s, [&](double f) { bar.update(f); });
        bar.done();
      }
      const auto& v = subject.physics.voxel;
      spdlog::info(
          "subject: {} x {} x {} voxels of {:.2f} x {:.2f} x {:.2f} mm, {} volumes, {} vertices "
          "per surface",
          subject.dwi.dims[0], subject.dwi.dims[1], subject.dwi.dims[2], v[0], v[1], v[2],
          subject.dwi.nvols, subject.geometry.white[0].num_vertices());
      {
        ddcsr::cli::ProgressBar bar("Writing");
        ddcsr::sim::write_subject(subject, s, o->output, o->force,
                                  [&](double f) { bar.update(f); });
        bar.done();
      }
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      spdlog::info("wrote {} in {:.1f} s", o->output, secs);
      return 0;
    };
  };
  return c;
}

}  // namespace

DDCSR_COMMAND(make_simulate_command());
