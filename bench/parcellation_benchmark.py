#!/usr/bin/python3
"""Correspondence with fsaverage on phantoms made from fsaverage5 (issue 27): how often the labels
that `recon` / `ddcsr parcellate` give agree with the truth, how far sphere.reg lands from where
each vertex belongs, and how well thickness carried to fsaverage5 follows the true thickness.

    bench/parcellation_benchmark.py SUBJECT=TRUTH [SUBJECT=TRUTH ...] [--ddcsr build/ddcsr]
        [--run] [--threads 2]

SUBJECT is a recon output folder (surf/, label/), TRUTH a phantom whose truth surfaces
(TRUTH/surf/{lh,rh}.white, .pial) start with fsaverage5's 10,242 vertices in fsaverage5's order
(the held-out family's phantoms in /work/placement/phantoms, `simulate --geometry` subjects), so
true vertex i is fsaverage5 vertex i. The truth label of a subject vertex is the fsaverage5 label
of the nearest true white vertex; agreement is weighted by the subject's vertex areas, over the
whole surface (medial wall included). --run first runs `ddcsr surface-maps` (when surf/lh.sphere
is missing), `ddcsr parcellate --atlas aparc,aparc.a2009s` and `ddcsr resample --map thickness`,
timed. Prints a markdown table.
"""
import argparse
import os
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
from nibabel.freesurfer import read_annot, read_geometry, read_morph_data
from scipy.spatial import cKDTree

HERE = os.path.dirname(os.path.abspath(__file__))
ATLAS = os.path.join(HERE, "..", "data", "fsaverage5")


def vertex_areas(v, f):
    fa = 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    a = np.zeros(len(v))
    for k in range(3):
        np.add.at(a, f[:, k], fa / 3)
    return a


def run_tools(ddcsr, subject, threads):
    surf = os.path.join(subject, "surf")
    t0 = time.time()
    for hemi in ["lh", "rh"]:
        if not os.path.exists(os.path.join(surf, f"{hemi}.sphere")):
            subprocess.run([ddcsr, "--threads", str(threads), "surface-maps", "--white", f"{surf}/{hemi}.white",
                            "--pial", f"{surf}/{hemi}.pial", "-o", surf], check=True, capture_output=True)
    t1 = time.time()
    subprocess.run([ddcsr, "--threads", str(threads), "parcellate", subject, "--atlas", "aparc,aparc.a2009s"],
                   check=True, capture_output=True)
    t2 = time.time()
    subprocess.run([ddcsr, "--threads", str(threads), "resample", subject, "--map", "thickness"],
                   check=True, capture_output=True)
    return t1 - t0, t2 - t1, time.time() - t2


def evaluate(subject, truth, hemi):
    side = "left" if hemi == "lh" else "right"
    sv, sf = read_geometry(os.path.join(subject, "surf", f"{hemi}.white"))
    tv, _ = read_geometry(os.path.join(truth, "surf", f"{hemi}.white"))
    tp, _ = read_geometry(os.path.join(truth, "surf", f"{hemi}.pial"))
    nearest = cKDTree(tv[:10242]).query(sv)[1]
    va = vertex_areas(sv, sf)
    row = {}
    for atlas in ["aparc", "aparc.a2009s"]:
        tl, _, tn = read_annot(os.path.join(ATLAS, "label", f"{hemi}.{atlas}.annot"))
        pl, _, pn = read_annot(os.path.join(subject, "label", f"{hemi}.{atlas}.annot"))
        true_name = np.array([tn[k] if k >= 0 else b"" for k in tl])[nearest]
        got_name = np.array([pn[k] if k >= 0 else b"" for k in pl])
        row[atlas] = 100 * (va * (true_name == got_name)).sum() / va.sum()
    reg, _ = read_geometry(os.path.join(subject, "surf", f"{hemi}.sphere.reg"))
    fs_sphere = nib.load(os.path.join(ATLAS, f"sphere_{side}.gii.gz")).darrays[0].data.astype(np.float64)
    ideal = fs_sphere[nearest]
    cosang = (reg * ideal).sum(1) / np.linalg.norm(reg, axis=1) / np.linalg.norm(ideal, axis=1)
    angle = np.degrees(np.arccos(np.clip(cosang, -1, 1)))
    row["reg_median"], row["reg_p90"] = np.median(angle), np.percentile(angle, 90)
    # True thickness at fsaverage5's vertices (FreeSurfer's definition on the dense truth meshes).
    true_th = 0.5 * (cKDTree(tp).query(tv[:10242])[0] + cKDTree(tv).query(tp[:10242])[0])
    carried = os.path.join(subject, "fsaverage5", f"{hemi}.thickness.fsaverage5")
    row["thickness_r"] = np.corrcoef(true_th, read_morph_data(carried))[0, 1] if os.path.exists(carried) else float("nan")
    # The same with the true correspondence: what the reconstruction's thickness allows at best.
    own = read_morph_data(os.path.join(subject, "surf", f"{hemi}.thickness"))
    row["thickness_r_ideal"] = np.corrcoef(true_th, own[cKDTree(sv).query(tv[:10242])[1]])[0, 1]
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", nargs="+", help="SUBJECT=TRUTH")
    ap.add_argument("--ddcsr", default=os.path.join(HERE, "..", "build", "ddcsr"))
    ap.add_argument("--run", action="store_true", help="run surface-maps, parcellate and resample first")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    print("| subject | hemi | DK agreement % | Destrieux % | sphere.reg error median / p90 (deg) "
          "| thickness r on fsaverage5 (true correspondence) | seconds maps / parcellate / resample |")
    print("|---|---|---|---|---|---|---|")
    for pair in a.pairs:
        if "=" not in pair:
            sys.exit(f"{pair}: expected SUBJECT=TRUTH")
        subject, truth = pair.split("=", 1)
        times = run_tools(a.ddcsr, subject, a.threads) if a.run else None
        for hemi in ["lh", "rh"]:
            r = evaluate(subject, truth, hemi)
            t = " / ".join(f"{x:.0f}" for x in times) if times and hemi == "lh" else ""
            print(f"| {os.path.basename(subject.rstrip('/'))} | {hemi} | {r['aparc']:.1f} | {r['aparc.a2009s']:.1f} | "
                  f"{r['reg_median']:.1f} / {r['reg_p90']:.1f} | {r['thickness_r']:.2f} ({r['thickness_r_ideal']:.2f}) | {t} |")


if __name__ == "__main__":
    main()
