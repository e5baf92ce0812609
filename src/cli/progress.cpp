#include "cli/progress.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace ddcsr::cli {

static bool g_quiet = false;
void set_quiet(bool q) { g_quiet = q; }
bool quiet() { return g_quiet; }

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)),
      tty_(isatty(STDERR_FILENO) != 0),
      quiet_(g_quiet),
      start_(std::chrono::steady_clock::now()) {
  if (!quiet_ && !tty_) spdlog::info("{}...", label_);
}

// Destroyed without done(): the work failed or was abandoned; end the bar's line, claim nothing.
ProgressBar::~ProgressBar() {
  if (finished_ || quiet_) return;
  if (tty_ && last_percent_ >= 0) std::fputs("\n", stderr);
}

void ProgressBar::update(double fraction) {
  if (quiet_ || finished_ || !tty_) return;
  const int percent = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * 100.0);
  if (percent == last_percent_) return;
  last_percent_ = percent;
  constexpr int kWidth = 30;
  const int filled = percent * kWidth / 100;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "\r%-28s [%s%s] %3d%% %6.1fs", label_.c_str(),
               std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(), percent,
               elapsed);
  std::fflush(stderr);
}

void ProgressBar::done() {
  if (finished_) return;
  finished_ = true;
  if (quiet_) return;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (tty_) {
    last_percent_ = -1;
    std::fprintf(stderr, "\r%-28s [%s] 100%% %6.1fs\n", label_.c_str(),
                 std::string(30, '#').c_str(), elapsed);
    std::fflush(stderr);
  } else {
    spdlog::info("{}: done in {:.1f} s", label_, elapsed);
  }
}

}  // namespace ddcsr::cli
