"""End-to-end checks of `ddcsr simulate` with independent readers (nibabel, dipy):
storage orientations keep image, b-vectors and surfaces aligned; FSL b-vector convention;
FreeSurfer footer and GIFTI agree; DTI of pure-tissue voxels matches the compartments;
byte-identical reruns; real-surface mode; error exits."""
import filecmp
import json
import os
import shutil
import sys

import nibabel as nib
import numpy as np
from scipy.ndimage import map_coordinates

sys.path.insert(0, os.path.dirname(__file__))
from common import run, shared, workdir, check, finish  # noqa: E402

W = workdir("simulate")


def simulate(name, *args):
    out = os.path.join(W, name)
    shutil.rmtree(out, ignore_errors=True)
    run("--threads", "2", "-q", "simulate", out, *args)
    return out


def world_bvecs(folder):
    """FSL b-vectors to scanner RAS: undo the x flip of a positive-determinant affine, rotate."""
    img = nib.load(os.path.join(folder, "dwi.nii.gz"))
    bvec = np.loadtxt(os.path.join(folder, "dwi.bvec"))
    rot = img.affine[:3, :3] / np.linalg.norm(img.affine[:3, :3], axis=0)
    vox = bvec.copy()
    if np.linalg.det(img.affine[:3, :3]) > 0:
        vox[0] = -vox[0]
    return (rot @ vox).T


def vertex_normals(v, f):
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    vn = np.zeros_like(v)
    for c in range(3):
        np.add.at(vn, f[:, c], n)
    return vn / (np.linalg.norm(vn, axis=1, keepdims=True) + 1e-12)


def to_voxels(affine, points):
    return (np.linalg.inv(affine) @ np.c_[points, np.ones(len(points))].T)[:3]


def surface_checks(folder, tag):
    dwi = nib.load(os.path.join(folder, "dwi.nii.gz"))
    frac = nib.load(os.path.join(folder, "fractions.nii.gz"))
    fr = frac.get_fdata(dtype=np.float32)
    for hemi in ("lh", "rh"):
        v, f, meta = nib.freesurfer.read_geometry(os.path.join(folder, "surf", hemi + ".white"), read_metadata=True)
        g = nib.load(os.path.join(folder, "surf", hemi + ".white.surf.gii"))
        gv = g.agg_data("NIFTI_INTENT_POINTSET")
        check(np.allclose(v + meta["cras"], gv, atol=2e-3), f"{tag} {hemi}: FreeSurfer + c_ras equals GIFTI (scanner RAS)")
        check(tuple(meta["volume"]) == dwi.shape[:3], f"{tag} {hemi}: footer volume is the DWI grid")
        check(np.allclose(meta["voxelsize"], dwi.header.get_zooms()[:3], atol=1e-4), f"{tag} {hemi}: footer voxel size")
        # A point 1.5 mm inside the white surface falls in a white-matter-dominated voxel.
        inside = gv - 1.5 * vertex_normals(gv, f)
        ijk = np.rint(to_voxels(frac.affine, inside)).astype(int)
        wm = fr[ijk[0], ijk[1], ijk[2], 0]
        check((wm > 0.5).mean() > 0.65, f"{tag} {hemi}: white vertices moved 1.5 mm inwards sample WM ({(wm > 0.5).mean():.2f})")
        # The truth SDF vanishes on the truth surface (up to trilinear interpolation).
        sdf = nib.load(os.path.join(folder, "sdf", hemi + ".white.nii.gz"))
        s = map_coordinates(sdf.get_fdata(), to_voxels(sdf.affine, gv), order=1)
        limit = 0.2 * sdf.header.get_zooms()[0]
        check(np.abs(s).mean() < limit, f"{tag} {hemi}: mean |SDF| at white vertices {np.abs(s).mean():.3f} < {limit:.2f} mm")
    return gv


def orientations():
    args = ["--seed", "5", "--scale", "0.6", "--voxel-size", "2.5", "--mesh-level", "5",
            "--shells", "1000:12,2000:12", "--b0", "2", "--snr", "20", "--supersample", "2",
            "--sdf-voxel-size", "0"]  # the fine SDF grid is checked by real_surfaces and thinner_cortex
    expected = {"RAS": ("R", "A", "S"), "LAS": ("L", "A", "S"), "LPI": ("L", "P", "I"), "oblique": ("L", "A", "S")}
    bvecs, verts, bvals = {}, {}, {}
    for orient, codes in expected.items():
        folder = simulate("orient_" + orient, *args, "--orientation", orient)
        img = nib.load(os.path.join(folder, "dwi.nii.gz"))
        check(img.ndim == 4 and img.shape[3] == 26, f"{orient}: 4D with 26 volumes")
        check(nib.aff2axcodes(img.affine) == codes, f"{orient}: axis codes {nib.aff2axcodes(img.affine)}")
        check(int(img.header["sform_code"]) > 0 and int(img.header["qform_code"]) > 0, f"{orient}: sform and qform set")
        check(img.get_data_dtype() == np.int16, f"{orient}: stored as int16 with a slope, as scanners do")
        lin = img.affine[:3, :3] / np.linalg.norm(img.affine[:3, :3], axis=0)
        off_diagonal = np.abs(lin - np.diag(np.diag(lin))).max()
        check((off_diagonal > 0.05) == (orient == "oblique"), f"{orient}: obliquity {off_diagonal:.2f}")
        bvals[orient] = np.loadtxt(os.path.join(folder, "dwi.bval"))
        bvecs[orient] = world_bvecs(folder)
        norms = np.linalg.norm(bvecs[orient], axis=1)
        check(np.allclose(norms[bvals[orient] > 0], 1, atol=1e-4) and np.all(norms[bvals[orient] == 0] == 0),
              f"{orient}: unit b-vectors, zero for b0")
        verts[orient] = surface_checks(folder, orient)
        mask = nib.load(os.path.join(folder, "mask.nii.gz"))
        check(np.allclose(mask.affine, img.affine), f"{orient}: mask on the DWI grid")
    for orient in expected:
        check(np.array_equal(bvals[orient], bvals["RAS"]), f"{orient}: same b-values")
        # The subject and its gradients live in scanner RAS: the same in every storage order.
        check(np.abs(bvecs[orient] - bvecs["RAS"]).max() < 1e-4, f"{orient}: FSL b-vectors are the same world directions")
        check(np.abs(verts[orient] - verts["RAS"]).max() < 1e-4, f"{orient}: surfaces identical in scanner RAS")
    # The signal agrees across orientations at the same world points (sampled at RAS voxel centres).
    ras = nib.load(os.path.join(W, "orient_RAS", "dwi.nii.gz"))
    las = nib.load(os.path.join(W, "orient_LPI", "dwi.nii.gz"))
    # Noise differs per storage order (drawn per stored slice), so compare the noise-free part:
    # the brain mask.
    m_ras = nib.load(os.path.join(W, "orient_RAS", "mask.nii.gz")).get_fdata()
    m_lpi = nib.load(os.path.join(W, "orient_LPI", "mask.nii.gz")).get_fdata()
    idx = np.argwhere(m_ras > 0)[::7]
    world = ras.affine @ np.c_[idx, np.ones(len(idx))].T
    back = np.rint(np.linalg.inv(las.affine) @ world)[:3].astype(int)
    ok = np.all((back >= 0) & (back < np.array(m_lpi.shape)[:, None]), axis=0)
    agree = (m_lpi[back[0, ok], back[1, ok], back[2, ok]] > 0).mean()
    check(agree > 0.97, f"RAS and LPI brain masks agree at the same world points ({agree:.3f})")


def dti():
    folder = simulate("dti", "--seed", "3", "--voxel-size", "2.5", "--mesh-level", "5", "--shells",
                      "1000:20,2000:20", "--b0", "2", "--snr", "0", "--orientation", "LAS", "--supersample", "2",
                      "--sdf-voxel-size", "0")
    meta = json.load(open(os.path.join(folder, "meta.json")))
    check(meta["seed"] == 3 and meta["acquisition"]["snr"] == 0, "meta.json has the seed and the options")
    from dipy.core.gradients import gradient_table
    from dipy.reconst.dti import TensorModel
    img = nib.load(os.path.join(folder, "dwi.nii.gz"))
    fr = nib.load(os.path.join(folder, "fractions.nii.gz")).get_fdata(dtype=np.float32)
    bvals = np.loadtxt(os.path.join(folder, "dwi.bval"))
    bvecs = np.loadtxt(os.path.join(folder, "dwi.bvec"))
    data = img.get_fdata(dtype=np.float32)
    gtab = gradient_table(bvals, bvecs.T)
    tissue = meta["tissue"]
    pure = {
        "white_matter": (fr[..., 0] > 0.999) & (fr[..., 4] < 0.001),
        "cortical_grey_matter": fr[..., 1] > 0.999,
        "non_cortical_grey_matter": fr[..., 2] > 0.999,
        "csf": fr[..., 3] > 0.999,
    }
    for name, sel in pure.items():
        n = int(sel.sum())
        check(n >= (100 if name == "white_matter" else 5), f"DTI {name}: {n} pure voxels")
        if n == 0:
            continue
        fit = TensorModel(gtab).fit(data[sel][:: max(1, n // 3000)])  # every tissue value is exact: a sample tells
        fa, md = fit.fa, fit.md
        want_fa, want_md = tissue[name]["fa"], tissue[name]["md"]
        md_err = np.abs(md / want_md - 1)
        check(np.percentile(md_err, 99) < 0.10, f"DTI {name}: MD {np.median(md):.2e} vs {want_md:.2e} (99th pct error {np.percentile(md_err, 99):.3f})")
        if want_fa > 0.05:
            fa_err = np.abs(fa / want_fa - 1)
            check(np.percentile(fa_err, 99) < 0.10, f"DTI {name}: FA {np.median(fa):.3f} vs {want_fa:.3f} (99th pct error {np.percentile(fa_err, 99):.3f})")
        else:
            check(np.percentile(fa, 99) < 0.05, f"DTI {name}: FA {np.median(fa):.3f} ~ 0")


def determinism():
    args = ["--seed", "9", "--scale", "0.5", "--voxel-size", "3", "--mesh-level", "4", "--shells", "1000:6", "--b0", "1",
            "--sdf-voxel-size", "1.5"]
    a = os.path.join(W, "det_a")
    b = os.path.join(W, "det_b")
    for out, threads in ((a, "1"), (b, "2")):
        shutil.rmtree(out, ignore_errors=True)
        run("--threads", threads, "-q", "simulate", out, *args)
    files = []
    for root, _, names in os.walk(a):
        files += [os.path.relpath(os.path.join(root, n), a) for n in names]
    check(len(files) == 18, f"18 output files ({len(files)})")
    same = all(filecmp.cmp(os.path.join(a, f), os.path.join(b, f), shallow=False) for f in files)
    check(same, "1 and 2 threads give byte-identical files")
    run("-q", "simulate", a, *args, expect=2)  # exists, no --force
    run("-q", "simulate", a, *args, "--force", expect=0)
    check(filecmp.cmp(os.path.join(a, "dwi.nii.gz"), os.path.join(b, "dwi.nii.gz"), shallow=False), "rerun with --force identical")
    check(not [n for n in os.listdir(W) if n.startswith(".")], "no temporary folders left")
    run("-q", "simulate", os.path.join(W, "bad"), "--orientation", "XYZ", expect=2)
    run("-q", "simulate", os.path.join(W, "bad"), "--shells", "1000", expect=2)
    run("-q", "simulate", os.path.join(W, "bad"), "--geometry", os.path.join(W, "nowhere"), expect=3)


def real_surfaces():
    fsavg = shared("fsaverage5")
    if not os.path.isdir(fsavg):
        print("SKIP real surfaces: shared data absent:", fsavg)
        return
    folder = simulate("fsaverage5", "--geometry", fsavg, "--seed", "2", "--voxel-size", "2.5",
                      "--shells", "1000:6", "--b0", "1", "--snr", "0", "--sdf-voxel-size", "1.25")
    v, f = nib.freesurfer.read_geometry(os.path.join(folder, "surf", "lh.pial"))
    check(v.shape == (10242, 3) and f.shape == (20480, 3), "fsaverage5 mode keeps the 10242-vertex meshes")
    meta = json.load(open(os.path.join(folder, "meta.json")))
    check(len(meta["geometry"]["source_files"]) == 4, "meta.json names the four source surfaces")
    surface_checks(folder, "fsaverage5")


def thinner_cortex():
    """--max-thickness lowers the thickest crowns: the far tail of the pial surface's distance
    from white (the true white map at the pial vertices) shrinks, and meta.json records it."""
    args = ["--seed", "9", "--scale", "0.5", "--voxel-size", "3", "--mesh-level", "4", "--shells",
            "1000:6", "--b0", "1", "--sdf-voxel-size", "0.8"]
    far = {}
    for tag, extra in (("default", []), ("thin", ["--max-thickness", "2.5"])):
        folder = simulate("thickness_" + tag, *args, *extra)
        img = nib.load(os.path.join(folder, "sdf", "lh.white.nii.gz"))
        v, f, meta = nib.freesurfer.read_geometry(os.path.join(folder, "surf", "lh.pial"), read_metadata=True)
        d = map_coordinates(img.get_fdata(), to_voxels(img.affine, v + meta["cras"]), order=1)
        far[tag] = np.percentile(d, 95)
        recorded = json.load(open(os.path.join(folder, "meta.json")))["geometry"]["thickness_mm"]
        check(recorded == ([1.5, 4.5] if tag == "default" else [1.5, 2.5]),
              f"{tag}: meta.json thickness_mm {recorded}")
    check(far["thin"] < far["default"] - 0.5,
          f"95th percentile of pial-to-white distance {far['default']:.2f} -> {far['thin']:.2f} mm")
    run("-q", "simulate", os.path.join(W, "bad"), "--max-thickness", "5", expect=2)
    run("-q", "simulate", os.path.join(W, "bad"), "--max-thickness", "3", "--geometry",
        shared("fsaverage5"), expect=2)


def whole_head():
    """--anatomy and --physics as files on disk: labels.nii.gz on the DWI grid, every drawn value
    of meta.json inside its documented range, anisotropic voxels as drawn, a stripped head with
    zeros outside the brain, the same truth SDF as the legacy phantom of the seed."""
    args = ["--seed", "7", "--scale", "0.5", "--mesh-level", "4", "--shells", "1000:6", "--b0", "1",
            "--supersample", "2", "--sdf-voxel-size", "1.5"]
    folder = simulate("whole_random", *args, "--anatomy", "whole-head", "--physics", "random")
    meta = json.load(open(os.path.join(folder, "meta.json")))
    dwi = nib.load(os.path.join(folder, "dwi.nii.gz"))
    labels = nib.load(os.path.join(folder, "labels.nii.gz"))
    check(labels.shape == dwi.shape[:3] and np.allclose(labels.affine, dwi.affine), "labels on the DWI grid")
    lab = np.rint(labels.get_fdata()).astype(int)
    names = meta["labels"]
    for name in ("cerebellar_grey_matter", "brainstem", "corpus_callosum", "skull", "eye"):
        check((lab == names.index(name)).sum() > 0, f"labels hold {name}")
    values = dict(meta["physics_values"], **meta["head_values"])
    outside = [k for k, (lo, hi) in meta["physics_ranges"].items() if not lo - 1e-12 <= values[k] <= hi + 1e-12]
    check(not outside, f"every drawn value in its documented range ({outside})")
    v = meta["acquisition"]["voxel_sizes_mm"]
    check(np.allclose(dwi.header.get_zooms()[:3], v, atol=1e-4), f"voxel sizes as drawn {v}")
    check(meta["acquisition"]["snr"] == values["snr"], "meta.json's SNR is the drawn one")

    legacy = simulate("whole_legacy", *args, "--voxel-size", "2")
    whole = simulate("whole_fixed", *args, "--voxel-size", "2", "--anatomy", "whole-head")
    stripped = simulate("whole_stripped", *args, "--voxel-size", "2", "--anatomy", "skull-stripped")
    d_whole = nib.load(os.path.join(whole, "dwi.nii.gz")).get_fdata()
    d_strip = nib.load(os.path.join(stripped, "dwi.nii.gz")).get_fdata()
    lab = np.rint(nib.load(os.path.join(whole, "labels.nii.gz")).get_fdata()).astype(int)
    head = np.isin(lab, [meta["labels"].index(n) for n in ("skin", "fat", "eye")])
    check(head.sum() > 100 and (d_whole[head] > 0).all() and (d_strip[head] == 0).all(),
          f"skull-stripped: zero over {head.sum()} skin, fat and eye voxels that the whole head fills")
    # The truth: the same surfaces in scanner RAS, and the whole head's SDF (on its larger grid)
    # vanishes on them as the legacy one does.
    for name in ("lh.white", "lh.pial", "rh.white", "rh.pial"):
        va = nib.load(os.path.join(legacy, "surf", name + ".surf.gii")).agg_data("NIFTI_INTENT_POINTSET")
        vb = nib.load(os.path.join(whole, "surf", name + ".surf.gii")).agg_data("NIFTI_INTENT_POINTSET")
        check(np.array_equal(va, vb), f"{name}: the same truth surface with and without the head")
        err = []
        for f in (legacy, whole):
            img = nib.load(os.path.join(f, "sdf", name + ".nii.gz"))
            err.append(np.abs(map_coordinates(img.get_fdata(), to_voxels(img.affine, vb), order=1)).mean())
        check(abs(err[0] - err[1]) < 0.05, f"{name}: mean |SDF| at the truth vertices {err[0]:.3f} / {err[1]:.3f} mm")
    run("-q", "simulate", os.path.join(W, "bad"), "--anatomy", "head", expect=2)
    run("-q", "simulate", os.path.join(W, "bad"), "--physics", "wild", expect=2)


orientations()
dti()
whole_head()
thinner_cortex()
determinism()
real_surfaces()
finish()
