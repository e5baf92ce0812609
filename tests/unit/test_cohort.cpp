#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "ddcsr/error.h"
#include "ddcsr/io/atomic_file.h"
#include "ddcsr/recon/cohort.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace ddcsr;

namespace {
std::string fresh_dir(const std::string& name) { return test::fresh_dir("cohort", name); }
void touch(const fs::path& p, const std::string& text = "") {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}
}  // namespace

TEST(Cohort, ReadsSubjectListWithRelativePaths) {
  const std::string dir = fresh_dir("tsv");
  touch(dir + "/list.tsv",
        "# "
        "cohort\nid\tdwi\tbval\tbvec\tmask\ns01\tdata/s01.nii.gz\t\t\t\ns02\t/abs/"
        "s02.nii.gz\ta.bval\ta.bvec\tm.nii.gz\n\n");
  const auto subjects = read_subject_list(dir + "/list.tsv", "/out");
  ASSERT_EQ(subjects.size(), 2u);
  EXPECT_EQ(subjects[0].id, "s01");
  EXPECT_EQ(subjects[0].dwi, dir + "/data/s01.nii.gz");
  EXPECT_TRUE(subjects[0].bval.empty());
  EXPECT_EQ(subjects[1].dwi, "/abs/s02.nii.gz");
  EXPECT_EQ(subjects[1].mask, dir + "/m.nii.gz");
  EXPECT_EQ(subjects[1].output_dir, "/out/s02");
}

TEST(Cohort, RejectsBadLists) {
  const std::string dir = fresh_dir("tsvbad");
  touch(dir + "/nodwi.tsv", "id\tpath\ns1\tx\n");
  touch(dir + "/dup.tsv", "id\tdwi\ns1\tx\ns1\ty\n");
  touch(dir + "/badid.tsv", "id\tdwi\n../etc\tx\n");
  touch(dir + "/empty.tsv", "id\tdwi\n");
  for (const char* f : {"nodwi.tsv", "dup.tsv", "badid.tsv", "empty.tsv", "missing.tsv"})
    EXPECT_THROW(read_subject_list(dir + "/" + f, "/out"), InputError) << f;
}

TEST(Cohort, FindsBidsSubjectsAndSessions) {
  const std::string dir = fresh_dir("bids");
  touch(dir + "/sub-02/dwi/sub-02_dwi.nii.gz");
  touch(dir + "/sub-01/ses-1/dwi/sub-01_ses-1_dwi.nii.gz");
  touch(dir + "/sub-01/ses-2/dwi/sub-01_ses-2_acq-a_dwi.nii.gz");
  touch(dir + "/sub-01/ses-2/dwi/sub-01_ses-2_acq-b_dwi.nii.gz");
  touch(dir + "/sub-01/ses-2/dwi/sub-01_ses-2_acq-b_dwi.bval");
  touch(dir + "/sub-03/anat/sub-03_T1w.nii.gz");
  const auto s = find_bids_subjects(dir, "/deriv");
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].id, "sub-01_ses-1");
  EXPECT_EQ(s[0].output_dir, "/deriv/sub-01/ses-1");
  EXPECT_EQ(s[1].output_dir, "/deriv/sub-01/ses-2/sub-01_ses-2_acq-a");
  EXPECT_EQ(s[3].id, "sub-02");
  EXPECT_THROW(find_bids_subjects(dir + "/sub-03", "/d"), InputError);
}

TEST(Cohort, ArrayIndexFromSchedulers) {
  for (const char* v : {"SLURM_ARRAY_TASK_ID", "PBS_ARRAY_INDEX", "SGE_TASK_ID", "LSB_JOBINDEX"})
    unsetenv(v);
  EXPECT_FALSE(array_index_from_environment(std::nullopt).has_value());
  setenv("SGE_TASK_ID", "undefined", 1);
  EXPECT_FALSE(array_index_from_environment(std::nullopt).has_value());
  setenv("SLURM_ARRAY_TASK_ID", "4", 1);
  std::string source;
  EXPECT_EQ(array_index_from_environment(std::nullopt, &source).value(), 4);
  EXPECT_EQ(source, "SLURM_ARRAY_TASK_ID");
  EXPECT_EQ(array_index_from_environment(7L).value(), 7);
  unsetenv("SLURM_ARRAY_TASK_ID");
  unsetenv("SGE_TASK_ID");
  EXPECT_EQ(subject_position(1, 1, 3), 0u);
  EXPECT_EQ(subject_position(2, 0, 3), 2u);
  EXPECT_THROW(subject_position(3, 0, 3), UsageError);
  EXPECT_THROW(subject_position(0, 1, 3), UsageError);
}

TEST(Cohort, AtomicFolderReplacesOnlyOnCommit) {
  const std::string dir = fresh_dir("atomic");
  const std::string final_dir = dir + "/sub-01";
  {
    AtomicFolder f(final_dir);
    touch(fs::path(f.path()) / "report.json", "{\"status\": \"ok\"}");
    EXPECT_FALSE(fs::exists(final_dir));
    f.commit();
  }
  EXPECT_TRUE(subject_finished(final_dir));
  {
    AtomicFolder f(final_dir);  // a re-run that fails: the previous result stays
    touch(fs::path(f.path()) / "partial.txt");
  }
  EXPECT_TRUE(subject_finished(final_dir));
  EXPECT_FALSE(fs::exists(final_dir + "/partial.txt"));
  {
    AtomicFolder f(final_dir);
    touch(fs::path(f.path()) / "report.json", "{\"status\": \"ok\", \"run\": 2}");
    f.commit();
  }
  std::ifstream in(final_dir + "/report.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"run\": 2"), std::string::npos);
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) entries += e.path().filename() != "sub-01";
  EXPECT_EQ(entries, 0);
  touch(dir + "/broken/report.json", "{\"status\": ");
  EXPECT_FALSE(subject_finished(dir + "/broken"));
}

TEST(Cohort, StaleTemporariesOfDeadProcessesAreRemoved) {
  const std::string dir = fresh_dir("stale");
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  std::string token = temporary_token();
  const std::string mine = token;
  // Same host, the dead child's pid.
  const auto t1 = token.find('~');
  const std::string dead = token.substr(0, t1) + "~" + std::to_string(child) + "~0";
  touch(dir + "/.sub-01" + dead + "/x");
  touch(dir + "/.lh.white" + dead + ".gii");
  touch(dir + "/.sub-02" + mine + "/x");                                    // ours: alive
  touch(dir + "/.sub-03.tmp-otherhost~" + std::to_string(child) + "~0/x");  // another node's
  EXPECT_EQ(remove_stale_temporaries(dir), 2);
  EXPECT_TRUE(fs::exists(dir + "/.sub-02" + mine));
  EXPECT_TRUE(fs::exists(dir + "/.sub-03.tmp-otherhost~" + std::to_string(child) + "~0"));
}
