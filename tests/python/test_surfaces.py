"""`ddcsr surfaces` end to end: DiffCoSeg on analytic signed distance maps (concentric spheres,
white radius 15 mm and pial 18 mm, on a flipped LAS grid and a shifted RAS grid), read back with
nibabel: closed genus-0 surfaces at the right radii and centres, FreeSurfer coordinates plus the
footer's c_ras equal to the GIFTI's scanner RAS, thickness 3 mm, --hemi, and bad inputs (a
missing map, NaNs) failing with one line that names the file and leaving no surfaces."""
import os
import shutil
import sys

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import run, workdir, check, finish  # noqa: E402
from test_isosurface import euler_and_components, grid, load_gifti, signed_volume  # noqa: E402

WHITE_R, PIAL_R = 15.0, 18.0
# Hemisphere centres in scanner RAS; grid() centres its grid near (3, -20, 7.5), and each map
# gets its own grid shifted to its hemisphere.
CENTRES = {"lh": np.array([-22.3, -18.1, 9.4]), "rh": np.array([24.6, -21.7, 6.2])}


def write_maps(folder, hemis=("lh", "rh")):
    os.makedirs(folder, exist_ok=True)
    n, h = 36, 1.5
    for hemi in hemis:
        affine, xyz = grid(n, h, flip_x=hemi == "lh")
        shift = CENTRES[hemi] - np.array([3.0, -20.0, 7.5])
        affine[:3, 3] += shift
        dist = np.linalg.norm(xyz + shift - CENTRES[hemi], axis=1)
        for name, radius in (("white", WHITE_R), ("pial", PIAL_R)):
            sdf = (dist - radius).reshape(n, n, n).astype(np.float32)
            nib.save(nib.Nifti1Image(sdf, affine), os.path.join(folder, f"{hemi}.{name}.nii.gz"))


def main():
    work = workdir("surfaces")
    maps, out = os.path.join(work, "sdf"), os.path.join(work, "out")
    shutil.rmtree(work, ignore_errors=True)
    write_maps(maps)

    run("--threads", "2", "surfaces", maps, "-o", out, "--vertices", "4000")
    for hemi in ("lh", "rh"):
        for name, radius in (("white", WHITE_R), ("pial", PIAL_R)):
            base = os.path.join(out, "surf", f"{hemi}.{name}")
            coords, faces, img = load_gifti(base + ".surf.gii")
            euler, comps, closed = euler_and_components(faces)
            check(euler == 2 and comps == 1 and closed,
                  f"{hemi}.{name}: Euler {euler}, {comps} component(s), closed {closed}")
            check(3000 < len(coords) < 6000, f"{hemi}.{name}: {len(coords)} vertices (asked 4000)")
            r = np.linalg.norm(coords - CENTRES[hemi], axis=1)
            check(abs(r.mean() - radius) < 0.05 and np.abs(r - radius).max() < 0.25,
                  f"{hemi}.{name}: radius {r.mean():.3f} (max error "
                  f"{np.abs(r - radius).max():.3f}), true {radius}")
            ball = 4 / 3 * np.pi * radius ** 3
            check(abs(signed_volume(coords, faces) - ball) < 0.03 * ball,
                  f"{hemi}.{name}: faces outward, enclosed volume near {ball:.0f}")
            fs_coords, fs_faces, meta = nib.freesurfer.read_geometry(base, read_metadata=True)
            check(np.array_equal(fs_faces, faces) and
                  np.abs(fs_coords + meta["cras"] - coords).max() < 1e-3,
                  f"{hemi}.{name}: FreeSurfer surface RAS + c_ras = GIFTI scanner RAS")
            white_map = nib.load(os.path.join(maps, f"{hemi}.white.nii.gz"))
            check(tuple(meta["volume"]) == white_map.shape,
                  f"{hemi}.{name}: footer volume {tuple(meta['volume'])} is the white map's grid")
        thickness = nib.freesurfer.read_morph_data(os.path.join(out, "surf", f"{hemi}.thickness"))
        check(abs(np.median(thickness) - (PIAL_R - WHITE_R)) < 0.1,
              f"{hemi}: median thickness {np.median(thickness):.3f} mm (true 3)")

    # One hemisphere only.
    lh_only = os.path.join(work, "lh_only")
    run("surfaces", maps, "-o", lh_only, "--hemi", "lh", "--vertices", "3000")
    written = sorted(os.listdir(os.path.join(lh_only, "surf")))
    check(written == ["lh.pial", "lh.pial.surf.gii", "lh.thickness", "lh.white",
                      "lh.white.surf.gii"], f"--hemi lh writes lh only: {written}")

    # Bad inputs: one line naming the file, exit 3, nothing written.
    partial = os.path.join(work, "partial")
    write_maps(partial, hemis=("lh",))
    proc = run("surfaces", partial, "-o", os.path.join(work, "bad1"), expect=3)
    check("rh.white.nii.gz" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1,
          f"missing map: {proc.stderr.strip()}")
    check(not os.path.exists(os.path.join(work, "bad1", "surf", "lh.white")),
          "missing map: no surface written")
    nan_maps = os.path.join(work, "nan")
    write_maps(nan_maps)
    img = nib.load(os.path.join(nan_maps, "rh.pial.nii.gz"))
    data = np.asarray(img.dataobj).copy()
    data[3, 4, 5] = np.nan
    nib.save(nib.Nifti1Image(data, img.affine), os.path.join(nan_maps, "rh.pial.nii.gz"))
    proc = run("surfaces", nan_maps, "-o", os.path.join(work, "bad2"), expect=3)
    check("rh.pial.nii.gz" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1,
          f"NaN in a map: {proc.stderr.strip()}")
    check(not os.path.exists(os.path.join(work, "bad2", "surf")), "NaN in a map: nothing written")

    finish()


if __name__ == "__main__":
    main()
