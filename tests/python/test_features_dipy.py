"""`ddcsr features` against independent tools: dipy's TensorModel (Debian's python3-dipy) for FA
and MD, nibabel for the outputs, on the real scans in the shared data and on a tensor phantom."""
import json
import os
import sys
import warnings

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import run, shared, workdir, check, finish  # noqa: E402

warnings.filterwarnings("ignore")
from dipy.core.gradients import gradient_table  # noqa: E402
from dipy.reconst.dti import TensorModel  # noqa: E402

W = workdir("features_dipy")
CHANNELS = ["b0", "fa", "md", "ad", "rd", "l1", "l2", "l3", "sm_b1000", "sm_b2500", "midline", "mask"]


def features(name, dwi, *extra):
    out = os.path.join(W, name)
    run("--threads", "2", "-q", "features", dwi, "-o", out, *extra)
    with open(os.path.join(out, "features.json")) as f:
        return out, json.load(f)


def compare_with_dipy(label, out, sidecar, dwi, bval, bvec, tolerance):
    """Median relative difference of FA and MD within the mask, dipy WLS on the same volumes."""
    vols = sidecar["protocol"]["tensor_fit_volumes"]
    data = np.asanyarray(nib.load(dwi).dataobj).astype(np.float64)[..., vols]
    b = np.loadtxt(bval)[vols]
    g = np.loadtxt(bvec)[:, vols]
    mask = nib.load(os.path.join(out, "native", "mask.nii.gz")).get_fdata() > 0
    fit = TensorModel(gradient_table(b, g, b0_threshold=50), fit_method="WLS").fit(data, mask=mask)
    for name, ref in [("fa", fit.fa), ("md", fit.md)]:
        ours = nib.load(os.path.join(out, "native", name + ".nii.gz")).get_fdata()
        rel = np.abs(ours[mask] - ref[mask]) / np.maximum(np.abs(ref[mask]), 1e-9)
        med = float(np.median(rel))
        check(med < tolerance, f"{label}: {name.upper()} median relative difference to dipy {med:.2e} < {tolerance:g}")


def check_outputs(label, out, sidecar, min_ml, max_ml):
    names = [c["name"] for c in sidecar["channels"]]
    check(names == CHANNELS, f"{label}: channels {names}")
    img = nib.load(os.path.join(out, "features.nii.gz"))
    shape = img.shape
    check(len(shape) == 4 and shape[3] == len(CHANNELS), f"{label}: features.nii.gz is 4D with one frame per channel {shape}")
    check(all(s % 16 == 0 for s in shape[:3]), f"{label}: grid {shape[:3]} is a multiple of 16")
    affine = np.array(sidecar["grid"]["vox2ras"])
    check(np.array_equal(img.affine, affine), f"{label}: NIfTI affine equals the sidecar's exactly")
    check(np.array_equal(affine[:3, :3], np.eye(3)), f"{label}: 1 mm RAS-aligned grid")
    mask = nib.load(os.path.join(out, "mask.nii.gz")).get_fdata() > 0
    ml = sidecar["mask"]["volume_ml"]
    check(min_ml <= ml <= max_ml, f"{label}: automatic mask {ml:.0f} ml within [{min_ml}, {max_ml}]")
    data = img.get_fdata()
    for c, ch in enumerate(sidecar["channels"][:-1]):
        inside = data[..., c][mask]
        if ch["name"] == "midline":
            # Signed distance to the sidecar's plane, recomputed here, over 20 mm; left negative.
            plane = sidecar["midsagittal_plane"]
            ras = nib.affines.apply_affine(affine, np.argwhere(mask))
            side = (ras - np.array(plane["point_ras"])) @ np.array(plane["normal_ras"])
            err = np.max(np.abs(inside - side / ch["normalisation"]["scale"]))
            check(err < 1e-4 and not np.any(data[..., c][~mask]) and plane["normal_ras"][0] > 0.9,
                  f"{label}: midline is the distance to the plane / 20 mm (max error {err:.1e})")
            continue
        check(abs(np.median(inside)) < 0.05 and not np.any(data[..., c][~mask]),
              f"{label}: {ch['name']} normalised (median {np.median(inside):.3f} inside, 0 outside)")
    with open(os.path.join(out, "qc_fa.png"), "rb") as f:
        check(f.read(8) == b"\x89PNG\r\n\x1a\n", f"{label}: qc_fa.png is a PNG")
    return data, mask


def midline_fa(data, mask, sidecar):
    """FA (raw) in a 5 mm slab around the mask's mid-sagittal plane: the corpus callosum there."""
    k = CHANNELS.index("fa")
    n = sidecar["channels"][k]["normalisation"]
    fa = data[..., k] * n["scale"] + n["center"]
    x0 = int(round(np.argwhere(mask)[:, 0].mean()))
    slab = np.zeros_like(mask)
    slab[x0 - 2:x0 + 3] = True
    return fa[mask & slab], fa[mask]


def real_scans():
    tiny = shared("dwi", "tiny", "small_101D")
    if not os.path.exists(tiny + ".nii.gz"):
        print("SKIP real scans: shared data absent:", tiny + ".nii.gz")
        return
    # dipy on a real multi-shell crop: the default fit (iteratively reweighted) and one
    # reweighting pass, which is dipy's WLS exactly.
    out, sc = features("tiny", tiny + ".nii.gz", "--native")
    compare_with_dipy("small_101D", out, sc, tiny + ".nii.gz", tiny + ".bval", tiny + ".bvec", 0.01)
    out1, sc1 = features("tiny_wls", tiny + ".nii.gz", "--native", "--irls-iterations", "1")
    compare_with_dipy("small_101D one pass", out1, sc1, tiny + ".nii.gz", tiny + ".bval", tiny + ".bvec", 1e-4)
    check_outputs("small_101D", out, sc, 0, 1e9)
    check(sc["mask"]["volume_ml"] > 0.8 * 6 * 10 * 10 * 2.5 ** 3 / 1000, "small_101D: a crop inside a brain is mostly mask")

    for label, rel, lo, hi in [("xa30", ("xa30", "10_DWI_dir80_PA"), 1000, 1800),
                               ("philips", ("philips", "dwi"), 700, 1400)]:
        dwi = shared("dwi", *rel) + ".nii.gz"
        out, sc = features(label, dwi)
        data, mask = check_outputs(label, out, sc, lo, hi)
        mid, whole = midline_fa(data, mask, sc)
        check(np.percentile(mid, 99) > 0.7 and np.median(whole) < 0.4,
              f"{label}: corpus callosum bright at the midline (FA p99 {np.percentile(mid, 99):.2f}, "
              f"brain median {np.median(whole):.2f})")
        print(f"   {label}: look at {os.path.join(out, 'qc_fa.png')}")

    # A mask on another grid (the T1 of the same session) is refused.
    t1 = shared("dwi", "xa30", "5_anat-T1w_acq-tfl.nii.gz")
    proc = run("-q", "features", shared("dwi", "xa30", "10_DWI_dir80_PA.nii.gz"), "-o", os.path.join(W, "bad_mask"),
               "--mask", t1, expect=3)
    check("differs from the DWI grid" in proc.stderr, "mask on another grid: exit 3 naming the grid mismatch")


def phantom():
    """Tensors with known FA/MD under Rician noise, an oblique LAS affine, two shells."""
    rng = np.random.default_rng(5)
    c, s = np.cos(0.2), np.sin(0.2)
    affine = np.array([[-2 * c, 0, 2 * s, 80], [0, 2, 0, -90], [2 * s, 0, 2 * c, -50], [0, 0, 0, 1]])
    dims = (14, 12, 10)
    n = 64
    z = 1 - (np.arange(n) + 0.5) / n
    phi = np.arange(n) * np.pi * (3 - np.sqrt(5))
    dirs = np.stack([np.sqrt(1 - z * z) * np.cos(phi), np.sqrt(1 - z * z) * np.sin(phi), z], 1)
    bvals = np.concatenate([[0, 0, 0], np.full(n // 2, 1000.0), np.full(n // 2, 2000.0)])
    world = np.concatenate([np.zeros((3, 3)), dirs])
    ii, jj, kk = np.meshgrid(*[np.arange(d) for d in dims], indexing="ij")
    md = 0.5e-3 + 0.1e-3 * jj
    an = 0.05 * ii  # FA up to about 0.8; the smallest eigenvalue stays positive
    evals = np.stack([md * (1 + 2 * an), md * (1 - 0.6 * an), md * (1 - 1.4 * an)], -1)
    theta, ph = 0.3 + 0.3 * kk, 0.5 * kk + 0.2 * ii
    e1 = np.stack([np.sin(theta) * np.cos(ph), np.sin(theta) * np.sin(ph), np.cos(theta)], -1)
    a = np.stack([-np.sin(ph), np.cos(ph), np.zeros_like(ph)], -1)
    e2 = np.cross(e1, a)
    e2 /= np.linalg.norm(e2, axis=-1, keepdims=True)
    e3 = np.cross(e1, e2)
    proj = np.stack([e1, e2, e3], -2)  # (..., eigenvector, component)
    gd = np.einsum("...ec,vc->...ve", proj, world)  # components of each g along eigenvectors
    adc = np.einsum("...ve,...e->...v", gd ** 2, evals)
    sig = 1000 * np.exp(-bvals * adc)
    sigma = 1000 / 30
    data = np.hypot(sig + rng.normal(0, sigma, sig.shape), rng.normal(0, sigma, sig.shape)).astype(np.float32)
    # FSL convention: voxel axes, x negated when det > 0 (here det < 0: no flip).
    rot = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    fsl = world @ np.linalg.inv(rot).T
    if np.linalg.det(affine[:3, :3]) > 0:
        fsl[:, 0] *= -1
    base = os.path.join(W, "phantom")
    nib.save(nib.Nifti1Image(data, affine), base + ".nii.gz")
    np.savetxt(base + ".bval", bvals[None], fmt="%g")
    np.savetxt(base + ".bvec", fsl.T, fmt="%.8f")
    nib.save(nib.Nifti1Image(np.ones(dims, np.uint8), affine), base + "_mask.nii.gz")
    out, sc = features("phantom_out", base + ".nii.gz", "--native", "--mask", base + "_mask.nii.gz")
    check(sc["mask"]["source"] == "given", "phantom: the given mask is used")
    compare_with_dipy("phantom", out, sc, base + ".nii.gz", base + ".bval", base + ".bvec", 0.01)
    true_fa = np.sqrt(0.5 * ((evals[..., 0] - evals[..., 1]) ** 2 + (evals[..., 1] - evals[..., 2]) ** 2 +
                             (evals[..., 2] - evals[..., 0]) ** 2) / (evals ** 2).sum(-1))
    ours = nib.load(os.path.join(out, "native", "fa.nii.gz")).get_fdata()
    sel = true_fa > 0.3
    err = np.median(np.abs(ours[sel] / true_fa[sel] - 1))
    check(err < 0.05, f"phantom: FA within {err:.3f} (median relative) of the truth")

    # Five directions cannot make a tensor: exit 3 naming the b-vector file.
    few = os.path.join(W, "few")
    nib.save(nib.Nifti1Image(data[..., :8], affine), few + ".nii.gz")
    b5 = np.array([0, 1000, 1000, 1000, 1000, 1000, 1000, 1000.0])
    g5 = np.concatenate([[[0, 0, 0]], fsl[3:8], fsl[3:5]])
    np.savetxt(few + ".bval", b5[None], fmt="%g")
    np.savetxt(few + ".bvec", g5.T, fmt="%.8f")
    proc = run("-q", "features", few + ".nii.gz", "-o", os.path.join(W, "few_out"), expect=3)
    check("5 non-collinear" in proc.stderr and "few.bvec" in proc.stderr,
          "fewer than 6 directions: exit 3 naming the b-vector file")


def simulated_subject():
    """The simulator's phantom (when this build has `ddcsr simulate`): the automatic mask against
    the phantom's intracranial mask, and FA/MD against dipy on the same data."""
    import subprocess
    from common import DDCSR
    if subprocess.run([DDCSR, "simulate", "--help"], capture_output=True).returncode != 0:
        print("SKIP simulated subject: this build has no `ddcsr simulate`")
        return
    subject = os.path.join(W, "sim")
    run("--threads", "2", "-q", "simulate", subject, "--voxel-size", "2.5", "--sdf-voxel-size", "0", "--mesh-level", "5", "--bias-field", "0.3",
        "--seed", "4", "--force")
    check_simulated(subject)


def check_simulated(subject):
    dwi = os.path.join(subject, "dwi.nii.gz")
    out, sc = features("sim_features", dwi, "--native")
    truth = nib.load(os.path.join(subject, "mask.nii.gz")).get_fdata() > 0
    auto = nib.load(os.path.join(out, "native", "mask.nii.gz")).get_fdata() > 0
    dice = 2 * (truth & auto).sum() / (truth.sum() + auto.sum())
    check(dice >= 0.95, f"simulated subject: automatic mask Dice {dice:.3f} >= 0.95 against the phantom's mask")
    compare_with_dipy("simulated subject", out, sc, dwi, os.path.join(subject, "dwi.bval"),
                      os.path.join(subject, "dwi.bvec"), 0.01)


real_scans()
phantom()
if len(sys.argv) > 1:  # an existing simulated subject folder, e.g. from another build
    check_simulated(sys.argv[1])
else:
    simulated_subject()
finish()
