"""Same input and options, same surfaces: two `ddcsr recon` runs on CPU give byte-identical surface
files (FreeSurfer binaries, GIFTI, thickness), and so do --threads 1 and --threads 2 (hemispheres in
sequence vs side by side, LibTorch with one or two intra-op threads). report.json differs by its
timings and is not compared."""
import hashlib
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import run, workdir, MODEL, require_model, small_phantom, check, finish  # noqa: E402

W = workdir("determinism")
SURFACES = [f"{h}.{s}" for h in ["lh", "rh"] for s in ["white", "pial", "white.surf.gii", "pial.surf.gii", "thickness"]]


def digests(out):
    return {name: hashlib.sha256(open(os.path.join(out, "surf", name), "rb").read()).hexdigest() for name in SURFACES}


require_model()

t0 = time.time()
sim = os.path.join(W, "sim")
small_phantom(sim)
# FreeSurfer files carry a "created ... on DATE" line; SOURCE_DATE_EPOCH fixes it as in
# reproducible builds, so the bytes compared are all geometry.
env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
results = {}
for label, threads in [("threads2_a", 2), ("threads2_b", 2), ("threads1", 1)]:
    out = os.path.join(W, label)
    shutil.rmtree(out, ignore_errors=True)
    t = time.time()
    run("-q", "--threads", threads, "recon", os.path.join(sim, "dwi.nii.gz"), "-o", out, "--vertices", "4000", "--no-qc",
        env=env)
    results[label] = digests(out)
    report = json.load(open(os.path.join(out, "report.json")))
    stages = [s["stage"] for s in report["stages"]]
    print(f"{label}: {time.time() - t:.1f} s, stages {stages}")
    # The two thread counts must take the two code paths: hemispheres side by side, or in turn.
    expected = ["diffcoseg"] if threads > 1 else ["diffcoseg_lh", "diffcoseg_rh"]
    check(report["threads"] == threads and [s for s in stages if s.startswith("diffcoseg")] == expected,
          f"{label}: {threads} thread(s), DiffCoSeg stages {expected}")
    check(b"on Tue Nov 14 22:13:20 2023" in open(os.path.join(out, "surf", "lh.white"), "rb").read(200),
          f"{label}: FreeSurfer stamp from SOURCE_DATE_EPOCH")
for name in SURFACES:
    check(results["threads2_a"][name] == results["threads2_b"][name], f"{name}: two runs with --threads 2 byte-identical")
    check(results["threads2_a"][name] == results["threads1"][name], f"{name}: --threads 1 and --threads 2 byte-identical")
print(f"total {time.time() - t0:.1f} s")
finish()
