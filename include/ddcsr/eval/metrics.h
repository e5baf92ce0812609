// Surface accuracy and quality metrics as cortical surface reconstruction papers report them
// (CortexODE, Vox2Cortex, CorticalFlow, TopoFit):
//   - Distances: `samples` points drawn uniformly by area on each mesh (fixed seed), exact
//     point-to-triangle distance from each sample to the other mesh, in both directions.
//   - ASSD: mean of the two directional mean distances (mm).
//   - HD90 / HD95: the larger of the two directional 90th / 95th percentiles (mm); percentiles
//     interpolate linearly between order statistics (numpy's default).
//   - Chamfer: mean squared distance pred->ref plus mean squared distance ref->pred (mm^2), the
//     convention of PyTorch3D's chamfer_distance used by Vox2Cortex and CorticalFlow, here with
//     exact point-to-surface rather than point-to-point distances.
//   - Offset: mean signed distance from the predicted samples to the reference, negative
//     inside it (sign from the angle-weighted pseudo-normal, exact for a closed, outward-facing
//     reference): a bias that ASSD, being unsigned, hides (a white surface 0.2 mm too deep
//     reads -0.2; a pial surface too far out, positive). Undefined (NaN) when the reference is
//     not a closed manifold.
//   - SIF: percentage of faces that intersect a non-adjacent face of the same mesh.
//   - Euler characteristic V - E + F (2 for a closed genus-0 surface), connected components,
//     closed-manifold flag.
// Results depend only on the meshes, the sample count and the seed, never on the thread count.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ddcsr/affine.h"
#include "ddcsr/mesh.h"
#include "ddcsr/progress.h"

namespace ddcsr {

struct SamplingOptions {
  int64_t samples = 100000;  // per mesh
  uint64_t seed = 20250101;
};

// `n` points drawn uniformly by area on the mesh's triangles; sample i depends only on
// (seed, i) and the mesh.
std::vector<Vec3> sample_surface(const Mesh& mesh, int64_t n, uint64_t seed);

// Percentile q in [0, 100] with linear interpolation between order statistics.
double percentile(std::vector<double> values, double q);

struct DirectionalDistance {
  double mean = 0, rms = 0, p90 = 0, p95 = 0, max = 0;
};

struct SurfaceDistance {
  DirectionalDistance pred_to_ref, ref_to_pred;
  double assd = 0, hd90 = 0, hd95 = 0, chamfer = 0;
  double hausdorff = 0;  // of the samples: the larger directional maximum
  double offset = 0;     // mean signed pred->ref distance, negative inside the reference
  int64_t samples = 0;   // per direction
};

SurfaceDistance surface_distance(const Mesh& pred, const Mesh& ref,
                                 const SamplingOptions& opts = {}, const ProgressFn& progress = {});

struct MeshQuality {
  int64_t vertices = 0, faces = 0;
  int64_t euler = 0, components = 0;
  bool closed_manifold = false;
  double sif = 0;  // percent of faces
  int64_t self_intersecting_faces = 0;
};

MeshQuality mesh_quality(const Mesh& mesh);

struct Volume;

// Image contrast across a surface: the check a real scan allows without ground truth. `image`
// is sampled (trilinear, scanner RAS) `offset_mm` inside and outside each vertex along its
// outward normal; `expect` is +1 where the image should be higher inside (FA across white: the
// anisotropic white matter ends there), -1 where higher outside (MD across pial: free water
// beyond it). Vertices with a sample outside `region` (nonzero voxels, nearest voxel; e.g. where
// the maps were fitted) or outside the image are left out, as are those where `excluded` (one
// entry per vertex) is nonzero, e.g. vertices on the border of a scan that stops inside the brain.
struct SurfaceContrast {
  double mean_step = 0;         // mean of expect * (inside - outside) over the vertices used
  double positive_percent = 0;  // % of those where expect * (inside - outside) > 0
  int64_t vertices = 0;         // vertices used
};
SurfaceContrast contrast_across_surface(const Mesh& mesh, const Volume& image, int expect,
                                        const Volume* region = nullptr, double offset_mm = 1.0,
                                        const std::vector<uint8_t>* excluded = nullptr);

// One predicted surface against its reference.
struct SurfaceComparison {
  std::string name;  // e.g. "lh.white"
  SurfaceDistance distance;
  MeshQuality pred, ref;
  std::string to_json(int indent = 0) const;
};

SurfaceComparison compare_surfaces(const Mesh& pred, const Mesh& ref, const std::string& name,
                                   const SamplingOptions& opts = {},
                                   const ProgressFn& progress = {});

// White/pial nesting of one hemisphere: percent of white vertices outside the pial surface.
struct HemisphereNesting {
  std::string hemi;
  double pred_white_outside_pial = 0;
  double ref_white_outside_pial = 0;
};

// A whole reconstruction: up to four surfaces and the nesting of each hemisphere.
struct ReconstructionEvaluation {
  std::vector<SurfaceComparison> surfaces;
  std::vector<HemisphereNesting> nesting;
  SamplingOptions sampling;
  std::string to_json() const;
};

// The surfaces {lh,rh}.{white,pial} found in `recon_dir`/surf (GIFTI `.surf.gii` preferred,
// else the FreeSurfer file) paired with the same surface in `truth_dir`/surf: the layout
// `ddcsr recon` and `ddcsr simulate` write. Throws InputError when the reconstruction holds none
// of them or the truth lacks one the reconstruction has.
struct SurfaceFilePair {
  std::string name;  // "lh.white", ...
  std::string pred_path, ref_path;
};
std::vector<SurfaceFilePair> reconstruction_surface_files(const std::string& recon_dir,
                                                          const std::string& truth_dir);

// Compares each pair, and the white/pial nesting of every hemisphere that has both.
ReconstructionEvaluation evaluate_reconstruction(const std::vector<SurfaceFilePair>& pairs,
                                                 const SamplingOptions& opts = {},
                                                 const ProgressFn& progress = {});

// Small JSON helpers shared by the evaluation outputs (no JSON library dependency).
std::string json_number(double v);  // finite numbers with enough digits; null otherwise
std::string json_string(const std::string& s);

}  // namespace ddcsr
