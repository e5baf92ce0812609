"""End-to-end checks of ddcsr's image and surface I/O against nibabel, an independent reader."""
import gzip
import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import SOURCE, run, shared, workdir, check, finish  # noqa: E402

W = workdir("foundation_io")


def load_gifti(path):
    data = open(path, "rb").read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return nib.GiftiImage.from_bytes(data)


def gifti_arrays(img):
    coords = img.get_arrays_from_intent("NIFTI_INTENT_POINTSET")[0].data
    faces = img.get_arrays_from_intent("NIFTI_INTENT_TRIANGLE")[0].data
    return np.asarray(coords, float), np.asarray(faces, int)


def surfaces():
    white = shared("fsaverage5", "white_left.gii.gz")
    if not os.path.exists(white):
        print("SKIP surfaces: shared data absent:", white)
        return
    ref = shared("dwi", "xa30", "10_DWI_dir80_PA.nii.gz")
    orig_coords, orig_faces = gifti_arrays(load_gifti(white))
    check(orig_coords.shape == (10242, 3) and orig_faces.shape == (20480, 3), "fsaverage5 white is 10242/20480")

    fs_path = os.path.join(W, "lh.white")
    run("convert", white, fs_path, "--ref", ref)
    coords, faces, meta = nib.freesurfer.read_geometry(fs_path, read_metadata=True)
    check(coords.shape == (10242, 3) and faces.shape == (20480, 3), "FreeSurfer output counts")
    check(np.array_equal(faces, orig_faces), "FreeSurfer faces equal the GIFTI faces")
    check(str(meta.get("valid", "")).startswith("1"), "footer valid")
    ref_img = nib.load(ref)
    centre = ref_img.affine @ np.r_[np.array(ref_img.shape[:3]) / 2.0, 1.0]
    check(np.allclose(meta["cras"], centre[:3], atol=1e-4), f"cras {meta['cras']} is the image centre {centre[:3]}")
    check(list(meta["volume"]) == list(ref_img.shape[:3]), "footer volume dims")
    check(np.allclose(meta["voxelsize"], ref_img.header.get_zooms()[:3], atol=1e-5), "footer voxel size")
    xyz = np.stack([meta["xras"], meta["yras"], meta["zras"]], axis=1)
    check(np.allclose(xyz, ref_img.affine[:3, :3] / ref_img.header.get_zooms()[:3], atol=1e-5), "footer direction cosines")
    err = np.abs(coords + meta["cras"] - orig_coords).max()
    check(err < 1e-4, f"surface RAS + cras equals the GIFTI scanner RAS (max diff {err:.2e} mm)")

    for enc in ["GZipBase64Binary", "Base64Binary", "ASCII"]:
        gii = os.path.join(W, f"lh.white.{enc}.surf.gii")
        run("convert", fs_path, gii, "--encoding", enc)
        img = load_gifti(gii)
        c, f = gifti_arrays(img)
        err = np.abs(c - orig_coords).max()
        check(err < 1e-4, f"{enc}: FreeSurfer -> GIFTI back in scanner RAS (max diff {err:.2e} mm)")
        check(np.array_equal(f, orig_faces), f"{enc}: faces unchanged")
        da = img.get_arrays_from_intent("NIFTI_INTENT_POINTSET")[0]
        check(da.data.dtype == np.float32, f"{enc}: float32 pointset")
        md = da.meta
        check(md.get("AnatomicalStructurePrimary") == "CortexLeft", f"{enc}: CortexLeft")
        check(md.get("AnatomicalStructureSecondary") == "GrayWhite", f"{enc}: GrayWhite")
        check(md.get("GeometricType") == "Anatomical", f"{enc}: GeometricType")
        xform = da.coordsys
        check(xform is not None and xform.dataspace == 1 and xform.xformspace == 1, f"{enc}: scanner-anat coordinate system")

    # GIFTI -> FreeSurfer (no --ref) -> GIFTI is lossless too.
    plain = os.path.join(W, "lh.plain")
    back = os.path.join(W, "lh.back.gii")
    run("convert", white, plain)
    run("convert", plain, back)
    c, f = gifti_arrays(load_gifti(back))
    check(np.abs(c - orig_coords).max() < 1e-4 and np.array_equal(f, orig_faces), "GIFTI -> FreeSurfer -> GIFTI unchanged")

    # nibabel-written FreeSurfer file with a footer is read back into scanner RAS.
    nb_fs = os.path.join(W, "rh.nibabel")
    vi = dict(meta)
    vi["cras"] = np.array([10.0, -20.0, 30.0])
    nib.freesurfer.write_geometry(nb_fs, orig_coords - vi["cras"], orig_faces, volume_info=vi)
    out = os.path.join(W, "rh.nibabel.gii")
    run("convert", nb_fs, out)
    c, _ = gifti_arrays(load_gifti(out))
    check(np.abs(c - orig_coords).max() < 1e-4, "nibabel FreeSurfer file with footer read into scanner RAS")


def orientations():
    rng = np.random.default_rng(1)
    data = rng.random((7, 8, 9, 4)).astype(np.float32) * 100
    c, s = np.cos(0.3), np.sin(0.3)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    cases = {
        "RAS": np.diag([2.0, 2.0, 2.0]),
        "LAS": np.diag([-2.0, 2.0, 2.0]),
        "LPI": np.diag([-1.5, -1.5, -3.0]),
        "oblique": rot @ np.diag([-2.0, 2.0, 2.5]),
    }
    bvals = np.array([0, 1000, 1000, 2000])
    bvecs = np.array([[0, 0, 0], [1, 0, 0], [0, 0.6, 0.8], [0.48, 0.6, 0.64]]).T
    for name, lin in cases.items():
        aff = np.eye(4)
        aff[:3, :3] = lin
        aff[:3, 3] = [10, -20, 30]
        img = nib.Nifti1Image(data, aff)
        path = os.path.join(W, f"dwi_{name}.nii.gz")
        nib.save(img, path)
        np.savetxt(path.replace(".nii.gz", ".bval"), bvals[None], fmt="%g")
        np.savetxt(path.replace(".nii.gz", ".bvec"), bvecs, fmt="%.6f")
        info = json.loads(run("info", "--json", path).stdout)
        got = np.array(info["vox2ras"])
        check(np.allclose(got, aff, atol=1e-5), f"{name}: vox2ras matches nibabel")
        check(info["dims"] == [7, 8, 9] and info["volumes"] == 4, f"{name}: dims")
        # FSL convention, computed independently: flip x when det > 0, rotate by unit columns.
        r = lin / np.linalg.norm(lin, axis=0)
        flip = np.diag([-1, 1, 1]) if np.linalg.det(lin) > 0 else np.eye(3)
        expect = (r @ flip @ bvecs).T
        norms = np.linalg.norm(expect, axis=1, keepdims=True)
        expect = np.divide(expect, norms, out=np.zeros_like(expect), where=norms > 0)
        check(np.allclose(np.array(info["bvecs_world"]), expect, atol=1e-6), f"{name}: bvecs_world follows FSL")


def bad_inputs():
    path = os.path.join(W, "dwi_LAS.nii.gz")
    if not os.path.exists(path):
        return
    base = path.replace(".nii.gz", "")
    cases = []
    open(os.path.join(W, "short.bval"), "w").write("0 1000 1000\n")
    cases.append((["info", path, "--bval", os.path.join(W, "short.bval"), "--bvec", base + ".bvec"], "b-values"))
    open(os.path.join(W, "nan.bval"), "w").write("0 1000 NaN 1000\n")
    cases.append((["info", path, "--bval", os.path.join(W, "nan.bval"), "--bvec", base + ".bvec"], "nan.bval"))
    cases.append((["info", os.path.join(W, "missing.nii.gz")], "missing.nii.gz"))
    raw = open(path, "rb").read()
    cut = os.path.join(W, "cut.nii.gz")
    open(cut, "wb").write(raw[: len(raw) // 2])
    cases.append((["convert", cut, os.path.join(W, "x.gii")], "cut.nii.gz"))
    for args, needle in cases:
        proc = run(*args, expect=3)
        lines = [l for l in proc.stderr.strip().splitlines() if l]
        check(len(lines) == 1 and needle.lower() in lines[0].lower(), f"one-line error naming {needle}: {lines}")
    check(run("convert", expect=2) is not None, "usage error exits 2")
    check(not os.path.exists(os.path.join(W, "x.gii")), "no output after a failure")


def provenance():
    """The binary names the commit it was built from (taken at build time, not at configure time)."""
    head = subprocess.run(["git", "-C", SOURCE, "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True)
    out = run("--version").stdout.strip()
    if head.returncode != 0:
        check("unknown" in out or out.startswith("ddcsr "), f"--version outside git: {out}")
        return
    check(head.stdout.strip()[:7] in out, f"--version {out!r} names HEAD {head.stdout.strip()}")


surfaces()
orientations()
bad_inputs()
provenance()
leftovers = [f for f in os.listdir(W) if ".tmp-" in f]
check(not leftovers, f"no temporary files left: {leftovers}")
finish()
