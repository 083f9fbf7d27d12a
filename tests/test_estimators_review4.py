"""Review 4 of the scikit-learn user's journey: labels, categorical codes, model files, parameter checks."""

from __future__ import annotations

import io
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import taskneurons as tn
from taskneurons import TaskNeuronClassifier, TaskNeuronRegressor

FAST = {"hidden_layer_sizes": (4,), "max_epochs": 5, "random_state": 0}


def _mixed_frame(n=90):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(0, 100, n),
                          "kind": rng.choice(["p", "q", "r"], n), "flag": rng.random(n) > 0.5})
    labels = np.array(["lo", "mid", "hi"])[np.digitize(frame["a"], [-0.4, 0.4])]
    return frame, labels


@pytest.mark.parametrize("activation", ["ReLU", "leaky-relu", "LeakyReLU", " Tanh"])
def test_activation_names_fit_accepts_save_and_load(tmp_path, activation):
    # make_activation reads "ReLU" as relu; load() refused the file it had just written
    X = np.random.default_rng(0).normal(size=(40, 2))
    model = TaskNeuronRegressor(formula="x**2 + x", activation=activation, **FAST).fit(X, X[:, 0] ** 2)
    model.save(tmp_path / "m.tn")
    loaded = tn.load(tmp_path / "m.tn")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.get_params()["activation"] == activation


@pytest.mark.parametrize(("labels", "message"), [
    (np.array(["a", 1] * 20, dtype=object), "mixes labels of the types \\['int', 'str'\\]"),
    (np.array(["a", None] * 20, dtype=object), "mixes labels of the types \\['NoneType', 'str'\\].*without a label"),
    (np.array([b"a", b"b"] * 20), "labels represented as bytes"),
])
def test_labels_that_cannot_be_classes_are_value_errors(labels, message):
    X = np.random.default_rng(0).normal(size=(40, 2))
    with pytest.raises(ValueError, match=message):  # was a TypeError: '<' not supported between ...
        TaskNeuronClassifier(formula="x", **FAST).fit(X, labels)


def test_multilabel_targets_are_refused_with_what_to_do_and_a_column_vector_is_used():
    from sklearn.exceptions import DataConversionWarning

    X = np.random.default_rng(0).normal(size=(40, 2))
    labels = (X > 0).astype(int)
    for y in (labels, pd.DataFrame(labels, columns=["u", "v"])):
        with pytest.raises(ValueError, match="y has shape \\(40, 2\\), but .* takes 1-D labels.*MultiOutputClassifier"):
            TaskNeuronClassifier(formula="x", **FAST).fit(X, y)
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        model = TaskNeuronClassifier(formula="x", **FAST).fit(X, labels[:, :1])
    assert model.predict(X).shape == (40,) and list(model.classes_) == [0, 1]


def test_unknown_vsr_keys_are_a_value_error_naming_them():
    X = np.random.default_rng(0).uniform(size=(30, 2))
    with pytest.raises(ValueError, match="vsr has keys \\['generations'\\] that are not VSR parameters.*max_degree"):
        TaskNeuronRegressor(vsr={"generations": 3}, **FAST).fit(X, X.sum(axis=1))


def test_array_after_a_categorical_fit_says_to_pass_the_dataframe():
    frame, labels = _mixed_frame()
    model = TaskNeuronClassifier(formula="x", **FAST).fit(frame, labels)
    with pytest.warns(UserWarning, match="valid feature names"), \
            pytest.raises(ValueError, match="categorical columns \\['kind'\\]; pass a DataFrame"):
        model.predict(frame.to_numpy())  # was: could not convert string to float: 'p'


def test_unscaled_targets_beyond_float32_are_explained_not_called_nan():
    X = np.random.default_rng(0).normal(size=(40, 2))
    with pytest.raises(ValueError, match="beyond the float32 range .* scale_y=None; use scale_y='standard'"):
        TaskNeuronRegressor(formula="x", scale_y=None, **FAST).fit(X, X[:, 0] * 1e300)
    scaled = TaskNeuronRegressor(formula="x", **FAST).fit(X, X[:, 0] * 1e300)
    assert np.isfinite(scaled.predict(X)).all()


def test_pipeline_with_pandas_output_search_and_round_trips(tmp_path):
    frame, labels = _mixed_frame()
    columns = ColumnTransformer([("num", StandardScaler(), ["a", "b"]),
                                 ("cat", OneHotEncoder(sparse_output=False), ["kind"])], remainder="passthrough")
    pipe = make_pipeline(columns.set_output(transform="pandas"),
                         TaskNeuronClassifier(formula="x**2 + x", **FAST)).fit(frame, labels)
    proba = pipe.predict_proba(frame)
    classes = pipe.classes_
    assert list(classes) == ["hi", "lo", "mid"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(pipe.predict(frame), classes[proba.argmax(axis=1)])
    np.testing.assert_array_equal(clone(pipe).fit(frame, labels).predict_proba(frame), proba)  # reproducible
    buffer = io.BytesIO()
    joblib.dump(pipe, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).predict_proba(frame), proba)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(pipe)).predict_proba(frame), proba)
    search = GridSearchCV(pipe, {"taskneuronclassifier__formula": ["x", "x**2 + x"]}, cv=2).fit(frame, labels)
    assert search.best_params_["taskneuronclassifier__formula"] in ("x", "x**2 + x")
    # the estimator's own encoding of the raw frame, through the library's model file
    model = TaskNeuronClassifier(formula="x**2 + x", **FAST).fit(frame, labels)
    model.save(tmp_path / "m.tn")
    np.testing.assert_array_equal(tn.load(tmp_path / "m.tn").predict_proba(frame), model.predict_proba(frame))


def test_discovery_is_reproducible_without_touching_global_generators():
    frame, labels = _mixed_frame()
    np.random.seed(123)
    torch.manual_seed(7)
    numpy_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state()
    params = {**FAST, "formula": "auto", "vsr": {"max_degree": 3}}
    first = TaskNeuronClassifier(**params).fit(frame, labels)
    second = TaskNeuronClassifier(**params).fit(frame, labels)
    assert first.formula_ == second.formula_
    np.testing.assert_array_equal(first.predict_proba(frame), second.predict_proba(frame))
    assert np.array_equal(np.random.get_state()[1], numpy_state) and torch.initial_seed() == 7
    assert torch.equal(torch.get_rng_state(), torch_state)
    unseeded = TaskNeuronClassifier(**{**params, "random_state": None}).fit(frame, labels)
    assert np.isfinite(unseeded.predict_proba(frame)).all()


def test_cross_validation_in_worker_processes_matches_one_process():
    frame, labels = _mixed_frame()
    model = TaskNeuronClassifier(formula="x**2 + x", **FAST)
    one = cross_val_score(model, frame, labels, cv=3, n_jobs=1, scoring="neg_log_loss")
    two = cross_val_score(model, frame, labels, cv=3, n_jobs=2, scoring="neg_log_loss")
    assert np.isfinite(one).all()
    np.testing.assert_allclose(two, one, rtol=1e-6)


@pytest.mark.parametrize("vsr", [{"max_degree": 3, "callback": lambda info: None},
                                 {"max_degree": 3, "random_state": np.random.RandomState(0)}],
                         ids=["callback", "RandomState"])
def test_a_loaded_model_refits_when_its_vsr_settings_held_objects(tmp_path, vsr):
    # such settings are written as {"__repr__": ...} markers; left in the vsr dict, refit failed
    X = np.random.default_rng(0).normal(size=(40, 2))
    model = TaskNeuronRegressor(vsr=vsr, **FAST).fit(X, X[:, 0] ** 2)
    model.save(tmp_path / "m.tn")
    loaded = tn.load(tmp_path / "m.tn")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.get_params()["vsr"] == {"max_degree": 3}
    assert np.isfinite(clone(loaded).fit(X, X[:, 0] ** 2).predict(X)).all()


@pytest.mark.parametrize("values", [["1,453.6", "2,001.5"], ["$5", "$7.25"], ["12%", "7 %"]])
def test_numbers_written_as_text_are_refused_not_one_hot_encoded(values):
    # one category per distinct value would be a useless encoding of a numeric feature
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=40), "money": [values[i % 2] for i in range(40)]})
    frame.loc[::3, "money"] = values[0].replace("1", "3")  # more distinct values
    model = tn.TaskNeuronRegressor(formula="x", hidden_layer_sizes=(4,), max_epochs=2, random_state=0)
    with pytest.raises(ValueError, match=r"column 'money' holds numbers written as text.*astype\('category'\)"):
        model.fit(frame, rng.normal(size=40))
    # declared categories are encoded as asked
    model.fit(frame.astype({"money": "category"}), rng.normal(size=40))
