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
    assert model.formula_ == tn.Formula("x**2 + x")
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
    # Whole numbers are one category as int or float (10 and 10.0): a column of integer codes becomes float
    # once a missing value was dropped, and 10.0 was an unseen category (all-zero one-hot columns).
    expected = model.predict(frame)
    np.testing.assert_array_equal(model.predict(frame.astype({"c": float})), expected)
    np.testing.assert_array_equal(model.predict(frame.astype({"c": float}).astype({"c": "category"})), expected)
    floats = frame.assign(c=pd.Categorical(codes.astype(float)))  # and the other way round
    model = TaskNeuronRegressor(formula="x", categorical=categorical, **FAST).fit(floats, y)
    np.testing.assert_array_equal(model.predict(frame.astype({"c": int})), model.predict(floats))
    if categorical == "onehot":  # a really unseen number still encodes as all zeros
        assert np.isfinite(model.predict(frame.head(2).assign(c=[15.5, 40]))).all()
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
    with pytest.warns(UserWarning, match="feature names"), \
            pytest.raises(ValueError, match="column 'b' holds the text value 'text' .*but it held numbers in fit"):
        model.predict(pd.DataFrame({"a": [0.5], "b": ["text"]}))
    frame = pd.DataFrame(X, columns=["a", "b"])  # fitted on a DataFrame: the message is the same, and true
    named = TaskNeuronRegressor(formula="x", **FAST).fit(frame, X.sum(1))
    with pytest.raises(ValueError, match="column 'b' holds the text values 'x', 'y' \\(2 of 3 rows, first at index 1"):
        named.predict(frame.head(3).assign(b=[0.5, "x", "y"]))


def _numbers_frame(n=200):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.uniform(-1, 1, n), "b": rng.uniform(-1, 1, n)})
    return X, 3 * X["a"] + X["b"]


def test_columns_of_numbers_stored_as_objects_or_text_are_numeric():
    X, y = _numbers_frame()
    reference = TaskNeuronRegressor(formula="x", **FAST).fit(X, y)
    expected = reference.predict(X)
    for stored in (X.astype(object), X.astype(str), X.astype("string")):
        model = TaskNeuronRegressor(formula="x", **FAST).fit(stored, y)
        assert model.encoder_.feature_names_out_ == ["a", "b"]  # not one category per distinct number
        np.testing.assert_allclose(model.predict(stored), expected, rtol=1e-6, atol=1e-6)
    # a model fitted on numbers predicts on the same numbers stored otherwise, as scikit-learn does
    for stored in (X.astype(object), X.astype(str), X.assign(b=X["b"].astype(object))):
        np.testing.assert_array_equal(reference.predict(stored), expected)
    flags = X.assign(b=X["b"] > 0)
    flagged = TaskNeuronRegressor(formula="x", **FAST).fit(flags, y)
    np.testing.assert_array_equal(flagged.predict(flags.astype({"b": object})), flagged.predict(flags))
    steps = X.assign(b=np.round(X["b"]))
    stepped = TaskNeuronRegressor(formula="x", **FAST).fit(steps, y)
    np.testing.assert_array_equal(stepped.predict(steps.astype({"b": "category"})), stepped.predict(steps))


def test_a_numeric_column_with_a_few_text_values_is_refused_not_one_hot_encoded():
    X, y = _numbers_frame()
    marked = X.astype({"a": object})
    marked.loc[5, "a"] = "?"
    with pytest.raises(ValueError, match="column 'a' holds numbers \\(199 distinct\\) except for the text value "
                                         "'\\?' \\(1 of 200 rows, first at index 5\\).*na_values=\\['\\?'\\]"):
        TaskNeuronRegressor(formula="x", **FAST).fit(marked, y)
    # declared categories, and text columns with few distinct numbers, stay categories
    as_category = TaskNeuronRegressor(formula="x", **FAST).fit(marked.head(20).astype({"a": "category"}), y[:20])
    assert len(as_category.encoder_.feature_names_out_) == 21
    rooms = X.assign(a=np.random.default_rng(1).choice(["1", "2", "3", "4+"], len(X)))
    model = TaskNeuronRegressor(formula="x", **FAST).fit(rooms, y)
    assert model.encoder_.feature_names_out_ == ["a=1", "a=2", "a=3", "a=4+", "b"]
    # a column that held numbers in fit and has text at prediction time is refused by name
    reference = TaskNeuronRegressor(formula="x", **FAST).fit(X, y)
    with pytest.raises(ValueError, match="column 'a' holds the text value '\\?' .*but it held numbers in fit"):
        reference.predict(marked)


def test_save_refuses_an_activation_given_as_a_module(tmp_path):
    import torch

    X = np.random.default_rng(0).uniform(size=(40, 2))
    model = TaskNeuronRegressor(activation=torch.nn.Tanh, formula="x**2 + x", **FAST).fit(X, X[:, 0])
    with pytest.raises(ModelFileError, match="give the activation by name"):
        model.save(tmp_path / "model.tn")  # loading would otherwise rebuild the default ReLU


def test_save_records_the_fitted_network_not_parameters_set_after_fit(tmp_path):
    import torch

    X = np.random.default_rng(0).uniform(-1, 1, size=(80, 3))
    model = TaskNeuronRegressor(formula="x**3", **FAST).fit(X, X[:, 0] ** 2 + X[:, 1])
    expected = model.predict(X)
    model.set_params(activation="tanh", basis="terms")  # scikit-learn: no effect until the next fit
    np.testing.assert_array_equal(model.predict(X), expected)
    model.save(tmp_path / "model.tn")
    loaded = tn.load(tmp_path / "model.tn")
    np.testing.assert_array_equal(loaded.predict(X), expected)
    assert loaded.get_params()["activation"] == "tanh"  # the parameters, as they are now
    loaded.save(tmp_path / "again.tn")  # and a loaded model saves the same network again
    np.testing.assert_array_equal(tn.load(tmp_path / "again.tn").predict(X), expected)
    refit = loaded.fit(X, X[:, 0])  # the next fit uses the parameters
    assert isinstance(refit.network_[1], torch.nn.Tanh) and refit.network_.basis == "terms"


def test_save_refuses_a_directory_or_a_missing_folder_before_writing(tmp_path):
    X = np.random.default_rng(0).uniform(size=(40, 2))
    model = TaskNeuronRegressor(formula="x", **FAST).fit(X, X[:, 0])
    folder = tmp_path / "models"
    folder.mkdir()
    with pytest.raises(ModelFileError, match="models is a directory; pass a file path"):
        model.save(folder)
    with pytest.raises(ModelFileError, match="the folder .*missing does not exist; create it first"):
        model.save(tmp_path / "missing" / "model.tn")
    (tmp_path / "model.tn").touch()
    with pytest.raises(ModelFileError, match="model.tn is not a folder"):
        model.save(tmp_path / "model.tn" / "inner.tn")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tn", "models"]  # no .tmp file left behind
    assert list(folder.iterdir()) == []


def test_load_errors_from_the_model_description_name_the_file(tmp_path):
    import json

    from taskneurons.persistence import _metadata_digest

    X = np.random.default_rng(0).uniform(size=(40, 2))
    path = tmp_path / "model.tn"
    TaskNeuronRegressor(formula="x", **FAST).fit(X, X[:, 0]).save(path)
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + size])

    def edited(change):
        meta = json.loads(header["__metadata__"]["taskneurons"])
        change(meta)
        meta["metadata_sha256"] = _metadata_digest(meta)  # a deliberate edit, checksums recomputed
        text = json.dumps({**header, "__metadata__": {"taskneurons": json.dumps(meta)}}).encode()
        text += b" " * (-len(text) % 8)
        out = tmp_path / "edited.tn"
        out.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + size:])
        return out

    with pytest.raises(ModelFileError, match="edited.tn: unknown parameter 'foo' for TaskNeuronRegressor"):
        tn.load(edited(lambda meta: meta["params"].update(foo=1)))
    with pytest.raises(ModelFileError, match="edited.tn: unknown basis 'bogus' \\(fitted\\)"):
        tn.load(edited(lambda meta: meta["fitted"].update(basis="bogus")))
    with pytest.raises(ModelFileError, match="edited.tn: unknown activation 'evil' \\(fitted\\)"):
        tn.load(edited(lambda meta: meta["fitted"].update(activation="evil")))
    with pytest.raises(ModelFileError, match="edited.tn: unknown basis 'bogus' \\(params\\)"):
        tn.load(edited(lambda meta: meta["params"].update(basis="bogus")))
    # files written before the fitted activation and basis were recorded: the parameters
    old = tn.load(edited(lambda meta: [meta["fitted"].pop(k) for k in ("activation", "basis")]))
    np.testing.assert_array_equal(old.predict(X), tn.load(path).predict(X))


@pytest.mark.parametrize("params", [{}, {"term_weights": "per_input", "term_schedule": "linear_first"}],
                         ids=["joint", "linear_first"])
def test_seeded_fit_leaves_torch_global_generator_untouched(params):
    import torch

    X = np.random.default_rng(0).uniform(-1, 1, size=(60, 3))
    state = torch.get_rng_state()
    TaskNeuronRegressor(formula="x**2 + x", **{**FAST, "max_epochs": 3, **params}).fit(X, X[:, 0] ** 2)
    assert torch.equal(state, torch.get_rng_state())


def test_tiny_values_keep_their_signal_under_standard_scaling():
    from taskneurons.preprocessing import TabularEncoder, TargetScaler

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(300, 2))
    y = X[:, 0] + 0.5 * X[:, 1]
    for size in (1e-170, 1e-300, 1e300):  # the variance under- or overflows float64
        scaled = TargetScaler("standard").fit_transform((y * size)[:, None])
        np.testing.assert_allclose([scaled.mean(), scaled.std()], [0, 1], atol=1e-12)
        encoded = TabularEncoder("standard", clip=None).fit_transform(X * size)
        np.testing.assert_allclose(encoded.std(axis=0), 1, rtol=1e-12)
    model = TaskNeuronRegressor(formula="x", scale_X="standard", **FAST).fit(X * 1e-170, y * 1e-170)
    assert model.score(X * 1e-170, y * 1e-170) > 0.9
    subnormal = TargetScaler("standard").fit_transform((y * 1e-310)[:, None])  # fewer digits, still scaled
    np.testing.assert_allclose([subnormal.mean(), subnormal.std()], [0, 1], atol=1e-6)
    with pytest.raises(ValueError, match="vary by less than 1e-308 \\(subnormal"):
        TabularEncoder("standard").fit_transform(X * 1e-310)
    np.testing.assert_array_equal(TargetScaler("standard").fit_transform(np.full((5, 1), 1e-170)), 0)


@pytest.mark.parametrize("formula", ["sqrt(x)", "log(x)"])
def test_a_formula_undefined_on_the_scaled_inputs_is_explained(formula):
    X = np.random.default_rng(0).uniform(-1, 1, size=(40, 2))
    with pytest.raises(ValueError, match="undefined \\(NaN\\) on part of the scaled inputs, which lie in \\[-1, 1\\]"):
        TaskNeuronRegressor(formula=formula, **FAST).fit(X, X.sum(1))


def test_input_clip_and_parameter_budget_messages():
    X = np.random.default_rng(0).uniform(size=(40, 3))
    model = TaskNeuronRegressor(formula="x", input_clip=np.float32(2.0), **FAST).fit(X, X.sum(1))
    assert model.encoder_.clip == 2.0 and type(model.encoder_.clip) is float
    with pytest.raises(ValueError, match="no network fits in 5 parameters; even hidden widths of 1 need 9") as info:
        TaskNeuronRegressor(formula="x**2 + x", parameter_budget=5, **FAST).fit(X, X.sum(1))
    assert "output_formula" not in str(info.value)  # a TaskMLP option the estimators do not have


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
    ({"validation_fraction": 0}, "validation_fraction must be in \\(0, 1\\), got 0"),
    ({"patience": 0}, "patience must be an integer >= 1"),
    ({"input_clip": "foo"}, "input_clip must be a positive finite number, 'auto' or None \\(no clipping\\), got 'foo'"),
    ({"input_clip": 0}, "input_clip must be a positive finite number"),
    ({"input_clip": True}, "input_clip must be a positive finite number"),
    ({"input_clip": float("inf")}, "input_clip must be a positive finite number, 'auto' or None \\(no clipping\\)"),
    ({"hidden_layer_sizes": (2.5,)}, "hidden_layer_sizes must be a sequence of positive integers, got \\(2.5,\\)"),
    ({"hidden_layer_sizes": (True,)}, "hidden_layer_sizes must be a sequence of positive integers"),
    ({"hidden_layer_sizes": True}, "hidden_layer_sizes must be a sequence of positive integers"),
    ({"batch_size": True}, "batch_size must be a positive integer or 'auto', got True"),
    ({"max_epochs": True}, "max_epochs must be a positive integer, got True"),
    ({"parameter_budget": True}, "parameter_budget must be None, 'linear' or a positive integer, got True"),
    ({"weight_decay": "a"}, "weight_decay must be a number >= 0, got 'a'"),
    ({"weight_decay": -1.0}, "weight_decay must be a number >= 0"),
    ({"optimizer": "bogus"}, "unknown optimizer 'bogus'"),
    ({"activation": "bogus"}, "unknown activation 'bogus'"),
    ({"device": "bogus"}, "device='bogus' is not a device"),
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


def test_save_refuses_a_folder_where_the_temporary_file_goes(tmp_path):
    model = tn.TaskNeuronRegressor(formula="x**2 + x", hidden_layer_sizes=(4,), max_epochs=2, random_state=0)
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (40, 2))
    model.fit(X, X.sum(axis=1))
    (tmp_path / "m.tn.tmp").mkdir()
    with pytest.raises(tn.errors.ModelFileError, match=r"m\.tn\.tmp, where it is written first, is a folder"):
        model.save(tmp_path / "m.tn")
    assert (tmp_path / "m.tn.tmp").is_dir() and not (tmp_path / "m.tn").exists()
