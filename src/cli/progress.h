// Progress display for heavy work: a bar on a terminal, a few plain log lines otherwise.
#pragma once
#include <chrono>
#include <string>

namespace ddcsr::cli {

class ProgressBar {
 public:
  // Nothing is shown when quiet.
  explicit ProgressBar(std::string label);
  ~ProgressBar();
  // fraction in [0, 1]; cheap to call often.
  void update(double fraction);
  void done();

 private:
  std::string label_;
  bool tty_, quiet_, finished_ = false;
  int last_percent_ = -1;
  std::chrono::steady_clock::time_point start_;
};

// Set once from the global options.
void set_quiet(bool quiet);
bool quiet();

}  // namespace ddcsr::cli
