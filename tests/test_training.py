"""Tests of taskneurons.training: the shared mini-batch training loop."""

from __future__ import annotations

import functools
import io
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from taskneurons.errors import DataError, NumericalError
from taskneurons.training import (
    Callback,
    History,
    _restore,
    _snapshot,
    _split,
    fit_module,
    make_optimizer,
    predict_module,
    resolve_device,
)


def mlp(d_in: int = 4, d_out: int = 1, hidden: int = 16, seed: int = 0, dropout: float = 0.0) -> nn.Module:
    """A small MLP with reproducible initial weights (the caller's global RNG is left alone)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        layers = [nn.Linear(d_in, hidden), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(hidden, d_out))
        return nn.Sequential(*layers)


def regression_data(n: int = 300, d: int = 4, m: int | None = None, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    W = rng.normal(size=(d, m or 1))
    Y = np.tanh(X @ W) + 0.05 * rng.normal(size=(n, m or 1))
    return X, (Y.ravel() if m is None else Y).astype(np.float32)


def weights(module: nn.Module) -> list[torch.Tensor]:
    return [v.detach().clone() for v in module.state_dict().values()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(u, v) for u, v in zip(a, b, strict=True))


# ----------------------------------------------------------------------------- basic behaviour
def test_regression_learns_and_returns_result():
    X, y = regression_data()
    module = mlp()
    before = float(nn.functional.mse_loss(predict_module(module, X).ravel(), torch.from_numpy(y)))
    res = fit_module(module, X, y, max_epochs=30, learning_rate=1e-2, random_state=0)
    after = float(nn.functional.mse_loss(predict_module(module, X).ravel(), torch.from_numpy(y)))
    assert after < 0.2 * before
    assert res.module is module and not module.training
    assert res.n_epochs == 30 and res.stop_reason == "max_epochs"
    assert res.best_epoch is None and res.best_valid_loss is None
    assert res.n_train == 300 and res.n_valid == 0 and res.recoveries == []
    assert res.device == torch.device("cpu") and res.fit_time > 0
    # the last epoch's recorded train loss is close to the loss of the final weights
    assert res.history[-1]["train_loss"] == pytest.approx(after, rel=0.3)


def test_deterministic_for_a_random_state():
    X, y = regression_data()
    runs = []
    for _ in range(2):
        module = mlp(dropout=0.2)  # dropout draws from the (forked) global RNG
        res = fit_module(module, X, y, max_epochs=8, early_stopping=True, random_state=42)
        runs.append((weights(module), res.history.column("train_loss"), res.history.column("valid_loss")))
    (w1, t1, v1), (w2, t2, v2) = runs
    assert same(w1, w2)
    assert t1 == t2 and v1 == v2
    other = mlp(dropout=0.2)
    res3 = fit_module(other, X, y, max_epochs=8, early_stopping=True, random_state=43)
    assert res3.history.column("train_loss") != t1


def test_global_rng_untouched_and_numpy_generator_seed():
    X, y = regression_data(n=100)
    state = torch.get_rng_state()
    fit_module(mlp(dropout=0.1), X, y, max_epochs=2, random_state=0)
    assert torch.equal(state, torch.get_rng_state())
    r1 = fit_module(mlp(), X, y, max_epochs=3, random_state=np.random.default_rng(5))
    r2 = fit_module(mlp(), X, y, max_epochs=3, random_state=np.random.default_rng(5))
    assert r1.history.column("train_loss") == r2.history.column("train_loss")


def test_history_contents_and_frame():
    X, y = regression_data()
    Xv, yv = regression_data(n=80, seed=1)
    res = fit_module(mlp(), X, y, max_epochs=5, validation_data=(Xv, yv), metric="r2", random_state=0)
    h = res.history
    assert isinstance(h, History) and len(h) == 5 == res.n_epochs
    assert h.column("epoch") == [1, 2, 3, 4, 5]
    assert set(h[0]) == {"epoch", "train_loss", "valid_loss", "valid_metric", "valid_loss_best",
                         "learning_rate", "duration"}
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["valid_loss"]) for r in h)
    assert all(r["learning_rate"] == 1e-3 and r["duration"] >= 0 for r in h)
    assert res.metric_name == "r2" and res.n_valid == 80
    # validation data without early stopping: recorded, but no restore and no early stop
    assert res.stop_reason == "max_epochs"
    assert res.best_epoch == int(np.argmin(h.column("valid_loss"))) + 1
    # the recorded valid metric is the r2 of the final weights (no restore happened)
    pred = predict_module(res.module, Xv).ravel().numpy()
    r2 = 1 - ((yv - pred) ** 2).sum() / ((yv - yv.mean()) ** 2).sum()
    assert h[-1]["valid_metric"] == pytest.approx(r2, rel=1e-4, abs=1e-5)
    frame = h.to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 5
    assert list(frame["train_loss"]) == h.column("train_loss")
    # without validation data the validation fields are None
    res2 = fit_module(mlp(), X, y, max_epochs=2, random_state=0)
    assert res2.history[0]["valid_loss"] is None and res2.history[0]["valid_metric"] is None
    assert History().to_frame().empty


def test_pandas_inputs():
    X, y = regression_data(n=120)
    df = pd.DataFrame(X, columns=list("abcd"))
    res = fit_module(mlp(), df, pd.Series(y), max_epochs=2, random_state=0)
    assert res.n_train == 120


# ----------------------------------------------------------------------------- early stopping
def test_early_stopping_restores_best_weights():
    # Validation targets are the negated training targets: once the model starts to learn the
    # training task the validation loss rises, so the best epoch is an early one.
    X, y = regression_data(n=256)
    Xv = X[:64]
    yv = -y[:64]
    snapshots = {}

    def keep(epoch, record, module):
        snapshots[epoch] = weights(module)

    res = fit_module(mlp(), X, y, max_epochs=100, learning_rate=3e-3, early_stopping=True,
                     validation_data=(Xv, yv), patience=3, random_state=0, callbacks=[keep])
    losses = res.history.column("valid_loss")
    assert res.stop_reason == "early_stopping"
    assert res.best_epoch == int(np.argmin(losses)) + 1
    assert res.n_epochs == res.best_epoch + 3 < 100
    assert losses[-1] > res.best_valid_loss == min(losses)
    assert res.history.column("valid_loss_best")[res.best_epoch - 1] is True
    final = weights(res.module)
    assert same(final, snapshots[res.best_epoch])
    assert not same(final, snapshots[res.n_epochs])


def test_early_stopping_with_internal_split_and_min_delta():
    X, y = regression_data(n=400)
    res = fit_module(mlp(), X, y, max_epochs=50, early_stopping=True, validation_fraction=0.25,
                     patience=2, min_delta=10.0, random_state=0)
    # no improvement can exceed min_delta=10 after the first epoch
    assert res.n_train == 300 and res.n_valid == 100
    assert res.best_epoch == 1 and res.n_epochs == 3 and res.stop_reason == "early_stopping"


def test_early_stopping_needs_two_rows():
    with pytest.raises(DataError, match="only 1 samples"):
        fit_module(mlp(), np.ones((1, 4)), np.ones(1), early_stopping=True)


# ----------------------------------------------------------------------------- numerical safety
class NaNOnce(nn.Module):
    """Emits NaN on the ``when``-th training forward call (only once, ``times`` times in all)."""

    def __init__(self, inner: nn.Module, when: int, times: int = 1):
        super().__init__()
        self.inner, self.when, self.times, self.calls = inner, when, times, 0

    def forward(self, x):
        out = self.inner(x)
        if self.training:
            self.calls += 1
            if self.when <= self.calls < self.when + self.times:
                return out * float("nan")
        return out


def test_nan_recovery_restores_state_and_lowers_learning_rate():
    X, y = regression_data(n=256)  # 4 batches of 64 per epoch
    module = NaNOnce(mlp(), when=10)  # inside epoch 3
    res = fit_module(module, X, y, max_epochs=6, learning_rate=1e-2, random_state=0)
    assert len(res.recoveries) == 1
    rec = res.recoveries[0]
    assert rec["epoch"] == 3 and "train loss" in rec["reason"]
    assert rec["learning_rate_before"] == 1e-2 and rec["learning_rate_after"] == pytest.approx(1e-3)
    lrs = res.history.column("learning_rate")
    assert lrs[:2] == [1e-2, 1e-2] and lrs[2:] == pytest.approx([1e-3] * 4)
    assert res.n_epochs == 6 and all(math.isfinite(v) for v in res.history.column("train_loss"))
    assert all(torch.isfinite(w).all() for w in weights(module))
    assert torch.isfinite(predict_module(module, X)).all()


def test_repeated_recoveries_keep_lowering_the_learning_rate():
    X, y = regression_data(n=256)  # 4 batches per epoch: NaN on forwards 5..16 fails epoch 2 three times
    res = fit_module(NaNOnce(mlp(), when=5, times=12), X, y, max_epochs=3, learning_rate=1e-2,
                     max_recoveries=3, random_state=0)
    assert [r["epoch"] for r in res.recoveries] == [2, 2, 2]
    assert [r["learning_rate_after"] for r in res.recoveries] == pytest.approx([1e-3, 1e-4, 1e-5])
    assert res.learning_rate == pytest.approx(1e-5)


def test_restore_gives_back_model_and_optimizer_state_twice():
    module = mlp()
    opt = make_optimizer("adam", module.parameters(), learning_rate=1e-2)
    X = torch.randn(32, 4)

    def step():
        opt.zero_grad()
        module(X).pow(2).mean().backward()
        opt.step()

    step()
    snap = _snapshot(module, opt)
    w0 = weights(module)
    m0 = [s["exp_avg"].clone() for s in opt.state.values()]
    for _ in range(2):  # restoring twice from one snapshot: the snapshot must not be aliased
        step()
        step()
        _restore(snap, module, opt)
        assert same(weights(module), w0)
        assert same([s["exp_avg"] for s in opt.state.values()], m0)
        assert all(int(s["step"]) == 1 for s in opt.state.values())


def test_unrecoverable_nan_raises():
    X, y = regression_data(n=128)
    with pytest.raises(NumericalError, match="after 2 recoveries"):
        fit_module(NaNOnce(mlp(), when=1, times=10**9), X, y, max_epochs=5, max_recoveries=2)
    with pytest.raises(NumericalError, match="recovery is disabled"):
        fit_module(NaNOnce(mlp(), when=1), X, y, max_epochs=5, max_recoveries=0)


def test_overflowing_targets_raise_numerical_error():
    # y**2 overflows float32: the loss is inf whatever the learning rate
    X, y = regression_data(n=64)
    with pytest.raises(NumericalError, match="non-finite"):
        fit_module(mlp(), X, y * 1e25, max_epochs=3)


class NaNInEval(nn.Module):
    """Finite while training, NaN in eval mode: only the final check can see it."""

    def __init__(self):
        super().__init__()
        self.inner = mlp()

    def forward(self, x):
        out = self.inner(x)
        return out if self.training else out * float("nan")


def test_model_predicting_nan_is_never_returned():
    X, y = regression_data(n=64)
    with pytest.raises(NumericalError, match="predicts NaN or inf on 64 of 64"):
        fit_module(NaNInEval(), X, y, max_epochs=2)


def test_num_threads_is_restored():
    X, y = regression_data(n=64)
    before = torch.get_num_threads()
    seen = []
    fit_module(mlp(), X, y, max_epochs=1, num_threads=1,
               callbacks=[lambda e, r, m: seen.append(torch.get_num_threads())])
    assert seen == [1] and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="num_threads"):
        fit_module(mlp(), X, y, num_threads=0)
    # "auto" (the default): one thread for a small network on the CPU; None leaves torch alone
    seen.clear()
    fit_module(mlp(), X, y, max_epochs=1, callbacks=[lambda e, r, m: seen.append(torch.get_num_threads())])
    fit_module(mlp(), X, y, max_epochs=1, num_threads=None,
               callbacks=[lambda e, r, m: seen.append(torch.get_num_threads())])
    assert seen == [1, before] and torch.get_num_threads() == before


def test_clip_grad_norm_trains():
    X, y = regression_data(n=128)
    res = fit_module(mlp(), X, y, max_epochs=5, clip_grad_norm=0.5, random_state=0)
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]


# ----------------------------------------------------------------------------- tasks
def test_multiclass_cross_entropy():
    rng = np.random.default_rng(0)
    centers = np.array([[3, 0], [-3, 0], [0, 3]])
    labels = rng.integers(0, 3, size=300)
    X = centers[labels] + rng.normal(size=(300, 2))
    res = fit_module(mlp(2, 3), X, labels, loss="cross_entropy", max_epochs=20, learning_rate=1e-2,
                     early_stopping=True, validation_fraction=0.2, random_state=0)
    assert res.metric_name == "accuracy"
    assert res.history[-1]["valid_metric"] > 0.9
    pred = predict_module(res.module, X).argmax(1).numpy()
    assert (pred == labels).mean() > 0.9
    # float labels holding integers are accepted
    fit_module(mlp(2, 3), X, labels.astype(float), loss="cross_entropy", max_epochs=1)


def test_stratified_split_keeps_class_proportions():
    X = np.random.default_rng(0).normal(size=(200, 2))
    labels = np.r_[np.zeros(180, int), np.ones(20, int)]
    seen = {}

    class Grab(Callback):
        def on_train_begin(self, module, optimizer):
            seen["optimizer"] = optimizer

    res = fit_module(mlp(2, 2), X, labels, loss="cross_entropy", max_epochs=1, early_stopping=True,
                     validation_fraction=0.1, random_state=0, callbacks=[Grab()])
    assert res.n_valid == 20 and isinstance(seen["optimizer"], torch.optim.Optimizer)
    # stratified: the 20 validation rows hold exactly 2 of the minority class, reproducibly
    train, valid = _split(200, 0.1, torch.from_numpy(labels), True, seed=3)
    assert len(valid) == 20 and labels[valid].sum() == 2 and len(np.union1d(train, valid)) == 200
    again = _split(200, 0.1, torch.from_numpy(labels), True, seed=3)
    assert np.array_equal(valid, again[1])
    # a class with a single member cannot be stratified: fall back to a plain random split
    lonely = np.r_[np.zeros(199, int), 1]
    assert len(_split(200, 0.1, torch.from_numpy(lonely), True, seed=3)[1]) == 20


def test_binary_bce():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3))
    yb = (X[:, 0] + X[:, 1] > 0).astype(int)
    res = fit_module(mlp(3, 1), X, yb, loss="bce", max_epochs=20, learning_rate=1e-2,
                     validation_data=(X, yb), random_state=0)
    assert res.history[-1]["valid_metric"] > 0.9


def test_multi_output_regression():
    X, Y = regression_data(n=300, m=2)
    module = mlp(4, 2)
    res = fit_module(module, X, Y, max_epochs=40, learning_rate=1e-2, early_stopping=True, random_state=0)
    pred = predict_module(module, X).numpy()
    assert pred.shape == (300, 2)
    assert ((pred - Y) ** 2).mean() < 0.1 * Y.var(0).mean()
    assert res.metric_name == "mse"


def test_one_column_target_is_not_broadcast():
    # y (n,) against outputs (n, 1) must not broadcast to (n, n): the fit must reach a low error
    X, y = regression_data(n=200)
    module = mlp()
    fit_module(module, X, y, max_epochs=40, learning_rate=1e-2, random_state=0)
    pred = predict_module(module, X).ravel().numpy()
    assert ((pred - y) ** 2).mean() < 0.1 * y.var()
    # (n, 1) targets for a module with (n,) outputs work too
    squeeze = nn.Sequential(mlp(), nn.Flatten(0))
    fit_module(squeeze, X, y[:, None], max_epochs=1)


def test_custom_loss_and_metric():
    X, y = regression_data(n=128)
    calls = []

    def my_loss(out, target):
        calls.append(out.shape)
        return ((out.ravel() - target) ** 2).mean()

    res = fit_module(mlp(), X, y, loss=my_loss, metric=lambda o, t: float((o.ravel() - t).abs().max()),
                     validation_data=(X, y), max_epochs=2, random_state=0)
    assert calls and res.metric_name == "custom" and res.history[0]["valid_metric"] > 0
    res = fit_module(mlp(), X, y, loss="huber", metric=False, validation_data=(X, y), max_epochs=1)
    assert res.history[0]["valid_metric"] is None and res.metric_name is None
    with pytest.raises(ValueError, match="0-d tensor"):
        fit_module(mlp(), X, y, loss=lambda o, t: (o.ravel() - t) ** 2, max_epochs=1)


def test_a_custom_loss_that_broadcasts_outputs_against_targets_is_refused():
    # F.mse_loss of (n, 1) outputs and (n,) targets is an (n, n) loss with only a torch warning:
    # training fitted the wrong thing (R^2 0.77 instead of 0.83 in the review's example).
    X, y = regression_data(n=64)
    with pytest.raises(DataError, match=r"shape \(2, 1\) and targets of shape \(2,\).*y\.reshape\(-1, 1\)"):
        fit_module(mlp(), X, y, loss=F.mse_loss, max_epochs=1)
    res = fit_module(mlp(), X, y[:, None], loss=F.mse_loss, max_epochs=1, random_state=0)
    reference = fit_module(mlp(), X, y, loss="mse", max_epochs=1, random_state=0)
    assert res.history[0]["train_loss"] == pytest.approx(reference.history[0]["train_loss"], rel=1e-6)


# ----------------------------------------------------------------------------- optimizers, callbacks
@pytest.mark.parametrize("optimizer", ["adam", "adamw", "rmsprop", "sgd", torch.optim.Adagrad,
                                       functools.partial(torch.optim.SGD, momentum=0.5, nesterov=True)])
def test_optimizers_train(optimizer):
    X, y = regression_data(n=200)
    res = fit_module(mlp(), X, y, optimizer=optimizer, learning_rate=1e-2, weight_decay=1e-4,
                     max_epochs=10, random_state=0)
    assert res.history[-1]["train_loss"] < 0.7 * res.history[0]["train_loss"]


def test_optimizer_options():
    params = list(mlp().parameters())
    sgd = make_optimizer("sgd", params, learning_rate=0.1)
    assert sgd.param_groups[0]["momentum"] == 0.9
    sgd0 = make_optimizer("sgd", params, learning_rate=0.1, momentum=0.0)
    assert sgd0.param_groups[0]["momentum"] == 0.0
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("lbfgs-ish", params, learning_rate=0.1)
    with pytest.raises(ValueError, match="not an optimizer instance"):
        make_optimizer(torch.optim.Adam(params), params, learning_rate=0.1)
    with pytest.raises(ValueError, match="not a torch.optim.Optimizer"):
        make_optimizer(lambda p, **kw: 3, params, learning_rate=0.1)


def test_callbacks_stop_training():
    X, y = regression_data(n=128)
    events = []

    class Stopper(Callback):
        def on_train_begin(self, module, optimizer):
            events.append("begin")

        def on_epoch_end(self, epoch, record, module):
            events.append(epoch)
            return epoch == 3

        def on_train_end(self, module, history):
            events.append(("end", len(history)))

    seen = []
    res = fit_module(mlp(), X, y, max_epochs=50, callbacks=[Stopper(), lambda e, r, m: seen.append(r)])
    assert res.stop_reason == "callback" and res.n_epochs == 3
    assert events == ["begin", 1, 2, 3, ("end", 3)]
    assert [r["epoch"] for r in seen] == [1, 2, 3]


def test_verbose_progress_bar(capsys):
    X, y = regression_data(n=64)
    fit_module(mlp(), X, y, max_epochs=2, verbose=True, validation_data=(X, y))
    assert "training" in capsys.readouterr().err
    fit_module(mlp(), X, y, max_epochs=2)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


# ----------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "X, y, kwargs, match",
    [
        (np.ones((10, 4)), np.ones(9), {}, "10 rows but y has 9"),
        (np.ones((0, 4)), np.ones(0), {}, "empty"),
        (np.where(np.eye(10, 4) > 0, np.nan, 1.0), np.ones(10), {}, r"X contains NaN .*\(4 rows\)"),
        (np.ones((10, 4)), np.r_[np.ones(9), np.inf], {}, "y contains NaN or infinite"),
        (np.ones((10, 4)), np.ones(10), {"validation_data": (np.ones((3, 4)), [1, np.nan, 1])},
         "y_valid contains NaN"),
        (np.ones((10, 4)), np.ones(10), {"validation_data": (np.ones((3, 5)), np.ones(3))},
         "sample shape"),
        (np.ones((10, 4)), np.ones((10, 3)), {}, "1 outputs per sample"),
        (np.ones((10, 4)), np.full(10, 0.5), {"loss": "cross_entropy"}, "integer class indices"),
        (np.ones((10, 4)), np.full(10, 2), {"loss": "bce"}, r"in \[0, 1\]"),
        (np.ones((10, 4)), np.array(list("abcdefghij")), {}, "non-numeric"),
        (np.ones(()), np.ones(()), {}, "one row per sample"),
    ],
)
def test_bad_data(X, y, kwargs, match):
    with pytest.raises(DataError, match=match):
        fit_module(mlp(), X, y, max_epochs=1, **kwargs)


def test_bad_classification_targets():
    X = np.ones((10, 4))
    with pytest.raises(DataError, match="class index 5 but the module has only 3"):
        fit_module(mlp(4, 3), X, np.arange(10) % 6, loss="cross_entropy")
    with pytest.raises(DataError, match="C >= 2"):
        fit_module(mlp(4, 1), X, np.zeros(10, int), loss="cross_entropy")
    with pytest.raises(DataError, match="negative"):
        fit_module(mlp(4, 3), X, -np.ones(10, int), loss="cross_entropy")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"patience": 0}, "patience"),
        ({"validation_fraction": "0.1"}, "validation_fraction must be in \\(0, 1\\), got '0.1'"),
        ({"patience": True}, "patience must be an integer >= 1, got True"),
        ({"max_recoveries": -1}, "max_recoveries"),
        ({"recovery_factor": 2.0}, "recovery_factor"),
        ({"loss": "hinge"}, "unknown loss"),
        ({"metric": "auc"}, "unknown metric"),
        ({"random_state": "seed"}, "random_state"),
        ({"random_state": True}, "bool"),
        ({"device": "tpu-ish"}, "not a device"),
        ({"validation_data": (np.ones((3, 4)),)}, "pair"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_module(mlp(), np.ones((10, 4)), np.ones(10), **kwargs)


def test_module_without_parameters():
    with pytest.raises(ValueError, match="no parameters"):
        fit_module(nn.Identity(), np.ones((4, 1)), np.ones(4))


# ----------------------------------------------------------------------------- prediction, devices
def test_predict_module_batches_and_keeps_mode():
    module = mlp()
    module.train()
    X = np.random.default_rng(0).normal(size=(1000, 4))
    full = module(torch.as_tensor(X, dtype=torch.float32)).detach()
    out = predict_module(module, X, batch_size=97)
    assert out.shape == (1000, 1) and torch.allclose(out, full, atol=1e-6)
    assert module.training
    with pytest.raises(DataError, match="at least one row"):
        predict_module(module, np.ones((0, 4)))


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected and resolve_device(None).type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_trains_on_cuda():
    X, y = regression_data(n=300)
    module = mlp()
    res = fit_module(module, X, y, max_epochs=5, early_stopping=True, device="cuda", random_state=0)
    assert res.device.type == "cuda" and next(module.parameters()).is_cuda
    assert predict_module(module, X).is_cuda
    res2 = fit_module(mlp(), X, y, max_epochs=5, early_stopping=True, device="cuda", random_state=0)
    assert res.history.column("train_loss") == res2.history.column("train_loss")


# ----------------------------------------------------------------------------- review follow-ups
def test_multilabel_bce_accuracy_is_per_label():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    Y = (rng.uniform(size=(40, 3)) > 0.5).astype(np.float32)
    for n_valid in (3, 7):  # 3 rows = 3 labels: argmax against (n, m) labels broadcast silently before
        res = fit_module(nn.Linear(3, 3), X, Y, loss="bce", validation_data=(X[:n_valid], Y[:n_valid]),
                         max_epochs=1, random_state=0)
        with torch.no_grad():
            out = res.module(torch.from_numpy(X[:n_valid]))
        expected = ((out > 0) == torch.from_numpy(Y[:n_valid] > 0.5)).float().mean().item()
        assert res.history.column("valid_metric")[-1] == pytest.approx(expected)


def test_training_options_that_cannot_work_are_refused_with_the_reason():
    X, y = regression_data(n=40)
    labels = np.arange(40) % 3
    cases = [
        (dict(optimizer_kwargs={"lr": 0.1}), y, 1, "set by the learning_rate= and weight_decay= arguments"),
        (dict(loss="cross_entropy", metric="r2"), labels, 3, "use 'accuracy' or a callable"),
        (dict(metric=lambda o, t: (o - t).abs().reshape(-1), early_stopping=True), y, 1, "one number"),
        (dict(num_threads=True), y, 1, "num_threads"),
        (dict(callbacks=[Callback]), y, 1, "not classes"),
    ]
    for kwargs, target, outputs, match in cases:
        with pytest.raises(ValueError, match=match):
            fit_module(mlp(d_out=outputs), X, target, max_epochs=1, **kwargs)


def test_float64_custom_loss_single_callback_and_nullable_inputs():
    X, y = regression_data(n=40)
    res = fit_module(mlp(), X, y.reshape(-1, 1), max_epochs=2,
                     loss=lambda o, t: ((o.double() - t.double()) ** 2).mean())
    assert res.n_epochs == 2

    class StopAtTwo(Callback):
        def on_epoch_end(self, epoch, record, module):
            return epoch >= 2

    assert fit_module(mlp(), X, y, max_epochs=5, callbacks=StopAtTwo()).n_epochs == 2  # not in a list
    frame = pd.DataFrame(X, columns=list("abcd")).astype({"a": "Float64"})
    frame.loc[3, "a"] = pd.NA
    with pytest.raises(DataError, match="NaN"):  # reported as missing, not as "non-numeric"
        fit_module(mlp(), frame, y, max_epochs=1)


def test_history_frame_is_indexed_by_epoch_without_ambiguity():
    X, y = regression_data(n=40)
    frame = fit_module(mlp(), X, y, max_epochs=3, early_stopping=True).history.to_frame()
    assert list(frame.index) == [1, 2, 3] and frame.loc[2, "epoch"] == 2
    assert len(frame.sort_values("epoch")) == 3 and "epoch" in frame.reset_index(drop=True)


# ----------------------------------------------------------------------------- review 2 follow-ups
def test_float16_parameters_whose_sum_overflows_are_not_treated_as_diverged():
    module = nn.Linear(300, 1).half()
    with torch.no_grad():
        module.weight.fill_(250.0)  # every value finite, their float16 sum (75000) is not
    X = np.random.default_rng(0).normal(size=(20, 300)).astype(np.float32) * 1e-3
    res = fit_module(module, X, np.zeros(20, np.float32), max_epochs=2, learning_rate=1e-6, optimizer="sgd")
    assert res.recoveries == [] and res.learning_rate == 1e-6


def test_a_non_finite_parameter_is_still_recovered_from():
    class WithSpare(nn.Module):  # the spare parameter does not enter the loss: only the check can see it
        def __init__(self):
            super().__init__()
            self.net, self.spare = mlp(), nn.Parameter(torch.zeros(3))

        def forward(self, x):
            return self.net(x)

    def poison(epoch, record, module):
        if epoch == 1:
            with torch.no_grad():
                module.spare[1] = float("inf")

    X, y = regression_data(n=64)
    module = WithSpare()
    res = fit_module(module, X, y, max_epochs=3, callbacks=[poison], random_state=0)
    assert [r["epoch"] for r in res.recoveries] == [2] and res.recoveries[0]["reason"].startswith("parameters")
    assert torch.isfinite(module.spare).all() and res.n_epochs == 3


def test_accuracy_metric_with_a_regression_loss_is_refused():
    X, y = regression_data(n=40)
    for loss in ("mse", "mae", "huber"):
        with pytest.raises(ValueError, match="metric 'accuracy' reads the outputs as classification logits"):
            fit_module(mlp(), X, (y > 0).astype(np.float32), loss=loss, metric="accuracy", max_epochs=1,
                       validation_data=(X, y))


def test_callbacks_given_as_a_generator_are_all_called():
    X, y = regression_data(n=40)
    calls = []
    fit_module(mlp(), X, y, max_epochs=2, callbacks=(lambda e, r, m: calls.append(e) for _ in range(2)))
    assert calls == [1, 1, 2, 2]
    with pytest.raises(ValueError, match="callbacks must be a Callback, a callable or a sequence"):
        fit_module(mlp(), X, y, max_epochs=1, callbacks=5)


def test_a_validation_split_without_training_rows_is_a_data_error_saying_what_to_do():
    X, y = regression_data(n=40)
    with pytest.raises(DataError, match="leaves no rows to train on; lower validation_fraction"):
        fit_module(mlp(), X[:2], y[:2], early_stopping=True, validation_fraction=0.99)
    with pytest.raises(DataError, match="leaves no rows to train on"):
        fit_module(mlp(d_out=2), X[:4], np.array([0, 1, 0, 1]), loss="cross_entropy", early_stopping=True,
                   validation_fraction=0.9)
    assert fit_module(mlp(), X[:2], y[:2], early_stopping=True, validation_fraction=0.5,
                      max_epochs=1).n_train == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"recovery_factor": "0.1"}, "recovery_factor must be a number in \\(0, 1\\), got '0.1'"),
        ({"min_delta": "0"}, "min_delta must be a number >= 0, got '0'"),
        ({"clip_grad_norm": "1"}, "clip_grad_norm must be None or a number > 0, got '1'"),
        ({"batch_size": True}, "batch_size must be an integer >= 1, got True"),
        ({"max_epochs": True}, "max_epochs must be an integer >= 1, got True"),
        ({"batch_size": 2.5}, "batch_size must be an integer >= 1, got 2.5"),
    ],
)
def test_parameters_of_the_wrong_type_are_value_errors_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_module(mlp(), np.ones((10, 4)), np.ones(10), **kwargs)


@pytest.mark.parametrize("batch_size", [2.5, True, "8", 0])
def test_predict_module_refuses_a_batch_size_that_is_not_a_count(batch_size):
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        predict_module(mlp(), np.ones((10, 4)), batch_size=batch_size)


def test_r2_metric_follows_scikit_learn_for_constant_targets_and_one_row():
    from sklearn.metrics import r2_score

    from taskneurons.training import METRICS

    r2 = METRICS["r2"][0]
    y = torch.tensor([[2.0, 1.0], [2.0, 3.0], [2.0, 2.0]])
    cases = [(y, y.clone()), (y, y + 0.5), (y[:, :1], y[:, :1]), (y[:, :1], y[:, 1:])]
    for target, out in cases:
        assert r2(out, target).item() == pytest.approx(r2_score(target.numpy(), out.numpy()))
    assert math.isnan(r2(y[:1] + 1, y[:1]).item())  # sklearn: nan (and a warning) for one sample
    res = fit_module(mlp(), *regression_data(n=40), max_epochs=1, metric="r2",
                     validation_data=(np.ones((5, 4)), np.full(5, 0.3)))
    assert res.history[0]["valid_metric"] == 0.0  # a constant target, not -inf


def test_saved_history_is_read_back_exactly(tmp_path):
    from taskneurons import TaskNeuronRegressor
    from taskneurons.persistence import load, save_estimator

    X, y = regression_data(n=60)
    for n_rows in (60, 8):  # with and (below 10 rows: no early stopping) without validation losses
        model = TaskNeuronRegressor((8,), formula="x**2 + x", max_epochs=3, random_state=0, device="cpu")
        model.fit(X[:n_rows], y[:n_rows])
        save_estimator(model, tmp_path / "m.tn")
        back = load(tmp_path / "m.tn").history_
        pd.testing.assert_frame_equal(back, model.history_, check_exact=True)
        assert back.equals(model.history_)
        assert back["train_loss"].tolist() == model.history_["train_loss"].tolist()


# ----------------------------------------------------------------------------- plots
def test_new_figure_leaves_the_callers_backend_and_pyplot_alone():
    import subprocess
    import sys

    code = ("import matplotlib; matplotlib.use('svg'); import matplotlib.pyplot as plt\n"
            "from taskneurons.plots import new_figure\n"
            "new_figure(2)\n"
            "print(matplotlib.get_backend(), plt.get_fignums())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["svg", "[]"]


def test_save_figure_writes_exactly_the_given_path(tmp_path):
    from taskneurons.plots import new_figure, save_figure

    figure, (ax,) = new_figure(1)
    ax.plot([1, 2], [3, 4])
    for name, magic in (("nosuffix", b"\x89PNG"), ("a.png", b"\x89PNG"), ("b.pdf", b"%PDF"),
                        ("c.v2", b"\x89PNG")):
        save_figure(figure, tmp_path / name)
        assert (tmp_path / name).read_bytes().startswith(magic), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.pdf", "c.v2", "nosuffix"]
    buffer = io.BytesIO()
    save_figure(figure, buffer)
    assert buffer.getvalue().startswith(b"\x89PNG")


def test_plot_history_accepts_the_history_fit_module_returns():
    from taskneurons.plots import new_figure, plot_history

    X, y = regression_data(n=40)
    result = fit_module(mlp(), X, y, max_epochs=2, validation_data=(X, y), metric="r2")
    _, (ax,) = new_figure(1)
    plot_history(ax, {"net": result.history})
    assert list(ax.lines[0].get_ydata()) == result.history.column("valid_loss")
    assert ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="no values of 'valid_loss' and no 'train_loss' column"):
        plot_history(ax, {"a": pd.DataFrame({"valid_loss": [np.nan]})})


def test_plot_history_shows_a_one_epoch_curve():
    from taskneurons.plots import new_figure, plot_history

    _, (ax,) = new_figure(1)
    plot_history(ax, {"a": pd.DataFrame({"train_loss": [0.5]})})  # one epoch: a visible marker
    assert ax.lines[0].get_marker() not in (None, "None", "", " ")


def test_plot_history_draws_non_positive_values_on_a_linear_axis():
    from taskneurons.plots import new_figure, plot_history

    _, (ax,) = new_figure(1)
    plot_history(ax, {"a": pd.DataFrame({"valid_metric": [-0.5, 0.2, 0.4]})}, column="valid_metric")
    assert ax.get_yscale() == "linear"  # r2 below 0 cannot be drawn on a log axis
