#!/usr/bin/python3
"""End-to-end benchmark of `ddcsr recon` on simulated subjects with ground truth (issue 3).

    bench/benchmark.py WORK [--ddcsr build/ddcsr] [--model models/sdfnet.pt] [--threads 2]
                            [--jobs 1] [--subjects s301,s302] [--reuse-recon]
                            [--report bench/results.md] [--simulate-only]

For each subject of a FIXED set (seeds 301-305, never used by models/make_cohort.sh, whose
training seeds are 101-112 and held-out seeds 201-204):
  1. `ddcsr simulate` into WORK/sim/NAME, once: the folder is reused while the simulate command
     that made it is unchanged (WORK/sim/NAME/bench_command.txt);
  2. `ddcsr recon --save-sdf` into WORK/recon/NAME: wall time and peak memory per stage from
     report.json, wall time, CPU time and peak RSS of the whole process;
  3. `ddcsr eval --recon --truth --json`: ASSD, HD90, SIF, Euler, components, % white vertices
     outside pial, for the four DiffCoSeg surfaces;
  4. the baseline: `ddcsr isosurface` (marching cubes) on the same saved SDFs into WORK/mc/NAME,
     evaluated the same way. No template, no topology guarantee.
Prints one markdown table and a summary against the targets (held-out 1.5 mm subjects: white
ASSD <= 0.4 mm, pial ASSD <= 0.45 mm, HD90 <= 1.0 mm, end to end <= 90 s wall and <= 6 GB);
--report FILE also writes it with the machine, its load during the run, the model and the
command. Slow (minutes per subject): not part of CTest.
"""
import argparse
import hashlib
import glob
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# name, seed, voxel mm, shells, SNR, geometry, orientation, bias field. Protocols as in clinical
# and research scans; SNR 20-30 (b0 white matter); procedural folds except s305, which uses
# fsaverage5's real cortex under this seed's warp (the training cohort saw that geometry under
# other warps, so s305 is not counted against the targets).
SUBJECTS = [
    ("s301", 301, 1.5, "1000:30", 25, "procedural", "LAS", 0.1),
    ("s302", 302, 1.5, "1000:30,2000:30", 25, "procedural", "RAS", 0.1),
    ("s303", 303, 2.5, "1000:30", 20, "procedural", "LPI", 0.0),
    ("s304", 304, 2.5, "1000:30,2500:30", 30, "procedural", "LAS", 0.1),
    ("s305", 305, 1.5, "1000:30,2000:30", 25, "fsaverage5", "LAS", 0.1),
]
SURFACES = ["lh.white", "lh.pial", "rh.white", "rh.pial"]
TARGETS = {"white_assd": 0.4, "pial_assd": 0.45, "hd90": 1.0, "wall_s": 90.0, "peak_gb": 6.0}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class LoadSampler:
    """Samples the 1-minute load average every few seconds: the machine is shared and wall times
    are only comparable when the load is stated beside them."""

    def __init__(self, period=5.0):
        self.samples, self.period = [], period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            with open("/proc/loadavg") as f:
                self.samples.append(float(f.read().split()[0]))
            self._stop.wait(self.period)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def timed(cmd, log_path, timeout=None):
    """Runs cmd with stdout/stderr to log_path; returns wall s, CPU s (user + system), the
    kernel's peak RSS in MB, its pid, and whether it was killed at `timeout` (s). Exits with the
    log's tail when the command fails."""
    start = time.monotonic()
    with open(log_path, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        killer = threading.Timer(timeout, proc.kill) if timeout else None
        if killer:
            killer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        if killer:
            killer.cancel()
    wall = time.monotonic() - start
    cpu, rss = usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0
    if killer and killer.finished.is_set() and os.waitstatus_to_exitcode(status) < 0:
        return wall, cpu, rss, proc.pid, True
    if os.waitstatus_to_exitcode(status) != 0:
        with open(log_path) as f:
            tail = f.read()[-3000:]
        sys.exit(f"failed ({os.waitstatus_to_exitcode(status)}): {shlex.join(cmd)}\n{tail}")
    return wall, cpu, rss, proc.pid, False


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def simulate(ddcsr, work, subject):
    name, seed, voxel, shells, snr, geometry, orientation, bias = subject
    folder = os.path.join(work, "sim", name)
    cmd = [ddcsr, "-q", "simulate", folder, "--seed", str(seed), "--voxel-size", str(voxel),
           "--shells", shells, "--snr", str(snr), "--orientation", orientation,
           "--bias-field", str(bias), "--b0", "4"]
    if geometry == "fsaverage5":
        cmd += ["--geometry", os.path.join(ROOT, "data", "fsaverage5")]
    stamp = os.path.join(folder, "bench_command.txt")
    # The command without the binary and the folder: the same simulation from another build or
    # reached through another path is reused.
    key = shlex.join(cmd[4:])
    if os.path.exists(stamp) and open(stamp).read().strip() == key:
        return folder
    log(f"{name}: simulating ({voxel} mm, b={shells}, SNR {snr}, {geometry})")
    os.makedirs(os.path.join(work, "sim"), exist_ok=True)
    wall = timed(cmd + ["--force"], os.path.join(work, "sim", name + ".log"))[0]
    with open(stamp, "w") as f:
        f.write(key + "\n")
    log(f"{name}: simulated in {wall:.0f} s")
    return folder


def partial_recon(work, name, pid, model):
    """What a recon killed at the time limit leaves in its hidden temporary folder (the pipeline
    builds a subject there and renames it when complete): the stages finished, as its log states
    them, and the SDFs, which --save-sdf writes before DiffCoSeg starts. Moved to NAME.partial so
    the baseline can still be measured on them."""
    root = os.path.join(work, "recon")
    tmp = glob.glob(os.path.join(root, f".{name}.tmp-*~{pid}~*"))
    partial = os.path.join(root, name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    report = {"status": "timed out", "stages": [], "running_stage": None,
              "model": {"path": model, "sha256": sha256(model)}, "ddcsr": {}}
    if not tmp:
        return None, report
    os.rename(tmp[0], partial)
    with open(os.path.join(partial, "log.txt")) as f:
        for line in f:
            m = re.search(r": (\S+) took ([0-9.]+) s, peak ([0-9.]+) MB", line)
            if m:
                report["stages"].append({"stage": m.group(1), "seconds": float(m.group(2)),
                                         "peak_rss_mb": float(m.group(3))})
                report["running_stage"] = None
            m = re.search(rf"info: {re.escape(name)} (\S+)\.\.\.$", line.strip())
            if m:
                report["running_stage"] = m.group(1)
    sdf = os.path.join(partial, "sdf")
    complete = all(os.path.exists(os.path.join(sdf, s + ".nii.gz")) for s in SURFACES)
    return (partial if complete else None), report


def recon(ddcsr, work, name, sim, model, threads, reuse, timeout):
    """Returns the folder holding sdf/ (None when there is none), report.json (or what a timed-out
    run left) and the process's usage."""
    out = os.path.join(work, "recon", name)
    report_path = os.path.join(out, "report.json")
    usage_path = os.path.join(work, "recon", name + ".usage.json")
    if reuse and os.path.exists(report_path) and os.path.exists(usage_path):
        report = json.load(open(report_path))
        if report.get("status") == "ok" and report["model"]["sha256"] == sha256(model):
            log(f"{name}: reusing {out}")
            return out, report, json.load(open(usage_path))
    cmd = [ddcsr, "--threads", str(threads), "recon", os.path.join(sim, "dwi.nii.gz"), "-o", out,
           "--model", model, "--save-sdf", "--force"]
    log(f"{name}: recon")
    os.makedirs(os.path.join(work, "recon"), exist_ok=True)
    wall, cpu, maxrss, pid, killed = timed(cmd, os.path.join(work, "recon", name + ".log"),
                                           timeout)
    if killed:
        out, report = partial_recon(work, name, pid, model)
    else:
        report = json.load(open(report_path))
    # The pipeline resets the kernel's peak-RSS counter at each stage (/proc/self/clear_refs) to
    # measure stages separately, so the rusage peak alone may only cover the last stage: the
    # process peak is the larger of it and the stages' peaks.
    peak = max([maxrss, report.get("peak_rss_mb", 0)] + [st["peak_rss_mb"] for st in report["stages"]])
    usage = {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak, "command": shlex.join(cmd),
             "timed_out": killed}
    with open(usage_path, "w") as f:
        json.dump(usage, f, indent=2)
    log(f"{name}: recon {wall:.0f} s wall, {cpu:.0f} s CPU, peak {peak:.0f} MB" +
        (f", killed at the time limit in stage {report['running_stage']}" if killed else ""))
    return out, report, usage


def evaluate(ddcsr, work, name, folder, sim, threads, tag):
    out = os.path.join(folder, "eval.json")
    cmd = [ddcsr, "--threads", str(threads), "-q", "eval", "--recon", folder, "--truth", sim,
           "--json", "-o", out]
    timed(cmd, os.path.join(work, f"{tag}_{name}.eval.log"))
    ev = json.load(open(out))
    rows = {s["name"]: s for s in ev["surfaces"]}
    nesting = {n["hemi"]: n["pred_white_outside_pial_percent"] for n in ev["nesting"]}
    return rows, nesting


def baseline(ddcsr, work, name, recon_dir, threads):
    folder = os.path.join(work, "mc", name)
    os.makedirs(os.path.join(folder, "surf"), exist_ok=True)
    seconds = 0.0
    for surf in SURFACES:
        cmd = [ddcsr, "--threads", str(threads), "-q", "isosurface",
               os.path.join(recon_dir, "sdf", surf + ".nii.gz"),
               "-o", os.path.join(folder, "surf", surf + ".surf.gii")]
        seconds += timed(cmd, os.path.join(work, "mc", f"{name}.{surf}.log"))[0]
    return folder, seconds


def fmt(v, digits=3):
    return "—" if v is None else f"{v:.{digits}f}"


def describe(subject):
    _, seed, voxel, shells, snr, geometry, orientation, _ = subject
    b = "+".join(shells.split(","))
    return f"seed {seed}, {voxel} mm, b={b}, SNR {snr}, {geometry}, {orientation}"


def table(results, stages):
    head = ["subject", "surface"] + [f"{s} s / MB" for s in stages] + [
        "recon wall s / CPU s / peak MB", "MC s",
        "DCS ASSD", "DCS HD90", "DCS offset", "DCS SIF %", "DCS Euler (comp.)", "DCS wm>pial %",
        "MC ASSD", "MC HD90", "MC offset", "MC SIF %", "MC Euler (comp.)", "MC wm>pial %"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in results:
        by_stage = {s["stage"]: s for s in r["report"]["stages"]}
        running = r["report"].get("running_stage")
        for i, surf in enumerate(SURFACES):
            hemi = surf.split(".")[0]
            cells = [r["name"] if i == 0 else (describe(r["subject"]) if i == 1 else ""), surf]
            for s in stages:
                st = by_stage.get(s)
                cell = ""
                if i == 0 and st:
                    cell = f"{st['seconds']:.1f} / {st['peak_rss_mb']:.0f}"
                elif i == 0 and s == running:
                    cell = "killed"
                cells.append(cell)
            u = r["usage"]
            cells.append("" if i else f"{'> ' if u.get('timed_out') else ''}{u['wall_s']:.1f} / "
                         f"{u['cpu_s']:.0f} / {u['peak_rss_mb']:.0f}")
            cells.append(fmt(r["mc_seconds"], 1) if i == 0 else "")
            for e, nest in ((r["dcs"], r["dcs_nesting"]), (r["mc"], r["mc_nesting"])):
                if e is None:
                    cells += ["—"] * 6
                    continue
                e = e[surf]
                cells += [fmt(e["assd_mm"]), fmt(e["hd90_mm"]), fmt(e.get("offset_mm")),
                          fmt(e["pred"]["sif_percent"], 2),
                          f"{e['pred']['euler']} ({e['pred']['components']})",
                          fmt(nest.get(hemi), 2)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(results):
    """The targets on the held-out 1.5 mm procedural subjects (worst case over them), and the
    same numbers for the others as information. A subject whose recon did not finish fails
    every target it could not be measured on."""
    def stats(rs, label, judge):
        if not rs:
            return []
        done = [r for r in rs if r["dcs"] is not None]
        white = [r["dcs"][s]["assd_mm"] for r in done for s in SURFACES if s.endswith("white")]
        pial = [r["dcs"][s]["assd_mm"] for r in done for s in SURFACES if s.endswith("pial")]
        hd90 = [r["dcs"][s]["hd90_mm"] for r in done for s in SURFACES]
        wall = [r["usage"]["wall_s"] for r in rs]
        cpu = [r["usage"]["cpu_s"] for r in rs]
        peak = [r["usage"]["peak_rss_mb"] / 1024 for r in rs]
        missing = len(rs) - len(done)

        def item(what, values, limit, unit, lower_bound=False):
            if not values:
                return f"{what} not measured" + (" (no surfaces: FAIL)" if judge else "")
            verdict = ""
            if judge:
                # A killed run's time and memory are lower bounds: above the limit they fail,
                # below it they settle nothing.
                verdict = (" FAIL" if max(values) > limit else
                           " PASS" if not missing else " (undetermined: killed)")
            return (f"{what} worst {'> ' if lower_bound else ''}{max(values):.3f}{unit} "
                    f"(mean {sum(values) / len(values):.3f}) vs ≤ {limit}{unit}{verdict}")

        names = ", ".join(r["name"] for r in rs)
        unfinished = "" if not missing else (
            f"; {missing} of {len(rs)} recon(s) killed at the time limit (no DiffCoSeg surfaces)")
        out = [f"- **{label}** ({names}{unfinished}): DiffCoSeg " + "; ".join([
            item("white ASSD", white, TARGETS["white_assd"], " mm"),
            item("pial ASSD", pial, TARGETS["pial_assd"], " mm"),
            item("HD90", hd90, TARGETS["hd90"], " mm"),
            item("end-to-end wall", wall, TARGETS["wall_s"], " s", lower_bound=bool(missing)),
            item("peak memory", peak, TARGETS["peak_gb"], " GB", lower_bound=bool(missing))])]
        out.append(f"  - CPU time of recon (user + system; on an idle machine wall time is at "
                   f"least CPU time / threads): worst {'> ' if missing else ''}{max(cpu):.0f} s, "
                   f"mean {sum(cpu) / len(cpu):.0f} s")
        with_mc = [r for r in rs if r["mc"] is not None]
        if with_mc:
            mc = [(s, r["mc"][s]) for r in with_mc for s in SURFACES]
            mc_white = [e["assd_mm"] for s, e in mc if s.endswith("white")]
            mc_pial = [e["assd_mm"] for s, e in mc if s.endswith("pial")]
            genus0 = sum(e["pred"]["euler"] == 2 and e["pred"]["components"] == 1 for _, e in mc)
            dcs_genus0 = sum(r["dcs"][s]["pred"]["euler"] == 2 and
                             r["dcs"][s]["pred"]["components"] == 1 for r in done for s in SURFACES)
            out.append(f"  - marching-cubes baseline on the same SDFs: white ASSD mean "
                       f"{sum(mc_white) / len(mc_white):.3f} mm, pial ASSD mean "
                       f"{sum(mc_pial) / len(mc_pial):.3f} mm, HD90 worst "
                       f"{max(e['hd90_mm'] for _, e in mc):.3f} mm; {genus0} of {len(mc)} "
                       f"surfaces closed genus 0 with one component (DiffCoSeg: {dcs_genus0} of "
                       f"{len(done) * 4})")
        return out

    target = [r for r in results if r["subject"][2] == 1.5 and r["subject"][5] == "procedural"]
    others = [r for r in results if r not in target]
    return "\n".join(stats(target, "Targets, held-out 1.5 mm subjects", True) +
                     stats(others, "Other subjects (no target)", False))


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return cpu, os.cpu_count(), mem_kb / 1024 / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("work", help="work folder: simulated subjects are cached there")
    ap.add_argument("--ddcsr", default=os.path.join(ROOT, "build", "ddcsr"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "sdfnet.pt"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=1,
                    help="subjects reconstructed at a time (more than 1 shares the cores between "
                         "them: wall times grow, CPU times do not)")
    ap.add_argument("--recon-timeout", type=float,
                    help="kill a recon after this many seconds (wall) and report it as timed out, "
                         "with the baseline measured on the SDFs it had written")
    ap.add_argument("--subjects", help="comma-separated names (default: all)")
    ap.add_argument("--reuse-recon", action="store_true",
                    help="keep reconstructions made with the same model (re-evaluate only)")
    ap.add_argument("--report", help="also write the results (markdown) to this file")
    ap.add_argument("--simulate-only", action="store_true",
                    help="only make (or check) the cached subjects, e.g. ahead of a timed run")
    args = ap.parse_args()
    ddcsr, model = os.path.abspath(args.ddcsr), os.path.abspath(args.model)
    if not os.access(ddcsr, os.X_OK):
        sys.exit(f"no ddcsr binary at {ddcsr} (build first)")
    wanted = set(args.subjects.split(",")) if args.subjects else None
    subjects = [s for s in SUBJECTS if wanted is None or s[0] in wanted]
    if not subjects:
        sys.exit(f"no such subjects; known: {', '.join(s[0] for s in SUBJECTS)}")
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())

    # Simulation first (cached, independent of the model), so the load samples below cover the
    # measured part only.
    sims = {s[0]: simulate(ddcsr, work, s) for s in subjects}
    if args.simulate_only:
        print("\n".join(sims[s[0]] for s in subjects))
        return
    def one(s):
        name = s[0]
        out, report, usage = recon(ddcsr, work, name, sims[name], model, args.threads,
                                   args.reuse_recon, args.recon_timeout)
        dcs, dcs_nest, mc, mc_nest, mc_seconds = None, {}, None, {}, None
        if report.get("status") == "ok":
            dcs, dcs_nest = evaluate(ddcsr, work, name, out, sims[name], args.threads, "dcs")
        if out:
            mc_dir, mc_seconds = baseline(ddcsr, work, name, out, args.threads)
            mc, mc_nest = evaluate(ddcsr, work, name, mc_dir, sims[name], args.threads, "mc")
        log(f"{name}: ASSD " + ", ".join(
            f"{x} {fmt(dcs and dcs[x]['assd_mm'])} (MC {fmt(mc and mc[x]['assd_mm'])})"
            for x in SURFACES))
        return {"name": name, "subject": s, "report": report, "usage": usage, "dcs": dcs,
                "dcs_nesting": dcs_nest, "mc": mc, "mc_nesting": mc_nest,
                "mc_seconds": mc_seconds}

    with LoadSampler() as load, ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(one, subjects))

    stages = []
    for r in results:
        for st in r["report"]["stages"] + [{"stage": r["report"].get("running_stage")}]:
            if st["stage"] and st["stage"] not in stages:
                stages.append(st["stage"])
    text = table(results, stages) + "\n\n" + summary(results)
    print(text)

    if args.report:
        cpu, cores, ram = machine()
        models = {(r["report"]["model"]["path"], r["report"]["model"]["sha256"]) for r in results}
        info = subprocess.run([ddcsr, "-q", "sdf", "--model", model, "--info"],
                              capture_output=True, text=True).stdout
        meta = json.loads(info) if info.strip() else {}
        training = meta.get("training") or {}
        generators = {}
        for s in subjects:
            with open(os.path.join(sims[s[0]], "meta.json")) as f:
                generators[s[0]] = json.load(f).get("git", "unknown")
        version = subprocess.run([ddcsr, "--version"], capture_output=True,
                                 text=True).stdout.strip()
        match = re.search(r"\(([^)]*)\)", version)
        version_git = match.group(1) if match else "unknown"
        ld = load.samples or [float("nan")]
        # More than half a core above what the benchmark itself runs means someone else ran.
        own_load = args.threads * args.jobs
        busy = sum(ld) / len(ld) > own_load + 0.5
        command = shlex.join([sys.executable, os.path.relpath(os.path.abspath(__file__), ROOT)] +
                             sys.argv[1:])
        lines = [
            "# Benchmark results",
            "",
            f"Made by `bench/benchmark.py` on {started} ({version}).",
            "",
            "Command (from the repository root):",
            "",
            f"    {command}",
            "",
            f"- Machine: {cpu}, {cores} cores, {ram:.0f} GB RAM ({platform.system()} "
            f"{platform.release()}), ddcsr with {args.threads} threads, {args.jobs} subject(s) at a "
            f"time; 1-minute load average during the recon and eval runs min {min(ld):.1f}, mean "
            f"{sum(ld) / len(ld):.1f}, max {max(ld):.1f} ({len(ld)} samples; the benchmark's own "
            f"work accounts for up to {own_load})" + (
                ". **Shared**: other work ran at the same time, so wall times are inflated; CPU "
                "times are the load-independent check." if busy else "."),
            "- Model: " + "; ".join(f"`{p}` sha256 `{h}`" for p, h in sorted(models)) +
            f" (trained: {meta.get('trained')}, step {training.get('step')} of "
            f"{training.get('steps')}, feature grid {meta.get('grid_spacing_mm')} mm).",
            "- Subjects: " + "; ".join(f"{s[0]}: {describe(s)}" for s in subjects) +
            ". Seeds 301-305 are in neither the training cohort nor its held-out set "
            "(`models/make_cohort.sh`: 101-112 and 201-204).",
            "- Phantoms simulated by: " + "; ".join(
                f"{name} ddcsr {generator}" for name, generator in sorted(generators.items())) +
            ("" if all(g == version_git for g in generators.values()) else
             f". **Not this build** ({version_git}): the simulated folders are reused while the "
             "simulate command is the same; remove WORK/sim to simulate again with this build's "
             "phantom model."),
            "",
            "Columns: per stage, wall seconds / peak resident MB of that stage (report.json); "
            "recon: wall and CPU seconds of the whole `ddcsr recon` process and its peak memory; "
            "MC s: marching cubes of the four SDFs (`ddcsr isosurface`, four processes). "
            "DCS: DiffCoSeg surfaces as `recon` writes them; MC: marching cubes on the SDFs that "
            "`recon --save-sdf` wrote (level-set reinitialised, same zero level set), no template. "
            "ASSD and HD90 in mm against the simulated truth (100k samples per mesh); offset: mean "
            "signed distance from the surface to the truth in mm (negative: inside it, e.g. a "
            "white surface too deep; positive: outside, e.g. a pial surface too far out); SIF: % "
            "self-intersecting faces; Euler characteristic (2 = closed genus 0) and components; "
            "wm>pial: % white vertices outside the pial surface of the hemisphere." + (
                f" Recons were killed after {args.recon_timeout:.0f} s wall: `killed` marks the "
                "stage they were in, `>` their wall time and CPU time at that point, `—` what "
                "they never produced." if args.recon_timeout else ""),
            "",
            text,
            "",
        ]
        with open(args.report, "w") as f:
            f.write("\n".join(lines))
        log(f"wrote {args.report}")


if __name__ == "__main__":
    main()
