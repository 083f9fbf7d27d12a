"""The training loop shared by the estimators and the benchmarks.

:func:`fit_module` trains any ``torch.nn.Module`` on in-memory data with mini-batch gradient
descent; :func:`predict_module` runs it in batches. Design choices, and why:

* **No DataLoader.** The data are moved to the device once; each epoch draws one permutation
  (``torch.randperm`` with a ``torch.Generator`` seeded from ``random_state``), gathers the
  shuffled copy in one indexing operation, and the batches are contiguous slices (views) of it.
  A DataLoader's per-sample collation is what makes generic loops slow on small tabular nets.
* **One device sync per epoch.** Batch losses stay on the device; the epoch's train loss, the
  validation loss/metric and a finiteness check of the parameters are read back together once,
  so CUDA runs are not stalled by per-batch ``.item()`` calls.
* **Fast optimizer kernels.** The built-in optimizers use PyTorch's fused (Adam, AdamW, SGD) or
  multi-tensor (RMSprop) implementations where the device supports them.
* **Numerical safety.** A non-finite loss (train or validation) or parameter is detected at the
  end of the epoch; the model *and* optimizer state of the last good epoch are restored and the
  learning rate is multiplied by ``recovery_factor``, up to ``max_recoveries`` times; after
  that :class:`~taskneurons.errors.NumericalError` is raised. After training, the predictions on
  the training data are checked to be finite, so no model that predicts NaN is ever returned.
* **Reproducible without global seeding.** Shuffling, the validation split and the module's
  own randomness (dropout) derive from ``random_state``; the global torch RNG is forked for the
  duration of training (``torch.random.fork_rng``), so the caller's RNG state is left untouched.

The history is a list of per-epoch dicts (:class:`History`, ``.to_frame()`` for pandas), and
callbacks follow a small protocol (:class:`Callback`), in the spirit of skorch's ``NeuralNet``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._checks import is_integer, is_real
from ._progress import progress_bar
from .errors import DataError, NumericalError

__all__ = [
    "Callback",
    "History",
    "TrainingResult",
    "fit_module",
    "predict_module",
    "make_optimizer",
    "resolve_device",
    "LOSSES",
    "METRICS",
    "OPTIMIZERS",
]

ArrayLike = Any  # numpy array, torch tensor, pandas object, nested sequence
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor | float]

#: Built-in losses: name -> (function of (output, target) returning the batch mean, task).
#: The task decides how ``y`` is converted and which metric is the default.
LOSSES: dict[str, tuple[LossFn, str]] = {
    "mse": (F.mse_loss, "regression"),
    "mae": (F.l1_loss, "regression"),
    "huber": (F.huber_loss, "regression"),  # delta = 1 (in units of y)
    "cross_entropy": (F.cross_entropy, "multiclass"),  # output (n, C) logits, y (n,) class indices
    "bce": (F.binary_cross_entropy_with_logits, "binary"),  # output (n,) or (n, 1) logit, y in [0, 1]
}

#: Built-in optimizers: name -> (class, default keyword arguments).
OPTIMIZERS: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any]]] = {
    "adam": (torch.optim.Adam, {}),
    "adamw": (torch.optim.AdamW, {}),
    "rmsprop": (torch.optim.RMSprop, {}),
    # Plain SGD without momentum is rarely what a user of "sgd" wants for a network; 0.9 is the
    # usual choice (and scikit-learn's MLP default). Override with optimizer_kwargs={"momentum": 0}.
    "sgd": (torch.optim.SGD, {"momentum": 0.9}),
}
_FUSED = {"adam", "adamw", "sgd"}  # optimizers with a fused kernel (CPU since torch 2.4, CUDA)
# batch_size x parameters below which num_threads="auto" trains on one CPU thread (see fit_module)
_SMALL_STEP = 2**22


# --------------------------------------------------------------------------- metrics
def _mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out, y)


def _rmse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out, y).sqrt()


def _mae(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(out, y)


def _r2(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # Per output column, then the uniform average, as scikit-learn's r2_score default: a constant
    # target column scores 1 when predicted exactly, else 0 (force_finite=True), and fewer than
    # two rows give NaN (sklearn also warns; the history just records NaN).
    if len(y) < 2:
        return torch.full((), math.nan, dtype=out.dtype, device=out.device)
    y2 = y.reshape(len(y), -1)
    o2 = out.reshape(len(y), -1)
    ss_res = ((y2 - o2) ** 2).sum(0)
    ss_tot = ((y2 - y2.mean(0)) ** 2).sum(0)
    score = torch.where(ss_tot == 0, (ss_res == 0).to(ss_res.dtype), 1 - ss_res / ss_tot)
    return score.mean()


def _accuracy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if out.ndim == 2 and out.shape[1] > 1 and y.ndim == 1:  # (n, C) logits vs class indices
        pred = out.argmax(1)
        return (pred == y).float().mean()
    # logits vs labels in {0, 1}, one per output (one per sample, or multi-label (n, m))
    return ((out.reshape(-1) > 0) == (y.reshape(-1) > 0.5)).float().mean()


#: Built-in validation metrics: name -> (function of (output, target), greater is better).
METRICS: dict[str, tuple[MetricFn, bool]] = {
    "mse": (_mse, False),
    "rmse": (_rmse, False),
    "mae": (_mae, False),
    "r2": (_r2, True),
    "accuracy": (_accuracy, True),
}
_DEFAULT_METRIC = {"regression": "mse", "multiclass": "accuracy", "binary": "accuracy", "custom": None}


# --------------------------------------------------------------------------- history, callbacks
def history_frame(frame):
    """A history DataFrame indexed by its ``epoch`` column (the index is unnamed, so that
    ``sort_values("epoch")``, ``groupby("epoch")`` and ``reset_index()`` stay unambiguous)."""
    if len(frame) and "epoch" in frame:
        frame.index = frame["epoch"].to_numpy()
    return frame


class History(list):
    """Per-epoch records, one dict per completed epoch, in order.

    Keys of each record:

    ``epoch`` (1-based), ``train_loss`` (mean loss over the epoch's batches, weighted by batch
    size; the loss is computed *during* the epoch, while the weights change), ``valid_loss`` and
    ``valid_metric`` (on the validation data with the weights at the end of the epoch; ``None``
    without validation data), ``valid_loss_best`` (True when ``valid_loss`` is lower than the
    loss of the last epoch marked best by more than ``min_delta``; the first epoch is always
    marked; with the default ``min_delta=0`` this is "the lowest so far", with ``min_delta > 0``
    an epoch slightly below the best may stay unmarked; see ``TrainingResult.best_epoch``),
    ``learning_rate`` (of the first parameter group), ``duration`` (seconds, validation
    included).
    """

    def column(self, key: str) -> list[Any]:
        """The values of ``key`` over the epochs, e.g. ``history.column("valid_loss")``."""
        return [record.get(key) for record in self]

    def to_frame(self):
        """The history as a ``pandas.DataFrame`` indexed by epoch."""
        import pandas as pd  # local: pandas is only needed by callers who ask for a frame

        columns = ["epoch", "train_loss", "valid_loss", "valid_metric", "valid_loss_best",
                   "learning_rate", "duration"]
        return history_frame(pd.DataFrame(list(self), columns=columns if not self else None))


class Callback:
    """Base class of training callbacks; override what you need.

    A plain callable ``f(epoch, record, module)`` is accepted as well and used as
    :meth:`on_epoch_end`.
    """

    def on_train_begin(self, module: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Called once before the first epoch (keep ``optimizer`` to change its learning rate)."""

    def on_epoch_end(self, epoch: int, record: dict[str, Any], module: nn.Module) -> bool | None:
        """Called after each completed epoch with its history record; return True to stop."""
        return None

    def on_train_end(self, module: nn.Module, history: History) -> None:
        """Called once after training (after the best weights have been restored)."""


@dataclass
class TrainingResult:
    """What :func:`fit_module` returns.

    Attributes
    ----------
    module : nn.Module
        The trained module (the same object that was passed in, now on ``device``, in eval
        mode, holding the best weights when early stopping was used).
    history : History
        One record per completed epoch.
    n_epochs : int
        Completed epochs (recovered epochs are re-run and counted once).
    stop_reason : str
        ``"max_epochs"``, ``"early_stopping"`` or ``"callback"``.
    best_epoch, best_valid_loss : int or None, float or None
        The last epoch whose validation loss beat the best before it by more than ``min_delta``
        (with the default 0: the epoch with the lowest loss), and that loss (None without
        validation data). Early stopping restores this epoch's weights.
    recoveries : list of dict
        One entry per recovery from a non-finite loss: ``epoch``, ``reason``,
        ``learning_rate_before``, ``learning_rate_after``.
    learning_rate : float
        The final learning rate (lower than the initial one after recoveries).
    fit_time : float
        Wall-clock seconds of the whole call.
    device : torch.device
        Where the module was trained.
    metric_name : str or None
        The name of ``valid_metric`` in the history (``"custom"`` for a callable).
    n_train, n_valid : int
        Rows used for the gradient steps and for validation.
    """

    module: nn.Module
    history: History
    n_epochs: int
    stop_reason: str
    best_epoch: int | None
    best_valid_loss: float | None
    recoveries: list[dict[str, Any]] = field(default_factory=list)
    learning_rate: float = float("nan")
    fit_time: float = 0.0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    metric_name: str | None = None
    n_train: int = 0
    n_valid: int = 0


# --------------------------------------------------------------------------- small helpers
def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None -> CUDA when available, else CPU; a CUDA request without CUDA is an error."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a device; use 'auto', 'cpu' or 'cuda'.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; "
                         "use device='auto' or 'cpu'.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r} was requested but there are only {torch.cuda.device_count()} "
                         "CUDA device(s) (numbered from 0); use device='cuda' or 'auto'.")
    if dev.type == "meta":
        raise ValueError("device='meta' holds no data and cannot train or predict; use 'auto', 'cpu' or "
                         "'cuda'.")
    if dev.type not in ("cpu", "cuda"):  # mps, xpu, ...: refused here if this torch build cannot use it
        try:
            torch.empty(0, device=dev)
        except RuntimeError:
            raise ValueError(f"device={device!r} cannot be used here: this PyTorch build or machine has no "
                             f"working {dev.type!r} backend; use 'auto', 'cpu' or 'cuda'.") from None
    return dev


def make_optimizer(optimizer: str | type[torch.optim.Optimizer] | Callable[..., torch.optim.Optimizer],
                   params: Iterable[torch.nn.Parameter], *, learning_rate: float,
                   weight_decay: float = 0.0, **kwargs: Any) -> torch.optim.Optimizer:
    """Build an optimizer.

    ``optimizer`` is a name in :data:`OPTIMIZERS` (``"sgd"`` uses momentum 0.9), an optimizer
    class, or a factory; classes and factories are called as
    ``optimizer(params, lr=learning_rate, weight_decay=weight_decay, **kwargs)`` (so
    ``functools.partial(torch.optim.SGD, nesterov=True, momentum=0.9)`` works). For the built-in
    names the fused kernel is used where the device supports it, unless ``kwargs`` chooses
    ``fused``/``foreach`` itself.
    """
    clashing = sorted({"lr", "learning_rate", "weight_decay", "params"} & set(kwargs))
    if clashing:
        raise ValueError(f"optimizer options {clashing} are set by the learning_rate= and weight_decay= "
                         "arguments (and the module's parameters); pass them there, not as optimizer options.")
    check_weight_decay(weight_decay)
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("the module has no trainable parameters (none with requires_grad=True).")
    if isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError("pass an optimizer name, class or factory, not an optimizer instance: "
                         "fit_module builds it for the module's parameters.")
    if isinstance(optimizer, str):
        check_optimizer_name(optimizer)
        key = optimizer.lower()
        cls, defaults = OPTIMIZERS[key]
        options = {**defaults, **kwargs}
        try:
            if "fused" not in options and "foreach" not in options:
                if key in _FUSED and all(p.is_floating_point() for p in params):
                    try:
                        return cls(params, lr=learning_rate, weight_decay=weight_decay, fused=True, **options)
                    except RuntimeError:  # device or torch version without a fused kernel
                        pass
                options["foreach"] = True  # multi-tensor kernels: fewer Python-level ops per step
            return cls(params, lr=learning_rate, weight_decay=weight_decay, **options)
        except TypeError as exc:  # an option the optimizer does not have
            where = f"{cls.__module__}.{cls.__name__}"
            raise ValueError(f"optimizer {optimizer!r} ({cls.__name__}) refused the options "
                             f"{sorted(kwargs)}: {exc}; pass only arguments of {where}.") from None
    if callable(optimizer):
        try:
            opt = optimizer(params, lr=learning_rate, weight_decay=weight_decay, **kwargs)
        except TypeError as exc:
            name = getattr(optimizer, "__name__", optimizer)
            raise ValueError(f"the optimizer {name!r} could not be built with the options {sorted(kwargs)} "
                             f"({exc}); it is called as optimizer(params, lr=..., weight_decay=..., "
                             "**optimizer_kwargs).") from None
        if not isinstance(opt, torch.optim.Optimizer):
            raise ValueError(f"the optimizer factory returned {type(opt).__name__}, "
                             "not a torch.optim.Optimizer.")
        return opt
    raise ValueError(f"optimizer must be a name, an optimizer class or a factory, got {optimizer!r}.")


def _to_tensor(a: ArrayLike, name: str) -> torch.Tensor:
    """Any array-like -> a CPU tensor, without copying when possible; clear errors otherwise."""
    if isinstance(a, torch.Tensor):
        return a.detach()
    if isinstance(a, (torch.utils.data.Dataset, torch.utils.data.DataLoader)):
        raise DataError(f"{name} is a {type(a).__name__}: fit_module trains on in-memory arrays, not on a "
                        "Dataset or DataLoader; pass its tensors (e.g. X, y = dataset.tensors for a "
                        "TensorDataset).")
    if hasattr(a, "to_numpy"):  # pandas
        # Nullable columns (Int64, Float64, boolean) holding pd.NA: as NaN, so that the missing
        # values are reported as missing rather than as "non-numeric".
        missing = hasattr(a, "isna") and bool(np.asarray(a.isna()).any())
        try:
            a = a.to_numpy(dtype=np.float64, na_value=np.nan) if missing else a.to_numpy()
        except (TypeError, ValueError):
            a = a.to_numpy()
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{name} could not be read as an array ({exc}); pass a numeric "
                        "numpy array or torch tensor.") from exc
    if arr.dtype == object and arr.ndim == 0 and a is not None:  # an object numpy could not see into
        raise DataError(f"{name} is a {type(a).__name__}, not an array; pass a numpy array, a tensor or a "
                        "DataFrame (a scipy sparse matrix: .toarray()).")
    if arr.dtype == object or arr.dtype.kind in "USV":
        try:
            arr = arr.astype(np.float64)
        except (ValueError, TypeError) as exc:
            raise DataError(f"{name} has non-numeric values (dtype {arr.dtype}); encode them as "
                            "numbers first.") from exc
    if arr.dtype == np.bool_:
        arr = arr.astype(np.float32)
    if not (arr.flags.c_contiguous and arr.flags.writeable):  # e.g. read-only views from pandas
        arr = arr.copy(order="C")
    return torch.from_numpy(arr)


def _is_shape_error(exc: RuntimeError) -> bool:
    """Whether torch refused the shapes it was given ("mat1 and mat2 shapes cannot be multiplied", "The
    size of tensor a ...") -- not out of memory, a device error or a bug of the module's own."""
    return not isinstance(exc, torch.OutOfMemoryError) and ("shape" in str(exc) or "size" in str(exc))


def _input_error(exc: RuntimeError, X: torch.Tensor) -> DataError:
    """The error for a module that fails on X, most often a first layer whose input size is not X's."""
    hint = (f"build it for inputs of that shape (a first layer with in_features={X.shape[-1]})" if X.ndim > 1
            else "X is 1-D, one value per sample: pass X.reshape(-1, 1) for one feature")
    return DataError(f"the module fails on rows of X of shape {tuple(X.shape[1:])}: {' '.join(str(exc).split())}; "
                     f"{hint}.")


def _check_finite(t: torch.Tensor, name: str) -> None:
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).reshape(len(t), -1).any(1).sum()) if t.ndim else 1
        raise DataError(f"{name} contains NaN or infinite values ({bad} rows); remove or impute "
                        "them before training.")


def _prepare_xy(X: ArrayLike, y: ArrayLike, task: str, dtype: torch.dtype, what: str
                ) -> tuple[torch.Tensor, torch.Tensor]:
    Xt = _to_tensor(X, f"X{what}")
    yt = _to_tensor(y, f"y{what}")
    if Xt.ndim == 0 or yt.ndim == 0:
        raise DataError(f"X{what} and y{what} must have one row per sample; got shapes "
                        f"{tuple(Xt.shape)} and {tuple(yt.shape)}.")
    if len(Xt) != len(yt):
        raise DataError(f"X{what} has {len(Xt)} rows but y{what} has {len(yt)}; they must have the "
                        "same number of samples.")
    if len(Xt) == 0:
        raise DataError(f"X{what} and y{what} are empty; at least one sample is needed.")
    Xt = Xt.to(dtype)
    _check_finite(Xt, f"X{what}")
    if task == "multiclass":
        if yt.is_floating_point():
            _check_finite(yt, f"y{what}")
            if not bool((yt == yt.round()).all()):
                raise DataError(f"y{what} must hold integer class indices 0..C-1 for "
                                "loss='cross_entropy'; encode the labels first (e.g. LabelEncoder).")
        if yt.ndim != 1:
            raise DataError(f"y{what} must be 1-D class indices for loss='cross_entropy'; got shape "
                            f"{tuple(yt.shape)}.")
        yt = yt.to(torch.int64)
        if bool((yt < 0).any()):
            raise DataError(f"y{what} has negative class indices; classes must be 0..C-1.")
    elif task in ("regression", "binary"):
        yt = yt.to(dtype)
        _check_finite(yt, f"y{what}")
        if task == "binary" and bool(((yt < 0) | (yt > 1)).any()):
            raise DataError(f"y{what} must be in [0, 1] (labels 0/1) for loss='bce'.")
    else:  # custom loss: keep integer targets integer, floats in the module's dtype
        if yt.is_floating_point():
            yt = yt.to(dtype)
            _check_finite(yt, f"y{what}")
    return Xt, yt


def _align_target(y: torch.Tensor, out_shape: torch.Size, task: str, what: str) -> torch.Tensor:
    """Reshape y once so that the loss sees matching shapes (never broadcast (n,1) against (n,))."""
    if task == "custom":
        return y
    if task == "multiclass":
        if len(out_shape) != 2 or out_shape[1] < 2:
            raise DataError(f"loss='cross_entropy' needs module outputs of shape (n, C) with C >= 2 "
                            f"logits; the module gives {tuple(out_shape)}. For one logit use loss='bce'.")
        n_classes = out_shape[1]
        if int(y.max()) >= n_classes:
            raise DataError(f"y{what} has class index {int(y.max())} but the module has only "
                            f"{n_classes} outputs; build it with out_features = number of classes.")
        return y
    per_sample_out = math.prod(out_shape[1:])
    per_sample_y = math.prod(y.shape[1:])
    if per_sample_out != per_sample_y:
        raise DataError(f"the module gives {per_sample_out} outputs per sample (shape "
                        f"{tuple(out_shape)}) but y{what} has {per_sample_y} (shape {tuple(y.shape)}); "
                        "build the module with out_features equal to the number of targets.")
    return y.reshape((len(y), *out_shape[1:]))


def _seeds(random_state: int | np.random.Generator | np.random.RandomState | None) -> list[int]:
    """Three independent 32-bit seeds (split, shuffle, module RNG) from ``random_state``."""
    if isinstance(random_state, np.random.Generator):
        return [int(s) for s in random_state.integers(0, 2**32, size=3, dtype=np.uint64)]
    if isinstance(random_state, np.random.RandomState):
        return [int(s) for s in random_state.randint(0, 2**31 - 1, size=3)]
    if random_state is not None and not isinstance(random_state, (int, np.integer)):
        raise ValueError(f"random_state must be None, an int or a numpy Generator, got {random_state!r}.")
    if isinstance(random_state, (bool, np.bool_)):
        raise ValueError("random_state must be None, an int or a numpy Generator, not a bool.")
    if random_state is not None and random_state < 0:
        raise ValueError(f"random_state must be a non-negative int, got {random_state!r}.")
    seq = np.random.SeedSequence(None if random_state is None else int(random_state))
    return [int(s) for s in seq.generate_state(3)]


def _split(n: int, fraction: float, y: torch.Tensor, stratify: bool, seed: int
           ) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    if n < 2:
        raise DataError(f"early stopping needs a validation split but there are only {n} samples; "
                        "pass validation_data or set early_stopping=False.")
    if n - math.ceil(fraction * n) < 1:  # scikit-learn's rounding: the validation part is rounded up
        raise DataError(f"early stopping holds out validation_fraction={fraction} of the {n} samples, "
                        "which leaves no rows to train on; lower validation_fraction, pass "
                        "validation_data or set early_stopping=False.")
    index = np.arange(n)
    if stratify:
        try:
            train, valid = train_test_split(index, test_size=fraction, random_state=seed,
                                            stratify=y.cpu().numpy())
            return np.sort(train), np.sort(valid)
        except ValueError:  # a class with one member, or fewer validation rows than classes
            pass
    train, valid = train_test_split(index, test_size=fraction, random_state=seed)
    return np.sort(train), np.sort(valid)


def _snapshot(module: nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """Detached copies of the module's (and optionally the optimizer's) state."""
    snap: dict[str, Any] = {"module": {k: v.detach().clone() for k, v in module.state_dict().items()}}
    if optimizer is not None:
        snap["optimizer"] = _clone_optimizer_state(optimizer.state_dict())
    return snap


def _clone_optimizer_state(state: dict[str, Any]) -> dict[str, Any]:
    # Optimizer.state_dict() returns references to the live moment buffers, and load_state_dict
    # keeps references to what it is given (same device and dtype): copy in both directions.
    return {
        "state": {i: {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in s.items()}
                  for i, s in state["state"].items()},
        "param_groups": [dict(g) for g in state["param_groups"]],
    }


def _restore(snap: dict[str, Any], module: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
    module.load_state_dict(snap["module"])  # copies into the parameters
    if optimizer is not None and "optimizer" in snap:
        # a fresh copy, so that the snapshot survives for a second recovery of the same epoch
        optimizer.load_state_dict(_clone_optimizer_state(snap["optimizer"]))


def _batched_forward(module: nn.Module, X: torch.Tensor, batch_size: int, device: torch.device
                     ) -> torch.Tensor:
    outs = [module(X[i:i + batch_size].to(device, non_blocking=True)) for i in range(0, len(X), batch_size)]
    return outs[0] if len(outs) == 1 else torch.cat(outs)


# --------------------------------------------------------------------------- public API
def predict_module(module: nn.Module, X: ArrayLike, *, batch_size: int = 4096,
                   device: str | torch.device | None = None) -> torch.Tensor:
    """Outputs of ``module`` on ``X`` (n, ...) computed in batches, in eval mode, without grad.

    ``X`` is converted to the module's floating dtype and moved to ``device`` (default: where the
    module's parameters are) batch by batch, so a large CPU array never has to fit on the GPU.
    Returns the stacked outputs, shape (n, ...), on that device. The module's train/eval mode
    is restored afterwards.
    """
    if not (is_integer(batch_size) and batch_size >= 1):
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}.")
    param = next(module.parameters(), None)
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.get_default_dtype()
    dev = resolve_device(device) if device is not None else (param.device if param is not None
                                                               else torch.device("cpu"))
    Xt = _to_tensor(X, "X").to(dtype)
    if Xt.ndim == 0 or len(Xt) == 0:
        raise DataError(f"X must have at least one row; got shape {tuple(Xt.shape)}.")
    was_training = module.training
    module.train(False)
    try:
        with torch.no_grad():
            return _batched_forward(module, Xt, batch_size, dev)
    except RuntimeError as exc:
        if not _is_shape_error(exc):
            raise
        raise _input_error(exc, Xt) from exc
    finally:
        module.train(was_training)


def fit_module(
    module: nn.Module,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str | LossFn = "mse",
    optimizer: str | type[torch.optim.Optimizer] | Callable[..., torch.optim.Optimizer] = "adam",
    learning_rate: float = 1e-3,
    weight_decay: float = 0.0,
    optimizer_kwargs: dict[str, Any] | None = None,
    batch_size: int = 64,
    max_epochs: int = 200,
    shuffle: bool = True,
    early_stopping: bool = False,
    validation_fraction: float = 0.1,
    validation_data: tuple[ArrayLike, ArrayLike] | None = None,
    patience: int = 10,
    min_delta: float = 0.0,
    metric: str | MetricFn | None | bool = None,
    clip_grad_norm: float | None = None,
    max_recoveries: int = 3,
    recovery_factor: float = 0.1,
    eval_batch_size: int | None = None,
    random_state: int | np.random.Generator | None = None,
    device: str | torch.device | None = "cpu",
    verbose: bool = False,
    callbacks: Sequence[Callback | Callable[..., Any]] = (),
    num_threads: int | str | None = "auto",
) -> TrainingResult:
    """Train ``module`` on in-memory data by mini-batch gradient descent.

    Parameters
    ----------
    module : nn.Module
        Maps a batch ``X[i:j]`` of shape (b, ...) to outputs (b, m) or (b,). Moved to ``device``
        and trained in place.
    X : array-like or tensor, shape (n, ...)
        Inputs; converted to the module's floating dtype (float32 for a default module).
    y : array-like or tensor, shape (n,) or (n, m)
        Targets. Regression losses: real values, reshaped to the module's output shape (one
        output per target). ``"cross_entropy"``: integer class indices 0..C-1 and C output
        logits. ``"bce"``: labels in [0, 1] and one output logit.
    loss : {"mse", "mae", "huber", "cross_entropy", "bce"} or callable
        A callable is ``loss(output, target) -> 0-d tensor``, the *mean* over the batch; ``y``
        is then passed as given (floats in the module's dtype, integers as int64). A loss that
        torch warns would broadcast them (``F.mse_loss`` of ``(n, 1)`` outputs against an
        ``(n,)`` target) is refused with a DataError: pass ``y`` shaped like the output.
    optimizer, learning_rate, weight_decay, optimizer_kwargs
        See :func:`make_optimizer` (``"adam"``, ``"adamw"``, ``"rmsprop"``, ``"sgd"`` with momentum
        0.9, or a class/factory). ``weight_decay`` is the optimizer's L2/decoupled decay.
    batch_size : int
        Rows per gradient step; the last batch of an epoch may be smaller.
    max_epochs : int
        Upper bound on the number of epochs (passes over the training rows).
    shuffle : bool
        Draw a new order of the rows every epoch (reproducible from ``random_state``).
    early_stopping : bool
        Hold out ``validation_fraction`` of the rows (stratified for classification when
        possible), or use ``validation_data``; stop when the validation loss has not improved by
        more than ``min_delta`` for ``patience`` epochs; restore the weights of the best epoch.
    validation_data : (X_valid, y_valid), optional
        Evaluated after every epoch (also when ``early_stopping`` is False, for the history).
    metric : str, callable, None or False
        Validation metric in the history (:data:`METRICS`: ``"mse"``, ``"rmse"``, ``"mae"``,
        ``"r2"``, ``"accuracy"``, or ``metric(output, target)``). None: ``"mse"`` for regression,
        ``"accuracy"`` for classification, nothing for a custom loss. False: no metric.
    clip_grad_norm : float, optional
        Clip the global gradient 2-norm to this value before each step.
    max_recoveries, recovery_factor
        On a non-finite loss or parameter, restore the last good epoch's model and optimizer
        state and multiply the learning rate by ``recovery_factor``, at most ``max_recoveries``
        times per call; then raise :class:`~taskneurons.errors.NumericalError`. Recovery keeps a
        copy of the model and optimizer state of the last good epoch (refreshed once per epoch);
        ``max_recoveries=0`` saves that memory and time and raises at the first non-finite value.
    eval_batch_size : int, optional
        Batch size of validation and of the final check (default ``max(batch_size, 4096)``).
    random_state : int, numpy Generator or None
        Seeds the validation split, the shuffling and the module's own randomness (dropout);
        the same value gives the same weights and history on the same machine.
    device : "cpu", "cuda", "auto", torch.device or None
        Where to train; ``"auto"``/None picks CUDA when available.
    verbose : bool
        Show a per-epoch progress bar with the train and validation loss.
    callbacks : sequence of Callback or callables ``f(epoch, record, module)``
        Called after each epoch; a true return value stops training.
    num_threads : int, "auto" or None
        ``torch.set_num_threads`` for the duration of the call (restored afterwards). ``"auto"``:
        one thread when training on the CPU with little work per step (``batch_size`` x number of
        parameters <= 2**22, e.g. an MLP 8-64-64-1 up to batch 800), where more threads gain
        nothing and, on cores shared with other busy processes, make every step wait for a
        descheduled thread (measured 4-14x slower on 2 shared cores); otherwise torch's setting.
        None always leaves torch's setting alone.

    Returns
    -------
    TrainingResult
        The module (in eval mode), the history and what happened (see :class:`TrainingResult`).

    Raises
    ------
    DataError
        Mismatched lengths, empty data, NaN/inf in X or y, targets that do not fit the module's
        outputs or the loss.
    NumericalError
        The loss or the predictions stayed non-finite after ``max_recoveries`` recoveries.
    ValueError
        An invalid parameter value.
    """
    t_start = time.perf_counter()
    _check_params(batch_size=batch_size, max_epochs=max_epochs, learning_rate=learning_rate,
                  validation_fraction=validation_fraction, patience=patience, min_delta=min_delta,
                  max_recoveries=max_recoveries, recovery_factor=recovery_factor,
                  eval_batch_size=eval_batch_size, clip_grad_norm=clip_grad_norm)
    for name, flag in (("shuffle", shuffle), ("early_stopping", early_stopping)):
        # a text such as "no" or "False" is true to Python: it would silently switch the option on
        if not (isinstance(flag, (bool, np.bool_)) or (is_integer(flag) and flag in (0, 1))):
            raise ValueError(f"{name} must be True or False, got {flag!r}.")
    if not (num_threads is None or num_threads == "auto" or (is_integer(num_threads) and num_threads >= 1)):
        raise ValueError(f"num_threads must be 'auto', None or an integer >= 1, got {num_threads!r}.")
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be a torch.nn.Module, got {type(module).__name__}.")

    # ---- loss, task, metric
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; use one of {sorted(LOSSES)} or a callable.")
        loss_fn, task = LOSSES[loss]
    elif callable(loss):
        loss_fn, task = loss, "custom"
    else:
        raise ValueError(f"loss must be a name or a callable, got {loss!r}.")
    if metric is False:
        metric_name, metric_fn = None, None
    elif metric is None:
        metric_name = _DEFAULT_METRIC[task]
        metric_fn = METRICS[metric_name][0] if metric_name else None
    elif isinstance(metric, str):
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; use one of {sorted(METRICS)} or a callable.")
        if task in ("multiclass", "binary") and metric != "accuracy":
            raise ValueError(f"metric {metric!r} compares outputs with real-valued targets; with "
                             f"loss={loss!r} use 'accuracy' or a callable.")
        if task == "regression" and metric == "accuracy":
            raise ValueError(f"metric 'accuracy' reads the outputs as classification logits; with "
                             f"loss={loss!r} use 'mse', 'rmse', 'mae', 'r2' or a callable (or train "
                             "a classifier with loss='bce' or 'cross_entropy').")
        metric_name, metric_fn = metric, METRICS[metric][0]
    elif callable(metric):
        metric_name, metric_fn = "custom", metric
    else:
        raise ValueError(f"metric must be a name, a callable, None or False; got {metric!r}.")

    # ---- device, dtype, data
    dev = resolve_device(device)
    module.to(dev)
    param = next(module.parameters(), None)
    if param is None:
        raise ValueError("the module has no parameters to train.")
    dtype = param.dtype if param.is_floating_point() else torch.get_default_dtype()
    X_all, y_all = _prepare_xy(X, y, task, dtype, "")
    seed_split, seed_shuffle, seed_module = _seeds(random_state)

    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("validation_data must be a pair (X_valid, y_valid).")
        X_tr, y_tr = X_all, y_all
        X_va, y_va = _prepare_xy(validation_data[0], validation_data[1], task, dtype, "_valid")
        if X_va.shape[1:] != X_tr.shape[1:]:
            raise DataError(f"X_valid has sample shape {tuple(X_va.shape[1:])} but X has "
                            f"{tuple(X_tr.shape[1:])}; they must have the same features.")
    elif early_stopping:
        train_idx, valid_idx = _split(len(X_all), validation_fraction, y_all,
                                      task in ("multiclass", "binary"), seed_split)
        tr, va = torch.from_numpy(train_idx), torch.from_numpy(valid_idx)
        X_tr, y_tr, X_va, y_va = X_all[tr], y_all[tr], X_all[va], y_all[va]
    else:
        X_tr, y_tr, X_va, y_va = X_all, y_all, None, None
    has_valid = X_va is not None

    # Data move to the device once; non_blocking lets the copy overlap on CUDA.
    X_tr = X_tr.to(dev, non_blocking=True)
    y_tr = y_tr.to(dev, non_blocking=True)
    if has_valid:
        X_va = X_va.to(dev, non_blocking=True)
        y_va = y_va.to(dev, non_blocking=True)
    n_train = len(X_tr)
    eval_bs = eval_batch_size or max(batch_size, 4096)

    # ---- probe the output shape once: fixes y's shape for the loss and gives early, clear errors
    module.train(False)
    with torch.no_grad():
        try:
            out_probe = module(X_tr[:2])
        except RuntimeError as exc:
            if not _is_shape_error(exc):
                raise
            raise _input_error(exc, X_tr) from exc
    if not isinstance(out_probe, torch.Tensor):
        raise ValueError(f"the module must return a tensor, it returned {type(out_probe).__name__}.")
    y_tr = _align_target(y_tr, out_probe.shape, task, "")
    if has_valid:
        y_va = _align_target(y_va, out_probe.shape, task, "_valid")
    if task == "custom":
        with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            probe_loss = loss_fn(out_probe, y_tr[:2])
        for warning in caught:
            if "target size" in str(warning.message) and "input size" in str(warning.message):
                # torch's losses broadcast (n, 1) outputs against (n,) targets into an (n, n)
                # loss with only this warning: training would fit the wrong thing.
                raise DataError(f"the callable loss got outputs of shape {tuple(out_probe.shape)} and targets of "
                                f"shape {tuple(y_tr[:2].shape)} and broadcast them ({warning.message}); pass y "
                                "shaped like the module's output (e.g. y.reshape(-1, 1)) or reshape inside the loss")
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        if not (isinstance(probe_loss, torch.Tensor) and probe_loss.ndim == 0):
            raise ValueError("a callable loss must return a 0-d tensor (the batch mean), got "
                             f"{type(probe_loss).__name__} of shape {getattr(probe_loss, 'shape', None)}.")

    opt = make_optimizer(optimizer, module.parameters(), learning_rate=learning_rate,
                         weight_decay=weight_decay, **(optimizer_kwargs or {}))
    params = [p for group in opt.param_groups for p in group["params"]]
    if isinstance(callbacks, (Callback, type)) or callable(callbacks):
        callbacks = [callbacks]  # one callback given on its own
    try:
        callbacks = list(callbacks)  # once: a generator would be used up by the check below
    except TypeError:
        raise ValueError(f"callbacks must be a Callback, a callable or a sequence of them, got "
                         f"{callbacks!r}.") from None
    if any(isinstance(cb, type) for cb in callbacks):
        raise ValueError("callbacks must be Callback instances or callables, not classes: write "
                         "callbacks=[MyCallback()] rather than [MyCallback].")
    callbacks = [cb if hasattr(cb, "on_epoch_end") else _FunctionCallback(cb) for cb in callbacks]
    for cb in callbacks:
        if hasattr(cb, "on_train_begin"):
            cb.on_train_begin(module, opt)

    # Batch sizes as weights, so that the epoch's train loss is the mean over rows, computed on
    # the device from the stacked batch losses without a per-batch sync.
    starts = list(range(0, n_train, batch_size))
    weights = torch.tensor([min(batch_size, n_train - s) for s in starts], dtype=dtype, device=dev) / n_train

    history = History()
    recoveries: list[dict[str, Any]] = []
    stop_reason = "max_epochs"
    best_loss, best_epoch, best_state, wait = math.inf, None, None, 0
    good = _snapshot(module, opt) if max_recoveries > 0 else None
    shuffle_gen = torch.Generator().manual_seed(seed_shuffle)
    # Fork (and restore afterwards) the global RNG so that dropout & co. are reproducible without
    # touching the caller's RNG state; with random_state=None there is nothing to reproduce.
    fork_devices = [dev.index if dev.index is not None else torch.cuda.current_device()] \
        if dev.type == "cuda" else []
    bar = progress_bar(enabled=verbose, desc="training", total=max_epochs, unit="epoch")
    threads_before = torch.get_num_threads()
    if num_threads == "auto":
        n_params = sum(p.numel() for p in params)
        num_threads = 1 if dev.type == "cpu" and batch_size * n_params <= _SMALL_STEP else None
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    try:
        with torch.random.fork_rng(devices=fork_devices, enabled=random_state is not None):
            if random_state is not None:
                torch.manual_seed(seed_module)
            epoch = 0
            while epoch < max_epochs:
                t_epoch = time.perf_counter()
                module.train()
                if shuffle:
                    perm = torch.randperm(n_train, generator=shuffle_gen).to(dev, non_blocking=True)
                    Xe, ye = X_tr[perm], y_tr[perm]  # one gather; batches below are views
                else:
                    Xe, ye = X_tr, y_tr
                batch_losses = []
                for s in starts:
                    opt.zero_grad(set_to_none=True)
                    batch_loss = loss_fn(module(Xe[s:s + batch_size]), ye[s:s + batch_size])
                    batch_loss.backward()
                    if clip_grad_norm is not None:
                        nn.utils.clip_grad_norm_(params, clip_grad_norm)
                    opt.step()
                    batch_losses.append(batch_loss.detach())

                # Everything read back in one sync: train loss, parameter health, validation. Health
                # is checked per tensor: a sum of finite float16 parameters can overflow to inf.
                values = [torch.stack(batch_losses).to(dtype) @ weights,  # a custom loss may return float64
                          torch.stack([torch.isfinite(p.detach()).all() for p in params]).all()]
                if has_valid:
                    module.train(False)
                    with torch.no_grad():
                        out_va = _batched_forward(module, X_va, eval_bs, dev)
                        values.append(loss_fn(out_va, y_va).detach())
                        if metric_fn is not None:
                            m = torch.as_tensor(metric_fn(out_va, y_va), dtype=dtype, device=dev)
                            if m.numel() != 1:
                                raise ValueError(f"the metric must return one number, it returned shape "
                                                 f"{tuple(m.shape)}.")
                            values.append(m.reshape(()))
                values = torch.stack([v.to(dtype) for v in values]).tolist()
                train_loss, params_finite = values[0], values[1] == 1
                valid_loss = values[2] if has_valid else None
                valid_metric = values[3] if has_valid and metric_fn is not None else None

                bad = _first_non_finite(train_loss=train_loss)
                if bad is None and not params_finite:
                    bad = "parameters = nan or inf"
                if bad is None:
                    bad = _first_non_finite(valid_loss=valid_loss)
                if bad is not None:
                    lr_before = opt.param_groups[0]["lr"]
                    if len(recoveries) >= max_recoveries or good is None:
                        raise NumericalError(_failure_message(bad, epoch + 1, len(recoveries),
                                                              learning_rate, lr_before))
                    # _restore brings back the snapshot's learning rates too: lower the current
                    # ones instead, so that repeated recoveries keep lowering them (and a rate a
                    # callback set since the snapshot is not lost).
                    rates = [group["lr"] for group in opt.param_groups]
                    _restore(good, module, opt)
                    for group, rate in zip(opt.param_groups, rates, strict=True):
                        group["lr"] = rate * recovery_factor
                    recoveries.append({"epoch": epoch + 1, "reason": bad,
                                       "learning_rate_before": lr_before,
                                       "learning_rate_after": opt.param_groups[0]["lr"]})
                    continue  # re-run this epoch from the last good state

                epoch += 1
                is_best = False
                if has_valid and valid_loss < best_loss - min_delta:
                    best_loss, best_epoch, wait, is_best = valid_loss, epoch, 0, True
                elif has_valid:
                    wait += 1
                if max_recoveries > 0:
                    good = _snapshot(module, opt)
                if early_stopping and is_best:
                    # the model part of the good snapshot is a private copy: share it, don't re-clone
                    best_state = good["module"] if good is not None else _snapshot(module, None)["module"]
                record = {"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss,
                          "valid_metric": valid_metric, "valid_loss_best": is_best if has_valid else None,
                          "learning_rate": opt.param_groups[0]["lr"],
                          "duration": time.perf_counter() - t_epoch}
                history.append(record)
                bar.update(1)
                bar.set_postfix(loss=f"{train_loss:.4g}",
                                **({"valid": f"{valid_loss:.4g}"} if has_valid else {}))

                stop = False
                for cb in callbacks:
                    stop = bool(cb.on_epoch_end(epoch, record, module)) or stop
                if stop:
                    stop_reason = "callback"
                    break
                if early_stopping and wait >= patience:
                    stop_reason = "early_stopping"
                    break
        if early_stopping and best_state is not None:
            module.load_state_dict(best_state)
        module.train(False)
        _check_predictions(module, X_tr, eval_bs, dev)
    finally:
        bar.close()
        if num_threads is not None:
            torch.set_num_threads(threads_before)

    for cb in callbacks:
        if hasattr(cb, "on_train_end"):
            cb.on_train_end(module, history)

    return TrainingResult(
        module=module, history=history, n_epochs=len(history), stop_reason=stop_reason,
        best_epoch=best_epoch, best_valid_loss=best_loss if best_epoch is not None else None,
        recoveries=recoveries, learning_rate=opt.param_groups[0]["lr"],
        fit_time=time.perf_counter() - t_start, device=dev, metric_name=metric_name,
        n_train=n_train, n_valid=len(X_va) if has_valid else 0,
    )


# --------------------------------------------------------------------------- internals
class _FunctionCallback(Callback):
    def __init__(self, fn: Callable[..., Any]):
        if not callable(fn):
            raise ValueError(f"a callback must be a Callback or a callable, got {fn!r}.")
        self.fn = fn

    def on_epoch_end(self, epoch: int, record: dict[str, Any], module: nn.Module) -> bool | None:
        return self.fn(epoch, record, module)


def check_learning_rate(learning_rate: Any) -> None:
    """Refuse a learning rate that is not a positive, finite real number (booleans and text included)."""
    if not (is_real(learning_rate) and 0 < learning_rate < math.inf):
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}.")


def check_weight_decay(weight_decay: Any) -> None:
    """Refuse a weight decay that is not a finite real number >= 0 (booleans and text included)."""
    if not (is_real(weight_decay) and 0 <= weight_decay < math.inf):
        raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}.")


def check_optimizer_name(optimizer: str) -> None:
    """Refuse an optimizer name that is not in :data:`OPTIMIZERS` (any case)."""
    if optimizer.lower() not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; use one of {sorted(OPTIMIZERS)}, "
                         "a torch.optim.Optimizer class or a factory.")


def check_early_stopping(validation_fraction: Any, patience: Any) -> None:
    """Refuse a validation fraction outside (0, 1) and a patience below 1 (text and booleans included)."""
    if not (is_real(validation_fraction) and 0 < validation_fraction < 1):
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}.")
    if not (is_integer(patience) and patience >= 1):
        raise ValueError(f"patience must be an integer >= 1, got {patience!r}.")


def _check_params(*, batch_size, max_epochs, learning_rate, validation_fraction, patience, min_delta,
                  max_recoveries, recovery_factor, eval_batch_size, clip_grad_norm) -> None:
    def need(ok: bool, text: str) -> None:
        if not ok:
            raise ValueError(text)

    need(is_integer(batch_size) and batch_size >= 1, f"batch_size must be an integer >= 1, got {batch_size!r}.")
    need(is_integer(max_epochs) and max_epochs >= 1, f"max_epochs must be an integer >= 1, got {max_epochs!r}.")
    check_learning_rate(learning_rate)
    check_early_stopping(validation_fraction, patience)
    need(is_real(min_delta) and 0 <= min_delta < math.inf,
         f"min_delta must be a number >= 0, got {min_delta!r}.")
    need(is_integer(max_recoveries) and max_recoveries >= 0,
         f"max_recoveries must be an integer >= 0, got {max_recoveries!r}.")
    need(is_real(recovery_factor) and 0 < recovery_factor < 1,
         f"recovery_factor must be a number in (0, 1), got {recovery_factor!r}.")
    need(eval_batch_size is None or (is_integer(eval_batch_size) and eval_batch_size >= 1),
         f"eval_batch_size must be None or an integer >= 1, got {eval_batch_size!r}.")
    need(clip_grad_norm is None or (is_real(clip_grad_norm) and clip_grad_norm > 0),
         f"clip_grad_norm must be None or a number > 0, got {clip_grad_norm!r}.")


def _first_non_finite(**values: float | None) -> str | None:
    for name, value in values.items():
        if value is not None and not math.isfinite(value):
            return f"{name.replace('_', ' ')} = {value}"
    return None


def _failure_message(bad: str, epoch: int, n_recoveries: int, lr_initial: float, lr_now: float) -> str:
    tried = (f"after {n_recoveries} recoveries (learning rate lowered from {lr_initial:g} to {lr_now:g})"
             if n_recoveries else "and recovery is disabled (max_recoveries=0)")
    return (f"training diverged: non-finite value at epoch {epoch} ({bad}) {tried}. "
            "Scale X and y (e.g. StandardScaler), lower learning_rate, set clip_grad_norm, or check "
            "the module for operations that overflow (high powers, exp).")


def _check_predictions(module: nn.Module, X: torch.Tensor, batch_size: int, dev: torch.device) -> None:
    """Refuse to hand back a model whose predictions on its own training rows are not finite."""
    with torch.no_grad():
        n_bad = 0
        for i in range(0, len(X), batch_size):
            out = module(X[i:i + batch_size])
            n_bad += (~torch.isfinite(out)).reshape(len(out), -1).any(1).sum()
        n_bad = int(n_bad)
    if n_bad:
        raise NumericalError(f"the trained model predicts NaN or inf on {n_bad} of {len(X)} training rows "
                             "(e.g. batch-norm statistics or overflow in eval mode). Scale X and y, lower "
                             "learning_rate or set clip_grad_norm, and train again.")
