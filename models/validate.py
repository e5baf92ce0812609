#!/usr/bin/python3
"""Validation table of an SDFNet model on held-out simulated subjects.

    models/validate.py --model MODEL.pt [--ddcsr build/ddcsr] [--work DIR] SIM_DIR [SIM_DIR ...]

For each folder written by `ddcsr simulate` (never trained on), runs `ddcsr sdf --dwi` (features
computed exactly as `recon` does, on the model's grid) and compares the predicted signed distances
with the subject's ground-truth SDF volumes (sdf/*.nii.gz, sampled trilinearly at the prediction
grid's voxel centres; `ddcsr simulate` writes them on a 0.8 mm grid, so sampling adds < 0.1 mm).
Reports, per surface, the mean absolute error over the voxels within 3 mm of the true surface
(|truth| < 3 mm), the issue's measure. `--on model` (the default, as every table in
models/README.md until 2026-11-24) takes the voxels of the prediction's grid; `--on truth` takes
those of the truth's 0.8 mm grid and samples the prediction trilinearly there, as the meshes of
`recon` do: a measure that does not depend on the model's grid, so models on different grids
compare fairly (a coarse grid's error grows between its voxel centres). Also the deep sign
errors (percent of the voxels more than 5 mm inside a true surface predicted outside, over the four maps: deep white matter predicted
"outside" was the fault that made recon's sign repair necessary); and the inference
wall time and peak memory of the `ddcsr sdf` process. Prints one markdown table.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
from scipy.ndimage import map_coordinates

SURFACES = ["lh.white", "lh.pial", "rh.white", "rh.pial"]


def run_timed(cmd):
    """Wall seconds and peak resident MB of `cmd`. The peak comes from /usr/bin/time: a child's
    own rusage would also count the pages of this (large) Python process that the child had
    before exec."""
    start = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return wall, int(proc.stderr.strip().splitlines()[-1]) / 1024.0


def grid_pairing(grid_shape, grid_affine, other_shape, other_affine):
    """The voxels of one grid that lie inside another (a flat mask) and their continuous voxel
    coordinates in the other."""
    ijk = np.indices(grid_shape).reshape(3, -1)
    world = grid_affine @ np.vstack([ijk, np.ones((1, ijk.shape[1]))])
    xyz = (np.linalg.inv(other_affine) @ world)[:3]
    inside = np.all((xyz >= 0) & (xyz <= np.array(other_shape)[:, None] - 1), axis=0)
    return inside, xyz[:, inside]


def sample_pair(truth_img, pred_affine, pred, on, pairings=None, order=1):
    """Truth and prediction at the same points: the voxels of one grid (`on`), the other sampled
    there, trilinearly or (order 3) by cubic B-spline (only points inside both grids). `pairings` (a dict) keeps the grid pairing
    for the next call on the same grids: the four truth maps of a subject share one grid."""
    truth_vol = truth_img.get_fdata(dtype=np.float32)
    grid, other = (pred, pred_affine), (truth_vol, truth_img.affine)
    if on == "truth":
        grid, other = other, grid
    key = (grid[0].shape, grid[1].tobytes(), other[0].shape, other[1].tobytes())
    pairings = {} if pairings is None else pairings
    if key not in pairings:
        pairings[key] = grid_pairing(grid[0].shape, grid[1], other[0].shape, other[1])
    inside, xyz = pairings[key]
    on_grid = grid[0].reshape(-1)[inside]
    sampled = map_coordinates(other[0], xyz, order=order, mode="mirror")
    return (sampled, on_grid) if on == "model" else (on_grid, sampled)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--ddcsr", default=os.path.join(here, "..", "build", "ddcsr"))
    ap.add_argument("--work", default="/tmp/ddcsr-validate")
    ap.add_argument("--band-mm", type=float, default=3.0)
    ap.add_argument("--on", choices=["model", "truth"], default="model",
                    help="grid whose voxels are compared: the prediction's, or the truth's (0.8 mm)")
    ap.add_argument("--interp", choices=["linear", "cubic"], default="linear",
                    help="how the other grid is sampled: trilinear, or cubic B-spline (as recon "
                         "resamples the network's maps to its 1 mm grid since 2026-11-24, session 8)")
    ap.add_argument("subjects", nargs="+")
    a = ap.parse_args()
    if not os.access("/usr/bin/time", os.X_OK):
        sys.exit("validate.py: /usr/bin/time is needed for peak memory (apt-get install time)")
    os.makedirs(a.work, exist_ok=True)
    rows = []
    for sim in a.subjects:
        meta = json.load(open(os.path.join(sim, "meta.json")))
        name = os.path.basename(os.path.normpath(sim))
        pred_path = os.path.join(a.work, name + "_sdf.nii.gz")
        wall, rss = run_timed([a.ddcsr, "-q", "sdf", "--model", a.model, "--dwi", os.path.join(sim, "dwi.nii.gz"),
                               "-o", pred_path])
        pred = nib.load(pred_path)
        p = pred.get_fdata(dtype=np.float32)
        maes = []
        far_wrong = far_total = 0
        pairings = {}
        for s, surface in enumerate(SURFACES):
            truth_img = nib.load(os.path.join(sim, "sdf", surface + ".nii.gz"))
            truth, predicted = sample_pair(truth_img, pred.affine, p[..., s], a.on, pairings,
                                           order=1 if a.interp == "linear" else 3)
            near = np.abs(truth) < a.band_mm
            maes.append(float(np.abs(predicted[near] - truth[near]).mean()))
            far = truth < -5.0
            far_wrong += int(np.count_nonzero(predicted[far] > 0))
            far_total += int(np.count_nonzero(far))
        acq = meta.get("acquisition", {})
        source = meta.get("geometry", {}).get("source", "")
        geometry = os.path.basename(source) if os.path.sep in source else source or "?"
        rows.append((name, acq.get("voxel_size_mm", "?"), acq.get("shells", "?"), acq.get("snr", "?"), geometry, maes,
                     100.0 * far_wrong / max(far_total, 1), wall, rss))
    print(f"MAE over the voxels of the {'prediction' if a.on == 'model' else 'truth'} grid within {a.band_mm:g} mm "
          f"of each true surface (mm), the other grid sampled by {a.interp} interpolation\n")
    print(f"| subject | voxel (mm) | shells | SNR | geometry | " + " | ".join(SURFACES) +
          " | mean | deep sign errors (%) | inference (s) | peak (MB) |")
    print("|---" * (5 + len(SURFACES) + 4) + "|")
    for name, vox, shells, snr, geom, maes, far, wall, rss in rows:
        print(f"| {name} | {vox} | {shells} | {snr} | {geom} | " + " | ".join(f"{m:.3f}" for m in maes) +
              f" | **{np.mean(maes):.3f}** | {far:.2f} | {wall:.1f} | {rss:.0f} |")


if __name__ == "__main__":
    main()
