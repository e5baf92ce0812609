#include "ddcsr/features/hemisphere_presence.h"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

#include "ddcsr/error.h"

namespace ddcsr {

namespace {

constexpr double kDegree = M_PI / 180.0;
// A whole brain is about as wide as four fifths of its length; one hemisphere about two fifths.
constexpr double kWholeBrainWidthRatio = 0.6;
// Mask area (mm^2) on the image's outermost slice that counts as a cut of the brain there.
constexpr double kCutAreaMm2 = 100.0;
// The outer share of the extent along the thinnest axis in which the mass at each end is counted.
constexpr double kEndBand = 0.15;
// How far the medial face's normal may lie from the smallest principal axis.
constexpr double kMedialFaceSearchDegrees = 30.0;

// Whether `mask` (its own grid) holds brain on either outermost slice of the voxel axis most
// nearly parallel to `direction`.
bool cut_across(const Volume& mask, const Vec3& direction) {
  int axis = 0;
  double best = -1;
  for (int a = 0; a < 3; ++a) {
    const Vec3 col{mask.vox2ras(0, a), mask.vox2ras(1, a), mask.vox2ras(2, a)};
    const double norm = std::sqrt(col[0] * col[0] + col[1] * col[1] + col[2] * col[2]);
    const double c =
        std::fabs(col[0] * direction[0] + col[1] * direction[1] + col[2] * direction[2]) / norm;
    if (c > best) best = c, axis = a;
  }
  const Vec3 sp = mask.spacing();
  const double area = sp[0] * sp[1] * sp[2] / sp[axis];
  for (int64_t end : {int64_t(0), mask.dims[axis] - 1}) {
    int64_t count = 0;
    for (int64_t k = 0; k < mask.dims[2]; ++k)
      for (int64_t j = 0; j < mask.dims[1]; ++j)
        for (int64_t i = 0; i < mask.dims[0]; ++i) {
          const int64_t at[3] = {i, j, k};
          if (at[axis] == end && mask.at(i, j, k) > 0.5f) ++count;
        }
    if (double(count) * area >= kCutAreaMm2) return true;
  }
  return false;
}

std::string fmt(const char* format, double a, double b = 0, double c = 0) {
  char text[200];
  std::snprintf(text, sizeof text, format, a, b, c);
  return text;
}

struct Face {
  Eigen::Vector3d normal;
  double offset;  // of the outermost mask along `normal` from the centroid (99.9th percentile)
};

// The direction, within kMedialFaceSearchDegrees of `start`, in which the mask's outer slab of
// `band` mm holds the most of it: the normal of the hemisphere's flat medial face. The smallest
// principal axis alone is not that normal: a real hemisphere's temporal lobe and occipital pole
// tilt it (fsaverage5's right hemisphere: 14 degrees from its midsagittal plane's normal), and
// the network's midline feature measured from a tilted face is wrong by centimetres at the poles.
Face medial_face(const std::vector<Vec3>& points, const Eigen::Vector3d& mean,
                 const Eigen::Vector3d& start, double band) {
  std::vector<double> t(points.size());
  const auto outermost = [&](const Eigen::Vector3d& d) {
    for (size_t q = 0; q < points.size(); ++q)
      t[q] = (Eigen::Vector3d(points[q][0], points[q][1], points[q][2]) - mean).dot(d);
    const auto at = t.begin() + static_cast<std::ptrdiff_t>(0.999 * double(t.size() - 1));
    std::nth_element(t.begin(), at, t.end());
    return *at;
  };
  const auto slab_mass = [&](const Eigen::Vector3d& d) {
    const double edge = outermost(d) - band;
    return std::count_if(t.begin(), t.end(), [&](double x) { return x > edge; });
  };
  // Coarse to fine over tilts of the normal about two axes perpendicular to it.
  Eigen::Vector3d best = start;
  auto best_mass = slab_mass(start);
  double step = 4.0 * kDegree, radius = kMedialFaceSearchDegrees * kDegree;
  while (step >= 0.5 * kDegree) {
    const Eigen::Vector3d centre = best, u = centre.unitOrthogonal(), v = centre.cross(u);
    const int reach = static_cast<int>(std::round(radius / step));
    for (int a = -reach; a <= reach; ++a)
      for (int b = -reach; b <= reach; ++b) {
        if (a * a + b * b > reach * reach || (a == 0 && b == 0)) continue;
        const Eigen::Vector3d d =
            (centre + std::tan(a * step) * u + std::tan(b * step) * v).normalized();
        if (d.dot(start) < std::cos(kMedialFaceSearchDegrees * kDegree)) continue;
        const auto mass = slab_mass(d);
        if (mass > best_mass) best_mass = mass, best = d;
      }
    radius = 1.5 * step;
    step /= 4;
  }
  return {best, outermost(best)};
}

}  // namespace

HemispherePresence detect_hemispheres(const Volume& image, const Volume& mask,
                                      const MidsagittalPlane& fitted, const Volume* native_mask,
                                      const HemispherePresenceOptions& options) {
  if (image.dims != mask.dims) throw std::invalid_argument("detect_hemispheres: grids differ");
  std::vector<Vec3> points;
  Eigen::Vector3d mean = Eigen::Vector3d::Zero();
  for (int64_t k = 0; k < mask.dims[2]; ++k)
    for (int64_t j = 0; j < mask.dims[1]; ++j)
      for (int64_t i = 0; i < mask.dims[0]; ++i)
        if (mask.at(i, j, k) > 0.5f) {
          points.push_back(mask.voxel_to_ras({double(i), double(j), double(k)}));
          mean += Eigen::Vector3d(points.back()[0], points.back()[1], points.back()[2]);
        }
  if (points.empty()) throw std::invalid_argument("detect_hemispheres: empty mask");
  const double n = static_cast<double>(points.size());
  mean /= n;
  Eigen::Matrix3d cov = Eigen::Matrix3d::Zero();
  for (const Vec3& p : points) {
    const Eigen::Vector3d d = Eigen::Vector3d(p[0], p[1], p[2]) - mean;
    cov += d * d.transpose();
  }
  cov /= n;
  HemispherePresence out;
  // Ascending eigenvalues: column 0 is the thinnest axis.
  const Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> eig(cov);
  const Eigen::Vector3d sd = eig.eigenvalues().cwiseMax(0).cwiseSqrt();
  out.thinnest_ratio = sd[2] > 0 ? sd[0] / sd[2] : 1.0;
  Eigen::Vector3d thin = eig.eigenvectors().col(0);
  if (thin[0] < 0) thin = -thin;  // towards the subject's right
  out.thin_axis_lr_degrees = std::acos(std::clamp(thin[0], 0.0, 1.0)) / kDegree;

  // Extent across the fitted plane against the largest extent within it.
  const Eigen::Vector3d normal(fitted.normal[0], fitted.normal[1], fitted.normal[2]);
  const double across = std::sqrt(std::max(0.0, normal.dot(cov * normal)));
  const Eigen::Matrix3d in_plane_projector =
      Eigen::Matrix3d::Identity() - normal * normal.transpose();
  const Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> plane_eig(in_plane_projector * cov *
                                                                 in_plane_projector);
  const double along = std::sqrt(std::max(0.0, plane_eig.eigenvalues()[2]));
  out.width_ratio = along > 0 ? across / along : 1.0;

  // Which end of the thinnest axis is the medial face: it is flat, so much of the hemisphere
  // lies near it, while the round lateral side has little near its extreme (p301's left
  // hemisphere: 10.8 % of the mask within the outer 15 % of the extent at the medial end, 6.6 %
  // at the lateral one). The ends are taken at the 0.1 and 99.9 percentiles, so that a few stray
  // voxels do not move them. A whole brain's two ends hold about the same.
  std::vector<double> t(points.size());
  for (size_t q = 0; q < points.size(); ++q)
    t[q] = (Eigen::Vector3d(points[q][0], points[q][1], points[q][2]) - mean).dot(thin);
  std::vector<double> sorted = t;
  const auto rank = [&](double f) {
    const auto at = sorted.begin() + static_cast<std::ptrdiff_t>(f * double(sorted.size() - 1));
    std::nth_element(sorted.begin(), at, sorted.end());
    return *at;
  };
  const double t_min = rank(0.001), t_max = rank(0.999);
  const double band = kEndBand * (t_max - t_min);
  int64_t near_left = 0, near_right = 0;
  for (double x : t) {
    near_left += x < t_min + band;
    near_right += x > t_max - band;
  }
  out.end_mass_ratio = double(near_right + 1) / double(near_left + 1);
  const bool medial_right = out.end_mass_ratio > 1;
  // The face itself: the normal of the flat side at that end, and its outermost mask (as the
  // ends above, at the 99.9th percentile).
  const Face f = medial_face(points, mean, medial_right ? thin : Eigen::Vector3d(-thin), band);
  const Eigen::Vector3d& medial = f.normal;
  const Vec3 voxel = mask.spacing();
  const double half_voxel = 0.5 * std::max({voxel[0], voxel[1], voxel[2]});
  const Eigen::Vector3d face = mean + medial * (f.offset + half_voxel + 1.0);
  out.medial_direction = {medial[0], medial[1], medial[2]};
  out.medial_point = {face[0], face[1], face[2]};

  // The fitted plane's mirror: how much of the mask it maps into the mask, and how well the
  // image there matches its mirror image.
  {
    Affine reflect;
    const double pn = fitted.point[0] * fitted.normal[0] + fitted.point[1] * fitted.normal[1] +
                      fitted.point[2] * fitted.normal[2];
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 3; ++c)
        reflect(r, c) = (r == c ? 1.0 : 0.0) - 2 * fitted.normal[r] * fitted.normal[c];
      reflect(r, 3) = 2 * pn * fitted.normal[r];
    }
    int64_t inside = 0;
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    for (const Vec3& p : points) {
      const Vec3 q = reflect.apply(p);
      if (mask.sample_linear(q) < 0.5f) continue;
      ++inside;
      const double a = image.sample_linear(p), b = image.sample_linear(q);
      sa += a, sb += b, saa += a * a, sbb += b * b, sab += a * b;
    }
    out.mirror_overlap = double(inside) / n;
    if (inside > 1) {
      const double m = double(inside);
      const double va = saa / m - (sa / m) * (sa / m), vb = sbb / m - (sb / m) * (sb / m);
      out.mirror_correlation =
          va > 0 && vb > 0 ? (sab / m - sa * sb / (m * m)) / std::sqrt(va * vb) : 0;
    }
  }
  out.cut_along_thin_axis = native_mask && cut_across(*native_mask, {thin[0], thin[1], thin[2]});

  const std::string measures =
      fmt("shape: smallest/largest extent %.2f, width/length across the fitted plane %.2f; ",
          out.thinnest_ratio, out.width_ratio) +
      fmt("mirror correlation %.2f", out.mirror_correlation);
  if (out.thinnest_ratio >= options.hemisphere_shape_ratio) {
    out.reason = "a whole brain's shape (" + measures + ")";
    return out;
  }
  // Thinner than a whole brain: a slab of one, which the field of view cut, or a whole brain
  // that its mask lost a part of, which is still mirror-symmetric and has no flat face.
  if (out.width_ratio >= kWholeBrainWidthRatio && out.cut_along_thin_axis) {
    out.reason = "thin only where the field of view cuts it, and as wide as a whole brain (" +
                 measures + ")";
    return out;
  }
  if (out.width_ratio >= kWholeBrainWidthRatio &&
      out.mirror_correlation >= options.two_hemisphere_correlation &&
      std::fabs(std::log(out.end_mass_ratio)) < std::log(options.medial_face_ratio)) {
    out.reason =
        "mirror-symmetric, without a flat face, and as wide as a whole brain (" + measures + ")";
    return out;
  }
  out.count = 1;
  const bool lies_as_in_head = out.thin_axis_lr_degrees <= options.lr_axis_degrees;
  const bool clear_face =
      std::fabs(std::log(out.end_mass_ratio)) >= std::log(options.medial_face_ratio);
  if (lies_as_in_head && clear_face) {
    out.side = medial_right ? "lh" : "rh";
    out.reason =
        "one hemisphere's shape (" + measures + "), its medial face towards the " +
        (medial_right ? "right" : "left") +
        fmt(" (%.2f times the mass near its right end as near its left)", out.end_mass_ratio);
  } else {
    out.reason =
        "one hemisphere's shape (" + measures + "), but " +
        (lies_as_in_head
             ? fmt("its medial face is not clear (%.2f times the mass near its right end as near "
                   "its left)",
                   out.end_mass_ratio)
             : fmt("it does not lie as in a head (its thinnest axis %.0f degrees from "
                   "left-right)",
                   out.thin_axis_lr_degrees));
  }
  return out;
}

MidsagittalPlane medial_face_plane(const HemispherePresence& presence, const std::string& hemi) {
  if (hemi != "lh" && hemi != "rh") throw std::invalid_argument("medial_face_plane: lh or rh");
  MidsagittalPlane plane;
  plane.point = presence.medial_point;
  // lh: the medial face is on its right, so the normal points from the hemisphere to the face.
  const double sign = hemi == "lh" ? 1.0 : -1.0;
  for (int a = 0; a < 3; ++a) plane.normal[a] = sign * presence.medial_direction[a];
  return plane;
}

std::string hemisphere_presence_json(const HemispherePresence& p) {
  using nlohmann::json;
  auto r3 = [](double x) { return std::round(x * 1000) / 1000; };
  const json out = {{"count", p.count},
                    {"side", p.count == 1 && !p.side.empty() ? json(p.side) : json(nullptr)},
                    {"reason", p.reason},
                    {"measures",
                     {{"thinnest_to_largest_extent", r3(p.thinnest_ratio)},
                      {"width_to_length_across_fitted_plane", r3(p.width_ratio)},
                      {"thinnest_axis_from_left_right_degrees", r3(p.thin_axis_lr_degrees)},
                      {"right_to_left_end_mass_ratio", r3(p.end_mass_ratio)},
                      {"mirror_overlap", r3(p.mirror_overlap)},
                      {"mirror_correlation", r3(p.mirror_correlation)},
                      {"field_of_view_cut_across_thinnest_axis", p.cut_along_thin_axis}}}};
  return out.dump();
}

std::vector<std::string> hemispheres_to_reconstruct(const HemispherePresence& presence,
                                                    const std::string& request,
                                                    const std::string& path) {
  if (request != "auto" && request != "both" && request != "lh" && request != "rh")
    throw std::invalid_argument("hemispheres_to_reconstruct: unknown request " + request);
  if (presence.count == 2) {
    if (request == "auto" || request == "both") return {"lh", "rh"};
    return {request};
  }
  const std::string& side = presence.side;
  if (side.empty()) {
    if (request == "lh" || request == "rh") return {request};
    throw InputError(path, "holds one hemisphere, " + presence.reason +
                               (request == "both" ? "; --hemi both cannot be reconstructed" : "") +
                               ": give --hemi lh or --hemi rh");
  }
  if (request == "auto" || request == side) return {side};
  const std::string name = side == "lh" ? "left" : "right";
  throw InputError(path, "holds only the " + name + " hemisphere (" + presence.reason +
                             "): --hemi " + request +
                             " would invent one that is not there; give "
                             "--hemi auto or " +
                             side);
}

}  // namespace ddcsr
