// ddcsr report: one table of a cohort's outcome from the report.json of every subject.
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <cstdio>

#include "cli/command.h"
#include "ddcsr/error.h"
#include "ddcsr/io/atomic_file.h"
#include "ddcsr/recon/cohort.h"
#include "ddcsr/recon/cohort_report.h"

namespace {

struct ReportCli {
  std::string root, subjects, bids, output, regions;
};

ddcsr::cli::Command make_report_command() {
  ddcsr::cli::Command c;
  c.name = "report";
  c.synopsis = "Tabulate the outcome of a cohort of recon runs (one TSV row per subject)";
  c.description =
      "Reads ROOT/**/report.json as `ddcsr recon` wrote them (a single subject's folder, a\n"
      "--subjects list's ROOT/ID, or a --bids ROOT/sub-X[/ses-Y]) and prints one tab-separated\n"
      "row per subject: id, status, time and memory, the model's checksum, per hemisphere the\n"
      "Euler characteristic and self-intersecting faces of white and pial, median thickness,\n"
      "zero-thickness vertices, vertices where the field of view cuts the brain, the share of\n"
      "white vertices across which FA falls outward and of pial vertices across which MD rises\n"
      "outward, pial vertices within the brain mask, then the number of problems, the problems\n"
      "themselves and the folder.\n"
      "status: ok (finished); missing (no report: not run, failed, or still running); unfinished\n"
      "(a report that does not parse or is not complete). Given the same --subjects list or\n"
      "--bids dataset as recon, every listed subject has a row, in list order, so the subjects a\n"
      "job array did not finish show as missing; otherwise the rows are the reports found,\n"
      "sorted by id. Reads only: safe while array tasks still run.\n"
      "Example, the subjects to rerun or to look at:\n"
      "  ddcsr report ROOT --subjects LIST.tsv -o ROOT/cohort.tsv\n"
      "  awk -F'\\t' 'NR > 1 && ($2 != \"ok\" || $(NF-2) > 0) {print $1, $2}' ROOT/cohort.tsv\n"
      "With --regions ATLAS (aparc, aparc.a2009s): instead, one regional table of the finished\n"
      "subjects, one row per subject, hemisphere and region (vertices, white and pial area,\n"
      "grey-matter volume, thickness mean and SD), from their stats/{lh,rh}.ATLAS.tsv:\n"
      "  ddcsr report ROOT --regions aparc -o ROOT/aparc_regions.tsv";
  c.order = 12;
  c.setup = [](CLI::App& app) {
    auto o = std::make_shared<ReportCli>();
    app.add_option("root", o->root, "Output folder of recon (a subject's, or a cohort's root)")
        ->required();
    app.add_option("--subjects", o->subjects,
                   "The subject list given to recon: a row for every listed subject");
    app.add_option("--bids", o->bids, "The BIDS dataset given to recon: a row for every DWI");
    app.add_option("-o,--output", o->output, "Write the table to this file instead of stdout");
    app.add_option("--regions", o->regions,
                   "Gather the regional statistics of this atlas instead (aparc, aparc.a2009s)");
    return [o]() -> int {
      if (!o->subjects.empty() && !o->bids.empty())
        throw ddcsr::UsageError("give at most one of --subjects and --bids");
      std::vector<ddcsr::CohortRow> rows;
      if (!o->subjects.empty())
        rows = ddcsr::gather_cohort_reports(ddcsr::read_subject_list(o->subjects, o->root));
      else if (!o->bids.empty())
        rows = ddcsr::gather_cohort_reports(ddcsr::find_bids_subjects(o->bids, o->root));
      else
        rows = ddcsr::find_cohort_reports(o->root);
      std::vector<std::string> without_stats;
      const std::string table = o->regions.empty()
                                    ? ddcsr::cohort_table_tsv(rows)
                                    : ddcsr::cohort_regions_tsv(rows, o->regions, without_stats);
      if (o->output.empty())
        std::fputs(table.c_str(), stdout);
      else
        ddcsr::write_file_atomic(o->output, table);
      const ddcsr::CohortCounts n = ddcsr::count_cohort(rows);
      spdlog::info("{} subject(s): {} ok ({} with problems), {} missing, {} unfinished{}",
                   rows.size(), n.ok, n.ok_with_problems, n.missing, n.unfinished,
                   o->output.empty() ? "" : "; table in " + o->output);
      if (!without_stats.empty())
        spdlog::warn(
            "{} finished subject(s) without stats/{{lh,rh}}.{}.tsv (run `ddcsr "
            "parcellate` on them): {}",
            without_stats.size(), o->regions, fmt::join(without_stats, ", "));
      return ddcsr::kExitOk;
    };
  };
  return c;
}

}  // namespace

DDCSR_COMMAND(make_report_command());
