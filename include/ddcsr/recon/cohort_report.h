// One table of a cohort's outcome, gathered from the report.json in each subject's folder: what a
// lab reads after a job array to find the subjects to rerun (missing, unfinished) and the ones to
// look at (problems, thin cortex, surfaces that disagree with the scan), without opening every
// folder. Job-array tasks never write a shared file; the table is made afterwards, read-only.
#pragma once
#include <string>
#include <vector>

#include "ddcsr/recon/cohort.h"

namespace ddcsr {

struct CohortRow {
  std::string id;
  std::string folder;
  // "ok": a finished report; "missing": no report.json (not run yet, failed, or still running:
  // unfinished work lives in a hidden temporary folder); "unfinished": a report.json that does
  // not parse or whose status is not "ok".
  std::string status;
  std::vector<std::string> values;  // one per cohort_report_columns(); "" where not reported
  std::vector<std::string> problems;
};

// The measures of a row, in table order (`lh_thickness_median`, `rh_white_sif`, ...).
const std::vector<std::string>& cohort_report_columns();

// The row of one subject's output folder; `id` is used when the report does not name its subject.
CohortRow read_subject_report(const std::string& id, const std::string& folder);

// Every folder under `root` (itself included, down to three levels, so the BIDS-derivatives layout
// sub-X/ses-Y is found; hidden folders skipped) that holds a report.json, sorted by subject id.
// InputError when `root` is not a readable folder.
std::vector<CohortRow> find_cohort_reports(const std::string& root);

// The listed subjects in list order, each "missing" when its folder has no report.
std::vector<CohortRow> gather_cohort_reports(const std::vector<SubjectInput>& subjects);

// Tab-separated, a header row then one row per subject: id, status, the measures, the number of
// problems, the problems ("; "-joined), the folder. Tabs and newlines inside a field become spaces.
std::string cohort_table_tsv(const std::vector<CohortRow>& rows);

// One regional table for a cohort, in long form (one row per subject, hemisphere and region, as
// R and pandas read it): every row of each finished subject's stats/{lh,rh}.ATLAS.tsv (written by
// recon's parcellation stage or `ddcsr parcellate`), prefixed by the subject's id and the
// hemisphere. Finished subjects without that atlas's statistics are appended to `without_stats`.
// InputError naming the file when a statistics file is not one of ddcsr's.
std::string cohort_regions_tsv(const std::vector<CohortRow>& rows, const std::string& atlas,
                               std::vector<std::string>& without_stats);

struct CohortCounts {
  int ok = 0, ok_with_problems = 0, missing = 0, unfinished = 0;
};
CohortCounts count_cohort(const std::vector<CohortRow>& rows);

}  // namespace ddcsr
