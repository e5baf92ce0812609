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
