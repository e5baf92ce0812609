#include "ddcsr/sdfnet/training_data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "ddcsr/error.h"
#include "ddcsr/geometry/mesh_distance.h"
#include "ddcsr/io/atomic_file.h"
#include "ddcsr/io/gradients.h"
#include "ddcsr/io/nifti.h"
#include "ddcsr/io/surface.h"
#include "ddcsr/sdfnet/sdfnet.h"

namespace ddcsr {

namespace fs = std::filesystem;

TargetSurfaces read_target_surfaces(const std::string& surf_dir) {
  if (!fs::is_directory(surf_dir)) throw InputError(surf_dir, "not a folder of surfaces");
  TargetSurfaces out;
  for (size_t s = 0; s < 4; ++s) {
    const std::string stem = sdfnet_outputs()[s];  // lh.white ...
    std::string path;
    for (const char* ext : {"", ".surf.gii", ".gii"}) {
      const std::string candidate = (fs::path(surf_dir) / (stem + ext)).string();
      if (fs::is_regular_file(candidate)) {
        path = candidate;
        break;
      }
    }
    if (path.empty())
      throw InputError((fs::path(surf_dir) / stem).string(),
                       "missing surface (needed as a training target)");
    out[s] = read_surface(path);
    check_mesh(out[s], path);
    const MeshTopology topo = mesh_topology(out[s]);
    if (!topo.closed_manifold())
      throw InputError(path, "surface is not a closed manifold (" +
                                 std::to_string(topo.boundary_edges) + " boundary and " +
                                 std::to_string(topo.nonmanifold_edges) +
                                 " non-manifold edges): its inside is undefined");
    out[s].hemi = stem.substr(0, 2);
    out[s].surface = stem.substr(3);
  }
  return out;
}

Affine read_ras_to_ras_affine(const std::string& path) {
  std::string text = read_file_maybe_gz(path, 1 << 20);
  std::vector<double> values;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    line = line.substr(0, line.find('#'));
    std::istringstream words(line);
    std::string w;
    while (words >> w) {
      char* end = nullptr;
      const double v = std::strtod(w.c_str(), &end);
      if (end == w.c_str() || *end != '\0' || !std::isfinite(v))
        throw InputError(path, "not a number in the affine: \"" + w + "\"");
      values.push_back(v);
    }
  }
  if (values.size() != 16)
    throw InputError(path,
                     "expected a 4x4 matrix (16 numbers), found " + std::to_string(values.size()));
  Affine a;
  std::copy(values.begin(), values.end(), a.m.begin());
  if (std::fabs(a(3, 0)) > 1e-9 || std::fabs(a(3, 1)) > 1e-9 || std::fabs(a(3, 2)) > 1e-9 ||
      std::fabs(a(3, 3) - 1) > 1e-9)
    throw InputError(path, "the last row of the affine must be 0 0 0 1");
  if (std::fabs(a.determinant()) < 1e-6) throw InputError(path, "the affine is singular");
  return a;
}

void transform_surfaces(TargetSurfaces& surfaces, const Affine& ras_to_ras) {
  const bool reflects = ras_to_ras.determinant() < 0;
  for (Mesh& mesh : surfaces) {
    for (auto& v : mesh.vertices) {
      const Vec3 p = ras_to_ras.apply({v[0], v[1], v[2]});
      v = {static_cast<float>(p[0]), static_cast<float>(p[1]), static_cast<float>(p[2])};
    }
    if (reflects)
      for (auto& f : mesh.faces) std::swap(f[1], f[2]);
  }
}

Volume sdf_targets_from_surfaces(const TargetSurfaces& surfaces, const Volume& grid,
                                 const ProgressFn& progress) {
  Volume out(grid.dims, 4, grid.vox2ras);
  const size_t n = static_cast<size_t>(grid.voxels_per_volume());
  for (size_t s = 0; s < 4; ++s) {
    Volume sdf = signed_distance_volume(
        surfaces[s], Volume(grid.dims, 1, grid.vox2ras),
        [&](double f) { report(progress, (static_cast<double>(s) + f) / 4.0); });
    std::copy(sdf.data.begin(), sdf.data.end(),
              out.data.begin() + static_cast<std::ptrdiff_t>(s * n));
  }
  report(progress, 1.0);
  return out;
}

Volume resample_sdf_targets(const std::array<Volume, 4>& sdfs, const Volume& grid) {
  Volume out(grid.dims, 4, grid.vox2ras);
  for (int64_t s = 0; s < 4; ++s) {
    const Volume& src = sdfs[static_cast<size_t>(s)];
    if (src.voxels_per_volume() == 0) throw InputError("", "empty SDF volume");
    const Affine grid_to_src = src.vox2ras.inverse() * grid.vox2ras;
    for (int64_t k = 0; k < grid.dims[2]; ++k)
      for (int64_t j = 0; j < grid.dims[1]; ++j)
        for (int64_t i = 0; i < grid.dims[0]; ++i) {
          Vec3 p = grid_to_src.apply({double(i), double(j), double(k)});
          for (int a = 0; a < 3; ++a)
            p[a] = std::clamp(p[a], 0.0, static_cast<double>(src.dims[a] - 1));
          out.at(i, j, k, s) = src.sample_voxel_linear(p);
        }
  }
  return out;
}

namespace {

// Features of a scan through compute_features, the same call `ddcsr recon` makes.
FeatureSet scan_features(const std::string& dwi_path, const std::string& mask_path,
                         const TrainingDataOptions& options, const ProgressFn& progress) {
  const auto [bval, bvec] = find_gradient_files(dwi_path);
  const GradientTable table = read_fsl_gradients(bval, bvec);
  const Volume dwi = read_volume(dwi_path, true);
  check_gradients(table, dwi.nvols, dwi_path);
  std::unique_ptr<Volume> mask;
  if (!mask_path.empty()) mask = std::make_unique<Volume>(read_volume(mask_path));
  FeatureOptions fo = options.features;
  fo.image_path = dwi_path;
  fo.mask_path = mask_path;
  return compute_features(dwi, table, mask.get(), fo, progress);
}

}  // namespace

SdfTrainingPair load_simulated_pair(const std::string& dir, const TrainingDataOptions& options,
                                    const ProgressFn& progress) {
  const fs::path root(dir);
  const std::string dwi = (root / "dwi.nii.gz").string();
  if (!fs::is_regular_file(dwi)) throw InputError(dwi, "missing: not a `ddcsr simulate` folder");
  const std::string mask = (root / "mask.nii.gz").string();
  SdfTrainingPair pair;
  pair.name = dir;
  FeatureSet fs_ =
      scan_features(dwi, fs::is_regular_file(mask) && !options.computed_sim_masks ? mask : "",
                    options, [&](double f) { report(progress, 0.5 * f); });
  pair.features = std::move(fs_.channels);
  const Volume grid(pair.features.dims, 1, pair.features.vox2ras);
  const fs::path surf = root / "surf";
  if (options.exact_targets && fs::is_directory(surf)) {
    pair.sdf = sdf_targets_from_surfaces(read_target_surfaces(surf.string()), grid,
                                         [&](double f) { report(progress, 0.5 + 0.5 * f); });
  } else {
    std::array<Volume, 4> sdfs;
    for (size_t s = 0; s < 4; ++s) {
      const std::string path = (root / "sdf" / (sdfnet_outputs()[s] + ".nii.gz")).string();
      if (!fs::is_regular_file(path)) throw InputError(path, "missing target SDF");
      sdfs[s] = read_volume(path);
      if (sdfs[s].nvols != 1) throw InputError(path, "target SDF must be a 3D volume");
    }
    pair.sdf = resample_sdf_targets(sdfs, grid);
  }
  report(progress, 1.0);
  return pair;
}

SdfTrainingPair load_scan_pair(const std::string& dwi_path, const std::string& surf_dir,
                               const std::string& affine_path, const std::string& mask_path,
                               const TrainingDataOptions& options, const ProgressFn& progress) {
  TargetSurfaces surfaces = read_target_surfaces(surf_dir);  // fail early, before the features
  if (!affine_path.empty()) transform_surfaces(surfaces, read_ras_to_ras_affine(affine_path));
  SdfTrainingPair pair;
  pair.name = dwi_path;
  FeatureSet fs_ =
      scan_features(dwi_path, mask_path, options, [&](double f) { report(progress, 0.5 * f); });
  pair.features = std::move(fs_.channels);
  const Volume grid(pair.features.dims, 1, pair.features.vox2ras);
  pair.sdf =
      sdf_targets_from_surfaces(surfaces, grid, [&](double f) { report(progress, 0.5 + 0.5 * f); });
  return pair;
}

}  // namespace ddcsr
