#!/usr/bin/python3
"""bench/real_agreement.py's measures on a phantom with true surfaces: the true SDF maps score a
larger FA step across white, a larger MD step across pial and no lower pial-in-mask share than the
same maps moved 2 mm in or out; the composite ranks them alike; a T1-like image steps across the true surfaces; and
the command runs end to end with a model."""
import importlib.util
import os
import subprocess
import sys

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import DDCSR, MODEL, SOURCE, check, finish, require_model, run, small_phantom, workdir  # noqa: E402

spec = importlib.util.spec_from_file_location("real_agreement", os.path.join(SOURCE, "bench", "real_agreement.py"))
real_agreement = importlib.util.module_from_spec(spec)
spec.loader.exec_module(real_agreement)

W = workdir("real_agreement")
phantom = small_phantom(os.path.join(W, "phantom"))
dwi = os.path.join(phantom, "dwi.nii.gz")
features = os.path.join(W, "features")
run("-q", "--threads", "2", "features", dwi, "-o", features, "--mask", os.path.join(phantom, "mask.nii.gz"),
    "--spacing", "1")
affine, channels = real_agreement.load_features(features)
frames = [nib.load(os.path.join(phantom, "sdf", f"{s}.nii.gz")) for s in real_agreement.SURFACES]
truth = np.stack([f.get_fdata(dtype=np.float32) for f in frames], -1)
sdf_affine = frames[0].affine

scores = {shift: real_agreement.agreement(affine, channels, truth - shift, sdf_affine) for shift in (-2.0, 0.0, 2.0)}
for hemi in ("lh", "rh"):
    t, inward, outward = scores[0.0], scores[-2.0], scores[2.0]
    check(t[f"white_fa_{hemi}"] > 0.3, f"{hemi}: FA step across the true white surface {t[f'white_fa_{hemi}']:.3f} > 0.3")
    check(t[f"pial_md_{hemi}"] > 0.3, f"{hemi}: MD step across the true pial surface {t[f'pial_md_{hemi}']:.3f} > 0.3")
    for moved, label in ((inward, "2 mm in"), (outward, "2 mm out")):
        for measure in ("white_fa", "pial_md"):
            key = f"{measure}_{hemi}"
            check(t[key] > moved[key] + 0.1, f"{key}: true {t[key]:.3f} above moved {label} {moved[key]:.3f}")
    check(t[f"pial_in_mask_{hemi}"] >= outward[f"pial_in_mask_{hemi}"],
          f"{hemi}: pial in mask, true {t[f'pial_in_mask_{hemi}']:.1f} % >= moved out {outward[f'pial_in_mask_{hemi}']:.1f} %")

# The composite ranks the three alike.
rows = {str(k): v for k, v in scores.items()}
comp = real_agreement.composite(rows, list(rows))
check(int(np.argmax(comp)) == 1, f"composite highest for the true maps: {dict(zip(rows, np.round(comp, 2)))}")
check(abs(comp.sum()) < 1e-9, "composite sums to 0 over the models given")

# A T1-like image from the phantom's tissue fractions (white brightest, then grey, then CSF): the
# T1 step is positive across the true surfaces.
fractions = nib.load(os.path.join(phantom, "fractions.nii.gz"))
f = fractions.get_fdata(dtype=np.float32)
t1_like = 0.1 + 1.0 * (f[..., 0] + f[..., 4]) + 0.6 * (f[..., 1] + f[..., 2]) + 0.2 * f[..., 3]
t1_path = os.path.join(W, "t1_like.nii.gz")
nib.save(nib.Nifti1Image(t1_like, fractions.affine), t1_path)
with_t1 = real_agreement.agreement(affine, channels, truth, sdf_affine, (t1_like, fractions.affine))
for key in ("t1_white_lh", "t1_pial_lh", "t1_white_rh", "t1_pial_rh"):
    check(with_t1[key] > 0.1, f"{key}: T1 step across the true surface {with_t1[key]:.3f} > 0.1")

# End to end: the command with the shipped model on the phantom, once with the T1 and once under
# another name without (three copies of one model: the composites are then 0; the columns, the
# pooled composites and the correlation lines are printed).
require_model()
proc = subprocess.run(["/usr/bin/python3", os.path.join(SOURCE, "bench", "real_agreement.py"), "--ddcsr", DDCSR,
                       "--scan", f"phantom={dwi}", "--t1", f"phantom={t1_path}", "--scan", f"again={dwi}",
                       "--model", f"a={MODEL}", "--model", f"b={MODEL}", "--model", f"c={MODEL}",
                       "--work", os.path.join(W, "bench"), "--report", os.path.join(W, "report.md")],
                      capture_output=True, text=True)
check(proc.returncode == 0, f"bench/real_agreement.py exits 0: {proc.stderr.strip()[-300:]}")
lines = proc.stdout.splitlines()
check(len([line for line in lines if line.startswith("| a ") or line.startswith("| b ") or line.startswith("| c ")]) == 3,
      "one row per model")
check(sum("Spearman" in line for line in lines) == 2, "a correlation line per T1 surface kind")
check("| again composite | mean composite | composite of scans without a T1 |" in lines[0],
      f"composites per scan, over both, over the scans without a T1: {lines[0]}")
check(all("composite of scans without a T1" in line for line in lines if "Spearman" in line),
      "the pooled composites are correlated with the T1 too")
check(os.path.exists(os.path.join(W, "report.md")), "--report written")
bad = subprocess.run(["/usr/bin/python3", os.path.join(SOURCE, "bench", "real_agreement.py"), "--scan", "x=/nonexistent.nii.gz",
                      "--model", f"a={MODEL}"], capture_output=True, text=True)
check(bad.returncode != 0 and "/nonexistent.nii.gz" in bad.stderr, f"a missing scan is named: {bad.stderr.strip()}")
finish()
