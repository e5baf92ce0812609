// The whole reconstruction of one subject: DWI -> features -> SDFNet -> DiffCoSeg -> outputs.
// Library code: reports stages and progress through an observer and never logs or prints.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ddcsr/diffcoseg/diffcoseg.h"
#include "ddcsr/features/features.h"
#include "ddcsr/placement/placement.h"
#include "ddcsr/recon/cohort.h"
#include "ddcsr/resources.h"
#include "ddcsr/sdfnet/sdfnet.h"

namespace ddcsr {

struct ReconOptions {
  std::string model_path;  // the SDFNet file (see default_model_path)
  std::string device = "auto";
  // Which hemispheres (--hemi): "auto", those the scan holds; "both", "lh" or "rh". Never one that
  // is not in the image: that request is an InputError (features/hemisphere_presence.h). A scan
  // of one hemisphere is reconstructed whole, with no split at a midline.
  std::string hemi = "auto";
  bool save_sdf = false;  // also write sdf/{lh,rh}.{white,pial}.nii.gz, the maps DiffCoSeg uses
  bool qc = true;         // qc/{axial,coronal,sagittal}.png
  FeatureOptions features;
  SdfInferenceOptions inference;
  DiffCoSegOptions diffcoseg;
  // After DiffCoSeg, move the surfaces onto the boundaries the scan itself shows
  // (ddcsr/placement/placement.h); off: the surfaces DiffCoSeg made from the network's maps.
  bool place = true;
  PlacementOptions placement;
  // Curvature, sulcal depth, inflated, spherical and midthickness surfaces
  // (ddcsr/surface_maps/surface_maps.h), the files viewers and atlas tools load next.
  bool surface_maps = true;
  // Atlases on fsaverage5 whose labels the subject gets through its registration
  // (ddcsr/parcellation/parcellation.h); empty: no registration. Needs surface_maps.
  std::vector<std::string> atlases = {"aparc"};
  std::string fsaverage_dir;  // default_fsaverage_dir()
  // The grid (mm) that the network's maps are resampled to, by cubic B-spline, before
  // reinitialisation and DiffCoSeg; 0 or not finer than the network's grid: the network's grid.
  // 1 mm instead of the shipped model's 2 mm: ASSD 12-18 % lower on held-out phantoms
  // (bench/results.md), for about 20 s more on 2 cores.
  double sdf_spacing_mm = 1.0;
  std::string command_line;  // recorded in the report
};

struct ReconObserver {
  std::function<void(const std::string& stage)> stage_started;
  std::function<void(const StageUsage& usage)> stage_finished;
  ProgressFn progress;                                      // within the current stage
  std::function<void(const std::string& message)> note;     // facts worth a log line
  std::function<void(const std::string& message)> warning;  // a guarantee or expectation failed
};

struct ReconSummary {
  std::vector<StageUsage> stages;
  double seconds = 0, peak_rss_mb = 0;
  std::vector<std::string> problems;  // failed guarantees (surfaces written and reported anyway)
};

// Reconstructs `subject` into `out_dir` (an existing folder, normally the temporary folder of an
// AtomicFolder): surf/{lh,rh}.{white,pial}[.surf.gii], surf/{lh,rh}.thickness, qc/*.png,
// optionally sdf/*.nii.gz, and last report.json (status "ok"). InputError for unusable inputs.
ReconSummary reconstruct_subject(const SubjectInput& subject, const ReconOptions& options,
                                 const std::string& out_dir, const ReconObserver& observer = {});

// Where the shipped model is: $DDCSR_MODEL, else models/sdfnet.pt beside the source tree of the
// executable (build/ddcsr -> models/sdfnet.pt), else PREFIX/share/ddcsr/models/sdfnet.pt.
std::string default_model_path(const std::string& executable_path);

// What a finished hemisphere shows to be wrong without ground truth: a pial surface that hardly
// left the white one (median thickness under 0.5 mm; cortex is 1.5-4.5 mm), and a white surface
// across which FA falls outward at under 65 % of the `white_fa_vertices` sampled (good surfaces
// on real scans: 81-94 %; moved 6 mm or mirrored: 52-56 %). One message per problem.
std::vector<std::string> hemisphere_plausibility_problems(const std::string& hemi,
                                                          double median_thickness_mm,
                                                          double white_fa_positive_percent,
                                                          int64_t white_fa_vertices);

}  // namespace ddcsr
