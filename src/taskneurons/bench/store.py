"""Append-only JSONL store of benchmark results that survives interruption.

One line per finished grid cell, keyed by ``(dataset, model, structure, seed, protocol)``.
Only the coordinating process writes, one whole line per ``os.write`` on an ``O_APPEND``
descriptor followed by ``fsync``, so a run killed at any instant (Ctrl-C, ``kill -9``, power
loss) leaves every finished cell on disk and at most one torn last line, which the next
open detects and cuts off. A last line that is a complete record but lacks its newline (e.g. an
editor stripped it) is a record, not a torn write: it is read, and the next open adds the newline.
Re-runs skip the keys already present; a key is never written twice by one store, and duplicate
lines (e.g. from two stores writing one file by mistake) are read back once, first line wins.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import DataError

__all__ = ["ResultStore", "CellKey", "cell_key", "KEY_FIELDS"]

KEY_FIELDS = ("dataset", "model", "structure", "seed", "protocol")
CellKey = tuple


def cell_key(record: Mapping[str, Any]) -> CellKey:
    """The identity of a grid cell: its values for :data:`KEY_FIELDS`."""
    if not isinstance(record, Mapping):
        raise DataError(f"a result record must be a JSON object, got {type(record).__name__}")
    try:
        return tuple(record[name] for name in KEY_FIELDS)
    except KeyError as exc:
        raise DataError(f"a result record lacks the key field {exc.args[0]!r}; records need "
                        f"{', '.join(KEY_FIELDS)}") from None


def _parse_line(raw: bytes) -> tuple[CellKey, dict[str, Any]] | None:
    """``(key, record)`` of one stored line, or None when it is not a complete result record."""
    try:
        record = json.loads(raw)
        return cell_key(record), record
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError and DataError are ValueErrors
        return None


def _scan(data: bytes) -> tuple[list[tuple[CellKey, dict[str, Any]]], list[int], int | None]:
    """``(records, damaged, tail)`` of a results file's bytes, records in file order.

    ``damaged``: byte offsets of complete lines that are not result records (skipped). ``tail``: the
    offset of an unterminated last line that is not a complete record (a torn write), else None. An
    unterminated last line that parses as a record is one: only a partial line is a torn write.
    """
    records, damaged, tail = [], [], None
    offset = 0
    for raw in data.splitlines(keepends=True):
        if raw.strip():
            parsed = _parse_line(raw)
            if parsed is not None:
                records.append(parsed)
            elif raw.endswith((b"\n", b"\r")):
                damaged.append(offset)
            else:
                tail = offset
        offset += len(raw)
    return records, damaged, tail


def _json_safe(value: Any) -> Any:
    """JSON has no NaN/inf: store them as null so every line stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _json_safe(value.item())
    return value


class ResultStore:
    """Results of one benchmark run, streamed to ``path`` (a ``.jsonl`` file).

    Use as a context manager: it takes an exclusive lock on ``<path>.lock`` so two runs
    cannot interleave their writes into one file.

    >>> with ResultStore(tmp / "results.jsonl") as store:      # doctest: +SKIP
    ...     if key not in store:
    ...         store.add({"dataset": "abalone", "model": "TN", ...})
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._records: dict[CellKey, dict[str, Any]] = {}
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self.dropped_torn_line = False

    # -- lifecycle ----------------------------------------------------------------------------
    def open(self) -> ResultStore:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock_fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise DataError(f"another run is writing {self.path}; wait for it to finish or use a "
                            "different --out folder") from None
        self._load_and_repair()
        self._fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
        return self

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> ResultStore:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------------
    def _load_and_repair(self) -> None:
        self._records.clear()
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        records, damaged, tail = _scan(data)
        for key, record in records:
            self._records.setdefault(key, record)
        for offset in damaged:
            warnings.warn(f"{self.path}: skipping a damaged line at byte {offset}", stacklevel=3)
        if tail is not None:
            # A torn last line from an interrupted write: cut it off so appends start clean.
            self.dropped_torn_line = True
            with open(self.path, "r+b") as handle:
                handle.truncate(tail)
        elif data and not data.endswith((b"\n", b"\r")):
            # A complete last record without its newline: end its line so the next append starts a new one.
            with open(self.path, "ab") as handle:
                handle.write(b"\n")

    def __contains__(self, key: CellKey) -> bool:
        return tuple(key) in self._records

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(list(self._records.values()))

    def get(self, key: CellKey) -> dict[str, Any] | None:
        return self._records.get(tuple(key))

    def missing(self, keys: Iterable[CellKey]) -> list[CellKey]:
        return [tuple(k) for k in keys if tuple(k) not in self._records]

    # -- writing ------------------------------------------------------------------------------
    def add(self, record: Mapping[str, Any]) -> bool:
        """Append one finished cell; returns False (and writes nothing) if its key is present."""
        if self._fd is None:
            raise RuntimeError("ResultStore.add() needs an open store: use it as a context manager")
        key = cell_key(record)
        if key in self._records:
            return False
        clean = _json_safe(dict(record))
        line = (json.dumps(clean, sort_keys=True, allow_nan=False) + "\n").encode()
        written = os.write(self._fd, line)
        if written != len(line):  # pragma: no cover - regular files write whole small buffers
            raise OSError(f"short write to {self.path}")
        os.fsync(self._fd)
        self._records[key] = clean
        return True

    @staticmethod
    def read(path: str | os.PathLike) -> list[dict[str, Any]]:
        """All complete records of a results file, without locking or repairing it.

        Warns about the lines it skips: damaged lines, and an unfinished last line (a run writing it
        now, or one that was interrupted; the next run into the folder cuts it off and computes the cell).
        """
        path = Path(path)
        if not path.exists():
            return []
        found, damaged, tail = _scan(path.read_bytes())
        if damaged:
            warnings.warn(f"{path}: skipping {len(damaged)} damaged line(s) (first at byte {damaged[0]})",
                          stacklevel=2)
        if tail is not None:
            warnings.warn(f"{path}: skipping an unfinished last line at byte {tail} (a write in progress or "
                          "an interrupted run)", stacklevel=2)
        records: dict[CellKey, dict[str, Any]] = {}
        for key, record in found:
            records.setdefault(key, record)
        return list(records.values())
