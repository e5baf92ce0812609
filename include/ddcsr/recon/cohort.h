// Subjects of a cohort run: from a TSV list or a BIDS dataset, selected by a job-array index,
// each written to a temporary folder and renamed into place when complete.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace ddcsr {

struct SubjectInput {
  std::string id;  // "sub-01" or "sub-01_ses-1" for BIDS; the TSV's id column otherwise
  std::string dwi, bval, bvec, mask;  // bval/bvec/mask empty when not given
  std::string output_dir;             // final output folder of this subject
};

// TSV with a header row naming columns: id, dwi, and optionally bval, bvec, mask. Relative paths
// are relative to the TSV's folder. Lines starting with '#' and blank lines are skipped.
// InputError naming the file and line for a missing column, a duplicate id or an empty field.
std::vector<SubjectInput> read_subject_list(const std::string& tsv_path,
                                            const std::string& output_root);

// BIDS: every sub-*/[ses-*/]dwi/*_dwi.nii[.gz], sorted; outputs in a BIDS-derivatives layout
// OUTPUT_ROOT/sub-X[/ses-Y]/ (entities of the DWI file kept in the id: sub-01_ses-1_acq-b1000).
std::vector<SubjectInput> find_bids_subjects(const std::string& bids_root,
                                             const std::string& output_root);

// The job-array index this process should run: `explicit_index` when set, else the first of
// SLURM_ARRAY_TASK_ID, PBS_ARRAY_INDEX, SGE_TASK_ID, LSB_JOBINDEX that is set. Returned as given
// by the scheduler (not yet rebased); `source` names where it came from.
std::optional<long> array_index_from_environment(std::optional<long> explicit_index,
                                                 std::string* source = nullptr);

// Subject list position for an index of base `base` (0 or 1). SGE and LSF count from 1; SLURM and
// PBS from whatever the job script says (`--array=0-N` is usual). UsageError when out of range.
size_t subject_position(long index, int base, size_t count);

// A finished subject has a report.json that parses as a complete report (its "status" is "ok").
bool subject_finished(const std::string& output_dir);

// A temporary sibling folder for building a subject's outputs, renamed onto the final folder by
// commit(); removed on destruction unless committed. An older final folder (re-run with --force)
// is replaced only at commit time, so a failed re-run keeps the previous good result.
class AtomicFolder {
 public:
  explicit AtomicFolder(const std::string& final_dir);
  ~AtomicFolder();
  AtomicFolder(const AtomicFolder&) = delete;
  AtomicFolder& operator=(const AtomicFolder&) = delete;
  const std::string& path() const { return temp_dir_; }
  const std::string& final_path() const { return final_dir_; }
  void commit();

 private:
  std::string final_dir_, temp_dir_;
  bool committed_ = false;
};

// Removes temporary folders and files that killed runs left under `root` (names containing ".tmp-"
// whose owning process no longer exists). Returns how many were removed.
int remove_stale_temporaries(const std::string& root);

}  // namespace ddcsr
