#include "ddcsr/recon/cohort.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "ddcsr/error.h"
#include "ddcsr/io/atomic_file.h"

namespace fs = std::filesystem;

namespace ddcsr {

namespace {

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, '\t')) {
    field.erase(0, field.find_first_not_of(" \r"));
    field.erase(field.find_last_not_of(" \r") + 1);
    out.push_back(field);
  }
  if (!line.empty() && line.back() == '\t') out.emplace_back();
  return out;
}

std::string resolve(const fs::path& base, const std::string& p) {
  if (p.empty()) return p;
  const fs::path path(p);
  return path.is_absolute() ? p : (base / path).lexically_normal().string();
}

// Ids become folder names: keep them to a safe alphabet.
bool valid_id(const std::string& id) {
  static const std::regex pattern("[A-Za-z0-9][A-Za-z0-9._-]*");
  return id.size() <= 200 && std::regex_match(id, pattern) && id.find("..") == std::string::npos;
}

}  // namespace

std::vector<SubjectInput> read_subject_list(const std::string& tsv_path,
                                            const std::string& output_root) {
  std::ifstream in(tsv_path);
  if (!fs::exists(tsv_path)) throw InputError(tsv_path, "subject list not found");
  if (!in) throw InputError(tsv_path, "cannot read subject list");
  const fs::path base =
      fs::path(tsv_path).has_parent_path() ? fs::path(tsv_path).parent_path() : fs::path(".");
  std::string line;
  int line_no = 0;
  std::map<std::string, size_t> column;
  std::vector<SubjectInput> subjects;
  std::set<std::string> seen;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.size() > 65536)
      throw InputError(tsv_path, "line " + std::to_string(line_no) + " is too long");
    const std::string trimmed = line.substr(0, line.find_last_not_of(" \r\t") + 1);
    if (trimmed.empty() || trimmed[0] == '#') continue;
    const auto fields = split_tabs(trimmed);
    if (column.empty()) {
      for (size_t i = 0; i < fields.size(); ++i) {
        if (column.count(fields[i]))
          throw InputError(tsv_path, "header names column '" + fields[i] + "' twice");
        column[fields[i]] = i;
      }
      for (const char* required : {"id", "dwi"})
        if (!column.count(required))
          throw InputError(tsv_path,
                           std::string("header has no '") + required +
                               "' column (expected tab-separated: id, dwi[, bval, bvec, mask])");
      continue;
    }
    auto get = [&](const char* name) -> std::string {
      const auto it = column.find(name);
      return it == column.end() || it->second >= fields.size() ? std::string() : fields[it->second];
    };
    SubjectInput s;
    s.id = get("id");
    s.dwi = resolve(base, get("dwi"));
    s.bval = resolve(base, get("bval"));
    s.bvec = resolve(base, get("bvec"));
    s.mask = resolve(base, get("mask"));
    const std::string where = "line " + std::to_string(line_no) + ": ";
    if (s.id.empty() || s.dwi.empty()) throw InputError(tsv_path, where + "empty id or dwi field");
    if (!valid_id(s.id))
      throw InputError(tsv_path, where + "id '" + s.id.substr(0, 40) +
                                     "' must be letters, digits, '.', '_' or '-'");
    if (!seen.insert(s.id).second)
      throw InputError(tsv_path, where + "duplicate id '" + s.id + "'");
    s.output_dir = (fs::path(output_root) / s.id).string();
    subjects.push_back(std::move(s));
  }
  if (subjects.empty()) throw InputError(tsv_path, "subject list has no subjects");
  return subjects;
}

std::vector<SubjectInput> find_bids_subjects(const std::string& bids_root,
                                             const std::string& output_root) {
  std::error_code ec;
  if (!fs::is_directory(bids_root, ec)) throw InputError(bids_root, "BIDS folder not found");
  static const std::regex dwi_name(
      "(sub-[A-Za-z0-9]+(_[A-Za-z0-9]+-[A-Za-z0-9]+)*)_dwi\\.nii(\\.gz)?");
  std::vector<SubjectInput> subjects;
  auto scan_dwi_folder = [&](const fs::path& dwi_dir, const fs::path& relative_out) {
    if (!fs::is_directory(dwi_dir, ec)) return;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dwi_dir, ec)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::smatch m;
      const std::string name = f.filename().string();
      if (!std::regex_match(name, m, dwi_name)) continue;
      SubjectInput s;
      s.id = m[1].str();
      s.dwi = f.string();
      s.output_dir = (fs::path(output_root) / relative_out).string();
      subjects.push_back(std::move(s));
    }
  };
  std::vector<fs::path> subs;
  for (const auto& e : fs::directory_iterator(bids_root, ec))
    if (e.is_directory() && e.path().filename().string().rfind("sub-", 0) == 0)
      subs.push_back(e.path());
  std::sort(subs.begin(), subs.end());
  for (const auto& sub : subs) {
    scan_dwi_folder(sub / "dwi", sub.filename());
    std::vector<fs::path> sessions;
    for (const auto& e : fs::directory_iterator(sub, ec))
      if (e.is_directory() && e.path().filename().string().rfind("ses-", 0) == 0)
        sessions.push_back(e.path());
    std::sort(sessions.begin(), sessions.end());
    for (const auto& ses : sessions) scan_dwi_folder(ses / "dwi", sub.filename() / ses.filename());
  }
  // Several runs/acquisitions in one session: each gets its own folder named by its entities.
  std::map<std::string, int> per_folder;
  for (const auto& s : subjects) per_folder[s.output_dir]++;
  for (auto& s : subjects)
    if (per_folder[s.output_dir] > 1) s.output_dir = (fs::path(s.output_dir) / s.id).string();
  if (subjects.empty()) throw InputError(bids_root, "no sub-*/[ses-*/]dwi/*_dwi.nii[.gz] found");
  return subjects;
}

std::optional<long> array_index_from_environment(std::optional<long> explicit_index,
                                                 std::string* source) {
  if (explicit_index) {
    if (source) *source = "--array-index";
    return explicit_index;
  }
  for (const char* name :
       {"SLURM_ARRAY_TASK_ID", "PBS_ARRAY_INDEX", "SGE_TASK_ID", "LSB_JOBINDEX"}) {
    const char* value = std::getenv(name);
    if (!value || !*value) continue;
    // SGE sets "undefined" outside array jobs.
    char* end = nullptr;
    const long v = std::strtol(value, &end, 10);
    if (*end != '\0') continue;
    if (std::string(name) == "LSB_JOBINDEX" && v == 0) continue;  // LSF: 0 outside arrays
    if (source) *source = name;
    return v;
  }
  return std::nullopt;
}

size_t subject_position(long index, int base, size_t count) {
  const long position = index - base;
  if (position < 0 || static_cast<size_t>(position) >= count)
    throw UsageError("array index " + std::to_string(index) + " (base " + std::to_string(base) +
                     ") is outside the subject list of " + std::to_string(count) + " subjects");
  return static_cast<size_t>(position);
}

bool subject_finished(const std::string& output_dir) {
  std::ifstream in(fs::path(output_dir) / "report.json");
  if (!in) return false;
  try {
    const auto report = nlohmann::json::parse(in);
    return report.is_object() && report.value("status", "") == "ok";
  } catch (const std::exception&) {
    return false;
  }
}

AtomicFolder::AtomicFolder(const std::string& final_dir)
    : final_dir_(fs::path(final_dir).lexically_normal().string()) {
  if (!final_dir_.empty() && final_dir_.back() == '/') final_dir_.pop_back();
  const fs::path final_path(final_dir_);
  const fs::path parent = final_path.has_parent_path() ? final_path.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw InputError(parent.string(), "cannot create output folder: " + ec.message());
  if (::access(parent.c_str(), W_OK) != 0)
    throw InputError(parent.string(), "output folder is not writable");
  temp_dir_ = (parent / ("." + final_path.filename().string() + temporary_token())).string();
  fs::create_directory(temp_dir_, ec);
  if (ec) throw InputError(temp_dir_, "cannot create temporary output folder: " + ec.message());
}

AtomicFolder::~AtomicFolder() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(temp_dir_, ec);
  }
}

void AtomicFolder::commit() {
  std::error_code ec;
  std::string old;
  if (fs::exists(final_dir_, ec)) {
    // Swap the finished folder and the previous result in one step. Two renames (below) leave a
    // moment when neither is under the final name; a kill there would leave both as temporaries
    // of a dead process, which the next run deletes. After the swap the previous result is the
    // temporary and a kill costs nothing.
    if (::renameat2(AT_FDCWD, temp_dir_.c_str(), AT_FDCWD, final_dir_.c_str(), RENAME_EXCHANGE) ==
        0) {
      committed_ = true;
      fs::remove_all(temp_dir_, ec);
      return;
    }
    // File systems without RENAME_EXCHANGE (NFS): move the previous result aside first, as rename
    // cannot replace a non-empty folder.
    old = (fs::path(final_dir_).parent_path() /
           ("." + fs::path(final_dir_).filename().string() + temporary_token()))
              .string();
    fs::rename(final_dir_, old, ec);
    if (ec) throw InputError(final_dir_, "cannot replace previous output: " + ec.message());
  }
  fs::rename(temp_dir_, final_dir_, ec);
  if (ec) {
    if (!old.empty()) fs::rename(old, final_dir_, ec);
    throw InputError(final_dir_, "cannot move finished output into place");
  }
  committed_ = true;
  if (!old.empty()) fs::remove_all(old, ec);
}

int remove_stale_temporaries(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return 0;
  std::vector<fs::path> stale;
  for (auto it = fs::recursive_directory_iterator(
           root, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (!is_stale_temporary(it->path().filename().string())) continue;
    stale.push_back(it->path());
    if (it->is_directory()) it.disable_recursion_pending();
  }
  int removed = 0;
  for (const auto& p : stale) removed += fs::remove_all(p, ec) > 0 ? 1 : 0;
  return removed;
}

}  // namespace ddcsr
