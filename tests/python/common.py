"""Helpers shared by the Python end-to-end tests: run the ddcsr binary, temp dirs, data paths."""
import os
import subprocess
import sys
import tempfile

DDCSR = os.environ.get("DDCSR_BIN", "ddcsr")
SOURCE = os.environ.get("DDCSR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.environ.get("DDCSR_SHARED_DATA", os.path.join(SOURCE, "..", "shared", "data"))


def run(*args, expect=0, env=None):
    """Runs ddcsr with args; asserts the exit code; returns the CompletedProcess."""
    cmd = [DDCSR] + [str(a) for a in args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if expect is not None and proc.returncode != expect:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}, expected {expect}")
    return proc


def workdir(name):
    base = os.environ.get("DDCSR_WORK") or tempfile.gettempdir()
    path = os.path.join(base, name)
    os.makedirs(path, exist_ok=True)
    return path


def shared(*parts):
    return os.path.join(SHARED, *parts)


MODEL = os.path.join(SOURCE, "models", "sdfnet.pt")


def require_model():
    """Ends the test as passed with nothing run (and says so) when the shipped model is absent."""
    if not os.path.exists(MODEL):
        print("SKIP: no shipped model at", MODEL)
        print("0 passed, 0 failed")
        sys.exit(0)


def small_phantom(folder):
    """The small head of the recon tests (2.5 mm, 20 directions, scaled 0.7, coarse meshes; truth
    SDFs on the DWI grid): a real-size head would take minutes on 2 cores. Returns `folder`."""
    run("-q", "simulate", folder, "--seed", "7", "--voxel-size", "2.5", "--sdf-voxel-size", "0", "--shells", "1000:20",
        "--b0", "2", "--scale", "0.7", "--mesh-level", "6", "--force")
    return folder


# Every check of a test goes through check(), so each prints one ok/FAIL line and finish() gives
# the same tally and exit code everywhere.
PASSED = []
FAILS = []


def check(cond, what):
    """Prints one ok/FAIL line for `what`; returns cond as a bool."""
    print(("ok:   " if cond else "FAIL: ") + what)
    (PASSED if cond else FAILS).append(what)
    return bool(cond)


def finish():
    """Prints the tally, the failed checks again, and exits 1 if any failed (0 otherwise)."""
    print(f"{len(PASSED)} passed, {len(FAILS)} failed")
    for what in FAILS:
        print("failed:", what)
    sys.exit(1 if FAILS else 0)
