#!/usr/bin/python3
"""Timings of `ddcsr eval` on real (fsaverage5) and large synthetic (163,842-vertex icosphere)
surfaces: wall time and peak memory per run, for 1 and 2 threads. Prints a markdown table.

  bench/eval_speed.py [--ddcsr build/ddcsr] [--data ../shared/data] [--work /tmp/ddcsr-bench]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import nibabel as nib
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def icosphere(level, radius):
    t = (1 + 5 ** 0.5) / 2
    v = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
                  [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], float)
    f = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
                  [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
                  [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]])
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    for _ in range(level):
        edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
        uniq, inv = np.unique(edges, axis=0, return_inverse=True)
        mid = v[uniq[:, 0]] + v[uniq[:, 1]]
        mid /= np.linalg.norm(mid, axis=1, keepdims=True)
        m = len(v) + inv.reshape(3, -1)  # midpoints of edges 01, 12, 20 per face
        a, b, c = f[:, 0], f[:, 1], f[:, 2]
        f = np.concatenate([np.stack([a, m[0], m[2]], 1), np.stack([b, m[1], m[0]], 1),
                            np.stack([c, m[2], m[1]], 1), np.stack([m[0], m[1], m[2]], 1)])
        v = np.concatenate([v, mid])
    return v * radius, f.astype(np.int32)


def write_gifti(path, coords, faces):
    img = nib.gifti.GiftiImage(darrays=[
        nib.gifti.GiftiDataArray(coords.astype(np.float32), intent="NIFTI_INTENT_POINTSET",
                                 datatype="NIFTI_TYPE_FLOAT32"),
        nib.gifti.GiftiDataArray(faces.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE",
                                 datatype="NIFTI_TYPE_INT32")])
    nib.save(img, path)


def timed(cmd):
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    out, err = proc.stdout.read(), proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ddcsr", default=os.path.join(HERE, "..", "build", "ddcsr"))
    ap.add_argument("--data", default=os.environ.get("DDCSR_SHARED_DATA", os.path.join(HERE, "..", "..", "shared", "data")))
    ap.add_argument("--work", default="/tmp/ddcsr-bench-eval")
    ap.add_argument("--samples", type=int, default=100000)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)

    cases = []
    white, pial = (os.path.join(args.data, "fsaverage5", f"{s}_left.gii.gz") for s in ("white", "pial"))
    if os.path.exists(white):
        cases.append(("fsaverage5 lh white vs pial", white, pial))
    else:
        print(f"(fsaverage5 absent under {args.data}: skipped)")
    ref = os.path.join(args.work, "ico7_ref.surf.gii")
    pred = os.path.join(args.work, "ico7_pred.surf.gii")
    if not (os.path.exists(ref) and os.path.exists(pred)):
        v, f = icosphere(7, 50.0)
        write_gifti(ref, v, f)
        # A smooth radial perturbation of up to 2 mm: distances of a realistic size.
        r = 50.0 + 2.0 * np.sin(3 * v[:, 0] / 50) * np.cos(2 * v[:, 1] / 50) * np.sin(4 * v[:, 2] / 50)
        write_gifti(pred, v / 50.0 * r[:, None], f)
    cases.append(("icosphere 163,842 vertices, perturbed", pred, ref))

    print(f"ddcsr eval timings ({args.samples} samples per mesh; {os.cpu_count()} cores; "
          f"{time.strftime('%Y-%m-%d')})\n")
    print("| case | faces | threads | wall s | cpu s | peak MB | ASSD mm | HD90 mm | SIF pred % |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, p, r in cases:
        for threads in (1, 2):
            wall, cpu, rss, out = timed([args.ddcsr, "--threads", str(threads), "-q", "eval", p, r, "--json",
                                    "--samples", str(args.samples)])
            s = json.loads(out)["surface"]
            print(f"| {name} | {s['pred']['faces']} | {threads} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | "
                  f"{s['assd_mm']:.3f} | {s['hd90_mm']:.3f} | {s['pred']['sif_percent']:.3f} |")
    load = os.getloadavg()[0]
    print("\nWall time includes process start (LibTorch loads in ~0.7 s) and reading the files; "
          f"cpu is user + system time of the process. Load average at the end: {load:.1f}.")


if __name__ == "__main__":
    main()
