"""`ddcsr isosurface` end to end: analytic signed distance maps (a sphere on a flipped, shifted
grid, a torus) meshed from the command line and checked with nibabel: Euler characteristic,
components, radius, centre, outward orientation, the FreeSurfer footer, 4D frames and errors."""
import os
import sys

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import run, workdir, check, finish  # noqa: E402

GRID_CENTRE = np.array([3.0, -20.0, 7.5])


def grid(n, h, flip_x):
    """An LAS (flip_x) or RAS grid of n^3 voxels of h mm centred on GRID_CENTRE, and its voxel
    centres in scanner RAS."""
    affine = np.diag([-h if flip_x else h, h, h, 1.0])
    affine[:3, 3] = GRID_CENTRE - affine[:3, :3] @ np.full(3, (n - 1) / 2)
    ijk = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3)
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    return affine, xyz


def euler_and_components(faces):
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
    uniq, counts = np.unique(edges, axis=0, return_counts=True)
    used = np.unique(faces)
    euler = len(used) - len(uniq) + len(faces)
    parent = np.arange(faces.max() + 1)

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in uniq:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    comps = len({find(v) for v in used})
    return euler, comps, bool(np.all(counts == 2))


def signed_volume(coords, faces):
    a, b, c = coords[faces[:, 0]], coords[faces[:, 1]], coords[faces[:, 2]]
    return np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0


def load_gifti(path):
    img = nib.load(path)
    return (np.asarray(img.agg_data("NIFTI_INTENT_POINTSET"), float),
            np.asarray(img.agg_data("NIFTI_INTENT_TRIANGLE"), int), img)


def main():
    work = workdir("isosurface")
    n, h, radius = 40, 1.5, 17.0
    centre = np.array([4.2, -18.7, 9.1])
    affine, xyz = grid(n, h, flip_x=True)
    dist = np.linalg.norm(xyz - centre, axis=1)
    sphere = (dist - radius).reshape(n, n, n).astype(np.float32)
    sphere_small = (dist - 9.0).reshape(n, n, n).astype(np.float32)
    nib.save(nib.Nifti1Image(sphere, affine), os.path.join(work, "lh.white.nii.gz"))

    # Sphere -> GIFTI: closed genus 0, right radius and centre in scanner RAS, faces outward.
    gii = os.path.join(work, "sphere.surf.gii")
    proc = run("isosurface", os.path.join(work, "lh.white.nii.gz"), "-o", gii)
    coords, faces, img = load_gifti(gii)
    faces_level0 = len(faces)
    euler, comps, closed = euler_and_components(faces)
    check(euler == 2 and comps == 1 and closed, f"sphere: Euler {euler}, {comps} component(s), "
          f"closed {closed}")
    r = np.linalg.norm(coords - centre, axis=1)
    check(abs(r.mean() - radius) < 0.02 and np.abs(r - radius).max() < 0.1,
          f"sphere radius {r.mean():.4f} (max error {np.abs(r - radius).max():.4f}), true {radius}")
    # Area-weighted centroid: the vertex mean is biased by the grid's uneven vertex density.
    tri = coords[faces]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    centroid = (area[:, None] * tri.mean(1)).sum(0) / area.sum()
    check(np.linalg.norm(centroid - centre) < 0.02,
          f"sphere centre {centroid.round(3)} (true {centre})")
    vol = signed_volume(coords, faces)
    ball = 4 / 3 * np.pi * radius ** 3
    check(abs(vol - ball) < 0.02 * ball, f"outward faces: enclosed volume {vol:.0f} (ball {ball:.0f})")
    meta = img.darrays[0].meta
    check(meta.get("AnatomicalStructurePrimary") == "CortexLeft" and
          meta.get("AnatomicalStructureSecondary") == "GrayWhite",
          f"hemisphere and surface taken from the name lh.white: {dict(meta)}")
    check("Euler 2" in proc.stderr + proc.stdout, "the command prints the Euler characteristic")

    # A level other than 0 is another sphere: radius + level.
    run("isosurface", os.path.join(work, "lh.white.nii.gz"), "-o", gii, "--level", "-4")
    coords, faces, _ = load_gifti(gii)
    r = np.linalg.norm(coords - centre, axis=1).mean()
    check(abs(r - (radius - 4)) < 0.03, f"--level -4: radius {r:.4f}, expected {radius - 4}")

    # FreeSurfer binary: surface RAS + footer of the input grid; nibabel gives back scanner RAS.
    fsurf = os.path.join(work, "rh.pial")
    run("isosurface", os.path.join(work, "lh.white.nii.gz"), "-o", fsurf)
    fcoords, ffaces, fmeta = nib.freesurfer.read_geometry(fsurf, read_metadata=True)
    cras = np.asarray(fmeta["cras"], float)
    expect_cras = affine[:3, :3] @ (np.array([n, n, n]) / 2.0) + affine[:3, 3]
    check(np.allclose(cras, expect_cras, atol=1e-3), f"footer c_ras {cras} = grid centre {expect_cras}")
    r = np.linalg.norm(fcoords + cras - centre, axis=1).mean()
    check(abs(r - radius) < 0.02 and len(ffaces) == faces_level0,
          f"FreeSurfer output: scanner-RAS radius {r:.4f}, {len(ffaces)} faces as in GIFTI")

    # 4D input: --frame picks the frame (frame 1 is the small sphere).
    four_d = np.stack([sphere, sphere_small], -1)
    nib.save(nib.Nifti1Image(four_d, affine), os.path.join(work, "sdf4d.nii.gz"))
    run("isosurface", os.path.join(work, "sdf4d.nii.gz"), "--frame", "1", "-o", gii)
    coords, faces, _ = load_gifti(gii)
    r = np.linalg.norm(coords - centre, axis=1).mean()
    check(abs(r - 9.0) < 0.03, f"--frame 1: radius {r:.4f}, expected 9")

    # A torus has genus 1: marching cubes reports it as such (no topology correction).
    affine_ras, xyz = grid(n, h, flip_x=False)
    p = xyz - GRID_CENTRE
    q = np.sqrt(p[:, 0] ** 2 + p[:, 1] ** 2) - 16.0
    torus = (np.sqrt(q ** 2 + p[:, 2] ** 2) - 6.0).reshape(n, n, n).astype(np.float32)
    nib.save(nib.Nifti1Image(torus, affine_ras), os.path.join(work, "torus.nii.gz"))
    run("isosurface", os.path.join(work, "torus.nii.gz"), "-o", gii)
    coords, faces, _ = load_gifti(gii)
    euler, comps, closed = euler_and_components(faces)
    check(euler == 0 and comps == 1 and closed, f"torus: Euler {euler}, {comps} component(s)")

    # Errors: a frame that does not exist is a usage error, a level with no surface bad input.
    run("isosurface", os.path.join(work, "lh.white.nii.gz"), "--frame", "1", "-o", gii, expect=2)
    run("isosurface", os.path.join(work, "lh.white.nii.gz"), "--level", "-100", "-o", gii,
        expect=3)

    finish()


if __name__ == "__main__":
    main()
