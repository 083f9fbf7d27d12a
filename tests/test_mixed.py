"""MixedTaskLinear and binary_inputs: formula terms on some inputs, only the linear term on two-valued ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import taskneurons as tn
from taskneurons import TaskNeuronClassifier, TaskNeuronRegressor
from taskneurons.errors import DataError
from taskneurons.nn import MixedTaskLinear, TaskLinear, TaskMLP, count_parameters, match_parameters

FORMULA = "2*x**3 - x**2 + 0.5*x"


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_forward_is_task_part_plus_linear_part():
    layer = MixedTaskLinear(5, 3, FORMULA, linear_inputs=[4, 1], dtype=torch.float64)
    assert layer.linear_inputs == (1, 4)
    x = torch.randn(7, 5, dtype=torch.float64)
    expected = layer.task(x[:, [0, 2, 3]]) + x[:, [1, 4]] @ layer.linear.weight.T
    torch.testing.assert_close(layer(x), expected)
    assert layer(torch.randn(2, 4, 5, dtype=torch.float64)).shape == (2, 4, 3)
    assert _n_params(layer) == 3 * 3 * 3 + 3 + 3 * 2  # K*|T| weights per output, bias, |L| weights
    assert "linear_inputs=[1, 4]" in repr(layer) and layer.formula == tn.Formula(FORMULA)


def test_on_two_valued_inputs_it_represents_the_full_task_layer_exactly():
    # On x in {-1, 1}: x**3 = x and x**2 = 1, so W3 x**3 + W2 x**2 + W1 x = (W3 + W1) x + W2.
    full = TaskLinear(4, 3, FORMULA, dtype=torch.float64)
    mixed = MixedTaskLinear(4, 3, FORMULA, linear_inputs=[2, 3], dtype=torch.float64)
    w3, w2, w1 = (full.term_weight(k) for k in range(3))
    with torch.no_grad():
        for k in range(3):
            mixed.task.term_weight(k).copy_((w3, w2, w1)[k][:, :2])
        mixed.linear.weight.copy_(w3[:, 2:] + w1[:, 2:])
        mixed.task.bias.copy_(full.bias + w2[:, 2:].sum(1))
    x = torch.randn(50, 4, dtype=torch.float64)
    x[:, 2:] = torch.where(x[:, 2:] > 0, 1.0, -1.0)
    torch.testing.assert_close(mixed(x), full(x))


def test_counts_budget_and_gradients():
    net = TaskMLP(6, [8, 4], 2, FORMULA, output_formula="x", linear_inputs=[3, 4, 5])
    assert isinstance(net[0], MixedTaskLinear) and isinstance(net[2], TaskLinear)
    assert count_parameters(6, [8, 4], 2, FORMULA, output_formula="x", linear_inputs=3) == _n_params(net)
    assert count_parameters(6, [8, 4], 2, FORMULA, output_formula="x", linear_inputs=[3, 4, 5]) == _n_params(net)
    for array in (np.array([3, 4, 5]), torch.tensor([3, 4, 5]), np.array([5])):  # not truth-tested
        from_array = TaskMLP(6, [8, 4], 2, FORMULA, output_formula="x", linear_inputs=array)
        assert from_array[0].linear_inputs == tuple(int(i) for i in array)
    budget = count_parameters(6, [8, 4], 2, "x")
    widths = match_parameters(6, 2, [8, 4], FORMULA, output_formula="x", linear_inputs=3)
    plain = match_parameters(6, 2, [8, 4], FORMULA, output_formula="x")
    assert count_parameters(6, widths, 2, FORMULA, output_formula="x", linear_inputs=3) <= budget
    assert widths[0] > plain[0]  # the parameters saved on the linear inputs widen the layers
    net(torch.randn(5, 6)).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    # a formula whose only term is x needs no split
    for linear in ("x", "2*x + 1"):
        assert isinstance(TaskMLP(6, [4], 1, linear, linear_inputs=[0]).task_layers[0], TaskLinear)


def test_same_generator_same_weights():
    a = TaskMLP(5, [4], 1, FORMULA, linear_inputs=[0], generator=3)
    b = TaskMLP(5, [4], 1, FORMULA, linear_inputs=[0], generator=3)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize(("indices", "match"), [
    ([5], "must index the 5 inputs"),
    ([-1], "must index the 5 inputs"),
    ([0, 1, 2, 3, 4], "leaves none for the formula"),
    (["a"], "sequence of integer input indices"),
    ([1.9], "sequence of integer input indices"),
    ([True], "sequence of integer input indices"),
])
def test_bad_linear_inputs_are_refused(indices, match):
    with pytest.raises(ValueError, match=match):
        MixedTaskLinear(5, 2, FORMULA, linear_inputs=indices)
    with pytest.raises(ValueError, match=match):
        TaskMLP(5, [3], 1, FORMULA, linear_inputs=indices)


def test_wrong_input_width_is_a_data_error():
    with pytest.raises(DataError, match=r"expects inputs of shape \(\*, 5\)"):
        MixedTaskLinear(5, 2, FORMULA, linear_inputs=[0])(torch.randn(3, 4))


def _mixed_table(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.uniform(-1, 1, n), "b": rng.uniform(0, 5, n),
                      "colour": rng.choice(["red", "green", "blue"], n), "flag": rng.integers(0, 2, n)})
    y = X["a"] ** 3 + 0.3 * X["b"] + (X["colour"] == "red") - 0.5 * X["flag"]
    return X, y.to_numpy()


def test_estimator_gives_one_hot_and_flag_columns_the_linear_term(tmp_path):
    X, y = _mixed_table()
    fast = {"hidden_layer_sizes": (16,), "max_epochs": 20, "random_state": 0, "parameter_budget": "linear"}
    model = TaskNeuronRegressor(formula=FORMULA, **fast).fit(X, y)
    assert model.linear_inputs_ == (2, 3, 4, 5)  # three one-hot columns and the 0/1 flag
    assert isinstance(model.network_[0], MixedTaskLinear)
    full = TaskNeuronRegressor(formula=FORMULA, binary_inputs="formula", **fast).fit(X, y)
    assert full.linear_inputs_ == () and isinstance(full.network_[0], TaskLinear)
    assert model.hidden_layer_sizes_[0] > full.hidden_layer_sizes_[0]
    assert model.n_parameters_ <= count_parameters(6, (16,), 1, "x")
    model.save(tmp_path / "mixed.tn")
    loaded = tn.load(tmp_path / "mixed.tn")
    assert loaded.linear_inputs_ == model.linear_inputs_
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    # linear neurons have nothing to split
    assert TaskNeuronRegressor(formula="x", **fast).fit(X, y).linear_inputs_ == ()


def test_all_two_valued_inputs_keep_the_formula():
    rng = np.random.default_rng(1)
    X = rng.integers(0, 2, size=(80, 3)).astype(float)
    model = TaskNeuronClassifier(formula=FORMULA, hidden_layer_sizes=(4,), max_epochs=2, random_state=0)
    assert model.fit(X, X[:, 0]).linear_inputs_ == ()


def test_bad_binary_inputs_value():
    X, y = _mixed_table(40)
    with pytest.raises(ValueError, match="binary_inputs must be one of"):
        TaskNeuronRegressor(binary_inputs="drop").fit(X, y)


def test_compiles_without_graph_breaks_and_round_trips_state():
    layer = MixedTaskLinear(5, 3, FORMULA, linear_inputs=[0, 3])
    x = torch.randn(4, 5)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), layer(x))
    twin = MixedTaskLinear(5, 3, FORMULA, linear_inputs=[0, 3])
    twin.load_state_dict(layer.state_dict())
    torch.testing.assert_close(twin(x), layer(x))
    assert set(layer.state_dict()) == {"task.weight", "task.bias", "linear.weight"}
