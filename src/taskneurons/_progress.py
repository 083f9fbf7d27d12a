"""Progress reporting: the library's only output, and only when the caller asks (``verbose``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T], *, enabled: bool, desc: str, total: int | None = None,
             unit: str = "it", leave: bool = False) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar when ``enabled``; otherwise return it untouched."""
    if not enabled:
        return iter(iterable)
    return iter(tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave, dynamic_ncols=True))


def progress_bar(*, enabled: bool, desc: str, total: int | None = None, unit: str = "it"):
    """A manual tqdm bar (``.update(n)``, ``.set_postfix(...)``, ``.close()``), or a no-op twin."""
    if enabled:
        return tqdm(desc=desc, total=total, unit=unit, leave=False, dynamic_ncols=True)
    return _NullBar()


class _NullBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def set_description(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
