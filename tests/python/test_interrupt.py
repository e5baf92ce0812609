"""Interrupted runs lose nothing: `ddcsr recon` is SIGKILLed during each stage (features, sdfnet,
diffcoseg, write); no final output name appears, the next run removes the dead run's temporaries
and completes with valid surfaces. A cohort killed during its second subject resumes: the first is
skipped with its files untouched, the second and third complete."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import DDCSR, run, workdir, MODEL, require_model, small_phantom, check, finish  # noqa: E402

W = workdir("interrupt")
# Small and fast: the phantom of test_recon.py, few vertices, no QC pictures, no surface maps
# (test_recon.py and test_determinism.py check those).
RECON_OPTS = ["--vertices", "4000", "--no-qc", "--no-surface-maps"]
# Stage start lines (non-terminal progress output): "<id> <stage>..."
STAGE = re.compile(r"(\S+) (load|features|sdfnet|reinitialise|diffcoseg\w*|write|qc)\.\.\.\s*$")


def euler(faces):
    edges = {tuple(sorted(e)) for f in faces for e in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0]))}
    return len(np.unique(faces)) - len(edges) + len(faces)


def kill_at(args, subject, stage, cwd=None, timeout=300):
    """Runs ddcsr with args, SIGKILLs it as soon as `subject` starts `stage` (read from its log on
    stderr, not timed). Returns the stages it had started, the last one being where it died."""
    proc = subprocess.Popen([DDCSR] + [str(a) for a in args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, bufsize=1, cwd=cwd)
    started = []
    deadline = time.time() + timeout
    for line in proc.stderr:
        m = STAGE.search(line)
        if m and m.group(1) == subject:
            started.append(m.group(2))
            if re.fullmatch(stage, m.group(2)):
                proc.send_signal(signal.SIGKILL)
                break
        if time.time() > deadline:
            break
    else:
        proc.kill()
    rest = proc.stderr.read()
    proc.wait()
    # Output after the kill would mean the process lived on into a later stage.
    later = [m.group(2) for m in map(STAGE.search, rest.splitlines()) if m and m.group(1) == subject]
    check(proc.returncode == -signal.SIGKILL and not later,
          f"killed during {subject} {stage} (started {started}, exit {proc.returncode}, later {later})")
    return started


def temporaries(folder):
    return sorted(f for f in os.listdir(folder) if ".tmp-" in f)


def check_outputs(out, hemis, what):
    report = json.load(open(os.path.join(out, "report.json")))
    check(report["status"] == "ok", f"{what}: report status ok")
    for hemi in hemis:
        for surf in ["white", "pial"]:
            base = os.path.join(out, "surf", f"{hemi}.{surf}")
            coords, faces = nib.freesurfer.read_geometry(base)
            gii = nib.load(base + ".surf.gii").get_arrays_from_intent("NIFTI_INTENT_POINTSET")[0].data
            check(euler(faces) == 2 and len(gii) == len(coords) and np.isfinite(coords).all(),
                  f"{what}: {hemi}.{surf} closed genus-0 surface, GIFTI alike")
        th = nib.freesurfer.read_morph_data(os.path.join(out, "surf", f"{hemi}.thickness"))
        check(len(th) == len(coords) and np.isfinite(th).all(), f"{what}: {hemi}.thickness one value per vertex")


def snapshot(folder):
    """Every file below `folder`: (mtime_ns, bytes)."""
    snap = {}
    for d, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(d, f)
            snap[os.path.relpath(p, folder)] = (os.stat(p).st_mtime_ns, open(p, "rb").read())
    return snap


require_model()

t_start = time.time()
sim = os.path.join(W, "sim")
small_phantom(sim)
dwi = os.path.join(sim, "dwi.nii.gz")

# One subject, killed in each stage in turn; every run after the first starts by removing the
# temporaries of the run killed before it. The output is given relative to the working folder
# ("-o subj/"), the form whose temporaries were once not found.
runs = os.path.join(W, "single")
shutil.rmtree(runs, ignore_errors=True)
os.makedirs(runs)
out = os.path.join(runs, "subj")
args = ["--threads", "2", "recon", dwi, "-o", "subj/"] + RECON_OPTS


def recon_in(folder, *extra):
    proc = subprocess.run([DDCSR] + args + list(extra), cwd=folder, capture_output=True, text=True)
    check(proc.returncode == 0, f"ddcsr {' '.join(args + list(extra))} in {folder}: exit {proc.returncode}")
    if proc.returncode:
        print(proc.stderr[-2000:])
    return proc


previous = []
for stage in ["features", "sdfnet", "diffcoseg", "write"]:
    kill_at(args, "subj", stage, cwd=runs)
    check(not os.path.exists(out), f"after a kill in {stage}: no final output folder")
    temps = temporaries(runs)
    check(len(temps) == 1 and not os.path.exists(os.path.join(runs, temps[0], "report.json")),
          f"after a kill in {stage}: only this run's temporary folder, without report.json ({temps})")
    check(not set(previous) & set(temps), f"after a kill in {stage}: the earlier run's temporary was removed")
    previous = temps
proc = recon_in(runs)
check("removed 1 temporary folder" in proc.stderr, "the completing run reports removing the dead run's temporary")
check(temporaries(runs) == [], "no temporaries left after the completing run")
check_outputs(out, ["lh", "rh"], "re-run after kills")

# Redoing a finished subject (--force) and dying while writing keeps the previous result whole.
finished = snapshot(out)
kill_at(args + ["--force"], "subj", "write", cwd=runs)
check(snapshot(out) == finished, "a --force run killed in write leaves the previous output untouched")
proc = recon_in(runs)
check("already finished" in proc.stderr and temporaries(runs) == [],
      "the next run skips the finished subject and removes the killed run's temporary")
print(f"single subject: {time.time() - t_start:.1f} s")

# A cohort of three subjects (the same scan), killed during the second.
t_cohort = time.time()
root = os.path.join(W, "cohort")
shutil.rmtree(root, ignore_errors=True)
os.makedirs(root)
subjects = os.path.join(W, "subjects.tsv")
with open(subjects, "w") as f:
    f.write("id\tdwi\n" + "".join(f"sub-{i}\t{dwi}\n" for i in (1, 2, 3)))
cohort_args = ["recon", "--subjects", subjects, "-o", root, "--hemi", "lh"] + RECON_OPTS
kill_at(cohort_args, "sub-2", "diffcoseg_lh")
check(os.path.exists(os.path.join(root, "sub-1", "report.json")), "cohort: sub-1 finished before the kill")
check(not os.path.exists(os.path.join(root, "sub-2")) and not os.path.exists(os.path.join(root, "sub-3")),
      "cohort: no final folder for sub-2 or sub-3")
before = snapshot(os.path.join(root, "sub-1"))
time.sleep(0.05)  # a rewrite would then show in the mtimes even on coarse clocks
proc = run(*cohort_args)
check(re.search(r"sub-1: already finished", proc.stderr) is not None, "cohort re-run: sub-1 skipped")
check(re.search(r"1 skipped", proc.stderr) is not None and re.search(r"2 done", proc.stderr) is not None,
      "cohort re-run: summary says 2 done, 1 skipped")
after = snapshot(os.path.join(root, "sub-1"))
check(before == after and len(before) > 5, f"cohort re-run: sub-1's {len(before)} files untouched (mtime and bytes)")
for s in ["sub-2", "sub-3"]:
    check_outputs(os.path.join(root, s), ["lh"], f"cohort {s}")
check(temporaries(root) == [], "cohort: no temporaries left")
print(f"cohort: {time.time() - t_cohort:.1f} s; total {time.time() - t_start:.1f} s")

finish()
