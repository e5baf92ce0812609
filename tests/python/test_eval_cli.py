"""`ddcsr eval` end to end on real cortical surfaces (fsaverage5), with an independent numpy
computation of the same distances, and the --recon/--truth layout."""
import gzip
import json
import os
import shutil
import sys

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import run, shared, workdir, check, finish  # noqa: E402


def load_gifti(path):
    data = open(path, "rb").read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    img = nib.GiftiImage.from_bytes(data)
    coords = img.get_arrays_from_intent("NIFTI_INTENT_POINTSET")[0].data
    faces = img.get_arrays_from_intent("NIFTI_INTENT_TRIANGLE")[0].data
    return np.asarray(coords, float), np.asarray(faces, int)


def point_triangle_distance(p, a, b, c):
    """Exact distances from points p (P,3) to triangles (T,3) each: (P,T). Ericson's regions."""
    p = p[:, None, :]
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    bp = p - b
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    cp = p - c
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        v, w = vb / denom, vc / denom
        q = a + ab * v[..., None] + ac * w[..., None]  # interior
        t_ab = np.clip(d1 / (d1 - d3), 0, 1)
        t_ac = np.clip(d2 / (d2 - d6), 0, 1)
        t_bc = np.clip((d4 - d3) / ((d4 - d3) + (d5 - d6)), 0, 1)
    regions = [
        (vc <= 0) & (d1 >= 0) & (d3 <= 0), a + ab * np.nan_to_num(t_ab)[..., None],
        (vb <= 0) & (d2 >= 0) & (d6 <= 0), a + ac * np.nan_to_num(t_ac)[..., None],
        (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), b + (c - b) * np.nan_to_num(t_bc)[..., None],
    ]
    # Later assignments win, so go from the weakest condition to the strongest (Ericson's order).
    out = q
    for cond, pt in zip(regions[4::-2], regions[5::-2]):
        out = np.where(cond[..., None], pt, out)
    out = np.where(((d6 >= 0) & (d5 <= d6))[..., None], np.broadcast_to(c, out.shape), out)
    out = np.where(((d3 >= 0) & (d4 <= d3))[..., None], np.broadcast_to(b, out.shape), out)
    out = np.where(((d1 <= 0) & (d2 <= 0))[..., None], np.broadcast_to(a, out.shape), out)
    return np.sqrt(((p - out) ** 2).sum(-1))


def distances_to_mesh(points, coords, faces):
    """Exact point-to-surface distances. Only triangles with a vertex within D + Lmax of the point
    can be nearest (D: nearest-vertex distance, an upper bound; Lmax: longest edge)."""
    from scipy.spatial import cKDTree
    tree = cKDTree(coords)
    a, b, c = coords[faces[:, 0]], coords[faces[:, 1]], coords[faces[:, 2]]
    lmax = max(np.linalg.norm(b - a, axis=1).max(), np.linalg.norm(c - b, axis=1).max(),
               np.linalg.norm(a - c, axis=1).max())
    order = np.argsort(faces.ravel(), kind="stable")
    starts = np.searchsorted(faces.ravel()[order], np.arange(len(coords) + 1))
    vertex_faces = [order[starts[v]:starts[v + 1]] // 3 for v in range(len(coords))]
    nearest = tree.query(points)[0]
    out = np.empty(len(points))
    for i, p in enumerate(points):
        near = tree.query_ball_point(p, nearest[i] + lmax + 1e-9)
        f = np.unique(np.concatenate([vertex_faces[v] for v in near]))
        out[i] = point_triangle_distance(p[None], a[f], b[f], c[f]).min()
    return out


def sample(coords, faces, n, rng):
    a, b, c = coords[faces[:, 0]], coords[faces[:, 1]], coords[faces[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    f = rng.choice(len(faces), size=n, p=area / area.sum())
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    return a[f] + (b[f] - a[f]) * u[:, None] + (c[f] - a[f]) * v[:, None]


def self_test_distance():
    # The numpy reference itself, on a triangle with known answers.
    tri = np.array([[0.0, 0, 0]]), np.array([[1.0, 0, 0]]), np.array([[0.0, 1, 0]])
    pts = np.array([[0.2, 0.2, 3], [-1, -1, 0], [1, 1, 0], [0.5, -2, 1], [2, 0, 0], [0, 3, 0]])
    want = [3, np.sqrt(2), np.sqrt(0.5), np.sqrt(5), 1, 2]
    got = point_triangle_distance(pts, *tri)[:, 0]
    check(np.allclose(got, want), f"numpy point-triangle reference {np.round(got, 4)}")


def pair_mode(white, pial):
    proc = run("eval", white, pial, "--json", "--threads", "2")
    out = json.loads(proc.stdout)
    s = out["surface"]
    check(1.0 < s["assd_mm"] < 4.0, f"white vs pial ASSD {s['assd_mm']:.3f} mm in (1, 4)")
    check(s["pred"]["euler"] == 2 and s["ref"]["euler"] == 2, "Euler 2 for both")
    check(s["pred"]["components"] == 1 and s["pred"]["closed_manifold"], "white closed, one piece")
    check(s["pred"]["sif_percent"] == 0, f"white SIF {s['pred']['sif_percent']}")
    check(s["samples"] == 100000, "100k samples per mesh by default")
    check(s["hd90_mm"] <= s["hd95_mm"] <= s["hausdorff_mm"], "HD90 <= HD95 <= max")
    check(abs(s["assd_mm"] - 0.5 * (s["pred_to_ref"]["mean_mm"] + s["ref_to_pred"]["mean_mm"])) < 1e-6,
          "ASSD is the mean of the directional means")
    check(s["offset_mm"] < 0 and abs(s["offset_mm"] + s["pred_to_ref"]["mean_mm"]) < 0.02,
          f"white lies inside pial: offset {s['offset_mm']:.3f} = -(white->pial mean "
          f"{s['pred_to_ref']['mean_mm']:.3f})")

    # Independent: numpy exact point-to-triangle distances on its own random samples.
    wc, wf = load_gifti(white)
    pc, pf = load_gifti(pial)
    rng = np.random.default_rng(0)
    n = 2000
    d_wp = distances_to_mesh(sample(wc, wf, n, rng), pc, pf)
    d_pw = distances_to_mesh(sample(pc, pf, n, rng), wc, wf)
    for name, d, ours in (("white->pial", d_wp, s["pred_to_ref"]), ("pial->white", d_pw, s["ref_to_pred"])):
        se = d.std() / np.sqrt(n)
        check(abs(d.mean() - ours["mean_mm"]) < 4 * se + 0.01,
              f"{name} mean {ours['mean_mm']:.3f} vs numpy {d.mean():.3f} (+-{se:.3f})")
        check(abs(np.percentile(d, 90) - ours["p90_mm"]) < 0.15,
              f"{name} p90 {ours['p90_mm']:.3f} vs numpy {np.percentile(d, 90):.3f}")
    # Vertex-to-vertex nearest distances bound the surface distance at the vertices from above.
    from scipy.spatial import cKDTree
    nn = cKDTree(pc).query(wc)[0]
    exact_at_vertices = distances_to_mesh(wc[::20], pc, pf)
    brute = point_triangle_distance(wc[:1000:20], pc[pf[:, 0]], pc[pf[:, 1]], pc[pf[:, 2]]).min(axis=1)
    check(np.allclose(brute, exact_at_vertices[:len(brute)]), "pruned numpy search equals brute force")
    check(np.all(exact_at_vertices <= nn[::20] + 1e-9), "point-to-surface <= vertex-to-vertex")
    check(ours is not None and s["pred_to_ref"]["mean_mm"] <= nn.mean() + 0.2,
          f"white->pial mean {s['pred_to_ref']['mean_mm']:.3f} <= vertex NN mean {nn.mean():.3f} (+0.2)")

    # Same surface against itself: zero distance.
    out_file = os.path.join(workdir("eval_cli"), "same.json")
    proc = run("eval", white, white, "--json", "--samples", "5000", "-o", out_file)
    check(json.load(open(out_file)) == json.loads(proc.stdout), "-o writes the printed JSON")
    same = json.loads(proc.stdout)["surface"]
    check(same["assd_mm"] < 1e-4 and same["hd95_mm"] < 1e-4, f"white vs itself ASSD {same['assd_mm']:.2e}")


def recon_mode():
    base = workdir("eval_cli")
    truth, recon = os.path.join(base, "truth"), os.path.join(base, "recon")
    for d in (truth, recon):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(d, "surf"))
    shift = 0.3
    for hemi, side in (("lh", "left"), ("rh", "right")):
        for surf in ("white", "pial"):
            src = shared("fsaverage5", f"{surf}_{side}.gii.gz")
            run("convert", src, os.path.join(truth, "surf", f"{hemi}.{surf}.surf.gii"))
            coords, faces = load_gifti(src)
            if surf == "pial":
                coords = coords + np.array([shift, 0, 0])
            # FreeSurfer binary without a footer: read back as given (scanner RAS).
            nib.freesurfer.write_geometry(os.path.join(recon, "surf", f"{hemi}.{surf}"), coords, faces)
    out = json.loads(run("eval", "--recon", recon, "--truth", truth, "--json", "--samples", "20000").stdout)
    names = [s["name"] for s in out["surfaces"]]
    check(names == ["lh.white", "lh.pial", "rh.white", "rh.pial"], f"four surfaces {names}")
    for s in out["surfaces"]:
        if s["name"].endswith("white"):
            check(s["assd_mm"] < 1e-4, f"{s['name']} identical: ASSD {s['assd_mm']:.2e}")
        else:
            check(0.05 < s["assd_mm"] <= shift and s["hausdorff_mm"] <= shift + 1e-3,
                  f"{s['name']} shifted {shift} mm: ASSD {s['assd_mm']:.3f}, max {s['hausdorff_mm']:.3f}")
    check([n["hemi"] for n in out["nesting"]] == ["lh", "rh"], "nesting for both hemispheres")
    for n in out["nesting"]:
        # fsaverage white and pial share ~3% of vertices (medial wall): those are not outside.
        check(0 <= n["ref_white_outside_pial_percent"] < 1,
              f"{n['hemi']} truth white outside pial {n['ref_white_outside_pial_percent']:.2f} %")
    # The table form runs too.
    table = run("eval", "--recon", recon, "--truth", truth, "--samples", "2000").stdout
    check("lh.pial" in table and "ASSD" in table, "table output")

    # Bad inputs: exit 3 with one line; contradictory options: exit 2.
    os.remove(os.path.join(truth, "surf", "rh.pial.surf.gii"))
    p = run("eval", "--recon", recon, "--truth", truth, expect=3)
    errors = [line for line in p.stderr.splitlines() if "error" in line]
    check(len(errors) == 1 and "rh.pial" in errors[0] and "done" not in p.stderr,
          f"missing truth: {p.stderr.strip()}")
    p = run("eval", "--recon", os.path.join(base, "nowhere"), "--truth", truth, expect=3)
    check("nowhere" in p.stderr, "missing recon folder named")
    bad = os.path.join(base, "bad.surf.gii")
    open(bad, "w").write("not a surface")
    run("eval", bad, shared("fsaverage5", "white_left.gii.gz"), expect=3)
    run("eval", "--recon", recon, expect=2)
    run("eval", "--recon", recon, "--truth", truth, "--samples", "0", expect=2)
    run("eval", bad, "--recon", recon, "--truth", truth, expect=2)


def main():
    white, pial = shared("fsaverage5", "white_left.gii.gz"), shared("fsaverage5", "pial_left.gii.gz")
    if not os.path.exists(white):
        print("SKIP: shared data absent:", white)
        return 0
    self_test_distance()
    pair_mode(white, pial)
    recon_mode()
    finish()


if __name__ == "__main__":
    sys.exit(main())
