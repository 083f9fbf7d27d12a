"""TaskNeuronRegressor / TaskNeuronClassifier: sklearn compatibility, features, persistence, bad inputs."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes, make_classification
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import taskneurons as tn
from taskneurons import TaskNeuronClassifier, TaskNeuronRegressor
from taskneurons.errors import ModelFileError

FAST = {"hidden_layer_sizes": (8,), "max_epochs": 30, "random_state": 0}


def _expected_failed_checks(estimator):
    # float32 matmul kernels may round a row differently depending on its position in the batch
    # (vectorised main loop vs remainder rows): a reordered X can change outputs by ~1e-8, above
    # the check's rtol=1e-7 on some thread counts. Not a bug; seen on CI's 2-core machine.
    expected = {"check_methods_sample_order_invariance": "float32 kernels round by row position (~1e-8)"}
    if isinstance(estimator, TaskNeuronRegressor):
        # A small network trained for 30 epochs inside the checks does not reach the R^2 > 0.5
        # asked of converged linear models; test_regressor_learns_and_reports checks real accuracy.
        expected["check_regressors_train"] = "trained for 30 epochs inside the checks"
    return expected


@parametrize_with_checks(
    [TaskNeuronRegressor(formula="x**2 + x", **FAST), TaskNeuronClassifier(formula="x**2 + x", **FAST)],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X, y


def test_regressor_learns_and_reports(diabetes):
    X, y = diabetes
    model = TaskNeuronRegressor(formula="x**2 + x", hidden_layer_sizes=(16,), random_state=0).fit(X[:350], y[:350])
    assert model.score(X[350:], y[350:]) > 0.3
    assert list(model.feature_names_in_) == list(X.columns)
    assert model.formula_ == "x**2 + x"
    assert model.n_parameters_ == sum(p.numel() for p in model.network_.parameters())
    assert {"train_loss", "valid_loss", "valid_metric"} <= set(model.history_.columns)
    assert model.fit_time_ > 0
    assert len(model.history_) == model.n_epochs_


def test_linear_formula_is_an_ordinary_mlp(diabetes):
    X, y = diabetes
    model = TaskNeuronRegressor(formula="x", hidden_layer_sizes=(16,), **{"max_epochs": 5, "random_state": 0}).fit(X, y)
    assert model.n_parameters_ == 10 * 16 + 16 + 16 + 1


def test_same_random_state_same_model(diabetes):
    X, y = diabetes
    a = TaskNeuronRegressor(formula="x**2 + x", **FAST).fit(X, y).predict(X)
    b = TaskNeuronRegressor(formula="x**2 + x", **FAST).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)


def test_parameter_budget_linear_keeps_tn_no_larger(diabetes):
    X, y = diabetes
    ln = TaskNeuronRegressor(formula="x", hidden_layer_sizes=(32, 16), max_epochs=2, random_state=0).fit(X, y)
    tn_model = TaskNeuronRegressor(formula="x**3 + x**2 + x", hidden_layer_sizes=(32, 16), parameter_budget="linear",
                                   max_epochs=2, random_state=0).fit(X, y)
    assert tn_model.n_parameters_ <= ln.n_parameters_
    assert tn_model.hidden_layer_sizes_ != (32, 16)


def test_multi_output_regression():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(200, 4))
    Y = np.column_stack([(X**2).sum(1), X.sum(1)])
    model = TaskNeuronRegressor(formula="x**2 + x", hidden_layer_sizes=(16,), max_epochs=200, random_state=0).fit(X, Y)
    assert model.predict(X).shape == (200, 2)
    assert model.score(X, Y) > 0.8


def test_classifier_string_labels_proba_and_accuracy():
    X, y = make_classification(n_samples=400, n_features=6, n_informative=4, n_classes=3, random_state=0)
    labels = np.array(["cat", "dog", "emu"])[y]
    model = TaskNeuronClassifier(formula="x**2 + x", hidden_layer_sizes=(16,), max_epochs=100,
                                 random_state=0).fit(X[:300], labels[:300])
    assert list(model.classes_) == ["cat", "dog", "emu"]
    proba = model.predict_proba(X[300:])
    assert proba.shape == (100, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert set(model.predict(X[300:])) <= {"cat", "dog", "emu"}
    assert model.score(X[300:], labels[300:]) > 0.7


def test_dataframe_with_text_columns():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"size": rng.uniform(0, 1, 120), "sex": rng.choice(["M", "F", "I"], 120),
                          "flag": rng.choice([True, False], 120)})
    y = frame["size"] * 2 + (frame["sex"] == "M") * 1.0
    model = TaskNeuronRegressor(formula="x", **FAST).fit(frame, y)
    assert model.encoder_.feature_names_out_ == ["size", "sex=F", "sex=I", "sex=M", "flag"]
    unseen = frame.head(3).assign(sex=["Z", "M", "F"])
    assert np.isfinite(model.predict(unseen)).all()
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(frame[["sex", "size", "flag"]])
    ordinal = TaskNeuronRegressor(formula="x", categorical="ordinal", **FAST).fit(frame, y)
    assert ordinal.encoder_.feature_names_out_ == ["size", "sex", "flag"]


@pytest.mark.parametrize("other", [np.array([True, False] * 30), pd.array([0, 1, 2] * 20, dtype="Int64"),
                                   pd.array([True, False] * 30, dtype="boolean")], ids=["bool", "Int64", "boolean"])
def test_category_column_beside_bool_and_nullable_columns(other):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"c": pd.Categorical(rng.choice(["x", "y"], 60)), "b": other})
    model = TaskNeuronRegressor(formula="x", **FAST).fit(frame, rng.uniform(size=60))
    assert model.encoder_.feature_names_out_ == ["c=x", "c=y", "b"]
    assert np.isfinite(model.predict(frame)).all()


@pytest.mark.parametrize("categorical", ["onehot", "ordinal"])
def test_category_column_is_encoded_by_name_even_when_it_arrives_as_numbers(categorical):
    rng = np.random.default_rng(0)
    codes = rng.choice([10, 20, 30], 80)
    frame = pd.DataFrame({"a": rng.uniform(size=80), "c": pd.Categorical(codes)})
    y = frame["a"].to_numpy() + 3.0 * (codes == 30)
    model = TaskNeuronRegressor(formula="x", categorical=categorical, **FAST).fit(frame, y)
    np.testing.assert_array_equal(model.predict(frame.astype({"c": int})), model.predict(frame))
    with pytest.warns(UserWarning, match="valid feature names"), \
            pytest.raises(ValueError, match="categorical columns \\['c'\\]; pass a DataFrame"):
        model.predict(frame.to_numpy(dtype=float))


def test_missing_and_unseen_categories_are_refused_with_the_reason():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.uniform(size=60), "s": pd.array(["p", "q"] * 30, dtype="string")})
    holed = frame.copy()
    holed.loc[0, "s"] = pd.NA
    with pytest.raises(ValueError, match="column 's' has missing values"):
        TaskNeuronRegressor(formula="x", **FAST).fit(holed, rng.uniform(size=60))
    ordinal = TaskNeuronRegressor(formula="x", categorical="ordinal", **FAST).fit(frame, rng.uniform(size=60))
    with pytest.raises(ValueError, match="categories not seen in fit: \\['r'\\]"):
        ordinal.predict(frame.head(2).assign(s=["p", "r"]))


def test_text_columns_at_predict_after_a_numeric_fit_are_explained():
    X = np.random.default_rng(0).uniform(size=(30, 2))
    model = TaskNeuronRegressor(formula="x", **FAST).fit(X, X.sum(1))
    with pytest.warns(UserWarning, match="feature names"), pytest.raises(ValueError, match="fitted on a numeric array"):
        model.predict(pd.DataFrame({"a": [0.5], "b": ["text"]}))


def test_save_refuses_an_activation_given_as_a_module(tmp_path):
    import torch

    X = np.random.default_rng(0).uniform(size=(40, 2))
    model = TaskNeuronRegressor(activation=torch.nn.Tanh, formula="x**2 + x", **FAST).fit(X, X[:, 0])
    with pytest.raises(ModelFileError, match="give the activation by name"):
        model.save(tmp_path / "model.tn")  # loading would otherwise rebuild the default ReLU


def test_failed_refit_leaves_no_half_fitted_model():
    from sklearn.exceptions import NotFittedError

    X = np.random.default_rng(0).uniform(size=(40, 2))
    model = TaskNeuronRegressor(**FAST).fit(X, X[:, 0] ** 2)
    with pytest.raises(ValueError, match="constant"):
        model.fit(X * 100, np.ones(40))
    with pytest.raises(NotFittedError):
        model.predict(X)


def test_works_with_sklearn_tools(diabetes):
    X, y = diabetes
    X, y = X[:200], y[:200]
    scores = cross_val_score(TaskNeuronRegressor(formula="x", **FAST), X, y, cv=2)
    assert scores.shape == (2,) and np.isfinite(scores).all()
    search = GridSearchCV(TaskNeuronRegressor(**FAST), {"formula": ["x", "x**2 + x"]}, cv=2).fit(X, y)
    assert search.best_params_["formula"] in ("x", "x**2 + x")
    pipe = make_pipeline(StandardScaler(), TaskNeuronRegressor(formula="x", **FAST)).fit(X, y)
    assert pipe.predict(X).shape == (200,)
    assert clone(TaskNeuronRegressor(formula="x**3")).get_params()["formula"] == "x**3"


@pytest.mark.parametrize("estimator_class", [TaskNeuronRegressor, TaskNeuronClassifier])
def test_save_load_and_pickle_round_trips(tmp_path, estimator_class):
    X, y = make_classification(n_samples=120, n_features=5, random_state=0)
    labels = np.where(y == 1, "yes", "no") if estimator_class is TaskNeuronClassifier else X[:, 0] ** 2 + y
    model = estimator_class(formula="sin(1.5*x) + x**2", **FAST).fit(X, labels)
    path = tmp_path / "model.tn"
    model.save(path)
    loaded = tn.load(path)
    assert type(loaded) is estimator_class
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.formula_ == model.formula_
    assert loaded.get_params() == model.get_params()
    assert list(loaded.history_.index) == list(model.history_.index) == list(model.history_["epoch"])
    pd.testing.assert_series_equal(loaded.history_["train_loss"], model.history_["train_loss"])
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


def test_load_refuses_foreign_damaged_and_newer_files(tmp_path):
    X = np.random.default_rng(0).uniform(size=(60, 3))
    model = TaskNeuronRegressor(formula="x", **FAST).fit(X, X.sum(1))
    path = tmp_path / "model.tn"
    model.save(path)
    raw = path.read_bytes()
    with pytest.raises(ModelFileError, match="no model file"):
        tn.load(tmp_path / "missing.tn")
    foreign = tmp_path / "foreign.tn"
    foreign.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelFileError, match="not a taskneurons model"):
        tn.load(foreign)
    tampered = tmp_path / "tampered.tn"
    tampered.write_bytes(raw[:-4] + bytes(4 * [7]))
    with pytest.raises(ModelFileError, match="checksum"):
        tn.load(tampered)
    truncated = tmp_path / "truncated.tn"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelFileError):
        tn.load(truncated)
    newer = tmp_path / "newer.tn"
    newer.write_bytes(raw.replace(b'\\"version\\": 1', b'\\"version\\": 9', 1))
    with pytest.raises(ModelFileError, match="newer taskneurons"):
        tn.load(newer)


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (np.array([[1.0, np.nan], [2.0, 3.0], [1.0, 1.0]]), np.array([1.0, 2.0, 3.0]), "NaN"),
        (np.array([[1.0, np.inf], [2.0, 3.0], [1.0, 1.0]]), np.array([1.0, 2.0, 3.0]), "infinity"),
        (np.empty((0, 3)), np.empty(0), "0 sample"),
        (np.ones((1, 3)), np.ones(1), "1 sample"),
        (np.ones((3, 2)), np.array([1.0, np.nan, 2.0]), "NaN"),
        (np.ones((3, 2)), np.ones(4), "inconsistent numbers of samples"),
    ],
)
def test_bad_training_inputs(X, y, message):
    with pytest.raises(ValueError, match=message):
        TaskNeuronRegressor(formula="x", **FAST).fit(X, y)


@pytest.mark.parametrize(("params", "message"), [
    ({"basis": "bogus"}, "basis must be one of"),
    ({"add_linear_term": "False"}, "add_linear_term must be True or False, got 'False'"),
    ({"early_stopping": 1}, "early_stopping must be True or False"),
    ({"learning_rate": -1.0}, "learning_rate must be a positive number"),
    ({"learning_rate": "0.01"}, "learning_rate must be a positive number"),
])
def test_bad_parameters_are_refused_before_any_work(params, message, monkeypatch):
    import taskneurons.estimators as estimators

    def no_discovery(*args):
        raise AssertionError("discovery ran before the parameters were checked")

    monkeypatch.setattr(estimators._TaskNeuronBase, "_resolve_formula", no_discovery)
    X = np.random.default_rng(0).uniform(size=(20, 3))
    with pytest.raises(ValueError, match=message):
        TaskNeuronRegressor(**{**FAST, **params}).fit(X, X.sum(axis=1))


def test_bad_prediction_inputs_and_labels():
    X = np.random.default_rng(0).uniform(size=(40, 3))
    model = TaskNeuronRegressor(formula="x", **FAST).fit(X, X.sum(1))
    with pytest.raises(ValueError, match="3 features"):
        model.predict(np.ones((2, 4)))
    with pytest.raises(ValueError, match="one class"):
        TaskNeuronClassifier(formula="x", **FAST).fit(X, np.zeros(40))
    with pytest.raises(ValueError, match="Unknown label type"):
        TaskNeuronClassifier(formula="x", **FAST).fit(X, X[:, 0])


@pytest.mark.parametrize(
    ("params", "message"),
    [({"hidden_layer_sizes": (0,)}, "positive"), ({"task_layers": "some"}, "task_layers"),
     ({"parameter_budget": "huge"}, "parameter_budget"), ({"batch_size": 0}, "batch_size"),
     ({"scale_X": "log"}, "scale_X"), ({"formula": "x +"}, "ends too early"), ({"formula": 3}, "formula must be"),
     ({"hidden_layer_sizes": "64"}, "the string '64'"), ({"scale_y": "quantile"}, "scale_y must be one of")],
)
def test_bad_parameters(params, message):
    X = np.random.default_rng(0).uniform(size=(30, 2))
    with pytest.raises(ValueError, match=message):
        TaskNeuronRegressor(**{**FAST, **params}).fit(X, X.sum(1))
