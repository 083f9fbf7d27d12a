"""term_schedule="linear_first" (the linear network first, then the per-input formulas, kept only if validation
improves) and term_weights="auto" (the layer kind with the lower validation loss)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import taskneurons.training as training
from taskneurons import TaskNeuronClassifier, TaskNeuronRegressor
from taskneurons import load as load_model
from taskneurons.nn import FactoredTaskLinear

SETTINGS = {"formula": "x**3 + x", "term_weights": "per_input", "term_schedule": "linear_first",
            "hidden_layer_sizes": (12,), "max_epochs": 200, "patience": 5, "random_state": 0}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (300, 4))
    y = (X ** 3).sum(axis=1) + np.sin(2 * X[:, 0]) + 0.05 * rng.normal(size=300)
    return X, y


def test_the_linear_stage_is_the_linear_network_of_the_same_widths(data):
    X, y = data
    model = TaskNeuronRegressor(**SETTINGS).fit(X, y)
    linear = TaskNeuronRegressor(model.hidden_layer_sizes_, formula="x", max_epochs=200, patience=5,
                                 random_state=0).fit(X, y)
    history = model.history_
    first = history[history["stage"] == "linear"]
    # same initial weights, validation rows and shuffling: the same training, epoch by epoch
    np.testing.assert_array_equal(first["valid_loss"].to_numpy(), linear.history_["valid_loss"].to_numpy())
    assert list(history["epoch"]) == list(range(1, len(history) + 1)) and model.n_epochs_ == len(history)
    assert set(history["stage"]) == {"linear", "formula"}
    # the formula stage was kept exactly when it lowered the validation loss
    second = history[history["stage"] == "formula"]
    assert model.linear_stage_kept_ == bool(second["valid_loss"].min() >= first["valid_loss"].min())
    assert model.linear_stage_kept_ is False  # on a cubic target the formulas help
    assert torch.count_nonzero(model.network_[0].term_coefficients) > 0
    assert model.score(X, y) > linear.score(X, y)


def test_a_formula_stage_that_does_not_help_leaves_the_linear_network(data, monkeypatch):
    X, y = data
    fit_module = training.fit_module

    def formula_stage_never_better(module, *args, **kwargs):
        result = fit_module(module, *args, **kwargs)
        if any(isinstance(m, FactoredTaskLinear) for m in module.modules()):
            result.best_valid_loss = float("inf")
        return result

    monkeypatch.setattr(training, "fit_module", formula_stage_never_better)
    model = TaskNeuronRegressor(**SETTINGS).fit(X, y)
    monkeypatch.undo()
    linear = TaskNeuronRegressor(model.hidden_layer_sizes_, formula="x", max_epochs=200, patience=5,
                                 random_state=0).fit(X, y)
    assert model.linear_stage_kept_ is True
    layer = model.network_[0]
    assert torch.count_nonzero(layer.term_coefficients) == 0
    assert torch.equal(layer.weight, linear.network_[0].weight)
    np.testing.assert_allclose(model.predict(X), linear.predict(X), rtol=0, atol=1e-6)


def test_both_stages_share_one_epoch_budget(data):
    X, y = data
    model = TaskNeuronRegressor(**SETTINGS).fit(X, y)
    stages = model.history_["stage"]
    assert model.n_epochs_ <= SETTINGS["max_epochs"] and (stages == "formula").sum() > 0
    # a linear stage that never stops early leaves no epochs: the network is the linear one
    short = TaskNeuronRegressor(**{**SETTINGS, "max_epochs": 4}).fit(X, y)
    assert list(short.history_["stage"]) == ["linear"] * 4 and short.linear_stage_kept_ is True
    assert torch.count_nonzero(short.network_[0].term_coefficients) == 0


def test_formula_stage_epochs_gives_the_formula_stage_a_budget_of_its_own(data):
    X, y = data
    shared = TaskNeuronRegressor(**{**SETTINGS, "max_epochs": 4}).fit(X, y)
    own = TaskNeuronRegressor(**{**SETTINGS, "max_epochs": 4, "formula_stage_epochs": 3}).fit(X, y)
    # the linear stage is the same; the formula stage now gets its 3 epochs after the 4 linear ones
    stages = list(own.history_["stage"])
    assert stages == ["linear"] * 4 + ["formula"] * 3 and own.n_epochs_ == 7
    np.testing.assert_array_equal(own.history_["valid_loss"][:4], shared.history_["valid_loss"])
    for bad in (0, -1, 2.5, True, "10"):
        with pytest.raises(ValueError, match="formula_stage_epochs must be None or a positive integer"):
            TaskNeuronRegressor(**{**SETTINGS, "formula_stage_epochs": bad}).fit(X, y)
    # like MLPRegressor's momentum without solver="sgd": only used by the schedule it belongs to
    joint = TaskNeuronRegressor(**{**SETTINGS, "term_schedule": "joint", "max_epochs": 4, "formula_stage_epochs": 3})
    assert joint.fit(X, y).n_epochs_ == 4 and "stage" not in joint.history_


def test_needs_per_input_term_weights_and_early_stopping(data):
    X, y = data
    with pytest.raises(ValueError, match="term_weights='per_input'"):
        TaskNeuronRegressor(**{**SETTINGS, "term_weights": "per_neuron"}).fit(X, y)
    with pytest.raises(ValueError, match="needs early_stopping=True"):
        TaskNeuronRegressor(**{**SETTINGS, "early_stopping": False}).fit(X, y)
    with pytest.raises(ValueError, match="term_schedule must be one of"):
        TaskNeuronRegressor(**{**SETTINGS, "term_schedule": "linear"}).fit(X, y)


def test_with_a_linear_formula_the_second_stage_is_a_warm_restart(data):
    # The restart control of the Table 6 variant: the same two stages without any formula.
    X, y = data
    model = TaskNeuronRegressor(**{**SETTINGS, "formula": "x", "formula_stage_epochs": 50}).fit(X, y)
    plain = TaskNeuronRegressor((12,), formula="x", max_epochs=200, patience=5, random_state=0).fit(X, y)
    history = model.history_
    first, second = history[history["stage"] == "linear"], history[history["stage"] == "formula"]
    np.testing.assert_array_equal(first["valid_loss"].to_numpy(), plain.history_["valid_loss"].to_numpy())
    assert 0 < len(second) <= 50
    assert model.linear_stage_kept_ == bool(second["valid_loss"].min() >= first["valid_loss"].min())
    if model.linear_stage_kept_:
        np.testing.assert_array_equal(model.predict(X), plain.predict(X))


def test_classifier_and_model_file_round_trip(data, tmp_path):
    X, y = data
    labels = np.where(y > np.median(y), "high", "low")
    model = TaskNeuronClassifier(**SETTINGS).fit(X, labels)
    assert isinstance(model.linear_stage_kept_, bool) and model.score(X, labels) > 0.8
    model.save(tmp_path / "m.tn")
    loaded = load_model(tmp_path / "m.tn")
    assert loaded.term_schedule == "linear_first" and loaded.linear_stage_kept_ == model.linear_stage_kept_
    assert list(loaded.history_["stage"]) == list(model.history_["stage"])
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("schedule", ["joint", "linear_first"])
def test_auto_term_weights_keeps_the_network_with_the_lower_validation_loss(data, schedule, tmp_path):
    X, y = data
    settings = {**SETTINGS, "term_schedule": schedule, "parameter_budget": "linear", "max_epochs": 60}
    auto = TaskNeuronRegressor(**{**settings, "term_weights": "auto"}).fit(X, y)
    assert set(auto.term_weights_valid_loss_) == {"per_neuron", "per_input"}
    assert auto.term_weights_ == min(auto.term_weights_valid_loss_, key=auto.term_weights_valid_loss_.get)
    for kind in ("per_neuron", "per_input"):
        # each candidate is exactly the network that term_weights=kind trains
        single = TaskNeuronRegressor(**{**settings, "term_weights": kind,
                                        "term_schedule": schedule if kind == "per_input" else "joint"}).fit(X, y)
        assert single.term_weights_valid_loss_ == {kind: auto.term_weights_valid_loss_[kind]}
        if kind == auto.term_weights_:
            np.testing.assert_array_equal(auto.predict(X), single.predict(X))
            assert auto.hidden_layer_sizes_ == single.hidden_layer_sizes_
            assert auto.linear_stage_kept_ == single.linear_stage_kept_
    auto.save(tmp_path / "m.tn")
    loaded = load_model(tmp_path / "m.tn")
    assert loaded.term_weights == "auto" and loaded.term_weights_ == auto.term_weights_
    assert loaded.term_weights_valid_loss_ == auto.term_weights_valid_loss_
    np.testing.assert_array_equal(loaded.predict(X), auto.predict(X))


def test_auto_term_weights_needs_validation_rows(data):
    X, y = data
    with pytest.raises(ValueError, match="term_weights='auto' decides on validation data"):
        TaskNeuronRegressor(**{**SETTINGS, "term_weights": "auto", "term_schedule": "joint",
                               "early_stopping": False}).fit(X, y)
    tiny = TaskNeuronRegressor(**{**SETTINGS, "term_weights": "auto", "max_epochs": 3}).fit(X[:8], y[:8])
    assert tiny.term_weights_ == "per_neuron" and tiny.term_weights_valid_loss_ is None
    with pytest.raises(ValueError, match="term_weights must be one of"):
        TaskNeuronRegressor(**{**SETTINGS, "term_weights": "both"}).fit(X, y)
