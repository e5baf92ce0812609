#!/usr/bin/python3
"""bench/surface_offset.py: exact distances and the sign of the mean signed offset (positive: the
reconstruction lies OUTSIDE the truth). Spheres of radius 51 and 49 against one of 50 give +1.0
and -1.0, whichever way the truth's faces are wound; fsaverage5's lh white surface moved 0.5 mm
along its vertex normals gives +0.48 (the moved facets' centres lie nearer than their corners),
inward -0.48, as `ddcsr eval` reports it; a FreeSurfer file's c_ras footer is applied; the thickness
of two concentric spheres is their radial gap; distances match a brute-force search."""
import os
import sys

import nibabel as nib
import numpy as np

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
sys.path.insert(0, HERE)
import surface_offset as so  # noqa: E402
from eval_speed import icosphere, write_gifti  # noqa: E402
from common import DDCSR, check, finish, run, shared, workdir  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402


def main():
    unit, faces = icosphere(5, 1.0)
    truth = (50 * unit, faces)
    for radius, expected in ((51.0, 1.0), (49.0, -1.0)):
        r = so.compare((radius * unit, faces), truth, samples=20000)
        check(abs(r["offset"] - expected) < 0.01, f"sphere {radius:g} against 50: offset {r['offset']:+.4f} ~ {expected:+.1f}")
        check(abs(r["assd"] - 1.0) < 0.01 and abs(r["hd90"] - 1.0) < 0.01,
              f"sphere {radius:g} against 50: ASSD {r['assd']:.4f}, HD90 {r['hd90']:.4f} ~ 1")
        inverted = so.compare((radius * unit, faces), (truth[0], faces[:, [0, 2, 1]]), samples=20000)
        check(abs(inverted["offset"] - expected) < 0.01,
              f"sphere {radius:g}, truth wound inward: offset still {inverted['offset']:+.4f}")
    shifted = so.compare(((50 * unit) + np.array([0.3, 0, 0]), faces), truth, samples=20000)
    check(abs(shifted["offset"]) < 0.02, f"a sphere moved 0.3 mm sideways: mean offset {shifted['offset']:+.4f} ~ 0")

    # Brute force on a bumpy small mesh: the candidate search misses no triangle.
    v2, f2 = icosphere(2, 10.0)
    v2 = v2 * (1 + 0.15 * np.sin(3 * v2[:, :1] / 10.0))
    md = so.MeshDistance(v2, f2)
    pts = np.random.default_rng(1).normal(0, 8, (2000, 3))
    d, s, _ = md.query(pts)
    best = np.full(len(pts), np.inf)
    for i in range(len(f2)):
        rep = lambda x: np.repeat(x[i:i + 1], len(pts), 0)  # noqa: E731
        q, _ = so.closest_on_triangles(pts, rep(md.a), rep(md.b), rep(md.c))
        best = np.minimum(best, np.linalg.norm(pts - q, axis=1))
    check(np.abs(best - d).max() < 1e-9, f"distances equal a brute-force search (max diff {np.abs(best - d).max():.2e})")
    # A mesh with triangles far larger than its median (the search's lattice proxies): a coarse
    # icosahedron of radius 12 beside a fine sphere of radius 2.
    fine, ff = icosphere(3, 2.0)
    coarse, cf = icosphere(0, 12.0)
    mixed_v = np.concatenate([fine + np.array([25.0, 0, 0]), coarse])
    mixed_f = np.concatenate([ff, cf + len(fine)])
    mm = so.MeshDistance(mixed_v, mixed_f)
    check(len(mm.proxy) > len(mixed_f), f"large triangles get lattice proxies ({len(mm.proxy)} for {len(mixed_f)} faces)")
    far = np.random.default_rng(2).normal(0, 15, (2000, 3))
    dm, _, _ = mm.query(far)
    bm = np.full(len(far), np.inf)
    for i in range(len(mixed_f)):
        rep = lambda x: np.repeat(x[i:i + 1], len(far), 0)  # noqa: E731
        q, _ = so.closest_on_triangles(far, rep(mm.a), rep(mm.b), rep(mm.c))
        bm = np.minimum(bm, np.linalg.norm(far - q, axis=1))
    check(np.abs(bm - dm).max() < 1e-9, f"mixed triangle sizes: distances equal brute force (max diff {np.abs(bm - dm).max():.2e})")
    radial = np.linalg.norm(pts, axis=1)
    clear = np.abs(radial - 10) > 3
    check(np.all((s[clear] > 0) == (radial[clear] > 10)), "sign: points well outside positive, well inside negative")

    # fsaverage5 moved along its normals.
    path = shared("fsaverage5", "white_left.gii.gz")
    if not os.path.exists(path):
        print("SKIP fsaverage5 checks: no", path)
    else:
        v, f = so.read_surface(path)
        n = so.vertex_normals(v, so.outward(v, f))
        ref = (v, f)
        out = so.compare((v + 0.5 * n, f), ref, samples=50000)
        inn = so.compare((v - 0.5 * n, f), ref, samples=50000)
        check(0.44 < out["offset"] < 0.5, f"fsaverage5 lh white moved 0.5 mm out: offset {out['offset']:+.3f}")
        check(-0.5 < inn["offset"] < -0.44, f"fsaverage5 lh white moved 0.5 mm in: offset {inn['offset']:+.3f}")
        check(abs(out["assd"] - abs(out["offset"])) < 0.02, f"moved out: ASSD {out['assd']:.3f} ~ |offset|")

        work = workdir("surface_offset")
        # The same through files, and against ddcsr eval when the binary is there.
        recon, tru = os.path.join(work, "recon"), os.path.join(work, "truth")
        for d in (recon, tru):
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(os.path.join(d, "surf"))
        write_gifti(os.path.join(recon, "surf", "lh.white.surf.gii"), v + 0.5 * n, f)
        # Truth as FreeSurfer binary in surface RAS with a footer whose c_ras is not zero.
        c_ras = np.array([4.0, -7.0, 3.0])
        meta = {"head": np.array([2, 0, 20], np.int32), "valid": "1  # volume info valid",
                "filename": "dwi.nii.gz", "volume": np.array([100, 100, 100]),
                "voxelsize": np.array([2.0, 2.0, 2.0]), "xras": np.array([-1.0, 0, 0]),
                "yras": np.array([0, 1.0, 0]), "zras": np.array([0, 0, 1.0]), "cras": c_ras}
        nib.freesurfer.write_geometry(os.path.join(tru, "surf", "lh.white"), v - c_ras, f, volume_info=meta)
        back, _ = so.read_surface(os.path.join(tru, "surf", "lh.white"))
        check(np.abs(back - v).max() < 1e-3, "FreeSurfer truth read back in scanner RAS (c_ras added)")
        res = so.evaluate(recon, tru, samples=50000)
        check(abs(res["lh.white"]["offset"] - out["offset"]) < 0.01,
              f"evaluate() on folders: offset {res['lh.white']['offset']:+.3f}")
        if shutil.which(DDCSR) or os.path.exists(DDCSR):
            proc = run("eval", "--recon", recon, "--truth", tru, "--json", "-q")
            ev = json.loads(proc.stdout)
            entry = ev["surfaces"][0] if "surfaces" in ev else ev
            off = entry.get("offset_mm", entry.get("surface", {}).get("offset_mm"))
            check(off is not None and abs(off - res["lh.white"]["offset"]) < 0.01,
                  f"ddcsr eval agrees on the sign and size: {off} vs {res['lh.white']['offset']:+.3f}")
        else:
            print("SKIP ddcsr eval comparison: no binary", DDCSR)

    # Thickness: concentric spheres 2.5 mm apart.
    t = so.thickness_samples((50 * unit, faces), (52.5 * unit, faces), samples=10000)
    check(abs(np.median(t) - 2.5) < 0.01, f"thickness of spheres 50 / 52.5: median {np.median(t):.3f}")
    finish()


if __name__ == "__main__":
    main()
