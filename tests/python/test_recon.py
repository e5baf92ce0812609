"""End-to-end `ddcsr recon`: one phantom subject, outputs checked with nibabel; a cohort list with a
broken subject; skipping finished subjects; job-array selection."""
import csv
import io
import json
import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
from scipy.ndimage import map_coordinates

sys.path.insert(0, os.path.dirname(__file__))
from common import run, workdir, MODEL, require_model, small_phantom, check, finish  # noqa: E402

W = workdir("recon")


def euler(faces):
    edges = {tuple(sorted(e)) for f in faces for e in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0]))}
    verts = np.unique(faces)
    return len(verts) - len(edges) + len(faces)


require_model()

# A small phantom: a real-size head would take minutes on 2 cores.
sim = os.path.join(W, "sim")
small_phantom(sim)
out = os.path.join(W, "out")
shutil.rmtree(out, ignore_errors=True)
proc = run("recon", os.path.join(sim, "dwi.nii.gz"), "-o", out, "--vertices", "20000", "--save-sdf")
report = json.load(open(os.path.join(out, "report.json")))
check(report["status"] == "ok", "report status ok")
for key in ["stages", "model", "protocol", "surfaces", "command_line", "ddcsr", "peak_rss_mb"]:
    check(key in report, f"report has {key}")
check(len(report["model"]["sha256"]) == 64, "model checksum recorded")
check(report["inference"]["mirror_average"] is True, "mirror-averaged inference by default, and recorded")
dwi = nib.load(os.path.join(sim, "dwi.nii.gz"))
centre = dwi.affine @ np.r_[np.array(dwi.shape[:3]) / 2.0, 1]
for hemi in ["lh", "rh"]:
    for surf in ["white", "pial"]:
        base = os.path.join(out, "surf", f"{hemi}.{surf}")
        coords, faces, meta = nib.freesurfer.read_geometry(base, read_metadata=True)
        gii = nib.load(base + ".surf.gii")
        gc = gii.get_arrays_from_intent("NIFTI_INTENT_POINTSET")[0].data
        check(np.allclose(meta["cras"], centre[:3], atol=1e-3), f"{hemi}.{surf}: footer cras is the DWI centre")
        check(np.abs(coords + meta["cras"] - gc).max() < 1e-3, f"{hemi}.{surf}: FreeSurfer + cras == GIFTI")
        check(euler(faces) == 2, f"{hemi}.{surf}: Euler characteristic 2")
        s = report["surfaces"][hemi][surf]
        check(s["euler"] == 2 and s["components"] == 1 and s["closed_manifold"], f"{hemi}.{surf}: report says genus 0")
        # The report never hides a failed guarantee: its count matches an independent check.
        q = json.loads(run("eval", base, base, "--json", "--samples", "1000").stdout)
        sif = q["surface"]["pred"]["self_intersecting_faces"]
        check(sif == s["self_intersecting_faces"], f"{hemi}.{surf}: reported self-intersections {s['self_intersecting_faces']} match eval's {sif}")
        if s["self_intersecting_faces"]:
            check(any(f"{hemi}: " in p for p in report["problems"]), f"{hemi}.{surf}: self-intersections listed in problems")
        # Inside the image's field of view.
        ijk = np.linalg.inv(dwi.affine) @ np.c_[gc, np.ones(len(gc))].T
        inside = np.all((ijk[:3] > -1) & (ijk[:3] < np.array(dwi.shape[:3])[:, None]), axis=0).mean()
        check(inside > 0.99, f"{hemi}.{surf}: {inside:.3f} of vertices inside the image")
    th = nib.freesurfer.read_morph_data(os.path.join(out, "surf", f"{hemi}.thickness"))
    check(len(th) == len(coords) and np.all(th >= 0), f"{hemi}.thickness: one non-negative value per vertex")
    lh_x = nib.load(os.path.join(out, "surf", "lh.white.surf.gii")).darrays[0].data[:, 0].mean()
    rh_x = nib.load(os.path.join(out, "surf", "rh.white.surf.gii")).darrays[0].data[:, 0].mean()
check(lh_x < rh_x, "left hemisphere lies to the left (RAS x) of the right one")
for view in ["axial", "coronal", "sagittal"]:
    check(open(os.path.join(out, "qc", view + ".png"), "rb").read(4) == b"\x89PNG", f"qc/{view}.png")
check(os.path.getsize(os.path.join(out, "log.txt")) > 0, "log.txt written")
check(len(os.listdir(os.path.join(out, "sdf"))) == 4, "--save-sdf wrote 4 SDF volumes")
# The saved maps are the ones the surfaces came from: on the 1 mm grid (--sdf-spacing), finer
# than the network's, with the white surface on their zero level.
white_map = nib.load(os.path.join(out, "sdf", "lh.white.nii.gz"))
net_mm = report["network_grid"]["spacing_mm"]
check(net_mm > 1 and np.allclose(white_map.header.get_zooms()[:3], 1.0), f"saved maps on the 1 mm grid (network {net_mm} mm)")
check(report["sdf_grid"]["spacing_mm"] == 1.0, "report records the surfaces' grid")
# Placement then moved each vertex along its normal by the displacement it wrote (FreeSurfer curv,
# mm, + outward): taken back, the white vertices lie on the map's zero level again.
gii = nib.load(os.path.join(out, "surf", "lh.white.surf.gii"))
wc, wf = gii.darrays[0].data.astype(np.float64), gii.darrays[1].data.astype(np.int64)
moved = nib.freesurfer.read_morph_data(os.path.join(out, "surf", "lh.white.displacement"))
check(len(moved) == len(wc) and np.all(np.isfinite(moved)) and np.abs(moved).max() <= 2.5 + 1e-4,
      f"lh.white.displacement: one finite value per vertex, at most 2.5 mm (max {np.abs(moved).max():.2f})")
fn = np.cross(wc[wf[:, 1]] - wc[wf[:, 0]], wc[wf[:, 2]] - wc[wf[:, 0]])
normals = np.zeros_like(wc)
for k in range(3):
    np.add.at(normals, wf[:, k], fn)
normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
sdf_data = white_map.get_fdata(dtype=np.float32)
def on_map(points):
    ijk = (np.linalg.inv(white_map.affine) @ np.c_[points, np.ones(len(points))].T)[:3]
    return map_coordinates(sdf_data, ijk, order=1)
before = on_map(wc - moved[:, None] * normals)
check(np.abs(before).mean() < 0.25, f"white vertices less their displacement on the saved map's zero level "
      f"(mean |sdf| {np.abs(before).mean():.3f} mm; as written {np.abs(on_map(wc)).mean():.3f})")
placement = report["placement"]
check(placement["enabled"] and "place" in [s["stage"] for s in report["stages"]], "placement ran as stage 'place'")
for hemi in ["lh", "rh"]:
    for surf in ["white", "pial"]:
        p = placement[hemi][surf]
        check(0 <= p["evidence_percent"] <= 100 and 0 <= p["moved_percent"] <= 100 and p["p95_abs_mm"] <= 2.5 + 1e-6,
              f"report: placement of {hemi}.{surf} (evidence {p['evidence_percent']:.0f} %, moved "
              f"{p['moved_percent']:.0f} %, mean {p['mean_mm']:+.2f} mm, 95th |d| {p['p95_abs_mm']:.2f} mm)")
    m = placement[hemi]["median_thickness_mm"]
    check(abs(m["after"] - np.median(nib.freesurfer.read_morph_data(os.path.join(out, "surf", f"{hemi}.thickness")))) < 1e-3,
          f"report: {hemi} median thickness after placement is the written thickness's ({m['before']:.2f} -> {m['after']:.2f} mm)")
# Surface maps (FreeSurfer names; nibabel reads each, Workbench too where installed).
check("surface_maps" in [s["stage"] for s in report["stages"]], "surface maps ran as stage 'surface_maps'")
wb = shutil.which("wb_command")
for hemi in ["lh", "rh"]:
    surf = os.path.join(out, "surf")
    white, faces = nib.freesurfer.read_geometry(os.path.join(surf, f"{hemi}.white"))
    mid, mid_faces = nib.freesurfer.read_geometry(os.path.join(surf, f"{hemi}.midthickness"))
    pial, _ = nib.freesurfer.read_geometry(os.path.join(surf, f"{hemi}.pial"))
    check(np.array_equal(mid_faces, faces) and np.abs(mid - (white + pial) / 2).max() < 1e-3,
          f"{hemi}.midthickness: half-way between white and pial")
    infl, infl_faces = nib.freesurfer.read_geometry(os.path.join(surf, f"{hemi}.inflated"))
    check(np.array_equal(infl_faces, faces), f"{hemi}.inflated: the white surface's triangles")
    sph, sph_faces, sph_meta = nib.freesurfer.read_geometry(os.path.join(surf, f"{hemi}.sphere"), read_metadata=True)
    r = np.linalg.norm(sph, axis=1)
    check(np.array_equal(sph_faces, faces) and np.abs(r - 100).max() < 1e-3, f"{hemi}.sphere: radius 100 about surface RAS 0")
    fn = np.cross(sph[faces[:, 1]] - sph[faces[:, 0]], sph[faces[:, 2]] - sph[faces[:, 0]])
    folded = int(((fn * sph[faces].sum(1)).sum(1) <= 0).sum())
    check(folded == 0 and report["surface_maps"][hemi]["sphere_folded_faces"] == 0, f"{hemi}.sphere: one-to-one (no face folds over)")
    # Anterior stays anterior: the sphere's y follows the white surface's.
    check(np.corrcoef(sph[:, 1], white[:, 1])[0, 1] > 0.8, f"{hemi}.sphere: oriented like the hemisphere")
    gsph = nib.load(os.path.join(surf, f"{hemi}.sphere.surf.gii")).darrays[0].data
    check(np.abs(gsph - sph).max() < 1e-3, f"{hemi}.sphere.surf.gii: the same sphere")
    curv = nib.freesurfer.read_morph_data(os.path.join(surf, f"{hemi}.curv"))
    sulc = nib.freesurfer.read_morph_data(os.path.join(surf, f"{hemi}.sulc"))
    check(len(curv) == len(white) == len(sulc), f"{hemi}.curv, {hemi}.sulc: one value per vertex")
    # Sulci (positive sulc) bend the other way from crowns: curvature agrees in sign with depth.
    check(np.corrcoef(curv, sulc)[0, 1] > 0.2, f"{hemi}: curv and sulc agree in sign (r {np.corrcoef(curv, sulc)[0, 1]:.2f})")
    for name, values in [("sulc", sulc), ("curv", curv)]:
        g = nib.load(os.path.join(surf, f"{hemi}.{name}.shape.gii"))
        check(g.darrays[0].intent == 2005 and np.array_equal(g.darrays[0].data, values),
              f"{hemi}.{name}.shape.gii: NIFTI_INTENT_SHAPE, same values")
    # Registration to fsaverage5 and the Desikan-Killiany labels through it.
    reg, reg_faces = nib.freesurfer.read_geometry(os.path.join(surf, f"{hemi}.sphere.reg"))
    check(np.array_equal(reg_faces, faces) and np.abs(np.linalg.norm(reg, axis=1) - 100).max() < 1e-2,
          f"{hemi}.sphere.reg: the subject's vertices on a sphere of radius 100")
    labels, ctab, names = nib.freesurfer.read_annot(os.path.join(out, "label", f"{hemi}.aparc.annot"))
    present = {names[k].decode() for k in np.unique(labels) if k >= 0}
    check(len(labels) == len(white) and len(present) >= 30 and {"precentral", "superiorfrontal", "insula"} <= present,
          f"{hemi}.aparc.annot: {len(present)} of {len(names)} Desikan-Killiany regions, one label per vertex")
    check(report["parcellation"][hemi]["regions_present"]["aparc"] == len(present), "report counts the regions present")
    lgii = nib.load(os.path.join(out, "label", f"{hemi}.aparc.label.gii"))
    table = lgii.labeltable.get_labels_as_dict()
    check(lgii.darrays[0].intent == 1002 and
          all(table[k] == names[l].decode() for k, l in zip(lgii.darrays[0].data[:2000:97], labels[:2000:97]) if l >= 0),
          f"{hemi}.aparc.label.gii: NIFTI_INTENT_LABEL, the annot's regions")
    with open(os.path.join(out, "stats", f"{hemi}.aparc.tsv")) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    fa = 0.5 * np.linalg.norm(np.cross(white[faces[:, 1]] - white[faces[:, 0]], white[faces[:, 2]] - white[faces[:, 0]]), axis=1)
    va = np.zeros(len(white))
    for k in range(3):
        np.add.at(va, faces[:, k], fa / 3)
    th = nib.freesurfer.read_morph_data(os.path.join(surf, f"{hemi}.thickness"))
    by_name = {r["region"]: r for r in rows}
    pre = labels == names.index(b"precentral")
    check(abs(float(by_name["precentral"]["white_area_mm2"]) - va[pre].sum()) < 0.1 + 1e-3 * va[pre].sum()
          and abs(float(by_name["precentral"]["thickness_mean_mm"]) - th[pre].mean()) < 2e-3,
          f"stats/{hemi}.aparc.tsv: precentral area and thickness recomputed from the files")
    if wb:
        for f in [f"surf/{hemi}.sphere.surf.gii", f"surf/{hemi}.inflated.surf.gii", f"surf/{hemi}.sulc.shape.gii",
                  f"label/{hemi}.aparc.label.gii"]:
            info = subprocess.run([wb, "-file-information", os.path.join(out, f)], capture_output=True, text=True)
            check(info.returncode == 0 and str(len(white)) in info.stdout, f"wb_command reads {f}")
# The cortical ribbon labelled by region on the DWI's grid (connectome nodes): each labelled voxel
# takes the region of the midthickness vertex nearest to it (checked with an independent KD-tree).
ribbon = nib.load(os.path.join(out, "label", "aparc.ribbon.nii.gz"))
rib = np.asarray(ribbon.dataobj)
check(ribbon.shape == dwi.shape[:3] and np.allclose(ribbon.affine, dwi.affine, atol=1e-4) and rib.dtype == np.int16,
      "aparc.ribbon.nii.gz: int16 on the DWI's grid")
lut = {int(l.split("\t")[0]): l.split("\t")[1] for l in open(os.path.join(out, "label", "aparc.ribbon_lut.txt"))
       if not l.startswith("#")}
check(set(np.unique(rib).tolist()) <= set(lut), "every ribbon label is in the colour table")
ijk = np.argwhere(rib > 0)
ras = (ribbon.affine @ np.c_[ijk, np.ones(len(ijk))].T).T[:, :3]
points, expected = [], []
for hemi, base in [("lh", 1000), ("rh", 2000)]:
    mid, _ = nib.freesurfer.read_geometry(os.path.join(out, "surf", f"{hemi}.midthickness"))
    _, _, meta = nib.freesurfer.read_geometry(os.path.join(out, "surf", f"{hemi}.white"), read_metadata=True)
    labels, _, names = nib.freesurfer.read_annot(os.path.join(out, "label", f"{hemi}.aparc.annot"))
    points.append(mid + meta["cras"])
    expected.append(np.where(labels >= 0, base + labels, 0))
    regions = {v for v in np.unique(rib).tolist() if base < v < base + 1000}
    check(len(regions) >= 25 and all(lut[v] == f"ctx-{hemi}-" + names[v - base].decode() for v in regions),
          f"aparc.ribbon: {len(regions)} {hemi} regions, named as FreeSurfer's ctx-{hemi}-*")
from scipy.spatial import cKDTree  # noqa: E402
dist, nearest = cKDTree(np.vstack(points)).query(ras)
agree = np.mean(np.concatenate(expected)[nearest] == rib[tuple(ijk.T)])
check(len(ijk) > 2000 and agree > 0.9 and np.percentile(dist, 99) < 4.0,
      f"aparc.ribbon: {len(ijk)} voxels, {100 * agree:.1f} % carry their nearest midthickness vertex's region, "
      f"99 % within {np.percentile(dist, 99):.1f} mm of it")
# The parcellation picture: contours coloured by region, many regions visible.
from PIL import Image  # noqa: E402
picture = np.asarray(Image.open(os.path.join(out, "qc", "aparc.png")).convert("RGB")).reshape(-1, 3)
_, ctab, _ = nib.freesurfer.read_annot(os.path.join(out, "label", "lh.aparc.annot"))
colours = {tuple(c[:3]) for c in ctab if len(set(c[:3])) > 1}  # not grey: not in the b0 or FA
seen = {tuple(p) for p in np.unique(picture, axis=0)} & colours
check(len(seen) >= 15, f"qc/aparc.png: contours in {len(seen)} region colours")
mrinfo = shutil.which("mrinfo")
if mrinfo:
    info = subprocess.run([mrinfo, os.path.join(out, "label", "aparc.ribbon.nii.gz")], capture_output=True, text=True)
    check(info.returncode == 0 and "signed 16 bit integer" in info.stdout, "mrinfo reads label/aparc.ribbon.nii.gz")
print(run("eval", "--recon", out, "--truth", sim, "--samples", "20000").stdout)

# Re-run: finished subject skipped (report untouched).
mtime = os.path.getmtime(os.path.join(out, "report.json"))
run("recon", os.path.join(sim, "dwi.nii.gz"), "-o", out)
check(os.path.getmtime(os.path.join(out, "report.json")) == mtime, "finished subject skipped on re-run")

# Cohort: one good subject, one broken; the good one is done, exit code non-zero, no partial output.
root = os.path.join(W, "cohort")
shutil.rmtree(root, ignore_errors=True)
os.makedirs(root)
bad = os.path.join(W, "bad.nii.gz")
open(bad, "wb").write(b"not an image")
with open(os.path.join(W, "subjects.tsv"), "w") as f:
    f.write(f"id\tdwi\nbroken\t{bad}\ngood\t{os.path.join(sim, 'dwi.nii.gz')}\n")
proc = run("recon", "--subjects", os.path.join(W, "subjects.tsv"), "-o", root, "--vertices", "20000", "--hemi", "lh",
           "--no-qc", "--no-place", expect=3)
check(os.path.exists(os.path.join(root, "good", "report.json")), "good subject finished despite the broken one")
good = json.load(open(os.path.join(root, "good", "report.json")))
check(good["placement"] == {"enabled": False} and "place" not in [s["stage"] for s in good["stages"]]
      and not os.path.exists(os.path.join(root, "good", "surf", "lh.white.displacement")),
      "--no-place: no placement stage, no displacement overlays")
check(not os.path.exists(os.path.join(root, "broken")), "nothing under the broken subject's final name")
check("1 failed" in proc.stderr, "summary counts the failure")
check(not [f for f in os.listdir(root) if ".tmp-" in f], "no temporary folders left")
# The cohort's table: one row per listed subject, the broken one missing, values from report.json.
table = os.path.join(root, "cohort.tsv")
proc = run("report", root, "--subjects", os.path.join(W, "subjects.tsv"), "-o", table)
rows = list(csv.DictReader(open(table), delimiter="\t"))
check([r["id"] for r in rows] == ["broken", "good"], "report: a row per listed subject, in list order")
check(rows[0]["status"] == "missing" and rows[1]["status"] == "ok", "report: broken missing, good ok")
good = json.load(open(os.path.join(root, "good", "report.json")))
lh = good["surfaces"]["lh"]
check(int(rows[1]["lh_white_euler"]) == lh["white"]["euler"] == 2, "report: Euler from report.json")
check(abs(float(rows[1]["lh_thickness_median"]) - lh["thickness_mm"]["median"]) < 1e-3,
      "report: median thickness from report.json")
check(int(rows[1]["lh_zero_thickness_vertices"]) == lh["zero_thickness_vertices"], "report: zero-thickness count")
check(rows[1]["rh_white_euler"] == "", "report: rh empty when only lh was made")
check(int(rows[1]["problems"]) == len(good["problems"]), "report: problem count")
check("1 ok" in proc.stderr and "1 missing" in proc.stderr, "report: counts on stderr")
found = run("report", root).stdout.splitlines()
check(len(found) == 2 and found[1].startswith("good\tok\t"), "report without a list finds the finished subject")
# The cohort's regional table: every row of the finished subject's stats, with its id and hemisphere.
regions = list(csv.DictReader(io.StringIO(run("report", root, "--regions", "aparc").stdout), delimiter="\t"))
stats = list(csv.DictReader(open(os.path.join(root, "good", "stats", "lh.aparc.tsv")), delimiter="\t"))
check(len(regions) == len(stats) >= 30 and all(r["id"] == "good" and r["hemi"] == "lh" for r in regions)
      and [r["region"] for r in regions] == [r["region"] for r in stats]
      and [r["thickness_mean_mm"] for r in regions] == [r["thickness_mean_mm"] for r in stats],
      f"report --regions aparc: the subject's {len(stats)} lh regions, one row each")

# Array index: task 1 (base 0) is the good subject, already finished -> skipped, exit 0.
env = dict(os.environ, SLURM_ARRAY_TASK_ID="1")
proc = run("recon", "--subjects", os.path.join(W, "subjects.tsv"), "-o", root, env=env)
check("array task 1" in proc.stderr and "already finished" in proc.stderr, "SLURM array index selects the subject")
run("recon", "--subjects", os.path.join(W, "subjects.tsv"), "-o", root, "--array-index", "5", expect=2)

finish()
