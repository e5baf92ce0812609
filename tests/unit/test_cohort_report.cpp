#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ddcsr/error.h"
#include "ddcsr/recon/cohort_report.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace ddcsr;

namespace {

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// A report as recon writes it, with only lh reconstructed.
std::string report(const std::string& subject, const std::string& problems = "[]") {
  return R"({"status": "ok", "subject": ")" + subject + R"(", "seconds": 54.6251,
    "peak_rss_mb": 1322.0, "mask": {"volume_ml": 1396.5}, "ddcsr": {"version": "0.1.0"},
    "model": {"sha256": "75710107eaf80ced359fe6b04edc02e247815cbf82d6806ba68f9b3b0c69ae9f"},
    "surfaces": {"lh": {"white": {"euler": 2, "self_intersecting_faces": 0},
                        "pial": {"euler": 2, "self_intersecting_faces": 3},
                        "thickness_mm": {"mean": 2.6, "median": 2.5400001},
                        "zero_thickness_vertices": 51,
                        "dwi_agreement": {"white_fa_step_positive_percent": 85.0,
                                          "pial_md_step_positive_percent": 75.25},
                        "pial_vertices_in_mask_percent": 96.95}},
    "problems": )" +
         problems + "}";
}

size_t column(const std::string& name) {
  const auto& c = cohort_report_columns();
  const auto it = std::find(c.begin(), c.end(), name);
  EXPECT_NE(it, c.end()) << name;
  return size_t(it - c.begin());
}

std::vector<std::vector<std::string>> parse_tsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    rows.emplace_back();
    std::string field;
    std::istringstream fields(line);
    while (std::getline(fields, field, '\t')) rows.back().push_back(field);
    if (!line.empty() && line.back() == '\t') rows.back().emplace_back();
  }
  return rows;
}

}  // namespace

TEST(CohortReport, ReadsTheMeasuresOfAFinishedSubject) {
  const std::string dir = test::fresh_dir("cohort_report", "one");
  write(fs::path(dir) / "report.json", report("s01", R"(["lh: 51 white vertices lie on pial"])"));
  const CohortRow r = read_subject_report("fallback", dir);
  EXPECT_EQ(r.id, "s01");  // the report names its subject
  EXPECT_EQ(r.status, "ok");
  EXPECT_EQ(r.values[column("seconds")], "54.625");
  EXPECT_EQ(r.values[column("peak_rss_mb")], "1322");
  EXPECT_EQ(r.values[column("mask_ml")], "1396.5");
  EXPECT_EQ(r.values[column("model_sha256")], "75710107eaf8");
  EXPECT_EQ(r.values[column("lh_white_euler")], "2");
  EXPECT_EQ(r.values[column("lh_pial_sif")], "3");
  EXPECT_EQ(r.values[column("lh_thickness_median")], "2.54");
  EXPECT_EQ(r.values[column("lh_zero_thickness_vertices")], "51");
  EXPECT_EQ(r.values[column("lh_white_fa_positive_percent")], "85");
  EXPECT_EQ(r.values[column("lh_pial_md_positive_percent")], "75.25");
  EXPECT_EQ(r.values[column("lh_pial_in_mask_percent")], "96.95");
  EXPECT_EQ(r.values[column("rh_white_euler")], "");  // rh was not reconstructed
  ASSERT_EQ(r.problems.size(), 1u);
}

TEST(CohortReport, ListedSubjectsWithoutAFinishedReportAreNamed) {
  const std::string root = test::fresh_dir("cohort_report", "list");
  write(fs::path(root) / "done" / "report.json", report("done"));
  write(fs::path(root) / "cut" / "report.json", R"({"status": "ok", "surfa)");
  write(fs::path(root) / "running" / "report.json", R"({"status": "running"})");
  std::vector<SubjectInput> subjects(4);
  const char* ids[] = {"never", "done", "cut", "running"};
  for (int i = 0; i < 4; ++i) subjects[i].id = ids[i], subjects[i].output_dir = root + "/" + ids[i];
  const auto rows = gather_cohort_reports(subjects);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].status, "missing");
  EXPECT_EQ(rows[0].id, "never");
  EXPECT_EQ(rows[1].status, "ok");
  EXPECT_EQ(rows[2].status, "unfinished");
  EXPECT_EQ(rows[3].status, "unfinished");
  const CohortCounts n = count_cohort(rows);
  EXPECT_EQ(n.ok, 1);
  EXPECT_EQ(n.missing, 1);
  EXPECT_EQ(n.unfinished, 2);
}

TEST(CohortReport, FindsReportsInListAndBidsLayoutsAndSkipsHiddenFolders) {
  const std::string root = test::fresh_dir("cohort_report", "find");
  write(fs::path(root) / "sub-02" / "report.json", report("sub-02"));
  write(fs::path(root) / "sub-01" / "ses-2" / "report.json", report("sub-01_ses-2"));
  write(fs::path(root) / "sub-01" / "ses-1" / "report.json", report("sub-01_ses-1"));
  write(fs::path(root) / ".sub-03.tmp-host~1~1" / "report.json", report("sub-03"));
  write(fs::path(root) / "a" / "b" / "c" / "report.json", report("too-deep"));
  const auto rows = find_cohort_reports(root + "/");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].id, "sub-01_ses-1");
  EXPECT_EQ(rows[1].id, "sub-01_ses-2");
  EXPECT_EQ(rows[2].id, "sub-02");
  EXPECT_EQ(rows[0].folder, root + "/sub-01/ses-1");
  // A single subject's folder is a cohort of one.
  EXPECT_EQ(find_cohort_reports(root + "/sub-02").size(), 1u);
  EXPECT_THROW(find_cohort_reports(root + "/absent"), InputError);
}

TEST(CohortReport, TableHasOneRowPerSubjectAndNoStrayTabs) {
  const std::string root = test::fresh_dir("cohort_report", "table");
  write(fs::path(root) / "s1" / "report.json", report("s1", R"(["a\tb", "c\nd"])"));
  SubjectInput missing;
  missing.id = "s2";
  missing.output_dir = root + "/s2";
  std::vector<CohortRow> rows = find_cohort_reports(root);
  rows.push_back(gather_cohort_reports({missing})[0]);
  const auto table = parse_tsv(cohort_table_tsv(rows));
  ASSERT_EQ(table.size(), 3u);
  const size_t width = cohort_report_columns().size() + 5;
  for (const auto& row : table) EXPECT_EQ(row.size(), width);
  EXPECT_EQ(table[0][0], "id");
  EXPECT_EQ(table[0][width - 3], "problems");
  EXPECT_EQ(table[1][0], "s1");
  EXPECT_EQ(table[1][1], "ok");
  EXPECT_EQ(table[1][width - 3], "2");
  EXPECT_EQ(table[1][width - 2], "a b; c d");
  EXPECT_EQ(table[2][1], "missing");
  EXPECT_EQ(table[2][width - 3], "0");
  EXPECT_EQ(table[2][width - 1], root + "/s2");
}

TEST(CohortReport, RegionalTableGathersEachFinishedSubjectsStatistics) {
  const std::string root = test::fresh_dir("cohort_report", "regions");
  const std::string header =
      "region\tvertices\twhite_area_mm2\tpial_area_mm2\tgrey_volume_mm3\tthickness_mean_mm\t"
      "thickness_sd_mm\n";
  write(fs::path(root) / "s1" / "report.json", report("s1"));
  write(fs::path(root) / "s1" / "stats" / "lh.aparc.tsv",
        header + "bankssts\t10\t1.0\t2.0\t3.0\t2.500\t0.100\ninsula\t20\t4\t5\t6\t3.000\t0.200\n");
  write(fs::path(root) / "s1" / "stats" / "rh.aparc.tsv",
        header + "bankssts\t11\t1.5\t2.5\t3.5\t2.600\t0.150\n");
  write(fs::path(root) / "s2" / "report.json", report("s2"));  // finished, never parcellated
  std::vector<std::string> without;
  const auto table = parse_tsv(cohort_regions_tsv(find_cohort_reports(root), "aparc", without));
  ASSERT_EQ(table.size(), 4u);
  EXPECT_EQ(table[0][0], "id");
  EXPECT_EQ(table[0][2], "region");
  EXPECT_EQ(table[1], (std::vector<std::string>{"s1", "lh", "bankssts", "10", "1.0", "2.0", "3.0",
                                                "2.500", "0.100"}));
  EXPECT_EQ(table[2][2], "insula");
  EXPECT_EQ(table[3][1], "rh");
  EXPECT_EQ(without, std::vector<std::string>{"s2"});
  // A file that is not ddcsr's statistics is named, not silently read.
  write(fs::path(root) / "s2" / "stats" / "lh.aparc.tsv", "StructName\tNumVert\n");
  without.clear();
  EXPECT_THROW(cohort_regions_tsv(find_cohort_reports(root), "aparc", without), InputError);
}
