"""Forward+backward speed of TaskLinear against nn.Linear and a naive per-term layer.

For K = 1..5 polynomial terms and (batch, in, out) = (10, 10, 8), (256, 64, 64), (1024, 256, 256)
this times one training step of a layer -- ``layer(x).backward(g)`` -- for

* ``linear``: ``torch.nn.Linear(in, out)``;
* ``task``: ``taskneurons.nn.TaskLinear(in, out, formula)`` (powers by reuse, one fused matmul);
* ``naive``: one ``F.linear`` per term on ``torch.pow(x, k)``, summed (how a per-term layer is
  usually written, and what the paper's released layer does without its string handling);
* ``wide``: ``torch.nn.Linear(K*in, out)`` on terms computed beforehand -- everything TaskLinear
  does except computing its terms and running their chain rule, so ``wide/linear`` is the floor
  of ``task/linear`` for any layer with dense ``W_k``, and ``task - wide`` is what the terms cost.

The candidates run interleaved, round after round, so that a change in machine load hits all of
them alike; each entry is the median over rounds, and each ratio is the median of the per-round
ratios. Gradients accumulate into ``.grad`` between steps (no zeroing), the same for every
layer. Two input settings are measured: ``x.requires_grad=True`` (a hidden layer, which must also
return dL/dx: the default and the setting of the Bar) and ``False`` (a first layer on data).

Run:  python benchmarks/bench_layer.py [--threads 1] [--rounds 21] [--quick]
Writes docs/results/layer_speed.md (``--out`` to change; ``--out -`` to skip).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from taskneurons.nn import TaskLinear

SHAPES = [(10, 10, 8), (256, 64, 64), (1024, 256, 256)]
#: K -> formula with K polynomial terms; K = 4 is the Bar's formula.
FORMULAS = {
    1: "x",
    2: "x**2 + x",
    3: "x**3 + x**2 + x",
    4: "2*x**5 - 3*x**3 + 3*x**2 + x + 1",
    5: "x**5 + x**4 + x**3 + x**2 + x",
}
BAR_FORMULA_K = 4


class NaiveTaskLinear(nn.Module):
    """Reference per-term layer: ``b + sum_k F.linear(torch.pow(x, p_k), W_k)``."""

    def __init__(self, in_features: int, out_features: int, powers: list[int]):
        super().__init__()
        self.powers = list(powers)
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.randn(out_features, in_features) / in_features ** 0.5) for _ in powers])
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bias
        for p, w in zip(self.powers, self.weights, strict=True):
            out = out + F.linear(torch.pow(x, p), w)
        return out


#: The clock every measurement uses; set by main() (``--clock``).
CLOCK: Callable[[], float] = time.perf_counter


def interleaved_medians(candidates: dict[str, Callable[[], None]], rounds: int, target_s: float
                        ) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Per-call seconds: medians over ``rounds`` interleaved rounds, and the raw per-round values."""
    counts = {}
    for name, step in candidates.items():
        for _ in range(3):  # warm-up: allocator caches, autograd graph, MKL buffers
            step()
        n = 1
        while True:
            start = CLOCK()
            for _ in range(n):
                step()
            if CLOCK() - start >= target_s or n >= 1 << 16:
                break
            n *= 2
        counts[name] = n
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, step in candidates.items():
            n = counts[name]
            start = CLOCK()
            for _ in range(n):
                step()
            samples[name].append((CLOCK() - start) / n)
    return {name: statistics.median(v) for name, v in samples.items()}, samples


def measure(batch: int, n_in: int, n_out: int, k: int, input_grad: bool, rounds: int, target_s: float,
            seed: int = 0) -> dict[str, float]:
    gen = torch.Generator().manual_seed(seed)
    formula = FORMULAS[k]
    task = TaskLinear(n_in, n_out, formula)
    task.reset_parameters(gen)
    linear = nn.Linear(n_in, n_out)
    naive = NaiveTaskLinear(n_in, n_out, [t.power for t in task.terms])
    wide = nn.Linear(task.n_terms * n_in, n_out)
    x = (torch.rand(batch, n_in, generator=gen) * 2 - 1).requires_grad_(input_grad)
    terms = task.expand(x.detach()).requires_grad_(input_grad)
    g = torch.randn(batch, n_out, generator=gen)

    def step_of(layer: nn.Module) -> Callable[[], None]:
        return lambda: layer(x).backward(g)

    def wide_step() -> None:
        # dL/dterms is computed but not accumulated (a None .grad takes it over without an add):
        # TaskLinear hands that gradient to the chain rule of its terms instead of to a leaf.
        terms.grad = None
        wide(terms).backward(g)

    medians, samples = interleaved_medians(
        {"linear": step_of(linear), "task": step_of(task), "naive": step_of(naive), "wide": wide_step},
        rounds, target_s)

    def ratio(a: str, b: str) -> float:
        return statistics.median(u / v for u, v in zip(samples[a], samples[b], strict=True))

    return {**medians, "task/linear": ratio("task", "linear"), "task/naive": ratio("task", "naive"),
            "naive/linear": ratio("naive", "linear"), "wide/linear": ratio("wide", "linear")}


def machine_info(threads: int, clock: str) -> list[str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = _load()
    return [
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- CPU: {cpu}, {os.cpu_count()} logical cores; load average at start {load}",
        f"- Python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.backends.cpu.get_cpu_capability()} kernels",
        f"- torch.set_num_threads({threads}); float32; CPU; clock: {CLOCK_NAMES[clock]}",
    ]


CLOCK_NAMES = {
    "cpu": "process CPU time (time.process_time; robust to other processes on a shared machine)",
    "wall": "wall time (time.perf_counter)",
}


def _load() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--clock", choices=["auto", "cpu", "wall"], default="auto",
                        help="cpu = process CPU time, wall = wall time; auto = cpu with 1 thread, else wall")
    parser.add_argument("--rounds", type=int, default=21, help="interleaved rounds per cell (default 21)")
    parser.add_argument("--target", type=float, default=0.02, help="seconds per candidate per round")
    parser.add_argument("--quick", action="store_true", help="few rounds, for a smoke test")
    parser.add_argument("--no-input-grad", dest="input_grad", action="store_false",
                        help="measure only the hidden-layer setting (x.requires_grad=True)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs/results/layer_speed.md"))
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.target = 3, 0.005
    torch.set_num_threads(args.threads)
    global CLOCK
    if args.clock == "auto":
        args.clock = "cpu" if args.threads == 1 else "wall"
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    settings = [True, False] if args.input_grad else [True]

    info = machine_info(args.threads, args.clock)
    rows = []
    header = (f"{'x grad':>6} {'shape (B,in,out)':>17} {'K':>2} {'linear us':>10} {'task us':>10} {'naive us':>10} "
              f"{'wide us':>10} {'task/lin':>8} {'/K':>5} {'task/naive':>10} {'wide/lin':>8}")
    print("\n".join(info))
    print(header)
    for input_grad in settings:
        for shape in SHAPES:
            for k in FORMULAS:
                r = measure(*shape, k, input_grad, args.rounds, args.target)
                rows.append((input_grad, shape, k, r))
                print(f"{str(input_grad):>6} {str(shape):>17} {k:>2} {r['linear'] * 1e6:>10.1f} "
                      f"{r['task'] * 1e6:>10.1f} {r['naive'] * 1e6:>10.1f} {r['wide'] * 1e6:>10.1f} "
                      f"{r['task/linear']:>8.2f} {r['task/linear'] / k:>5.2f} {r['task/naive']:>10.2f} "
                      f"{r['wide/linear']:>8.2f}", flush=True)

    bar = bar_lines(rows)
    info.append(f"- load average at end {_load()}")
    print("\n".join(bar))
    if args.out != "-":
        write_markdown(Path(args.out), info, rows, bar, args)
        print(f"wrote {args.out}")
    return 0


def bar_lines(rows) -> list[str]:
    def find(input_grad, shape, k):
        return next(r for g, s, kk, r in rows if g == input_grad and s == shape and kk == k)

    lines = []
    for input_grad in sorted({g for g, *_ in rows}, reverse=True):
        label = "x.requires_grad=True (hidden layer)" if input_grad else "x.requires_grad=False (first layer)"
        big = find(input_grad, (1024, 256, 256), BAR_FORMULA_K)
        small = find(input_grad, (10, 10, 8), BAR_FORMULA_K)
        k = BAR_FORMULA_K
        checks = [
            (f"(1024,256,256) K={k}: task/linear = {big['task/linear']:.2f} <= 0.9*K = {0.9 * k:.2f}",
             big["task/linear"] <= 0.9 * k),
            (f"(1024,256,256) K={k}: task/naive = {big['task/naive']:.2f} <= 0.85", big["task/naive"] <= 0.85),
            (f"(10,10,8) K={k}: task/linear = {small['task/linear']:.2f} <= 1.5", small["task/linear"] <= 1.5),
            (f"(1024,256,256) K={k}: task/linear = {big['task/linear']:.2f} <= 0.75*K = {0.75 * k:.2f} (aim)",
             big["task/linear"] <= 0.75 * k),
        ]
        lines.append(f"Bar, {label}:")
        lines += [f"  {'PASS' if ok else 'FAIL'}  {text}" for text, ok in checks]
        for name, r in (("(1024,256,256)", big), ("(10,10,8)", small)):
            lines.append(f"  floor {name} K={k}: wide/linear = {r['wide/linear']:.2f}; the terms cost "
                         f"{r['task/linear'] - r['wide/linear']:.2f} x linear")
    return lines


def write_markdown(path: Path, info, rows, bar, args) -> None:
    out = [
        "# TaskLinear speed: forward + backward",
        "",
        f"Generated by `python benchmarks/bench_layer.py --threads {args.threads} --rounds {args.rounds} "
        f"--clock {args.clock}`.",
        "One step is `layer(x).backward(g)` in float32; medians over interleaved rounds; ratios are",
        "medians of per-round ratios. `linear` = `nn.Linear`, `task` = `TaskLinear`, `naive` = one",
        "`F.linear` per term on `torch.pow(x, k)`, `wide` = `nn.Linear(K*in, out)` on the terms computed",
        "beforehand. Formula for K = 4: `2*x**5 - 3*x**3 + 3*x**2 + x + 1`;",
        "otherwise `x`, `x**2 + x`, `x**3 + x**2 + x`, `x**5 + x**4 + x**3 + x**2 + x`.",
        "",
        "## Machine",
        "",
        *info,
        "",
        "## Bar (issue 2)",
        "",
        "```",
        *bar,
        "```",
        "",
        "Reading the numbers: `wide` is `nn.Linear(K*in, out)` on terms computed beforehand, so it",
        "does all TaskLinear does except computing the terms and their chain rule: K times",
        "`nn.Linear`'s multiply-adds in each of the three matrix products (forward, dL/dW, dL/dx), the",
        "bias and the gradient accumulation. `wide/linear` is therefore the floor of `task/linear` for",
        "any layer with dense per-term weights, and `task/linear - wide/linear` is what the terms cost",
        "(the powers and their concatenation forward; backward, for a hidden layer, their chain rule).",
        "At the large shape that cost is memory traffic -- each elementwise pass over the (batch, in)",
        "powers -- and at the small one per-operation overhead (each extra autograd node).",
        "",
    ]
    for input_grad in sorted({g for g, *_ in rows}, reverse=True):
        title = ("hidden layer: `x.requires_grad=True`" if input_grad
                 else "first layer: `x.requires_grad=False`")
        out += [f"## Times, {title}", "",
                "| (batch, in, out) | K | linear (us) | task (us) | naive (us) | wide (us) | task/linear "
                "| task/linear/K | task/naive | wide/linear |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for g, shape, k, r in rows:
            if g != input_grad:
                continue
            out.append(f"| {shape} | {k} | {r['linear'] * 1e6:.1f} | {r['task'] * 1e6:.1f} | {r['naive'] * 1e6:.1f} "
                       f"| {r['wide'] * 1e6:.1f} | {r['task/linear']:.2f} | {r['task/linear'] / k:.2f} "
                       f"| {r['task/naive']:.2f} | {r['wide/linear']:.2f} |")
        out.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
