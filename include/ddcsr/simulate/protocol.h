// Diffusion acquisition protocols for simulated scans: b-value shells, well-spread gradient
// directions and the volume order.
//
// Directions: each shell's points start on a golden-angle spiral over the upper hemisphere and
// are then spread by minimising an antipodally symmetric electrostatic energy (charges at +u and
// -u, Jones et al. 1999), summed over each shell and over all shells together as in Caruyer et
// al. 2013, so that every shell and their union cover the sphere evenly. No random numbers: a
// protocol depends only on its shells, so all subjects simulated with it share one table.
// b0 volumes are spread evenly through the series, the first volume being one of them.
#pragma once
#include <string>
#include <vector>

#include "ddcsr/affine.h"

namespace ddcsr::sim {

struct Shell {
  double bval = 1000;  // s/mm^2
  int directions = 30;
};

// Parses "1000:30,2000:60" (b-value:directions, comma-separated). UsageError on malformed text,
// non-positive b-values or counts, or repeated b-values.
std::vector<Shell> parse_shells(const std::string& text);
std::string format_shells(const std::vector<Shell>& shells);

// `n` unit vectors spread over the sphere up to sign; the minimum angle between any two axes is
// close to the best packing for n. Deterministic.
std::vector<Vec3> spread_directions(int n);
// One set per shell, optimised jointly (each shell and the union well spread).
std::vector<std::vector<Vec3>> spread_multishell(const std::vector<int>& counts);

struct Protocol {
  std::vector<double> bvals;  // one per volume
  std::vector<Vec3> bvecs;    // unit gradient directions in scanner RAS; zero for b0 volumes
  size_t size() const { return bvals.size(); }
};

// The series: `num_b0` b=0 volumes spread evenly, diffusion-weighted volumes shell by shell.
// UsageError when there is no b0 or no volume at all.
Protocol make_protocol(const std::vector<Shell>& shells, int num_b0);

// Smallest angle (degrees) between two axes of a set, treating u and -u as the same axis.
double min_axis_angle_deg(const std::vector<Vec3>& dirs);

}  // namespace ddcsr::sim
