#!/usr/bin/python3
"""Where a same-session T1 puts the white and pial boundaries, vertex by vertex, relative to the
surfaces of `ddcsr recon` (FreeSurfer's criterion: the intensity half-way between the tissues).

    bench/t1_boundaries.py --t1 T1.nii.gz RECON_DIR [RECON_DIR ...] [--tentorium JSON] [--json FILE]

Why not the peak of the mean contrast (bench/t1_agreement.py): with samples 1 mm either side of a
white surface moved -3..+3 mm, the normalised contrast across grey matter and CSF,
(GM - CSF) / (GM + CSF), is two to three times that across white and grey matter, so the white
surface's peak lands on the nearest pial boundary whenever it is within reach (philips_enh: the
white and pial peaks of one reconstruction fall on the same place, 1.5-2 mm apart on surfaces
2.1 mm apart).

Here the T1's three tissue levels (CSF < grey < white matter on a T1) are the centres of a
three-class 1D k-means over the T1 sampled along the normals of all the surfaces (-4..+4 mm):
what the surfaces pass through, whatever the scanner's scale. Along each vertex's outward
normal the T1 (trilinear) is searched over -3..+3 mm for the falling crossing of the level
half-way between white and grey matter (white surface) or grey matter and CSF (pial surface)
nearest to the vertex. Per surface: the share of vertices with such a crossing, and the median
and mean crossing offset. Sign: positive = the T1 boundary lies OUTSIDE the surface (the surface
should move out); negative = inside. With `--tentorium` (bench/data/philips_enh_tentorium.json),
vertices below the tentorium are left out and their share is reported. EPI distortion of the
diffusion scan moves its surfaces against the T1 locally (either way along the phase-encode
axis); medians over a hemisphere are what this measures.
"""
import argparse
import json
import os
import sys

import nibabel as nib
import numpy as np

from t1_agreement import load_t1, vertex_normals  # bench/, beside this script

SURFACES = ["lh.white", "lh.pial", "rh.white", "rh.pial"]
STEPS = np.arange(-3.0, 3.0 + 1e-9, 0.1)


def kmeans_levels(values, iterations=50):
    v = np.sort(values[np.isfinite(values)])
    centres = np.percentile(v, [15, 50, 85])
    for _ in range(iterations):
        labels = np.argmin(np.abs(v[:, None] - centres[None, :]), axis=1)
        new = np.array([v[labels == k].mean() if np.any(labels == k) else centres[k] for k in range(3)])
        if np.allclose(new, centres):
            break
        centres = new
    return np.sort(centres)


def below_tentorium(vertices, path):
    """Vertices below the tentorium of bench/data/philips_enh_tentorium.json (bench/tentorium.py)."""
    if not path:
        return np.zeros(len(vertices), bool)
    from tentorium import Tentorium  # bench/, beside this script
    return np.asarray(Tentorium(path).below(vertices), bool)


def falling_crossing(profiles, level):
    """Offset (mm) of the crossing of `level` from above to below nearest to 0; NaN if none."""
    above = profiles >= level
    fall = above[:, :-1] & ~above[:, 1:]
    a, b = profiles[:, :-1], profiles[:, 1:]
    frac = np.where(fall, (a - level) / np.where(fall, a - b, 1.0), 0.0)
    t = STEPS[:-1][None, :] + frac * (STEPS[1] - STEPS[0])
    t = np.where(fall, t, np.inf)
    best = np.take_along_axis(t, np.argmin(np.abs(t), axis=1)[:, None], axis=1)[:, 0]
    return np.where(np.isfinite(best), best, np.nan)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--t1", required=True)
    ap.add_argument("--tentorium", help="JSON: leave out vertices below the tentorium")
    ap.add_argument("--json", help="also write the numbers to this file")
    ap.add_argument("recons", nargs="+")
    a = ap.parse_args()
    _, _, sample = load_t1(a.t1)

    results = {}
    print(f"T1: `{a.t1}`\n")
    print("| reconstruction | surface | T1 levels CSF/GM/WM | offset | vertices with a crossing | their median offset | below tentorium |")
    print("|---|---|---|---|---|---|---|")
    all_meshes = {}
    for recon in a.recons:
        meshes = {}
        for s in SURFACES:
            path = os.path.join(recon, "surf", s + ".surf.gii")
            if not os.path.exists(path):
                sys.exit(f"{path}: no such surface")
            g = nib.load(path)
            v = g.darrays[0].data.astype(np.float64)
            meshes[s] = (v, vertex_normals(v, g.darrays[1].data.astype(np.int64)))
        all_meshes[recon] = meshes
    # One set of levels for every reconstruction compared, so that their offsets differ only by
    # where their surfaces lie.
    pool = np.concatenate([sample(v[::20, None, :] + np.linspace(-4, 4, 17)[None, :, None] * n[::20, None, :]).ravel()
                           for meshes in all_meshes.values() for v, n in meshes.values()])
    csf, gm, wm = kmeans_levels(pool)
    for recon, meshes in all_meshes.items():
        results[recon] = {"levels": {"csf": float(csf), "gm": float(gm), "wm": float(wm)}}
        for s in SURFACES:
            v, n = meshes[s]
            below = below_tentorium(v, a.tentorium)
            keep = ~below
            prof = sample(v[keep, None, :] + STEPS[None, :, None] * n[keep, None, :])
            level = 0.5 * (wm + gm) if s.endswith("white") else 0.5 * (gm + csf)
            off = falling_crossing(prof, level)
            found = np.isfinite(off)
            population = falling_crossing(np.mean(prof, axis=0)[None, :], level)[0]
            r = {"offset_mm": float(population), "found_percent": float(100 * found.mean()),
                 "vertex_median_mm": float(np.median(off[found])),
                 "below_tentorium_percent": float(100 * below.mean())}
            results[recon][s] = r
            print(f"| {recon} | {s} | {csf:.0f}/{gm:.0f}/{wm:.0f} | {r['offset_mm']:+.2f} mm | "
                  f"{r['found_percent']:.0f} % | {r['vertex_median_mm']:+.2f} mm | {r['below_tentorium_percent']:.1f} % |")
    print("\nOffset: where the T1 crosses half-way between its tissue levels along the outward normal "
          "(positive: the T1 boundary lies outside the surface).")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
