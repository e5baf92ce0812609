// Pial surface: inflation of the white mesh along the outward field of its own signed distance.
#include <algorithm>
#include <cmath>

#include "diffcoseg/stages.h"
#include "diffcoseg/vec.h"

namespace ddcsr::diffcoseg {

Vec3 PialInflator::outward(const Vec3& x) const {
  Vec3 g;
  direction_.sample(x, &g);
  return normalized(g);
}

Vec3 PialInflator::walk(const Vec3& start, double limit, double& length, Stop& stop) const {
  Vec3 x = start;
  double s = 0;
  double p = pial_.sample(x);
  double w = white_.sample(x);
  stop = kPialZero;
  if (p >= 0 || limit <= 0) {
    length = 0;
    stop = p >= 0 ? kPialZero : kLimit;
    return x;
  }
  for (int steps = 0; steps < 10000; ++steps) {
    double h = std::clamp(-0.5 * p, 0.05, 0.25);
    bool last = false;
    if (s + h >= limit) {
      h = limit - s;
      last = true;
    }
    const Vec3 d1 = outward(x);
    const Vec3 d2 = outward(x + (0.5 * h) * d1);
    const Vec3 xn = x + h * d2;
    const double pn = pial_.sample(xn);
    if (pn >= 0) {
      const double frac = p / (p - pn);
      x = x + frac * (xn - x);
      s += frac * h;
      stop = kPialZero;
      break;
    }
    const double wn = white_.sample(xn);
    if (wn - w < ridge_slope * h) {
      stop = kSulcus;
      break;
    }
    x = xn;
    s += h;
    p = pn;
    w = wn;
    if (last) {
      stop = kLimit;
      break;
    }
  }
  length = s;
  return x;
}

}  // namespace ddcsr::diffcoseg
