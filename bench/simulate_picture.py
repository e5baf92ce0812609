#!/usr/bin/env python3
"""Mid-sagittal and coronal slices of a simulated subject's b0, FA and labels, as one PNG.

    bench/simulate_picture.py SUBJECT_DIR OUT.png

FA from a log-linear tensor fit of the b<=1500 volumes (numpy only). The coronal slice passes
through the brainstem and cerebellum (the labels' brainstem centre), the sagittal one through
the midline of the brain mask. Needs nibabel, numpy and PIL."""
import json
import os
import sys

import nibabel as nib
import numpy as np
from PIL import Image, ImageDraw

folder, out = sys.argv[1], sys.argv[2]
img = nib.as_closest_canonical(nib.load(os.path.join(folder, "dwi.nii.gz")))
data = img.get_fdata(dtype=np.float32)
bval = np.loadtxt(os.path.join(folder, "dwi.bval"))
bvec = np.loadtxt(os.path.join(folder, "dwi.bvec"))
# FSL b-vectors are in image axes; canonical reorientation may flip axes, which FA ignores
# only up to sign, so rotate them to the canonical axes as nibabel did.
orig = nib.load(os.path.join(folder, "dwi.nii.gz"))
ornt = nib.orientations.ornt_transform(nib.io_orientation(orig.affine), nib.orientations.axcodes2ornt("RAS"))
g = bvec.copy()
if np.linalg.det(orig.affine[:3, :3]) > 0:
    g[0] = -g[0]
gc = np.zeros_like(g)
for src, (dst, flip) in enumerate(ornt):
    gc[int(dst)] = g[src] * flip
use = bval <= 1500
b0 = data[..., bval < 50].mean(-1)
S = np.maximum(data[..., use], 1e-3)
b, gg = bval[use], gc[:, use]
B = np.stack([np.ones_like(b), -b * gg[0] ** 2, -b * gg[1] ** 2, -b * gg[2] ** 2,
              -2 * b * gg[0] * gg[1], -2 * b * gg[0] * gg[2], -2 * b * gg[1] * gg[2]], 1)
coef = np.linalg.lstsq(B, np.log(S).reshape(-1, len(b)).T, rcond=None)[0].T
D = coef[:, 1:]
T = np.stack([D[:, 0], D[:, 3], D[:, 4], D[:, 3], D[:, 1], D[:, 5], D[:, 4], D[:, 5], D[:, 2]], 1).reshape(-1, 3, 3)
ev = np.clip(np.linalg.eigvalsh(T), 0, None)
md = ev.mean(1, keepdims=True)
fa = np.sqrt(1.5 * ((ev - md) ** 2).sum(1) / np.maximum((ev ** 2).sum(1), 1e-12)).reshape(b0.shape)
fa[b0 < 0.05 * np.percentile(b0, 99)] = 0

labels = None
lab_path = os.path.join(folder, "labels.nii.gz")
if os.path.exists(lab_path):
    labels = np.rint(nib.as_closest_canonical(nib.load(lab_path)).get_fdata()).astype(int)
mask = nib.as_closest_canonical(nib.load(os.path.join(folder, "mask.nii.gz"))).get_fdata() > 0.5
xs = np.nonzero(mask.any((1, 2)))[0]
x_mid = (xs[0] + xs[-1]) // 2
if labels is not None and (labels == 8).any():
    y_cor = int(np.round(np.nonzero(labels == 8)[1].mean()))
else:
    ys = np.nonzero(mask.any((0, 2)))[0]
    y_cor = int(ys[0] + 0.35 * (ys[-1] - ys[0]))
zooms = img.header.get_zooms()[:3]

palette = np.array([[0, 0, 0], [245, 245, 245], [200, 90, 60], [150, 60, 150], [40, 80, 200], [90, 140, 230],
                    [255, 255, 150], [230, 160, 40], [120, 200, 80], [255, 255, 255], [220, 120, 200],
                    [60, 200, 220], [80, 80, 80], [160, 110, 60], [180, 40, 40], [255, 230, 120],
                    [230, 180, 160], [40, 220, 120], [20, 20, 120]], np.uint8)


def panel(sl, aspect, kind):
    """2D slice (first axis horizontal, second vertical upwards) to an RGB image of 1 mm pixels x2."""
    sl = np.rot90(sl)
    if kind == "labels":
        rgb = palette[np.clip(sl, 0, len(palette) - 1)]
    else:
        hi = np.percentile(sl, 99.5) if kind == "b0" else 0.9
        grey = np.clip(sl / max(hi, 1e-6), 0, 1) * 255
        rgb = np.repeat(grey[..., None], 3, 2).astype(np.uint8)
    im = Image.fromarray(rgb)
    return im.resize((int(im.width * aspect[0] * 2), int(im.height * aspect[1] * 2)), Image.NEAREST)


# A parasagittal slice 22 mm off the midline cuts a cerebellar hemisphere, the lateral
# ventricle and the thalamus, which the midline (the interhemispheric fissure) misses.
x_para = min(b0.shape[0] - 1, x_mid + int(round(22 / zooms[0])))
tiles = []
for name, vol in (("b0", b0), ("FA", fa)) + ((("labels", labels),) if labels is not None else ()):
    kind = "labels" if name == "labels" else name.lower()
    tiles.append((f"{name} sagittal x={x_mid}", panel(vol[x_mid, :, :], (zooms[1], zooms[2]), kind)))
    tiles.append((f"{name} sagittal x={x_para}", panel(vol[x_para, :, :], (zooms[1], zooms[2]), kind)))
    tiles.append((f"{name} coronal y={y_cor}", panel(vol[:, y_cor, :], (zooms[0], zooms[2]), kind)))
cols = 3
w = sum(t.width for _, t in tiles[:cols]) + 10 * (cols - 1)
rows = (len(tiles) + cols - 1) // cols
hrow = max(t.height for _, t in tiles) + 20
canvas = Image.new("RGB", (w, rows * hrow), (30, 30, 30))
draw = ImageDraw.Draw(canvas)
for n, (title, t) in enumerate(tiles):
    x0 = sum(t.width + 10 for _, t in tiles[: n % cols])
    y0 = (n // cols) * hrow
    canvas.paste(t, (x0, y0 + 20))
    draw.text((x0 + 4, y0 + 4), title, fill=(255, 255, 0))
meta = json.load(open(os.path.join(folder, "meta.json")))
canvas.save(out)
print(out, canvas.size, meta.get("anatomy"), meta.get("physics"))
