"""What Table 5 and Table 6 runs share: the datasets to run, the result store's checks, execution.

* :func:`resolve_datasets` turns ``--data-dir`` / ``--datasets`` into (name, task) pairs, checking
  up front that each one can be loaded (a typo fails before any work starts).
* :func:`open_results` opens ``<out>/results.jsonl`` and refuses to resume cells that were
  computed with other settings (their stored ``settings_hash`` differs), and optionally drops
  error cells so they are computed again.
* :func:`reusable_cells` finds the finished cells of earlier runs (``--reuse``) that a grid needs;
  :func:`copy_cells` adds them to the store.
* :func:`execute` runs the missing cells on the chosen executor and streams each record to the
  store as it arrives.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._checks import is_integer
from ..errors import DataError
from .cells import Cell, run_cell
from .executors import EXECUTORS, check_n_jobs, ray_session, run_cells
from .store import ResultStore, _parse_line, cell_key

__all__ = ["DatasetSpec", "check_out_dir", "expand_seeds", "resolve_datasets", "open_results", "execute",
           "executor_session", "RESULTS_FILE", "reuse_sources", "reusable_cells", "copy_cells"]

RESULTS_FILE = "results.jsonl"


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # registry name for registered datasets, the file stem otherwise
    task: str  # "regression", "binary" or "multiclass"
    size: int  # rows x features, to start the largest first
    fingerprint: str = ""  # sha256 (16 hex digits) of the file: results of other data are never reused


def _fingerprint(path: Path | None) -> str:
    """Digest of a data file and of its ``<stem>.json`` sidecar, if any (it can change the task)."""
    from ..datasets.loader import _sidecar

    if path is None:
        return ""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    sidecar = _sidecar(path)
    if sidecar:  # files without one keep the digest they always had
        digest.update(json.dumps(sidecar, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def check_run_options(n_jobs: int, seeds: Sequence[int]) -> None:
    """Refuse worker counts and seeds that would fail only after the results file exists."""
    check_n_jobs(n_jobs)
    bad = [s for s in seeds if not 0 <= s < 2**32]
    if not seeds or bad:
        raise DataError(f"seeds must be a positive count or seeds in [0, 2**32), got {list(seeds)!r}")


def check_out_dir(out: str | os.PathLike) -> Path:
    """``out`` as a Path, refused up front when it is a file (results, report and figures are a folder's)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file; pass a folder (it will hold {RESULTS_FILE}, the report and the "
                        "figures)")
    return out


def expand_seeds(seeds: int | Sequence[int]) -> list[int]:
    """The seeds of a run: a count N means seeds 0..N-1; a sequence lists them (repeats dropped). A count is
    checked before it is expanded, so that a huge one is refused with the range message instead of filling
    the memory. Booleans, text and fractions are refused: ``True`` would be one seed, ``"10"`` the seeds 1
    and 0, ``[0.5]`` seed 0."""
    if is_integer(seeds):
        if not 0 < seeds <= 2**32:
            raise DataError(f"seeds must be a positive count or seeds in [0, 2**32), got {seeds!r}")
        return list(range(int(seeds)))
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise DataError(f"seeds must be a positive count (e.g. 10) or a sequence of integer seeds "
                        f"(e.g. [0, 3]), got {seeds!r}")
    seeds = list(seeds)
    if not all(is_integer(s) for s in seeds):
        raise DataError(f"seeds must be integers in [0, 2**32), got {seeds!r}")
    return list(dict.fromkeys(int(s) for s in seeds))


def _check_table(name: str, X, y, task: str, path: Path | None, test_size: float | None) -> None:
    """Refuse a table every network and VSR cell would fail on, with the reason the models give.

    The features go through the networks' own input encoder (NaN or infinity, missing categories
    and stray text in a numeric column are refused there); a classification target needs two
    classes; and the rows must allow the protocol's train/test split.
    """
    from ..preprocessing import TabularEncoder
    from .cells import split_indices

    where = f"dataset {name!r}" + (f" ({path})" if path is not None else "")
    try:
        TabularEncoder(scale=None, clip=None).fit_transform(X)
    except DataError as exc:
        raise DataError(f"{where} cannot be used, every cell would fail on it: {exc}") from None
    if task != "regression" and y.nunique() < 2:
        raise DataError(f"{where} is a classification task but its target column {y.name!r} holds one class "
                        f"only ({y.iloc[0]!r}); it needs at least 2 (is the target the last column?)")
    if test_size is not None:
        try:
            split_indices(len(X), None, 0, test_size)
        except ValueError:
            raise DataError(f"{where} has {len(X)} row(s): too few for a train/test split with test_size "
                            f"{test_size}; add rows") from None


def resolve_datasets(data_dir: str | os.PathLike | None, names: Sequence[str] | None, *,
                     test_size: float | None = None) -> list[DatasetSpec]:
    """The datasets of a run, largest first; each is checked to be loadable here.

    ``names=None`` means every table in ``data_dir`` (``$TASKNEURONS_DATA`` when None), registered
    or not. A registered name with no local file is fetched once here (into the download cache)
    so that workers do not all download it; if that fails, the loader's error says what to do.
    A table every cell would fail on (NaN or infinite features, a one-class target, too few rows
    for the split of ``test_size``) is refused here, before any work.
    """
    from ..datasets import available, cache_dir, default_data_dir, find_file, get_info, load

    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    if isinstance(names, str):  # one name, not its letters
        names = [names]
    if names is None or len(names) == 0:
        names = available(folder)
        if not names:
            where = folder if folder is not None else "(no --data-dir given and $TASKNEURONS_DATA is unset)"
            raise DataError(f"no datasets found in {where}; pass --data-dir with <name>.csv[.gz]/.parquet "
                            "tables (target in the last column) or name them with --datasets")
    specs: dict[str, DatasetSpec] = {}
    for name in names:
        # Downloads a registered name without a local file into the cache (so that workers do not
        # all download it), and refuses now, with the loader's reason, a table every cell would fail on.
        X, y = load(name, folder)
        info = get_info(name, folder)
        key = info.name  # the registry's name, or the file's stem for a table of one's own
        if key not in specs:
            path = find_file(name, folder) or find_file(key, cache_dir() / "datasets")
            _check_table(name, X, y, info.task, path, test_size)
            specs[key] = DatasetSpec(key, info.task, int(info.n_samples) * max(1, int(info.n_features)),
                                     _fingerprint(path))
    return sorted(specs.values(), key=lambda s: -s.size)


def _drop_keys(path: Path, keys: set[tuple]) -> None:
    """Rewrite ``path`` without the records of ``keys`` (atomically: write, then rename)."""
    kept = []
    for raw in path.read_bytes().splitlines(keepends=True):
        parsed = _parse_line(raw)  # damaged lines (None) are the store's business: keep them
        if parsed is None or parsed[0] not in keys:
            kept.append(raw)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.writelines(kept)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _group(key: tuple) -> tuple:
    """A cell key without its seed (dataset, model, structure, protocol): the cells of one report row."""
    return key[:3] + key[4:]


@contextlib.contextmanager
def open_results(out: str | os.PathLike, expected: dict[tuple, str], *, retry_errors: bool = False,
                 replace: Collection[tuple] = ()) -> Iterator[ResultStore]:
    """Open (and lock) ``<out>/results.jsonl`` for a grid whose cells have the ``expected`` hashes;
    a context manager yielding the open :class:`ResultStore`. Failed cells of the keys in ``replace``
    are dropped (finished copies from ``--reuse`` are about to take their place).

    Raises
    ------
    DataError
        When finished cells of this grid were computed with other settings.
    """
    store = ResultStore(Path(out) / RESULTS_FILE).open()
    try:
        done = [key for key in expected if key in store]
        errors = {key for key in done if store.get(key).get("status") != "ok"}
        # Failed cells hold no result to protect: those of other settings or data (e.g. a fixed
        # data file) are always recomputed, the others under retry_errors.
        drop = {key for key in errors
                if retry_errors or key in replace or store.get(key).get("settings_hash") != expected[key]}
        stale = [(key, store.get(key).get("settings_hash"), expected[key]) for key in done
                 if key not in errors and store.get(key).get("settings_hash") != expected[key]]
        # A cell's settings hash does not depend on its seed: finished cells of other seeds of this grid's
        # (dataset, model, structure, protocol) with another hash would be averaged with this run's cells
        # in one report row (e.g. seeds 0-2 trained for 100 epochs and seed 3 for 5).
        groups = {_group(key): digest for key, digest in expected.items()}
        stale += [(key, record.get("settings_hash"), groups[_group(key)]) for record in store
                  if (key := cell_key(record)) not in expected and record.get("status") == "ok"
                  and _group(key) in groups and record.get("settings_hash") != groups[_group(key)]]
        if stale:
            key, old, new = stale[0]
            raise DataError(
                f"{len(stale)} finished cell(s) in {store.path} were computed with other settings or other data "
                f"than this run's (e.g. {dict(zip(('dataset', 'model', 'structure', 'seed', 'protocol'), key, strict=True))}: "
                f"settings {old} there, {new} now). Use another --out folder (for a variant of "
                f"a finished run: another --out, with --reuse {Path(out)} to copy the unchanged cells), "
                f"or delete those lines to recompute them")
        if drop:
            store.close()
            _drop_keys(store.path, drop)
            store.open()
        yield store
    finally:
        store.close()


def reuse_sources(reuse: str | os.PathLike | Sequence[str | os.PathLike] | None) -> list[Path]:
    """The results files of ``--reuse`` folders (or files), each checked to exist."""
    if reuse is None:
        return []
    items = [reuse] if isinstance(reuse, (str, os.PathLike)) else list(reuse)
    files = []
    for item in items:
        path = Path(item)
        file = path / RESULTS_FILE if path.is_dir() else path
        if not file.is_file():
            raise DataError(f"nothing to reuse at {path}: expected a results folder holding {RESULTS_FILE} "
                            "(the --out folder of an earlier run) or such a file")
        files.append(file)
    return files


def reusable_cells(sources: Sequence[Path], expected: dict[tuple, str]
                   ) -> tuple[dict[tuple, dict[str, Any]], dict[Path, int]]:
    """The finished ("ok") cells of ``sources`` that a grid expects, with the expected settings hash
    (same settings, split and data; the first source holding a key wins), and how many each source gave.

    Nothing else is taken: cells of other settings or another protocol name, failed cells, and
    cells the grid does not have.
    """
    cells: dict[tuple, dict[str, Any]] = {}
    given: dict[Path, int] = {}
    for source in sources:
        given[source] = 0
        for record in ResultStore.read(source):
            key = cell_key(record)
            if (key in expected and key not in cells and record.get("status") == "ok"
                    and record.get("settings_hash") == expected[key]):
                cells[key] = record
                given[source] += 1
    return cells, given


def copy_cells(store: ResultStore, cells: Mapping[tuple, dict[str, Any]]) -> int:
    """Add to ``store`` the ``cells`` (from :func:`reusable_cells`) it does not hold; returns how many."""
    return sum(store.add(record) for key, record in cells.items() if key not in store)


@contextlib.contextmanager
def executor_session(executor: str, n_jobs: int, address: str | None) -> Iterator[None]:
    """Keep one Ray session for all the phases of a run (``run_cells`` reuses an initialised Ray)."""
    if executor not in EXECUTORS:
        raise DataError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if executor != "ray":
        if address:
            raise DataError(f"--address {address} is where a Ray cluster runs; use it with --executor ray")
        yield
        return
    with ray_session(n_jobs, address):
        yield


@dataclass
class Progress:
    """Counts of one run."""

    computed: int = 0
    errors: int = 0


def execute(cells: Iterable[Cell], store: ResultStore, *, executor: str, n_jobs: int, address: str | None,
            verbose: bool, desc: str, progress: Progress,
            follow_up: Callable[[dict[str, Any]], Sequence[Cell]] | None = None) -> None:
    """Run the cells not yet in ``store``; every record is appended the moment it arrives.

    ``follow_up(record)`` (after the record is stored) returns cells that this result made ready
    (TN cells once their formula is known); they run in the same session.
    """
    todo = [cell for cell in cells if cell.key not in store]

    def on_result(record: dict[str, Any]) -> Sequence[Cell]:
        if store.add(record):
            progress.computed += 1
            progress.errors += record.get("status") != "ok"
        return follow_up(record) if follow_up is not None else ()

    run_cells(todo, run_cell, on_result=on_result, executor=executor, n_jobs=n_jobs, address=address,
              verbose=verbose, desc=desc)
