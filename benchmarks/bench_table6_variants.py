"""Table 6 ablations: which parts of a task-based network make it beat the linear one?

Each variant is a Table 6 run that changes only the TN networks (``taskneurons bench table6
--tn KEY=VALUE`` or ``--tn-formula``), with the LN and boosting cells copied from the base run
(``--reuse``), so every comparison below is on the same splits, seeds and LN numbers. This script
reads the base run and the variant folders and writes one Markdown table set:

1. every run's TN vs LN outcome counts, as in the Table 6 report;
2. every variant's TN against the base run's TN, per (dataset, structure), with the same paired
   t-test over seeds (win = the base TN better);
3. per dataset, the TN mean over the five structures of each run, beside LN's;
4. an upper bound: the strict TN >= LN count when each dataset takes the run that is best on its
   test sets. That is selection on the test sets, so no rule that picks one of these runs per
   dataset can do better.

Run the variants first (14-23 min each on 2 cores). The committed ones were run while the
``fast`` protocol's TN networks were the paper's layer alone (up to commit cb3967a), against the
run now kept as ``table6_variants/paper_layer``; with today's protocol, prefix each ``--tn`` list
with ``--tn term_weights=per_neuron --tn basis=orthonormal --tn term_schedule=joint`` for the same
networks (new settings hashes, so they are computed, not resumed)::

    V=docs/results/table6_variants; B=$V/paper_layer
    RUN="taskneurons bench table6 --data-dir ../shared/datasets/paper --n-jobs 2 --reuse $B"
    $RUN --tn-formula paper --out $V/paper_formula
    $RUN --tn-formula 'x**2' --out $V/quadratic
    $RUN --tn basis=terms --out $V/terms_basis
    $RUN --tn add_linear_term=false --out $V/no_linear_term
    $RUN --tn parameter_budget=null --out $V/no_budget
    $RUN --tn term_weights=per_input --out $V/per_input
    $RUN --tn term_weights=per_input --tn basis=terms --out $V/per_input_terms
    $RUN --tn term_weights=per_input --tn basis=terms --tn term_schedule=linear_first --out $V/linear_first
    python benchmarks/bench_table6_variants.py --base $B --variants $V/paper_formula $V/quadratic \
        $V/terms_basis $V/no_linear_term $V/no_budget $V/per_input $V/per_input_terms $V/linear_first

(``linear_first`` was computed as a fresh full grid, 45.9 min on 2 cores with that TN setting
as the protocol's; its LN, VSR and boosting cells came out bit-identical to the base run's.)

Today's default (``docs/results/table6``: the paper's layer or per-input formulas, whichever
validates better) was run on another machine, whose LN cells differ from the base run's in the
last digits, so it is compared with the runs that share its LN cells, in ``schedules.md``: the
per-input network alone, and the control, LN networks given the same two-stage training without
formulas (``--tn-formula x``: the second stage is a warm restart)::

    B=docs/results/table6; V=docs/results/table6_variants
    RUN="taskneurons bench table6 --data-dir ../shared/datasets/paper --n-jobs 2 --reuse $B"
    $RUN --tn term_weights=per_input --tn basis=terms --out $V/per_input_alone
    $RUN --tn-formula x --tn term_weights=per_input --tn basis=terms --out $V/restart_control
    python benchmarks/bench_table6_variants.py --base $B --variants $V/per_input_alone $V/restart_control \
        --versus base:restart_control per_input_alone:restart_control --out $V/schedules.md

(``per_input_alone`` was computed as a fresh full grid, 32.1 min on 2 cores; its LN, VSR and
boosting cells came out bit-identical to the base run's.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from taskneurons.bench import load_results, outcome_counts, table6_summary
from taskneurons.bench.report import tn_formula_text

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results" / "table6_variants" / "README.md"


def describe(frame: pd.DataFrame, base: pd.DataFrame) -> str:
    """A run's TN neurons: where their formula comes from, and the TN settings that differ from the base run's."""
    tn = frame[(frame["model"] == "TN") & (frame["status"] == "ok")]
    text = tn_formula_text(tn) or "VSR's formula per dataset and seed"
    base_settings = base[base["model"] == "TN"]["settings"].iloc[0]
    changed = {k: v for k, v in tn["settings"].iloc[0].items() if base_settings.get(k) != v}
    return text + "".join(f"; {k}={v!r}" for k, v in changed.items())


def check_same_ln(base: pd.DataFrame, variant: pd.DataFrame, name: str) -> None:
    """Refuse a variant whose LN cells are not the base run's: the comparison would not be paired."""
    keys = ["dataset", "structure", "seed", "protocol", "settings_hash", "test_value"]
    left = base[base["model"] == "LN"][keys].sort_values(keys[:4]).reset_index(drop=True)
    right = variant[variant["model"] == "LN"][keys].sort_values(keys[:4]).reset_index(drop=True)
    if not right.equals(left):
        raise SystemExit(f"{name}: its LN cells are not the base run's (run it with --reuse BASE and the "
                         "same protocol, datasets, structures and seeds)")


def head_to_head_row(label: str, first: pd.DataFrame, second: pd.DataFrame) -> str:
    """A Markdown row: how often ``first``'s TN beats, ties and loses to ``second``'s, and the strict count."""
    versus = tn_against_base(first, second)
    counts = outcome_counts(versus)
    return (f"| {label} | {counts['loss']} | {counts['tie']} | {counts['win']} | "
            f"{counts['pairs'] - int((versus['diff'] > 0).sum())} of {counts['pairs']} |")


def tn_against_base(base: pd.DataFrame, variant: pd.DataFrame) -> pd.DataFrame:
    """The variant's TN cells against the base's TN cells, through :func:`table6_summary`: the base
    TN plays "LN", so outcome "win" means the variant's TN is better and "loss" the base's."""
    left = base[base["model"] == "TN"].assign(model="LN")
    right = variant[variant["model"] == "TN"]
    return table6_summary(pd.concat([left, right], ignore_index=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, default=ROOT / "docs" / "results" / "table6")
    parser.add_argument("--variants", type=Path, nargs="+", required=True)
    parser.add_argument("--versus", nargs="*", default=[], metavar="A:B",
                        help="pairs of variant names whose TN networks to compare head to head, e.g. a variant "
                             "against its control")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    base = load_results(args.base)
    names = [path.name for path in args.variants]
    if len(set(names)) < len(names) or "base" in names:
        parser.error("variant folders need distinct names other than 'base' (they label the rows)")
    runs = {"base": base, **{path.name: load_results(path) for path in args.variants}}
    versus = [tuple(pair.split(":")) for pair in args.versus]
    for pair in versus:
        if len(pair) != 2 or not set(pair) <= set(runs):
            parser.error(f"--versus takes A:B with A and B among {sorted(runs)}, got {':'.join(pair)!r}")
    for name, frame in list(runs.items())[1:]:
        check_same_ln(base, frame, name)
    ln = base[base["model"] == "LN"]
    grid = (f"protocol {', '.join(f'`{p}`' for p in ln['protocol'].unique())}, {ln['dataset'].nunique()} datasets, "
            f"structures {', '.join(sorted(ln['structure'].unique()))}, {ln['seed'].nunique()} seeds")
    lines = ["# Table 6 variants: what makes task-based networks win", "",
             f"Generated by `python benchmarks/bench_table6_variants.py` from `{_rel(args.base)}` (the base run) "
             "and " + ", ".join(f"`{_rel(p)}`" for p in args.variants) + ".", "",
             "Every variant changes only the TN networks; its LN and boosting cells are the base run's, copied "
             "with `--reuse` (same settings hash: same settings, split and data; checked here), so all rows "
             f"compare on the same splits and seeds: {grid}. Outcomes: paired t-test over the seeds, α = 0.05 "
             "(see the Table 6 report for the definitions); strict = mean better or equal.", ""]

    lines += ["## TN vs LN", "", "| run | TN neurons | wins | ties | losses | strict TN ≥ LN |", "|---|---|---:|---:|---:|---:|"]
    summaries = {}
    for name, frame in runs.items():
        summaries[name] = summary = table6_summary(frame)
        counts = outcome_counts(summary)
        lines.append(f"| {name} | {describe(frame, base)} | {counts['win']} | "
                     f"{counts['tie']} | {counts['loss']} | {counts['tn_ge']} of {counts['pairs']} "
                     f"({counts['tn_ge'] / counts['pairs']:.0%}) |")
    lines += ["", "## Base TN vs each variant's TN", "",
              "Per (dataset, structure): `base better` when the base run's TN beats the variant's TN "
              "(paired t-test over seeds), `variant better` the other way.", "",
              "| variant | base better | tie | variant better | strict base ≥ variant |", "|---|---:|---:|---:|---:|"]
    for name, frame in list(runs.items())[1:]:
        lines.append(head_to_head_row(name, base, frame))
    if versus:
        lines += ["", "## Head to head", "",
                  "Per (dataset, structure): `A better` when run A's TN beats run B's TN (paired t-test over seeds).",
                  "", "| A vs B | A better | tie | B better | strict A ≥ B |", "|---|---:|---:|---:|---:|"]
        lines += [head_to_head_row(f"{a} vs {b}", runs[a], runs[b]) for a, b in versus]

    lines += oracle_lines(summaries)
    lines += ["", "## Per dataset: mean over S1-S5 of the mean over seeds", "",
              "Test MSE on min-max-scaled targets (lower is better) or accuracy (higher is better).", ""]
    header = ["dataset", "metric", "LN", *(f"TN {name}" for name in runs)]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * (len(header) - 2)]
    base_summary = summaries["base"]
    for dataset, group in base_summary.groupby("dataset", sort=False):
        metric = group["metric"].iloc[0]
        cells = [dataset, metric, _num(group["ln_mean"].mean())]
        for name in runs:
            rows = summaries[name][summaries[name]["dataset"] == dataset]
            cells.append(_num(rows["tn_mean"].mean()) if len(rows) else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def oracle_lines(summaries: dict[str, pd.DataFrame]) -> list[str]:
    """Markdown: the strict TN >= LN count if each dataset took its best run, judged on the test sets."""
    per_run = pd.DataFrame({name: summary[summary["outcome"] != "n/a"].groupby("dataset", sort=False)["tn_ge"].sum()
                            for name, summary in summaries.items()}).fillna(0).astype(int)
    pairs = outcome_counts(summaries["base"])["pairs"]
    best = per_run.max(axis=1)
    lines = ["", "## Upper bound: each dataset's best run, picked on the test sets", "",
             "For each dataset, the run with the most (dataset, structure) pairs where TN's mean is better than "
             "or equal to LN's. Picking by test results is not a method (it is selection on the test sets); "
             "the count only bounds what choosing one of these runs per dataset can reach. "
             f"**Bound: {int(best.sum())} of {pairs} ({best.sum() / pairs:.0%})**, against "
             f"{int(per_run['base'].sum())} of {pairs} for the base run.", "",
             "| dataset | " + " | ".join(per_run.columns) + " | best | best run(s) |",
             "|---|" + "---:|" * (len(per_run.columns) + 1) + "---|"]
    for dataset, row in per_run.iterrows():
        picks = ", ".join(per_run.columns[row == best[dataset]])
        lines.append(f"| {dataset} | " + " | ".join(str(v) for v in row) + f" | {best[dataset]} | {picks} |")
    return lines


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _num(value: float) -> str:
    return f"{value:.4f}" if abs(value) >= 0.01 else f"{value:.3g}"


if __name__ == "__main__":
    sys.exit(main())
