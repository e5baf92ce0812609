#!/usr/bin/python3
"""Two anatomical measures of simulated subjects' true surfaces, to compare phantom folding
(procedural, fsaverage5) with what a cortex looks like:
  - cortex far from white: the share of pial vertices more than 5 mm from the white surface
    (the true white map sampled at them);
  - gyral white matter width: from each white vertex, march inward along its normal (0.1 mm
    steps, up to 12 mm) to where the true white map turns positive again (the far side of the
    white matter, found where its zero crossing is, which trilinear sampling keeps accurate; its
    minimum would not be: on a 0.8 mm grid a 1.6 mm blade's minimum reads half its depth). The
    length of that chord is the width of the white matter under the vertex (12 when the march
    never leaves it). Reported as percentiles and the share of vertices on white matter less
    than 2 mm across.

Usage: bench/phantom_anatomy.py SIMDIR...   (`ddcsr simulate` outputs: surf/ and sdf/)
"""
import sys

import nibabel as nib
import numpy as np
from scipy.ndimage import map_coordinates

from t1_agreement import vertex_normals  # bench/, beside this script


def surface(path):
    coords, faces, meta = nib.freesurfer.read_geometry(path, read_metadata=True)
    return coords + meta["cras"], faces


def sampler(path):
    img = nib.load(path)
    data = img.get_fdata(dtype=np.float32)
    ras2vox = np.linalg.inv(img.affine)
    return lambda xyz: map_coordinates(data, (ras2vox @ np.c_[xyz, np.ones(len(xyz))].T)[:3],
                                       order=1, mode="nearest")


def white_width(coords, normals, white_map, step=0.1, longest=12.0):
    width = np.full(len(coords), longest)
    inside = np.zeros(len(coords), bool)  # the march has entered the white matter
    previous = white_map(coords)
    for depth in np.arange(step, longest + step / 2, step):
        value = white_map(coords - depth * normals)
        inside |= value < 0
        out = inside & (value >= 0) & (width == longest)
        # Linear interpolation of the zero crossing within the last step.
        width[out] = depth - step * value[out] / (value[out] - previous[out])
        previous = value
    return width


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print("| subject | hemi | pial > 5 mm from white (%) | white width p10 / p25 / p50 (mm) "
          "| white < 2 mm across (%) |")
    print("|---|---|---|---|---|")
    for sim in sys.argv[1:]:
        name = sim.rstrip("/").split("/")[-1]
        for hemi in ("lh", "rh"):
            white_map = sampler(f"{sim}/sdf/{hemi}.white.nii.gz")
            pial, _ = surface(f"{sim}/surf/{hemi}.pial")
            far = 100 * (white_map(pial) > 5).mean()
            white, faces = surface(f"{sim}/surf/{hemi}.white")
            width = white_width(white, vertex_normals(white, faces), white_map)
            p10, p25, p50 = np.percentile(width, [10, 25, 50])
            print(f"| {name} | {hemi} | {far:.1f} | {p10:.2f} / {p25:.2f} / {p50:.2f} | "
                  f"{100 * (width < 2).mean():.0f} |")


if __name__ == "__main__":
    main()
