// Cohort subject lists (TSV).
#include "ddcsr/recon/cohort.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_scratch("subjects.tsv", data, size);
  try {
    const auto subjects = ddcsr::read_subject_list(path, "/out");
    for (const auto& s : subjects)
      if (s.id.empty() || s.dwi.empty() || s.id.find('/') != std::string::npos) std::abort();
  } catch (const ddcsr::InputError&) {
  }
  return 0;
}
