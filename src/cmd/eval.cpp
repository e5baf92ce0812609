// ddcsr eval: surface accuracy and topology against a reference, as the field reports them.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "cli/progress.h"
#include "ddcsr/error.h"
#include "ddcsr/eval/metrics.h"
#include "ddcsr/io/atomic_file.h"
#include "ddcsr/io/surface.h"

namespace {

struct Opts {
  std::string pred, ref, recon, truth, output;
  bool json = false;
  int64_t samples = 100000;
  uint64_t seed = ddcsr::SamplingOptions{}.seed;
};

void print_header() {
  std::printf("%-10s %-5s %8s %8s %8s %9s %8s %8s %6s %6s %6s %8s\n", "surface", "mesh", "ASSD",
              "HD90", "HD95", "Chamfer", "offset", "SIF", "Euler", "comps", "closed", "faces");
  std::printf("%-10s %-5s %8s %8s %8s %9s %8s %8s %6s %6s %6s %8s\n", "", "", "mm", "mm", "mm",
              "mm^2", "mm", "%", "", "", "", "");
}

void print_quality(const std::string& name, const char* which, const ddcsr::MeshQuality& q,
                   const ddcsr::SurfaceDistance* d) {
  if (d) {
    std::printf("%-10s %-5s %8.3f %8.3f %8.3f %9.3f %+8.3f", name.c_str(), which, d->assd, d->hd90,
                d->hd95, d->chamfer, d->offset);
  } else {
    std::printf("%-10s %-5s %8s %8s %8s %9s %8s", name.c_str(), which, "", "", "", "", "");
  }
  std::printf(" %8.3f %6lld %6lld %6s %8lld\n", q.sif, static_cast<long long>(q.euler),
              static_cast<long long>(q.components), q.closed_manifold ? "yes" : "no",
              static_cast<long long>(q.faces));
}

void print_comparison(const ddcsr::SurfaceComparison& c) {
  print_quality(c.name, "pred", c.pred, &c.distance);
  print_quality("", "ref", c.ref, nullptr);
}

ddcsr::cli::Command make_eval_command() {
  ddcsr::cli::Command c;
  c.name = "eval";
  c.synopsis =
      "Compare surfaces with a reference: ASSD, HD90/95, Chamfer, SIF, Euler characteristic";
  c.description =
      "Two forms:\n"
      "  ddcsr eval PRED REF              one surface against its reference\n"
      "  ddcsr eval --recon OUT --truth SIMDIR\n"
      "                                   every {lh,rh}.{white,pial} in OUT/surf against "
      "SIMDIR/surf\n"
      "Surfaces may be FreeSurfer binary or ASCII, or GIFTI. Distances use area-weighted random\n"
      "samples on each mesh (fixed seed) and exact point-to-triangle distances both ways:\n"
      "ASSD is the mean of the two directional means, HD90/HD95 the larger directional\n"
      "90th/95th percentile, Chamfer the sum of the two directional mean squared distances;\n"
      "offset is the mean signed distance from PRED's samples to REF, negative inside REF\n"
      "(a bias that ASSD hides: white too deep, pial too far out; needs a closed REF).\n"
      "SIF is the percentage of faces that intersect a non-adjacent face of the same mesh;\n"
      "Euler is V - E + F (2 for a closed genus-0 surface). With --recon, also the percentage\n"
      "of white vertices outside the pial surface of each hemisphere.";
  c.references = {
      "Ma, Chen, Sun, Kong, Dou, Van Leemput (2022). CortexODE: learning cortical surface "
      "reconstruction by neural ODEs. IEEE TMI.",
      "Bongratz, Rickmann, Poelsterl, Wachinger (2022). Vox2Cortex: fast explicit reconstruction "
      "of cortical surfaces from 3D MRI scans with geometric deep neural networks. CVPR."};
  c.order = 40;
  c.setup = [](CLI::App& app) {
    auto o = std::make_shared<Opts>();
    app.add_option("pred", o->pred, "Predicted surface");
    app.add_option("ref", o->ref, "Reference surface");
    app.add_option("--recon", o->recon, "Reconstruction folder (holding surf/)");
    app.add_option("--truth", o->truth,
                   "Ground-truth folder (holding surf/), e.g. from ddcsr simulate");
    app.add_flag("--json", o->json, "Print JSON instead of a table");
    app.add_option("-o,--output", o->output, "Also write the JSON to this file");
    app.add_option("--samples", o->samples, "Samples per mesh")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--seed", o->seed, "Sampling seed")->capture_default_str();
    return [o]() -> int {
      const bool pair_mode = !o->pred.empty() || !o->ref.empty();
      const bool recon_mode = !o->recon.empty() || !o->truth.empty();
      if (pair_mode == recon_mode)
        throw ddcsr::UsageError("give either PRED REF or --recon OUT --truth SIMDIR");
      if (pair_mode && (o->pred.empty() || o->ref.empty()))
        throw ddcsr::UsageError("PRED and REF are both needed");
      if (recon_mode && (o->recon.empty() || o->truth.empty()))
        throw ddcsr::UsageError("--recon and --truth go together");
      ddcsr::SamplingOptions sampling;
      sampling.samples = o->samples;
      sampling.seed = o->seed;

      std::string json;
      if (pair_mode) {
        ddcsr::Mesh pred = ddcsr::read_surface(o->pred);
        ddcsr::Mesh ref = ddcsr::read_surface(o->ref);
        ddcsr::check_mesh(pred, o->pred);
        ddcsr::check_mesh(ref, o->ref);
        spdlog::debug("pred {} ({} vertices), ref {} ({} vertices)", o->pred, pred.num_vertices(),
                      o->ref, ref.num_vertices());
        ddcsr::SurfaceComparison cmp;
        {
          ddcsr::cli::ProgressBar bar("Evaluating");
          std::string name = pred.hemi.empty() || pred.surface.empty()
                                 ? std::string("surface")
                                 : pred.hemi + "." + pred.surface;
          cmp =
              ddcsr::compare_surfaces(pred, ref, name, sampling, [&](double f) { bar.update(f); });
          bar.done();
        }
        json = "{\n  \"pred_file\": " + ddcsr::json_string(o->pred) +
               ",\n  \"ref_file\": " + ddcsr::json_string(o->ref) +
               ",\n  \"seed\": " + std::to_string(sampling.seed) +
               ",\n  \"surface\": " + cmp.to_json(2) + "\n}\n";
        if (!o->json) {
          print_header();
          print_comparison(cmp);
        }
      } else {
        const auto files = ddcsr::reconstruction_surface_files(o->recon, o->truth);
        ddcsr::ReconstructionEvaluation ev;
        {
          ddcsr::cli::ProgressBar bar("Evaluating");
          ev = ddcsr::evaluate_reconstruction(files, sampling, [&](double f) { bar.update(f); });
          bar.done();
        }
        json = ev.to_json() + "\n";
        if (!o->json) {
          print_header();
          for (const auto& s : ev.surfaces) print_comparison(s);
          for (const auto& n : ev.nesting)
            std::printf("%s: white vertices outside pial %.3f %% (truth %.3f %%)\n", n.hemi.c_str(),
                        n.pred_white_outside_pial, n.ref_white_outside_pial);
        }
      }
      if (o->json) std::fputs(json.c_str(), stdout);
      if (!o->output.empty()) {
        ddcsr::write_file_atomic(o->output, json);
        spdlog::info("wrote {}", o->output);
      }
      return 0;
    };
  };
  return c;
}

}  // namespace

DDCSR_COMMAND(make_eval_command());
