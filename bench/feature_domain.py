#!/usr/bin/python3
"""How the diffusion features of real scans and of simulated subjects differ: the domain gap that
a network trained on phantoms meets on a real scan.

    bench/feature_domain.py FEATURE_DIR [FEATURE_DIR ...]

Each FEATURE_DIR is written by `ddcsr features DWI -o FEATURE_DIR --spacing 2` (features.json,
features.nii.gz, mask.nii.gz): the same normalised channels the network sees. `ddcsr features`
normalises each channel per subject (robust z: median and spread inside the mask), so what
can differ is the shape of the distributions, not their centre. Per subject the table gives the
raw FA median and spread (the normalisation's centre and scale), the share of the mask with
FA > 0.4 (white-matter-like) and with FA < 0.15 (grey matter and CSF), and the median normalised
b0, MD and spherical means in those two classes: the contrasts between tissue that the network
learns the boundaries from.
"""
import argparse
import json
import os

import nibabel as nib
import numpy as np

CONTRASTS = ["b0", "md", "sm_b1000", "sm_b2500"]


def feature_row(folder):
    meta = json.load(open(os.path.join(folder, "features.json")))
    channels = {c["name"]: c for c in meta["channels"]}
    names = [c["name"] for c in meta["channels"]]
    features = nib.load(os.path.join(folder, "features.nii.gz")).get_fdata(dtype=np.float32)
    mask = nib.load(os.path.join(folder, "mask.nii.gz")).get_fdata(dtype=np.float32) > 0.5
    fa_norm = channels["fa"]["normalisation"]
    fa = features[..., names.index("fa")] * fa_norm["scale"] + fa_norm["center"]
    high, low = mask & (fa > 0.4), mask & (fa < 0.15)
    row = {"fa_center": fa_norm["center"], "fa_scale": fa_norm["scale"],
           "high_fa_percent": 100.0 * high.sum() / mask.sum(), "low_fa_percent": 100.0 * low.sum() / mask.sum()}
    for name in CONTRASTS:
        channel = features[..., names.index(name)]
        row[name] = (float(np.median(channel[high])) if high.any() else float("nan"),
                     float(np.median(channel[low])) if low.any() else float("nan"))
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+")
    a = ap.parse_args()
    print("| features | FA median / spread | FA > 0.4 (%) | FA < 0.15 (%) | " +
          " | ".join(f"{c}: FA > 0.4 / < 0.15" for c in CONTRASTS) + " |")
    print("|---" * (4 + len(CONTRASTS)) + "|")
    for folder in a.folders:
        r = feature_row(folder)
        print(f"| {os.path.basename(os.path.normpath(folder))} | {r['fa_center']:.3f} / {r['fa_scale']:.3f} | "
              f"{r['high_fa_percent']:.0f} | {r['low_fa_percent']:.0f} | " +
              " | ".join(f"{r[c][0]:+.2f} / {r[c][1]:+.2f}" for c in CONTRASTS) + " |")
    print("\nNormalised channel medians (robust z per subject) in the two FA classes.")


if __name__ == "__main__":
    main()
