"""scikit-learn estimators that discover a task-based neuron and train a network of it in one fit.

``TaskNeuronRegressor`` and ``TaskNeuronClassifier`` run the paper's two steps:

1. **Discover** (``formula="auto"``): vectorized symbolic regression on the training data, in
   the same scaled input space the network sees, finds the formula g shared by all inputs.
2. **Parameterize and train**: a :class:`~taskneurons.nn.TaskMLP` whose task-based layers use
   g's terms (outer coefficients become weight matrices, inner constants learnable per input)
   is trained by :func:`~taskneurons.training.fit_module`.

``formula="x"`` gives the ordinary linear-neuron MLP (the paper's LN baseline) through the
very same code path, so comparisons differ only in the neuron.
"""

from __future__ import annotations

import functools
import numbers
import time
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._checks import is_integer, is_real
from .errors import DataError, FormulaError, NumericalError
from .formula import Formula
from .nn.layer import BASES
from .nn.mlp import TERM_WEIGHTS, make_activation
from .preprocessing import CATEGORICAL_ENCODINGS, SCALINGS, TabularEncoder, TargetScaler, _is_dataframe
from .training import (
    check_early_stopping,
    check_learning_rate,
    check_optimizer_name,
    check_weight_decay,
    resolve_device,
)

__all__ = ["TaskNeuronRegressor", "TaskNeuronClassifier"]

TASK_LAYERS = ("first", "hidden", "all")
BINARY_INPUTS = ("linear", "formula")
TERM_SCHEDULES = ("joint", "linear_first")
#: "auto": train a network of each layer kind and keep the one with the lower validation loss.
TERM_WEIGHT_CHOICES = (*TERM_WEIGHTS, "auto")


def _check_table(X, y=None) -> None:
    """Refuse inputs that scikit-learn's validation would reject only with an obscure error."""
    if _is_dataframe(X):
        import pandas as pd

        dates = [str(c) for c, dt in X.dtypes.items() if pd.api.types.is_datetime64_any_dtype(dt)
                 or pd.api.types.is_timedelta64_dtype(dt) or isinstance(dt, pd.PeriodDtype)]
        if dates:
            raise DataError(f"columns {dates} hold dates or durations; convert them to numbers first (e.g. "
                            "the year, or seconds since a reference time)")
    if y is not None:
        from scipy import sparse

        if sparse.issparse(y):
            raise DataError("y is a sparse matrix; pass a dense array (y.toarray())")


def _check_finite_outputs(values: np.ndarray) -> np.ndarray:
    """Never hand back a NaN/inf prediction: refuse with the reason instead."""
    bad = ~np.isfinite(values)
    if bad.any():
        rows = int(bad.reshape(len(values), -1).any(axis=1).sum())
        raise NumericalError(f"the model's outputs overflow (not finite) on {rows} of {len(values)} rows: their "
                             "inputs lie so far outside the training range that the neuron's powers overflow. "
                             "Keep input_clip on (the default 'auto' clips scaled inputs to the training range) "
                             "or remove those rows")
    return values


def _formula_parameters(network) -> list[torch.nn.Parameter]:
    """The parameters that shape the per-input formulas of ``network``'s FactoredTaskLinear layers."""
    from .nn import FactoredTaskLinear

    return [p for layer in network.modules() if isinstance(layer, FactoredTaskLinear)
            for p in (layer.term_coefficients, layer.inner_constants) if p is not None]


class _NetworkFit(NamedTuple):
    """One trained candidate network of :meth:`_TaskNeuronBase._fit` (``term_weights="auto"`` trains two)."""

    network: torch.nn.Module
    history: Any  # training.History
    hidden_sizes: tuple[int, ...]
    linear_stage_kept: bool | None
    valid_loss: float | None  # best validation loss of the kept weights; None without validation rows


def _has_text_columns(X) -> bool:
    from .preprocessing import _is_categorical_column

    return _is_dataframe(X) and any(_is_categorical_column(X.iloc[:, i]) for i in range(X.shape[1]))


class _TaskNeuronBase(BaseEstimator):
    """Shared parameters and fit logic; see the two public subclasses for the documentation."""

    _loss: str
    _is_classifier: bool

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] = (64, 32),
        formula: str | Formula = "auto",
        *,
        vsr: Any = None,
        task_layers: str = "first",
        basis: str = "auto",
        term_weights: str = "per_neuron",
        term_schedule: str = "joint",
        formula_stage_epochs: int | None = None,
        add_linear_term: bool = True,
        binary_inputs: str = "linear",
        parameter_budget: str | int | None = None,
        activation: str = "relu",
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int | str = "auto",
        max_epochs: int = 200,
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        patience: int = 20,
        scale_X: str | None = "minmax",
        categorical: str = "onehot",
        input_clip: float | str | None = "auto",
        random_state: int | np.random.RandomState | None = None,
        device: str = "auto",
        verbose: bool = False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.formula = formula
        self.vsr = vsr
        self.task_layers = task_layers
        self.basis = basis
        self.term_weights = term_weights
        self.term_schedule = term_schedule
        self.formula_stage_epochs = formula_stage_epochs
        self.add_linear_term = add_linear_term
        self.binary_inputs = binary_inputs
        self.parameter_budget = parameter_budget
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.scale_X = scale_X
        self.categorical = categorical
        self.input_clip = input_clip
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # -- parameter checks ---------------------------------------------------------------------
    def _check_params(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, (str, bytes)):  # iterating "64" would give the widths (6, 4)
            raise ValueError(f"hidden_layer_sizes must be a sequence of positive integers such as (64, 32), "
                             f"got the string {sizes!r}")
        if is_integer(sizes):
            sizes = (int(sizes),)
        try:
            sizes = tuple(sizes)
        except TypeError:
            sizes = (None,)
        if not all(is_integer(s) for s in sizes):  # int() would make 2.5 a width of 2 and True one of 1
            raise ValueError(f"hidden_layer_sizes must be a sequence of positive integers, got "
                             f"{self.hidden_layer_sizes!r}")
        sizes = tuple(int(s) for s in sizes)
        if any(s < 1 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive, got {sizes}")
        if self.task_layers not in TASK_LAYERS:
            raise ValueError(f"task_layers must be one of {TASK_LAYERS}, got {self.task_layers!r}")
        if self.binary_inputs not in BINARY_INPUTS:
            raise ValueError(f"binary_inputs must be one of {BINARY_INPUTS}, got {self.binary_inputs!r}")
        if self.scale_X not in SCALINGS:
            raise ValueError(f"scale_X must be one of {SCALINGS}, got {self.scale_X!r}")
        if self.categorical not in CATEGORICAL_ENCODINGS:
            raise ValueError(f"categorical must be one of {CATEGORICAL_ENCODINGS}, got {self.categorical!r}")
        budget = self.parameter_budget
        if not (budget is None or (isinstance(budget, str) and budget == "linear")
                or (is_integer(budget) and budget > 0)):
            raise ValueError(f"parameter_budget must be None, 'linear' or a positive integer, got {budget!r}")
        if not (is_integer(self.batch_size) and self.batch_size > 0) and not (
                isinstance(self.batch_size, str) and self.batch_size == "auto"):
            raise ValueError(f"batch_size must be a positive integer or 'auto', got {self.batch_size!r}")
        if not (is_integer(self.max_epochs) and self.max_epochs > 0):
            raise ValueError(f"max_epochs must be a positive integer, got {self.max_epochs!r}")
        if self.basis not in (*BASES, "auto"):
            raise ValueError(f"basis must be one of {(*BASES, 'auto')}, got {self.basis!r}")
        if self.term_weights not in TERM_WEIGHT_CHOICES:
            raise ValueError(f"term_weights must be one of {TERM_WEIGHT_CHOICES}, got {self.term_weights!r}")
        if self.term_schedule not in TERM_SCHEDULES:
            raise ValueError(f"term_schedule must be one of {TERM_SCHEDULES}, got {self.term_schedule!r}")
        if self.term_schedule == "linear_first" and self.term_weights == "per_neuron":
            # The paper's layer has no parameter setting at which it is the linear network of its width.
            raise ValueError("term_schedule='linear_first' needs term_weights='per_input' (or 'auto', where it "
                             "applies to the per-input network): only that layer is exactly a linear layer when "
                             "its term coefficients are 0. Use term_schedule='joint' with term_weights='per_neuron'")
        for name, value in (("term_schedule='linear_first'", self.term_schedule == "linear_first"),
                            ("term_weights='auto'", self.term_weights == "auto")):
            if value and not self.early_stopping:
                raise ValueError(f"{name} decides on validation data; it needs early_stopping=True")
        stage_epochs = self.formula_stage_epochs
        if stage_epochs is not None:
            if isinstance(stage_epochs, bool) or not (isinstance(stage_epochs, numbers.Integral) and stage_epochs > 0):
                raise ValueError(f"formula_stage_epochs must be None or a positive integer, got {stage_epochs!r}")
        for name in ("add_linear_term", "early_stopping"):
            # a string such as "False" would be truthy: refuse it rather than read it as True
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        # fit_module and TaskMLP check these too, but only after discovery (which may take minutes)
        check_learning_rate(self.learning_rate)
        check_early_stopping(self.validation_fraction, self.patience)
        check_weight_decay(self.weight_decay)
        if isinstance(self.optimizer, str):
            check_optimizer_name(self.optimizer)
        make_activation(self.activation)
        resolve_device(self.device)
        clip = self.input_clip
        if not (clip is None or (isinstance(clip, str) and clip == "auto")
                or (is_real(clip) and 0 < clip < np.inf)):
            raise ValueError(f"input_clip must be a positive finite number, 'auto' or None (no clipping), got {clip!r}")
        return sizes

    def make_encoder(self) -> TabularEncoder:
        """The (unfitted) input encoder ``fit`` uses: categorical encoding, scaling, clipping.

        Useful to run discovery or other models in exactly the input space the network sees.
        """
        clip = self.input_clip
        if isinstance(clip, str) and clip == "auto":
            clip = {"quantile": 1.0, "minmax": 1.0, "standard": 5.0}.get(self.scale_X)
        elif is_real(clip):
            clip = float(clip)  # e.g. a numpy float32; the encoder's state is JSON in model files
        return TabularEncoder(self.scale_X, self.categorical, clip)

    def _resolve_formula(self, X: np.ndarray, y: np.ndarray, seed: int) -> Formula:
        spec = self.formula
        if isinstance(spec, str) and spec == "auto":
            self.vsr_ = self._make_vsr(seed).fit(X, y)
            return self.vsr_.formula_
        self.vsr_ = None
        if isinstance(spec, (str, Formula)):
            return Formula(spec)
        raise FormulaError(f"formula must be 'auto', formula text such as '2*x**2 + x', 'x' or a "
                           f"Formula; got {type(spec).__name__}")

    def _make_vsr(self, seed: int):
        from .vsr import VSR

        if self.vsr is None:
            vsr = VSR()
        elif isinstance(self.vsr, dict):
            known = VSR().get_params(deep=False)
            unknown = [key for key in self.vsr if key not in known]
            if unknown:
                raise ValueError(f"vsr has keys {unknown} that are not VSR parameters; the parameters are "
                                 f"{sorted(known)}")
            vsr = VSR(**self.vsr)
        elif isinstance(self.vsr, BaseEstimator):
            vsr = clone(self.vsr)
        else:
            raise ValueError(f"vsr must be None, a dict of VSR parameters or a VSR instance, got {self.vsr!r}")
        # The network's inputs are already scaled by this estimator: discover in that space.
        overrides = {"scale": None, "verbose": self.verbose}
        params = vsr.get_params(deep=False)
        if params.get("random_state") is None:
            overrides["random_state"] = seed
        if self._is_classifier and "task" in params:
            overrides["task"] = "classification"
        return vsr.set_params(**{k: v for k, v in overrides.items() if k in params})

    def _neuron_formula(self, formula: Formula) -> Formula:
        """The terms the task-based layers use: the formula's, plus x when asked for."""
        if not self.add_linear_term or any(t.power == 1 for t in formula.terms):
            return formula
        return Formula.from_terms([*formula.terms, "x"], [*formula.coefficients, 1.0], formula.constant)

    def _layer_formulas(self, formula: Formula, n_hidden: int) -> list[Formula]:
        formula = self._neuron_formula(formula)
        linear = Formula("x")
        if self.task_layers == "first":
            return [formula] + [linear] * n_hidden
        if self.task_layers == "hidden":
            return [formula] * n_hidden + [linear]
        return [formula] * (n_hidden + 1)

    def _linear_inputs(self, X_scaled: np.ndarray, formulas: list[Formula]) -> tuple[int, ...]:
        """Columns with at most two distinct training values, when binary_inputs="linear" and the
        first layer is task-based (every term is affine on such a column; see MixedTaskLinear)."""
        if self.binary_inputs != "linear" or formulas[0].terms == Formula("x").terms:
            return ()
        first = X_scaled[0]
        other = X_scaled != first
        second = X_scaled[other.argmax(axis=0), np.arange(X_scaled.shape[1])]  # first differing value, or first
        two_valued = np.flatnonzero((~other | (X_scaled == second)).all(axis=0))
        return () if len(two_valued) == X_scaled.shape[1] else tuple(int(j) for j in two_valued)

    def _hidden_sizes(self, sizes: tuple[int, ...], n_in: int, n_out: int, formulas: list[Formula],
                      linear_inputs: tuple[int, ...], term_weights: str):
        from .nn import count_parameters, match_parameters

        budget = self.parameter_budget
        if budget is None:
            return sizes
        if budget == "linear":
            budget = count_parameters(n_in, sizes, n_out, "x")
        smallest = count_parameters(n_in, (1,) * len(sizes), n_out, formulas, linear_inputs=linear_inputs,
                                    term_weights=term_weights)
        if smallest > budget:  # match_parameters' own message suggests a TaskMLP option we do not have
            raise ValueError(f"parameter_budget={self.parameter_budget!r}: no network fits in {budget} parameters; "
                             f"even hidden widths of 1 need {smallest} with the neuron {formulas[0]}. Raise the "
                             "budget, use fewer hidden layers, or a formula with fewer terms")
        return match_parameters(n_in, n_out, sizes, formulas, budget=budget, linear_inputs=linear_inputs,
                                term_weights=term_weights)

    # -- fitting ------------------------------------------------------------------------------
    def _fit(self, X, y):
        from .training import fit_module

        sizes = self._check_params()
        start = time.perf_counter()
        # A refit that fails part-way must not leave the old network paired with a new encoder.
        self.__dict__.pop("network_", None)
        _check_table(X, y)
        shape = getattr(y, "shape", ())
        if self._is_classifier and len(shape) == 2 and shape[1] > 1:  # (n, 1) is passed on, with sklearn's warning
            raise DataError(f"y has shape {shape}, but TaskNeuronClassifier takes 1-D labels, one per sample; for "
                            "multilabel or multioutput targets wrap it in sklearn.multioutput.MultiOutputClassifier")
        text_columns = _has_text_columns(X)
        X_checked, y_checked = validate_data(
            self, X, y, reset=True, dtype=object if text_columns else "numeric",
            ensure_all_finite=not text_columns, multi_output=not self._is_classifier,
            y_numeric=not self._is_classifier,
            ensure_min_samples=2,
        )
        self.encoder_ = self.make_encoder()
        X_scaled = self.encoder_.fit_transform(X if text_columns else X_checked)
        target, n_out = self._prepare_target(y_checked)

        rng = check_random_state(self.random_state)
        seed_vsr, seed_init, seed_train = (int(s) for s in rng.randint(0, 2**31 - 1, size=3))
        self.formula_ = self._resolve_formula(X_scaled, self._vsr_target(y_checked, target), seed_vsr)
        formulas = self._layer_formulas(self.formula_, len(sizes))
        self.linear_inputs_ = self._linear_inputs(X_scaled, formulas)
        self.layer_formulas_ = formulas
        batch_size = self.batch_size if self.batch_size != "auto" else int(np.clip(len(X_scaled) // 64, 32, 1024))
        train = functools.partial(
            fit_module, X=X_scaled.astype(np.float32), y=target, loss=self._loss, optimizer=self.optimizer,
            learning_rate=self.learning_rate, weight_decay=self.weight_decay, batch_size=batch_size,
            max_epochs=self.max_epochs, early_stopping=self.early_stopping and len(X_scaled) >= 10,
            validation_fraction=self.validation_fraction, patience=self.patience,
            random_state=seed_train, device=self.device, verbose=self.verbose,
        )
        validated = train.keywords["early_stopping"]
        if self.term_weights != "auto":
            kinds = (self.term_weights,)
        else:  # without validation rows to choose on, the paper's layer
            kinds = TERM_WEIGHTS if validated else ("per_neuron",)
        # Each candidate starts from its own generator seeded alike and sees the same validation rows.
        fits = {kind: self._fit_network(kind, sizes, X_scaled, n_out, train, seed_init) for kind in kinds}
        self.term_weights_ = min(kinds, key=lambda kind: fits[kind].valid_loss)  # ties: the paper's layer
        self.term_weights_valid_loss_ = {kind: fit.valid_loss for kind, fit in fits.items()} if validated else None
        chosen = fits[self.term_weights_]
        # what the network was built with: set_params() after fit must not change what save() records
        self._network_activation = self.activation
        self.hidden_layer_sizes_ = chosen.hidden_sizes
        self.linear_stage_kept_ = chosen.linear_stage_kept
        self.network_ = chosen.network
        self.history_ = chosen.history.to_frame()
        self.n_epochs_ = len(chosen.history)
        self.n_parameters_ = sum(p.numel() for p in self.network_.parameters())
        self.fit_time_ = time.perf_counter() - start
        return self

    def _fit_network(self, term_weights: str, sizes, X_scaled: np.ndarray, n_out: int, train,
                     seed_init: int) -> _NetworkFit:
        """Build the network of one layer kind (widths under ``parameter_budget``) and train it
        with the estimator's schedule; ``linear_first`` applies to the per-input layer only."""
        from .nn import TaskMLP

        hidden = self._hidden_sizes(sizes, X_scaled.shape[1], n_out, self.layer_formulas_, self.linear_inputs_,
                                    term_weights)
        network = TaskMLP(X_scaled.shape[1], list(hidden), n_out, self.layer_formulas_,
                          activation=self.activation, generator=torch.Generator().manual_seed(seed_init),
                          basis=self.basis, linear_inputs=self.linear_inputs_, term_weights=term_weights)
        self._check_initial_network(network, X_scaled)
        if term_weights == "per_input" and self.term_schedule == "linear_first" and train.keywords["early_stopping"]:
            history, kept, valid_loss = self._train_linear_first(network, train, seed_init)
        else:  # one stage: "joint", the paper's layer, or no validation rows to decide stages on
            result = train(network)
            history, kept, valid_loss = result.history, None, result.best_valid_loss
        return _NetworkFit(network, history, tuple(hidden), kept, valid_loss)

    def _train_linear_first(self, network, train, seed_init: int):
        """``term_schedule="linear_first"``: train the linear network of the same widths until early
        stopping, copy its weights into ``network`` (whose per-input formulas are then the
        identity, ``a = 0``), train everything for ``formula_stage_epochs`` epochs at most (None:
        the epochs left of ``max_epochs``), and keep that second stage only if it lowered the
        validation loss.

        ``train(module, max_epochs=...)`` runs :func:`fit_module` with the estimator's settings
        (the same validation rows in both stages). Returns both stages' history (epochs numbered
        on), whether the linear stage was kept, and the kept stage's best validation loss.
        """
        from .nn import TaskMLP
        from .training import History

        linear = TaskMLP(network.in_features, list(network.hidden), network.out_features, "x",
                         activation=self.activation, generator=torch.Generator().manual_seed(seed_init))
        first = train(linear)
        missing, unexpected = network.load_state_dict(linear.state_dict(), strict=False)
        formula_ids = {id(p) for p in _formula_parameters(network)}
        if unexpected or set(missing) != {name for name, p in network.named_parameters() if id(p) in formula_ids}:
            raise RuntimeError(f"linear stage: the networks do not match (missing {missing}, unexpected "
                               f"{unexpected}); please report this as a bug")
        linear_history = History({**record, "stage": "linear"} for record in first.history)
        epochs_left = self.max_epochs - first.n_epochs if self.formula_stage_epochs is None else self.formula_stage_epochs
        if epochs_left <= 0:  # the linear stage used the whole budget: the network is the linear one
            return linear_history, True, first.best_valid_loss
        start = {name: value.clone() for name, value in network.state_dict().items()}
        second = train(network, max_epochs=epochs_left)
        kept = not second.best_valid_loss < first.best_valid_loss
        if kept:
            network.load_state_dict(start)
        history = History([*linear_history, *({**record, "epoch": record["epoch"] + first.n_epochs, "stage": "formula"}
                                              for record in second.history)])
        return history, kept, min(first.best_valid_loss, second.best_valid_loss)

    def _check_initial_network(self, network, X_scaled: np.ndarray) -> None:
        """Refuse, with the reason, a network that overflows before any training step.

        Training could not recover from it (every retry restarts from the same weights); without
        this check the user would only see NaN losses and generic advice after several retries.
        """
        with torch.no_grad():
            out = network(torch.from_numpy(X_scaled[:4096].astype(np.float32)))
        if bool(torch.isfinite(out).all()):
            return
        if self.task_layers != "first":
            why = (f"with task_layers={self.task_layers!r} the neuron {self.formula_} also acts on hidden "
                   f"layers, whose unbounded {self.activation} outputs overflow float32 when raised to high "
                   "powers; use task_layers='first' (the default), basis='terms', a bounded activation such "
                   "as 'tanh', or a lower-degree formula")
        else:
            with np.errstate(all="ignore"):
                values = np.asarray(self.formula_.evaluate(X_scaled[:4096]), dtype=float)
            if np.isnan(values).any() and not np.isinf(values).any():  # not an overflow: outside the domain
                why = (f"the neuron {self.formula_} is undefined (NaN) on part of the scaled inputs, which lie "
                       f"in [{X_scaled.min():.3g}, {X_scaled.max():.3g}] (e.g. sqrt or log of a negative "
                       "value); use a formula defined on that range, such as sqrt(x + 2) or log(x + 2)")
            else:
                why = (f"the scaled inputs are too large for the powers of {self.formula_}; keep scale_X and "
                       "input_clip at their defaults")
        raise NumericalError(f"the initial network's outputs are not finite on the training inputs: {why}")

    def _network_outputs(self, X) -> np.ndarray:
        from .training import predict_module

        check_is_fitted(self, "network_")
        _check_table(X)
        text_columns = _has_text_columns(X)
        # Not a DataFrame, for a model fitted on categorical columns: the encoder says what to do.
        lenient = text_columns or (not _is_dataframe(X) and bool(self.encoder_.categories_))
        X_checked = validate_data(self, X, reset=False, dtype=object if lenient else "numeric",
                                  ensure_all_finite=not lenient)
        # A model fitted on categorical columns encodes them by name, also when they arrive as numbers.
        by_name = text_columns or (_is_dataframe(X) and bool(self.encoder_.categories_))
        X_scaled = self.encoder_.transform(X if by_name else X_checked)
        out = predict_module(self.network_, X_scaled.astype(np.float32))
        return _check_finite_outputs(out.detach().cpu().double().numpy())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags

    # -- persistence --------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the fitted model to ``path`` (safetensors + JSON metadata; no pickle)."""
        from .persistence import save_estimator

        save_estimator(self, path)


class TaskNeuronRegressor(RegressorMixin, _TaskNeuronBase):
    """Regression with a network of task-based neurons discovered from the data.

    Parameters
    ----------
    hidden_layer_sizes : sequence of int, default (64, 32)
        Widths of the hidden layers (before any ``parameter_budget`` shrinking).
    formula : "auto", str or Formula, default "auto"
        ``"auto"`` runs VSR on the scaled training inputs to discover the neuron; formula text
        (``"0.068*x**3 + 0.15*x + 0.76"``) or a Formula fixes it; ``"x"`` is the linear-neuron
        baseline (an ordinary MLP).
    vsr : None, dict or VSR, default None
        Settings of the discovery step (a dict of VSR parameters or a VSR instance, cloned).
        Its scaling is switched off: it runs on the inputs as this estimator scales them.
    task_layers : {"first", "hidden", "all"}, default "first"
        Which layers use the task-based neuron: only the first layer (where the formula was
        discovered: it acts on the scaled input variables), every hidden layer (the output
        layer stays linear), or all layers. "first" is the default because deeper layers see
        unbounded ReLU outputs, where high powers train unstably (seen while developing the
        Table 6 protocol; that comparison is not part of the committed results).
    basis : {"auto", "orthonormal", "terms"}, default "auto"
        How task-based layers parameterise the span of the formula's terms (see
        :class:`~taskneurons.nn.TaskLinear`): "orthonormal" decorrelates x, x**3, x**5 ... on
        [-1, 1], which trains far better than the raw powers; the function class is the same.
        "auto" is "orthonormal" for ``term_weights="per_neuron"`` and "terms" for
        ``"per_input"``: in the Table 6 ablations (docs/results/table6_variants) per-neuron
        layers reach TN >= LN on 54 of 70 pairs with "orthonormal" and 53 with "terms", and
        per-input layers on 55 with "orthonormal" and 60 with "terms".
    term_weights : {"per_neuron", "per_input", "auto"}, default "per_neuron"
        ``"per_neuron"`` is the paper's task-based layer: every neuron learns its own weight for
        every (term, input), ``y = b + sum_k W_k phi_k(x)``, K times the weights of a linear
        layer. ``"per_input"`` (:class:`~taskneurons.nn.FactoredTaskLinear`): every input runs
        through its own copy of the formula, ``g_i(x) = x + sum_k a_ki psi_k(x)`` with
        coefficients learned per input and shared by the layer's neurons, then a linear layer
        (``W_k = W diag(a_k)``). It costs K - 1 parameters per input, so under
        ``parameter_budget`` the network keeps almost the linear network's width, and it starts
        as exactly that linear network (``a = 0``). In the Table 6 grid (14 datasets, budget
        "linear") it is never significantly worse than the linear network (37 wins, 33 ties,
        0 losses) where "per_neuron" has 47 / 17 / 6, but "per_neuron" gains more where the
        formula fits (better on 41 pairs, worse on 8). ``"auto"`` (needs ``early_stopping``)
        trains one network of each kind, from the same seed and on the same validation rows,
        each with its own ``parameter_budget`` widths (and, with ``basis="auto"``, its own
        basis), and keeps the one with the lower best validation loss (``term_weights_``);
        ``term_schedule`` applies to the per-input network. It costs both fits. With fewer than 10 rows (no validation
        rows) it trains the paper's layer. It is the Table 6 protocol's TN network (with
        ``term_schedule="linear_first"``, ``formula_stage_epochs=100``): 51 wins, 19 ties,
        0 losses against the linear network, TN >= LN on 68 of 70 pairs.
    term_schedule : {"joint", "linear_first"}, default "joint"
        How the network is trained. ``"joint"``: all parameters from the start. ``"linear_first"``
        (needs ``term_weights="per_input"`` or ``"auto"``, and ``early_stopping``): first the linear-neuron
        network of the same widths (the network with every ``a = 0``) is trained until early
        stopping; its best weights are copied in and everything, formulas included, is trained
        for the epochs left of ``max_epochs`` -- the same epoch budget as one linear network
        (``formula_stage_epochs`` changes that). That second stage is kept only if it lowers the
        best validation loss; otherwise the network *is* the trained linear one. With a linear
        formula (``"x"``, or no input taking a formula) the second stage is a warm restart of the
        same network with a fresh optimizer: the control that tells what the formulas add beyond
        the restart. With fewer than 10 rows (no validation rows to decide on) the network is
        trained jointly. In the Table 6 grid it is never significantly worse than
        the linear network and has the most pairs with TN >= LN (22 wins, 48 ties, 0 losses; 62
        of 70, against 60 for "joint"), but smaller gains where the formula fits (airfoil 4-25 %
        better than LN instead of 32-58 %), since the linear stage takes most of the epochs
        (see ``formula_stage_epochs``).
    formula_stage_epochs : int or None, default None
        Only used with ``term_schedule="linear_first"``: the most epochs of the formula stage.
        None: the epochs the linear stage left of ``max_epochs``, so the network trains no more
        epochs than one linear network. An integer gives the formula stage a budget of its own
        (the whole fit may then take up to ``max_epochs + formula_stage_epochs`` epochs). In
        the Table 6 grid, 100 (as ``max_epochs``) keeps the gains where the formula fits
        (airfoil 35-60 % lower MSE than LN) with 45 wins, 25 ties, 0 losses, TN >= LN on 69 of
        70 pairs.
    add_linear_term : bool, default True
        Add the term x to the neuron when the formula lacks it, so a task-based neuron can
        always represent what a linear neuron does.
    binary_inputs : {"linear", "formula"}, default "linear"
        Inputs with at most two distinct training values (one-hot columns, flags): "linear"
        gives them only the linear term in the first layer (a
        :class:`~taskneurons.nn.MixedTaskLinear`), since on two values every term is exactly
        affine and its weights would repeat the linear ones; with ``parameter_budget`` the saved
        parameters go to wider layers. "formula" applies every term to every input, as the
        paper's layer does.
    parameter_budget : None, "linear" or int, default None
        ``"linear"`` shrinks the hidden widths (by one common factor) so that the network has
        no more parameters than the linear-neuron network of ``hidden_layer_sizes`` — the
        paper's comparison; an integer is an explicit budget.
    activation : str, default "relu"
    optimizer : {"adam", "adamw", "rmsprop", "sgd"}, default "adam"
    learning_rate, weight_decay : float
    batch_size : int or "auto", default "auto"
        ``"auto"`` is ``n_samples // 64`` clipped to [32, 1024]: about 64 steps per epoch on large
        data, small batches on small data.
    max_epochs : int, default 200
    early_stopping : bool, default True
        Hold out ``validation_fraction`` of the training rows; stop after ``patience`` epochs
        without improvement and restore the best weights.
    scale_X : {"minmax", "quantile", "standard", None}, default "minmax"
        ``"minmax"`` maps the training range of every feature to [-1, 1] (the paper's
        preprocessing; test values are clipped to it, see ``input_clip``). ``"quantile"`` maps
        every feature through its training quantiles to a uniform distribution on [-1, 1] --
        robust to heavy tails, and often as good for linear neurons as the per-feature
        transforms task-based neurons learn.
    scale_y : {"standard", "minmax", None}, default "standard"
        Targets are scaled for training and mapped back in ``predict``.
    categorical : {"onehot", "ordinal"}, default "onehot"
        Encoding of text/categorical DataFrame columns. A category unseen in ``fit`` becomes
        all-zero columns under ``"onehot"``; under ``"ordinal"`` it is refused (DataError).
        pandas ``category`` columns are always categories; object or string columns whose
        values are all numbers (numbers stored as objects, numeric text, True/False) are used
        as numbers, in fit and in predict, as scikit-learn does. A column of mostly numbers
        with a few text values such as ``"?"`` (a missing-value marker) is refused with a
        DataError naming the column and the values, rather than one-hot encoded with one
        category per distinct number: mark them missing and drop or impute those rows, or
        convert the column with ``.astype("category")`` (see
        :class:`~taskneurons.preprocessing.TabularEncoder`).
    input_clip : float, "auto" or None, default "auto"
        Scaled inputs are clipped to [-input_clip, input_clip]: the guard against new inputs
        far outside the training range being raised to high powers (with min-max scaling, a
        test value 10 times outside the range would reach 1e7 in an x**7 neuron). "auto" is 1
        for "quantile" and "minmax" (the training range) and 5 for "standard".
    random_state : int, RandomState or None
        Seeds VSR, the initial weights, the validation split and the shuffling.
    device : {"auto", "cpu", "cuda"}, default "auto"
    verbose : bool, default False
        Progress bars for discovery and training.

    Attributes
    ----------
    formula_ : Formula
        The neuron (in the scaled input space).
    network_ : TaskMLP
        The trained torch module.
    history_ : pandas.DataFrame
        Per-epoch train loss, validation loss and metric.
    n_parameters_ : int
    fit_time_ : float
        Seconds for the whole fit (discovery included).
    vsr_ : VSR or None
        The fitted discovery step when ``formula="auto"``.
    hidden_layer_sizes_ : tuple of int
        The widths actually used.
    linear_inputs_ : tuple of int
        Encoded input columns that take only the linear term (see ``binary_inputs``).
    linear_stage_kept_ : bool or None
        With ``term_schedule="linear_first"``: True when the formula stage did not lower the
        validation loss and the network kept the linear stage's weights (every per-input formula
        is then the identity). None when the network was trained in one stage. The ``stage``
        column of ``history_`` ("linear", "formula") tells the epochs of the two stages apart.
    term_weights_ : {"per_neuron", "per_input"}
        The layer kind of ``network_``: ``term_weights``, or the one ``"auto"`` chose.
    term_weights_valid_loss_ : dict or None
        The best validation loss of each network trained (two with ``"auto"``); None without
        validation rows.
    """

    _loss = "mse"
    _is_classifier = False

    def __init__(self, hidden_layer_sizes=(64, 32), formula="auto", *, vsr=None, task_layers="first",
                 basis="auto", term_weights="per_neuron", term_schedule="joint", formula_stage_epochs=None,
                 add_linear_term=True, binary_inputs="linear",
                 parameter_budget=None, activation="relu", optimizer="adam", learning_rate=1e-3,
                 weight_decay=0.0, batch_size="auto", max_epochs=200, early_stopping=True,
                 validation_fraction=0.1, patience=20, scale_X="minmax", scale_y="standard",
                 categorical="onehot", input_clip="auto", random_state=None, device="auto", verbose=False):
        super().__init__(
            hidden_layer_sizes, formula, vsr=vsr, task_layers=task_layers, basis=basis, term_weights=term_weights,
            term_schedule=term_schedule, formula_stage_epochs=formula_stage_epochs, add_linear_term=add_linear_term,
            binary_inputs=binary_inputs, parameter_budget=parameter_budget,
            activation=activation, optimizer=optimizer, learning_rate=learning_rate,
            weight_decay=weight_decay, batch_size=batch_size, max_epochs=max_epochs,
            early_stopping=early_stopping, validation_fraction=validation_fraction, patience=patience,
            scale_X=scale_X, categorical=categorical, input_clip=input_clip, random_state=random_state,
            device=device, verbose=verbose)
        self.scale_y = scale_y

    def _prepare_target(self, y: np.ndarray) -> tuple[np.ndarray, int]:
        y = np.asarray(y, dtype=float)
        self._single_output = y.ndim == 1
        y2 = y.reshape(len(y), -1)
        self.n_outputs_ = y2.shape[1]
        self.target_scaler_ = TargetScaler(self.scale_y)
        with np.errstate(over="ignore"):
            target = self.target_scaler_.fit_transform(y2).astype(np.float32)
        if not np.isfinite(target).all():  # only unscaled targets get there; not a NaN in the user's y
            raise DataError(f"y has values beyond the float32 range (about 3.4e38) that the network trains in, "
                            f"with scale_y={self.scale_y!r}; use scale_y='standard' or divide y by a constant")
        return target, self.n_outputs_

    def _vsr_target(self, y: np.ndarray, target: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=float)

    def fit(self, X, y) -> TaskNeuronRegressor:
        """Discover the neuron (if ``formula="auto"``) and train the network.

        X : array-like or DataFrame, shape (n_samples, n_features); y : (n_samples,) or (n_samples, n_outputs).
        """
        return self._fit(X, y)

    def predict(self, X) -> np.ndarray:
        """Predictions in the units of y: shape (n_samples,) or (n_samples, n_outputs)."""
        outputs = self._network_outputs(X)  # checks fitted first
        with np.errstate(over="ignore"):
            out = _check_finite_outputs(self.target_scaler_.inverse_transform(outputs))
        return out[:, 0] if self._single_output else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class TaskNeuronClassifier(ClassifierMixin, _TaskNeuronBase):
    """Classification with a network of task-based neurons discovered from the data.

    Labels may be of any type (strings too); binary and multiclass problems use a softmax
    output and the cross-entropy loss. Discovery (``formula="auto"``) runs VSR with
    ``task="classification"`` (one-hot targets, shared terms).

    Parameters are those of :class:`TaskNeuronRegressor` without ``scale_y``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    formula_, network_, history_, n_parameters_, fit_time_, vsr_, hidden_layer_sizes_
        As in :class:`TaskNeuronRegressor`.
    """

    _loss = "cross_entropy"
    _is_classifier = True

    def _prepare_target(self, y: np.ndarray) -> tuple[np.ndarray, int]:
        if np.ndim(y) != 1:
            raise DataError(f"y must be 1-D class labels for TaskNeuronClassifier, got shape {np.shape(y)}")
        with warnings.catch_warnings():  # the case is refused below, with what to do
            warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
            try:
                check_classification_targets(y)
            except TypeError as exc:  # e.g. sorting failed: text beside numbers, or None for a missing label
                kinds = sorted({type(label).__name__ for label in np.asarray(y, dtype=object)})
                if len(kinds) < 2:  # scikit-learn's own reason (bytes labels), as the ValueError it is
                    raise DataError(str(exc)) from None
                raise DataError(f"y mixes labels of the types {kinds}, which cannot be ordered as classes; give "
                                "every label the same type (e.g. y.astype(str)) and drop or fill the rows "
                                "without a label (None)") from None
        self._label_encoder = LabelEncoder()
        codes = self._label_encoder.fit_transform(y)
        self.classes_ = self._label_encoder.classes_
        if len(self.classes_) < 2:
            raise DataError(f"y has only one class ({self.classes_.tolist()[0]!r}); a classifier needs at least two")
        n_samples, n_classes = len(codes), len(self.classes_)
        if n_samples > 20 and n_classes > round(0.5 * n_samples):  # scikit-learn's own threshold, as an error
            raise DataError(f"y has {n_classes} classes for {n_samples} samples: most classes have a single "
                            "example, too few to learn from, and the network would need one output per class. "
                            "If y is a measured quantity use TaskNeuronRegressor; otherwise merge rare classes")
        return codes.astype(np.int64), len(self.classes_)

    def _vsr_target(self, y: np.ndarray, target: np.ndarray) -> np.ndarray:
        return target  # class indices; VSR(task="classification") one-hot encodes them

    def fit(self, X, y) -> TaskNeuronClassifier:
        """Discover the neuron (if ``formula="auto"``) and train the network.

        X : array-like or DataFrame, shape (n_samples, n_features); y : (n_samples,) labels.
        """
        return self._fit(X, y)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns ordered as ``classes_``."""
        logits = torch.from_numpy(self._network_outputs(X))
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        """Predicted labels, shape (n_samples,), of the same type as the training labels."""
        outputs = self._network_outputs(X)  # checks fitted first
        return self.classes_[np.argmax(outputs, axis=1)]
