"""Tests of taskneurons.datasets: registry, loader, encoding, synthetic sets, paper numbers.

Real data come from ../shared/datasets and ../shared/paper (tests skip when missing). The
network is never touched: every test runs with the OpenML fetch replaced by a function that
fails, and tests of the download path install their own fake.
"""

from __future__ import annotations

import gzip
import json
import urllib.error
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from taskneurons import Formula
from taskneurons import datasets as ds
from taskneurons.datasets import loader as loader_mod
from taskneurons.errors import DataError

SHARED = Path(__file__).resolve().parents[2] / "shared"
PAPER_DATA = SHARED / "datasets" / "paper"
SYNTHETIC = SHARED / "datasets" / "synthetic"
PAPER_TABLES = SHARED / "paper"

needs_paper_data = pytest.mark.skipif(not PAPER_DATA.is_dir(), reason="../shared/datasets/paper missing")
needs_synthetic = pytest.mark.skipif(not SYNTHETIC.is_dir(), reason="../shared/datasets/synthetic missing")
needs_tables = pytest.mark.skipif(
    not (PAPER_TABLES / "table5.csv").is_file(), reason="../shared/paper missing"
)

# The 14 files in ../shared/datasets/paper (file stem = registry name).
SHARED_FILES = [
    "california", "wine_quality", "fifa", "diamonds", "abalone", "airfoil_self_noise", "space_ga",
    "credit", "electricity", "phoneme", "bank-marketing", "MagicTelescope", "vehicle",
    "oranges_vs_grapefruit",
]

# Names as printed in the paper's Table 5 (and Table 6's variant spellings).
PAPER_NAMES = [
    "california housing", "house sales", "airfoil self noise", "wine quality", "fifa", "diamonds",
    "abalone", "Bike Sharing Demand", "space ga", "Airlines DepDelay", "credit", "heloc",
    "electricity", "phoneme", "bank-marketing", "MagicTelescope", "vehicle",
    "Oranges-vs-Grapefruit", "eye movements", "contaminant", "Oranges-vs.-Grapefruit", "Contaminant",
]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No network, no user environment, a private download cache per test."""
    for var in ("TASKNEURONS_DATA", "TASKNEURONS_CACHE", "TASKNEURONS_OFFLINE",
                "TASKNEURONS_PAPER_DIR", "TASKNEURONS_SYNTHETIC"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TASKNEURONS_CACHE", str(tmp_path / "cache"))

    def no_network(**kwargs):
        raise AssertionError(f"test tried to reach OpenML with {kwargs}")

    monkeypatch.setattr(loader_mod, "_fetch_openml", no_network)


def _write_csv(path: Path, frame: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- registry


def test_registry_holds_the_papers_twenty_datasets():
    assert len(ds.REGISTRY) == 20
    assert list(ds.REGISTRY) == ds.list_datasets()
    assert len(ds.list_datasets("regression")) == 10
    assert len(ds.list_datasets("classification")) == 10
    assert ds.list_datasets("multiclass") == ["vehicle"]
    for name, info in ds.REGISTRY.items():
        assert info.name == name
        assert info.task in ds.TASKS
        assert (info.n_classes is None) == (info.task == "regression")
        assert info.id_status in {"verified", "single-source", "by-name", "unverified", "none"}
        if info.id_status in {"verified", "single-source"}:
            assert isinstance(info.openml_id, int)
        assert info.can_download == (info.id_status != "none")
    assert ds.get_info("vehicle").n_classes == 4
    assert ds.get_info("credit").openml_id == 44089
    assert ds.get_info("oranges_vs_grapefruit").openml_target == "name"
    with pytest.raises(DataError):
        ds.list_datasets("clustering")


@pytest.mark.parametrize("paper_name", PAPER_NAMES)
def test_paper_names_resolve(paper_name):
    info = ds.lookup(paper_name)
    assert ds.canonical_name(paper_name) == info.name


@pytest.mark.parametrize("spelling, expected", [
    ("California Housing", "california"),
    ("california_housing", "california"),
    ("BANK_MARKETING", "bank-marketing"),
    ("bank marketing", "bank-marketing"),
    ("magic-telescope", "MagicTelescope"),
    ("Oranges-vs.-Grapefruit", "oranges_vs_grapefruit"),
    ("oranges vs grapefruit", "oranges_vs_grapefruit"),
    ("Space_GA", "space_ga"),
    ("airfoil-self-noise", "airfoil_self_noise"),
    ("bike sharing demand", "bike_sharing_demand"),
])
def test_name_normalisation(spelling, expected):
    assert ds.get_info(spelling).name == expected


def test_unknown_name_suggests_close_names():
    with pytest.raises(DataError, match="california"):
        ds.lookup("califrnia")
    with pytest.raises(DataError, match="not one of the 20 registered"):
        ds.get_info("no_such_dataset")


# --------------------------------------------------------------------------- loading files


@needs_paper_data
@pytest.mark.parametrize("name", SHARED_FILES)
def test_shared_files_load_with_the_papers_shapes(name):
    info = ds.get_info(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ds.DatasetShapeWarning)
        X, y = ds.load(name, PAPER_DATA)
    assert X.shape == (info.n_samples, info.n_features)
    assert y.shape == (info.n_samples,)
    assert not X.isna().any().any() and not y.isna().any()
    if info.task == "regression":
        assert y.dtype == np.float64
    else:
        assert y.nunique() == info.n_classes
    if info.target is not None:
        assert y.name == info.target


@needs_paper_data
def test_available_lists_the_fourteen_shared_files():
    assert ds.available(PAPER_DATA) == [n for n in ds.REGISTRY if n in SHARED_FILES]


@needs_paper_data
def test_default_folder_is_the_environment_variable(monkeypatch):
    monkeypatch.setenv("TASKNEURONS_DATA", str(PAPER_DATA))
    X, y = ds.load("phoneme")
    assert X.shape == (3172, 5)
    assert "phoneme" in ds.available()


@needs_paper_data
def test_categorical_columns_are_pandas_categories():
    X, _ = ds.load("diamonds", PAPER_DATA)
    for col, order in {"cut": ["Fair", "Good", "Very Good", "Premium", "Ideal"],
                       "color": list("JIHGFED"),
                       "clarity": ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"]}.items():
        assert isinstance(X[col].dtype, pd.CategoricalDtype)
        assert X[col].cat.ordered and list(X[col].cat.categories) == order
    assert ds.categorical_columns(X) == ["cut", "color", "clarity"]

    X, _ = ds.load("abalone", PAPER_DATA)
    assert isinstance(X["Sex"].dtype, pd.CategoricalDtype)
    assert sorted(X["Sex"].cat.categories) == ["F", "I", "M"]
    assert X["Sex"].value_counts().to_dict() == {"M": 1528, "I": 1342, "F": 1307}


@needs_paper_data
def test_encode_features_onehot_and_ordinal():
    X, _ = ds.load("abalone", PAPER_DATA)
    values, names = ds.encode_features(X, categorical="onehot")
    assert values.shape == (4177, 10) and values.dtype == np.float64
    assert names[:3] == ["Sex=F", "Sex=I", "Sex=M"] and names[3] == "Length"
    np.testing.assert_array_equal(values[:, :3].sum(axis=1), 1.0)
    np.testing.assert_array_equal(values[:, 3], X["Length"].to_numpy())

    X, _ = ds.load("diamonds", PAPER_DATA)
    values, names = ds.encode_features(X, categorical="ordinal")
    assert names == list(X.columns) and values.shape == (53940, 9)
    assert np.isfinite(values).all()
    # First row: carat 0.23, cut Ideal (code 4), color E (5), clarity SI2 (1).
    np.testing.assert_allclose(values[0, :4], [0.23, 4, 5, 1])
    onehot, names = ds.encode_features(X, categorical="onehot")
    assert onehot.shape == (53940, 6 + 5 + 7 + 8)
    assert "clarity=IF" in names


def test_encode_features_edge_cases():
    X = pd.DataFrame({"a": [1.0, 2.0, np.nan], "b": ["u", None, "v"], "c": [True, False, True]})
    values, names = ds.encode_features(X)
    assert names == ["a", "b=u", "b=v", "c"]
    np.testing.assert_array_equal(values[1], [2.0, 0.0, 0.0, 0.0])  # missing category: all zeros
    values, names = ds.encode_features(X, categorical="ordinal")
    assert np.isnan(values[1, 1]) and values[2, 1] == 1.0
    arr, names = ds.encode_features(np.ones((3, 2)))
    assert names == ["x0", "x1"] and arr.dtype == np.float64
    with pytest.raises(DataError, match="onehot"):
        ds.encode_features(X, categorical="target")


def test_missing_file_message_names_path_and_extensions(tmp_path):
    with pytest.raises(DataError) as err:
        ds.load("heloc", tmp_path, download=False)
    message = str(err.value)
    assert str(tmp_path.resolve() / "heloc.csv") in message
    assert "heloc.csv.gz" in message and "heloc.parquet" in message
    assert "last column" in message and "download=False" in message


def test_missing_file_without_a_data_folder_names_the_cache(tmp_path):
    with pytest.raises(DataError) as err:
        ds.load("airlines_depdelay")  # no OpenML version: never fetched
    message = str(err.value)
    assert "TASKNEURONS_DATA" in message
    assert str((tmp_path / "cache" / "datasets" / "airlines_depdelay.csv").resolve()) in message


def test_offline_switch_prevents_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("TASKNEURONS_OFFLINE", "1")
    with pytest.raises(DataError, match="TASKNEURONS_OFFLINE"):
        ds.load("heloc", tmp_path)


def test_failed_download_falls_back_to_a_clear_error(tmp_path, monkeypatch):
    calls = []

    def offline(**kwargs):
        calls.append(kwargs)
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(loader_mod, "_fetch_openml", offline)
    with pytest.raises(DataError) as err:
        ds.load("heloc", tmp_path)
    assert len(calls) == 1 and calls[0]["data_id"] == 45023
    message = str(err.value)
    assert "OpenML data id 45023" in message and "URLError" in message
    assert str(tmp_path.resolve() / "heloc.csv") in message and ".parquet" in message


def _fake_openml(record: list, n_rows: int, n_features: int, label_column: str = "class"):
    """A stand-in for sklearn.datasets.fetch_openml that 'downloads' into data_home."""

    def fake(**kwargs):
        record.append(kwargs)
        home = Path(kwargs["data_home"])
        home.mkdir(parents=True, exist_ok=True)
        with gzip.open(home / "fake_download.arff.gz", "wt") as fh:  # what sklearn would cache
            fh.write("@relation fake\n")
        rng = np.random.default_rng(0)
        data = pd.DataFrame(rng.normal(size=(n_rows, n_features)),
                            columns=[f"f{i}" for i in range(n_features)])
        target = pd.Series(rng.choice(["bad", "good"], size=n_rows), name=label_column)
        return type("Bunch", (), {"data": data, "target": target})()

    return fake


def test_download_goes_through_the_cache(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(loader_mod, "_fetch_openml", _fake_openml(calls, 10000, 22))
    empty = tmp_path / "data"
    empty.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ds.DatasetShapeWarning)
        X, y = ds.load("HELOC", empty)
    assert X.shape == (10000, 22) and set(y.unique()) == {"bad", "good"}
    assert calls[0]["data_id"] == 45023 and calls[0]["as_frame"] is True
    cache = tmp_path / "cache"
    assert Path(calls[0]["data_home"]) == cache / "openml"
    assert (cache / "openml" / "fake_download.arff.gz").is_file()
    assert (cache / "datasets" / "heloc.csv.gz").is_file()
    # A second load is served from the cache, even with downloads forbidden.
    X2, y2 = ds.load("heloc", empty, download=False)
    assert len(calls) == 1
    pd.testing.assert_frame_equal(X, X2)
    pd.testing.assert_series_equal(y, y2)


def test_download_by_name_and_target_column(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(loader_mod, "_fetch_openml", _fake_openml(calls, 10000, 5, "name"))
    X, y = ds.load("Oranges-vs.-Grapefruit", tmp_path)
    assert calls[0]["name"] == "Oranges-vs.-Grapefruit" and calls[0]["version"] == 1
    assert calls[0]["target_column"] == "name" and "data_id" not in calls[0]
    assert X.shape == (10000, 5) and y.name == "name"


def test_shape_mismatch_warns(tmp_path):
    frame = pd.DataFrame(np.arange(90.0).reshape(10, 9))
    _write_csv(tmp_path / "california.csv", frame)
    with pytest.warns(ds.DatasetShapeWarning, match=r"10 x 8 \(expected 20640 x 8\)"):
        X, y = ds.load("california", tmp_path)
    assert X.shape == (10, 8)
    frame = pd.DataFrame({"a": range(6), "b": range(6), "label": [0, 1, 2, 0, 1, 2]})
    _write_csv(tmp_path / "phoneme.csv", frame)
    with pytest.warns(ds.DatasetShapeWarning, match=r"3 classes \(expected 2\)"):
        ds.load("phoneme", tmp_path)


def test_file_names_in_other_spellings_are_found(tmp_path):
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]})
    _write_csv(tmp_path / "Bank_Marketing.csv", frame)
    assert ds.find_file("bank-marketing", tmp_path).name == "Bank_Marketing.csv"
    assert ds.available(tmp_path) == ["bank-marketing"]
    with pytest.warns(ds.DatasetShapeWarning):
        X, _ = ds.load("bank marketing", tmp_path)
    assert X.shape == (2, 1)


def test_unknown_dataset_in_the_folder_loads_and_is_listed(tmp_path):
    rng = np.random.default_rng(1)
    _write_csv(tmp_path / "my_survey.csv", pd.DataFrame({
        "age": rng.integers(18, 90, 50), "city": rng.choice(["Lyon", "Nice"], 50),
        "churn": rng.choice(["no", "yes"], 50)}))
    _write_csv(tmp_path / "prices.csv", pd.DataFrame({"a": rng.normal(size=40), "y": rng.normal(size=40)}))
    with gzip.open(tmp_path / "grades.csv.gz", "wt") as fh:
        pd.DataFrame({"a": rng.normal(size=30), "g": rng.integers(1, 6, 30)}).to_csv(fh, index=False)
    _write_csv(tmp_path / "wine_quality.csv", pd.DataFrame({"a": [1.0], "q": [5]}))
    (tmp_path / "notes.txt").write_text("not data")

    assert ds.available(tmp_path) == ["wine_quality", "grades", "my_survey", "prices"]

    X, y = ds.load("my_survey", tmp_path)
    assert X.shape == (50, 2) and isinstance(X["city"].dtype, pd.CategoricalDtype)
    assert set(y) == {"no", "yes"}  # labels unchanged
    info = ds.get_info("my_survey", tmp_path)
    assert (info.task, info.n_classes, info.target, info.categorical) == ("binary", 2, "churn", ("city",))
    assert info.openml_id is None and info.paper_name is None

    info = ds.get_info("prices", tmp_path)
    assert info.task == "regression" and info.n_classes is None
    assert ds.load("prices", tmp_path)[1].dtype == np.float64

    info = ds.get_info("grades", tmp_path)
    assert info.task == "multiclass" and info.n_classes == 5
    # A sidecar JSON overrides the inferred task.
    (tmp_path / "grades.json").write_text(json.dumps({"task": "regression"}))
    assert ds.get_info("grades", tmp_path).task == "regression"
    assert "task set in grades.json" in ds.get_info("grades", tmp_path).notes
    assert ds.load("grades", tmp_path)[1].dtype == np.float64


def test_a_table_dropped_into_the_download_cache_loads(tmp_path):
    # The cache (TASKNEURONS_CACHE, see _isolated) is searched for any name, as the module says.
    _write_csv(tmp_path / "cache" / "datasets" / "mydata.csv", pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [0.5, 0.7, 0.1]}))
    X, y = ds.load("mydata")
    assert X.shape == (3, 1) and list(y) == [0.5, 0.7, 0.1]


def test_unknown_name_without_a_file_names_where_to_put_it(tmp_path):
    with pytest.raises(DataError) as err:
        ds.load("my_data", tmp_path)
    assert str(tmp_path.resolve() / "my_data.csv") in str(err.value)
    assert "not one of the 20 registered" in str(err.value)


def test_bad_files_raise_clear_errors(tmp_path):
    (tmp_path / "one_col.csv").write_text("a\n1\n2\n")
    with pytest.raises(DataError, match="target as the last column"):
        ds.load("one_col", tmp_path)
    _write_csv(tmp_path / "holes.csv", pd.DataFrame({"a": [1.0, 2.0], "y": [1.0, None]}))
    with pytest.raises(DataError, match="missing value"):
        ds.load("holes", tmp_path)
    _write_csv(tmp_path / "fifa.csv", pd.DataFrame({"a": [1.0, 2.0], "wage": ["high", "low"]}))
    with pytest.raises(DataError, match="non-numeric"):
        ds.load("fifa", tmp_path)


def _damaged_gzip_files(folder):
    """A truncated, a corrupted and a not-gzip ``.csv.gz``, each with its own stem."""
    rng = np.random.default_rng(2)
    packed = gzip.compress(pd.DataFrame({"a": rng.normal(size=300), "y": rng.normal(size=300)})
                           .to_csv(index=False).encode())
    (folder / "truncated.csv.gz").write_bytes(packed[: len(packed) // 2])
    flipped = bytearray(packed)
    for i in range(40, len(flipped) - 20, 7):
        flipped[i] ^= 0xFF
    (folder / "corrupted.csv.gz").write_bytes(bytes(flipped))
    (folder / "plain.csv.gz").write_text("a,y\n1,2\n")
    return ("truncated", "corrupted", "plain")


def test_damaged_gzip_files_raise_a_data_error_naming_the_file(tmp_path):
    # EOFError, zlib.error and gzip.BadGzipFile from decompression, before: not the promised DataError
    for name in _damaged_gzip_files(tmp_path):
        path = tmp_path / f"{name}.csv.gz"
        with pytest.raises(DataError, match=f"Could not read {path} as CSV: the file is damaged"):
            ds.load(name, tmp_path)
        with pytest.raises(DataError, match="is damaged"):
            ds.read_table(path)


def test_a_sidecar_task_must_fit_the_class_count(tmp_path):
    rng = np.random.default_rng(3)
    _write_csv(tmp_path / "five.csv", pd.DataFrame({"a": rng.normal(size=60), "y": rng.integers(0, 5, 60)}))
    (tmp_path / "five.json").write_text(json.dumps({"task": "binary"}))
    with pytest.raises(DataError, match="sets task 'binary', but the target column 'y' has 5 classes"):
        ds.get_info("five", tmp_path)
    _write_csv(tmp_path / "two.csv", pd.DataFrame({"a": rng.normal(size=60), "y": rng.integers(0, 2, 60)}))
    (tmp_path / "two.json").write_text(json.dumps({"task": "multiclass"}))
    with pytest.raises(DataError, match="sets task 'multiclass', but the target column 'y' has 2 classes"):
        ds.get_info("two", tmp_path)
    (tmp_path / "five.json").write_text(json.dumps({"task": "multiclass"}))
    info = ds.get_info("five", tmp_path)
    assert (info.task, info.n_classes) == ("multiclass", 5)


def test_parquet_files_load(tmp_path):
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"a": np.arange(5.0), "kind": list("uvuvu"), "y": np.linspace(0, 1, 5)})
    frame.to_parquet(tmp_path / "tiny.parquet")
    X, y = ds.load("tiny", tmp_path)
    assert X.shape == (5, 2) and isinstance(X["kind"].dtype, pd.CategoricalDtype)
    np.testing.assert_allclose(y, frame["y"])


@needs_paper_data
def test_parquet_copy_of_a_shared_file_matches_the_csv(tmp_path):
    pytest.importorskip("pyarrow")
    X, y = ds.load("vehicle", PAPER_DATA)
    pd.concat([X, y], axis=1).to_parquet(tmp_path / "vehicle.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ds.DatasetShapeWarning)
        X2, y2 = ds.load("vehicle", tmp_path)
    pd.testing.assert_frame_equal(X, X2)
    pd.testing.assert_series_equal(y, y2)


@needs_paper_data
def test_parquet_categories_get_the_known_order(tmp_path):
    # A parquet file keeps pandas' unordered categories; the registry's scale must still apply,
    # or ordinal encodings of diamonds' cut/color/clarity would change with the file format.
    pytest.importorskip("pyarrow")
    X, y = ds.load("diamonds", PAPER_DATA)
    frame = X.assign(**{c: X[c].astype(str).astype("category") for c in ("cut", "color", "clarity")})
    pd.concat([frame, y], axis=1).to_parquet(tmp_path / "diamonds.parquet")
    X2, _ = ds.load("diamonds", tmp_path)
    assert X2["cut"].cat.ordered and list(X2["cut"].cat.categories) == list(X["cut"].cat.categories)
    np.testing.assert_array_equal(ds.encode_features(X2, "ordinal")[0], ds.encode_features(X, "ordinal")[0])


# --------------------------------------------------------------------------- synthetic sets


def test_synthetic_truths_and_names():
    assert len(ds.SYNTHETIC_TRUTHS) == 10 and len(ds.SYNTHETIC_NAMES) == 30
    assert ds.SYNTHETIC_NOISE == {"low": 0.05, "medium": 0.15, "high": 0.30}
    assert ds.parse_synthetic_name("epsilon_medium_no10") == ("medium", "no10")
    assert ds.parse_synthetic_name("no3") == (None, "no3")
    assert ds.synthetic_truth("epsilon_low_no3").same_terms(Formula("5*x + 4*x**2"))
    x = np.array([[1.0, 2.0], [-1.0, 0.5]])
    np.testing.assert_allclose(ds.synthetic_clean_target("no9", x),
                               [3 + 2 + 6 + 16, -3 - 2 + 1.5 + 0.25])
    with pytest.raises(DataError, match="epsilon_"):
        ds.parse_synthetic_name("epsilon_low_no11")


@needs_synthetic
@pytest.mark.parametrize("name", ds.SYNTHETIC_NAMES)
def test_synthetic_sets_match_their_truth_up_to_the_stated_noise(name):
    X, y = ds.load_synthetic(name, SYNTHETIC)
    assert X.shape == (600, 10) and list(X.columns) == [f"x{i}" for i in range(1, 11)]
    assert y.dtype == np.float64
    assert X.to_numpy().min() >= -50 and X.to_numpy().max() <= 50
    clean = ds.synthetic_clean_target(name, X)
    level = ds.SYNTHETIC_NOISE[ds.parse_synthetic_name(name)[0]]
    ratio = np.std(y.to_numpy() - clean) / np.sqrt(np.mean(clean**2))
    assert 0.9 * level < ratio < 1.1 * level


@needs_synthetic
def test_synthetic_default_folder_from_the_data_variable(monkeypatch):
    monkeypatch.setenv("TASKNEURONS_DATA", str(PAPER_DATA))
    assert ds.synthetic_dir() == SYNTHETIC.resolve()
    X, _ = ds.load_synthetic("epsilon_high_no1")
    assert X.shape == (600, 10)


def test_synthetic_errors(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="noise level"):
        ds.load_synthetic("no2", tmp_path)
    with pytest.raises(DataError, match=str(tmp_path.resolve() / "epsilon_low_no2.csv.gz")):
        ds.load_synthetic("epsilon_low_no2", tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="TASKNEURONS_SYNTHETIC"):
        ds.load_synthetic("epsilon_low_no2")


def test_make_synthetic_is_reproducible_with_the_requested_noise():
    X, y = ds.make_synthetic("2*x**3 - x", n_samples=4000, n_features=3, noise=0.2, random_state=7)
    X2, y2 = ds.make_synthetic("2*x**3 - x", n_samples=4000, n_features=3, noise=0.2, random_state=7)
    pd.testing.assert_frame_equal(X, X2)
    pd.testing.assert_series_equal(y, y2)
    assert X.shape == (4000, 3) and list(X.columns) == ["x1", "x2", "x3"]
    clean = Formula("2*x**3 - x").predict(X.to_numpy())
    ratio = np.std(y - clean) / np.sqrt(np.mean(clean**2))
    assert 0.19 < ratio < 0.21
    _, exact = ds.make_synthetic("x**2", n_samples=5, noise=0.0, random_state=0, low=0, high=1)
    assert (exact >= 0).all()
    with pytest.raises(DataError):
        ds.make_synthetic("x", noise=-1)


# --------------------------------------------------------------------------- paper numbers


@needs_tables
def test_paper_table5_parses_and_agrees_with_the_registry():
    t5 = ds.paper_table5(PAPER_TABLES)
    assert len(t5) == 20 and list(t5["dataset"]) == list(ds.REGISTRY)
    for row in t5.itertuples():
        info = ds.REGISTRY[row.dataset]
        assert (row.n_samples, row.n_features, row.task) == (info.n_samples, info.n_features, info.task)
        assert (pd.isna(row.n_classes) and info.n_classes is None) or row.n_classes == info.n_classes
        Formula(row.formula)  # every formula parses
    assert t5.set_index("dataset").loc["california", "formula"] == "0.068*x**3 + 0.15*x + 0.76"


@needs_tables
def test_paper_table6_is_tidy():
    t6 = ds.paper_table6(PAPER_TABLES)
    assert len(t6) == 20 * 5 * 2
    assert set(t6["dataset"]) == set(ds.REGISTRY)
    assert tuple(sorted(t6["structure"].unique())) == ds.STRUCTURES
    assert set(t6["model"]) == {"LN", "TN"}
    for name, metric in t6.groupby("dataset")["metric"].first().items():
        assert metric == ("mse" if ds.REGISTRY[name].task == "regression" else "accuracy")
    cell = t6.set_index(["dataset", "structure", "model"]).loc[("california", "S1", "LN")]
    assert (cell["mean"], cell["std"]) == (0.0760, 0.0057)
    oranges = t6[t6["dataset"] == "oranges_vs_grapefruit"]
    assert oranges["paper_name"].iloc[0] == "Oranges-vs.-Grapefruit" and len(oranges) == 10
    assert t6["mean"].dtype == np.float64 and (t6["std"] >= 0).all()


@needs_tables
def test_paper_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("TASKNEURONS_PAPER_DIR", str(PAPER_TABLES))
    assert ds.resolve_paper_dir() == PAPER_TABLES.resolve()
    monkeypatch.delenv("TASKNEURONS_PAPER_DIR")
    monkeypatch.setenv("TASKNEURONS_DATA", str(PAPER_DATA))
    monkeypatch.chdir(tmp_path)  # the ../shared/paper fallback does not apply from here
    assert len(ds.paper_table5()) == 20


@needs_tables
def test_a_malformed_number_in_the_paper_tables_names_the_file(tmp_path):
    (tmp_path / "table5.csv").write_bytes((PAPER_TABLES / "table5.csv").read_bytes())
    text = (PAPER_TABLES / "table6.csv").read_text()
    assert "california housing,mse,0.0760" in text
    (tmp_path / "table6.csv").write_text(text.replace("california housing,mse,0.0760", "california housing,mse,0.07x"))
    with pytest.raises(DataError, match=r"table6.csv: the row of 'california housing' holds '0.07x' in column"):
        ds.paper_table6(tmp_path)
    text5 = (PAPER_TABLES / "table5.csv").read_text()
    (tmp_path / "table5.csv").write_text(text5.replace("california housing,20640,", "california housing,2x0640,"))
    with pytest.raises(DataError, match="table5.csv holds a malformed number"):
        ds.paper_table5(tmp_path)


@needs_tables
@needs_paper_data
def test_the_paper_tables_are_found_next_to_a_data_folder(tmp_path, monkeypatch):
    """The shared layout <root>/datasets/<name> beside <root>/paper, as the report and --tn-formula look."""
    monkeypatch.delenv("TASKNEURONS_PAPER_DIR", raising=False)
    monkeypatch.delenv("TASKNEURONS_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # the ../shared/paper fallback does not apply from here
    with pytest.raises(DataError, match="not available"):
        ds.paper_table5()
    assert len(ds.paper_table5(near=[PAPER_DATA])) == 20
    assert ds.resolve_paper_dir(near=[None, PAPER_DATA]) == PAPER_TABLES.resolve()
    with pytest.raises(DataError, match=r"looked at ../shared/paper: .*; the data folder's ../../paper: "):
        ds.paper_table6(near=[tmp_path / "a" / "b"])


def test_paper_tables_unavailable_raise_data_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="reference numbers are not available"):
        ds.paper_table6()
    with pytest.raises(DataError, match="paper_dir argument"):
        ds.paper_table5(tmp_path)


def test_own_table_named_like_a_registered_dataset_stays_the_users(tmp_path):
    # bank.csv of one's own, described by a bank.json sidecar, is run under its own stem with its
    # own task, not as bank-marketing (a binary task) beside the paper's numbers.
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.uniform(-1, 1, (40, 3)), columns=["a", "b", "c"])
    frame.assign(target=frame.sum(axis=1)).to_csv(tmp_path / "bank.csv", index=False)
    (tmp_path / "bank.json").write_text('{"task": "regression"}')
    assert ds.available(tmp_path) == ["bank"]
    info = ds.get_info("bank", tmp_path)
    assert (info.name, info.task, info.paper_name) == ("bank", "regression", None)
    X, y = ds.load("bank", tmp_path)
    assert X.shape == (40, 3) and y.dtype == float
    (tmp_path / "bank.json").unlink()  # without the sidecar the name means the registered dataset
    assert ds.available(tmp_path) == ["bank-marketing"]
    assert ds.get_info("bank", tmp_path).name == "bank-marketing"
