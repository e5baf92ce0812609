"""bench/phantom_anatomy.py's measures on analytic cases written as `ddcsr simulate` would
(surf/ FreeSurfer files with a footer, sdf/ maps on a 0.8 mm LAS grid): a white ball of radius
4 mm (8 mm across) inside a pial ball of radius 10, a white ball of radius 0.9 mm (1.8 mm
across, under the table's 2 mm) inside one of 5.4, and a white slab 1.6 mm thick centred between
two voxel centres, where the map's sampled minimum reads half the true depth."""
import os
import subprocess
import sys

import nibabel as nib
import numpy as np

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
sys.path.insert(0, HERE)
import phantom_anatomy  # noqa: E402
from eval_speed import icosphere  # noqa: E402
from common import workdir, check, finish  # noqa: E402


def write_subject(folder, white_sdf, pial_sdf, white_mesh, pial_mesh):
    """The maps on a 0.8 mm LAS grid centred at the origin; the meshes in surface RAS with a
    footer whose c_ras is nonzero, so a reader that ignored it would be off by 5 mm."""
    n, h = 56, 0.8
    affine = np.diag([-h, h, h, 1.0])
    affine[:3, 3] = -affine[:3, :3] @ np.full(3, (n - 1) / 2)
    ijk = np.indices((n, n, n)).reshape(3, -1)
    xyz = (affine[:3, :3] @ ijk).T + affine[:3, 3]
    c_ras = np.array([5.0, -3.0, 2.0])
    for d in ("surf", "sdf"):
        os.makedirs(os.path.join(folder, d), exist_ok=True)
    for hemi in ("lh", "rh"):
        for name, sdf, (coords, faces) in (("white", white_sdf, white_mesh),
                                           ("pial", pial_sdf, pial_mesh)):
            nib.save(nib.Nifti1Image(sdf(xyz).reshape(n, n, n).astype(np.float32), affine),
                     os.path.join(folder, "sdf", f"{hemi}.{name}.nii.gz"))
            meta = {"head": np.array([2, 0, 20], np.int32), "valid": "1  # volume info valid",
                    "filename": "vol.nii", "volume": np.array([n, n, n]),
                    "voxelsize": np.array([h, h, h]), "xras": np.array([-1.0, 0, 0]),
                    "yras": np.array([0, 1.0, 0]), "zras": np.array([0, 0, 1.0]), "cras": c_ras}
            nib.freesurfer.write_geometry(os.path.join(folder, "surf", f"{hemi}.{name}"),
                                          coords - c_ras, faces, volume_info=meta)


def main():
    work = workdir("phantom_anatomy")
    unit, faces = icosphere(3, 1.0)
    ball = os.path.join(work, "ball")
    write_subject(ball, lambda p: np.linalg.norm(p, axis=1) - 4.0,
                  lambda p: np.linalg.norm(p, axis=1) - 10.0, (4.0 * unit, faces),
                  (10.0 * unit, faces))
    thin = os.path.join(work, "thin")
    write_subject(thin, lambda p: np.linalg.norm(p, axis=1) - 0.9,
                  lambda p: np.linalg.norm(p, axis=1) - 5.4, (0.9 * unit, faces),
                  (5.4 * unit, faces))
    coords, fcs = phantom_anatomy.surface(os.path.join(ball, "surf", "lh.white"))
    check(np.allclose(np.linalg.norm(coords, axis=1), 4.0, atol=1e-3),
          "surface(): scanner RAS = surface RAS + c_ras")
    normals = phantom_anatomy.vertex_normals(coords, fcs)
    check(np.all(np.einsum("ij,ij->i", normals, coords) > 0), "vertex normals point outward")
    width = phantom_anatomy.white_width(
        coords, normals, phantom_anatomy.sampler(os.path.join(ball, "sdf", "lh.white.nii.gz")))
    check(np.all(np.abs(width - 8.0) < 0.15), f"ball: white 8 mm across ({width.min():.2f}-"
          f"{width.max():.2f})")

    # A slab 1.6 mm thick between two voxel centres: its sampled minimum reads -0.4, half the
    # true depth; the chord to the far side is exact.
    n, h = 40, 0.8
    affine = np.diag([h, h, h, 1.0])
    affine[:3, 3] = -h * (n - 1) / 2
    z = (np.arange(n) - (n - 1) / 2) * h
    slab_map = np.broadcast_to(np.abs(z) - 0.8, (n, n, n)).astype(np.float32)
    slab = os.path.join(work, "slab.nii.gz")
    nib.save(nib.Nifti1Image(slab_map, affine), slab)
    tops = np.array([[x, y, 0.8] for x in (-3.1, 0.0, 2.3) for y in (-1.7, 4.2)])
    width = phantom_anatomy.white_width(tops, np.tile([0.0, 0.0, 1.0], (len(tops), 1)),
                                        phantom_anatomy.sampler(slab))
    check(np.all(np.abs(width - 1.6) < 0.05), f"slab: white 1.6 mm across ({width.round(3)})")

    script = os.path.join(HERE, "..", "..", "bench", "phantom_anatomy.py")
    table = subprocess.run(["/usr/bin/python3", script, ball, thin], capture_output=True,
                           text=True, check=True).stdout
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): [c.strip() for c in line.split("|")]
            for line in table.splitlines() if line.startswith(("| ball", "| thin"))}
    check(len(rows) == 4, f"one row per subject and hemisphere: {sorted(rows)}")
    ball_row, thin_row = rows[("ball", "lh")], rows[("thin", "rh")]
    check(ball_row[3] == "100.0" and ball_row[5] == "0",
          f"ball: all pial 6 mm from white, no white under 2 mm: {ball_row[3:6]}")
    # Trilinear sampling rounds a ball of about one voxel's radius off inward by ~0.2 mm.
    p10 = float(thin_row[4].split("/")[0])
    check(abs(p10 - 1.8) < 0.25 and thin_row[5] == "100" and thin_row[3] == "0.0",
          f"ball of radius 0.9: white 1.8 mm across, pial 4.5 mm from white: {thin_row[3:6]}")
    finish()


if __name__ == "__main__":
    main()
