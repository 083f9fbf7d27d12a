"""Table 6: linear-neuron (LN) vs task-based (TN) networks, structures S1..S5, several seeds.

The grid, per dataset and seed (seed s = the s-th 80/20 split, also every model's seed):

* one ``VSR`` cell (structure ``"-"``): the formula discovered on that split's training rows;
* one ``LN`` and one ``TN`` cell per structure; TN takes the VSR cell's formula, so discovery
  runs once per (dataset, seed), not per structure, and its widths are shrunk so the TN network
  has no more parameters than the LN one;
* one cell per boosting baseline (structure ``"-"``): HGB always, XGBoost / LightGBM if installed.

The VSR cells are queued first; each TN cell is queued as soon as its formula is stored. Every
record is appended to ``<out>/results.jsonl`` as it arrives; a re-run computes only what is
missing, so an interrupted run loses at most the cells in flight. Then ``report.md`` and the
figures are (re)built from the JSONL alone (:func:`~taskneurons.bench.report.build_report`).
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError
from .cells import NO_STRUCTURE, Cell, settings_hash
from .protocols import BOOSTING_MODULES, check_network_settings, resolve_protocol, resolve_structures
from .runner import (
    RESULTS_FILE,
    DatasetSpec,
    Progress,
    check_out_dir,
    check_run_options,
    copy_cells,
    execute,
    executor_session,
    expand_seeds,
    open_results,
    resolve_datasets,
    reusable_cells,
    reuse_sources,
)

__all__ = ["run_table6", "table6_cells", "tn_formulas", "BenchRun", "encoder_settings", "available_boosting"]


@dataclass
class BenchRun:
    """What a run did. Counts are cells; ``seconds`` is wall-clock time of the whole call."""

    out: Path
    results: Path
    report: Path | None
    n_cells: int
    n_computed: int
    n_skipped: int
    n_errors: int
    seconds: float
    n_reused: int = 0  # of n_skipped: copied from the ``reuse`` folders by this call


def finish_run(out: Path, *, n_cells: int, n_computed: int, n_skipped: int, n_errors: int, report: Path | None,
               start: float, console: Any = None, unit: str = "cells", n_reused: int = 0) -> BenchRun:
    """The :class:`BenchRun` summary of a finished grid (``start``: its ``time.perf_counter()``), printed
    as one line on ``console`` when given."""
    run = BenchRun(out=out, results=out / RESULTS_FILE, report=report, n_cells=n_cells, n_computed=n_computed,
                   n_skipped=n_skipped, n_errors=n_errors, seconds=time.perf_counter() - start, n_reused=n_reused)
    if console is not None:
        reused = f" ({run.n_reused} copied from --reuse)" if run.n_reused else ""
        console.print(f"{run.n_cells} {unit}: {run.n_computed} computed now, {run.n_skipped} already done{reused}, "
                      f"{run.n_errors} errors; {run.seconds:.1f} s. Results: {run.results}"
                      + (f"; report: {run.report}" if run.report else ""))
    return run


def encoder_settings(estimator: Mapping[str, Any]) -> dict[str, Any]:
    """The input encoding the networks' estimator applies (VSR discovers in the same space)."""
    from ..estimators import TaskNeuronRegressor

    params = TaskNeuronRegressor().get_params()
    encoder = TaskNeuronRegressor(**{k: v for k, v in estimator.items() if k in params}).make_encoder()
    return {"scale_X": encoder.scale, "categorical": encoder.categorical, "input_clip": encoder.clip}


def available_boosting(boosting: bool | Sequence[str], protocol: Mapping[str, Any]) -> list[str]:
    """Boosting models to run: all configured ones whose package is installed (True), none (False),
    or the named ones (an error names a missing package)."""
    configured = dict(protocol.get("boosting") or {})
    if boosting is False or boosting is None:
        return []
    if boosting is True:
        return [m for m in configured if importlib.util.find_spec(BOOSTING_MODULES.get(m, m)) is not None]
    names = [boosting] if isinstance(boosting, str) else list(boosting)
    for name in names:
        if name not in configured:
            raise DataError(f"unknown boosting model {name!r}; configured: {', '.join(configured)}")
        module = BOOSTING_MODULES.get(name, name)
        if importlib.util.find_spec(module) is None:
            raise DataError(f"boosting model {name!r} needs the package {module!r}: pip install {module}")
    return names


def vsr_cell(spec: DatasetSpec, seed: int, protocol: Mapping[str, Any], data_dir: str | None) -> Cell:
    """The discovery cell of (dataset, seed); shared by Table 5 and Table 6 runs of a protocol.

    It discovers in the input space of the TN networks (``tn`` may change their encoding)."""
    encoder = encoder_settings({**protocol["estimator"], **protocol.get("tn", {})})
    settings = dict(protocol["vsr"])
    digest = settings_hash({"model": "VSR", "test_size": protocol["test_size"], "encoder": encoder,
                            "settings": settings, "data": spec.fingerprint})
    return Cell(spec.name, "VSR", NO_STRUCTURE, seed, protocol["name"], spec.task, data_dir,
                protocol["test_size"], settings=settings, encoder=encoder, settings_hash=digest,
                data_sha=spec.fingerprint)


def tn_formulas(specs: Sequence[DatasetSpec], protocol: Mapping[str, Any],
                paper_dir: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None
                ) -> dict[str, tuple[dict[str, Any], str] | None]:
    """Dataset -> ``(formula, source)``, the TN formula (``Formula.to_dict()``) the protocol's
    ``tn_formula`` fixes for it and where it comes from (``"paper"`` or the formula's text), or None
    where the TN cells take their (dataset, seed)'s VSR formula.

    ``"paper"`` takes the paper's Table 5 formula (only its terms matter: every TN neuron learns
    its own coefficients); a dataset the paper does not have is refused, by name. The paper's tables
    are looked for as the report does (``paper_dir``, else also next to ``data_dir``).
    """
    from ..formula import Formula

    source = protocol.get("tn_formula", "vsr")
    if source == "vsr":
        return {spec.name: None for spec in specs}
    if source != "paper":
        fixed = Formula(source).to_dict()
        return {spec.name: (fixed, fixed["text"]) for spec in specs}
    from ..datasets import paper_table5

    table = paper_table5(paper_dir, near=[data_dir])
    known = dict(zip(table["dataset"], table["formula"], strict=True))
    missing = [spec.name for spec in specs if spec.name not in known]
    if missing:
        raise DataError(f"the paper's Table 5 has no formula for {', '.join(missing)}; leave those datasets out "
                        f"(--datasets) or give the TN formula as a text (tn_formula)")
    return {spec.name: (Formula(known[spec.name]).to_dict(), "paper") for spec in specs}


def table6_cells(specs: Sequence[DatasetSpec], structures: Mapping[str, tuple[int, ...]], seeds: Sequence[int],
                 protocol: Mapping[str, Any], boosting: Sequence[str], data_dir: str | None,
                 formulas: Mapping[str, tuple[dict[str, Any], str] | None] | None = None
                 ) -> tuple[list[Cell], list[Cell]]:
    """(Cells that can run now: VSR, boosting, LN, and TN cells of a fixed formula; TN cells waiting
    for their VSR formula), dataset by dataset so a worker keeps reusing the dataset it has loaded.

    ``formulas`` (from :func:`tn_formulas`; None = VSR's everywhere) fixes the TN formula per dataset;
    datasets with a fixed formula get no VSR cells.
    """
    first: list[Cell] = []
    second: list[Cell] = []
    formulas = formulas or {}
    for spec in specs:
        common = {"test_size": protocol["test_size"], "data": spec.fingerprint}
        fixed = formulas.get(spec.name)
        vsr = {} if fixed is not None else {seed: vsr_cell(spec, seed, protocol, data_dir) for seed in seeds}
        first.extend(vsr.values())
        for model in boosting:
            settings = dict(protocol["boosting"][model])
            digest = settings_hash({"model": model, **common, "settings": settings})
            first.extend(Cell(spec.name, model, NO_STRUCTURE, seed, protocol["name"], spec.task, data_dir,
                              protocol["test_size"], settings=settings, settings_hash=digest,
                              data_sha=spec.fingerprint) for seed in seeds)
        for structure, hidden in structures.items():
            for model in ("LN", "TN"):
                settings = {**protocol["estimator"], **protocol["ln" if model == "LN" else "tn"]}
                for seed in seeds:
                    extra: dict[str, Any] = {}
                    if model == "TN" and fixed is not None:
                        formula, source = fixed
                        depends: Any = {"formula": formula["text"], "source": source}
                        extra = {"formula": formula, "formula_source": source}
                    else:
                        depends = vsr[seed].settings_hash if model == "TN" else None
                    digest = settings_hash({"model": model, **common, "settings": settings, "hidden": hidden,
                                            "depends": depends})
                    cell = Cell(spec.name, model, structure, seed, protocol["name"], spec.task, data_dir,
                                protocol["test_size"], settings=settings, hidden=tuple(hidden),
                                settings_hash=digest, data_sha=spec.fingerprint, **extra)
                    (second if model == "TN" and fixed is None else first).append(cell)
    return first, second


class _Formulas:
    """Hands TN cells their (dataset, seed)'s discovered formula as soon as the VSR cell is stored.

    A TN cell whose VSR cell failed gets an error record instead (so ``--retry-errors`` redoes both).
    """

    def __init__(self, cells: Sequence[Cell], store, protocol_name: str, progress: Progress):
        self.store, self.protocol, self.progress = store, protocol_name, progress
        self.waiting: dict[tuple[str, int], list[Cell]] = {}
        for cell in cells:
            if cell.key not in store:
                self.waiting.setdefault((cell.dataset, cell.seed), []).append(cell)

    def release(self, dataset: str, seed: int) -> list[Cell]:
        from dataclasses import replace

        source = self.store.get((dataset, "VSR", NO_STRUCTURE, seed, self.protocol))
        if source is None:
            return []  # not computed yet: wait for it
        cells = self.waiting.pop((dataset, seed), [])
        if source.get("status") == "ok" and source.get("formula_record"):
            return [replace(cell, formula=source["formula_record"]) for cell in cells]
        for cell in cells:
            record = cell.base_record()
            record.update(status="error", warnings=[], time=0.0,
                          error=f"no formula: the VSR cell of this dataset and seed failed "
                                f"({source.get('error')}); rerun with --retry-errors once it is fixed")
            if self.store.add(record):
                self.progress.computed += 1
                self.progress.errors += 1
        return []

    def ready_now(self) -> list[Cell]:
        return [cell for key in list(self.waiting) for cell in self.release(*key)]

    def follow_up(self, record: dict[str, Any]) -> list[Cell]:
        if record.get("model") != "VSR" or record.get("protocol") != self.protocol:
            return []
        return self.release(record["dataset"], record["seed"])


def run_table6(
    data_dir: str | os.PathLike | None = None,
    datasets: Sequence[str] | None = None,
    structures: Sequence[str] | Mapping[str, Sequence[int]] | None = None,
    seeds: int | Sequence[int] = 10,
    protocol: str | Mapping[str, Any] = "fast",
    out: str | os.PathLike = "runs/table6",
    n_jobs: int = 1,
    executor: str = "local",
    address: str | None = None,
    boosting: bool | Sequence[str] = True,
    console=None,
    verbose: bool = False,
    *,
    retry_errors: bool = False,
    report: bool = True,
    paper_dir: str | os.PathLike | None = None,
    reuse: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
) -> BenchRun:
    """Run (or resume) the Table 6 grid and write ``results.jsonl``, ``report.md`` and figures to ``out``.

    Parameters
    ----------
    data_dir : folder of ``<name>.csv[.gz]`` / ``.parquet`` tables (target last); default ``$TASKNEURONS_DATA``.
    datasets : names to run; default every table in ``data_dir`` (registered or not).
    structures : names among S1..S5 (default all), or a mapping name -> LN widths.
    seeds : number of seeds (0..N-1) or the seeds themselves.
    protocol : "fast", "paper" or a dict merged over "fast" (see :mod:`.protocols`). A TN variant
        changes only ``tn`` / ``tn_formula``, e.g. ``{"name": "fast", "tn": {"basis": "terms"}}`` or
        ``{"name": "fast", "tn_formula": "x**2"}`` (a fixed formula needs no VSR cells).
    n_jobs, executor, address : workers; ``"local"`` (process pool when ``n_jobs > 1``) or ``"ray"``
        (the cluster at ``address``, else a local Ray with ``n_jobs`` CPUs). Same numbers either way.
        On a Ray cluster every node needs taskneurons installed and ``data_dir`` at the same path;
        only this process writes the results.
    boosting : True = every configured baseline whose package is installed; False = none; or names.
    console : a rich Console for the final summary table; nothing is printed without one.
    verbose : progress bars over cells.
    retry_errors : recompute cells recorded as errors (they are kept, and skipped, by default).
    report : build ``report.md`` and the PNG figures at the end.
    paper_dir : folder of the paper's table5.csv / table6.csv (default: found automatically).
    reuse : result folders (or ``results.jsonl`` files) of earlier runs: their finished cells that
        this grid needs, with the same settings hash (same settings, split and data), are copied
        into ``out`` instead of being computed -- e.g. the LN, VSR and boosting cells for a TN variant.
    """
    start = time.perf_counter()
    settings = resolve_protocol(protocol)
    check_network_settings(settings)
    shapes = resolve_structures(structures)
    seed_list = expand_seeds(seeds)
    check_run_options(n_jobs, seed_list)
    out = check_out_dir(out)
    sources = reuse_sources(reuse)
    folder = None if data_dir is None else str(Path(data_dir).resolve())
    specs = resolve_datasets(folder, datasets, test_size=settings["test_size"])
    models = available_boosting(boosting, settings)
    first, second = table6_cells(specs, shapes, seed_list, settings, models, folder,
                                 tn_formulas(specs, settings, paper_dir, folder))
    expected = {cell.key: cell.settings_hash for cell in (*first, *second)}
    progress = Progress()
    reusable, given = reusable_cells(sources, expected)
    if console is not None:
        for source, count in given.items():
            if not count:
                console.print(f"--reuse {source.parent}: none of its cells fits this grid (a cell is reused only "
                              f"under the same protocol name, settings and data)")
    with executor_session(executor, n_jobs, address), \
            open_results(out, expected, retry_errors=retry_errors, replace=reusable.keys()) as store:
        n_reused = copy_cells(store, reusable)
        n_done_before = sum(key in store for key in expected)
        formulas = _Formulas(second, store, settings["name"], progress)
        # TN cells whose formula is stored already go first; the others follow their VSR cell.
        execute([*formulas.ready_now(), *first], store, executor=executor, n_jobs=n_jobs, address=address,
                verbose=verbose, desc="table6 cells", progress=progress, follow_up=formulas.follow_up)
        n_errors = sum(store.get(key).get("status") != "ok" for key in expected if key in store)
    report_path = None
    if report:
        from .report import build_report, print_table6

        report_path = build_report(out, paper_dir=paper_dir)
        if console is not None:
            print_table6(console, out, protocol=settings["name"], paper_dir=paper_dir,
                         datasets=[s.name for s in specs], structures=list(shapes))
    return finish_run(out, n_cells=len(expected), n_computed=progress.computed, n_skipped=n_done_before,
                      n_errors=n_errors, report=report_path, start=start, console=console, unit="cells",
                      n_reused=n_reused)
