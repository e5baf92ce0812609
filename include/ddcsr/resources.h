// Wall time and memory of pipeline stages, as the report and the benchmarks state them.
#pragma once
#include <chrono>
#include <string>

namespace ddcsr {

// Resident set size of this process now, and its peak since the last reset (MB).
double current_rss_mb();
double peak_rss_mb();
// Restarts the peak (Linux /proc/self/clear_refs); later peaks then belong to the next stage.
// Returns false where the kernel does not allow it (the peak then stays process-wide).
bool reset_peak_rss();

struct StageUsage {
  std::string name;
  double seconds = 0;
  double peak_rss_mb = 0;
};

// Measures one stage from construction to finish().
class StageMeter {
 public:
  explicit StageMeter(std::string name);
  StageUsage finish();

 private:
  std::string name_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace ddcsr
