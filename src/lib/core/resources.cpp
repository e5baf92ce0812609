#include "ddcsr/resources.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace ddcsr {

namespace {
double status_field_mb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t n = std::strlen(field);
  while (std::getline(in, line))
    if (line.compare(0, n, field) == 0) return std::stod(line.substr(n + 1)) / 1024.0;  // kB
  return 0;
}
}  // namespace

double current_rss_mb() { return status_field_mb("VmRSS"); }
double peak_rss_mb() { return status_field_mb("VmHWM"); }

bool reset_peak_rss() {
  FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  const bool ok = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && ok;
}

StageMeter::StageMeter(std::string name)
    : name_(std::move(name)), start_(std::chrono::steady_clock::now()) {
  reset_peak_rss();
}

StageUsage StageMeter::finish() {
  StageUsage u;
  u.name = name_;
  u.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  u.peak_rss_mb = peak_rss_mb();
  return u;
}

}  // namespace ddcsr
