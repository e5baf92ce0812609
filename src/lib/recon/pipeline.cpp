#include "ddcsr/recon/pipeline.h"

#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "ddcsr/checksum.h"
#include "ddcsr/error.h"
#include "ddcsr/eval/marching_cubes.h"
#include "ddcsr/eval/metrics.h"
#include "ddcsr/filters.h"
#include "ddcsr/frames.h"
#include "ddcsr/geometry/mesh_distance.h"
#include "ddcsr/io/atomic_file.h"
#include "ddcsr/io/gradients.h"
#include "ddcsr/io/nifti.h"
#include "ddcsr/io/surface.h"
#include "ddcsr/parcellation/parcellation.h"
#include "ddcsr/placement/placement.h"
#include "ddcsr/qc/qc.h"
#include "ddcsr/recon/field_of_view.h"
#include "ddcsr/recon/hemispheres.h"
#include "ddcsr/recon/sign_repair.h"
#include "ddcsr/shipped_files.h"
#include "ddcsr/surface_maps/surface_maps.h"
#include "ddcsr/threads.h"
#include "ddcsr/version.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace ddcsr {

namespace {

json check_json(const SurfaceCheck& c) {
  return {{"vertices", c.vertices},
          {"faces", c.faces},
          {"euler", c.euler},
          {"components", c.components},
          {"closed_manifold", c.closed_manifold},
          {"self_intersecting_faces", c.self_intersecting_faces},
          {"sif_percent", c.sif_percent},
          {"repaired_vertices", c.repaired_vertices}};
}

// The report's topology and self-intersection numbers come from the evaluation code (one
// implementation for the whole project), measured on the mesh as written; DiffCoSeg's own check
// is kept beside it.
json check_json(const SurfaceCheck& c, const MeshQuality& q) {
  return {{"vertices", q.vertices},
          {"euler", q.euler},
          {"components", q.components},
          {"closed_manifold", q.closed_manifold},
          {"self_intersecting_faces", q.self_intersecting_faces},
          {"sif_percent", q.sif},
          {"diffcoseg_check", check_json(c)}};
}

json usage_json(const StageUsage& u) {
  return {{"stage", u.name},
          {"seconds", std::round(u.seconds * 1000) / 1000},
          {"peak_rss_mb", std::round(u.peak_rss_mb)}};
}

double mean_of(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += x;
  return v.empty() ? 0 : s / v.size();
}

double median_of(std::vector<float> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

// A whole-brain scan whose brainstem leaves the image puts well under 1 % of a hemisphere's
// vertices on the cut; a slab or a cut vertex puts several percent there (Philips sample: 15 %).
constexpr double kFieldOfViewCutProblemPercent = 1.0;

std::string fmt_percent(double p) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f%%", p);
  return text;
}

// Percent of a mesh's vertices, those flagged in `skip` left out (empty: none), that fall in
// nonzero voxels of `mask` (nearest voxel).
double percent_inside(const Mesh& mesh, const Volume& mask, const std::vector<uint8_t>& skip = {}) {
  const Affine ras2vox = mask.vox2ras.inverse();
  int64_t inside = 0, counted = 0;
  for (size_t n = 0; n < mesh.vertices.size(); ++n) {
    if (n < skip.size() && skip[n]) continue;
    ++counted;
    const auto& v = mesh.vertices[n];
    const Vec3 ijk = ras2vox.apply({v[0], v[1], v[2]});
    const int64_t i = std::lround(ijk[0]), j = std::lround(ijk[1]), k = std::lround(ijk[2]);
    if (mask.inside(i, j, k) && mask.at(i, j, k) != 0) ++inside;
  }
  return counted == 0 ? 0.0 : 100.0 * double(inside) / double(counted);
}

Volume dilate_mask(const Volume& mask, double radius_mm) {
  Volume out = mask.like();
  const Vec3 sp = mask.spacing();
  const int64_t r[3] = {std::lround(radius_mm / sp[0]), std::lround(radius_mm / sp[1]),
                        std::lround(radius_mm / sp[2])};
  for (int64_t k = 0; k < mask.dims[2]; ++k)
    for (int64_t j = 0; j < mask.dims[1]; ++j)
      for (int64_t i = 0; i < mask.dims[0]; ++i) {
        if (mask.at(i, j, k) == 0) continue;
        for (int64_t dk = -r[2]; dk <= r[2]; ++dk)
          for (int64_t dj = -r[1]; dj <= r[1]; ++dj)
            for (int64_t di = -r[0]; di <= r[0]; ++di)
              if (out.inside(i + di, j + dj, k + dk)) out.at(i + di, j + dj, k + dk) = 1;
      }
  return out;
}

int64_t index_of(const std::vector<std::string>& list, const std::string& name) {
  const auto it = std::find(list.begin(), list.end(), name);
  if (it == list.end()) throw std::logic_error("no " + name + " in the list");
  return static_cast<int64_t>(it - list.begin());
}

// The white matter of one hemisphere is about 12-20 % of an adult brain mask and the two sides
// differ by a few per cent. Far outside that the network has not seen a brain it knows (wrong
// contrast, heavy artefacts), and DiffCoSeg would spend minutes fitting nonsense: fail at once.
// Milder deviations are reported as problems and the run goes on.
std::string check_white_volumes(double lh_ml, double rh_ml, double mask_ml,
                                const std::string& path) {
  char text[256];
  const double smaller = std::min(lh_ml, rh_ml), larger = std::max(lh_ml, rh_ml);
  std::snprintf(text, sizeof text,
                "implausible white matter: lh %.0f ml, rh %.0f ml in a %.0f ml brain mask", lh_ml,
                rh_ml, mask_ml);
  if (smaller < 0.02 * mask_ml || larger > 0.45 * mask_ml || smaller < larger / 3)
    throw InputError(path, std::string(text) + " (is this a diffusion scan of an adult brain?)");
  if (smaller < 0.06 * mask_ml || larger > 0.3 * mask_ml || smaller < 0.8 * larger) return text;
  return {};
}

// One hemisphere alone: its white matter is a quarter to a half of its own brain mask (more in a
// specimen without CSF around it).
std::string check_one_white_volume(const std::string& hemi, double white_ml, double mask_ml,
                                   const std::string& path) {
  char text[256];
  std::snprintf(text, sizeof text, "implausible white matter: %s %.0f ml in a %.0f ml brain mask",
                hemi.c_str(), white_ml, mask_ml);
  if (white_ml < 0.04 * mask_ml || white_ml > 0.9 * mask_ml)
    throw InputError(path, std::string(text) + " (is this a diffusion scan of a hemisphere?)");
  if (white_ml < 0.12 * mask_ml || white_ml > 0.65 * mask_ml) return text;
  return {};
}

json surface_placement_json(const SurfacePlacement& s) {
  auto r3 = [](double x) { return std::round(x * 1000) / 1000; };
  return {{"mean_mm", r3(s.mean_mm)},
          {"mean_abs_mm", r3(s.mean_abs_mm)},
          {"p95_abs_mm", r3(s.p95_abs_mm)},
          {"moved_percent", r3(s.moved_percent)},
          {"evidence_percent", r3(s.evidence_percent)},
          {"mean_boundary_offset_found_mm", r3(s.mean_found_offset_mm)},
          {"curvature_correction_mean_abs_mm", r3(s.curvature_correction_mean_abs_mm)},
          {"curvature_correction_p95_abs_mm", r3(s.curvature_correction_p95_abs_mm)},
          {"taken_back_vertices", s.taken_back_vertices}};
}

// What the stages of one subject share: its inputs, the report being written, and each stage's
// results for the next.
struct SubjectRun {
  SubjectRun(const SubjectInput& s, const ReconOptions& o, const std::string& dir,
             const ReconObserver& obs)
      : subject(s), options(o), out_dir(dir), observer(obs) {}
  const SubjectInput& subject;
  const ReconOptions& options;
  const std::string& out_dir;
  const ReconObserver& observer;
  ReconSummary summary;
  json report;
  Volume dwi, mask;
  GradientTable table;
  VolumeGeometry geometry;
  std::optional<SdfNet> net;
  FeatureOptions fopts;
  FeatureSet features;
  Volume sdf;  // the network's four maps, in sdfnet_outputs() order
  std::vector<HemisphereSurfaces> hemispheres;
  std::vector<HemisphereMaps> maps;                   // per hemisphere, when options.surface_maps
  std::vector<HemisphereParcellation> parcellations;  // per hemisphere, when atlases are asked for
  json surfaces = json::object();

  void note(const std::string& m) const {
    if (observer.note) observer.note(m);
  }
  void warn(const std::string& m) const {
    if (observer.warning) observer.warning(m);
  }
  const ProgressFn& progress = observer.progress;
  Volume frame_of(const std::string& name) const {
    return sdf.frame(index_of(sdfnet_outputs(), name));
  }
  bool has_native_maps() const { return !features.native.maps.data.empty(); }
  // Runs one stage, timed and metered for the report.
  void stage(const std::string& name, const std::function<void(SubjectRun&)>& body) {
    if (observer.stage_started) observer.stage_started(name);
    StageMeter meter(name);
    body(*this);
    summary.stages.push_back(meter.finish());
    if (observer.stage_finished) observer.stage_finished(summary.stages.back());
  }
};

// One map of both hemispheres' `surface` ("white" or "pial"): the nearer one's distance.
Volume united_map(const SubjectRun& r, const std::string& surface) {
  Volume both = r.frame_of("lh." + surface);
  const Volume rh = r.frame_of("rh." + surface);
  for (size_t v = 0; v < both.data.size(); ++v) both.data[v] = std::min(both.data[v], rh.data[v]);
  return both;
}

void start_report(SubjectRun& r) {
  r.report["status"] = "running";
  r.report["subject"] = r.subject.id;
  r.report["ddcsr"] = {
      {"version", kVersion}, {"commit", kGitDescribe}, {"libtorch", TORCH_VERSION}};
  r.report["command_line"] = r.options.command_line;
  r.report["threads"] = thread_count();
}

// What the scan holds (features/hemisphere_presence.h), in the log and the report.
void report_hemispheres_present(SubjectRun& r) {
  const HemispherePresence& p = r.features.presence;
  r.report["hemispheres_present"] = json::parse(hemisphere_presence_json(p));
  r.report["hemispheres_reconstructed"] = r.features.hemispheres;
  std::string list;
  for (const auto& h : r.features.hemispheres) list += (list.empty() ? "" : ", ") + h;
  r.note(std::string(p.count == 1 ? "one hemisphere present" : "two hemispheres present") + ": " +
         p.reason + "; reconstructing " + list +
         (r.features.one_hemisphere() ? " whole, without a midline split" : ""));
  if (r.features.tissue_only) {
    r.report["input_normalisation"] = "specimen_extent";
    r.note("no CSF in the mask (" +
           std::to_string(static_cast<int>(std::lround(100 * r.features.water_share))) +
           " % free water): the network sees the specimen's whole extent (" +
           std::to_string(static_cast<int>(std::lround(r.features.specimen_extent_ml))) +
           " ml) with its void given free water's signal, as in a scan with CSF");
  }
}

// The scan, its gradient table and mask. The model loads here too, so a wrong model file fails
// in a second rather than after the features.
void load_inputs(SubjectRun& r) {
  r.dwi = read_volume(r.subject.dwi, true);
  std::string bval = r.subject.bval, bvec = r.subject.bvec;
  if (bval.empty() || bvec.empty()) {
    const auto found = find_gradient_files(r.subject.dwi);
    if (bval.empty()) bval = found.first;
    if (bvec.empty()) bvec = found.second;
  }
  r.table = read_fsl_gradients(bval, bvec);
  check_gradients(r.table, r.dwi.nvols, r.subject.dwi, r.options.features.protocol.b0_threshold);
  if (!r.subject.mask.empty()) r.mask = read_volume(r.subject.mask);
  r.geometry = volume_geometry_of(r.dwi, fs::path(r.subject.dwi).filename().string());
  r.net.emplace(
      SdfNet::load(r.options.model_path, feature_channel_names(), parse_device(r.options.device)));
  r.report["inputs"] = {
      {"dwi", r.subject.dwi}, {"bval", bval}, {"bvec", bvec}, {"mask", r.subject.mask}};
  const Vec3 vox = r.dwi.spacing();
  r.report["image"] = {{"dims", {r.dwi.dims[0], r.dwi.dims[1], r.dwi.dims[2]}},
                       {"volumes", r.dwi.nvols},
                       {"voxel_size_mm", {vox[0], vox[1], vox[2]}}};
  r.report["model"] = {{"path", r.net->path()},
                       {"sha256", sha256_file(r.net->path())},
                       {"device", r.net->device_name()},
                       {"metadata", json::parse(r.net->metadata().json, nullptr, false)}};
  r.note("model " + r.net->path() + " on " + r.net->device_name());
}

// The network's input on its grid, and the tensor maps on the scan's own grid (the QC pictures,
// the surfaces' agreement with FA and MD, placement).
void compute_subject_features(SubjectRun& r) {
  r.fopts = r.options.features;
  r.fopts.grid.spacing_mm = r.net->metadata().grid_spacing_mm;
  r.fopts.grid.multiple = r.net->metadata().size_multiple;
  r.fopts.keep_native = true;
  r.fopts.image_path = r.subject.dwi;
  r.fopts.mask_path = r.subject.mask;
  r.fopts.hemispheres = r.options.hemi;
  r.features = compute_features(r.dwi, r.table, r.subject.mask.empty() ? nullptr : &r.mask, r.fopts,
                                r.progress);
  json shells = json::array();
  for (const auto& s : r.features.protocol.shells)
    shells.push_back({{"bval", std::round(s.bval)}, {"volumes", s.volumes.size()}});
  r.report["protocol"] = {{"b0_volumes", r.features.protocol.b0_volumes.size()},
                          {"shells", shells},
                          {"tensor_directions", r.features.protocol.dti_directions},
                          {"bvals_rescaled", r.features.protocol.rescaled}};
  r.report["mask"] = {{"source", r.features.mask_given ? "given" : "automatic"},
                      {"volume_ml", r.features.mask_volume_ml}};
  const auto& g = r.features.channels;
  r.report["network_grid"] = {{"dims", {g.dims[0], g.dims[1], g.dims[2]}},
                              {"spacing_mm", r.fopts.grid.spacing_mm}};
  r.note("features on a " + std::to_string(g.dims[0]) + "x" + std::to_string(g.dims[1]) + "x" +
         std::to_string(g.dims[2]) + " grid; mask " +
         std::to_string(static_cast<int>(r.features.mask_volume_ml)) + " ml (" +
         (r.features.mask_given ? "given" : "automatic") + ")");
  r.dwi = Volume();  // the 4D series is the largest thing held; nothing later needs it
  report_hemispheres_present(r);
}

void predict_distance_maps(SubjectRun& r) {
  r.sdf = r.net->predict(r.features.channels, r.options.inference, r.progress, r.subject.dwi);
  r.report["inference"] = {
      {"sliding_window", r.net->uses_sliding_window(r.features.channels.dims, r.options.inference)},
      {"mirror_average", r.options.inference.mirror_average}};
  r.net.reset();
}

// The network is trained for accuracy near the surfaces; deep inside and far outside its output
// is no distance (flat plateaus, even the wrong sign: recon/sign_repair.h), and DiffCoSeg's
// flows need one. Level-set reinitialisation: repair the far-field signs, keep each map's zero
// level set, assigned to its hemisphere (recon/hemispheres.h), and replace the values by exact
// signed distances to it. White first: the pial maps are cut between the hemispheres' white
// matter.
void reinitialise_distance_maps(SubjectRun& r) {
  const double network_mm = r.sdf.spacing()[0];
  // On a finer grid than the network's, exact distances near the surfaces and the network
  // grid's exact distances, interpolated, farther out (where the flows only need a direction).
  SignedDistanceOptions distance_options;
  const Volume coarse_grid(r.sdf.dims, 1, r.sdf.vox2ras);
  const bool finer = r.options.sdf_spacing_mm > 0 && r.options.sdf_spacing_mm < network_mm;
  if (finer) {
    distance_options.max_distance = 2 * network_mm;
    distance_options.far_grid = &coarse_grid;
    r.sdf = resample_bspline(r.sdf, r.options.sdf_spacing_mm);
  }
  r.report["sdf_grid"] = {
      {"dims", {r.sdf.dims[0], r.sdf.dims[1], r.sdf.dims[2]}},
      {"spacing_mm", finer ? r.options.sdf_spacing_mm : network_mm},
      {"interpolation", finer ? "cubic B-spline of the network's maps" : "none"}};
  const MidsagittalPlane& plane = r.features.midsagittal;
  r.report["midsagittal_plane"] = {
      {"point_ras", plane.point},
      {"normal_ras", plane.normal},
      {"tilt_degrees", plane.tilt_degrees()},
      {"measured_from", r.features.one_hemisphere() ? "the one hemisphere's medial face"
                                                    : "the FA map's mirror symmetry"}};
  // Far from the midline the network may confuse the hemispheres (recon/hemispheres.h): unite,
  // then split.
  Volume white = united_map(r, "white"), pial = united_map(r, "pial");
  const SignRepairCounts flipped = repair_far_field_signs(white, pial, plane);
  const Vec3 grid = white.spacing();
  const double grid_ml = grid[0] * grid[1] * grid[2] / 1000.0;
  r.report["sign_repair_ml"] = {{"white", double(flipped.white_voxels_flipped) * grid_ml},
                                {"pial", double(flipped.pial_voxels_flipped) * grid_ml}};
  int done = 0;
  std::map<std::string, double> implicit_ml;
  auto reinitialise = [&](const std::string& name, Volume frame, const Volume* allowed) {
    const bool left = name.rfind("lh.", 0) == 0;
    const Vec3 spacing = frame.spacing();
    const double voxel_ml = spacing[0] * spacing[1] * spacing[2] / 1000.0;
    const int64_t kept =
        allowed ? keep_largest_region(frame, *allowed) : keep_hemisphere_white(frame, plane, left);
    if (kept == 0) throw InputError(r.subject.dwi, "the network found no " + name + " surface");
    implicit_ml[name] = static_cast<double>(kept) * voxel_ml;
    r.report["implicit_volume_ml"][name] = implicit_ml[name];
    const Mesh zero = marching_cubes(frame, MarchingCubesOptions{});
    if (zero.faces.empty())
      throw InputError(r.subject.dwi, "the network found no " + name + " surface");
    Volume exact = signed_distance_volume(zero, frame, distance_options);
    const int64_t f = index_of(sdfnet_outputs(), name);
    std::copy(exact.data.begin(), exact.data.end(),
              r.sdf.data.begin() + f * r.sdf.voxels_per_volume());
    ddcsr::report(r.progress, double(++done) / (r.features.one_hemisphere() ? 2.0 : 4.0));
    return exact;
  };
  if (r.features.one_hemisphere()) {
    // The network was trained on heads: on one hemisphere its lh and rh maps each hold parts of
    // it (docs/experiments.md, issue 26). United, they are the hemisphere's, kept whole.
    const std::string& hemi = r.features.hemispheres[0];
    const Volume everywhere = white.like(1, 1.f);
    reinitialise(hemi + ".white", white, &everywhere);
    const std::string implausible = check_one_white_volume(
        hemi, implicit_ml.at(hemi + ".white"), r.features.mask_volume_ml, r.subject.dwi);
    if (!implausible.empty()) {
      r.warn(implausible);
      r.summary.problems.push_back(implausible);
    }
    reinitialise(hemi + ".pial", pial, &everywhere);
    // The absent hemisphere has no surface anywhere: its maps read far outside.
    const std::string absent = hemi == "lh" ? "rh" : "lh";
    for (const char* surface : {".white", ".pial"}) {
      const int64_t f = index_of(sdfnet_outputs(), absent + surface);
      std::fill(r.sdf.data.begin() + f * r.sdf.voxels_per_volume(),
                r.sdf.data.begin() + (f + 1) * r.sdf.voxels_per_volume(), 1000.f);
    }
    return;
  }
  const Volume lh_white = reinitialise("lh.white", white, nullptr);
  const Volume rh_white = reinitialise("rh.white", white, nullptr);
  const std::string implausible =
      check_white_volumes(implicit_ml.at("lh.white"), implicit_ml.at("rh.white"),
                          r.features.mask_volume_ml, r.subject.dwi);
  if (!implausible.empty()) {
    r.warn(implausible);
    r.summary.problems.push_back(implausible);
  }
  Volume nearer_lh = lh_white, nearer_rh = rh_white;
  for (size_t v = 0; v < nearer_lh.data.size(); ++v) {
    nearer_lh.data[v] = lh_white.data[v] < rh_white.data[v] ? 1.f : 0.f;
    nearer_rh.data[v] = 1.f - nearer_lh.data[v];
  }
  reinitialise("lh.pial", pial, &nearer_lh);
  reinitialise("rh.pial", pial, &nearer_rh);
}

void write_distance_maps(SubjectRun& r) {
  fs::create_directories(fs::path(r.out_dir) / "sdf");
  const auto& names = sdfnet_outputs();
  const auto& present = r.features.hemispheres;
  for (size_t f = 0; f < names.size(); ++f)
    if (std::find(present.begin(), present.end(), names[f].substr(0, 2)) != present.end())
      write_volume(r.sdf.frame(static_cast<int64_t>(f)),
                   (fs::path(r.out_dir) / "sdf" / (names[f] + ".nii.gz")).string());
}

// DiffCoSeg per hemisphere; both side by side when there are cores for it (each flow is mostly
// serial), as one stage.
void reconstruct_surfaces(SubjectRun& r) {
  const auto& hemis = r.features.hemispheres;
  if (hemis.size() == 2 && hemis[0] == "lh" && hemis[1] == "rh" && thread_count() > 1) {
    r.stage("diffcoseg", [](SubjectRun& r) {
      auto both = reconstruct_hemispheres(r.frame_of("lh.white"), r.frame_of("lh.pial"),
                                          r.frame_of("rh.white"), r.frame_of("rh.pial"),
                                          r.options.diffcoseg, r.progress);
      for (auto& h : both) r.hemispheres.push_back(std::move(h));
    });
  } else {
    for (const std::string& hemi : hemis)
      r.stage("diffcoseg_" + hemi, [&hemi](SubjectRun& r) {
        r.hemispheres.push_back(reconstruct_hemisphere(r.frame_of(hemi + ".white"),
                                                       r.frame_of(hemi + ".pial"), hemi,
                                                       r.options.diffcoseg, r.progress));
      });
  }
  for (const auto& h : r.hemispheres)
    for (const auto& p : h.problems) {
      r.summary.problems.push_back(h.hemi + ": " + p);
      r.warn(h.hemi + ": " + p);
    }
}

// The placement stage: the scan's own tissue evidence, then each hemisphere's surfaces moved
// onto it, their thickness measured again, and the displacements written as overlays
// (surf/{lh,rh}.{white,pial}.displacement, mm along the outward normal).
void place_on_scan_boundaries(SubjectRun& r) {
  const FeatureSet& features = r.features;
  const PlacementOptions& options = r.options.placement;
  const Volume white = united_map(r, "white");
  // A scan that does not show its tissues (no CSF and no cortex outside the white surface, no
  // free-water contrast) keeps DiffCoSeg's surfaces, which are valid without placement.
  TissueEvidence ev;
  try {
    ev = estimate_tissue_evidence(features.native, features.native_mask, white);
  } catch (const InputError& e) {
    const std::string m = std::string(e.what()) + "; surfaces left where DiffCoSeg put them";
    r.warn(m);
    r.summary.problems.push_back(m);
    r.report["placement"] = {{"enabled", true}, {"skipped", m}};
    return;
  }
  char line[300];
  std::snprintf(
      line, sizeof line,
      "tissue signatures at b=%.0f: S/S0 tissue %.3f, free water %.3f (%s), S0 CSF/tissue "
      "%.2f; anisotropy white %.2f, cortex %.2f um2/ms",
      ev.reference_bval, ev.tissue_attenuation, ev.water_attenuation,
      ev.water_measured ? "measured" : "assumed", ev.water_to_tissue_s0, ev.white_anisotropy,
      ev.cortex_anisotropy);
  r.note(line);
  json out = {{"enabled", true},
              {"tissue",
               {{"reference_bval", ev.reference_bval},
                {"tissue_attenuation", ev.tissue_attenuation},
                {"water_attenuation", ev.water_attenuation},
                {"water_measured", ev.water_measured},
                {"water_to_tissue_s0", ev.water_to_tissue_s0},
                {"outside_brain", ev.csf_outside ? "csf" : "no signal"},
                {"white_anisotropy_um2_per_ms", ev.white_anisotropy},
                {"cortex_anisotropy_um2_per_ms", ev.cortex_anisotropy},
                {"voxels",
                 {{"tissue", ev.tissue_voxels},
                  {"water", ev.water_voxels},
                  {"white", ev.white_voxels},
                  {"cortex", ev.cortex_voxels}}}}}};
  out["surfaces"] = json::array();
  if (options.place_white) out["surfaces"].push_back("white");
  if (options.place_pial) out["surfaces"].push_back("pial");
  const std::vector<FieldOfViewCut> cuts = field_of_view_cuts(features.native_mask);
  const fs::path surf = fs::path(r.out_dir) / "surf";
  fs::create_directories(surf);
  for (auto& h : r.hemispheres) {
    const std::vector<uint8_t> on_cut =
        field_of_view_cut_vertices(h.white, h.pial, features.native_mask, cuts);
    const double before = median_of(h.thickness);
    const HemispherePlacement placed =
        place_surfaces(h.white, h.pial, ev, r.frame_of(h.hemi + ".white"), on_cut, options);
    h.thickness = cortical_thickness(h.white, h.pial);
    const double after = median_of(h.thickness);
    const auto faces = static_cast<int64_t>(h.white.faces.size());
    write_curv(placed.white.displacement, faces,
               (surf / (h.hemi + ".white.displacement")).string());
    write_curv(placed.pial.displacement, faces, (surf / (h.hemi + ".pial.displacement")).string());
    std::snprintf(line, sizeof line,
                  "%s: placement moved white by %+.2f mm (mean; |95th| %.2f, evidence at %.0f%%), "
                  "pial by %+.2f mm (|95th| %.2f, evidence at %.0f%%); median thickness %.2f -> "
                  "%.2f mm",
                  h.hemi.c_str(), placed.white.mean_mm, placed.white.p95_abs_mm,
                  placed.white.evidence_percent, placed.pial.mean_mm, placed.pial.p95_abs_mm,
                  placed.pial.evidence_percent, before, after);
    r.note(line);
    if (placed.reverted)
      r.warn(h.hemi +
             ": placement could not keep the surfaces free of intersections and was undone");
    out[h.hemi] = {
        {"white", surface_placement_json(placed.white)},
        {"pial", surface_placement_json(placed.pial)},
        {"intersection_check_rounds", placed.rounds},
        {"seconds", {{"search", placed.seconds_search}, {"check", placed.seconds_check}}},
        {"reverted", placed.reverted},
        {"median_thickness_mm", {{"before", before}, {"after", after}}}};
  }
  r.report["placement"] = out;
}

// Curvature, sulcal depth, inflated, spherical and midthickness surfaces of the final white and
// pial surfaces (ddcsr/surface_maps/surface_maps.h), one hemisphere per thread.
void derive_surface_maps(SubjectRun& r) {
  r.maps.assign(r.hemispheres.size(), HemisphereMaps{});
  parallel_for(
      int64_t(r.hemispheres.size()),
      [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
          r.maps[i] = hemisphere_maps(r.hemispheres[i].white, r.hemispheres[i].pial);
      },
      1);
  json out = json::object();
  for (size_t i = 0; i < r.maps.size(); ++i) {
    const HemisphereMaps& m = r.maps[i];
    const std::string& hemi = r.hemispheres[i].hemi;
    out[hemi] = {{"sphere_folded_faces", m.sphere_folded_faces},
                 {"sphere_area_distortion", std::round(m.sphere_area_distortion * 1000) / 1000},
                 {"sphere_weights", m.sphere_uniform_weights ? "uniform" : "cotangent"}};
    if (m.sphere_folded_faces > 0) {
      const std::string msg = hemi + ": " + std::to_string(m.sphere_folded_faces) +
                              " faces fold over on the spherical map (surf/" + hemi + ".sphere)";
      r.warn(msg);
      r.summary.problems.push_back(msg);
    }
  }
  r.report["surface_maps"] = out;
}

// Registration to fsaverage5 and the atlases' labels (ddcsr/parcellation/parcellation.h).
void parcellate_cortex(SubjectRun& r) {
  json out = json::object();
  // One hemisphere per thread: much of a registration (point location, the rigid search) is
  // serial.
  r.parcellations.assign(r.hemispheres.size(), HemisphereParcellation{});
  parallel_for(
      int64_t(r.hemispheres.size()),
      [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const HemisphereSurfaces& h = r.hemispheres[size_t(i)];
          const HemisphereMaps& m = r.maps[size_t(i)];
          r.parcellations[size_t(i)] =
              parcellate_hemisphere(h.hemi, h.white, m.sphere, m.sulc, m.curv,
                                    r.options.fsaverage_dir, r.options.atlases);
        }
      },
      1);
  for (size_t i = 0; i < r.hemispheres.size(); ++i) {
    const HemisphereSurfaces& h = r.hemispheres[i];
    const AtlasCorrespondence& c = r.parcellations[i].correspondence;
    json regions = json::object();
    for (const auto& [name, labels] : r.parcellations[i].annotations) {
      std::vector<uint8_t> seen(labels.names.size(), 0);
      for (int32_t l : labels.labels)
        if (l >= 0) seen[size_t(l)] = 1;
      regions[name] = std::count(seen.begin(), seen.end(), 1);
    }
    out[h.hemi] = {{"sulc_correlation_rigid", std::round(c.rigid_correlation * 1000) / 1000},
                   {"feature_correlation_final", std::round(c.final_correlation * 1000) / 1000},
                   {"folded_atlas_faces", c.folded_atlas_faces},
                   {"regions_present", regions}};
  }
  out["atlas"] = "fsaverage5";
  r.report["parcellation"] = out;
}

// Surfaces, thickness, field-of-view labels, and per hemisphere the checks and the agreement
// with the scan for the report.
void write_surfaces(SubjectRun& r) {
  const fs::path surf = fs::path(r.out_dir) / "surf";
  fs::create_directories(surf);
  const bool native = !r.features.native_mask.data.empty();
  const Volume wide_mask = native ? dilate_mask(r.features.native_mask, 3.0) : Volume();
  // The tensor maps are fitted one voxel beyond the mask; samples must fall where they exist.
  const Vec3 sp = native ? r.features.native_mask.spacing() : Vec3{0, 0, 0};
  const Volume fit_region =
      native ? dilate_mask(r.features.native_mask, std::max({sp[0], sp[1], sp[2]})) : Volume();
  const Volume fa = native ? r.features.native.maps.frame(DiffusionMaps::kFA) : Volume();
  const Volume md = native ? r.features.native.maps.frame(DiffusionMaps::kMD) : Volume();
  const std::vector<FieldOfViewCut> cuts =
      native ? field_of_view_cuts(r.features.native_mask) : std::vector<FieldOfViewCut>{};
  std::string cut_faces;
  json cuts_json = json::array();
  for (const FieldOfViewCut& c : cuts) {
    cut_faces += (cut_faces.empty() ? "" : ", ") + c.face;
    cuts_json.push_back({{"face", c.face}, {"mask_area_cm2", c.mask_area_cm2}});
  }
  if (native) r.report["field_of_view"] = {{"cut_faces", cuts_json}};
  const fs::path label = fs::path(r.out_dir) / "label";
  fs::create_directories(label);
  for (auto& h : r.hemispheres) {
    for (Mesh* m : {&h.white, &h.pial}) {
      m->geometry = r.geometry;
      m->hemi = h.hemi;
    }
    h.white.surface = "white";
    h.pial.surface = "pial";
    for (const Mesh* m : {&h.white, &h.pial}) {
      const std::string base = (surf / (h.hemi + "." + m->surface)).string();
      write_surface(*m, base);
      write_surface(*m, base + ".surf.gii");
    }
    write_curv(h.thickness, static_cast<int64_t>(h.white.faces.size()),
               (surf / (h.hemi + ".thickness")).string());
    write_gifti_shape(h.thickness, h.hemi, "thickness",
                      (surf / (h.hemi + ".thickness.shape.gii")).string());
    const size_t index = size_t(&h - r.hemispheres.data());
    if (!r.maps.empty()) write_hemisphere_maps(r.maps[index], h.hemi, r.geometry, surf.string());
    if (!r.parcellations.empty())
      write_parcellation(r.parcellations[index], h.hemi, h.white, h.pial, h.thickness, r.geometry,
                         r.out_dir);
    // Where the scan stops inside the brain the surfaces follow the image border: labelled, and
    // left out of the thickness statistics and the agreement with the scan.
    // Without a native mask there are no cuts, and every vertex is kept.
    const std::vector<uint8_t> on_cut =
        field_of_view_cut_vertices(h.white, h.pial, r.features.native_mask, cuts);
    std::vector<int64_t> cut_vertices;
    std::vector<float> thickness_in_view;
    for (size_t v = 0; v < on_cut.size(); ++v) {
      if (on_cut[v])
        cut_vertices.push_back(int64_t(v));
      else if (v < h.thickness.size())
        thickness_in_view.push_back(h.thickness[v]);
    }
    write_label(h.white, cut_vertices, (label / (h.hemi + ".fov_cut.label")).string());
    const double cut_percent =
        on_cut.empty() ? 0.0 : 100.0 * double(cut_vertices.size()) / double(on_cut.size());
    if (cut_percent >= kFieldOfViewCutProblemPercent) {
      const std::string m = h.hemi + ": " + fmt_percent(cut_percent) +
                            " of the vertices lie where the field of view cuts the brain (" +
                            cut_faces + "): they follow the image border, not cortex (label/" +
                            h.hemi + ".fov_cut.label; left out of thickness and agreement)";
      r.warn(m);
      r.summary.problems.push_back(m);
    }
    const MeshQuality white_q = mesh_quality(h.white), pial_q = mesh_quality(h.pial);
    for (const auto& [name, q, c] :
         {std::tuple<std::string, const MeshQuality&, const SurfaceCheck&>{"white", white_q,
                                                                           h.white_check},
          {"pial", pial_q, h.pial_check}}) {
      std::string fault;
      if (!(q.closed_manifold && q.components == 1 && q.euler == 2))
        fault = h.hemi + ": " + name + ": not a closed genus-0 surface (Euler " +
                std::to_string(q.euler) + ", " + std::to_string(q.components) + " components)";
      else if (q.self_intersecting_faces > 0)
        fault = h.hemi + ": " + name + ": " + std::to_string(q.self_intersecting_faces) +
                " self-intersecting faces (" + std::to_string(q.sif) +
                "% SIF) in the written surface";
      if (!fault.empty() && c.self_intersecting_faces != q.self_intersecting_faces) {
        r.warn(fault);
        r.summary.problems.push_back(fault);
      }
    }
    json entry = {
        {"white", check_json(h.white_check, white_q)},
        {"pial", check_json(h.pial_check, pial_q)},
        {"white_vertices_outside_pial_percent", h.white_outside_pial_percent},
        {"thickness_mm",
         {{"mean", mean_of(thickness_in_view)}, {"median", median_of(thickness_in_view)}}},
        {"zero_thickness_vertices", h.pial_zero_thickness_vertices},
        {"field_of_view_cut_vertices", cut_vertices.size()},
        {"field_of_view_cut_percent", cut_percent},
        {"problems", h.problems}};
    SurfaceContrast white_fa;
    if (native) {
      // Without ground truth, the scan itself says whether the surfaces sit on its boundaries:
      // FA falls outward across white, MD rises outward across pial (models/README.md).
      white_fa = contrast_across_surface(h.white, fa, +1, &fit_region, 1.0, &on_cut);
      const SurfaceContrast pial_md =
          contrast_across_surface(h.pial, md, -1, &fit_region, 1.0, &on_cut);
      entry["dwi_agreement"] = {{"white_fa_step", white_fa.mean_step},
                                {"white_fa_step_positive_percent", white_fa.positive_percent},
                                {"pial_md_step_um2_per_ms", 1000.0 * pial_md.mean_step},
                                {"pial_md_step_positive_percent", pial_md.positive_percent}};
      char line[200];
      std::snprintf(line, sizeof line,
                    "%s: FA falls outward across white by %.3f (at %.0f%% of vertices); MD rises "
                    "outward across pial by %.2f um2/ms (at %.0f%%)",
                    h.hemi.c_str(), white_fa.mean_step, white_fa.positive_percent,
                    1000.0 * pial_md.mean_step, pial_md.positive_percent);
      r.note(line);
      // Where the field of view cuts the brain the mask's edge is the image border, which says
      // nothing of where cortex ends: those vertices are left out, as from the agreement above.
      const double inside = percent_inside(h.pial, wide_mask, on_cut);
      entry["pial_vertices_in_mask_percent"] = inside;
      if (inside < 95.0) {
        const std::string m = h.hemi + ": only " + fmt_percent(inside) +
                              " of pial vertices lie within 3 mm of the brain mask";
        r.warn(m);
        r.summary.problems.push_back(m);
      }
    }
    for (const std::string& m : hemisphere_plausibility_problems(
             h.hemi, thickness_in_view.empty() ? -1.0 : median_of(thickness_in_view),
             white_fa.positive_percent, white_fa.vertices)) {
      r.warn(m);
      r.summary.problems.push_back(m);
    }
    r.surfaces[h.hemi] = entry;
  }
}

// The cortical ribbon of the scan's grid labelled by each atlas: connectome nodes
// (label/ATLAS.ribbon.nii.gz with label/ATLAS.ribbon_lut.txt).
void label_cortical_ribbon(SubjectRun& r) {
  const std::vector<std::string>& atlases = r.options.atlases;
  for (const std::string& atlas : atlases) {
    std::vector<RibbonHemisphere> hemispheres;
    for (size_t i = 0; i < r.hemispheres.size(); ++i)
      for (const auto& [name, labels] : r.parcellations[i].annotations)
        if (name == atlas)
          hemispheres.push_back(
              {r.hemispheres[i].hemi, &r.hemispheres[i].white, &r.hemispheres[i].pial, &labels});
    write_ribbon_labels(hemispheres, atlas, r.geometry, r.out_dir);
  }
}

// qc/ATLAS.png for the first atlas: white and pial contours coloured by region, axial slices
// of b0 and FA, so a glance shows whether the regions sit where the anatomy says.
void write_parcellation_picture(const SubjectRun& r, const Volume& b0, const Volume& fa,
                                const QcOptions& options) {
  const std::string& atlas = r.options.atlases.front();
  std::vector<QcContour> contours;
  for (size_t i = 0; i < r.hemispheres.size(); ++i)
    for (const auto& [name, labels] : r.parcellations[i].annotations) {
      if (name != atlas) continue;
      const HemisphereSurfaces& h = r.hemispheres[i];
      QcContour white{&h.white, {0, 0, 0}, {}}, pial{&h.pial, {0, 0, 0}, {}};
      for (const auto& f : h.white.faces) {
        // The face takes its first vertex's region: contours are a few faces wide at most.
        const int32_t region = labels.labels[size_t(f[0])];
        const std::array<uint8_t, 3> rgb = region >= 0 && size_t(region) < labels.colours.size()
                                               ? labels.colours[size_t(region)]
                                               : std::array<uint8_t, 3>{128, 128, 128};
        white.face_rgb.push_back(rgb);
        pial.face_rgb.push_back(rgb);
      }
      contours.push_back(std::move(white));
      contours.push_back(std::move(pial));
    }
  const fs::path path = fs::path(r.out_dir) / "qc" / (atlas + ".png");
  write_png(render_qc({&b0, &fa}, contours, QcView::Axial, options), path.string());
}

void write_qc_pictures(SubjectRun& r) {
  const fs::path qc = fs::path(r.out_dir) / "qc";
  fs::create_directories(qc);
  const Volume b0 = r.features.native.maps.frame(DiffusionMaps::kB0);
  const Volume fa = r.features.native.maps.frame(DiffusionMaps::kFA);
  std::vector<QcContour> contours;
  for (const auto& h : r.hemispheres) {
    contours.push_back({&h.white, {40, 140, 255}, {}});
    contours.push_back({&h.pial, {255, 40, 40}, {}});
  }
  QcOptions qopts;
  qopts.region = &r.features.native_mask;
  qopts.pixel_mm = 0.75;
  const std::pair<QcView, const char*> views[] = {{QcView::Axial, "axial.png"},
                                                  {QcView::Coronal, "coronal.png"},
                                                  {QcView::Sagittal, "sagittal.png"}};
  for (const auto& [view, name] : views)
    write_png(render_qc({&b0, &fa}, contours, view, qopts), (qc / name).string());
  if (!r.parcellations.empty()) write_parcellation_picture(r, b0, fa, qopts);
}

// The report, written last: a report with status "ok" marks the subject finished.
void finish_report(SubjectRun& r, double seconds) {
  ReconSummary& summary = r.summary;
  summary.seconds = seconds;
  for (const auto& s : summary.stages)
    summary.peak_rss_mb = std::max(summary.peak_rss_mb, s.peak_rss_mb);
  json stages = json::array();
  for (const auto& s : summary.stages) stages.push_back(usage_json(s));
  r.report["stages"] = stages;
  r.report["seconds"] = std::round(summary.seconds * 1000) / 1000;
  r.report["peak_rss_mb"] = std::round(summary.peak_rss_mb);
  r.report["surfaces"] = r.surfaces;
  r.report["problems"] = summary.problems;
  const ReconOptions& options = r.options;
  r.report["outputs"] = {
      {"surfaces",
       "surf/{lh,rh}.{white,pial} (FreeSurfer, surface RAS + volume geometry of the input)"},
      {"gifti", "surf/{lh,rh}.{white,pial}.surf.gii (scanner RAS)"},
      {"thickness", "surf/{lh,rh}.thickness (FreeSurfer curv) and .thickness.shape.gii"},
      {"parcellation", options.surface_maps && !options.atlases.empty()
                           ? "surf/{lh,rh}.sphere.reg (+ .surf.gii, on fsaverage5's sphere), "
                             "label/{lh,rh}.ATLAS.annot, stats/{lh,rh}.ATLAS.tsv"
                           : ""},
      {"surface_maps",
       options.surface_maps
           ? "surf/{lh,rh}.{inflated,sphere,midthickness} (+ .surf.gii) and "
             "surf/{lh,rh}.{sulc,curv} (+ .shape.gii): FreeSurfer's names, units and signs"
           : ""},
      {"placement",
       options.place ? "surf/{lh,rh}.{white,pial}.displacement (mm moved along the outward normal "
                       "by placement; FreeSurfer curv)"
                     : ""},
      {"labels", "label/{lh,rh}.fov_cut.label (vertices where the field of view cuts the brain)"},
      {"qc", options.qc ? "qc/{axial,coronal,sagittal}.png (b0 | FA; white blue, pial red)" : ""},
      {"sdf", options.save_sdf ? "sdf/{lh,rh}.{white,pial}.nii.gz (mm, negative inside)" : ""}};
  r.report["status"] = "ok";
  write_file_atomic((fs::path(r.out_dir) / "report.json").string(), r.report.dump(2) + "\n");
}

}  // namespace

std::string default_model_path(const std::string& executable_path) {
  return shipped_path(executable_path, "models/sdfnet.pt", "DDCSR_MODEL");
}

ReconSummary reconstruct_subject(const SubjectInput& subject, const ReconOptions& options,
                                 const std::string& out_dir, const ReconObserver& observer) {
  const auto t0 = std::chrono::steady_clock::now();
  SubjectRun r(subject, options, out_dir, observer);
  start_report(r);
  r.stage("load", load_inputs);
  r.stage("features", compute_subject_features);
  r.stage("sdfnet", predict_distance_maps);
  r.stage("reinitialise", reinitialise_distance_maps);
  if (options.save_sdf) write_distance_maps(r);
  reconstruct_surfaces(r);
  if (options.place && r.has_native_maps())
    r.stage("place", place_on_scan_boundaries);
  else
    r.report["placement"] = {{"enabled", false}};
  r.sdf = Volume();
  if (options.surface_maps) r.stage("surface_maps", derive_surface_maps);
  if (options.surface_maps && !options.atlases.empty()) r.stage("parcellation", parcellate_cortex);
  r.stage("write", write_surfaces);
  if (!r.parcellations.empty()) r.stage("ribbon", label_cortical_ribbon);
  if (options.qc && r.has_native_maps()) r.stage("qc", write_qc_pictures);
  finish_report(r, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return r.summary;
}

std::vector<std::string> hemisphere_plausibility_problems(const std::string& hemi,
                                                          double median_thickness_mm,
                                                          double white_fa_positive_percent,
                                                          int64_t white_fa_vertices) {
  // Cortex is 1.5-4.5 mm thick: a median far below means the pial flow hardly moved (seen on a
  // real scan with a model whose white map was implausibly small).
  constexpr double kMinMedianThicknessMm = 0.5;
  // Shipped model on the real scans: 81-94 %; the same white surfaces moved 6 mm or mirrored
  // front to back: 52-56 % (the numpy FA of tests/python/test_real_scans.py).
  constexpr double kMinWhiteFaPositivePercent = 65.0;
  std::vector<std::string> out;
  if (median_thickness_mm >= 0 && median_thickness_mm < kMinMedianThicknessMm) {
    char m[160];
    std::snprintf(m, sizeof m,
                  "%s: median thickness %.2f mm: the pial surface hardly left the white surface",
                  hemi.c_str(), median_thickness_mm);
    out.push_back(m);
  }
  if (white_fa_vertices > 0 && white_fa_positive_percent < kMinWhiteFaPositivePercent)
    out.push_back(hemi + ": FA falls outward across only " +
                  fmt_percent(white_fa_positive_percent) +
                  " of the white surface: it may not follow the white matter (see qc/*.png)");
  return out;
}

}  // namespace ddcsr
