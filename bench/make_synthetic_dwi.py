#!/usr/bin/python3
"""Writes a synthetic whole-head diffusion scan for benchmarks of `ddcsr features`.

Default: 145x174x145 voxels of 1.25 mm (an HCP-like field of view), LAS storage as dcm2niix
writes, int16, 100 volumes (6 b0, 47 at b=1000, 47 at b=2000). A bumpy ellipsoidal brain (white
matter with a swirling fibre field, grey matter, ventricles, a thin outer CSF layer) inside a
dark skull and a bright scalp, under a smooth receive-coil bias and Rician noise. Also writes the
brain's true mask (brain tissue plus the CSF inside the skull) as *_truth_mask.nii.gz.

Usage: make_synthetic_dwi.py OUT_PREFIX [--spacing 1.25] [--volumes 100] [--seed 1]
"""
import argparse

import nibabel as nib
import numpy as np


def fibonacci_sphere(n, offset=0.0):
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    phi = np.pi * (3 - np.sqrt(5)) * i + offset
    r = np.sqrt(1 - z * z)
    # Half sphere is enough (antipodal symmetry); flip to z >= 0.
    v = np.stack([r * np.cos(phi), r * np.sin(phi), z], 1)
    return v * np.sign(v[:, 2:3] + 1e-9)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--spacing", type=float, default=1.25)
    ap.add_argument("--volumes", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    s = a.spacing
    fov = np.array([181.25, 217.5, 181.25])
    dims = np.round(fov / s).astype(int)
    # LAS: i runs right-to-left.
    affine = np.diag([-s, s, s, 1.0])
    affine[:3, 3] = [(dims[0] - 1) * s / 2, -(dims[1] - 1) * s / 2 + 10, -(dims[2] - 1) * s / 2 + 15]
    ii, jj, kk = np.meshgrid(*[np.arange(d, dtype=np.float32) for d in dims], indexing="ij")
    x = affine[0, 0] * ii + affine[0, 3]
    y = affine[1, 1] * jj + affine[1, 3] - 10
    z = affine[2, 2] * kk + affine[2, 3] - 15
    del ii, jj, kk
    # Radial coordinate of a bumpy ellipsoid: < 1 inside the brain.
    th = np.arctan2(y, x)
    ph = np.arctan2(z, np.hypot(x, y))
    bump = 1 + 0.04 * np.sin(7 * th) * np.cos(5 * ph) + 0.03 * np.cos(11 * th + 3 * ph)
    r = np.sqrt((x / 68) ** 2 + (y / 84) ** 2 + (z / 62) ** 2) / bump
    mm = 75.0  # mm per unit of r, roughly
    brain = r < 1
    wm = r < 0.72
    csf_out = (r >= 1) & (r < 1 + 2.5 / mm)
    skull = (r >= 1 + 2.5 / mm) & (r < 1 + 7 / mm)
    scalp = (r >= 1 + 7 / mm) & (r < 1 + 13 / mm)
    vent = (((x - 9) / 6) ** 2 + (y / 28) ** 2 + ((z - 8) / 9) ** 2 < 1) | (((x + 9) / 6) ** 2 + (y / 28) ** 2 + ((z - 8) / 9) ** 2 < 1)
    truth = brain | csf_out
    # Fibre direction in white matter: a swirl around the S axis tilted toward S.
    fd = np.stack([-y, x, 0.5 * np.hypot(x, y)], -1).astype(np.float32)
    fd /= np.linalg.norm(fd, axis=-1, keepdims=True) + 1e-6
    del th, ph, bump
    lpar = np.where(wm & ~vent, 1.7e-3, np.where(brain & ~vent, 0.85e-3, np.where(scalp, 1.1e-3, 3.0e-3))).astype(np.float32)
    lperp = np.where(wm & ~vent, 0.35e-3, np.where(brain & ~vent, 0.75e-3, np.where(scalp, 0.9e-3, 3.0e-3))).astype(np.float32)
    s0 = np.zeros(dims, np.float32)
    s0[scalp] = 700
    s0[skull] = 40
    s0[csf_out] = 2000
    s0[brain] = 1100
    s0[wm] = 850
    s0[vent & brain] = 2200
    bias = (1.3 - 0.45 * (z - z.min()) / (z.max() - z.min())) * (1 + 0.1 * x / 90)
    s0 *= bias.astype(np.float32)
    del bias, r
    nb0 = 6
    ndw = a.volumes - nb0
    n1 = ndw // 2
    dirs = np.concatenate([fibonacci_sphere(n1), fibonacci_sphere(ndw - n1, 0.7)])
    bvals = np.concatenate([np.full(n1, 1000.0), np.full(ndw - n1, 2000.0)])
    order = np.full(a.volumes, -1)
    b0_at = np.linspace(0, a.volumes - 1, nb0).round().astype(int)
    out_b = np.zeros(a.volumes)
    out_g = np.zeros((a.volumes, 3))
    dw_slots = [t for t in range(a.volumes) if t not in set(b0_at)]
    for n, t in enumerate(dw_slots):
        out_b[t] = bvals[n]
        out_g[t] = dirs[n]
    data = np.empty(tuple(dims) + (a.volumes,), np.int16)
    sigma = 18.0
    for t in range(a.volumes):
        b = out_b[t]
        g = out_g[t].astype(np.float32)
        cos2 = (fd @ g) ** 2
        adc = lperp + (lpar - lperp) * cos2
        sig = s0 * np.exp(-b * adc)
        noisy = np.hypot(sig + rng.normal(0, sigma, sig.shape).astype(np.float32), rng.normal(0, sigma, sig.shape).astype(np.float32))
        data[..., t] = np.clip(np.round(noisy), 0, 32767).astype(np.int16)
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, 1)
    img.set_sform(affine, 1)
    nib.save(img, a.out + ".nii.gz")
    mask = nib.Nifti1Image(truth.astype(np.uint8), affine)
    nib.save(mask, a.out + "_truth_mask.nii.gz")
    # FSL convention: LAS has a negative determinant, so b-vectors are the voxel axes as they are:
    # world x = -voxel i.
    fsl = out_g.copy()
    fsl[:, 0] = -fsl[:, 0]
    np.savetxt(a.out + ".bval", out_b[None, :], fmt="%g")
    np.savetxt(a.out + ".bvec", fsl.T, fmt="%.6f")


if __name__ == "__main__":
    main()
