// ddcsr recon: cortical surfaces for one subject, a cohort list, a BIDS dataset or one task of a
// cluster job array.
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "cli/command.h"
#include "cli/progress.h"
#include "ddcsr/error.h"
#include "ddcsr/io/atomic_file.h"
#include "ddcsr/parcellation/parcellation.h"
#include "ddcsr/recon/cohort.h"
#include "ddcsr/recon/pipeline.h"
#include "ddcsr/version.h"

namespace fs = std::filesystem;

namespace {

struct ReconCli {
  std::string dwi, output, bval, bvec, mask, subjects, bids, model, device = "auto", hemi = "auto";
  std::optional<long> array_index;
  std::optional<int> array_base;
  double sdf_spacing = 1.0;
  bool force = false, save_sdf = false, no_qc = false, no_mirror = false, no_place = false,
       no_surface_maps = false;
  std::string place = "white,pial";
  std::string atlases = "aparc";
  int64_t vertices = 150000;
  std::string command_line;
};

// A log file inside the subject's (temporary) folder for the duration of one subject.
class SubjectLog {
 public:
  explicit SubjectLog(const std::string& path) {
    sink_ = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, true);
    sink_->set_pattern("[%Y-%m-%d %H:%M:%S.%e] %l: %v");
    sink_->set_level(spdlog::level::debug);
    spdlog::default_logger()->sinks().push_back(sink_);
  }
  ~SubjectLog() {
    spdlog::default_logger()->flush();
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }

 private:
  spdlog::sink_ptr sink_;
};

enum class Outcome { Done, Skipped, Failed };

struct SubjectResult {
  std::string id;
  Outcome outcome = Outcome::Failed;
  double seconds = 0;
  std::string message;
  bool input_error = false;
};

SubjectResult run_subject(const ddcsr::SubjectInput& subject, const ddcsr::ReconOptions& options,
                          bool force) {
  SubjectResult result;
  result.id = subject.id;
  if (!force && ddcsr::subject_finished(subject.output_dir)) {
    result.outcome = Outcome::Skipped;
    result.message = "already finished (report.json present); --force to redo";
    spdlog::info("{}: {}", subject.id, result.message);
    return result;
  }
  try {
    ddcsr::AtomicFolder folder(subject.output_dir);
    ddcsr::ReconSummary summary;
    {
      SubjectLog log((fs::path(folder.path()) / "log.txt").string());
      spdlog::info("{}: reconstructing {} into {}", subject.id, subject.dwi, subject.output_dir);
      std::unique_ptr<ddcsr::cli::ProgressBar> bar;
      ddcsr::ReconObserver observer;
      observer.stage_started = [&](const std::string& stage) {
        bar = std::make_unique<ddcsr::cli::ProgressBar>(subject.id + " " + stage);
      };
      observer.stage_finished = [&](const ddcsr::StageUsage& u) {
        if (bar) bar->done();
        bar.reset();
        spdlog::debug("{}: {} took {:.1f} s, peak {:.0f} MB", subject.id, u.name, u.seconds,
                      u.peak_rss_mb);
      };
      observer.progress = [&](double f) {
        if (bar) bar->update(f);
      };
      observer.note = [&](const std::string& m) { spdlog::info("{}: {}", subject.id, m); };
      observer.warning = [&](const std::string& m) { spdlog::warn("{}: {}", subject.id, m); };
      summary = ddcsr::reconstruct_subject(subject, options, folder.path(), observer);
      spdlog::info("{}: done in {:.1f} s, peak memory {:.0f} MB{}", subject.id, summary.seconds,
                   summary.peak_rss_mb,
                   summary.problems.empty() ? ""
                                            : ", with " + std::to_string(summary.problems.size()) +
                                                  " problem(s) reported");
    }
    folder.commit();
    result.outcome = Outcome::Done;
    result.seconds = summary.seconds;
    spdlog::info("{}: surfaces in {}/surf, QC pictures in {}/qc", subject.id, subject.output_dir,
                 subject.output_dir);
  } catch (const ddcsr::InputError& e) {
    result.message = e.what();
    result.input_error = true;
    spdlog::error("{}: {}", subject.id, result.message);
  } catch (const std::exception& e) {
    result.message = std::string("internal error: ") + e.what();
    spdlog::error("{}: {}", subject.id, result.message);
  }
  return result;
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_of(" \t\n'\"\\$`") == std::string::npos) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

void write_bids_description(const std::string& root) {
  const fs::path path = fs::path(root) / "dataset_description.json";
  std::error_code ec;
  if (fs::exists(path, ec)) return;
  fs::create_directories(root, ec);
  ddcsr::write_file_atomic(
      path.string(),
      std::string("{\n  \"Name\": \"ddcsr cortical surfaces\",\n  \"BIDSVersion\": \"1.8.0\",\n"
                  "  \"DatasetType\": \"derivative\",\n  \"GeneratedBy\": [{\"Name\": \"ddcsr\", "
                  "\"Version\": \"") +
          ddcsr::kVersion + "\"}]\n}\n");
}

int run(const ReconCli& o) {
  const int sources = !o.dwi.empty() + !o.subjects.empty() + !o.bids.empty();
  if (sources != 1)
    throw ddcsr::UsageError("give exactly one of DWI, --subjects LIST.tsv or --bids BIDS_ROOT");
  if ((!o.bval.empty() || !o.bvec.empty() || !o.mask.empty()) && o.dwi.empty())
    throw ddcsr::UsageError(
        "--bval/--bvec/--mask apply to a single DWI; give them per subject in the list");

  ddcsr::ReconOptions options;
  options.model_path = o.model.empty() ? ddcsr::default_model_path("/proc/self/exe") : o.model;
  options.device = o.device;
  options.hemi = o.hemi;
  options.save_sdf = o.save_sdf;
  options.qc = !o.no_qc;
  options.inference.mirror_average = !o.no_mirror;
  options.place = !o.no_place && o.place != "none";
  options.surface_maps = !o.no_surface_maps;
  options.atlases.clear();
  if (o.atlases != "none") {
    std::stringstream list(o.atlases);
    for (std::string a; std::getline(list, a, ',');)
      if (!a.empty()) options.atlases.push_back(a);
  }
  options.fsaverage_dir = ddcsr::default_fsaverage_dir("/proc/self/exe");
  // Checked now, not after minutes of reconstruction.
  for (const std::string& a : options.atlases)
    for (const std::string hemi : {"lh", "rh"}) {
      const fs::path annot =
          fs::path(options.fsaverage_dir) / "label" / (hemi + "." + a + ".annot");
      if (!fs::exists(annot)) throw ddcsr::UsageError("--atlas " + a + ": no " + annot.string());
    }
  options.placement.place_white = o.place == "white,pial" || o.place == "white";
  options.placement.place_pial = o.place == "white,pial" || o.place == "pial";
  options.diffcoseg.target_vertices = o.vertices;
  options.sdf_spacing_mm = o.sdf_spacing;
  options.command_line = o.command_line;

  // The single subject's folder without a trailing slash ("-o subj/" names subj), and its parent,
  // where its temporary folder lives (the current folder for "-o subj").
  fs::path single_dir = fs::path(o.output).lexically_normal();
  if (!single_dir.has_filename()) single_dir = single_dir.parent_path();
  const fs::path single_parent =
      single_dir.has_parent_path() ? single_dir.parent_path() : fs::path(".");

  std::vector<ddcsr::SubjectInput> subjects;
  if (!o.dwi.empty()) {
    ddcsr::SubjectInput s;
    s.dwi = o.dwi, s.bval = o.bval, s.bvec = o.bvec, s.mask = o.mask;
    s.output_dir = o.output;
    s.id = single_dir.filename().string();
    if (s.id.empty()) s.id = "subject";
    subjects.push_back(s);
  } else if (!o.subjects.empty()) {
    subjects = ddcsr::read_subject_list(o.subjects, o.output);
  } else {
    subjects = ddcsr::find_bids_subjects(o.bids, o.output);
    write_bids_description(o.output);
  }
  const int removed =
      ddcsr::remove_stale_temporaries(o.dwi.empty() ? o.output : single_parent.string());
  if (removed) spdlog::info("removed {} temporary folder(s) left by killed runs", removed);

  std::string index_source;
  const auto index = ddcsr::array_index_from_environment(o.array_index, &index_source);
  if (index && subjects.size() > 1) {
    // SGE and LSF number array tasks from 1; SLURM and PBS scripts usually from 0.
    const int base = o.array_base ? *o.array_base
                     : (index_source == "SGE_TASK_ID" || index_source == "LSB_JOBINDEX") ? 1
                                                                                         : 0;
    const size_t position = ddcsr::subject_position(*index, base, subjects.size());
    spdlog::info("array task {} (from {}, base {}): subject {} of {}", *index, index_source, base,
                 position + 1, subjects.size());
    subjects = {subjects[position]};
  }

  std::vector<SubjectResult> results;
  for (const auto& s : subjects) results.push_back(run_subject(s, options, o.force));

  int done = 0, skipped = 0, failed = 0;
  bool all_input = true;
  for (const auto& r : results) {
    done += r.outcome == Outcome::Done;
    skipped += r.outcome == Outcome::Skipped;
    if (r.outcome == Outcome::Failed) ++failed, all_input = all_input && r.input_error;
  }
  if (results.size() > 1) {
    spdlog::info("summary: {} done, {} skipped, {} failed", done, skipped, failed);
    for (const auto& r : results)
      if (r.outcome == Outcome::Failed) spdlog::info("  failed {}: {}", r.id, r.message);
  }
  if (failed == 0) return ddcsr::kExitOk;
  return all_input ? ddcsr::kExitBadInput : ddcsr::kExitInternal;
}

ddcsr::cli::Command make_recon_command() {
  ddcsr::cli::Command c;
  c.name = "recon";
  c.synopsis =
      "Reconstruct white and pial surfaces from a diffusion scan (one subject, a list, BIDS, or a "
      "job array)";
  c.description =
      "Runs the whole pipeline: brain mask and rotation-invariant diffusion features, SDFNet "
      "signed\n"
      "distance maps, DiffCoSeg surfaces (closed, genus 0, intersection-free), outputs.\n"
      "Input: diffusion data already corrected for motion, eddy currents and susceptibility "
      "distortion\n"
      "(FSL eddy/topup, MRtrix3 dwifslpreproc), with .bval/.bvec beside the image or given.\n"
      "Writes OUT/surf/{lh,rh}.{white,pial} (FreeSurfer, with the input's volume geometry),\n"
      "OUT/surf/{lh,rh}.{white,pial}.surf.gii (scanner RAS), OUT/surf/{lh,rh}.thickness,\n"
      "OUT/qc/{axial,coronal,sagittal}.png, OUT/report.json and OUT/log.txt.\n"
      "Each subject is built in a hidden temporary folder and renamed into place when complete; a\n"
      "subject whose report.json says \"ok\" is skipped unless --force. In a list, one failing "
      "subject\n"
      "never stops the others; the exit code is non-zero when any failed.\n"
      "Job arrays: --array-index N, or SLURM_ARRAY_TASK_ID / PBS_ARRAY_INDEX / SGE_TASK_ID /\n"
      "LSB_JOBINDEX, runs the one subject at that position. Base 0 for SLURM and PBS "
      "(--array=0-N),\n"
      "1 for SGE and LSF (which start at 1); --array-base overrides.\n"
      "Hemispheres: --hemi auto (default) reconstructs those the scan holds, decided from the\n"
      "brain mask's shape (log and report.json hemispheres_present). A scan of one hemisphere\n"
      "(ex vivo, hemispherectomy) is reconstructed whole, as lh or rh by which side its flat\n"
      "medial face is on; lying otherwise than in a head, it needs --hemi lh or rh. A hemisphere\n"
      "that is not in the image is never written: --hemi both or rh on a left hemisphere is an\n"
      "input error (exit 3).";
  c.references = {
      "Li, Chen, Sochen, Zhang, Westin, Rathi, O'Donnell, Pasternak, Zhang (2025): DDCSR."};
  c.order = 10;
  c.setup = [](CLI::App& app) {
    auto o = std::make_shared<ReconCli>();
    app.add_option("dwi", o->dwi, "4D diffusion NIfTI of one subject");
    app.add_option("-o,--output", o->output,
                   "Output folder (the subject's, or the root for lists and BIDS)")
        ->required();
    app.add_option("--bval", o->bval, "b-value file (default: beside the image)");
    app.add_option("--bvec", o->bvec, "b-vector file, FSL convention (default: beside the image)");
    app.add_option("--mask", o->mask, "Brain mask on the DWI's grid (default: computed)");
    app.add_option("--subjects", o->subjects, "TSV with columns id, dwi[, bval, bvec, mask]");
    app.add_option("--bids", o->bids, "BIDS dataset: every sub-*/[ses-*/]dwi/*_dwi.nii.gz");
    app.add_option("--array-index", o->array_index, "Run only the subject at this job-array index");
    app.add_option("--array-base", o->array_base,
                   "Index of the first subject (default 0; 1 for SGE/LSF)")
        ->check(CLI::IsMember({0, 1}));
    app.add_option("--model", o->model,
                   "SDFNet model file (default: the shipped models/sdfnet.pt)");
    app.add_option("--device", o->device, "auto, cpu or cuda")
        ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    app.add_option("--hemi", o->hemi,
                   "auto (the hemispheres the scan holds), both, lh or rh; on a scan of one "
                   "hemisphere, lh or rh names it when its orientation does not tell")
        ->check(CLI::IsMember({"auto", "lh", "rh", "both"}))
        ->capture_default_str();
    app.add_option("--vertices", o->vertices, "Target vertices per surface")
        ->check(CLI::Range(2000, 1000000));
    app.add_option("--sdf-spacing", o->sdf_spacing,
                   "Grid (mm) for the surfaces: the network's maps are resampled to it by cubic "
                   "B-spline; 0 = the network's grid")
        ->check(CLI::Range(0.0, 4.0))
        ->capture_default_str();
    app.add_flag("--save-sdf", o->save_sdf,
                 "Also write the signed distance maps the surfaces were made from (sdf/*.nii.gz)");
    app.add_flag("--no-qc", o->no_qc, "Skip the QC pictures");
    app.add_flag("--no-mirror", o->no_mirror,
                 "One SDFNet pass instead of averaging it with the left-right mirrored pass");
    app.add_option("--place", o->place,
                   "Surfaces moved onto the scan's own tissue boundaries after DiffCoSeg: "
                   "white,pial, pial, white or none")
        ->check(CLI::IsMember({"white,pial", "pial", "white", "none"}))
        ->capture_default_str();
    app.add_flag("--no-place", o->no_place,
                 "Keep the surfaces where the network's maps put them (--place none)");
    app.add_flag("--no-surface-maps", o->no_surface_maps,
                 "Skip the inflated, spherical and midthickness surfaces and sulc/curv (and so "
                 "the registration to fsaverage)");
    app.add_option("--atlas", o->atlases,
                   "Atlases on fsaverage5 to label the cortex by, comma-separated (aparc = "
                   "Desikan-Killiany, aparc.a2009s = Destrieux), or none")
        ->capture_default_str();
    app.add_flag("--force", o->force, "Redo subjects that are already finished");
    return [o]() -> int {
      std::ifstream cmdline("/proc/self/cmdline");
      std::string arg, line;
      while (std::getline(cmdline, arg, '\0')) line += (line.empty() ? "" : " ") + shell_quote(arg);
      o->command_line = line;
      return run(*o);
    };
  };
  return c;
}

}  // namespace

DDCSR_COMMAND(make_recon_command());
