#!/usr/bin/python3
"""Held-out diffusion phantoms: real cortical surfaces (fsaverage5) under a random smooth
diffeomorphic warp, a whole head around them, and a signal model that is NOT `ddcsr simulate`'s,
so that the network is measured on data unlike anything it was trained on.

    bench/heldout_phantoms.py OUT_DIR --seed N [--spacing MM] [--protocol NAME]
                              [--orientation RAS|LAS|LPI|oblique] [--skull-stripped]
                              [--specimen lh|rh]

Writes OUT_DIR/dwi.nii.gz (int16) with dwi.bval / dwi.bvec (FSL convention for the storage
orientation: voxel axes, x negated when the voxel->world determinant is positive, as
src/lib/io/gradients.cpp reads them), OUT_DIR/surf/{lh,rh}.{white,pial} (FreeSurfer binary in
surface RAS with the volume-geometry footer of dwi.nii.gz, which `ddcsr eval --recon R --truth
OUT_DIR` and bench/surface_offset.py read back in scanner RAS), OUT_DIR/fractions.nii.gz (tissue
fractions x 250, uint8; the channel names are in truth.json) and OUT_DIR/truth.json (every drawn
parameter). The truth surfaces are the cerebral cortex only, and they are exactly the warped
meshes.

Geometry. fsaverage5's white and pial surfaces of both hemispheres (../shared/data/fsaverage5),
each triangle split in four (midpoints; white and pial keep their shared triangulation), then
mapped by T(x) = t + s R (x' + u(x')), x' = x - c: a global scale s in [0.9, 1.1], a rotation of
2-6 degrees about a random axis, a translation of up to 5 mm, and u a sum of six sine waves of
wavelength 70-160 mm whose Lipschitz constant is held at 0.3-0.4 (< 1: T is a diffeomorphism,
and the truth meshes stay free of self-intersections). The rest of the head is defined in the
template (fsaverage/MNI305) frame and mapped by the same T (its inverse is evaluated by fixed-point
iteration): lateral ventricles (two ellipsoids a side) and deep grey nuclei (thalamus, caudate,
putamen, pallidum) inside the white surface, each shrunk until it keeps 2 mm from every white
vertex; a cerebellum (ellipsoid, cut 1.2-2.5 mm below the pial surfaces: the tentorium) with a
white core, white branches and grey folia separated by CSF fissures; a brainstem; outer CSF of
random thickness (1-4 mm, smooth in space) around the morphologically closed brain, skull (4-7 mm),
scalp with a fat layer, and eyes with orbital fat; or, with --skull-stripped, nothing outside the
CSF (background exactly 0). Partial volumes: every tissue label is evaluated on a grid k times
finer than the DWI (k = 3 at 1.5 mm, 4 at 2 and 2.5 mm; the surfaces' insides by exact ray
parity along one axis of the fine grid) and averaged over each voxel.

Ex vivo specimen (--specimen lh|rh): one cerebral hemisphere alone in a medium without signal.
A fine point is tissue only if it is inside that hemisphere's pial surface: its cortex, its white
matter and the deep grey nuclei inside its white surface; its ventricles are collapsed (their
share is white matter, the ventricle channel stays 0). No CSF anywhere (sulcal space outside the
pial surface is void), no other hemisphere, cerebellum, brainstem, skull, scalp, fat or eyes: the
signal is exactly 0 outside the specimen before the Rician noise (which stays everywhere unless
--skull-stripped, so the void has the noise floor). Every draw (warp, anatomy, grid, bias field,
signal parameters, protocol, noise) is made as for the whole head of the same seed and options,
the grid is the same, and the fibre and cortex direction fields are computed from both
hemispheres' fractions, so the specimen's voxels carry the whole-head phantom's signal (up to
partial volumes with the removed tissues). Only surf/{hemi}.{white,pial} are written.

Signal (every number drawn per phantom; ranges in truth.json; compare
include/ddcsr/simulate/tissue.h, where every compartment is one Gaussian tensor):
  - white matter: stick (intra-axonal, D_par 1.9-2.3 um2/ms, zero radial diffusivity) plus a
    zeppelin with tortuous radial diffusivity D_par (1 - f_intra), f_intra 0.5-0.7, plus 2-6 %
    free water; three fibre populations (radial corona, callosal, association) with smooth
    weights and smoothly perturbed directions, so they cross;
  - cortex: one tensor of FA 0.04-0.12 and MD 0.92-1.10 um2/ms, its axis radial (the gradient of
    the smoothed pial fraction), plus a restricted "dot" compartment (3-8 %, no diffusion);
  - deep grey: FA 0.22-0.30, MD 0.68-0.76; cerebellar grey: FA 0.05-0.10, MD 0.80-0.90;
  - CSF and ventricles: free water 3.05-3.40 um2/ms; eyes 2.8-3.1; skull (S0 0.02-0.05, 0.4
    um2/ms), scalp muscle/skin (1.3-1.6), fat (0.01-0.03 um2/ms, S0 0.05-0.12, fat suppressed);
  - b0 (S0) per tissue from PD (1 - exp(-TR/T1)) exp(-TE/T2) with TE 55-80 ms, TR 2.2-3.6 s and
    tissue T1/T2/PD drawn around 3 T values, redrawn until grey/white is 1.10-1.38 and CSF/white
    1.4-3.3 (simulate: 1.48 and 4.35);
  - a smooth multiplicative bias field (+-10-25 %), Rician noise at SNR 18-35 (white matter b0).
Protocols: `b1000x30` (3 b0 + 30 directions at b=1000), `b1000b2000` (5 b0 + 30 at 1000 + 30 at
2000), `xa30` (the table of ../shared/data/dwi/xa30/10_DWI_dir80_PA: 1 b0 + 20 at b=2500, its
b-vectors taken to world space through that scan's affine). Directions of the first two: 30
electrostatically repelled antipodal pairs per shell, drawn per seed.
One phantom at 1.5 mm takes about a minute and 100-200 MB on disk.
"""
import argparse
import json
import os
import sys
import time

import nibabel as nib
import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import surface_offset as so  # noqa: E402

SHARED = os.environ.get("DDCSR_SHARED_DATA", os.path.join(HERE, "..", "..", "shared", "data"))
SURFACES = ["lh.white", "lh.pial", "rh.white", "rh.pial"]
CHANNELS = ["wm", "cortex", "deep_grey", "ventricle", "cerebellar_grey", "cerebellar_white", "brainstem",
            "csf", "skull", "scalp", "fat", "eye"]
PROTOCOLS = ["b1000x30", "b1000b2000", "xa30"]
TEMPLATE_CENTRE = np.array([0.0, -18.0, 10.0])


# ----------------------------------------------------------------------------------------------
# Meshes and warp


def load_fsaverage(folder):
    """{'lh.white': (V, F), ...} in template RAS; each triangle split in four (shared edges)."""
    out = {}
    for hemi, side in (("lh", "left"), ("rh", "right")):
        white = so.read_surface(os.path.join(folder, f"white_{side}.gii.gz"))
        pial = so.read_surface(os.path.join(folder, f"pial_{side}.gii.gz"))
        f = white[1]
        if not np.array_equal(f, pial[1]):
            raise SystemExit(f"{folder}: white and pial of {side} do not share a triangulation")
        edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
        uniq, inv = np.unique(edges, axis=0, return_inverse=True)
        m = len(white[0]) + inv.reshape(3, -1)
        a, b, c = f[:, 0], f[:, 1], f[:, 2]
        faces = np.concatenate([np.stack([a, m[0], m[2]], 1), np.stack([b, m[1], m[0]], 1),
                                np.stack([c, m[2], m[1]], 1), np.stack([m[0], m[1], m[2]], 1)])
        for name, (v, _) in (("white", white), ("pial", pial)):
            verts = np.concatenate([v, 0.5 * (v[uniq[:, 0]] + v[uniq[:, 1]])])
            out[f"{hemi}.{name}"] = (verts, so.outward(verts, faces))
    return out


def rotation(axis, angle):
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def unit(rng, n=None):
    v = rng.normal(size=(3,) if n is None else (n, 3))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


class Warp:
    """T(x) = t + s R (x' + u(x')), x' = x - c, u = sum_k a_k sin(w_k . x' + phi_k)."""

    def __init__(self, rng):
        self.scale = float(rng.uniform(0.9, 1.1))
        self.axis = unit(rng)
        self.angle_deg = float(rng.uniform(2, 6))
        self.R = rotation(self.axis, np.radians(self.angle_deg))
        self.t = rng.uniform(-5, 5, 3)
        k = 6
        wavelengths = rng.uniform(70, 160, k)
        self.w = unit(rng, k) * (2 * np.pi / wavelengths)[:, None]
        self.phi = rng.uniform(0, 2 * np.pi, k)
        amp = unit(rng, k) * rng.uniform(0.5, 1.0, k)[:, None]
        self.lipschitz = float(rng.uniform(0.3, 0.4))
        amp *= self.lipschitz / np.sum(np.linalg.norm(amp, axis=1) * np.linalg.norm(self.w, axis=1))
        self.a = amp
        self.wavelengths = wavelengths

    def u(self, xp):
        return np.sin(xp @ self.w.T + self.phi) @ self.a

    def forward(self, x):
        xp = x - TEMPLATE_CENTRE
        return self.t + self.scale * (xp + self.u(xp)) @ self.R.T

    def inverse(self, y, iterations=12):
        z = ((y - self.t) @ self.R) / self.scale
        xp = z.copy()
        for _ in range(iterations):
            xp = z - self.u(xp)
        return xp + TEMPLATE_CENTRE

    def world_direction(self, d):
        """Template direction(s) to world (rotation only; the warp's shear is below 0.4)."""
        return d @ self.R.T

    def describe(self):
        return {"scale": self.scale, "rotation_axis": self.axis.tolist(), "rotation_deg": self.angle_deg,
                "translation_mm": self.t.tolist(), "template_centre": TEMPLATE_CENTRE.tolist(),
                "wave_vectors_per_mm": self.w.tolist(), "wavelengths_mm": self.wavelengths.tolist(),
                "phases": self.phi.tolist(), "amplitudes_mm": self.a.tolist(), "lipschitz": self.lipschitz}


# ----------------------------------------------------------------------------------------------
# Template anatomy (fsaverage / MNI305 frame)


class Ellipsoid:
    def __init__(self, centre, axes, pitch_deg=0.0):
        self.c = np.asarray(centre, float)
        self.ax = np.asarray(axes, float)
        self.Rm = rotation(np.array([1.0, 0, 0]), np.radians(pitch_deg))

    def rho2(self, x):
        """Squared normalised radius (< 1 inside) of points (..., 3)."""
        q = (x - self.c) @ self.Rm
        return np.sum((q / self.ax) ** 2, axis=-1)

    def fit_inside(self, vertices, margin):
        """Shrinks the axes until every vertex lies at least ~margin outside."""
        for _ in range(60):
            grown = Ellipsoid(self.c, self.ax + margin, 0)
            grown.Rm = self.Rm
            if grown.rho2(vertices).min() >= 1.0:
                return self
            self.ax = self.ax * 0.95
        return self

    def describe(self):
        return {"centre": self.c.tolist(), "semi_axes": self.ax.tolist(),
                "pitch_deg": float(np.degrees(np.arctan2(self.Rm[2, 1], self.Rm[1, 1])))}


def template_anatomy(rng, meshes):
    white = np.concatenate([meshes["lh.white"][0], meshes["rh.white"][0]])
    jit = lambda s=2.0: rng.uniform(-s, s, 3)  # noqa: E731
    sz = lambda: rng.uniform(0.85, 1.15, 3)  # noqa: E731
    vent, deep = [], []
    for side in (-1, 1):
        vent.append(Ellipsoid(np.array([13 * side, -8, 16]) + jit(), np.array([5, 24, 6]) * sz(), rng.uniform(5, 20)))
        vent.append(Ellipsoid(np.array([22 * side, -36, 10]) + jit(), np.array([5, 9, 8]) * sz(), rng.uniform(-20, 0)))
        deep.append(Ellipsoid(np.array([11 * side, -18, 7]) + jit(), np.array([7, 11, 7]) * sz()))   # thalamus
        deep.append(Ellipsoid(np.array([14 * side, 10, 12]) + jit(), np.array([5, 9, 7]) * sz()))   # caudate head
        deep.append(Ellipsoid(np.array([25 * side, 2, 2]) + jit(), np.array([5, 12, 9]) * sz()))    # putamen
        deep.append(Ellipsoid(np.array([19 * side, -3, 0]) + jit(), np.array([3, 8, 5]) * sz()))    # pallidum
    for e in vent + deep:
        e.fit_inside(white, 2.0)
    cerebellum = Ellipsoid(np.array([0, -60, -36]) + jit(3), np.array([50, 33, 30]) * rng.uniform(0.92, 1.08, 3),
                           rng.uniform(-10, 10))
    brainstem = {"top": (np.array([0, -26, -12]) + np.r_[0, jit(2)[1:]]).tolist(),
                 "bottom": [0.0, float(-44 + rng.uniform(-4, 4)), -95.0],
                 "radius": float(rng.uniform(9, 11)), "pons_bulge": float(rng.uniform(3, 5))}
    eyes = [Ellipsoid(np.array([32 * side, 60, -42]) + jit(2), np.full(3, rng.uniform(11, 12.5))) for side in (-1, 1)]
    folia = {"lobules": int(rng.integers(8, 12)), "fissures": int(rng.integers(24, 34)),
             "phase": float(rng.uniform(0, 2 * np.pi)), "core": float(rng.uniform(0.45, 0.6))}
    return {"ventricles": vent, "deep_grey": deep, "cerebellum": cerebellum, "brainstem": brainstem,
            "eyes": eyes, "folia": folia}


def brainstem_inside(x, bs):
    top, bottom = np.asarray(bs["top"]), np.asarray(bs["bottom"])
    axis = bottom - top
    length = np.linalg.norm(axis)
    axis = axis / length
    t = np.clip((x - top) @ axis, 0, length)
    closest = top + t[..., None] * axis
    r = bs["radius"] + bs["pons_bulge"] * np.exp(-((t - 0.35 * length) / (0.15 * length)) ** 2)
    return np.linalg.norm(x - closest, axis=-1) < r


# ----------------------------------------------------------------------------------------------
# Grid, voxelisation


def orientation_matrix(name, rng):
    if name == "RAS":
        return np.eye(3), None
    if name == "LAS":
        return np.diag([-1.0, 1, 1]), None
    if name == "LPI":
        return np.diag([-1.0, -1, -1]), None
    if name == "oblique":
        axis, angle = unit(rng), float(rng.uniform(8, 20))
        return rotation(axis, np.radians(angle)) @ np.diag([-1.0, 1, 1]), {"axis": axis.tolist(), "angle_deg": angle}
    raise SystemExit(f"unknown orientation {name}")


def make_grid(points_world, axes, spacing, margin):
    """Affine (voxel -> world) and dims of a grid with the given axes covering the points."""
    proj = points_world @ axes  # coordinates along each voxel axis
    lo, hi = proj.min(0) - margin, proj.max(0) + margin
    dims = np.ceil((hi - lo) / spacing).astype(int) + 1
    dims += dims % 2
    centre_axes = 0.5 * (lo + hi)
    lin = axes * spacing
    t = axes @ centre_axes - lin @ ((dims - 1) / 2.0)
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = lin, t
    return affine, dims


def ray_crossings(vertices_fine, faces, shape):
    """Crossings of the mesh with the lines (i, j, *) of a grid whose points are the integers:
    arrays (i, j, w) with w the third coordinate of each crossing."""
    p = vertices_fine[faces]  # (F, 3, 3)
    lo = np.ceil(p[:, :, :2].min(axis=1)).astype(np.int64)
    hi = np.floor(p[:, :, :2].max(axis=1)).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, np.array(shape[:2]) - 1)
    ni = np.maximum(hi[:, 0] - lo[:, 0] + 1, 0)
    nj = np.maximum(hi[:, 1] - lo[:, 1] + 1, 0)
    count = ni * nj
    fidx = np.repeat(np.arange(len(faces)), count)
    start = np.repeat(np.cumsum(count) - count, count)
    local = np.arange(count.sum()) - start
    ci = lo[fidx, 0] + local // np.maximum(nj[fidx], 1)
    cj = lo[fidx, 1] + local % np.maximum(nj[fidx], 1)
    a, b, c = p[fidx, 0], p[fidx, 1], p[fidx, 2]
    # 2D barycentric coordinates of the column (ci, cj) in the projected triangle.
    v0, v1 = b[:, :2] - a[:, :2], c[:, :2] - a[:, :2]
    v2 = np.stack([ci, cj], 1) - a[:, :2]
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    ok = np.abs(den) > 1e-14
    den = np.where(ok, den, 1.0)
    l1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    l2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    l0 = 1 - l1 - l2
    inside = ok & (l0 >= 0) & (l1 >= 0) & (l2 > 0) | ok & (l0 > 0) & (l1 > 0) & (l2 >= 0)
    w = l0 * a[:, 2] + l1 * b[:, 2] + l2 * c[:, 2]
    order = np.argsort(ci[inside], kind="stable")
    return ci[inside][order], cj[inside][order], w[inside][order]


def parity_fill(crossings, i0, i1, shape):
    """Inside (bool) of the fine rows i0..i1-1 from ray crossings along the last axis."""
    ci, cj, w = crossings
    s, e = np.searchsorted(ci, [i0, i1])
    out = np.zeros((i1 - i0, shape[1], shape[2] + 1), np.int8)
    k = np.clip(np.ceil(w[s:e]).astype(np.int64), 0, shape[2])
    np.add.at(out, (ci[s:e] - i0, cj[s:e], k), 1)
    return (np.cumsum(out[:, :, :-1], axis=2, dtype=np.int16) & 1).astype(bool)


# ----------------------------------------------------------------------------------------------
# Signal model


def tissue_s0(rng):
    """S0 per tissue from PD (1 - exp(-TR/T1)) exp(-TE/T2), redrawn until the contrasts leave
    simulate's (grey/white 1.48, CSF/white 4.35)."""
    for _ in range(1000):
        te, tr = rng.uniform(55, 80), rng.uniform(2200, 3600)
        t1 = {"wm": rng.uniform(800, 950), "gm": rng.uniform(1300, 1600), "csf": rng.uniform(3800, 4500)}
        t2 = {"wm": rng.uniform(65, 80), "gm": rng.uniform(80, 95), "csf": rng.uniform(1200, 2000)}
        pd = {"wm": rng.uniform(0.66, 0.72), "gm": rng.uniform(0.78, 0.84), "csf": 1.0}
        s0 = {k: pd[k] * (1 - np.exp(-tr / t1[k])) * np.exp(-te / t2[k]) for k in pd}
        gw, cw = s0["gm"] / s0["wm"], s0["csf"] / s0["wm"]
        if 1.10 <= gw <= 1.38 and 1.4 <= cw <= 3.3:
            norm = s0["csf"]
            return {k: float(v / norm) for k, v in s0.items()}, {"TE_ms": te, "TR_ms": tr, "T1_ms": t1, "T2_ms": t2, "PD": pd}
    raise RuntimeError("no S0 draw within the contrast ranges")


def repelled_directions(rng, n, iterations=300):
    """n antipodally symmetric unit directions spread by electrostatic repulsion."""
    d = unit(rng, n)
    for _ in range(iterations):
        pts = np.concatenate([d, -d])
        diff = d[:, None, :] - pts[None, :, :]
        dist = np.linalg.norm(diff, axis=2)
        dist[np.arange(n), np.arange(n)] = np.inf
        force = (diff / dist[..., None] ** 3).sum(axis=1)
        d = d + 0.01 * force / np.linalg.norm(force, axis=1).max()
        d /= np.linalg.norm(d, axis=1, keepdims=True)
    return d


def protocol_table(name, rng):
    """b-values and world-space unit b-vectors."""
    if name == "b1000x30":
        dirs = repelled_directions(rng, 30)
        b = np.r_[np.zeros(3), np.full(30, 1000.0)]
        g = np.concatenate([np.zeros((3, 3)), dirs])
        order = np.r_[0, 3:13, 1, 13:23, 2, 23:33]  # interleave b0s as scanners do
        return b[order], g[order]
    if name == "b1000b2000":
        d1, d2 = repelled_directions(rng, 30), repelled_directions(rng, 30)
        b = np.r_[np.zeros(5), np.full(30, 1000.0), np.full(30, 2000.0)]
        g = np.concatenate([np.zeros((5, 3)), d1, d2])
        order = np.r_[0, 5:20, 1, 20:35, 2, 35:50, 3, 50:65, 4]
        return b[order], g[order]
    if name == "xa30":
        stem = os.path.join(SHARED, "dwi", "xa30", "10_DWI_dir80_PA")
        b = np.loadtxt(stem + ".bval").ravel()
        vec = np.loadtxt(stem + ".bvec").reshape(3, -1).T
        aff = nib.load(stem + ".nii.gz").affine
        return b, fsl_to_world(vec, aff)
    raise SystemExit(f"unknown protocol {name} (one of {', '.join(PROTOCOLS)})")


def fsl_to_world(vec, affine):
    r = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    v = vec.copy()
    if np.linalg.det(affine[:3, :3]) > 0:
        v[:, 0] = -v[:, 0]
    w = v @ r.T
    n = np.linalg.norm(w, axis=1, keepdims=True)
    return np.where(n > 1e-9, w / np.maximum(n, 1e-12), 0.0)


def world_to_fsl(world, affine):
    r = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    v = world @ np.linalg.inv(r).T
    n = np.linalg.norm(v, axis=1, keepdims=True)
    v = np.where(n > 1e-9, v / np.maximum(n, 1e-12), 0.0)
    if np.linalg.det(affine[:3, :3]) > 0:
        v[:, 0] = -v[:, 0]
    return v


def smooth_field(rng, n, wavelength):
    """A smooth scalar field of world points: sum of n sines, values roughly in [-1, 1]."""
    w = unit(rng, n) * (2 * np.pi / rng.uniform(0.7, 1.4, n) / wavelength)[:, None]
    phi = rng.uniform(0, 2 * np.pi, n)
    amp = rng.normal(size=n)
    amp /= np.sqrt(np.sum(amp ** 2))
    return lambda x: np.sin(x @ w.T + phi) @ amp * np.sqrt(2)


def normalised(v):
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


# ----------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--spacing", type=float, default=2.0, help="voxel size, mm (1.5-2.5)")
    ap.add_argument("--protocol", default="b1000x30", choices=PROTOCOLS)
    ap.add_argument("--orientation", default="LAS", choices=["RAS", "LAS", "LPI", "oblique"])
    ap.add_argument("--skull-stripped", action="store_true", help="nothing outside the CSF: background 0")
    ap.add_argument("--specimen", choices=["lh", "rh"], default=None,
                    help="ex vivo specimen: only this cerebral hemisphere, no CSF/head, void background")
    ap.add_argument("--supersample", type=int, default=0, help="fine grid factor (0: 3 at <= 1.5 mm, else 4)")
    ap.add_argument("--fsaverage", default=os.path.join(SHARED, "fsaverage5"))
    a = ap.parse_args()
    t_start = time.time()
    rng = np.random.default_rng([a.seed, 2412])
    h = float(a.spacing)
    k = a.supersample or (3 if h <= 1.6 else 4)
    os.makedirs(os.path.join(a.out, "surf"), exist_ok=True)

    # Geometry in template space, then warped.
    template = load_fsaverage(a.fsaverage)
    warp = Warp(rng)
    anat = template_anatomy(rng, template)
    world = {name: (warp.forward(v), f) for name, (v, f) in template.items()}
    gap = float(rng.uniform(1.2, 2.5))  # tentorium: cerebellum to pial

    # Grid: covers the cerebrum, the cerebellum, the eyes and the head around them.
    axes, oblique = orientation_matrix(a.orientation, rng)
    cb = anat["cerebellum"]
    extra = [cb.c + s * cb.ax * 1.1 for s in np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T]
    extra += [e.c + e.ax * s for e in anat["eyes"] for s in (np.array([0, 1, 0]), np.array([0, 0, -1]))]
    extra = warp.forward(np.array(extra))
    pial_all = np.concatenate([world["lh.pial"][0], world["rh.pial"][0]])
    csf_max, skull_max, scalp_max = 4.0, 7.0, 7.0
    margin = csf_max + 4 if a.skull_stripped else csf_max + skull_max + scalp_max + 2
    affine, dims = make_grid(np.concatenate([pial_all, extra]), axes, h, margin)
    n0, n1, n2 = (int(d) for d in dims)
    inv_affine = np.linalg.inv(affine)
    shape_f = (n0 * k, n1 * k, n2 * k)

    # Template coordinates of every DWI voxel centre (inverse warp), for the fine grid by
    # trilinear interpolation (the warp's shortest wavelength is 70 mm).
    ijk = np.indices((n0, n1, n2), dtype=np.float32).reshape(3, -1).T
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    xt = warp.inverse(xyz).astype(np.float32)
    xt_grid = [np.ascontiguousarray(xt.reshape(n0, n1, n2, 3)[..., c]) for c in range(3)]

    # Ray crossings of the four surfaces on the fine grid (fine index u = k * i + (k - 1) / 2).
    crossings = {}
    for name, (v, f) in world.items():
        vi = (v @ inv_affine[:3, :3].T + inv_affine[:3, 3]) * k + (k - 1) / 2.0
        crossings[name] = ray_crossings(vi, f, shape_f)
    pial_trees = [so.MeshDistance(*world[n]) for n in ("lh.pial", "rh.pial")]
    pial_kd = cKDTree(pial_all)
    pial_rmax = max(t.max_radius for t in pial_trees)
    folia = anat["folia"]

    frac = np.zeros((len(CHANNELS), n0, n1, n2), np.float32)
    C = {c: i for i, c in enumerate(CHANNELS)}
    spec = a.specimen
    # Both hemispheres' cerebral fraction (the whole-head phantom's wm + cortex + deep grey +
    # ventricle): the direction fields are computed from it in both modes.
    cerebral_both = np.zeros((n0, n1, n2), np.float32)
    fine_offsets = (np.arange(k) - (k - 1) / 2.0) / k
    for i in range(n0):
        u0, u1 = i * k, (i + 1) * k
        inside = {name: parity_fill(crossings[name], u0, u1, shape_f) for name in world}
        white = inside["lh.white"] | inside["rh.white"]
        pial = inside["lh.pial"] | inside["rh.pial"] | white
        cerebral_both[i] = pial.reshape(k, n1, k, n2, k).mean(axis=(0, 2, 4))
        if spec:  # that hemisphere only: tissue iff inside its pial surface
            white = inside[spec + ".white"]
            pial = inside[spec + ".pial"] | white  # as above: white poking out of pial stays white
        labels = np.zeros((k, n1 * k, n2 * k), np.int8)  # index into CHANNELS; -1: outside brain
        labels[:] = -1
        labels[white] = C["wm"]
        labels[pial & ~white] = C["cortex"]
        # Fine points' template coordinates.
        fi = i + fine_offsets
        fj = np.arange(n1 * k) / k - (k - 1) / (2.0 * k)
        fk = np.arange(n2 * k) / k - (k - 1) / (2.0 * k)
        FI, FJ, FK = np.meshgrid(fi, fj, fk, indexing="ij")
        coords = np.stack([FI.ravel(), FJ.ravel(), FK.ravel()])
        need = (white if spec else white | ~pial).ravel()
        X = np.zeros((FI.size, 3), np.float32)
        if need.any():
            for c in range(3):
                X[need, c] = ndimage.map_coordinates(xt_grid[c], coords[:, need], order=1, mode="nearest")
        X = X.reshape(FI.shape + (3,))
        if white.any():
            wx = X[white]
            deep = np.zeros(len(wx), bool)
            for e in anat["deep_grey"]:
                deep |= e.rho2(wx) < 1
            vent = np.zeros(len(wx), bool)
            for e in anat["ventricles"]:
                vent |= e.rho2(wx) < 1
            lab = np.full(len(wx), C["wm"], np.int8)
            lab[deep] = C["deep_grey"]
            lab[vent] = C["wm"] if spec else C["ventricle"]  # specimen: ventricles collapsed
            labels[white] = lab
        outside = ~pial
        if outside.any() and not spec:  # specimen: void outside its pial surface
            ox = X[outside]
            r2 = cb.rho2(ox)
            in_cb = r2 < 1
            in_bs = brainstem_inside(ox, anat["brainstem"])
            cand = in_cb | (in_bs & (np.abs(ox[:, 0]) > 6))
            if cand.any():
                # Keep `gap` mm from the pial surfaces (world distances).
                idx = np.nonzero(cand)[0]
                fine_pts = np.stack([FI[outside][idx], FJ[outside][idx], FK[outside][idx]], 1)
                wpts = fine_pts @ affine[:3, :3].T + affine[:3, 3]
                dv, _ = pial_kd.query(wpts, distance_upper_bound=gap + pial_rmax + 0.5)
                close = np.isfinite(dv)
                if close.any():
                    dmin = np.minimum(pial_trees[0].query(wpts[close])[0], pial_trees[1].query(wpts[close])[0])
                    bad = idx[close][dmin < gap]
                    in_cb[bad] = False
                    in_bs[bad] = False
            lab = np.full(len(ox), -1, np.int8)
            lab[in_bs] = C["brainstem"]
            if in_cb.any():
                q = (ox[in_cb] - cb.c) @ cb.Rm
                rho = np.sqrt(r2[in_cb])
                theta = np.arctan2(q[:, 2], q[:, 1])
                branch = 0.3 * np.maximum(0, np.cos(folia["lobules"] * theta + folia["phase"])) ** 4
                sub = np.full(len(q), C["cerebellar_grey"], np.int8)
                sub[rho < folia["core"] + branch] = C["cerebellar_white"]
                fissure = (np.cos(folia["fissures"] * theta + 2 * folia["phase"] + 3 * rho) > 0.82) & (rho > 0.7)
                sub[fissure] = C["csf"]
                lab[in_cb] = sub
            labels[outside] = lab
        # Voxel fractions.
        for c in ("wm", "cortex", "deep_grey", "ventricle", "cerebellar_grey", "cerebellar_white", "brainstem", "csf"):
            frac[C[c], i] = (labels == C[c]).reshape(k, n1, k, n2, k).mean(axis=(0, 2, 4))
    t_fine = time.time() - t_start

    # Outside the brain: CSF, skull, scalp (fat in it), eyes, on the DWI grid by distance to the
    # morphologically closed brain (the inner skull is smooth over sulci and the fissure).
    brain = frac[[C[c] for c in CHANNELS[:7]]].sum(0)
    brain_or_csf = brain + frac[C["csf"]]
    # Closing by 10 mm with distance transforms (a ball that size is slow as a structure).
    closing_mm = 10.0
    pad = int(np.ceil(closing_mm / h)) + 2
    grown = ndimage.distance_transform_edt(~np.pad(brain_or_csf >= 0.5, pad), sampling=h) <= closing_mm
    closed = (ndimage.distance_transform_edt(grown, sampling=h) > closing_mm)[pad:-pad, pad:-pad, pad:-pad]
    closed = ndimage.binary_fill_holes(closed | (brain_or_csf >= 0.5))
    # Distance (mm) from the closed brain's boundary (half a voxel inside the first voxel out).
    dist = ndimage.distance_transform_edt(~closed, sampling=h).astype(np.float32) - 0.5 * h
    csf_field, bias_field = smooth_field(rng, 6, 120.0), smooth_field(rng, 5, 200.0)
    csf_mean, csf_amp = float(rng.uniform(1.5, 2.8)), float(rng.uniform(0.4, 1.0))
    tau = np.clip(csf_mean + csf_amp * csf_field(xyz), 1.0, csf_max).reshape(n0, n1, n2).astype(np.float32)
    skull_th, scalp_th = float(rng.uniform(4, 7)), float(rng.uniform(5, 7))
    fat_lo, fat_hi = 1.5, scalp_th - 1.5

    def below(limit):  # fraction of the voxel nearer than `limit` to the closed brain
        return np.clip((limit - dist) / h + 0.5, 0, 1)

    rest = np.clip(1 - brain_or_csf, 0, 1)  # the non-brain share of each voxel, split in layers
    L0 = np.where(closed, 1.0, below(tau))
    if not spec:
        frac[C["csf"]] += rest * L0
    if not a.skull_stripped and not spec:
        L1 = np.maximum(below(tau + skull_th), L0)
        L2 = np.maximum(below(tau + skull_th + scalp_th), L1)
        fat = np.clip(below(tau + skull_th + fat_hi) - below(tau + skull_th + fat_lo), 0, None)
        fat = np.minimum(fat, L2 - L1)
        eye = np.zeros((n0, n1, n2), np.float32)
        orbit = np.zeros((n0, n1, n2), np.float32)
        xt3 = xt.reshape(n0, n1, n2, 3)
        for e in anat["eyes"]:
            r = np.linalg.norm(xt3 - e.c, axis=-1) * warp.scale
            eye = np.maximum(eye, np.clip((e.ax[0] * warp.scale - r) / h + 0.5, 0, 1))
            orbit = np.maximum(orbit, np.clip(((e.ax[0] + 4) * warp.scale - r) / h + 0.5, 0, 1))
        others = 1 - L0
        eye_share = np.minimum(eye, others)
        orbit_share = np.minimum(np.clip(orbit - eye, 0, 1), others - eye_share)
        scale = np.where(others > 0, (others - eye_share - orbit_share) / np.maximum(others, 1e-6), 0)
        frac[C["eye"]] = rest * eye_share
        frac[C["skull"]] = rest * (L1 - L0) * scale
        frac[C["fat"]] = rest * (fat * scale + orbit_share)
        frac[C["scalp"]] = rest * (L2 - L1 - fat) * scale
    t_tissue = time.time() - t_start

    # ------------------------------------------------------------------------------------------
    # Signal.
    s0, relax = tissue_s0(rng)
    P = {
        "wm_d_par": rng.uniform(1.9e-3, 2.3e-3), "wm_f_intra": rng.uniform(0.5, 0.7),
        "wm_f_free": rng.uniform(0.02, 0.06),
        "cortex_fa": rng.uniform(0.04, 0.12), "cortex_md": rng.uniform(0.92e-3, 1.10e-3),
        "cortex_f_dot": rng.uniform(0.03, 0.08),
        "deep_fa": rng.uniform(0.22, 0.30), "deep_md": rng.uniform(0.68e-3, 0.76e-3),
        "cbgm_fa": rng.uniform(0.05, 0.10), "cbgm_md": rng.uniform(0.80e-3, 0.90e-3),
        "csf_d": rng.uniform(3.05e-3, 3.40e-3), "eye_d": rng.uniform(2.8e-3, 3.1e-3),
        "skull_s0": rng.uniform(0.02, 0.05), "skull_d": 0.4e-3,
        "scalp_s0_rel_wm": rng.uniform(0.9, 1.3), "scalp_d": rng.uniform(1.3e-3, 1.6e-3),
        "fat_s0": rng.uniform(0.05, 0.12), "fat_d": rng.uniform(0.01e-3, 0.03e-3),
        "eye_s0": rng.uniform(0.85, 1.0), "deep_s0_rel_gm": rng.uniform(0.85, 0.95),
        "cbgm_s0_rel_gm": rng.uniform(0.95, 1.05),
        "snr_b0_wm": rng.uniform(18, 35), "bias_amplitude": rng.uniform(0.10, 0.25),
        "signal_scale": 1000.0,
        "callosal_weight": rng.uniform(0.35, 0.6), "association_weight": rng.uniform(0.25, 0.45),
        "direction_wobble": rng.uniform(0.1, 0.25),
    }
    P = {key: float(v) for key, v in P.items()}
    bvals, gworld = protocol_table(a.protocol, rng)
    nvol = len(bvals)

    def tensor_att(md, fa, e, b, g):
        d = md * fa * np.sqrt(3.0 / (9.0 - 6.0 * fa * fa))
        lpar, lperp = md + 2 * d, md - d
        c2 = (e @ g) ** 2
        return np.exp(-b * (lperp + (lpar - lperp) * c2))

    # Directions on the DWI grid (world), only where needed.
    # Specimen: the whole-head phantom's cerebral fraction, so the directions are the same.
    cerebral = (cerebral_both if spec else
                frac[C["wm"]] + frac[C["cortex"]] + frac[C["deep_grey"]] + frac[C["ventricle"]])
    sm = ndimage.gaussian_filter(cerebral, 4.0 / h)
    grad_big = np.stack(np.gradient(sm), -1) @ inv_affine[:3, :3]  # world gradient
    sm_p = ndimage.gaussian_filter(cerebral, 1.5 / h)
    grad_pial = np.stack(np.gradient(sm_p), -1) @ inv_affine[:3, :3]
    wob = [smooth_field(rng, 5, 90.0) for _ in range(3)]
    bias = np.exp(P["bias_amplitude"] * np.clip(bias_field(xyz), -2, 2)).reshape(n0, n1, n2).astype(np.float32)

    sig = np.zeros((n0, n1, n2, nvol), np.float32)
    any_tissue = frac.sum(0) > 0
    vox = np.nonzero(any_tissue.ravel())[0]
    F = frac.reshape(len(CHANNELS), -1)[:, vox]
    Xt = xt[vox].astype(np.float64)
    Xw = xyz[vox].astype(np.float64)
    perturb = np.stack([w(Xw) for w in wob], 1) * P["direction_wobble"]
    e_rad = normalised(-grad_big.reshape(-1, 3)[vox])
    e_rad = np.where(np.linalg.norm(grad_big.reshape(-1, 3)[vox], axis=1, keepdims=True) > 1e-6, e_rad,
                     warp.world_direction(np.array([0, 0, 1.0])))
    e_rad = normalised(e_rad + perturb)
    ax = np.abs(Xt[:, 0])
    e_call = normalised(warp.world_direction(np.stack([np.sign(Xt[:, 0]) + (Xt[:, 0] == 0),
                                                       0.1 * np.sin(Xt[:, 1] / 20),
                                                       0.6 * np.tanh((ax - 10) / 15)], 1)) + perturb)
    e_assoc = normalised(warp.world_direction(np.stack([0.1 * np.sin(Xt[:, 2] / 15), np.ones(len(Xt)),
                                                        0.25 * np.sin(Xt[:, 1] / 30)], 1)) + perturb)
    m_call = P["callosal_weight"] * np.exp(-(ax / 22) ** 2 - ((Xt[:, 1] + 10) / 38) ** 2 - ((Xt[:, 2] - 20) / 12) ** 2)
    m_assoc = P["association_weight"] * np.exp(-((ax - 32) / 9) ** 2 - ((Xt[:, 1] + 15) / 40) ** 2 - ((Xt[:, 2] - 12) / 12) ** 2)
    m_rad = 1 - m_call - m_assoc
    e_cb = normalised(warp.world_direction(np.stack([np.zeros(len(Xt)), Xt[:, 1] - cb.c[1], Xt[:, 2] - cb.c[2]], 1)) + perturb)
    bs_axis = normalised(np.asarray(anat["brainstem"]["bottom"]) - np.asarray(anat["brainstem"]["top"]))
    e_bs = normalised(np.broadcast_to(warp.world_direction(bs_axis), Xt.shape) + 0.5 * perturb)
    e_gm = normalised(-grad_pial.reshape(-1, 3)[vox])
    del grad_big, grad_pial

    dpar, fin, ffree = P["wm_d_par"], P["wm_f_intra"], P["wm_f_free"]
    dperp = dpar * (1 - fin)
    amp = P["signal_scale"] * bias.ravel()[vox]
    wm_s0 = s0["wm"]
    gm_s0 = s0["gm"]
    out = sig.reshape(-1, nvol)
    for t in range(nvol):
        b, g = bvals[t], gworld[t]

        def fibre(e):
            if b == 0:
                return np.ones(len(e))
            c2 = (e @ g) ** 2
            return (1 - ffree) * (fin * np.exp(-b * dpar * c2) + (1 - fin) * np.exp(-b * (dperp + (dpar - dperp) * c2))) \
                + ffree * np.exp(-b * P["csf_d"])

        att_wm = m_rad * fibre(e_rad) + m_call * fibre(e_call) + m_assoc * fibre(e_assoc)
        s = F[C["wm"]] * wm_s0 * att_wm
        s += F[C["cerebellar_white"]] * wm_s0 * fibre(e_cb)
        s += F[C["brainstem"]] * wm_s0 * fibre(e_bs)
        s += F[C["cortex"]] * gm_s0 * ((1 - P["cortex_f_dot"]) * tensor_att(P["cortex_md"], P["cortex_fa"], e_gm, b, g)
                                       + P["cortex_f_dot"])
        s += F[C["deep_grey"]] * gm_s0 * P["deep_s0_rel_gm"] * tensor_att(P["deep_md"], P["deep_fa"], e_rad, b, g)
        s += F[C["cerebellar_grey"]] * gm_s0 * P["cbgm_s0_rel_gm"] * tensor_att(P["cbgm_md"], P["cbgm_fa"], e_cb, b, g)
        s += (F[C["csf"]] + F[C["ventricle"]]) * s0["csf"] * np.exp(-b * P["csf_d"])
        s += F[C["eye"]] * P["eye_s0"] * np.exp(-b * P["eye_d"])
        s += F[C["skull"]] * P["skull_s0"] * np.exp(-b * P["skull_d"])
        s += F[C["scalp"]] * wm_s0 * P["scalp_s0_rel_wm"] * np.exp(-b * P["scalp_d"])
        s += F[C["fat"]] * P["fat_s0"] * np.exp(-b * P["fat_d"])
        out[vox, t] = amp * s
    # Rician noise (complex Gaussian on the magnitude) everywhere but a skull-stripped background.
    sigma = P["signal_scale"] * wm_s0 / P["snr_b0_wm"]
    keep = any_tissue if a.skull_stripped else np.ones_like(any_tissue)
    data = np.zeros((n0, n1, n2, nvol), np.int16)
    for t in range(nvol):
        s = sig[..., t]
        noisy = np.sqrt((s + rng.normal(0, sigma, s.shape)) ** 2 + rng.normal(0, sigma, s.shape) ** 2)
        noisy[~keep] = 0
        data[..., t] = np.clip(np.rint(noisy), 0, 32767).astype(np.int16)
    del sig
    t_signal = time.time() - t_start

    # ------------------------------------------------------------------------------------------
    # Outputs.
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_qform(affine, 1)
    img.header.set_sform(affine, 1)
    nib.save(img, os.path.join(a.out, "dwi.nii.gz"))
    fsl = world_to_fsl(gworld, affine)
    np.savetxt(os.path.join(a.out, "dwi.bval"), bvals[None, :], fmt="%g")
    np.savetxt(os.path.join(a.out, "dwi.bvec"), fsl.T, fmt="%.6f")
    fr = nib.Nifti1Image(np.clip(np.rint(np.moveaxis(frac, 0, -1) * 250), 0, 250).astype(np.uint8), affine)
    nib.save(fr, os.path.join(a.out, "fractions.nii.gz"))
    c_ras = affine[:3, :3] @ (dims / 2.0) + affine[:3, 3]
    vs = np.linalg.norm(affine[:3, :3], axis=0)
    footer = {"head": np.array([2, 0, 20], np.int32), "valid": "1  # volume info valid", "filename": "dwi.nii.gz",
              "volume": np.array(dims, int), "voxelsize": vs, "xras": affine[:3, 0] / vs[0],
              "yras": affine[:3, 1] / vs[1], "zras": affine[:3, 2] / vs[2], "cras": c_ras}
    thickness = {}
    hemis = [spec] if spec else ["lh", "rh"]
    for name, (v, f) in world.items():
        if name.split(".")[0] not in hemis:
            continue
        nib.freesurfer.write_geometry(os.path.join(a.out, "surf", name), (v - c_ras).astype(np.float32), f.astype(np.int32),
                                      volume_info=footer)
    for hemi in hemis:
        paired = np.linalg.norm(world[hemi + ".pial"][0] - world[hemi + ".white"][0], axis=1)
        thickness[hemi] = {"paired_vertex_median_mm": float(np.median(paired)),
                           "paired_vertex_mean_mm": float(np.mean(paired))}
    truth = {
        "generator": "bench/heldout_phantoms.py", "seed": a.seed, "spacing_mm": h, "protocol": a.protocol,
        "orientation": a.orientation, "oblique": oblique, "skull_stripped": a.skull_stripped,
        "specimen": spec, "truth_surfaces": [f"{hm}.{n}" for hm in hemis for n in ("white", "pial")],
        "supersample": k, "dims": [int(d) for d in dims], "volumes": nvol, "affine": affine.tolist(),
        "fsaverage": os.path.abspath(a.fsaverage), "mesh": "fsaverage5, each triangle split in four (midpoints)",
        "vertices_per_surface": int(len(world["lh.white"][0])),
        "warp": warp.describe(),
        "tentorium_gap_mm": gap,
        "anatomy_template_frame": {
            "ventricles": [e.describe() for e in anat["ventricles"]],
            "deep_grey": [e.describe() for e in anat["deep_grey"]],
            "cerebellum": anat["cerebellum"].describe(), "folia": folia,
            "brainstem": anat["brainstem"], "eyes": [e.describe() for e in anat["eyes"]]},
        "outer_csf_mm": {"mean": csf_mean, "amplitude": csf_amp, "range": [1.0, csf_max]},
        "skull_mm": skull_th, "scalp_mm": scalp_th, "closing_mm": closing_mm,
        "s0": s0, "relaxation": relax, "signal": P,
        "s0_contrast": {"grey_over_white": s0["gm"] / s0["wm"], "csf_over_white": s0["csf"] / s0["wm"]},
        "noise_sigma": sigma, "fraction_channels": CHANNELS, "fraction_scale": 250,
        "tissue_volume_ml": {c: float(frac[C[c]].sum() * h ** 3 / 1000) for c in CHANNELS},
        "truth_thickness": thickness,
        "gradients": {"bvals": bvals.tolist(), "bvecs_world": gworld.tolist(),
                      "bvec_convention": "FSL: image voxel axes, x negated when det(affine) > 0"},
        "seconds": {"fine_grid": t_fine, "tissues": t_tissue, "signal": t_signal, "total": time.time() - t_start},
    }
    with open(os.path.join(a.out, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
    print(f"{a.out}: {dims.tolist()} x {nvol} at {h} mm, {a.protocol}, {a.orientation}"
          f"{', specimen ' + spec if spec else ''}; "
          f"S0 grey/white {s0['gm'] / s0['wm']:.2f}, CSF/white {s0['csf'] / s0['wm']:.2f}; "
          f"{time.time() - t_start:.0f} s")


if __name__ == "__main__":
    main()
