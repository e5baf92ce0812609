#include "ddcsr/simulate/tissue.h"

#include <cmath>

namespace ddcsr::sim {

double Compartment::fa() const {
  const double m = md();
  const double num =
      (lambda_par - m) * (lambda_par - m) + 2 * (lambda_perp - m) * (lambda_perp - m);
  const double den = lambda_par * lambda_par + 2 * lambda_perp * lambda_perp;
  return den > 0 ? std::sqrt(1.5 * num / den) : 0.0;
}

Compartment compartment_with_fa(double s0, double md, double fa) {
  // lambda_par = md + 2d, lambda_perp = md - d gives FA = 3d / sqrt(3 md^2 + 6 d^2).
  const double d = md * fa * std::sqrt(3.0 / (9.0 - 6.0 * fa * fa));
  return Compartment{s0, md + 2 * d, md - d};
}

double tensor_attenuation(const Compartment& c, double b, const double g[3], const double e[3]) {
  const double ge = g[0] * e[0] + g[1] * e[1] + g[2] * e[2];
  return std::exp(-b * (c.lambda_perp + (c.lambda_par - c.lambda_perp) * ge * ge));
}

}  // namespace ddcsr::sim
