"""Table 5: the formula vectorized symbolic regression finds on every dataset, beside the paper's.

One ``VSR`` cell per dataset, on the training rows of the seed's 80/20 split, in the input space
the networks of that protocol see (per-feature min-max to [-1, 1]). It is the very cell Table 6
runs for that (dataset, seed, protocol), with the same key and settings: point both commands at
one ``--out`` folder and discovery is shared. The record also holds the formula's own held-out
metric (the same MSE / accuracy as Table 6) and its search time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._checks import is_integer
from ..errors import DataError
from .protocols import resolve_protocol
from .runner import (
    Progress,
    check_out_dir,
    check_run_options,
    execute,
    executor_session,
    open_results,
    resolve_datasets,
)
from .table6 import BenchRun, finish_run, vsr_cell

__all__ = ["run_table5"]


def run_table5(
    data_dir: str | os.PathLike | None = None,
    datasets: Sequence[str] | None = None,
    out: str | os.PathLike = "runs/table5",
    seed: int = 0,
    n_jobs: int = 1,
    executor: str = "local",
    address: str | None = None,
    console=None,
    verbose: bool = False,
    *,
    protocol: str | Mapping[str, Any] = "fast",
    retry_errors: bool = False,
    report: bool = True,
    paper_dir: str | os.PathLike | None = None,
) -> BenchRun:
    """Discover the formula of every dataset (resumable) and write ``results.jsonl`` and ``report.md``.

    Parameters are those of :func:`~taskneurons.bench.run_table6`; ``seed`` picks the split and
    seeds the search; ``protocol`` supplies the test share, the input encoding and the VSR settings.
    """
    start = time.perf_counter()
    settings = resolve_protocol(protocol)
    if not is_integer(seed):  # True or 1.5 would silently be seed 1
        raise DataError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    seed = int(seed)
    check_run_options(n_jobs, [seed])
    out = check_out_dir(out)
    folder = None if data_dir is None else str(Path(data_dir).resolve())
    specs = resolve_datasets(folder, datasets, test_size=settings["test_size"])
    cells = [vsr_cell(spec, seed, settings, folder) for spec in specs]
    expected = {cell.key: cell.settings_hash for cell in cells}
    progress = Progress()
    with executor_session(executor, n_jobs, address), open_results(out, expected, retry_errors=retry_errors) as store:
        n_done_before = sum(key in store for key in expected)
        execute(cells, store, executor=executor, n_jobs=n_jobs, address=address, verbose=verbose,
                desc="table5 (VSR)", progress=progress)
        n_errors = sum(store.get(key).get("status") != "ok" for key in expected if key in store)
    report_path = None
    if report:
        from .report import build_report, print_table5

        report_path = build_report(out, paper_dir=paper_dir)
        if console is not None:
            print_table5(console, out, protocol=settings["name"], paper_dir=paper_dir,
                         datasets=[s.name for s in specs], seeds=[seed])
    return finish_run(out, n_cells=len(expected), n_computed=progress.computed, n_skipped=n_done_before,
                      n_errors=n_errors, report=report_path, start=start, console=console, unit="datasets")
