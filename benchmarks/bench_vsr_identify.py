"""VSR identification and scale benchmark: do we return exactly the true terms, fast, in bounded memory?

Writes docs/results/vsr_identify.md and prints the tables. Run from the repository root:

    python benchmarks/bench_vsr_identify.py                 # 60 + 60 tasks and the scale runs
    python benchmarks/bench_vsr_identify.py --tasks 20 --no-scale

Protocol
--------
* Tasks come from :func:`taskneurons.vsr.make_vsr_task` (its docstring states how coefficients,
  constant, noise and identifiability are chosen): x ~ U[-1, 1], noise 1 % of the clean signal's
  RMS, n = 2,000 rows, d drawn from {5, 10, 20, 50, 100, 200, 500, 1000}, 1 to 4 terms drawn
  uniformly. Polynomial tasks draw powers of degree <= 7 and are fitted with ``bases="poly"``;
  extended tasks draw from every family and are fitted with ``bases="all"``.
* Drawn truths that are not identifiable are redrawn (``make_vsr_task(identifiable=True)``); the
  table reports how many draws were discarded so the filter is visible, and, for context, the
  rate on ``--unfiltered`` further tasks taken as drawn (identifiable or not).
* ``VSR(scale=None)``: the inputs already lie in [-1, 1], so the formula is in raw units.
* Success: :func:`taskneurons.vsr.terms_match` (same number of terms, same structure, inner
  constants within 5 % + 0.02).
* Time: wall-clock seconds of ``fit`` (the bar), and beside it the CPU seconds of the process,
  which other programs running on the machine at the same time do not inflate; the load average
  at the start and end of the run is printed with the tables.
* Scale: a polynomial task with n = 100,000 and d = 1,000 (and one with n = 10,000, d = 10,000),
  each in a fresh subprocess that generates the data and fits; peak memory is that process's
  peak resident set size (``resource.getrusage``), data included.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from taskneurons.vsr import VSR, make_vsr_task, terms_match

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results" / "vsr_identify.md"
DIMENSIONS = (5, 10, 20, 50, 100, 200, 500, 1000)
N_SAMPLES = 2000


def run_tasks(bases: str, n_tasks: int, seed0: int, verbose: bool, identifiable: bool = True) -> list[dict]:
    rows = []
    for i in range(n_tasks):
        seed = seed0 + i
        d = int(np.random.default_rng([seed, 7]).choice(DIMENSIONS))  # independent of the task's own draws
        start = time.perf_counter()
        X, y, truth, info = make_vsr_task(N_SAMPLES, d, bases=bases, random_state=seed, return_info=True,
                                          identifiable=identifiable)
        generation = time.perf_counter() - start
        start, cpu_start = time.perf_counter(), time.process_time()
        model = VSR(bases=bases, scale=None, random_state=0).fit(X, y)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        row = {"seed": seed, "d": d, "k": len(truth.terms), "rejected": info["rejected"], "generation": generation,
               "seconds": seconds, "cpu": cpu, "match": terms_match(model.formula_, truth), "truth": str(truth),
               "found": str(model.formula_)}
        rows.append(row)
        if verbose:
            print(f"{bases:4s} {i:3d} d={d:5d} k={row['k']} fit {seconds:6.2f}s (CPU {cpu:5.2f}s) "
                  f"{'OK ' if row['match'] else 'MISS'} truth {truth} | found {model.formula_}", flush=True)
    return rows


SCALE_SCRIPT = r"""
import json, resource, sys, time
import numpy as np
from taskneurons.vsr import VSR, make_vsr_task, terms_match
n, d = int(sys.argv[1]), int(sys.argv[2])
X, y, truth = make_vsr_task(n, d, terms=["x**2", "x**3", "x**6"], random_state=0)
start = time.perf_counter()
model = VSR(scale=None, random_state=0).fit(X, y)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
print(json.dumps({"n": n, "d": d, "seconds": seconds, "peak_bytes": peak,
                  "data_bytes": X.nbytes, "match": terms_match(model.formula_, truth),
                  "formula": str(model.formula_)}))
"""


def run_scale(n: int, d: int) -> dict:
    result = subprocess.run([sys.executable, "-c", SCALE_SCRIPT, str(n), str(d)], capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def summary(rows: list[dict]) -> dict:
    times = np.array([r["seconds"] for r in rows])
    cpu = np.array([r["cpu"] for r in rows])
    return {"tasks": len(rows), "matched": sum(r["match"] for r in rows),
            "rate": float(np.mean([r["match"] for r in rows])) if rows else float("nan"),
            "max_seconds": float(times.max()) if rows else float("nan"),
            "median_seconds": float(np.median(times)) if rows else float("nan"),
            "max_cpu": float(cpu.max()) if rows else float("nan"),
            "median_cpu": float(np.median(cpu)) if rows else float("nan"),
            "rejected": sum(r["rejected"] for r in rows)}


def markdown(poly, extended, scale, args, raw_poly=(), raw_extended=(), load=None) -> str:
    import platform

    lines = ["# VSR: identification of true terms, and scale", "",
             f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
             f"run {time.strftime('%Y-%m-%d %H:%M')}. Script: `benchmarks/bench_vsr_identify.py`. "
             f"n = {N_SAMPLES} rows per task, noise 1 % of RMS, `VSR(scale=None)`.", ""]
    if load is not None:
        lines += [f"Load on the machine's {os.cpu_count()} cores (1-minute load average): {load[0]:.2f} at the "
                  f"start of the run, {load[1]:.2f} at the end. Wall times include any slowdown from other "
                  "programs running at the same time; CPU times do not.", ""]
    bars = {"poly": 0.90, "all": 0.70}
    lines += ["## Summary", "",
              "| tasks | bases | n tasks | exact terms | rate | bar | max fit time (s) | median fit time (s) | "
              "max CPU time (s) | median CPU time (s) | draws discarded as not identifiable |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, rows, bases in (("polynomial", poly, "poly"), ("extended grammar", extended, "all")):
        if not rows:
            continue
        s = summary(rows)
        ok = s["rate"] >= bars[bases] and s["max_seconds"] <= 10
        lines.append(f"| {name} | `{bases}` | {s['tasks']} | {s['matched']} | {s['rate']:.0%} | "
                     f">= {bars[bases]:.0%}, <= 10 s: {'met' if ok else 'NOT met'} | {s['max_seconds']:.2f} | "
                     f"{s['median_seconds']:.2f} | {s['max_cpu']:.2f} | {s['median_cpu']:.2f} | {s['rejected']} |")
    for name, rows, bases in (("polynomial, every draw", raw_poly, "poly"),
                              ("extended grammar, every draw", raw_extended, "all")):
        if not rows:
            continue
        s = summary(rows)
        lines.append(f"| {name} (context: no identifiability filter) | `{bases}` | {s['tasks']} | {s['matched']} | "
                     f"{s['rate']:.0%} | - | {s['max_seconds']:.2f} | {s['median_seconds']:.2f} | "
                     f"{s['max_cpu']:.2f} | {s['median_cpu']:.2f} | - |")
    lines.append("")
    for name, rows in (("polynomial", poly), ("extended grammar", extended),
                       ("polynomial, every draw", raw_poly), ("extended grammar, every draw", raw_extended)):
        if not rows:
            continue
        by_k = {}
        for r in rows:
            by_k.setdefault(r["k"], []).append(r["match"])
        lines += [f"Success by number of true terms ({name}): "
                  + ", ".join(f"{k} terms {sum(v)}/{len(v)}" for k, v in sorted(by_k.items())) + ".", ""]
    if scale:
        lines += ["## Scale (polynomial task, truth x**2 + x**3 + x**6)", "",
                  "Fresh subprocess per run; peak RSS includes the float64 data itself.", "",
                  "| n | d | n*d | data (GiB) | fit time (s) | peak RSS (GiB) | bar | exact terms | formula |",
                  "|---:|---:|---:|---:|---:|---:|---|---|---|"]
        for r in scale:
            bar = ""
            if r["n"] == 100_000 and r["d"] == 1000:
                bar = "<= 60 s, <= 4 GiB: " + ("met" if r["seconds"] <= 60 and r["peak_bytes"] <= 4 * 2 ** 30
                                                 else "NOT met")
            lines.append(f"| {r['n']:,} | {r['d']:,} | {r['n'] * r['d']:.0e} | {r['data_bytes'] / 2 ** 30:.2f} | "
                         f"{r['seconds']:.1f} | {r['peak_bytes'] / 2 ** 30:.2f} | {bar} | {r['match']} | "
                         f"{r['formula']} |")
        lines.append("")
    for name, rows in (("Polynomial tasks", poly), ("Extended-grammar tasks", extended)):
        if not rows:
            continue
        lines += [f"## {name}", "",
                  "| seed | d | terms | discarded draws | fit time (s) | CPU time (s) | exact | truth | found |",
                  "|---:|---:|---:|---:|---:|---:|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['seed']} | {r['d']} | {r['k']} | {r['rejected']} | {r['seconds']:.2f} | {r['cpu']:.2f} | "
                         f"{'yes' if r['match'] else 'no'} | {r['truth']} | {r['found']} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=60, help="tasks of each kind")
    parser.add_argument("--no-scale", action="store_true", help="skip the large-data runs")
    parser.add_argument("--kinds", default="poly,all")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--unfiltered", type=int, default=30,
                        help="also run this many tasks of each kind without the identifiability filter (0: none)")
    args = parser.parse_args(argv)
    kinds = args.kinds.split(",")
    load_start = os.getloadavg()[0]
    poly = run_tasks("poly", args.tasks, 1000, not args.quiet) if "poly" in kinds else []
    extended = run_tasks("all", args.tasks, 2000, not args.quiet) if "all" in kinds else []
    raw_poly = run_tasks("poly", args.unfiltered, 5000, not args.quiet, False) if "poly" in kinds else []
    raw_extended = run_tasks("all", args.unfiltered, 6000, not args.quiet, False) if "all" in kinds else []
    scale = [] if args.no_scale else [run_scale(100_000, 1000), run_scale(10_000, 10_000)]
    text = markdown(poly, extended, scale, args, raw_poly, raw_extended, (load_start, os.getloadavg()[0]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
