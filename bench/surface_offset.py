#!/usr/bin/python3
"""Where reconstructed surfaces lie against true ones: ASSD, HD90, the MEAN SIGNED OFFSET and the
median cortical thickness, computed in Python independently of `ddcsr eval`.

    bench/surface_offset.py --recon RECON_DIR --truth TRUTH_DIR [--json FILE] [--samples 100000]
    bench/surface_offset.py PRED REF

Both folders hold surf/{lh,rh}.{white,pial} (.surf.gii in scanner RAS is read first, else the
FreeSurfer binary file, whose volume-geometry footer's c_ras is added to give scanner RAS, as
ddcsr and Freeview read it).

Distances are exact point-to-triangle distances: each mesh is sampled at `--samples`
area-weighted random points (fixed seed), a cKDTree on the other mesh's vertices gives an upper
bound of each point's distance, the k nearest triangle centroids a tighter one, and every
triangle that could lie within that bound (centroid within bound + the triangle's own radius) is
then projected on exactly. ASSD is the mean of the two directional means, HD90 the larger of the
two directional 90th percentiles (as `ddcsr eval` defines them).

Sign convention: the signed distance of a point of the reconstruction to the true surface is
POSITIVE when the point lies OUTSIDE the true surface, i.e. on the side the true surface's
outward normal points to. The sign comes from the angle-weighted pseudonormal of the closest
feature of the true mesh (face normal, the sum of the two face normals on an edge, or the
angle-weighted vertex normal on a vertex; Baerentzen & Aanaes 2005), which is exact for a closed
manifold mesh whose faces are oriented outward. The mean over the reconstruction's samples is the
mean signed offset: +1.0 for a sphere of radius 51 against one of radius 50. Meshes whose faces
point inward (negative signed volume) are reoriented first.

Thickness: for both the reconstruction and the truth, the same measure: area-weighted samples on
white with their exact distance to pial and samples on pial with their distance to white, pooled;
the median is reported (for the truth and the reconstruction, and their difference).
"""
import argparse
import json
import os
import sys

import nibabel as nib
import numpy as np
from scipy.spatial import cKDTree

SURFACES = ["lh.white", "lh.pial", "rh.white", "rh.pial"]
SEED = 20250101


# ----------------------------------------------------------------------------------------------
# Reading


def read_surface(path):
    """Vertices (float64, scanner RAS) and faces (int64) of a GIFTI or FreeSurfer surface."""
    if path.endswith(".gii") or path.endswith(".gii.gz"):
        gii = nib.load(path)
        coords = [d.data for d in gii.darrays if d.intent == nib.nifti1.intent_codes["NIFTI_INTENT_POINTSET"]]
        faces = [d.data for d in gii.darrays if d.intent == nib.nifti1.intent_codes["NIFTI_INTENT_TRIANGLE"]]
        if not coords or not faces:
            coords, faces = [gii.darrays[0].data], [gii.darrays[1].data]
        return np.asarray(coords[0], np.float64), np.asarray(faces[0], np.int64)
    coords, faces, meta = nib.freesurfer.read_geometry(path, read_metadata=True)
    coords = coords.astype(np.float64)
    if meta and "cras" in meta and str(meta.get("valid", "")).startswith("1"):
        coords = coords + np.asarray(meta["cras"], np.float64)
    return coords, faces.astype(np.int64)


def find_surface(folder, name):
    """folder/surf/NAME.surf.gii first (what ddcsr eval reads first), else the FreeSurfer file."""
    for ext in (".surf.gii", ".surf.gii.gz", ".gii", ""):
        path = os.path.join(folder, "surf", name + ext)
        if os.path.isfile(path):
            return path
    return None


# ----------------------------------------------------------------------------------------------
# Geometry


def face_normals(vertices, faces, unit=True):
    n = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    if unit:
        n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300)
    return n


def signed_volume(vertices, faces):
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    return np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0


def outward(vertices, faces):
    """Faces reordered so that they point outward (positive enclosed volume)."""
    return faces[:, [0, 2, 1]] if signed_volume(vertices, faces) < 0 else faces


def vertex_normals(vertices, faces):
    """Area-weighted unit vertex normals (as bench/t1_agreement.py computes them)."""
    fn = face_normals(vertices, faces, unit=False)
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], fn)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def sample_surface(vertices, faces, n, seed):
    """n area-weighted uniform random points on the mesh (fixed seed)."""
    rng = np.random.default_rng(seed)
    area = 0.5 * np.linalg.norm(face_normals(vertices, faces, unit=False), axis=1)
    cum = np.cumsum(area)
    f = np.minimum(np.searchsorted(cum, rng.random(n) * cum[-1], side="right"), len(faces) - 1)
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    a, b, c = vertices[faces[f, 0]], vertices[faces[f, 1]], vertices[faces[f, 2]]
    return a + u[:, None] * (b - a) + v[:, None] * (c - a)


def closest_on_triangles(p, a, b, c):
    """Closest points on triangles (a, b, c) to points p (all (m, 3)), and the feature each lies
    on: 0 face interior, 1/2/3 vertex a/b/c, 4/5/6 edge ab/bc/ca (Ericson, Real-Time Collision
    Detection, 5.1.5, vectorised)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = np.einsum("ij,ij->i", ab, ap), np.einsum("ij,ij->i", ac, ap)
    bp = p - b
    d3, d4 = np.einsum("ij,ij->i", ab, bp), np.einsum("ij,ij->i", ac, bp)
    cp = p - c
    d5, d6 = np.einsum("ij,ij->i", ab, cp), np.einsum("ij,ij->i", ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    denom = va + vb + vc
    with np.errstate(divide="ignore", invalid="ignore"):
        v = vb / denom
        w = vc / denom
    q = a + v[:, None] * ab + w[:, None] * ac
    feature = np.zeros(len(p), np.int8)
    done = np.zeros(len(p), bool)

    def assign(mask, point, code):
        mask = mask & ~done
        q[mask] = point[mask] if point.ndim == 2 else point
        feature[mask] = code
        done[mask] = True

    assign((d1 <= 0) & (d2 <= 0), a, 1)
    assign((d3 >= 0) & (d4 <= d3), b, 2)
    assign((d6 >= 0) & (d5 <= d6), c, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ab = d1 / (d1 - d3)
        t_ac = d2 / (d2 - d6)
        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
    assign((vc <= 0) & (d1 >= 0) & (d3 <= 0), a + t_ab[:, None] * ab, 4)
    assign((vb <= 0) & (d2 >= 0) & (d6 <= 0), a + t_ac[:, None] * ac, 6)
    assign((va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0), b + t_bc[:, None] * (c - b), 5)
    # Degenerate triangles (zero area) that reached here: fall back to the nearest vertex.
    bad = ~done & ~np.isfinite(q).all(axis=1)
    if bad.any():
        assign(bad, a, 1)
    return q, feature


class MeshDistance:
    """Exact distances and signed distances (positive outside) from points to a triangle mesh."""

    def __init__(self, vertices, faces):
        self.v = np.asarray(vertices, np.float64)
        self.f = outward(self.v, np.asarray(faces, np.int64))
        a, b, c = self.v[self.f[:, 0]], self.v[self.f[:, 1]], self.v[self.f[:, 2]]
        self.a, self.b, self.c = a, b, c
        self.centroid = (a + b + c) / 3.0
        self.radius = np.max(np.stack([np.linalg.norm(x - self.centroid, axis=1) for x in (a, b, c)]), axis=0)
        self.max_radius = float(self.radius.max())
        # Search proxies: each triangle's centroid, or for a triangle larger than r0 (slivers,
        # remeshed patches) the points of a barycentric lattice fine enough that every point of
        # the triangle lies within r0 of one of them. A ball of radius bound + r0 around a point
        # then holds a proxy of every triangle that may lie within the bound.
        r0 = max(2.0 * float(np.median(self.radius)), 1e-6)
        longest = np.max(np.stack([np.linalg.norm(b - a, axis=1), np.linalg.norm(c - b, axis=1),
                                   np.linalg.norm(a - c, axis=1)]), axis=0)
        small = self.radius <= r0
        proxies, owners = [self.centroid[small]], [np.nonzero(small)[0]]
        big = np.nonzero(~small)[0]
        m_all = np.maximum(np.ceil(longest[big] / r0).astype(np.int64), 1)
        for m in np.unique(m_all):
            tri = big[m_all == m]
            ij = np.array([(i, j) for i in range(m + 1) for j in range(m + 1 - i)], float) / m
            pts = (a[tri, None, :] + ij[None, :, 0:1] * (b - a)[tri, None, :] + ij[None, :, 1:2] * (c - a)[tri, None, :])
            proxies.append(pts.reshape(-1, 3))
            owners.append(np.repeat(tri, len(ij)))
        self.proxy = np.concatenate(proxies)
        self.owner = np.concatenate(owners)
        self.ball_radius = r0
        self.vertex_tree = cKDTree(self.v)
        self.centroid_tree = cKDTree(self.proxy)
        self._pseudonormals()

    def _pseudonormals(self):
        v, f = self.v, self.f
        fn = face_normals(v, f)
        self.face_n = fn
        # Angle-weighted vertex pseudonormals.
        vn = np.zeros_like(v)
        for k in range(3):
            e1 = v[f[:, (k + 1) % 3]] - v[f[:, k]]
            e2 = v[f[:, (k + 2) % 3]] - v[f[:, k]]
            cosang = np.einsum("ij,ij->i", e1, e2) / np.maximum(
                np.linalg.norm(e1, axis=1) * np.linalg.norm(e2, axis=1), 1e-300)
            ang = np.arccos(np.clip(cosang, -1, 1))
            np.add.at(vn, f[:, k], ang[:, None] * fn)
        self.vertex_n = vn
        # Edge pseudonormals: sum of the unit normals of the faces sharing the edge.
        edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        key = np.sort(edges, axis=1)
        uniq, inv = np.unique(key[:, 0] * (len(v) + 1) + key[:, 1], return_inverse=True)
        en = np.zeros((len(uniq), 3))
        np.add.at(en, inv, np.tile(fn, (3, 1)))
        self.edge_n = en[inv].reshape(3, len(f), 3)  # [edge ab|bc|ca][face]

    def query(self, points, chunk=20000, k=8):
        """(distance, signed distance, closest point) of each point."""
        points = np.asarray(points, np.float64)
        dist = np.empty(len(points))
        signed = np.empty(len(points))
        closest = np.empty_like(points)
        for s in range(0, len(points), chunk):
            p = points[s:s + chunk]
            d, q, sg = self._query_chunk(p, k)
            dist[s:s + chunk], signed[s:s + chunk], closest[s:s + chunk] = d, sg, q
        return dist, signed, closest

    def _exact(self, pidx, fidx, p):
        q, feat = closest_on_triangles(p[pidx], self.a[fidx], self.b[fidx], self.c[fidx])
        d = np.linalg.norm(p[pidx] - q, axis=1)
        return d, q, feat

    def _query_chunk(self, p, k):
        n = len(p)
        k = min(k, len(self.proxy))
        # Tight upper bound: exact distance to the triangles of the k nearest proxies.
        _, near = self.centroid_tree.query(p, k=k)
        near = self.owner[near.reshape(n, -1)]
        pidx = np.repeat(np.arange(n), near.shape[1])
        d, _, _ = self._exact(pidx, near.ravel(), p)
        bound = d.reshape(n, -1).min(axis=1)
        # Every triangle that may hold a point within the bound.
        lists = self.centroid_tree.query_ball_point(p, bound + self.ball_radius + 1e-9, return_sorted=False)
        counts = np.fromiter((len(x) for x in lists), np.int64, n)
        fidx = self.owner[np.fromiter((i for x in lists for i in x), np.int64, counts.sum())]
        pidx = np.repeat(np.arange(n), counts)
        keep = np.linalg.norm(p[pidx] - self.centroid[fidx], axis=1) - self.radius[fidx] <= bound[pidx] + 1e-9
        pidx, fidx = pidx[keep], fidx[keep]
        d, q, feat = self._exact(pidx, fidx, p)
        # Minimum per point; ties (a shared edge or vertex) give the same point and pseudonormal.
        order = np.lexsort((d, pidx))
        first = np.ones(len(order), bool)
        first[1:] = pidx[order][1:] != pidx[order][:-1]
        best = order[first]
        bp, bf, bd, bq, bfeat = pidx[best], fidx[best], d[best], q[best], feat[best]
        out_d = np.empty(n)
        out_q = np.empty((n, 3))
        out_d[bp], out_q[bp] = bd, bq
        normal = self.face_n[bf].copy()
        for code, corner in ((1, 0), (2, 1), (3, 2)):
            m = bfeat == code
            normal[m] = self.vertex_n[self.f[bf[m], corner]]
        for code, edge in ((4, 0), (5, 1), (6, 2)):
            m = bfeat == code
            normal[m] = self.edge_n[edge, bf[m]]
        side = np.einsum("ij,ij->i", p[bp] - bq, normal)
        out_s = np.empty(n)
        out_s[bp] = np.where(side < 0, -bd, bd)
        return out_d, out_q, out_s


# ----------------------------------------------------------------------------------------------
# Measures


def compare(pred, ref, samples=100000, seed=SEED, pred_tree=None, ref_tree=None):
    """pred, ref: (vertices, faces). ASSD, HD90 (as ddcsr eval), and the mean signed offset of
    pred's samples to ref (positive: pred lies outside ref), with its median and the signed mean
    of ref's samples to pred, negated (the same bias seen from the truth)."""
    ref_tree = ref_tree or MeshDistance(*ref)
    pred_tree = pred_tree or MeshDistance(*pred)
    ps = sample_surface(pred[0], pred[1], samples, seed)
    rs = sample_surface(ref[0], ref[1], samples, seed + 1)
    d_pr, s_pr, _ = ref_tree.query(ps)
    d_rp, s_rp, _ = pred_tree.query(rs)
    return {
        "assd": 0.5 * (d_pr.mean() + d_rp.mean()),
        "hd90": max(np.percentile(d_pr, 90), np.percentile(d_rp, 90)),
        "pred_to_ref": d_pr.mean(),
        "ref_to_pred": d_rp.mean(),
        "offset": s_pr.mean(),
        "offset_median": float(np.median(s_pr)),
        "offset_from_ref": -s_rp.mean(),
        "outside_1mm_percent": 100.0 * np.mean(s_pr > 1.0),
        "inside_1mm_percent": 100.0 * np.mean(s_pr < -1.0),
    }


def thickness_samples(white, pial, samples=50000, seed=SEED, white_tree=None, pial_tree=None):
    """Pooled distances: white samples to pial and pial samples to white."""
    white_tree = white_tree or MeshDistance(*white)
    pial_tree = pial_tree or MeshDistance(*pial)
    ws = sample_surface(white[0], white[1], samples, seed + 2)
    ps = sample_surface(pial[0], pial[1], samples, seed + 3)
    return np.concatenate([pial_tree.query(ws)[0], white_tree.query(ps)[0]])


def evaluate(recon_dir, truth_dir, samples=100000, seed=SEED, surfaces=SURFACES):
    """Per surface: the compare() measures; per hemisphere: median thickness of recon and truth."""
    out = {}
    meshes = {}
    for name in surfaces:
        pred_path = find_surface(recon_dir, name)
        ref_path = find_surface(truth_dir, name)
        if pred_path is None:
            continue
        if ref_path is None:
            raise FileNotFoundError(f"{truth_dir}/surf/{name}: no such surface to compare {pred_path} with")
        pred, ref = read_surface(pred_path), read_surface(ref_path)
        pt, rt = MeshDistance(*pred), MeshDistance(*ref)
        meshes[name] = (pred, ref, pt, rt)
        out[name] = compare(pred, ref, samples, seed, pt, rt)
    for hemi in ("lh", "rh"):
        w, p = meshes.get(hemi + ".white"), meshes.get(hemi + ".pial")
        if w is None or p is None:
            continue
        n = max(samples // 2, 1000)
        t_recon = np.median(thickness_samples(w[0], p[0], n, seed, w[2], p[2]))
        t_truth = np.median(thickness_samples(w[1], p[1], n, seed, w[3], p[3]))
        out[hemi + ".thickness"] = {"recon_median": float(t_recon), "truth_median": float(t_truth),
                                    "error": float(t_recon - t_truth)}
    return {k: {kk: float(vv) for kk, vv in v.items()} for k, v in out.items()}


def table(results, label=None):
    lines = ["| surface | ASSD | HD90 | mean signed offset | median offset | recon→truth / truth→recon |",
             "|---|---|---|---|---|---|"]
    for name in SURFACES:
        r = results.get(name)
        if r:
            lines.append(f"| {name} | {r['assd']:.3f} | {r['hd90']:.3f} | {r['offset']:+.3f} | "
                         f"{r['offset_median']:+.3f} | {r['pred_to_ref']:.3f} / {r['ref_to_pred']:.3f} |")
    for hemi in ("lh", "rh"):
        t = results.get(hemi + ".thickness")
        if t:
            lines.append(f"\n{hemi} median thickness: recon {t['recon_median']:.2f} mm, truth "
                         f"{t['truth_median']:.2f} mm, error {t['error']:+.2f} mm")
    return ("" if label is None else label + "\n\n") + "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("surfaces", nargs="*", help="PRED REF (two surface files)")
    ap.add_argument("--recon", help="reconstruction folder (surf/)")
    ap.add_argument("--truth", help="truth folder (surf/)")
    ap.add_argument("--samples", type=int, default=100000, help="area-weighted samples per mesh")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--json", help="also write the results as JSON to this file")
    a = ap.parse_args()
    if a.recon or a.truth:
        if not (a.recon and a.truth) or a.surfaces:
            ap.error("give either PRED REF or --recon DIR --truth DIR")
        results = evaluate(a.recon, a.truth, a.samples, a.seed)
        print(table(results, f"`{a.recon}` against `{a.truth}` (mm; offset > 0: outside the truth)"))
    else:
        if len(a.surfaces) != 2:
            ap.error("give either PRED REF or --recon DIR --truth DIR")
        results = {"surface": compare(read_surface(a.surfaces[0]), read_surface(a.surfaces[1]), a.samples, a.seed)}
        r = results["surface"]
        print(f"ASSD {r['assd']:.4f} mm, HD90 {r['hd90']:.4f} mm, mean signed offset {r['offset']:+.4f} mm "
              f"(median {r['offset_median']:+.4f}; positive: PRED outside REF)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
