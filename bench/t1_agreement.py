#!/usr/bin/python3
"""Agreement of `ddcsr recon` surfaces with a same-session T1 scan: a check on real data, which
has no ground-truth surfaces.

    bench/t1_agreement.py --t1 T1.nii.gz RECON_DIR [RECON_DIR ...] [--report FILE]

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
"""
import argparse
import os
import sys

import nibabel as nib
import numpy as np
from scipy.ndimage import map_coordinates

SURFACES = ["lh.white", "lh.pial", "rh.white", "rh.pial"]
OFFSETS = np.arange(-3.0, 3.0 + 1e-9, 0.25)


def vertex_normals(vertices, faces):
    face_normals = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--t1", required=True, help="T1 image in the diffusion scan's scanner space")
    ap.add_argument("--report", help="also write the table (markdown) to this file")
    ap.add_argument("recons", nargs="+", help="output folders of ddcsr recon")
    a = ap.parse_args()
    t1 = nib.load(a.t1)
    if len(t1.shape) != 3:
        sys.exit(f"{a.t1}: expected a 3D image, got shape {t1.shape}")
    volume = t1.get_fdata(dtype=np.float32)
    ras_to_voxel = np.linalg.inv(t1.affine)

    def sample(points):
        ijk = ras_to_voxel[:3, :3] @ points.T + ras_to_voxel[:3, 3:4]
        return map_coordinates(volume, ijk, order=1, mode="nearest")

    def contrast(vertices, normals, offset):
        inside = sample(vertices + (offset - 1.0) * normals)
        outside = sample(vertices + (offset + 1.0) * normals)
        return (inside - outside) / np.maximum(inside + outside, 1e-6)

    lines = [f"T1: `{a.t1}`", "",
             "| reconstruction | " + " | ".join(SURFACES) + " |", "|---" * (1 + len(SURFACES)) + "|"]
    for recon in a.recons:
        cells = []
        for surface in SURFACES:
            path = os.path.join(recon, "surf", surface + ".surf.gii")
            if not os.path.exists(path):
                sys.exit(f"{path}: no such surface")
            gii = nib.load(path)
            vertices = gii.darrays[0].data.astype(np.float64)
            normals = vertex_normals(vertices, gii.darrays[1].data.astype(np.int64))
            profile = []
            for offset in OFFSETS:
                c = contrast(vertices, normals, offset)
                if offset == 0:  # exact: OFFSETS steps by 0.25
                    at_surface = c
                profile.append(c.mean())
            profile = np.array(profile)
            cells.append(f"{at_surface.mean():.3f}, {100.0 * np.mean(at_surface > 0):.0f} %, "
                         f"{OFFSETS[profile.argmax()]:+.2f} mm")
        lines.append(f"| {recon} | " + " | ".join(cells) + " |")
    lines += ["", "Each cell: mean contrast at the surface, vertices with positive contrast, offset of the "
              "T1 boundary (peak of the mean contrast) along the outward normal."]
    text = "\n".join(lines)
    print(text)
    if a.report:
        with open(a.report, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
