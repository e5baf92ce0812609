// Training SDFNet's parameters in C++ (LibTorch's Adam on the TorchScript module), from pairs of
// a feature volume and its four ground-truth signed distance maps on the same grid.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ddcsr/sdfnet/sdfnet.h"
#include "ddcsr/volume.h"

namespace ddcsr {

struct SdfTrainingPair {
  std::string name;  // for messages and the training record (e.g. the subject folder)
  Volume features;   // frames = the model's input channels, in order
  Volume sdf;        // 4 frames (sdfnet_outputs() order), mm, negative inside, same grid
  // Only for validation. A run validated on subjects from outside its training domain (another
  // simulator version, real scans) can be stopped where it generalises; one validated on a
  // subject of its own cohort keeps improving while held-out error rises (models/README.md).
  bool validation_only = false;
};

struct SdfTrainOptions {
  int64_t steps = 20000;
  int batch = 2;   // patches per step (>= 2 keeps LibTorch's CPU convolutions on oneDNN)
  int patch = 64;  // patch edge in voxels, rounded up to the model's size multiple
  double learning_rate = 1e-3;
  double final_learning_rate_fraction = 0.05;  // cosine decay to this fraction at the last step
  // Loss: L1 between the output and the target clipped to +-clip_mm, with voxels whose target
  // lies within near_mm of the surface weighted near_weight times more.
  double clip_mm = 20;
  double near_mm = 3;
  double near_weight = 5;
  double surface_fraction = 0.8;  // patches centred on a voxel within near_mm of some surface
  // Augmentation.
  double flip_probability = 0.5;     // left-right mirror with lh/rh outputs swapped
  double intensity_scale = 0.1;      // per-channel factor uniform in [1 - s, 1 + s]
  double noise = 0.03;               // Gaussian noise, in units of each channel's std
  double lowres_probability = 0.15;  // blur by 2x average pooling and trilinear upsampling
  // Validation: the validation-only pairs if there are any, else whole pairs drawn from the others
  // (at least one when there are two or more pairs).
  double validation_fraction = 0.1;
  int validation_every = 250;
  int validation_patches = 16;
  int checkpoint_every = 500;
  std::string checkpoint_path;  // model checkpoint; the optimiser state goes to `<path>.optim`
  // When set, the model is written here (atomically) whenever a validation finds the lowest MAE
  // within near_mm so far; a resumed run (given the same validation pairs, whose fixed patches
  // are drawn again identically) continues from the best recorded in its checkpoint.
  std::string best_path;
  bool resume = false;  // continue from the step and optimiser state of the checkpoint
  // Stop after this step (0: after `steps`). The learning-rate schedule still spans `steps`, so a
  // run split into time-limited jobs (--stop-at, then --resume) follows the one schedule.
  int64_t stop_at = 0;
  // Set the model's input normalisation from the training features (ignored when resuming).
  bool set_normalisation = true;
  uint64_t seed = 1;
};

struct SdfTrainStatus {
  int64_t step = 0, steps = 0;
  double loss = 0;  // running mean (about 20 steps) of the training loss (weighted L1, mm)
  double validation_loss = -1;         // latest, or -1 before the first validation
  double validation_mae_near_mm = -1;  // mean |error| within near_mm of the surfaces
  double elapsed_s = 0, eta_s = 0, seconds_per_step = 0;  // since this run started
  bool validated = false;                                 // this step ran a validation
  bool checkpoint_written = false;                        // this step wrote a checkpoint
  bool best_written = false;                              // this step wrote best_path
};
using SdfTrainProgressFn = std::function<void(const SdfTrainStatus&)>;

struct SdfTrainResult {
  int64_t first_step = 0, last_step = 0;
  double first_loss = 0;  // mean loss of the first five steps
  double final_loss = 0;  // mean loss of the last five steps
  double validation_loss = -1, validation_mae_near_mm = -1;
  int64_t best_step = 0;  // step of the lowest validation MAE (0: no validation yet)
  double best_validation_mae_near_mm = -1;
  std::vector<std::string> training_pairs, validation_pairs;
};

// Validates the pairs (InputError naming the pair for a wrong frame count, grid mismatch or
// non-finite values), trains `net` in place and records the run in its metadata ("trained",
// "training"). With options.resume, `net` must be the checkpoint; training continues from the
// step recorded in it. Checkpoints are written atomically.
SdfTrainResult train_sdfnet(SdfNet& net, const std::vector<SdfTrainingPair>& pairs,
                            const SdfTrainOptions& options,
                            const SdfTrainProgressFn& progress = {});

// The element-wise mean of the weights (parameters and BatchNorm's running statistics) of models
// of one architecture (checkpoints of one training run: a weight average, Izmailov et al. 2018,
// steadier on unseen data than any single round), with the first model's metadata and the
// averaged files recorded in it ("weight_average"). InputError naming the file whose weights
// differ in name or shape from the first's, or whose input normalisation differs (weights learnt
// with other inputs do not average).
SdfNet average_sdfnet_weights(const std::vector<std::string>& paths);

// Mean absolute SDF error (mm) of `predicted` against `truth` over voxels whose true |sdf| is below
// `near_mm`, per output frame (4 values), for reporting validation tables.
std::vector<double> sdf_mae_near_surface(const Volume& predicted, const Volume& truth,
                                         double near_mm);

}  // namespace ddcsr
