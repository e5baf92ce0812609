#!/usr/bin/python3
"""What the explicit stage loses by itself: DiffCoSeg (`ddcsr surfaces`) and marching cubes
(`ddcsr isosurface`) on the TRUE signed distance maps of simulated subjects, both evaluated
against the true surfaces (`ddcsr eval`). Marching cubes on the true maps shows what the map's
grid allows; the gap between it and DiffCoSeg is the explicit stage's own error, which no better
network removes. Prints one markdown table
(ASSD, HD90, the two directional means, the offset: mean signed distance to the truth, negative
inside it; SIF, Euler, seconds).

Usage: bench/diffcoseg_floor.py WORK SIMDIR... [--ddcsr build/ddcsr] [--threads 2]
       [--vertices 150000]
SIMDIR is a `ddcsr simulate` output (sdf/ and surf/), e.g. bench/benchmark.py's WORK/sim/s301.
"""
import argparse
import json
import os
import subprocess
import sys
import time

SURFACES = ("lh.white", "lh.pial", "rh.white", "rh.pial")


def ddcsr(binary, threads, *args):
    proc = subprocess.run([binary, "--threads", str(threads), *map(str, args)],
                          capture_output=True, text=True)
    if proc.returncode not in (0, 3):
        sys.exit(f"{binary} {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def evaluate(binary, threads, recon, sim):
    proc = ddcsr(binary, threads, "eval", "--recon", recon, "--truth", sim, "--json")
    return {s["name"]: s for s in json.loads(proc.stdout)["surfaces"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("work")
    ap.add_argument("sims", nargs="+")
    ap.add_argument("--ddcsr", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                    "ddcsr"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vertices", type=int, default=150000)
    a = ap.parse_args()
    rows = []
    for sim in a.sims:
        name = os.path.basename(os.path.normpath(sim))
        dcs, mc = os.path.join(a.work, name, "dcs"), os.path.join(a.work, name, "mc")
        t0 = time.time()
        ddcsr(a.ddcsr, a.threads, "surfaces", os.path.join(sim, "sdf"), "-o", dcs,
              "--vertices", a.vertices)
        seconds = time.time() - t0
        os.makedirs(os.path.join(mc, "surf"), exist_ok=True)
        for s in SURFACES:
            ddcsr(a.ddcsr, a.threads, "isosurface", os.path.join(sim, "sdf", s + ".nii.gz"), "-o",
                  os.path.join(mc, "surf", s))
        rows.append((name, seconds, evaluate(a.ddcsr, a.threads, dcs, sim),
                     evaluate(a.ddcsr, a.threads, mc, sim)))

    print("| subject | surface | DCS ASSD | DCS HD90 | DCS pred→truth / truth→pred | DCS offset "
          "| DCS SIF % | DCS Euler | MC ASSD | MC HD90 | MC Euler (comp.) | DCS s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, seconds, d, m in rows:
        for i, s in enumerate(SURFACES):
            e, f = d[s], m[s]
            print(f"| {name if i == 0 else ''} | {s} | {e['assd_mm']:.3f} | {e['hd90_mm']:.3f} | "
                  f"{e['pred_to_ref']['mean_mm']:.3f} / {e['ref_to_pred']['mean_mm']:.3f} | "
                  f"{e['offset_mm']:+.3f} | "
                  f"{e['pred']['sif_percent']:.3f} | {e['pred']['euler']} | {f['assd_mm']:.3f} | "
                  f"{f['hd90_mm']:.3f} | {f['pred']['euler']} ({f['pred']['components']}) | "
                  f"{seconds if i == 0 else '':{'.0f' if i == 0 else ''}} |")
    for kind in ("white", "pial"):
        dv = [d[f"{h}.{kind}"]["assd_mm"] for _, _, d, _ in rows for h in ("lh", "rh")]
        mv = [m[f"{h}.{kind}"]["assd_mm"] for _, _, _, m in rows for h in ("lh", "rh")]
        print(f"- {kind}: DiffCoSeg ASSD mean {sum(dv) / len(dv):.3f} mm, marching cubes "
              f"{sum(mv) / len(mv):.3f} mm (true maps)")


if __name__ == "__main__":
    main()
