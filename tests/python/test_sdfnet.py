#!/usr/bin/python3
"""ddcsr train / ddcsr sdf end to end: a model exported by models/sdfnet.py, trained for a few steps
on a tiny phantom written with nibabel, then run; outputs checked with nibabel and torch (the same
TorchScript file run in Python must agree with ddcsr's whole-volume inference, one pass and
mirror-averaged)."""
import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

work = common.workdir("sdfnet")
channels = "white_like,pial_like,noise"
init = os.path.join(work, "init.pt")
subprocess.run(["/usr/bin/python3", os.path.join(common.SOURCE, "models", "sdfnet.py"), "export",
                "--channels", channels, "--spacing", "2", "--width", "8", "--levels", "2", "-o", init],
               check=True, capture_output=True)

# Phantom: two spheres (white r=6, pial r=9) left and right of the midline, 2 mm LAS grid.
dims = (26, 20, 18)
affine = np.array([[-2.0, 0, 0, 25], [0, 2, 0, -19], [0, 0, 2, -17], [0, 0, 0, 1]])
ijk = np.stack(np.meshgrid(*[np.arange(n) for n in dims], indexing="ij"), -1)
ras = ijk @ affine[:3, :3].T + affine[:3, 3]
dl = np.linalg.norm(ras - [-12, 0, 0], axis=-1)
dr = np.linalg.norm(ras - [12, 0, 0], axis=-1)
sdf = np.stack([dl - 6, dl - 9, dr - 6, dr - 9], -1).astype(np.float32)
d = np.minimum(dl, dr)
rng = np.random.default_rng(0)
feat = np.stack([1 / (1 + np.exp(d - 6)), 1 / (1 + np.exp(d - 9)), rng.uniform(-0.5, 0.5, dims)], -1)
feat = feat.astype(np.float32)
fpath, spath = os.path.join(work, "features.nii.gz"), os.path.join(work, "sdf.nii.gz")
nib.save(nib.Nifti1Image(feat, affine), fpath)
nib.save(nib.Nifti1Image(sdf, affine), spath)

# Metadata readable by --info and by torch's own reader.
info = json.loads(common.run("sdf", "--model", init, "--info").stdout)
assert info["input_channels"] == channels.split(","), info
assert info["outputs"] == ["lh.white", "lh.pial", "rh.white", "rh.pial"]
extra = {"metadata.json": ""}
torch.jit.load(init, _extra_files=extra)
assert json.loads(extra["metadata.json"])["format"] == "ddcsr-sdfnet"

trained = os.path.join(work, "trained.pt")
proc = common.run("--threads", "2", "train", "--model", init, "-o", trained, "--pair", fpath, spath,
                  "--steps", "12", "--patch", "16", "--clip-mm", "8", "--lr", "0.005", "--val-every", "6",
                  "--val-patches", "2", "--checkpoint-every", "6")
log = proc.stderr
assert "ETA" in log and "loss" in log, log
assert os.path.exists(os.path.join(work, "trained.ckpt.pt")), os.listdir(work)
extra = {"metadata.json": ""}
torch.jit.load(trained, _extra_files=extra)
meta = json.loads(extra["metadata.json"])
assert meta["trained"] is True and meta["training"]["step"] == 12, meta["training"]
assert len(meta["normalisation_values"]["mean"]) == 3

# Resume continues from the checkpoint.
proc = common.run("train", "-o", trained, "--resume", "--pair", fpath, spath, "--steps", "14", "--patch", "16",
                  "--val-every", "0")
extra = {"metadata.json": ""}
torch.jit.load(trained, _extra_files=extra)
assert json.loads(extra["metadata.json"])["training"]["step"] == 14

out = os.path.join(work, "pred.nii.gz")
common.run("--threads", "2", "sdf", "--model", trained, "--features", fpath, "-o", out, "--mode", "whole")
img = nib.load(out)
assert img.shape == dims + (4,), img.shape
assert np.allclose(img.affine, affine, atol=1e-4), img.affine
pred = img.get_fdata().astype(np.float32)
assert np.all(np.isfinite(pred))

# The same TorchScript in Python, padded the same way, gives the same numbers: one pass with
# --no-mirror; by default the mean of that pass and the pass on the left-right mirrored features
# (flipped along i, the grid's left-right axis; lr-signed channels negated), flipped back with lh
# and rh exchanged.
model = torch.jit.load(trained).eval()
extra = {"metadata.json": ""}
torch.jit.load(trained, _extra_files=extra)
lr_signed = [channels.split(",").index(c) for c in json.loads(extra["metadata.json"])["lr_signed_channels"]]
torch.set_num_threads(2)


def one_pass(f):
    x = torch.from_numpy(np.ascontiguousarray(f.transpose(3, 2, 1, 0)))[None]
    pad = [(-n) % 4 for n in dims]
    x = torch.nn.functional.pad(x, (0, pad[0], 0, pad[1], 0, pad[2]))
    with torch.no_grad():
        return model(x)[0, :, :dims[2], :dims[1], :dims[0]].numpy().transpose(3, 2, 1, 0)


direct = one_pass(feat)
mirrored = feat[::-1].copy()
mirrored[..., lr_signed] *= -1
averaged = 0.5 * (direct + one_pass(mirrored)[::-1][..., [2, 3, 0, 1]])
diff = np.abs(averaged - pred).max()
assert diff < 1e-3, diff
assert np.abs(direct - pred).max() > 10 * diff, "the mirrored pass changed nothing: the check is void"
single = os.path.join(work, "pred1.nii.gz")
common.run("--threads", "2", "sdf", "--model", trained, "--features", fpath, "-o", single, "--mode", "whole",
           "--no-mirror")
diff = np.abs(direct - nib.load(single).get_fdata()).max()
assert diff < 1e-3, diff

# Refusals: a model for other channels with --dwi features (exit 3), a wrong frame count (exit 3),
# an unknown device (exit 2).
bad = os.path.join(work, "feat2.nii.gz")
nib.save(nib.Nifti1Image(feat[..., :2], affine), bad)
p = common.run("sdf", "--model", trained, "--features", bad, "-o", out, expect=3)
assert "feat2.nii.gz" in p.stderr and "3 channels" in p.stderr, p.stderr
p = common.run("sdf", "--model", trained, "--dwi", fpath, "-o", out, expect=3)
assert "input channels" in p.stderr, p.stderr
common.run("sdf", "--model", trained, "--features", fpath, "-o", out, "--device", "tpu", expect=2)
print("test_sdfnet: ok")
