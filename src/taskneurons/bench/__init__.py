"""Reproduce the paper's Table 5 (formulas) and Table 6 (LN vs TN networks), resumably, at scale.

    from taskneurons import bench
    run = bench.run_table6(data_dir="../shared/datasets/paper", datasets=["abalone"], structures=["S1"],
                           seeds=3, out="runs/t6", n_jobs=2)            # or executor="ray"
    bench.run_table5(data_dir="../shared/datasets/paper", out="runs/t5")
    bench.build_report("runs/t6")                                      # report.md + PNGs from the JSONL

Settings of the protocols ("fast", "paper") and the structures S1..S5 live in
:mod:`taskneurons.bench.protocols`; results stream to ``<out>/results.jsonl`` (one line per cell,
see :mod:`.store`), so an interrupted run is resumed by running it again.
"""

from __future__ import annotations

from .cells import Cell, run_cell
from .executors import EXECUTORS, run_cells, single_threaded
from .protocols import (
    BOOSTING,
    LN_SETTINGS,
    PAPER_LAYER_SETTINGS,
    PROTOCOLS,
    STRUCTURES,
    TN_SETTINGS,
    VSR_SETTINGS,
    resolve_protocol,
    resolve_structures,
)
from .report import (
    build_report,
    cost_summary,
    load_results,
    outcome_counts,
    table5_summary,
    table6_summary,
)
from .store import KEY_FIELDS, ResultStore
from .table5 import run_table5
from .table6 import BenchRun, run_table6, table6_cells

__all__ = [
    "run_table5",
    "run_table6",
    "build_report",
    "BenchRun",
    "load_results",
    "table6_summary",
    "table5_summary",
    "outcome_counts",
    "cost_summary",
    "table6_cells",
    "Cell",
    "run_cell",
    "run_cells",
    "single_threaded",
    "EXECUTORS",
    "ResultStore",
    "KEY_FIELDS",
    "PROTOCOLS",
    "STRUCTURES",
    "LN_SETTINGS",
    "TN_SETTINGS",
    "PAPER_LAYER_SETTINGS",
    "VSR_SETTINGS",
    "BOOSTING",
    "resolve_protocol",
    "resolve_structures",
]
