#!/usr/bin/python3
"""Label-free agreement of SDFNet models with real diffusion scans: which model to trust on real
data when no scan has ground-truth surfaces.

    bench/real_agreement.py --scan NAME=DWI [--scan ...] [--t1 NAME=T1] --model NAME=MODEL.pt ...
                            [--ddcsr build/ddcsr] [--work DIR] [--report FILE]

For each scan, `ddcsr features` (1 mm grid) gives the feature maps and `ddcsr sdf --dwi` each
model's four signed distance maps, resampled (trilinear) onto the feature grid. Inside the brain
mask, with bands 0.5-1.5 mm inside and outside each predicted surface (its SDF's level sets):
- white: FA inside minus FA outside (white matter is anisotropic, cortex is not);
- pial: MD outside minus MD inside (sulcal and outer CSF diffuses freely, cortex does not);
- pial in mask: % of the voxels within 0.5 mm of the pial level set that lie inside the mask.
FA and MD are in the features' robust z units (per-scan centre and scale), so the steps compare
across scanners. `composite` adds the three, each standardised over the models given (mean 0,
SD 1 over lh/rh means), so it ranks the models of one call; with several scans it is also
averaged over them, and over the scans without a T1 (the ones to choose by, leaving the T1 to
judge the choice). With --t1 (a T1 in the scan's scanner
space, same session), the T1 step across each surface (inside minus outside, intensity divided by
its median in the mask) is printed as an external check, and the Spearman correlation of each
scan's composite with it. A map fragment outside the brain, a white surface inside the white
matter or a pial surface short of the CSF all lower the score.
"""
import argparse
import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
from scipy.ndimage import map_coordinates
from scipy.stats import spearmanr

SURFACES = ["lh.white", "lh.pial", "rh.white", "rh.pial"]
BAND = (0.5, 1.5)


def resample(data, src_affine, shape, dst_affine, order=1):
    """`data` (on src_affine's grid) sampled at the voxel centres of a grid (shape, dst_affine)."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), 0).reshape(3, -1)
    ras = dst_affine[:3, :3] @ ijk + dst_affine[:3, 3:4]
    to_src = np.linalg.inv(src_affine)
    src = to_src[:3, :3] @ ras + to_src[:3, 3:4]
    return map_coordinates(data, src, order=order, mode="nearest").reshape(shape)


def load_features(folder):
    """(affine, {channel: 3D map}) of a `ddcsr features` output folder."""
    img = nib.load(os.path.join(folder, "features.nii.gz"))
    meta = json.load(open(os.path.join(folder, "features.json")))
    data = img.get_fdata(dtype=np.float32)
    return img.affine, {c["name"]: data[..., c["index"]] for c in meta["channels"]}


def band_step(image, sdf, where):
    """Mean of `image` in the band inside the level set minus the band outside, within `where`."""
    inside = where & (sdf > -BAND[1]) & (sdf < -BAND[0])
    outside = where & (sdf > BAND[0]) & (sdf < BAND[1])
    if not inside.any() or not outside.any():
        return float("nan")
    return float(image[inside].mean() - image[outside].mean())


def agreement(affine, channels, sdf, sdf_affine, t1=None):
    """Measures of one set of four SDF maps (array X x Y x Z x 4, frames as SURFACES) against
    the feature maps of its scan; t1: optional (data, affine). Returns {measure_hemi: value}."""
    shape = channels["fa"].shape
    mask = channels["mask"] > 0.5
    t1_grid = None
    if t1 is not None:
        t1_grid = resample(t1[0], t1[1], shape, affine)
        t1_grid = t1_grid / np.median(t1_grid[mask])
    out = {}
    for k, name in enumerate(SURFACES):
        hemi, kind = name.split(".")
        level = resample(sdf[..., k], sdf_affine, shape, affine)
        if kind == "white":
            out[f"white_fa_{hemi}"] = band_step(channels["fa"], level, mask)
        else:
            out[f"pial_md_{hemi}"] = -band_step(channels["md"], level, mask)
            near = np.abs(level) < BAND[0]
            out[f"pial_in_mask_{hemi}"] = 100.0 * float((near & mask).sum()) / max(int(near.sum()), 1)
        if t1_grid is not None:
            out[f"t1_{kind}_{hemi}"] = band_step(t1_grid, level, np.ones(shape, bool))
    return out


def both(row, measure):
    return 0.5 * (row[f"{measure}_lh"] + row[f"{measure}_rh"])


def composite(rows, names):
    """Sum over the three measures of each model's standardised (over `names`) lh/rh mean."""
    total = np.zeros(len(names))
    for measure in ["white_fa", "pial_md", "pial_in_mask"]:
        v = np.array([both(rows[n], measure) for n in names])
        total += (v - v.mean()) / (v.std() if v.std() > 0 else 1.0)
    return total


def name_value(text, what):
    if "=" not in text:
        sys.exit(f"{what} {text}: expected NAME=PATH")
    name, path = text.split("=", 1)
    if not os.path.exists(path):
        sys.exit(f"{path}: no such file")
    return name, path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scan", action="append", required=True, help="NAME=DWI (.bval/.bvec beside it)")
    ap.add_argument("--t1", action="append", default=[], help="NAME=T1 in that scan's scanner space")
    ap.add_argument("--model", action="append", required=True, help="NAME=MODEL.pt")
    ap.add_argument("--ddcsr", default="ddcsr")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--work", default="/tmp/ddcsr-real-agreement")
    ap.add_argument("--report", help="also write the table (markdown) here")
    a = ap.parse_args()
    scans = dict(name_value(s, "--scan") for s in a.scan)
    t1s = dict(name_value(s, "--t1") for s in a.t1)
    models = dict(name_value(s, "--model") for s in a.model)
    for name in t1s:
        if name not in scans:
            sys.exit(f"--t1 {name}: no --scan of that name")
    names = list(models)
    rows = {}  # (scan, model) -> measures
    for scan, dwi in scans.items():
        feat = os.path.join(a.work, scan, "features")
        if not os.path.exists(os.path.join(feat, "features.json")):
            subprocess.run([a.ddcsr, "-q", "--threads", a.threads, "features", dwi, "-o", feat, "--spacing", "1"],
                           check=True)
        affine, channels = load_features(feat)
        t1 = None
        if scan in t1s:
            img = nib.load(t1s[scan])
            t1 = (img.get_fdata(dtype=np.float32), img.affine)
        for model, path in models.items():
            out = os.path.join(a.work, scan, f"{model}.nii.gz")
            subprocess.run([a.ddcsr, "-q", "--threads", a.threads, "sdf", "--model", path, "--dwi", dwi, "-o", out],
                           check=True)
            img = nib.load(out)
            rows[scan, model] = agreement(affine, channels, img.get_fdata(dtype=np.float32), img.affine, t1)

    head = ["model"]
    for scan in scans:
        head += [f"{scan} white FA step", f"{scan} pial MD step", f"{scan} pial in mask %", f"{scan} composite"]
        if scan in t1s:
            head += [f"{scan} T1 step white", f"{scan} T1 step pial"]
    comps = {scan: composite({m: rows[scan, m] for m in names}, names) for scan in scans}
    # To choose a model, average over several scans; keep scans with a T1 out of the choice so
    # that their T1 can judge it.
    pooled = {}
    if len(scans) > 1:
        pooled["mean composite"] = np.mean([comps[s] for s in scans], axis=0)
    unjudged = [s for s in scans if s not in t1s]
    if t1s and len(unjudged) > 0 and len(unjudged) < len(scans):
        pooled["composite of scans without a T1"] = np.mean([comps[s] for s in unjudged], axis=0)
    head += list(pooled)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, model in enumerate(names):
        cells = [model]
        for scan in scans:
            r = rows[scan, model]
            cells += [f"{r['white_fa_lh']:.3f} / {r['white_fa_rh']:.3f}", f"{r['pial_md_lh']:.3f} / {r['pial_md_rh']:.3f}",
                      f"{r['pial_in_mask_lh']:.1f} / {r['pial_in_mask_rh']:.1f}", f"{comps[scan][i]:+.2f}"]
            if scan in t1s:
                cells += [f"{r['t1_white_lh']:.3f} / {r['t1_white_rh']:.3f}", f"{r['t1_pial_lh']:.3f} / {r['t1_pial_rh']:.3f}"]
        cells += [f"{v[i]:+.2f}" for v in pooled.values()]
        lines.append("| " + " | ".join(cells) + " |")
    if len(names) >= 3:
        for t1_scan in t1s:
            for kind in ["white", "pial"]:
                t1v = [both(rows[t1_scan, m], f"t1_{kind}") for m in names]
                lines.append("")
                ranked = {**comps, **pooled}
                lines.append(f"Spearman of each composite with {t1_scan}'s T1 step at {kind}: " + ", ".join(
                    f"{label} {spearmanr(v, t1v)[0]:+.2f}" for label, v in ranked.items()))
    text = "\n".join(lines)
    print(text)
    if a.report:
        with open(a.report, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
