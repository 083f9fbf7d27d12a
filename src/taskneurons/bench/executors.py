"""Run independent benchmark cells in-process, on a local process pool, or on Ray.

Every executor calls the same top-level function on the same payloads and hands each result
to ``on_result`` in the coordinating process as soon as it arrives, so results can be
streamed to disk (see :class:`~taskneurons.bench.store.ResultStore`) and an interrupted run
loses only the cells in flight. Cells compute with one torch thread (see
:func:`single_threaded`), which makes their numbers identical whichever executor runs them.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .._progress import progress_bar
from ..errors import DataError, TaskNeuronsError, WorkerError

__all__ = ["run_cells", "single_threaded", "check_n_jobs", "ray_session", "EXECUTORS"]

EXECUTORS = ("local", "ray")


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Compute with one intra-op torch thread inside the block.

    Float reductions split over threads round differently; one thread per cell makes a cell's
    result independent of the executor and of how many cells run side by side.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_cells(
    payloads: Sequence[Any],
    function: Callable[[Any], Any],
    *,
    on_result: Callable[[Any], Iterable[Any] | None],
    executor: str = "local",
    n_jobs: int = 1,
    address: str | None = None,
    verbose: bool = False,
    desc: str = "cells",
) -> None:
    """Call ``function(payload)`` for every payload and pass each result to ``on_result``.

    Parameters
    ----------
    payloads : sequence
        Picklable inputs, one per cell.
    function : callable
        A module-level (picklable) function; it should catch the errors of its own cell and
        return them as data, since an exception here stops the whole run.
    on_result : callable
        Called in this process with each result, in completion order. It may return further
        payloads (cells that needed this result); they run in the same session, on the same
        workers, ahead of the cells not yet started (local executors).
    executor : {"local", "ray"}
        ``"local"`` runs in this process when ``n_jobs == 1`` and on a process pool otherwise;
        ``"ray"`` submits one task per cell to a Ray cluster (``address``) or a local Ray.
    n_jobs : int
        Worker processes for ``"local"``; CPUs for a local Ray started here.
    """
    if executor not in EXECUTORS:
        raise TaskNeuronsError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    check_n_jobs(n_jobs)
    if not payloads:
        return
    bar = progress_bar(enabled=verbose, desc=desc, total=len(payloads), unit="cell")

    def handle(result: Any) -> list[Any]:
        more = list(on_result(result) or ())
        bar.update()
        if more and getattr(bar, "total", None) is not None:
            bar.total += len(more)
            bar.refresh()
        return more

    try:
        if executor == "ray":
            _run_ray(payloads, function, handle, n_jobs, address)
        elif n_jobs == 1:
            queue = deque(payloads)
            while queue:
                queue.extendleft(reversed(handle(function(queue.popleft()))))
        else:
            _run_pool(payloads, function, handle, n_jobs)
    finally:
        bar.close()


def check_n_jobs(n_jobs: Any) -> None:
    """Refuse a worker count that is not a positive integer (booleans included)."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise DataError(f"n_jobs must be a positive integer, got {n_jobs!r}")


def _run_pool(payloads, function, handle, n_jobs) -> None:
    # "spawn": forking a process that already runs torch threads can deadlock the children.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=n_jobs, mp_context=context, initializer=_exit_with_parent)
    # Only a few cells are queued at a time, so follow-up cells start next and Ctrl-C has
    # little to cancel.
    queue = deque(payloads)
    pending: set = set()
    try:
        while queue or pending:
            while queue and len(pending) < 2 * n_jobs:
                pending.add(pool.submit(function, queue.popleft()))
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                queue.extendleft(reversed(handle(future.result())))
    except BrokenProcessPool:
        _stop_pool(pool)
        raise WorkerError("a worker process died (killed, out of memory, or started from a script without "
                          "an `if __name__ == '__main__':` guard?); the cells finished so far are saved: run "
                          "the same command again to resume, with fewer --n-jobs if memory is short"
                          ) from None
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued cells and end the workers now (cells in flight are lost, finished ones are saved).

    ``shutdown(wait=False)`` alone leaves stopping the workers to the pool's manager thread; a second Ctrl-C
    (``timeout -s INT`` sends two) that interrupts the interpreter's wait for that thread at exit left the
    workers waiting for work and the coordinator waiting for them, for ever.
    """
    workers = list((getattr(pool, "_processes", None) or {}).values())
    try:
        pool.shutdown(wait=False, cancel_futures=True)
    finally:
        for worker in workers:
            worker.terminate()


def _exit_with_parent() -> None:
    """Pool worker initializer: end this worker as soon as the coordinating process is gone.

    A coordinator killed with SIGKILL (or by the out-of-memory killer) cannot stop its pool, and
    its workers would go on with the cells in flight and those already queued to them -- minutes
    of work per cell under the paper protocol, competing with the re-run for the CPUs, for
    results nobody can receive. The parent's sentinel becomes ready when the parent exits.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="taskneurons-exit-with-parent", daemon=True).start()


def _call(function: Callable[[Any], Any], payload: Any) -> Any:
    """Ray task body: lets any importable callable (builtins included) run remotely."""
    return function(payload)


@contextlib.contextmanager
def ray_session(n_jobs: int, address: str | None) -> Iterator[Any]:
    """The ``ray`` module with Ray initialised: a local Ray of ``n_jobs`` CPUs, or the cluster at
    ``address``; a session this call starts is shut down on exit, one already running is reused."""
    try:
        import ray
    except ImportError:
        raise DataError("the ray executor needs Ray: pip install 'taskneurons[ray]'") from None
    started = not ray.is_initialized()
    if started:
        options: dict[str, Any] = {"ignore_reinit_error": True, "include_dashboard": False, "log_to_driver": False}
        if address:
            _check_reachable(address)
            options["address"] = address
        else:
            options["num_cpus"] = n_jobs
        ray.init(**options)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Refuse a ``host:port`` (or ``ray://host:port``) nobody listens on in seconds, not minutes:
    Ray itself retries an unreachable cluster without end."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray checks (and refuses quickly) itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise DataError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); start it (ray start "
                        "--head) or check --address") from None


def _run_ray(payloads, function, handle, n_jobs, address) -> None:
    with ray_session(n_jobs, address) as ray:
        pending: list = []
        try:
            remote = ray.remote(num_cpus=1, max_retries=0)(_call)
            pending = [remote.remote(function, p) for p in payloads]
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    pending += [remote.remote(function, p) for p in handle(ray.get(ref))]
        except BaseException as exc:
            for ref in pending:
                ray.cancel(ref, force=True)
            if not isinstance(exc, ray.exceptions.RayError):
                raise
            # As the local pool's BrokenProcessPool: one line, and the finished cells are kept.
            cause = getattr(exc, "cause", None)
            what = (f"a Ray task failed ({type(cause).__name__}: {cause})" if isinstance(exc, ray.exceptions.RayTaskError)
                    and cause is not None else f"a Ray worker or node died ({type(exc).__name__}; killed, or out of "
                    "memory?)")
            raise WorkerError(f"{what}; the cells finished so far are saved, run the same command again to "
                              "resume") from None
