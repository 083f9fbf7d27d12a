"""Model files: safetensors tensors plus JSON metadata, never pickle.

A ``.tn`` file is a `safetensors <https://github.com/huggingface/safetensors>`_ file: an
8-byte header length, a JSON header, raw tensor bytes. Loading parses JSON and copies bytes —
there is no code path that unpickles or imports anything named in the file. The header's
metadata carries:

* ``format`` = ``"taskneurons.model"`` and an integer ``version`` (a newer version is refused
  with a message asking to upgrade);
* the estimator class (one of a fixed whitelist), its JSON-safe parameters and fitted state
  (formulas as :meth:`Formula.to_dict` records, re-read by the safe formula parser);
* ``tensors_sha256``: a SHA-256 over every tensor's name, dtype, shape and bytes, and
  ``metadata_sha256``: a SHA-256 over the canonical JSON of the rest of the metadata. Both are
  checked on load, so a truncated, damaged or edited file is refused instead of silently
  predicting garbage. They are integrity checks, not signatures: whoever can write a file can
  recompute them, so every value is validated as well (a whitelist of estimator classes and
  dtypes, formulas through the safe parser, declared shapes against the tensors) and nothing
  in a file can make loading run code.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ModelFileError

__all__ = ["save_estimator", "load", "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "taskneurons.model"
FORMAT_VERSION = 1
_METADATA_KEY = "taskneurons"
_MAX_HEADER_BYTES = 64 * 1024 * 1024
_CHECKSUM_KEYS = ("tensors_sha256", "metadata_sha256")
#: dtypes a model's network may have, by name (never looked up with getattr on the torch module).
_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
           "float64": torch.float64}


def _estimator_classes() -> dict[str, type]:
    from .estimators import TaskNeuronClassifier, TaskNeuronRegressor

    return {"TaskNeuronRegressor": TaskNeuronRegressor, "TaskNeuronClassifier": TaskNeuronClassifier}


def _tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        # reshape(-1): a 0-d tensor cannot be viewed as bytes directly
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _metadata_digest(meta: dict[str, Any]) -> str:
    """SHA-256 of the metadata without its checksums, as canonical JSON (sorted keys, no spaces)."""
    body = {k: v for k, v in meta.items() if k not in _CHECKSUM_KEYS}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _refuse_constant(name: str) -> Any:
    # json.loads accepts NaN/Infinity, which save() never writes (allow_nan=False).
    raise ValueError(f"non-standard JSON constant {name}")


def _parse_json(text: str | bytes) -> Any:
    """Strict JSON; ValueError (also for over-long integers) or RecursionError (deep nesting) on bad input."""
    return json.loads(text, parse_constant=_refuse_constant)


def _json_param(value: Any) -> Any:
    """Parameters as JSON; objects that are not plain data are kept as a marked repr."""
    from .formula import Formula

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else {"__repr__": repr(value)}
    if isinstance(value, (list, tuple)):
        return [_json_param(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _json_param(v) for k, v in value.items()}
    if isinstance(value, Formula):
        return str(value)
    if hasattr(value, "get_params") and type(value).__name__ == "VSR":
        return {"__vsr__": _json_param(value.get_params(deep=False))}
    return {"__repr__": repr(value)}


def _labels_to_json(classes: np.ndarray) -> dict[str, Any]:
    kind = classes.dtype.kind
    if kind in "iu":
        return {"kind": "int", "values": [int(c) for c in classes]}
    if kind == "b":
        return {"kind": "bool", "values": [bool(c) for c in classes]}
    if kind == "f":
        return {"kind": "float", "values": [float(c) for c in classes]}
    if all(isinstance(c, str) for c in classes):
        return {"kind": "str", "values": [str(c) for c in classes]}
    raise ModelFileError(f"cannot save class labels of type {classes.dtype}; use int, float, bool or str labels")


def _labels_from_json(record: dict[str, Any]) -> np.ndarray:
    kinds = {"int": np.int64, "bool": bool, "float": np.float64, "str": object}
    if record.get("kind") not in kinds:
        raise ModelFileError(f"unknown label kind {record.get('kind')!r} in the model file")
    return np.asarray(record["values"], dtype=kinds[record["kind"]])


def save_estimator(estimator, path: str | os.PathLike) -> None:
    """Write a fitted TaskNeuronRegressor/Classifier to ``path``."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file
    from sklearn.utils.validation import check_is_fitted

    name = type(estimator).__name__
    if name not in _estimator_classes():
        raise ModelFileError(f"save() supports TaskNeuronRegressor and TaskNeuronClassifier, not {name}")
    check_is_fitted(estimator, "network_")
    # The network as fitted, not the current parameters: set_params() after fit changes neither
    # the fitted network nor its predictions (scikit-learn's convention), so neither may it change
    # the network load() builds. Models fitted before this attribute existed: the parameter.
    activation = getattr(estimator, "_network_activation", estimator.activation)
    if not isinstance(activation, str):
        # A module or class cannot be stored as data; loading would silently rebuild ReLU.
        from .nn.mlp import ACTIVATIONS

        raise ModelFileError(f"activation={activation!r} cannot be saved in a model file: give the "
                             f"activation by name ({', '.join(ACTIVATIONS)}) to save the model, or pickle it")
    path, tmp = _check_destination(path)
    tensors: dict[str, torch.Tensor] = {
        f"network/{k}": v.detach().cpu().contiguous() for k, v in estimator.network_.state_dict().items()
    }
    encoder_meta, encoder_arrays = estimator.encoder_.get_state()
    tensors.update({f"encoder/{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in encoder_arrays.items()})
    fitted: dict[str, Any] = {
        "formula": estimator.formula_.to_dict(),
        "layer_formulas": [f.to_dict() for f in estimator.layer_formulas_],
        "hidden_layer_sizes": [int(h) for h in estimator.hidden_layer_sizes_],
        "linear_inputs": [int(j) for j in getattr(estimator, "linear_inputs_", ())],
        "n_features_in": int(estimator.n_features_in_),
        "feature_names_in": [str(c) for c in estimator.feature_names_in_]
        if hasattr(estimator, "feature_names_in_") else None,
        "encoder": encoder_meta,
        "n_parameters": int(estimator.n_parameters_),
        "fit_time": float(estimator.fit_time_),
        "n_epochs": int(estimator.n_epochs_),
        "linear_stage_kept": getattr(estimator, "linear_stage_kept_", None),
        "term_weights": estimator.term_weights_,
        "term_weights_valid_loss": estimator.term_weights_valid_loss_,
        "history": [{k: None if v != v else v for k, v in record.items()}  # NaN -> null; floats exact (repr)
                    for record in estimator.history_.to_dict(orient="records")],
        "dtype": str(next(estimator.network_.parameters()).dtype).replace("torch.", ""),
        "activation": activation,
        "basis": str(estimator.network_.basis),
    }
    if hasattr(estimator, "classes_"):
        fitted["classes"] = _labels_to_json(np.asarray(estimator.classes_))
    if hasattr(estimator, "target_scaler_"):
        target_meta, target_arrays = estimator.target_scaler_.get_state()
        fitted["target_scaler"] = target_meta
        fitted["n_outputs"] = int(estimator.n_outputs_)
        fitted["single_output"] = bool(estimator._single_output)
        tensors.update({f"target/{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in target_arrays.items()})
    from . import __version__

    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "library_version": __version__,
        "estimator": name,
        "params": {k: _json_param(v) for k, v in estimator.get_params(deep=False).items()},
        "fitted": fitted,
        "tensors_sha256": _tensors_digest(tensors),
    }
    meta = json.loads(json.dumps(meta, allow_nan=False))  # digest exactly what load() will read back
    meta["metadata_sha256"] = _metadata_digest(meta)
    try:
        save_file(tensors, str(tmp), metadata={_METADATA_KEY: json.dumps(meta, allow_nan=False)})
        os.replace(tmp, path)  # never leave a half-written model under the final name
    except (OSError, SafetensorError) as exc:  # e.g. the disk is full, or the folder went away meanwhile
        if tmp.is_file():
            tmp.unlink()
        raise ModelFileError(f"cannot write the model file {path}: {exc}") from None


def _check_destination(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(path, the temporary file written first)``; refuses a destination save() cannot write,
    before writing anything (no stray .tmp file)."""
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory; pass a file path for the model, e.g. {path / 'model.tn'}")
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ModelFileError(f"cannot save the model to {path}: the folder {folder} {what}; create it first "
                             "or choose another path")
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists() and not tmp.is_file():  # save() writes there first; a folder in the way is not ours to remove
        raise ModelFileError(f"cannot save the model to {path}: {tmp}, where it is written first, is a folder or "
                             "special file; remove it or choose another path")
    return path, tmp


def _read_header(path: Path) -> dict[str, Any]:
    """Parse the safetensors JSON header ourselves: cheap, strict, and it imports nothing."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ModelFileError(f"{path} is not a taskneurons model file (too short)")
        header_len = int.from_bytes(prefix, "little")
        if header_len <= 0 or header_len > min(_MAX_HEADER_BYTES, size - 8):
            raise ModelFileError(f"{path} is not a taskneurons model file (no safetensors header); "
                                 "model files are written by estimator.save()")
        raw = handle.read(header_len)
    try:
        header = _parse_json(raw)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ModelFileError(f"{path} is not a taskneurons model file (unreadable header)") from None
    if not isinstance(header, dict) or not isinstance(header.get("__metadata__", {}), dict):
        raise ModelFileError(f"{path} is not a taskneurons model file (unexpected header)")
    return header


def load(path: str | os.PathLike):
    """Load a model written by ``estimator.save(path)``.

    Raises
    ------
    ModelFileError
        The file is missing, not a taskneurons model, damaged (checksum mismatch, truncated),
        or was written by a newer format version.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory, not a model file; pass the path given to estimator.save()")
    if not path.is_file():
        raise ModelFileError(f"no model file at {path}; pass the path given to estimator.save()")
    header = _read_header(path)
    text = header.get("__metadata__", {}).get(_METADATA_KEY)
    if not isinstance(text, str):
        raise ModelFileError(f"{path} is a safetensors file but not a taskneurons model (no taskneurons metadata)")
    try:
        meta = _parse_json(text)
    except (ValueError, RecursionError):
        raise ModelFileError(f"{path}: the taskneurons metadata is damaged (not JSON)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ModelFileError(f"{path} is not a taskneurons model file (format {found!r})")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{path}: invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path} was written by a newer taskneurons (model format {version}, this "
                             f"version reads up to {FORMAT_VERSION}); upgrade taskneurons to load it")
    try:
        digest = _metadata_digest(meta)
    except (ValueError, RecursionError):
        digest = None
    if digest is None or digest != meta.get("metadata_sha256"):
        raise ModelFileError(f"{path}: metadata checksum mismatch; the model description was modified or "
                             "damaged (or the file was written by an older development version: save it again)")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: the tensor data are damaged or truncated ({exc})") from None
    if _tensors_digest(tensors) != meta.get("tensors_sha256"):
        raise ModelFileError(f"{path}: tensor checksum mismatch; the file was modified or damaged")
    try:
        return _rebuild(meta, tensors)
    except ModelFileError as exc:  # say which file, as every other message here does
        raise ModelFileError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError, OverflowError,
            RecursionError) as exc:  # malformed values: report them, never a raw traceback
        raise ModelFileError(f"{path}: the model description is inconsistent ({type(exc).__name__}: {exc})") from None


def _rebuild(meta: dict[str, Any], tensors: dict[str, torch.Tensor]):
    from sklearn.base import is_classifier

    from .formula import Formula
    from .nn import TERM_WEIGHTS, TaskMLP
    from .nn.layer import BASES
    from .nn.mlp import ACTIVATIONS, activation_name
    from .preprocessing import TabularEncoder, TargetScaler

    classes = _estimator_classes()
    if meta.get("estimator") not in classes:
        raise ModelFileError(f"unknown estimator {meta.get('estimator')!r} in the model file")
    cls = classes[meta["estimator"]]
    defaults = cls().get_params(deep=False)
    params = {}
    for key, value in meta["params"].items():
        if key not in defaults:
            raise ModelFileError(f"unknown parameter {key!r} for {cls.__name__} in the model file")
        if isinstance(value, dict) and "__repr__" in value:
            value = defaults[key]  # not plain data (e.g. a RandomState); only mattered for fitting
        elif isinstance(value, dict) and "__vsr__" in value:
            value = dict(value["__vsr__"])
        elif isinstance(value, list) and isinstance(defaults[key], tuple):
            value = tuple(value)  # JSON has no tuples: give back what get_params() showed
        if key == "vsr" and isinstance(value, dict):
            # VSR settings that were not plain data (a callback, a RandomState) take VSR's defaults, as
            # the estimator's own do: a marker left in would make a refit of the loaded model fail
            value = {k: v for k, v in value.items() if not (isinstance(v, dict) and "__repr__" in v)}
        params[key] = value
    if isinstance(params.get("formula"), str) and params["formula"] != "auto":
        Formula(params["formula"])  # formula text in a file always goes through the safe parser
    estimator = cls(**params)
    fitted = meta["fitted"]

    estimator.formula_ = Formula.from_dict(fitted["formula"])
    records = fitted["layer_formulas"]
    # One layer per leading index ("network/0.weight", or "network/0.task.weight" and
    # "network/0.linear.weight" for a MixedTaskLinear).
    n_layers = len({k.split("/", 1)[1].split(".", 1)[0] for k in tensors
                    if k.startswith("network/") and k.endswith(".weight")})
    if not isinstance(records, list) or len(records) != n_layers:  # bounds the parsing work too
        raise ModelFileError(f"the model file has {n_layers} weight layers but layer_formulas is not a list "
                             f"of {n_layers} formula records")
    estimator.layer_formulas_ = [Formula.from_dict(f) for f in records]
    estimator.hidden_layer_sizes_ = tuple(int(h) for h in fitted["hidden_layer_sizes"])
    linear_inputs = fitted.get("linear_inputs", [])  # absent in files written before binary_inputs
    if not isinstance(linear_inputs, list) or not all(type(j) is int for j in linear_inputs):
        raise ModelFileError("linear_inputs in the model file must be a list of input indices")
    estimator.linear_inputs_ = tuple(linear_inputs)
    estimator.n_features_in_ = int(fitted["n_features_in"])
    names = fitted.get("feature_names_in")
    if names is not None:
        if not (isinstance(names, list) and len(names) == estimator.n_features_in_
                and all(isinstance(n, str) for n in names) and len(set(names)) == len(names)):
            raise ModelFileError(f"feature_names_in in the model file must be null or {estimator.n_features_in_} "
                                 "distinct column names")
        estimator.feature_names_in_ = np.asarray(names, dtype=object)
    arrays = _float_arrays(tensors, "encoder/")
    estimator.encoder_ = TabularEncoder.from_state(fitted["encoder"], arrays)
    if estimator.encoder_.n_features_in_ != estimator.n_features_in_:
        raise ModelFileError(f"n_features_in in the model file is {estimator.n_features_in_}, but its encoder takes "
                             f"{estimator.encoder_.n_features_in_} columns; the file is inconsistent")
    # The estimator's kind decides which fitted parts must be there (never a half-loaded model).
    if is_classifier(estimator) != ("classes" in fitted):
        raise ModelFileError(f"a {cls.__name__} model file must {'' if is_classifier(estimator) else 'not '}hold "
                             "class labels (fitted.classes); the file is inconsistent")
    if "classes" in fitted:
        estimator.classes_ = _labels_from_json(fitted["classes"])
        n_out = len(estimator.classes_)
    else:
        arrays = _float_arrays(tensors, "target/")
        estimator.target_scaler_ = TargetScaler.from_state(fitted["target_scaler"], arrays)
        if not (estimator.target_scaler_.spread_ > 0).all():
            raise ModelFileError("target/spread in the model file must be positive; the file is inconsistent")
        estimator.n_outputs_ = n_out = int(fitted["n_outputs"])
        estimator._single_output = bool(fitted["single_output"])
    n_in = len(estimator.encoder_.scale_)
    dtype = _DTYPES.get(fitted.get("dtype", "float32")) if isinstance(fitted.get("dtype", "float32"), str) else None
    if dtype is None:
        raise ModelFileError(f"unknown dtype {fitted.get('dtype')!r} in the model file")
    state = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith("network/")}
    _check_widths(state, [*estimator.hidden_layer_sizes_, n_out])
    _check_arrays(estimator, state, dtype, n_in)
    chosen = estimator.linear_inputs_
    if any(not 0 <= j < n_in for j in chosen) or len(set(chosen)) != len(chosen) or len(chosen) >= n_in:
        raise ModelFileError(f"linear_inputs in the model file must be distinct indices of the {n_in} inputs, "
                             "leaving at least one for the formula")
    # the layer kind fitted ("auto" chose one); older files have only the parameter, or neither
    term_weights = fitted.get("term_weights", params.get("term_weights", "per_neuron"))
    if term_weights not in TERM_WEIGHTS:
        raise ModelFileError(f"term_weights in the model file must be one of {TERM_WEIGHTS}, got {term_weights!r}")
    losses = fitted.get("term_weights_valid_loss")
    if losses is not None and not (isinstance(losses, dict) and set(losses) <= set(TERM_WEIGHTS)
                                   and all(isinstance(v, (int, float)) for v in losses.values())):
        raise ModelFileError("term_weights_valid_loss in the model file must map layer kinds to numbers")
    estimator.term_weights_, estimator.term_weights_valid_loss_ = term_weights, losses
    # The network as fitted; files written before these were recorded have only the parameters.
    # Both are checked, so that an edited parameter cannot make a later refit fail obscurely.
    activation = fitted.get("activation", params.get("activation", "relu"))
    basis = fitted.get("basis", params.get("basis", "terms"))
    for where, value in (("fitted", activation), ("params", params.get("activation", "relu"))):
        # spelled as fit accepted it ("ReLU", "leaky-relu"): read as make_activation reads it
        if not isinstance(value, str) or activation_name(value) is None:
            raise ModelFileError(f"unknown activation {value!r} ({where}) in the model file; the activations "
                                 f"are {', '.join(ACTIVATIONS)}")
    for where, value in (("fitted", basis), ("params", params.get("basis", "auto"))):
        if value not in (*BASES, "auto"):
            raise ModelFileError(f"unknown basis {value!r} ({where}) in the model file; the bases are "
                                 f"{(*BASES, 'auto')}")
    _check_parameter_count(state, n_in, estimator, n_out, activation, term_weights)
    network = TaskMLP(n_in, list(estimator.hidden_layer_sizes_), n_out, estimator.layer_formulas_,
                      activation=activation, basis=basis, dtype=dtype, linear_inputs=estimator.linear_inputs_,
                      term_weights=term_weights)
    network.load_state_dict(state, strict=True)
    estimator.network_ = network.train(False)
    estimator._network_activation = activation
    estimator.n_parameters_ = int(fitted["n_parameters"])
    estimator.fit_time_ = float(fitted["fit_time"])
    estimator.n_epochs_ = int(fitted["n_epochs"])
    kept = fitted.get("linear_stage_kept")  # absent in files written before term_schedule
    if kept is not None and not isinstance(kept, bool):
        raise ModelFileError(f"linear_stage_kept in the model file must be true, false or null, got {kept!r}")
    estimator.linear_stage_kept_ = kept
    import pandas as pd

    from .training import history_frame

    estimator.history_ = history_frame(pd.DataFrame(fitted.get("history") or []))
    estimator.vsr_ = None
    return estimator


def _float_arrays(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, np.ndarray]:
    """The preprocessing arrays under ``prefix`` (names without it), refusing any that is not finite
    floating point: the scalers would cast an integer array silently and predict something else."""
    arrays = {}
    for key, value in tensors.items():
        if key.startswith(prefix):
            if not value.is_floating_point() or not torch.isfinite(value).all():
                raise ModelFileError(f"{key} in the model file must hold finite floating-point numbers, not "
                                     f"{str(value.dtype).replace('torch.', '')} values; the file is inconsistent")
            arrays[key[len(prefix):]] = value.numpy()
    return arrays


def _check_parameter_count(state: dict[str, torch.Tensor], n_in: int, estimator, n_out: int, activation: str,
                           term_weights: str) -> None:
    """Refuse a network the stored tensors do not fill, before anything of that size is built.

    ``_check_widths`` compares the widths with the weights' rows; this compares the whole count,
    so tensors with an empty dimension (zero bytes in the file) cannot make loading allocate a
    network quadratic in a declared width.
    """
    from .nn import count_parameters
    from .nn.mlp import make_activation

    hidden = list(estimator.hidden_layer_sizes_)
    per_activation = sum(p.numel() for p in make_activation(activation).parameters())  # e.g. PReLU's slope
    expected = count_parameters(n_in, hidden, n_out, estimator.layer_formulas_,
                                linear_inputs=list(estimator.linear_inputs_) or None,
                                term_weights=term_weights) + per_activation * len(hidden)
    stored = sum(int(v.numel()) for v in state.values())
    if stored != expected:
        raise ModelFileError(f"the model file's network tensors hold {stored} numbers, but the network it "
                             f"declares has {expected} parameters; the file is inconsistent")


def _check_arrays(estimator, state: dict[str, torch.Tensor], dtype: torch.dtype, n_in: int) -> None:
    """Refuse preprocessing arrays of the wrong length and network tensors of another dtype.

    ``load_state_dict`` would cast integer tensors silently, and numpy would broadcast a scaler
    of the wrong length: both would load and predict something else than what was saved.
    """
    wrong = [k for k, v in state.items() if v.dtype != dtype]
    if wrong:
        raise ModelFileError(f"the network tensors {wrong[:3]} are not {str(dtype).replace('torch.', '')} as the "
                             "model file declares; the file is inconsistent")
    encoder = estimator.encoder_
    n_encoded = len(encoder.feature_names_out_)
    checks = {"encoder/scale": (encoder.scale_, n_encoded), "encoder/offset": (encoder.offset_, n_in)}
    quantiles = encoder.quantiles_
    if quantiles is not None and (quantiles.ndim != 2 or quantiles.shape[0] < 2 or quantiles.shape[1] != n_in):
        raise ModelFileError(f"encoder/quantiles has shape {quantiles.shape}, not (n_quantiles >= 2, {n_in}); "
                             "the file is inconsistent")
    if hasattr(estimator, "target_scaler_"):
        n_out = estimator.n_outputs_
        checks["target/center"] = (estimator.target_scaler_.center_, n_out)
        checks["target/spread"] = (estimator.target_scaler_.spread_, n_out)
    for name, (array, length) in checks.items():
        if np.ndim(array) != 1 or len(array) != length:
            raise ModelFileError(f"{name} has shape {np.shape(array)} but the model has {length} such columns; "
                                 "the file is inconsistent")


def _check_widths(state: dict[str, torch.Tensor], widths: list[int]) -> None:
    """Refuse layer widths the stored weights do not have, before anything of that size is built.

    The metadata's widths decide how large a network ``load`` allocates; checking them against
    the tensors first means an edited ``hidden_layer_sizes`` cannot make loading allocate
    gigabytes (``load_state_dict`` would only notice the mismatch afterwards).
    """
    weights = {int(k.split(".")[0]): v for k, v in state.items()  # one per layer index
               if k.endswith(".weight") and k.split(".")[0].isdigit()}
    found = [int(weights[i].shape[0]) for i in sorted(weights) if weights[i].ndim == 2]
    if found != [int(w) for w in widths]:
        raise ModelFileError(f"the model file declares hidden_layer_sizes and outputs {widths}, but its "
                             f"weights have layer widths {found}; the file is inconsistent")
