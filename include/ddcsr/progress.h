// Library code reports progress through a callback and knows nothing of terminals or logs.
#pragma once
#include <functional>

namespace ddcsr {
// Called with a fraction in [0, 1]; may be empty.
using ProgressFn = std::function<void(double fraction)>;
inline void report(const ProgressFn& fn, double fraction) {
  if (fn) fn(fraction);
}
}  // namespace ddcsr
