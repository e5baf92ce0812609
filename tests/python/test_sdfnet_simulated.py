#!/usr/bin/python3
"""ddcsr train --sim on folders written by `ddcsr simulate`: features through compute_features,
exact SDF targets from the simulated surfaces; and training and inference see the same features
(`ddcsr sdf --dwi` on the scan equals `ddcsr sdf --features` on the pair saved by training)."""
import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

work = common.workdir("sdfnet_simulated")
subjects = []
for seed in (1, 2):
    out = os.path.join(work, f"sub{seed}")
    common.run("--threads", "2", "simulate", out, "--seed", seed, "--voxel-size", "2.5", "--sdf-voxel-size", "0", "--scale", "0.5",
               "--mesh-level", "5", "--shells", "1000:12", "--b0", "2", "--force")
    subjects.append(out)

# A model for the feature stage's channels on a 2 mm grid (small, for CI).
names = ("b0,fa,md,ad,rd,l1,l2,l3,sm_b1000,sm_b2500,midline,mask")
init = os.path.join(work, "init.pt")
subprocess.run(["/usr/bin/python3", os.path.join(common.SOURCE, "models", "sdfnet.py"), "export",
                "--channels", names, "--spacing", "2", "--width", "8", "--levels", "3", "-o", init],
               check=True, capture_output=True)

# A model whose midline channel is not marked left-right signed would learn the wrong hemisphere
# from mirrored patches: refused before any data is read.
unsigned = os.path.join(work, "unsigned.pt")
subprocess.run(["/usr/bin/python3", os.path.join(common.SOURCE, "models", "sdfnet.py"), "export",
                "--channels", names, "--lr-signed", "", "--spacing", "2", "--width", "8", "--levels", "3",
                "-o", unsigned], check=True, capture_output=True)
proc = common.run("train", "--model", unsigned, "-o", os.path.join(work, "never.pt"), "--sim", subjects[0],
                  "--steps", "1", expect=None)
assert proc.returncode != 0 and "left-right signed" in proc.stderr and unsigned in proc.stderr, proc.stderr
assert not os.path.exists(os.path.join(work, "never.pt"))

trained = os.path.join(work, "trained.pt")
pairs = os.path.join(work, "pairs")
common.run("--threads", "2", "train", "--model", init, "-o", trained, "--sim", subjects[0], "--sim", subjects[1],
           "--steps", "4", "--patch", "32", "--val-every", "2", "--val-patches", "2", "--save-pairs", pairs)
extra = {"metadata.json": ""}
torch.jit.load(trained, _extra_files=extra)
meta = json.loads(extra["metadata.json"])
assert meta["training"]["step"] == 4
assert len(meta["training"]["training_pairs"]) == 1 and len(meta["training"]["validation_pairs"]) == 1

# An explicit validation subject (--val-sim) is never trained on; --best keeps the model of the
# lowest validation error.
best = os.path.join(work, "best.pt")
log = common.run("--threads", "2", "train", "--model", init, "-o", os.path.join(work, "trained_val.pt"), "--sim",
                 subjects[0], "--val-sim", subjects[1], "--best", best, "--steps", "4", "--patch", "32",
                 "--val-every", "2", "--val-patches", "2").stderr
extra = {"metadata.json": ""}
torch.jit.load(best, _extra_files=extra)
training = json.loads(extra["metadata.json"])["training"]
assert training["training_pairs"] == [subjects[0]] and training["validation_pairs"] == [subjects[1]], training
assert training["best_step"] == training["step"] and training["step"] in (2, 4), training
assert f"best validation: step {training['best_step']}" in log, log

saved = sorted(os.listdir(pairs))
assert len(saved) == 4, saved
feat_path = os.path.join(pairs, [f for f in saved if f.startswith("0_") and f.endswith("_features.nii.gz")][0])
sdf_path = feat_path.replace("_features.nii.gz", "_sdf.nii.gz")
feat, target = nib.load(feat_path), nib.load(sdf_path)
assert feat.shape[3] == 12 and target.shape[3] == 4 and feat.shape[:3] == target.shape[:3]
assert np.allclose(feat.affine, target.affine)
assert np.allclose(np.abs(np.diag(feat.affine)[:3]), 2.0), feat.affine
assert all(n % 8 == 0 for n in feat.shape[:3]), feat.shape

# Exact targets agree with the simulator's own SDF (computed on its 2.5 mm grid) where both are
# defined: sample the simulator's lh.white at the target grid's voxel centres (nearest voxel).
sim_sdf = nib.load(os.path.join(subjects[0], "sdf", "lh.white.nii.gz"))
t = target.get_fdata()[..., 0]
ijk = np.stack(np.meshgrid(*[np.arange(n) for n in t.shape], indexing="ij"), -1).reshape(-1, 3)
ras = ijk @ target.affine[:3, :3].T + target.affine[:3, 3]
vox = np.rint((ras - sim_sdf.affine[:3, 3]) @ np.linalg.inv(sim_sdf.affine[:3, :3]).T).astype(int)
ok = np.all((vox >= 0) & (vox < sim_sdf.shape[:3]), axis=1)
s = sim_sdf.get_fdata()[tuple(vox[ok].T)]
near = np.abs(s) < 3
err = np.abs(t.reshape(-1)[ok][near] - s[near])
# Nearest-voxel sampling misplaces points by up to 2.2 mm (half the 2.5 mm diagonal).
assert np.median(err) < 1.0 and near.sum() > 100, (np.median(err), near.sum())

# Same features in training and inference.
a, b = os.path.join(work, "via_dwi.nii.gz"), os.path.join(work, "via_features.nii.gz")
common.run("--threads", "2", "sdf", "--model", trained, "--dwi", os.path.join(subjects[0], "dwi.nii.gz"),
           "--mask", os.path.join(subjects[0], "mask.nii.gz"), "-o", a)
common.run("--threads", "2", "sdf", "--model", trained, "--features", feat_path, "-o", b)
ya, yb = nib.load(a), nib.load(b)
assert ya.shape == yb.shape and np.allclose(ya.affine, yb.affine)
diff = np.abs(ya.get_fdata() - yb.get_fdata()).max()
assert diff < 1e-4, diff

# A real pair as a lab gives it (--scan DWI,SURF_DIR[,AFFINE[,MASK]]): FreeSurfer surfaces whose
# footer holds c_ras, here written in another world (a rigid move M of the scan's) and brought back
# by AFFINE = M^-1, must give the targets and features of the same subject given as --sim.
sub = subjects[0]
moved_surf = os.path.join(work, "surf_moved")
os.makedirs(moved_surf, exist_ok=True)
angle = np.radians(12.0)
move = np.array([[np.cos(angle), -np.sin(angle), 0, 7.5], [np.sin(angle), np.cos(angle), 0, -4.0],
                 [0, 0, 1, 11.0], [0, 0, 0, 1]])
for name in ("lh.white", "lh.pial", "rh.white", "rh.pial"):
    coords, faces, info = nib.freesurfer.read_geometry(os.path.join(sub, "surf", name), read_metadata=True)
    scanner = coords + info["cras"]
    moved = scanner @ move[:3, :3].T + move[:3, 3]
    nib.freesurfer.write_geometry(os.path.join(moved_surf, name), moved - info["cras"], faces, volume_info=info)
affine_txt = os.path.join(work, "surf_to_scan.txt")
np.savetxt(affine_txt, np.linalg.inv(move), header="surfaces' scanner RAS -> the DWI's scanner RAS")
via_sim, via_scan, via_moved = (os.path.join(work, n) for n in ("pairs_sim", "pairs_scan", "pairs_moved"))
dwi, mask = os.path.join(sub, "dwi.nii.gz"), os.path.join(sub, "mask.nii.gz")
for data, out in ((["--sim", sub], via_sim), (["--scan", f"{dwi},{os.path.join(sub, 'surf')},,{mask}"], via_scan),
                  (["--scan", f"{dwi},{moved_surf},{affine_txt},{mask}"], via_moved)):
    common.run("--threads", "2", "train", "--model", init, "-o", os.path.join(work, "pair_check.pt"), *data,
               "--steps", "1", "--patch", "16", "--batch", "1", "--val-every", "0", "--save-pairs", out)


def saved_pair(folder):
    names = sorted(os.listdir(folder))
    assert len(names) == 2, names
    return [nib.load(os.path.join(folder, n)) for n in names]  # features, sdf


(f_sim, t_sim), (f_scan, t_scan), (f_moved, t_moved) = (saved_pair(d) for d in (via_sim, via_scan, via_moved))
assert np.allclose(f_sim.affine, f_scan.affine) and np.allclose(f_sim.affine, f_moved.affine)
assert np.array_equal(f_sim.get_fdata(), f_scan.get_fdata()), "--scan features differ from --sim"
assert np.array_equal(f_sim.get_fdata(), f_moved.get_fdata()), "--scan features differ from --sim"
assert np.abs(t_sim.get_fdata() - t_scan.get_fdata()).max() < 1e-4, "--scan targets differ from --sim"
# float32 vertex coordinates moved there and back: differences of micrometres.
d = np.abs(t_sim.get_fdata() - t_moved.get_fdata()).max()
assert d < 0.01, f"--scan with AFFINE: targets differ from --sim by {d} mm"
# Without the affine the moved surfaces give different targets (the affine is not ignored).
unaligned = os.path.join(work, "pairs_unaligned")
common.run("--threads", "2", "train", "--model", init, "-o", os.path.join(work, "pair_check.pt"), "--scan",
           f"{dwi},{moved_surf},,{mask}", "--steps", "1", "--patch", "16", "--batch", "1", "--val-every", "0",
           "--save-pairs", unaligned)
assert np.abs(t_sim.get_fdata() - saved_pair(unaligned)[1].get_fdata()).max() > 3

# Fine-tuning a trained model keeps the input normalisation its weights were learnt with; an
# untrained export takes it from the data; --normalisation data|keep overrides.


def normalisation(path):
    m = torch.jit.load(path)
    return m.input_mean.flatten().numpy(), m.input_std.flatten().numpy()


tuned = os.path.join(work, "tuned.pt")
for mode in ("auto", "data"):
    log = common.run("--threads", "2", "train", "--model", trained, "-o", tuned, "--sim", subjects[1], "--steps", "1",
                     "--patch", "16", "--batch", "1", "--val-every", "0", "--normalisation", mode).stderr
    same = all(np.array_equal(a, b) for a, b in zip(normalisation(trained), normalisation(tuned)))
    assert same == (mode == "auto"), (mode, normalisation(trained), normalisation(tuned))
    assert ("kept from the starting model" if mode == "auto" else "from the training features") in log, log
log = common.run("--threads", "2", "train", "--model", init, "-o", tuned, "--sim", subjects[1], "--steps", "1",
                 "--patch", "16", "--batch", "1", "--val-every", "0", "--normalisation", "keep").stderr
assert all(np.array_equal(a, b) for a, b in zip(normalisation(init), normalisation(tuned))), "keep ignored"
assert "kept from the starting model" in log, log
print("test_sdfnet_simulated: ok")
