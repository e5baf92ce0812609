#include "ddcsr/recon/cohort_report.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ddcsr/error.h"
#include "ddcsr/parcellation/parcellation.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace ddcsr {

namespace {

struct Column {
  std::string name;
  std::string pointer;   // JSON pointer into report.json
  size_t max_chars = 0;  // 0: whole value
};

const std::vector<Column>& columns() {
  static const std::vector<Column> table = [] {
    std::vector<Column> c = {{"seconds", "/seconds"},
                             {"peak_rss_mb", "/peak_rss_mb"},
                             {"mask_ml", "/mask/volume_ml"},
                             // Enough of the checksum to tell models apart in a table.
                             {"model_sha256", "/model/sha256", 12},
                             {"ddcsr_version", "/ddcsr/version"}};
    for (const std::string h : {"lh", "rh"}) {
      const std::string s = "/surfaces/" + h;
      for (const std::string surf : {"white", "pial"}) {
        c.push_back({h + "_" + surf + "_euler", s + "/" + surf + "/euler"});
        c.push_back({h + "_" + surf + "_sif", s + "/" + surf + "/self_intersecting_faces"});
      }
      c.push_back({h + "_thickness_median", s + "/thickness_mm/median"});
      c.push_back({h + "_zero_thickness_vertices", s + "/zero_thickness_vertices"});
      c.push_back({h + "_fov_cut_percent", s + "/field_of_view_cut_percent"});
      c.push_back(
          {h + "_white_fa_positive_percent", s + "/dwi_agreement/white_fa_step_positive_percent"});
      c.push_back(
          {h + "_pial_md_positive_percent", s + "/dwi_agreement/pial_md_step_positive_percent"});
      c.push_back({h + "_pial_in_mask_percent", s + "/pial_vertices_in_mask_percent"});
    }
    return c;
  }();
  return table;
}

std::string cell(const json& v, size_t max_chars) {
  std::string text;
  if (v.is_string()) {
    text = v.get<std::string>();
  } else if (v.is_boolean()) {
    text = v.get<bool>() ? "true" : "false";
  } else if (v.is_number_integer() || v.is_number_unsigned()) {
    text = v.dump();
  } else if (v.is_number_float()) {
    // Three decimals, trailing zeros dropped: what a table needs, and integral floats stay short.
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f", v.get<double>());
    text = buf;
    text.erase(text.find_last_not_of('0') + 1);
    if (text.back() == '.') text.pop_back();
    if (text == "-0") text = "0";
  }
  if (max_chars && text.size() > max_chars) text.resize(max_chars);
  return text;
}

std::string tsv_field(std::string s) {
  std::replace_if(
      s.begin(), s.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; }, ' ');
  return s;
}

}  // namespace

const std::vector<std::string>& cohort_report_columns() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const Column& c : columns()) n.push_back(c.name);
    return n;
  }();
  return names;
}

CohortRow read_subject_report(const std::string& id, const std::string& folder) {
  CohortRow row;
  row.id = id;
  row.folder = folder;
  row.values.assign(columns().size(), "");
  const fs::path path = fs::path(folder) / "report.json";
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    row.status = "missing";
    return row;
  }
  json report;
  std::ifstream in(path);
  try {
    report = json::parse(in);
  } catch (const std::exception&) {
    report = json();
  }
  if (!report.is_object()) {
    row.status = "unfinished";
    row.problems.push_back(path.string() + ": not a readable report");
    return row;
  }
  if (report.contains("subject") && report["subject"].is_string())
    row.id = report["subject"].get<std::string>();
  const json status = report.value("status", json());
  row.status = status.is_string() && status.get<std::string>() == "ok" ? "ok" : "unfinished";
  for (size_t i = 0; i < columns().size(); ++i) {
    const json::json_pointer pointer(columns()[i].pointer);
    if (report.contains(pointer)) row.values[i] = cell(report.at(pointer), columns()[i].max_chars);
  }
  if (report.contains("problems") && report["problems"].is_array())
    for (const json& p : report["problems"])
      if (p.is_string()) row.problems.push_back(p.get<std::string>());
  return row;
}

std::vector<CohortRow> find_cohort_reports(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw InputError(root, "not a folder of ddcsr outputs");
  fs::path top = fs::path(root).lexically_normal();
  if (!top.has_filename() && top.has_parent_path()) top = top.parent_path();  // "out/" names out
  std::vector<CohortRow> rows;
  // Depth 0 is root itself (a single subject's folder); 1 and 2 the usual cohort layouts
  // (ROOT/id, ROOT/sub-X/ses-Y).
  std::vector<std::pair<fs::path, int>> stack = {{top, 0}};
  while (!stack.empty()) {
    const auto [dir, depth] = stack.back();
    stack.pop_back();
    if (fs::exists(dir / "report.json", ec)) {
      const std::string rel = dir.lexically_relative(top).string();
      rows.push_back(read_subject_report(rel == "." ? top.filename().string() : rel, dir.string()));
      continue;  // a subject's own folders (surf, qc, sdf) hold no reports
    }
    if (depth >= 2) continue;
    fs::directory_iterator it(dir, ec), end;
    if (ec) throw InputError(dir.string(), "cannot list folder: " + ec.message());
    for (; it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!name.empty() && name[0] != '.' && it->is_directory(ec))
        stack.push_back({it->path(), depth + 1});
    }
  }
  std::sort(rows.begin(), rows.end(),
            [](const CohortRow& a, const CohortRow& b) { return a.id < b.id; });
  return rows;
}

std::vector<CohortRow> gather_cohort_reports(const std::vector<SubjectInput>& subjects) {
  std::vector<CohortRow> rows;
  for (const SubjectInput& s : subjects) rows.push_back(read_subject_report(s.id, s.output_dir));
  return rows;
}

std::string cohort_table_tsv(const std::vector<CohortRow>& rows) {
  std::string out = "id\tstatus";
  for (const std::string& name : cohort_report_columns()) out += "\t" + name;
  out += "\tproblems\tproblem_list\tfolder\n";
  for (const CohortRow& r : rows) {
    out += tsv_field(r.id) + "\t" + r.status;
    for (const std::string& v : r.values) out += "\t" + tsv_field(v);
    std::string list;
    for (const std::string& p : r.problems) list += (list.empty() ? "" : "; ") + p;
    out += "\t" + std::to_string(r.problems.size()) + "\t" + tsv_field(list) + "\t" +
           tsv_field(r.folder) + "\n";
  }
  return out;
}

std::string cohort_regions_tsv(const std::vector<CohortRow>& rows, const std::string& atlas,
                               std::vector<std::string>& without_stats) {
  const std::string& header = region_stats_header();
  std::string out = "id\themi\t" + header + "\n";
  for (const CohortRow& r : rows) {
    if (r.status != "ok") continue;
    bool any = false;
    for (const std::string hemi : {"lh", "rh"}) {
      const fs::path path = fs::path(r.folder) / "stats" / (hemi + "." + atlas + ".tsv");
      std::ifstream in(path);
      if (!in) continue;
      std::string line;
      if (!std::getline(in, line) || line != header)
        throw InputError(path.string(), "not a ddcsr regional statistics table (header differs)");
      any = true;
      while (std::getline(in, line))
        if (!line.empty()) out += tsv_field(r.id) + "\t" + hemi + "\t" + line + "\n";
    }
    if (!any) without_stats.push_back(r.id);
  }
  return out;
}

CohortCounts count_cohort(const std::vector<CohortRow>& rows) {
  CohortCounts c;
  for (const CohortRow& r : rows) {
    if (r.status == "ok") {
      ++c.ok;
      c.ok_with_problems += !r.problems.empty();
    } else if (r.status == "missing") {
      ++c.missing;
    } else {
      ++c.unfinished;
    }
  }
  return c;
}

}  // namespace ddcsr
