#include "ddcsr/simulate/protocol.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "ddcsr/error.h"

namespace ddcsr::sim {

namespace {

Vec3 normalized(const Vec3& v) {
  const double n = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  return {v[0] / n, v[1] / n, v[2] / n};
}

// Golden-angle spiral over the upper hemisphere; `twist` rotates it so that shells start apart.
std::vector<Vec3> spiral(int n, double twist) {
  const double golden = M_PI * (3.0 - std::sqrt(5.0));
  std::vector<Vec3> dirs(n);
  for (int i = 0; i < n; ++i) {
    const double z = 1.0 - (i + 0.5) / n;
    const double r = std::sqrt(std::max(0.0, 1.0 - z * z));
    const double phi = i * golden + twist;
    dirs[i] = {r * std::cos(phi), r * std::sin(phi), z};
  }
  return dirs;
}

// Adds to `force` the negative gradient of sum_{i<j} 1/|ui-uj| + 1/|ui+uj| over the points listed
// in `members` (indices into `u`), scaled by `weight`.
void add_forces(const std::vector<Vec3>& u, const std::vector<int>& members, double weight,
                std::vector<Vec3>& force) {
  for (size_t a = 0; a < members.size(); ++a) {
    const Vec3& ui = u[members[a]];
    for (size_t b = a + 1; b < members.size(); ++b) {
      const Vec3& uj = u[members[b]];
      // -grad_ui of 1/|ui-uj| is (ui-uj)/|ui-uj|^3, of 1/|ui+uj| is (ui+uj)/|ui+uj|^3; for uj the
      // first term changes sign.
      const Vec3 dm{ui[0] - uj[0], ui[1] - uj[1], ui[2] - uj[2]};
      const Vec3 dp{ui[0] + uj[0], ui[1] + uj[1], ui[2] + uj[2]};
      const double rm = std::max(dm[0] * dm[0] + dm[1] * dm[1] + dm[2] * dm[2], 1e-12);
      const double rp = std::max(dp[0] * dp[0] + dp[1] * dp[1] + dp[2] * dp[2], 1e-12);
      const double km = weight / (rm * std::sqrt(rm)), kp = weight / (rp * std::sqrt(rp));
      for (int c = 0; c < 3; ++c) {
        force[members[a]][c] += km * dm[c] + kp * dp[c];
        force[members[b]][c] += -km * dm[c] + kp * dp[c];
      }
    }
  }
}

}  // namespace

std::vector<Shell> parse_shells(const std::string& text) {
  std::vector<Shell> shells;
  std::set<long> seen;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto colon = item.find(':');
    if (colon == std::string::npos)
      throw UsageError("--shells: '" + item + "' is not b-value:directions (e.g. 1000:30)");
    Shell s;
    try {
      size_t used = 0;
      s.bval = std::stod(item.substr(0, colon), &used);
      if (used != colon) throw std::invalid_argument("trailing text");
      const std::string count = item.substr(colon + 1);
      s.directions = std::stoi(count, &used);
      if (used != count.size()) throw std::invalid_argument("trailing text");
    } catch (const std::exception&) {
      throw UsageError("--shells: '" + item + "' is not b-value:directions (e.g. 1000:30)");
    }
    if (!(s.bval >= 50 && s.bval <= 20000))
      throw UsageError("--shells: b-value " + item.substr(0, colon) +
                       " outside [50, 20000] s/mm^2");
    if (s.directions < 1 || s.directions > 1000)
      throw UsageError("--shells: direction count in '" + item + "' outside [1, 1000]");
    if (!seen.insert(std::lround(s.bval)).second)
      throw UsageError("--shells: b-value " + item.substr(0, colon) + " given twice");
    shells.push_back(s);
  }
  if (shells.empty()) throw UsageError("--shells: no shell given");
  return shells;
}

std::string format_shells(const std::vector<Shell>& shells) {
  std::string out;
  for (const auto& s : shells) {
    if (!out.empty()) out += ",";
    std::ostringstream b;
    b << s.bval;
    out += b.str() + ":" + std::to_string(s.directions);
  }
  return out;
}

std::vector<std::vector<Vec3>> spread_multishell(const std::vector<int>& counts) {
  std::vector<Vec3> u;
  std::vector<std::vector<int>> members(counts.size());
  std::vector<int> all;
  for (size_t s = 0; s < counts.size(); ++s) {
    const auto start = spiral(counts[s], 2.0 * M_PI * s / (counts.size() + 0.5));
    for (const auto& d : start) {
      members[s].push_back(static_cast<int>(u.size()));
      all.push_back(static_cast<int>(u.size()));
      u.push_back(d);
    }
  }
  const int n = static_cast<int>(u.size());
  if (n > 1) {
    const double spacing = std::sqrt(2.0 * M_PI / n);
    const int iterations = 400;
    std::vector<Vec3> force(n);
    for (int it = 0; it < iterations; ++it) {
      std::fill(force.begin(), force.end(), Vec3{0, 0, 0});
      if (counts.size() > 1)
        for (const auto& m : members) add_forces(u, m, 1.0 / m.size(), force);
      add_forces(u, all, 1.0 / n, force);
      double fmax = 0;
      for (int i = 0; i < n; ++i) {
        const double radial = force[i][0] * u[i][0] + force[i][1] * u[i][1] + force[i][2] * u[i][2];
        for (int c = 0; c < 3; ++c) force[i][c] -= radial * u[i][c];
        fmax = std::max(fmax, std::sqrt(force[i][0] * force[i][0] + force[i][1] * force[i][1] +
                                        force[i][2] * force[i][2]));
      }
      if (fmax <= 0) break;
      // Steps shrink from a third of the mean spacing to nearly nothing: a plain annealed descent.
      const double step = 0.3 * spacing * (1.0 - double(it) / iterations) / fmax;
      for (int i = 0; i < n; ++i)
        u[i] = normalized({u[i][0] + step * force[i][0], u[i][1] + step * force[i][1],
                           u[i][2] + step * force[i][2]});
    }
  }
  std::vector<std::vector<Vec3>> out(counts.size());
  for (size_t s = 0; s < counts.size(); ++s)
    for (int i : members[s]) {
      Vec3 d = u[i];
      // Upper hemisphere, as most vendors' tables: the sign of a gradient axis is immaterial.
      if (d[2] < 0 || (d[2] == 0 && d[1] < 0)) d = {-d[0], -d[1], -d[2]};
      out[s].push_back(d);
    }
  return out;
}

std::vector<Vec3> spread_directions(int n) { return spread_multishell({n})[0]; }

Protocol make_protocol(const std::vector<Shell>& shells, int num_b0) {
  if (num_b0 < 1) throw UsageError("--b0: at least one b=0 volume is needed");
  std::vector<int> counts;
  for (const auto& s : shells) counts.push_back(s.directions);
  const auto dirs = spread_multishell(counts);
  std::vector<double> dw_b;
  std::vector<Vec3> dw_g;
  for (size_t s = 0; s < shells.size(); ++s)
    for (const auto& d : dirs[s]) {
      dw_b.push_back(shells[s].bval);
      dw_g.push_back(d);
    }
  const int total = num_b0 + static_cast<int>(dw_b.size());
  Protocol p;
  size_t next_dw = 0;
  int placed_b0 = 0;
  for (int v = 0; v < total; ++v) {
    // b0 number k goes at round(k * total / num_b0).
    const bool b0_here = placed_b0 < num_b0 &&
                         v == static_cast<int>(std::lround(double(placed_b0) * total / num_b0));
    if (b0_here || next_dw >= dw_b.size()) {
      p.bvals.push_back(0);
      p.bvecs.push_back({0, 0, 0});
      ++placed_b0;
    } else {
      p.bvals.push_back(dw_b[next_dw]);
      p.bvecs.push_back(dw_g[next_dw]);
      ++next_dw;
    }
  }
  return p;
}

double min_axis_angle_deg(const std::vector<Vec3>& dirs) {
  double best = 0;
  for (size_t i = 0; i < dirs.size(); ++i)
    for (size_t j = i + 1; j < dirs.size(); ++j)
      best = std::max(best, std::fabs(dirs[i][0] * dirs[j][0] + dirs[i][1] * dirs[j][1] +
                                      dirs[i][2] * dirs[j][2]));
  return std::acos(std::min(1.0, best)) * 180.0 / M_PI;
}

}  // namespace ddcsr::sim
