#!/usr/bin/python3
"""Agreement of `ddcsr recon` surfaces with a same-session T1 scan: a check on real data, which
has no ground-truth surfaces.

    bench/t1_agreement.py --t1 T1.nii.gz RECON_DIR [RECON_DIR ...] [--report FILE]
                          [--tentorium JSON] [--picture PNG] [--json FILE]

The T1 must be in the diffusion scan's scanner space (same session, no registration: e.g. the
XA30 `5_anat-T1w_acq-tfl` beside `10_DWI_dir80_PA` in ../shared/data). On a T1, white matter is
brighter than cortex and cortex brighter than CSF, so both boundaries are where the intensity
falls outward. For each surface (`surf/{lh,rh}.{white,pial}.surf.gii`, scanner RAS) the T1 is
sampled (trilinear) 1 mm inside and 1 mm outside each vertex along its normal, and the contrast
(inside - outside) / (inside + outside) is averaged over the vertices. The same is repeated with
the surface moved along its normals by -3..+3 mm: the offset where the mean contrast peaks is
where the T1 puts the boundary relative to the surface (negative: the T1 boundary lies inside).
Columns: contrast at the surface, percent of vertices with positive contrast, peak offset (mm).
Uncorrected susceptibility distortion of the diffusion scan moves its surfaces against the T1
locally; compare reconstructions of the same scan rather than read absolute values.

--tentorium JSON (e.g. bench/data/philips_enh_tentorium.json, format in bench/data/README.md):
for a whole-head scan, the share of each surface's vertices that lie below the tentorium (in the
cerebellum or brainstem, which are not cerebral cortex) is reported, and the contrast and the
offset are computed over the vertices above it only.

--picture PNG: the T1 on two sagittal, two coronal and two axial planes (at 30 / 70 % of the
pial surfaces' extent along each axis) with the intersections of the four surfaces drawn on it,
white surfaces in blue and pial surfaces in red (and the tentorium in yellow when given).
Sagittal planes: anterior to the right; coronal and axial: the subject's left on the left
(neurological); superior / anterior up. With several reconstructions, one picture each, named
PNG with `_<folder name>` before the extension.
"""
import argparse
import json
import os
import sys

import nibabel as nib
import numpy as np
from scipy.ndimage import map_coordinates

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

SURFACES = ["lh.white", "lh.pial", "rh.white", "rh.pial"]
OFFSETS = np.arange(-3.0, 3.0 + 1e-9, 0.25)


def vertex_normals(vertices, faces):
    face_normals = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def load_surface(recon, surface):
    path = os.path.join(recon, "surf", surface + ".surf.gii")
    if not os.path.exists(path):
        sys.exit(f"{path}: no such surface")
    gii = nib.load(path)
    return gii.darrays[0].data.astype(np.float64), gii.darrays[1].data.astype(np.int64)


def load_t1(path):
    """The T1 as float32 voxels, its voxel-to-RAS affine and a function giving its trilinear value at scanner-RAS points
    (any array of shape (..., 3)); exits with the file's name when it is not a 3D image."""
    t1 = nib.load(path)
    if len(t1.shape) != 3:
        sys.exit(f"{path}: expected a 3D image, got shape {t1.shape}")
    volume = t1.get_fdata(dtype=np.float32)
    ras_to_voxel = np.linalg.inv(t1.affine)

    def sample(points):
        points = np.asarray(points)
        ijk = ras_to_voxel[:3, :3] @ points.reshape(-1, 3).T + ras_to_voxel[:3, 3:4]
        return map_coordinates(volume, ijk, order=1, mode="nearest").reshape(points.shape[:-1])

    return volume, t1.affine, sample


def agreement(sample, vertices, faces, keep=None):
    """Contrast at the surface (per vertex), mean contrast profile over OFFSETS, and the peak
    offset, over the vertices in `keep` (all when None); `sample` as load_t1 returns it."""
    if keep is not None:
        normals = vertex_normals(vertices, faces)[keep]
        vertices = vertices[keep]
    else:
        normals = vertex_normals(vertices, faces)

    profile = []
    at_surface = None
    for offset in OFFSETS:
        inside = sample(vertices + (offset - 1.0) * normals)
        outside = sample(vertices + (offset + 1.0) * normals)
        c = (inside - outside) / np.maximum(inside + outside, 1e-6)
        if offset == 0:  # exact: OFFSETS steps by 0.25
            at_surface = c
        profile.append(c.mean() if len(c) else np.nan)
    profile = np.array(profile)
    peak = OFFSETS[np.nanargmax(profile)] if np.isfinite(profile).any() else np.nan
    return at_surface, profile, peak


# ----------------------------------------------------------------------------------------------
# Picture


def plane_points(kind, position, extent, step):
    """World points (H, W, 3) of a plane; rows from top to bottom."""
    (alo, ahi), (blo, bhi) = extent
    a = np.arange(alo, ahi, step)
    b = np.arange(bhi, blo, -step)
    A, B = np.meshgrid(a, b)
    c = np.full(A.shape, position)
    if kind == "sagittal":   # a = y (anterior right), b = z
        return np.stack([c, A, B], -1)
    if kind == "coronal":    # a = x (left on the left), b = z
        return np.stack([A, c, B], -1)
    return np.stack([A, B, c], -1)  # axial: a = x, b = y (anterior up)


def plane_axes(kind):
    """Indices of (normal, horizontal, vertical) world axes of a plane kind."""
    return {"sagittal": (0, 1, 2), "coronal": (1, 0, 2), "axial": (2, 0, 1)}[kind]


def draw_intersection(img, vertices, faces, kind, position, extent, step, colour):
    n, ha, va = plane_axes(kind)
    d = vertices[:, n] - position
    s = d[faces]
    cross = (np.min(s, axis=1) < 0) & (np.max(s, axis=1) > 0)
    if not cross.any():
        return
    f = faces[cross]
    pts = []
    for i, j in ((0, 1), (1, 2), (2, 0)):
        di, dj = d[f[:, i]], d[f[:, j]]
        e = (di < 0) != (dj < 0)
        t = di[e] / (di[e] - dj[e])
        p = vertices[f[e, i]] + t[:, None] * (vertices[f[e, j]] - vertices[f[e, i]])
        pts.append((np.nonzero(e)[0], p))
    # Each crossing triangle has two crossing edges: pair them per triangle.
    idx = np.concatenate([q[0] for q in pts])
    p = np.concatenate([q[1] for q in pts])
    order = np.argsort(idx, kind="stable")
    idx, p = idx[order], p[order]
    first = np.r_[True, idx[1:] != idx[:-1]]
    starts = np.nonzero(first)[0]
    ok = (starts + 1 < len(idx)) & (idx[np.minimum(starts + 1, len(idx) - 1)] == idx[starts])
    a, b = p[starts[ok]], p[starts[ok] + 1]
    (alo, _), (_, bhi) = extent
    length = np.linalg.norm(b - a, axis=1)
    m = np.maximum(np.ceil(length / (0.3 * step)).astype(int), 1)
    seg = np.repeat(np.arange(len(a)), m + 1)
    t = np.concatenate([np.linspace(0, 1, k + 1) for k in m]) if len(m) else np.zeros(0)
    q = a[seg] + t[:, None] * (b[seg] - a[seg])
    col = np.round((q[:, ha] - alo) / step).astype(int)
    row = np.round((bhi - q[:, va]) / step).astype(int)
    inside = (row >= 0) & (row < img.shape[0]) & (col >= 0) & (col < img.shape[1])
    img[row[inside], col[inside]] = colour


def picture(path, volume, affine, surfaces, tentorium=None, step=0.5):
    from png import grey, tile, upscale, write_png
    ras_to_voxel = np.linalg.inv(affine)
    pial = np.concatenate([surfaces[s][0] for s in surfaces if "pial" in s])
    lo, hi = pial.min(0), pial.max(0)
    margin = 10.0
    ext = [(lo[i] - margin, hi[i] + margin) for i in range(3)]
    brain = volume[volume > 0]
    wlo, whi = np.percentile(brain, [1, 99.5]) if brain.size else (0, 1)
    tiles = []
    for kind in ("sagittal", "coronal", "axial"):
        n, ha, va = plane_axes(kind)
        for frac in (0.3, 0.7):
            position = lo[n] + frac * (hi[n] - lo[n])
            extent = (ext[ha], ext[va])
            pts = plane_points(kind, position, extent, step)
            ijk = ras_to_voxel[:3, :3] @ pts.reshape(-1, 3).T + ras_to_voxel[:3, 3:4]
            img = grey(map_coordinates(volume, ijk, order=1, mode="constant").reshape(pts.shape[:2]), lo=wlo, hi=whi)
            if tentorium is not None:
                below = tentorium.below(pts.reshape(-1, 3)).reshape(pts.shape[:2])
                edge = below ^ np.roll(below, 1, axis=0) | below ^ np.roll(below, 1, axis=1)
                edge[0, :] = edge[:, 0] = False
                img[edge] = [230, 200, 0]
            for name, (v, f) in surfaces.items():
                draw_intersection(img, v, f, kind, position, extent, step,
                                  [60, 120, 255] if "white" in name else [255, 40, 40])
            tiles.append(upscale(img, 2))
    write_png(path, tile(tiles, 2))


def picture_path(base, recon, several):
    if not several:
        return base
    stem, ext = os.path.splitext(base)
    return f"{stem}_{os.path.basename(os.path.normpath(recon))}{ext or '.png'}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--t1", required=True, help="T1 image in the diffusion scan's scanner space")
    ap.add_argument("--report", help="also write the table (markdown) to this file")
    ap.add_argument("--tentorium", help="JSON tentorium surface (bench/data/README.md): report the share of vertices "
                    "below it and measure the agreement over the vertices above it only")
    ap.add_argument("--picture", help="PNG: the surfaces' intersections with T1 slices (white blue, pial red)")
    ap.add_argument("--json", help="also write every number as JSON to this file")
    ap.add_argument("recons", nargs="+", help="output folders of ddcsr recon")
    a = ap.parse_args()
    volume, affine, sample = load_t1(a.t1)
    tent = None
    if a.tentorium:
        from tentorium import Tentorium
        tent = Tentorium(a.tentorium)

    lines = [f"T1: `{a.t1}`" + (f"; tentorium: `{a.tentorium}`" if tent else ""), "",
             "| reconstruction | " + " | ".join(SURFACES) + " |", "|---" * (1 + len(SURFACES)) + "|"]
    results = {}
    for recon in a.recons:
        cells = []
        meshes = {s: load_surface(recon, s) for s in SURFACES}
        results[recon] = {}
        for surface in SURFACES:
            vertices, faces = meshes[surface]
            keep = None
            r = {}
            if tent is not None:
                below = tent.below(vertices)
                keep = ~below
                r["below_tentorium_percent"] = 100.0 * below.mean()
                r["below_tentorium_3mm_percent"] = 100.0 * tent.below(vertices, 3.0).mean()
            at_surface, profile, peak = agreement(sample, vertices, faces, keep)
            r.update({"contrast": float(at_surface.mean()), "positive_percent": 100.0 * float(np.mean(at_surface > 0)),
                      "offset_mm": float(peak), "vertices": int(len(vertices)),
                      "profile": [float(x) for x in profile]})
            results[recon][surface] = r
            cell = f"{r['contrast']:.3f}, {r['positive_percent']:.0f} %, {peak:+.2f} mm"
            if tent is not None:
                cell += f"; {r['below_tentorium_percent']:.1f} % below"
            cells.append(cell)
        lines.append(f"| {recon} | " + " | ".join(cells) + " |")
        if a.picture:
            path = picture_path(a.picture, recon, len(a.recons) > 1)
            picture(path, volume, affine, meshes, tent)
            results[recon]["picture"] = path
            lines.append(f"| picture | `{path}` |" + " |" * (len(SURFACES) - 1))
    lines += ["", "Each cell: mean contrast at the surface, vertices with positive contrast, offset of the "
              "T1 boundary (peak of the mean contrast) along the outward normal (negative: the T1 boundary lies inside)"
              + ("; share of the vertices below the tentorium, which the other numbers leave out." if tent else ".")]
    text = "\n".join(lines)
    print(text)
    if a.report:
        with open(a.report, "w") as f:
            f.write(text + "\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
