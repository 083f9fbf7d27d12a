"""FactoredTaskLinear and term_weights="per_input": term weights shared per input, W_k = W diag(a_k)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from taskneurons import Formula, TaskNeuronClassifier, TaskNeuronRegressor
from taskneurons import load as load_model
from taskneurons.errors import DataError
from taskneurons.nn import FactoredTaskLinear, TaskLinear, TaskMLP, count_parameters, match_parameters

POLY = "2*x**3 - x**2 + 0.5*x"
GENERAL = "x**2 + sin(1.7*x) + exp(-1.2*x)"


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _randomise(layer: FactoredTaskLinear, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.term_coefficients.copy_(torch.randn(layer.term_coefficients.shape, generator=g,
                                                  dtype=layer.term_coefficients.dtype))
        if layer.inner_constants is not None:
            layer.inner_constants.mul_(1 + 0.1 * torch.rand(layer.inner_constants.shape, generator=g,
                                                            dtype=layer.inner_constants.dtype))


def test_at_init_it_is_nn_linear_with_the_same_random_stream():
    # TaskLinear("x") draws exactly nn.Linear's numbers from a generator (tests/test_nn.py).
    layer = FactoredTaskLinear(6, 4, POLY, basis="orthonormal")
    layer.reset_parameters(torch.Generator().manual_seed(3))
    linear = TaskLinear(6, 4, "x")
    linear.reset_parameters(torch.Generator().manual_seed(3))
    assert torch.equal(layer.weight, linear.weight) and torch.equal(layer.bias, linear.bias)
    assert torch.count_nonzero(layer.term_coefficients) == 0
    x = torch.rand(9, 6) * 2 - 1
    torch.testing.assert_close(layer(x), linear(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("formula", [POLY, GENERAL])
@pytest.mark.parametrize("basis", ["terms", "orthonormal"])
def test_it_is_the_task_layer_with_tied_term_weights(formula, basis):
    # y = b + sum_j W diag(c_j) phi_j(x) - W s, computed by the paper's layer (TaskLinear) with
    # W_j = W diag(c_j): the factored layer is a TaskLinear whose term blocks are tied.
    layer = FactoredTaskLinear(5, 3, formula, basis=basis, dtype=torch.float64)
    _randomise(layer)
    c, s = layer.input_coefficients()
    terms_text = " + ".join(str(t) for t in layer.terms)
    full = TaskLinear(5, 3, terms_text, dtype=torch.float64)
    assert [str(t) for t in full.terms] != [] and set(full.terms) == set(layer.terms)
    order = [layer.terms.index(t) for t in full.terms]
    with torch.no_grad():
        for k, j in enumerate(order):
            full.term_weight(k).copy_(layer.weight * c[j])
        full.bias.copy_(layer.bias - layer.weight @ s)
        if full.inner_constants is not None:
            full.inner_constants.copy_(layer.inner_constants)
    x = torch.rand(20, 5, dtype=torch.float64) * 2 - 1
    torch.testing.assert_close(layer(x), full(x), rtol=1e-10, atol=1e-10)


def test_orthonormal_coefficients_are_decorrelated_from_the_linear_weights():
    layer = FactoredTaskLinear(1, 1, "x**3 + x**2", basis="orthonormal", dtype=torch.float64)
    x = torch.linspace(-1, 1, 20001, dtype=torch.float64)[:, None]
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.zero_()
        psi = []
        for k in range(2):
            layer.term_coefficients.zero_()
            layer.term_coefficients[k] = 1.0
            psi.append(layer.transform(x)[:, 0] - x[:, 0])
    for p in psi:  # mean 0, orthogonal to x, unit variance on U(-1, 1)
        assert abs(float(p.mean())) < 1e-3 and abs(float((p * x[:, 0]).mean())) < 1e-3
        assert float((p * p).mean()) == pytest.approx(1.0, rel=1e-3)
    assert abs(float((psi[0] * psi[1]).mean())) < 1e-3


def test_linear_inputs_keep_the_identity():
    layer = FactoredTaskLinear(5, 2, POLY, linear_inputs=[4, 1], dtype=torch.float64)
    _randomise(layer)
    x = torch.rand(6, 5, dtype=torch.float64)
    g = layer.transform(x)
    torch.testing.assert_close(g[:, [1, 4]], x[:, [1, 4]], rtol=0, atol=0)
    assert not torch.allclose(g[:, [0, 2, 3]], x[:, [0, 2, 3]])
    assert layer.term_coefficients.shape == (2, 3)
    assert "linear_inputs=[1, 4]" in repr(layer)


@pytest.mark.parametrize("formula,linear", [(POLY, ()), (GENERAL, (0,)), ("x", ())])
def test_parameter_counts(formula, linear):
    layer = FactoredTaskLinear(6, 4, formula, linear_inputs=linear)
    n_task = 6 - len(linear)
    extra = {POLY: 2 * n_task, GENERAL: (3 + 2) * n_task, "x": 0}[formula]  # K - 1 + inner constants per input
    assert _n_params(layer) == 6 * 4 + 4 + extra
    assert count_parameters(6, [], 4, formula, term_weights="per_input", linear_inputs=linear) == _n_params(layer)
    net = TaskMLP(6, [8, 5], 3, formula, output_formula="x", term_weights="per_input", linear_inputs=linear)
    assert count_parameters(6, [8, 5], 3, formula, output_formula="x", term_weights="per_input",
                            linear_inputs=linear) == _n_params(net)


def test_budget_keeps_almost_the_linear_width():
    budget = count_parameters(18, [32], 4, "x")
    shared = match_parameters(18, 4, [32], [POLY, "x"], term_weights="per_input")
    per_neuron = match_parameters(18, 4, [32], [POLY, "x"])
    assert count_parameters(18, shared, 4, [POLY, "x"], term_weights="per_input") <= budget
    assert shared == (30,) and per_neuron == (12,)


def test_gradcheck_including_inner_constants_and_linear_inputs():
    g = torch.Generator().manual_seed(0)
    layer = FactoredTaskLinear(4, 3, GENERAL, basis="orthonormal", linear_inputs=[2], dtype=torch.float64)
    layer.reset_parameters(g)
    _randomise(layer)
    x = (torch.rand(5, 4, dtype=torch.float64, generator=g) * 2 - 1).requires_grad_()
    names, params = zip(*layer.named_parameters(), strict=True)
    assert layer.inner_constants is not None and len(params) == 4
    assert not torch.equal(layer.term_mixing, torch.eye(4, dtype=torch.float64)[1:])  # really orthonormal

    def fn(x, *p):
        return torch.func.functional_call(layer, dict(zip(names, p, strict=True)), (x,))

    assert torch.autograd.gradcheck(fn, (x, *params))


def test_float64_conversion_rederives_the_basis_and_state_round_trips():
    layer = FactoredTaskLinear(4, 2, POLY, basis="orthonormal")
    _randomise(layer)
    x = torch.rand(3, 4, dtype=torch.float64)
    built64 = FactoredTaskLinear(4, 2, POLY, basis="orthonormal", dtype=torch.float64)
    built64.load_state_dict({k: v.double() for k, v in layer.state_dict().items()})
    torch.testing.assert_close(layer.double()(x), built64(x), rtol=0, atol=0)
    assert set(layer.state_dict()) == {"weight", "bias", "term_coefficients"}


def test_compiles_without_graph_breaks():
    layer = FactoredTaskLinear(5, 3, POLY, basis="orthonormal", linear_inputs=[1])
    _randomise(layer)
    x = torch.rand(4, 5)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), layer(x))


def test_bad_arguments_are_refused():
    with pytest.raises(DataError, match=r"expects inputs of shape \(\*, 5\)"):
        FactoredTaskLinear(5, 3, POLY)(torch.randn(2, 4))
    with pytest.raises(ValueError, match="basis must be one of"):
        FactoredTaskLinear(5, 3, POLY, basis="legendre")
    with pytest.raises(ValueError, match="linear_inputs lists all 2 inputs"):
        FactoredTaskLinear(2, 3, POLY, linear_inputs=[0, 1])
    with pytest.raises(ValueError, match="term_weights must be one of"):
        TaskMLP(3, [4], 1, POLY, term_weights="shared")
    with pytest.raises(ValueError, match="term_weights must be one of"):
        TaskNeuronRegressor(term_weights="tied").fit(np.random.rand(20, 3), np.random.rand(20))


def test_estimator_fits_saves_and_loads(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (300, 4))
    X[:, 3] = X[:, 3] > 0  # a flag column: identity in the factored layer
    y = (X[:, :3] ** 2).sum(1) + 0.1 * X[:, 3]
    model = TaskNeuronRegressor((16,), formula="x**2", term_weights="per_input", parameter_budget="linear",
                                max_epochs=200, learning_rate=1e-2, random_state=0).fit(X, y)
    first = model.network_[0]
    assert isinstance(first, FactoredTaskLinear) and first.linear_inputs == (3,)
    assert model.n_parameters_ <= count_parameters(4, (16,), 1, "x")
    assert model.score(X, y) > 0.95
    path = tmp_path / "model.tn"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.get_params()["term_weights"] == "per_input"


def test_classifier_per_input_learns_a_quadratic_boundary():
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (400, 3))
    y = np.where((X ** 2).sum(1) > 1.0, "out", "in")
    model = TaskNeuronClassifier((8,), formula=Formula("x**2"), term_weights="per_input", max_epochs=150,
                                 learning_rate=1e-2, random_state=0).fit(X, y)
    assert model.score(X, y) > 0.9


def test_basis_auto_is_orthonormal_per_neuron_and_terms_per_input():
    per_input = TaskMLP(4, [6], 1, [POLY, "x"], basis="auto", term_weights="per_input")
    per_neuron = TaskMLP(4, [6], 1, [POLY, "x"], basis="auto")
    assert isinstance(per_input[0], FactoredTaskLinear) and per_input[0].basis == "terms"
    assert isinstance(per_neuron[0], TaskLinear) and per_neuron[0].basis == "orthonormal"
    assert TaskNeuronRegressor().get_params()["basis"] == "auto"
    with pytest.raises(ValueError, match="basis must be one of"):
        TaskMLP(4, [6], 1, POLY, basis="legendre")


def test_orthonormal_factored_layer_under_autocast_is_as_accurate_as_linear():
    layer = FactoredTaskLinear(8, 8, "x**7 + x**5 + x**3 + x", basis="orthonormal")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # trained-looking per-input coefficients (they start at 0)
        layer.term_coefficients.copy_(torch.randn(layer.term_coefficients.shape, generator=generator) * 0.3)
    x = torch.rand(500, 8, generator=generator) * 2 - 1
    exact = layer.double()(x.double())
    layer.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = layer(x)
    assert low.dtype == torch.bfloat16
    assert ((low.double() - exact).norm() / exact.norm()).item() < 0.01  # was 0.11 with M^T a in bfloat16
