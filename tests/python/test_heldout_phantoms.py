#!/usr/bin/python3
"""bench/heldout_phantoms.py: a small (2.5 mm, skull-stripped, RAS storage: positive determinant,
so FSL b-vectors have x negated) held-out phantom. ddcsr reads its b-vectors as the world
directions the signal was made with; a tensor fitted with dipy to its brainstem points along the
brainstem's axis (signal and gradient table agree); `ddcsr eval --truth` reads its truth folder
(the truth against itself: offset 0); the truth surfaces lie where the tissue fractions cross 0.5;
its b0 contrasts are those drawn in truth.json, outside `ddcsr simulate`'s."""
import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
from scipy.ndimage import map_coordinates

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
sys.path.insert(0, HERE)
import heldout_phantoms as hp  # noqa: E402
import surface_offset as so  # noqa: E402
from common import SOURCE, check, finish, run, shared, workdir  # noqa: E402


def main():
    if not os.path.exists(shared("fsaverage5", "white_left.gii.gz")):
        print("SKIP: no fsaverage5 in", shared())
        print("0 passed, 0 failed")
        return
    out = os.path.join(workdir("heldout_phantoms"), "p")
    subprocess.run(["/usr/bin/python3", os.path.join(SOURCE, "bench", "heldout_phantoms.py"), out, "--seed", "7",
                    "--spacing", "2.5", "--protocol", "b1000x30", "--orientation", "RAS", "--skull-stripped"], check=True)
    truth = json.load(open(os.path.join(out, "truth.json")))
    img = nib.load(os.path.join(out, "dwi.nii.gz"))
    check(np.linalg.det(img.affine[:3, :3]) > 0, "RAS storage: positive determinant")

    # Gradients as ddcsr reads them.
    info = json.loads(run("info", os.path.join(out, "dwi.nii.gz"), "--json").stdout)
    world = np.array(truth["gradients"]["bvecs_world"])
    read = np.array(info["bvecs_world"])
    check(np.abs(world - read).max() < 1e-5, f"ddcsr info reads the world b-vectors the signal used (max diff {np.abs(world - read).max():.1e})")

    # A tensor fit in the brainstem points along its axis (world).
    from dipy.core.gradients import gradient_table
    from dipy.reconst.dti import TensorModel
    data = img.get_fdata(dtype=np.float32)
    fr = nib.load(os.path.join(out, "fractions.nii.gz")).get_fdata(dtype=np.float32) / 250
    names = truth["fraction_channels"]
    stem = fr[..., names.index("brainstem")] > 0.95
    bvals = np.loadtxt(os.path.join(out, "dwi.bval"))
    bvecs = np.loadtxt(os.path.join(out, "dwi.bvec")).T
    gtab = gradient_table(bvals, bvecs)
    fit = TensorModel(gtab).fit(data[stem])
    e_fsl = fit.evecs[..., 0]
    e_world = hp.fsl_to_world(e_fsl, img.affine)
    bs = truth["anatomy_template_frame"]["brainstem"]
    warp = truth["warp"]
    axis_t = np.subtract(bs["bottom"], bs["top"])
    R = hp.rotation(np.array(warp["rotation_axis"]), np.radians(warp["rotation_deg"]))
    axis_w = R @ (axis_t / np.linalg.norm(axis_t))
    align = np.abs(e_world @ axis_w)
    check(stem.sum() > 20 and np.median(align) > 0.9,
          f"brainstem tensors along its axis: median |cos| {np.median(align):.3f} over {stem.sum()} voxels (FA {np.median(fit.fa):.2f})")

    # Truth folder readable by ddcsr eval, and where the image says.
    ev = json.loads(run("eval", "--recon", out, "--truth", out, "--json", "-q").stdout)
    offs = [s.get("offset_mm", 1) for s in ev["surfaces"]]
    check(len(offs) == 4 and max(abs(o) for o in offs) < 1e-6, f"ddcsr eval --truth reads the four truth surfaces ({offs})")
    inner = fr[..., names.index("wm")] + fr[..., names.index("deep_grey")] + fr[..., names.index("ventricle")]
    brain = inner + fr[..., names.index("cortex")]
    inv = np.linalg.inv(img.affine)
    for name in so.SURFACES:
        v, f = so.read_surface(os.path.join(out, "surf", name))
        vol = inner if "white" in name else brain
        at = map_coordinates(vol, (v @ inv[:3, :3].T + inv[:3, 3]).T, order=1)
        check(0.4 < np.median(at) < 0.6, f"{name}: tissue fraction at the truth vertices, median {np.median(at):.2f} ~ 0.5")

    # b0 contrasts as drawn, outside simulate's (grey/white 1.48, CSF/white 4.35).
    b0 = data[..., bvals < 50].mean(-1)
    level = {c: np.median(b0[fr[..., names.index(c)] > 0.95]) for c in ("wm", "cortex", "csf")}
    gw, cw = level["cortex"] / level["wm"], level["csf"] / level["wm"]
    s0 = truth["s0_contrast"]
    check(abs(gw / s0["grey_over_white"] - 1) < 0.1 and abs(cw / s0["csf_over_white"] - 1) < 0.1,
          f"b0 grey/white {gw:.2f} (drawn {s0['grey_over_white']:.2f}), CSF/white {cw:.2f} (drawn {s0['csf_over_white']:.2f})")
    check(s0["grey_over_white"] < 1.4 and s0["csf_over_white"] < 3.4, "contrasts outside ddcsr simulate's")
    from scipy.ndimage import maximum_filter
    empty = maximum_filter(fr.sum(-1), size=3) == 0  # a voxel away from any tissue (fractions are stored in 1/250)
    check(empty.sum() > 1000 and np.all(data[empty] == 0), f"skull-stripped: background exactly 0 ({empty.sum()} voxels)")

    # The same phantom as an ex vivo specimen of its left hemisphere: the same voxels where it is
    # wholly tissue, nothing of CSF or of the other hemisphere, only its own truth surfaces.
    spec = os.path.join(workdir("heldout_phantoms"), "lh")
    subprocess.run(["/usr/bin/python3", os.path.join(SOURCE, "bench", "heldout_phantoms.py"), spec, "--seed", "7",
                    "--spacing", "2.5", "--protocol", "b1000x30", "--orientation", "RAS", "--skull-stripped",
                    "--specimen", "lh"], check=True)
    check(sorted(os.listdir(os.path.join(spec, "surf"))) == ["lh.pial", "lh.white"], "specimen: lh surfaces only")
    sd = nib.load(os.path.join(spec, "dwi.nii.gz")).get_fdata(dtype=np.float32)
    sf = nib.load(os.path.join(spec, "fractions.nii.gz")).get_fdata(dtype=np.float32) / 250
    tissue = sum(sf[..., names.index(c)] for c in ("wm", "cortex", "deep_grey"))
    check(sf[..., names.index("csf")].max() == 0 and sf[..., names.index("ventricle")].max() == 0,
          "specimen: no CSF, ventricles collapsed")
    # Voxels 3 mm nearer the right pial surface than the left one hold nothing.
    from scipy.spatial import cKDTree
    centres = np.indices(tissue.shape).reshape(3, -1).T @ img.affine[:3, :3].T + img.affine[:3, 3]
    near = {h: cKDTree(so.read_surface(os.path.join(out, "surf", h + ".pial"))[0]).query(centres)[0]
            for h in ("lh", "rh")}
    rh_side = (near["rh"] + 3 < near["lh"]).reshape(tissue.shape)
    check(np.all(sd[rh_side] == 0) and tissue[rh_side].sum() == 0,
          f"specimen: nothing of the right hemisphere ({rh_side.sum()} voxels)")
    whole_p = sum(fr[..., names.index(c)] for c in ("wm", "cortex", "deep_grey"))
    whole = (tissue > 0.999) & (whole_p > 0.999)
    check(whole.sum() > 1000 and np.array_equal(sd[whole], data[whole]),
          f"specimen: its wholly tissue voxels carry the whole phantom's signal ({whole.sum()} voxels)")
    finish()


if __name__ == "__main__":
    main()
