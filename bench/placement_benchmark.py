#!/usr/bin/python3
"""WHERE the surfaces lie: `ddcsr recon` on held-out phantoms of another signal model
(bench/heldout_phantoms.py) and on the real whole-head scan philips_enh against its T1.

    bench/placement_benchmark.py WORK [--ddcsr build/ddcsr] [--model models/sdfnet.pt] [--threads 1]
        [--phantoms 3] [--simulated 2] [--extra-recon-args=--no-place] [--tag NAME] [--no-real]
        [--report FILE]

1. Generates the phantoms once into WORK/phantoms/ (reused while bench/heldout_phantoms.py is
   unchanged; its sha256 is in WORK/phantoms/NAME/generator.json): h1 seed 101, 1.5 mm,
   b=1000 x 30, LAS; h2 seed 102, 2.0 mm, b=1000+2000, oblique; h3 seed 103, 2.5 mm, the XA30
   table (b=2500 x 20), LPI; more with --phantoms N (seeds 104, ..., the same cycle of settings).
   Also simulates `ddcsr simulate`'s own held-out subjects into WORK/simulated/ (--simulated N:
   seeds 9101, 9102, ..., which models/train_wholehead.sh never draws; whole head, randomised
   physics, voxels 1.5 / 2 / 2.5 mm, procedural and fsaverage5 folding alternately), reused while
   src/lib/simulate is unchanged.
2. Runs `ddcsr --threads T recon DWI -o WORK/recon/TAG/NAME --model MODEL [extra args]` on each
   subject and on ../shared/data/dwi/philips_enh, one at a time. TAG is `default`, or --tag, or
   made from the extra arguments. A reconstruction is reused while the binary and the model
   (sha256), the input and the extra arguments are the same (WORK/recon/TAG/NAME.key.json).
3. Phantoms and simulated subjects: bench/surface_offset.py against the true surfaces: ASSD, HD90
   and the mean signed offset (positive: the reconstruction lies OUTSIDE the true surface), over
   all of the reconstruction and over its part on the cerebral side (nearer the subject's
   cerebrum than its cerebellum / brainstem, by distance transforms of its tissue fractions or
   labels on the DWI grid), with the share of its area on the hindbrain side; the same offset
   seen from the truth (at points of the true surface: it counts a gyrus the reconstruction
   misses) and the share of the true surface farther than 2 mm from the reconstruction; the median
   thickness error (the same exact white-to-pial distance measure on the reconstruction's
   cerebral side and on the truth).
4. philips_enh, with bench/data/philips_enh_tentorium.json, over the vertices above the
   tentorium: bench/t1_boundaries.py (FreeSurfer's half-way criterion: where the T1 crosses
   half-way between its tissue levels) and bench/t1_agreement.py (peak of the mean T1 step; it
   cannot judge white, see docs/experiments.md); negative = the T1 puts the boundary INSIDE the
   surface. The share of vertices below the tentorium, and a picture of the surfaces on the T1.
5. Prints one markdown table (and writes it to --report).
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
from scipy import ndimage

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import surface_offset as so  # noqa: E402
from benchmark import sha256  # noqa: E402

SHARED = os.environ.get("DDCSR_SHARED_DATA", os.path.join(SOURCE, "..", "shared", "data"))
SETTINGS = [(1.5, "b1000x30", "LAS"), (2.0, "b1000b2000", "oblique"), (2.5, "xa30", "LPI")]
ORIENTATIONS = ["LAS", "oblique", "LPI", "RAS"]
REAL = "philips_enh"


def phantom_specs(n):
    out = []
    for i in range(n):
        spacing, protocol, _ = SETTINGS[i % 3]
        orientation = SETTINGS[i][2] if i < 3 else ORIENTATIONS[i % 4]
        out.append({"name": f"h{i + 1}", "seed": 101 + i, "spacing": spacing, "protocol": protocol,
                    "orientation": orientation})
    return out


def make_phantom(work, spec):
    folder = os.path.join(work, "phantoms", spec["name"])
    generator = os.path.join(HERE, "heldout_phantoms.py")
    key = dict(spec, generator_sha256=sha256(generator))
    key_path = os.path.join(folder, "generator.json")
    if os.path.exists(key_path) and json.load(open(key_path)) == key and os.path.exists(os.path.join(folder, "truth.json")):
        return folder, key
    cmd = ["/usr/bin/python3", generator, folder, "--seed", str(spec["seed"]), "--spacing", str(spec["spacing"]),
           "--protocol", spec["protocol"], "--orientation", spec["orientation"]]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    with open(key_path, "w") as f:
        json.dump(key, f, indent=1)
    return folder, key


def simulated_specs(n):
    protocols = [["1000:30,2000:30", 5], ["1000:30", 3], ["2500:20", 1]]  # lists: compared with JSON
    return [{"name": f"s{9101 + i}", "seed": 9101 + i, "spacing": SETTINGS[i % 3][0],
             "protocol": protocols[i % 3], "fsaverage5": i % 2 == 1} for i in range(n)]


def make_simulated(work, ddcsr, spec):
    folder = os.path.join(work, "simulated", spec["name"])
    simulator = subprocess.run(["git", "-C", SOURCE, "log", "-1", "--format=%H", "--", "src/lib/simulate",
                                "include/ddcsr/simulate"], capture_output=True, text=True).stdout.strip()
    key = dict(spec, simulator_commit=simulator)
    key_path = folder + ".key.json"
    if os.path.exists(key_path) and json.load(open(key_path)) == key and os.path.exists(os.path.join(folder, "meta.json")):
        return folder, key
    cmd = [ddcsr, "-q", "simulate", folder, "--force", "--seed", str(spec["seed"]), "--anatomy", "whole-head",
           "--physics", "random", "--voxel-size", str(spec["spacing"]), "--shells", spec["protocol"][0],
           "--b0", str(spec["protocol"][1]), "--sdf-voxel-size", "0"]
    if spec["fsaverage5"]:
        cmd += ["--geometry", os.path.join(SOURCE, "data", "fsaverage5")]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    with open(key_path, "w") as f:
        json.dump(key, f, indent=1)
    return folder, key


def recon(work, tag, name, dwi, ddcsr, model, threads, extra, input_key):
    out = os.path.join(work, "recon", tag, name)
    key = {"ddcsr_sha256": sha256(ddcsr), "model_sha256": sha256(model),
           "input": input_key, "extra_args": extra, "threads": threads}
    key_path = out + ".key.json"
    report = os.path.join(out, "report.json")
    if os.path.exists(key_path) and os.path.exists(report) and json.load(open(key_path)) == key:
        r = json.load(open(report))
        if r.get("status") == "ok":
            return out, json.load(open(out + ".run.json")) if os.path.exists(out + ".run.json") else {}
    os.makedirs(os.path.dirname(out), exist_ok=True)
    cmd = [ddcsr, "--threads", str(threads), "recon", dwi, "-o", out, "--force", "--model", model] + extra
    print("+", " ".join(shlex.quote(c) for c in cmd), flush=True)
    t0 = time.time()
    with open(out + ".log", "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    run = {"wall_s": time.time() - t0, "exit": proc.returncode, "command": cmd}
    with open(out + ".run.json", "w") as f:
        json.dump(run, f, indent=1)
    if proc.returncode != 0 or not os.path.exists(report):
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}; see {out}.log")
    with open(key_path, "w") as f:
        json.dump(key, f, indent=1)
    return out, run


class HindbrainSide:
    """Which side of a phantom's tentorium a point lies on: nearer its cerebellum / brainstem
    than its cerebrum, by distance transforms of the tissue fractions on the DWI grid."""

    def __init__(self, phantom):
        if os.path.exists(os.path.join(phantom, "truth.json")):  # bench/heldout_phantoms.py
            img = nib.load(os.path.join(phantom, "fractions.nii.gz"))
            names = json.load(open(os.path.join(phantom, "truth.json")))["fraction_channels"]
            fr = img.get_fdata(dtype=np.float32) / 250.0
            ch = {n: fr[..., i] for i, n in enumerate(names)}
            hind = (ch["cerebellar_grey"] + ch["cerebellar_white"] + ch["brainstem"]) >= 0.5
            cerebrum = (ch["wm"] + ch["cortex"] + ch["deep_grey"] + ch["ventricle"]) >= 0.5
        else:  # ddcsr simulate --anatomy whole-head: labels.nii.gz, names in meta.json
            img = nib.load(os.path.join(phantom, "labels.nii.gz"))
            names = json.load(open(os.path.join(phantom, "meta.json")))["labels"]
            lab = np.rint(img.get_fdata()).astype(int)
            ids = lambda *n: [names.index(x) for x in n]  # noqa: E731
            hind = np.isin(lab, ids("cerebellar_white_matter", "cerebellar_grey_matter", "brainstem"))
            cerebrum = np.isin(lab, ids("cerebral_white_matter", "cortex", "deep_grey_nuclei", "lateral_ventricles",
                                        "corpus_callosum"))
        hind = ndimage.binary_closing(hind, iterations=2) | hind  # the folia's fissures
        h = np.linalg.norm(img.affine[:3, :3], axis=0)
        d_h = ndimage.distance_transform_edt(~hind, sampling=h)
        d_c = ndimage.distance_transform_edt(~cerebrum, sampling=h)
        self.side = d_h < d_c
        self.inv = np.linalg.inv(img.affine)

    def __call__(self, points):
        ijk = np.rint(points @ self.inv[:3, :3].T + self.inv[:3, 3]).astype(int)
        for a in range(3):
            ijk[:, a] = np.clip(ijk[:, a], 0, self.side.shape[a] - 1)
        return self.side[ijk[:, 0], ijk[:, 1], ijk[:, 2]]


def evaluate_phantom(recon_dir, phantom, samples):
    side = HindbrainSide(phantom)
    out = {}
    meshes = {}
    for name in so.SURFACES:
        pred = so.read_surface(so.find_surface(recon_dir, name))
        ref = so.read_surface(so.find_surface(phantom, name))
        pt, rt = so.MeshDistance(*pred), so.MeshDistance(*ref)
        meshes[name] = (pred, ref, pt, rt)
        ps = so.sample_surface(pred[0], pred[1], samples, so.SEED)
        rs = so.sample_surface(ref[0], ref[1], samples, so.SEED + 1)
        d_pr, s_pr, _ = rt.query(ps)
        d_rp, s_rp, _ = pt.query(rs)
        hb = side(ps)
        cer = ~hb
        out[name] = {
            "assd": 0.5 * (d_pr.mean() + d_rp.mean()),
            "hd90": max(np.percentile(d_pr, 90), np.percentile(d_rp, 90)),
            "offset": s_pr.mean(), "offset_median": float(np.median(s_pr)),
            "offset_cerebral": s_pr[cer].mean() if cer.any() else float("nan"),
            "offset_cerebral_median": float(np.median(s_pr[cer])) if cer.any() else float("nan"),
            "hindbrain_percent": 100.0 * hb.mean(),
            "assd_cerebral": 0.5 * (d_pr[cer].mean() + d_rp.mean()) if cer.any() else float("nan"),
            # Seen from the truth: where the reconstruction misses a gyrus the recon-side offset
            # cannot tell, since no reconstructed point lies near the missed part.
            "offset_from_truth": float(-s_rp.mean()), "offset_from_truth_median": float(-np.median(s_rp)),
            "truth_missed_percent": 100.0 * float((d_rp > 2.0).mean()),
        }
    for hemi in ("lh", "rh"):
        w, p = meshes[hemi + ".white"], meshes[hemi + ".pial"]
        n = max(samples // 2, 1000)
        ws = so.sample_surface(w[0][0], w[0][1], n, so.SEED + 2)
        ps = so.sample_surface(p[0][0], p[0][1], n, so.SEED + 3)
        t_recon = np.concatenate([p[2].query(ws)[0][~side(ws)], w[2].query(ps)[0][~side(ps)]])
        t_truth = so.thickness_samples(w[1], p[1], n, so.SEED, w[3], p[3])
        out[hemi + ".thickness"] = {"recon_median": float(np.median(t_recon)), "truth_median": float(np.median(t_truth)),
                                    "error": float(np.median(t_recon) - np.median(t_truth))}
    return {k: {kk: float(vv) for kk, vv in v.items()} for k, v in out.items()}


def fmt(x, sign=False, digits=2):
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("work")
    ap.add_argument("--ddcsr", default=os.path.join(SOURCE, "build", "ddcsr"))
    ap.add_argument("--model", default=os.path.join(SOURCE, "models", "sdfnet.pt"), help="recon --model")
    ap.add_argument("--threads", type=int, default=1, help="ddcsr --threads for recon (default 1)")
    ap.add_argument("--phantoms", type=int, default=3)
    ap.add_argument("--simulated", type=int, default=2, help="ddcsr simulate's own held-out subjects")
    ap.add_argument("--extra-recon-args", default="", help="passed to ddcsr recon, e.g. --extra-recon-args=--no-place (with =)")
    ap.add_argument("--tag", help="name of this set of reconstructions (default: from the extra arguments)")
    ap.add_argument("--no-real", action="store_true", help="skip philips_enh")
    ap.add_argument("--samples", type=int, default=100000)
    ap.add_argument("--report", help="also write the table to this file")
    a = ap.parse_args()
    extra = shlex.split(a.extra_recon_args)
    tag = a.tag or (re.sub(r"[^A-Za-z0-9._=-]+", "_", "_".join(extra)).strip("_-") or "default")
    ddcsr = os.path.abspath(a.ddcsr)
    work = os.path.abspath(a.work)
    model = os.path.abspath(a.model)
    version = subprocess.run([ddcsr, "--version"], capture_output=True, text=True).stdout.strip()

    rows, notes = [], []
    results = {"ddcsr": version, "ddcsr_sha256": sha256(ddcsr), "model": model, "model_sha256": sha256(model),
               "extra_args": extra, "tag": tag, "phantoms": {}, "real": {}}
    subjects = [(spec, *make_phantom(work, spec)) for spec in phantom_specs(a.phantoms)]
    subjects += [(spec, *make_simulated(work, ddcsr, spec)) for spec in simulated_specs(a.simulated)]
    for spec, folder, input_key in subjects:
        out, run = recon(work, tag, spec["name"], os.path.join(folder, "dwi.nii.gz"), ddcsr, model, a.threads, extra,
                         input_key)
        ev_path = out + ".placement.json"
        ev_key = {"report_sha256": sha256(os.path.join(out, "report.json")), "samples": a.samples,
                  "evaluator_sha256": sha256(os.path.abspath(__file__)) + sha256(os.path.join(HERE, "surface_offset.py"))}
        ev = json.load(open(ev_path)) if os.path.exists(ev_path) else {}
        if ev.get("key") != ev_key:
            print(f"evaluating {spec['name']} ...", flush=True)
            ev = {"key": ev_key, "result": evaluate_phantom(out, folder, a.samples)}
            with open(ev_path, "w") as f:
                json.dump(ev, f, indent=1)
        r = ev["result"]
        results["phantoms"][spec["name"]] = dict(spec, recon=out, wall_s=run.get("wall_s"), **{"metrics": r})
        if "orientation" in spec:
            label = f"{spec['name']} ({spec['spacing']:g} mm, {spec['protocol']}, {spec['orientation']})"
        else:
            label = (f"{spec['name']} (simulate, {spec['spacing']:g} mm, b={spec['protocol'][0]}, "
                     f"{'fsaverage5' if spec['fsaverage5'] else 'procedural'})")
        for name in so.SURFACES:
            m = r[name]
            t = r[name.split(".")[0] + ".thickness"]
            rows.append(f"| {label} | {name} | {fmt(m['assd'])} | {fmt(m['hd90'])} | {fmt(m['offset'], True)} | "
                        f"{fmt(m['offset_cerebral'], True)} ({fmt(m['offset_cerebral_median'], True)}) | "
                        f"{fmt(m['offset_from_truth'], True)} ({fmt(m['offset_from_truth_median'], True)}; "
                        f"{m['truth_missed_percent']:.1f} %) | "
                        f"{m['hindbrain_percent']:.1f} | {fmt(t['error'], True)} ({fmt(t['recon_median'])} / {fmt(t['truth_median'])}) | — |")
    if not a.no_real:
        real = os.path.join(SHARED, "dwi", REAL)
        dwi = os.path.join(real, "dwi.nii.gz")
        out, run = recon(work, tag, REAL, dwi, ddcsr, model, a.threads, extra,
                         {"dwi": os.path.abspath(dwi), "sha256": sha256(dwi)})
        tent_path = os.path.join(HERE, "data", "philips_enh_tentorium.json")
        pic = os.path.join(work, "recon", tag, REAL + "_t1.png")
        jpath = os.path.join(work, "recon", tag, REAL + "_t1.json")
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, "t1_agreement.py"), "--t1", os.path.join(real, "T1w.nii.gz"),
                        "--tentorium", tent_path, "--picture", pic, "--json", jpath, out], check=True, stdout=subprocess.DEVNULL)
        hpath = os.path.join(work, "recon", tag, REAL + "_t1_half_way.json")
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, "t1_boundaries.py"), "--t1", os.path.join(real, "T1w.nii.gz"),
                        "--tentorium", tent_path, "--json", hpath, out], check=True, stdout=subprocess.DEVNULL)
        t1 = json.load(open(jpath))[out]
        half = json.load(open(hpath))[out]
        results["real"][REAL] = {"recon": out, "wall_s": run.get("wall_s"), "t1": t1, "t1_half_way": half}
        for name in so.SURFACES:
            m, h = t1[name], half[name]
            rows.append(f"| {REAL} (2 mm, b=1000 x 16, real) | {name} | — | — | — | — | — | {m['below_tentorium_percent']:.1f} (below tentorium) | — | "
                        f"half-way {h['offset_mm']:+.2f} (vertex median {h['vertex_median_mm']:+.2f}); "
                        f"peak {m['offset_mm']:+.2f} (contrast {m['contrast']:.3f}, {m['positive_percent']:.0f} % +) |")
        notes.append(f"philips_enh picture (white blue, pial red, tentorium yellow): `{pic}`")
    head = [f"ddcsr: `{version}` (sha256 {results['ddcsr_sha256'][:12]}), recon extra args: `{' '.join(extra) or '(none)'}`, "
            f"--threads {a.threads}; WORK `{work}`", "",
            "| subject | surface | ASSD | HD90 | mean signed offset (all) | offset, cerebral side: mean (median) | "
            "offset seen from the truth: mean (median; truth > 2 mm away) | area on hindbrain side / below tentorium % | median thickness error (recon / truth) | T1 boundary offset above tentorium |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    tail = ["", "mm. Signed offsets: positive = the reconstruction lies OUTSIDE the true surface. T1 boundary offset: "
            "negative = the T1 puts the boundary INSIDE the surface. Seen from the truth: the same sign, "
            "measured at points of the true surface (a gyrus the reconstruction misses counts there and not in the "
            "reconstruction's own offset). Thickness: median exact white-to-pial distance "
            "(cerebral side of the reconstruction vs the truth), per hemisphere. T1 half-way: FreeSurfer's criterion on the mean "
            "profile (t1_boundaries.py); peak: of the mean 1 mm-in minus 1 mm-out step (t1_agreement.py; lands on the "
            "grey/CSF edge for white)."] + notes
    wall = {k: v.get("wall_s") for k, v in list(results["phantoms"].items()) + list(results["real"].items())}
    tail.append("recon wall time (s): " + ", ".join(f"{k} {v:.0f}" if v else f"{k} (cached)" for k, v in wall.items()))
    text = "\n".join(head + rows + tail)
    print(text)
    if a.report:
        with open(a.report, "w") as f:
            f.write(text + "\n")
    with open(os.path.join(work, "recon", tag, "placement_benchmark.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
