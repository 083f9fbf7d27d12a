"""Numerical blow-ups: large magnitudes (1e6), high degrees (7) and float32 never give a silent inf/NaN.

The decisions these tests pin down (see also SECURITY.md and TaskLinear's "Numerics" section):

* ``TaskLinear`` itself does not inspect values (like ``nn.Linear``; a check in ``forward`` would
  cost a device sync per call and break ``torch.compile`` graphs): fed 1e6 in float32, ``x**7``
  is 1e42 > 3.4e38 and the output is documented to be non-finite (inf, and NaN where +inf and
  -inf meet in the matmul).
* The estimators scale and clip inputs, refuse a network that overflows before training with a
  NumericalError that says why, and raise NumericalError rather than return a NaN prediction.
* Deep TaskMLPs (5 hidden layers, degree 7) stay finite on the paper's datasets, scaled as the
  estimators scale them, in float32, at initialisation and while training -- in the estimators'
  layout (the neuron in the first layer) and with ``norm="layer"`` in every layer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import taskneurons as tn
from taskneurons import Formula, TaskNeuronClassifier, TaskNeuronRegressor
from taskneurons.errors import DataError, NumericalError
from taskneurons.nn import TaskLinear, TaskMLP
from taskneurons.vsr import VSR

DEG7 = "x**7 + x**6 + x**5 + x**4 + x**3 + x**2 + x"
PAPER = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "paper"
PAPER_SETS = sorted(p.name.split(".")[0] for p in PAPER.glob("*.csv.gz")) if PAPER.is_dir() else []
FAST = {"hidden_layer_sizes": (8,), "max_epochs": 20, "random_state": 0}


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# TaskLinear on its own: documented IEEE behaviour, float64 headroom.
# ---------------------------------------------------------------------------------------------

def test_raw_tasklinear_float32_overflow_is_documented_not_hidden():
    doc = TaskLinear.__doc__
    assert "Numerics" in doc and "inf" in doc and "NaN" in doc and "1e42" in doc
    x = torch.full((4, 3), 1e6)
    x[:, 1] = -1e6
    layer32 = TaskLinear(3, 5, "x**7 + x")
    with torch.no_grad():
        out32 = layer32(x)
    assert not torch.isfinite(out32).any()  # inf, and NaN where +inf meets -inf: as documented
    assert torch.isnan(out32).any()
    layer64 = TaskLinear(3, 5, "x**7 + x", dtype=torch.float64)
    with torch.no_grad():
        layer64.load_state_dict({k: v.double() for k, v in layer32.state_dict().items()})
        out64 = layer64(x.double())
    assert torch.isfinite(out64).all()  # 1e42 fits float64: the same layer, no overflow
    W, b = layer64.term_weight(0), layer64.bias
    expected = x.double() ** 7 @ W.T + x.double() @ layer64.term_weight(1).T + b
    torch.testing.assert_close(out64, expected, rtol=1e-9, atol=0.0)


@pytest.mark.parametrize("basis", ["terms", "orthonormal"])
def test_tasklinear_degree7_float32_is_finite_on_the_inputs_estimators_produce(basis):
    x = torch.rand(4096, 16, generator=_gen()) * 2 - 1  # scaled and clipped inputs lie in [-1, 1]
    x[0] = 1.0
    x[1] = -1.0
    layer = TaskLinear(16, 64, DEG7, basis=basis)
    with torch.no_grad():
        out = layer(x)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert out.abs().max() < 100


# ---------------------------------------------------------------------------------------------
# Estimators: scaling, clipping, and clear errors instead of NaN predictions.
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big_data():
    rng = np.random.default_rng(0)
    U = rng.uniform(-1, 1, size=(300, 4))
    return U * 1e6, Formula("x**7 + x").predict(U)


@pytest.mark.parametrize("scale_X", ["quantile", "minmax", "standard"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_regressor_x7_on_features_of_magnitude_1e6_predicts_finite(big_data, scale_X, dtype):
    X, y = big_data
    model = TaskNeuronRegressor(formula="x**7 + x", scale_X=scale_X, **FAST).fit(X.astype(dtype), y)
    predictions = model.predict(X.astype(dtype))
    assert np.isfinite(predictions).all()
    assert model.score(X, y) > 0.1  # learns something (20 epochs); the point is finiteness
    far = model.predict(X * 1e3)  # 1000x outside the training range: clipped, still finite
    assert np.isfinite(far).all()


def test_classifier_on_features_of_magnitude_1e6_predicts_probabilities(big_data):
    X, y = big_data
    model = TaskNeuronClassifier(formula="x**7 + x", **FAST).fit(X.astype(np.float32), y > np.median(y))
    proba = model.predict_proba(X * 1e3)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)


def test_prediction_overflow_is_an_error_not_a_nan(big_data):
    X, y = big_data
    # The guard (input_clip) switched off: a new input 1e6 times the training range reaches
    # 1e6**7 = 1e42 in float32. The user must get a NumericalError, never NaN predictions.
    model = TaskNeuronRegressor(formula="x**7 + x", scale_X="minmax", input_clip=None, **FAST).fit(X, y)
    assert np.isfinite(model.predict(X)).all()
    with pytest.raises(NumericalError, match="overflow .* input_clip"):
        model.predict(X * 1e6)
    clf = TaskNeuronClassifier(formula="x**7 + x", scale_X="minmax", input_clip=None, **FAST).fit(X, y > 0)
    for method in (clf.predict, clf.predict_proba):
        with pytest.raises(NumericalError, match="overflow"):
            method(X * 1e6)


def test_unscaled_inputs_that_overflow_are_refused_before_training(big_data):
    X, y = big_data
    with pytest.raises(NumericalError, match="not finite on the training inputs.*scale_X and input_clip"):
        TaskNeuronRegressor(formula="x**7 + x", scale_X=None, input_clip=None, **FAST).fit(X, y)


def test_deep_task_layers_that_overflow_at_init_are_refused_with_the_reason():
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(200, 6))
    y = X.sum(1)
    with pytest.raises(NumericalError, match="task_layers='all'.*task_layers='first'"):
        TaskNeuronRegressor(formula=DEG7, task_layers="all", hidden_layer_sizes=(64,) * 5, max_epochs=5,
                            random_state=0).fit(X, y)
    # the documented alternatives train and predict finite values
    for params in ({"task_layers": "first"}, {"task_layers": "all", "basis": "terms", "activation": "tanh"}):
        model = TaskNeuronRegressor(formula=DEG7, hidden_layer_sizes=(64,) * 5, max_epochs=5, random_state=0,
                                    **params).fit(X, y)
        assert np.isfinite(model.predict(X * 100)).all()


def test_huge_targets_are_scaled_without_overflow():
    """Target scaling is affine, so y * 1e308/max|y| must give the same network, scaled predictions."""
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, size=(120, 3))
    y = X.sum(1)
    for scale_y, target in (("standard", y), ("minmax", np.abs(y))):
        factor = 1e308 / np.abs(target).max()
        plain = TaskNeuronRegressor(formula="x", scale_y=scale_y, **FAST).fit(X, target)
        huge = TaskNeuronRegressor(formula="x", scale_y=scale_y, **FAST).fit(X, target * factor)
        predictions = huge.predict(X)
        assert np.isfinite(predictions).all()
        np.testing.assert_allclose(predictions / factor, plain.predict(X), rtol=1e-4, atol=1e-6)
    # a range wider than the largest float64 cannot be scaled: a clear error, not NaN targets
    with pytest.raises(DataError, match="so large that scaling them overflows"):
        TaskNeuronRegressor(formula="x", scale_y="minmax", **FAST).fit(X, np.sign(y) * 1.7e308)


# ---------------------------------------------------------------------------------------------
# VSR: degree 7 on 1e6 magnitudes, float32.
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", ["minmax", "shared", None])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vsr_degree7_on_1e6_magnitudes_is_finite_and_exact(big_data, scale, dtype):
    X, y = big_data
    vsr = VSR(max_degree=7, scale=scale, random_state=0).fit(X.astype(dtype), y)
    assert all(np.isfinite(vsr.formula_.coefficients)) and np.isfinite(vsr.formula_.constant)
    predictions = vsr.predict(X.astype(dtype))
    assert np.isfinite(predictions).all()
    assert vsr.score(X, y) > 0.99


def test_vsr_terms_that_overflow_at_predict_raise_numerical_error():
    rng = np.random.default_rng(3)
    U = rng.uniform(-1, 1, size=(300, 4))
    vsr = VSR(max_degree=7, scale=None, random_state=0).fit(U, Formula("x**7 + x").predict(U))
    assert np.isfinite(vsr.predict(U * 1e40)).all()  # 1e280: float64 still holds it
    with pytest.raises(NumericalError, match="not finite"):
        vsr.predict(U * 1e50)  # 1e350 overflows float64


def test_vsr_prediction_overflow_is_an_error_not_an_inf():
    rng = np.random.default_rng(4)
    U = rng.uniform(-1, 1, size=(300, 1))
    vsr = VSR(max_degree=1, scale=None, random_state=0).fit(U, 1e10 * U[:, 0])
    # The term x is finite at 1e300, but times the coefficient 1e10 it overflows float64.
    with pytest.raises(NumericalError, match="not finite"):
        vsr.predict(np.array([[1e300], [0.5]]))
    assert np.isfinite(vsr.predict(np.array([[1e290], [0.5]]))).all()


# ---------------------------------------------------------------------------------------------
# Deep TaskMLPs on the paper's datasets.
# ---------------------------------------------------------------------------------------------

#: The estimators' layout (the neuron in the first layer, linear layers after it, orthonormal
#: basis), and the documented guard for the neuron in every layer (norm="layer").
DEEP_CONFIGS = {
    "estimator_layout": {"formula": [DEG7] + ["x"] * 5, "basis": "orthonormal"},
    "every_layer_layernorm": {"formula": DEG7, "norm": "layer"},
}


@pytest.fixture(scope="module")
def paper_inputs():
    """Up to 512 rows of every paper dataset, encoded and scaled as the estimators do, float32."""
    out = {}
    for name in PAPER_SETS:
        X, y = tn.datasets.load(name, data_dir=PAPER, download=False)
        rows = np.random.default_rng(0).choice(len(X), size=min(512, len(X)), replace=False)
        X, y = X.iloc[rows], y.iloc[rows]
        encoder = TaskNeuronRegressor().make_encoder()
        Z = torch.from_numpy(encoder.fit_transform(X).astype(np.float32))
        codes = y.astype("category").cat.codes.to_numpy() if not np.issubdtype(y.dtype, np.floating) else y.to_numpy()
        target = (codes - codes.mean()) / (codes.std() or 1.0)
        out[name] = (Z, torch.from_numpy(target.astype(np.float32))[:, None])
    return out


def _finite_layers(net: torch.nn.Module, Z: torch.Tensor) -> torch.Tensor:
    h = Z
    for index, module in enumerate(net):
        h = module(h)
        assert h.dtype == torch.float32
        assert torch.isfinite(h).all(), f"layer {index} ({type(module).__name__}) is not finite"
    return h


@pytest.mark.skipif(not PAPER_SETS, reason="../shared/datasets/paper missing")
@pytest.mark.parametrize("config", sorted(DEEP_CONFIGS))
def test_deep_degree7_taskmlp_stays_finite_on_every_paper_dataset(paper_inputs, config):
    assert len(paper_inputs) == len(PAPER_SETS) >= 14
    for name, (Z, target) in paper_inputs.items():
        assert Z.abs().max() <= 1.0  # the estimators' scaling and clipping
        net = TaskMLP(Z.shape[1], [64] * 5, 1, activation="relu", generator=0, **DEEP_CONFIGS[config])
        assert len(net.task_layers) == 6
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        for _ in range(8):  # at init, then while training
            out = _finite_layers(net, Z)
            loss = torch.nn.functional.mse_loss(out, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            assert all(torch.isfinite(p).all() for p in net.parameters()), name
        _finite_layers(net, Z)


@pytest.mark.skipif(not PAPER_SETS, reason="../shared/datasets/paper missing")
def test_orthonormal_basis_in_every_deep_layer_overflows_at_init_as_documented(paper_inputs):
    """The case TaskMLP's docstring warns about and the estimators refuse (test above)."""
    assert "overflows already at" in TaskMLP.__doc__
    for name, (Z, _) in paper_inputs.items():
        net = TaskMLP(Z.shape[1], [64] * 5, 1, DEG7, basis="orthonormal", generator=0)
        with torch.no_grad():
            assert not torch.isfinite(net(Z)).all(), name
