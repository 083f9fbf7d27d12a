"""Tests of vectorized symbolic regression (taskneurons.vsr): behaviour and numbers, never timing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from taskneurons import DataError, Formula
from taskneurons.vsr import VSR, make_vsr_task, terms_match
from taskneurons.vsr.features import GramCache, aggregate
from taskneurons.vsr.fit import least_squares_coefficients, solve_batched
from taskneurons.vsr.grammar import FAMILIES, DataRange, generate_candidates, parse_bases
from taskneurons.vsr.scaling import AffineScaler
from taskneurons.vsr.selection import FrontEntry, pareto_front

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"
SYNTHETIC = DATA / "synthetic"
TRUTHS = {1: "6*x**2", 3: "5*x + 4*x**2", 9: "3*x + 2*x**3"}


def _task(seed=0, n=600, d=8, truth="1.5*x**3 - 2*x**2 + 0.5"):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, d))
    f = Formula(truth)
    y = f.predict(X)
    return X, y + 0.01 * y.std() * rng.standard_normal(n), f


# ---------------------------------------------------------------------------------------------
# Recovery of known truths.
# ---------------------------------------------------------------------------------------------

@pytest.mark.skipif(not SYNTHETIC.exists(), reason="../shared/datasets/synthetic is not available")
@pytest.mark.parametrize("number", sorted(TRUTHS))
def test_seed_synthetic_sets_reach_the_noise_floor(number):
    frame = pd.read_csv(SYNTHETIC / f"epsilon_low_no{number}.csv.gz")
    X, y = frame.iloc[:, :-1].to_numpy(), frame.iloc[:, -1].to_numpy()
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[:480], order[480:]
    model = VSR(scale="shared", random_state=0).fit(X[train], y[train])
    mse = np.mean((model.predict(X[test]) - y[test]) ** 2)
    floor = np.mean((Formula(TRUTHS[number]).predict(X[test]) - y[test]) ** 2)
    assert mse <= 1.05 * floor
    # The highest true power is found in raw units with its true coefficient (within noise).
    truth = Formula(TRUTHS[number])
    top = max(truth.terms, key=lambda t: t.power)
    found = dict(zip((t.key for t in model.formula_raw_.terms), model.formula_raw_.coefficients, strict=True))
    assert found[top.key] == pytest.approx(dict(zip((t.key for t in truth.terms), truth.coefficients,
                                                    strict=True))[top.key], rel=0.1)


def test_generated_polynomial_task_terms_are_recovered():
    X, y, truth = make_vsr_task(1500, 30, terms=["x**2", "x**5", "x**6"], random_state=3)
    model = VSR(scale=None, random_state=0).fit(X, y)
    assert terms_match(model.formula_, truth)
    assert model.score(X, y) > 0.999


def test_generated_extended_task_terms_and_constants_are_recovered():
    X, y, truth = make_vsr_task(1000, 10, terms=["sin(2.3*x)", "x**2"], random_state=1)
    model = VSR(bases=("poly", "trig"), scale=None, random_state=0).fit(X, y)
    assert terms_match(model.formula_, truth)
    (sin_term,) = [t for t in model.formula_.terms if t.power is None]
    assert sin_term.constants[0] == pytest.approx(2.3, rel=0.02)


def test_exact_data_give_the_exact_formula_without_junk_terms():
    # Noise-free data: the reported SSE must be the fit's real SSE (not the ridge objective, which
    # rewarded splitting a weight over near-duplicate terms) and constants must not be rounded
    # to 4 digits where that leaves a residual other terms would absorb.
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(300, 4))
    model = VSR(scale=None, bases="trig", random_state=0).fit(X, np.sin(1.2345 * X).sum(axis=1))
    (term,) = model.formula_.terms
    assert term.constants[0] == pytest.approx(1.2345, rel=1e-6)
    X = rng.uniform(0.5, 5, size=(300, 3))
    model = VSR(scale=None, bases="all", max_degree=3, random_state=0).fit(X, 2 * np.log(X + 0.3).sum(1) + X.sum(1))
    log_term, linear = sorted(model.formula_.terms, key=str)
    assert str(linear) == "x" and str(log_term).startswith("log(") and log_term.constants[0] == pytest.approx(0.3, rel=1e-5)
    # Every front row's coefficients are the float64 least-squares fit of its own terms.
    for text in model.pareto_["formula"]:
        formula = Formula(str(text))
        S = np.column_stack([np.ones(len(X))] + [np.asarray(t.evaluate(X), float).sum(axis=1) for t in formula.terms])
        coef = np.linalg.lstsq(S, 2 * np.log(X + 0.3).sum(1) + X.sum(1), rcond=None)[0]
        np.testing.assert_allclose(formula.coefficients, coef[1:], rtol=1e-7, atol=1e-9)


def test_near_duplicate_columns_do_not_look_like_a_better_fit():
    rng = np.random.default_rng(0)
    s1 = rng.normal(size=200)
    s2 = s1 + 1e-4 * rng.normal(size=200)
    cache = GramCache(np.column_stack([s1, s2]), 3.0 * s1[:, None], np.arange(200), np.arange(0))
    one, _ = cache.solve(np.array([[0]]))
    two, _ = cache.solve(np.array([[0, 1]]))
    assert one[0] <= two[0]


def test_make_vsr_task_documents_its_truth():
    X, y, truth, info = make_vsr_task(500, 7, bases="poly", n_terms=2, random_state=4, return_info=True)
    assert X.shape == (500, 7) and y.shape == (500,)
    assert np.all(np.abs(X) <= 1)
    assert len(truth.terms) == 2 and truth.is_polynomial
    clean = truth.predict(X)
    noise = y - clean
    assert np.std(noise) == pytest.approx(0.01 * np.sqrt(np.mean(clean ** 2)), rel=0.15)
    assert info["rejected"] >= 0
    # Same seed, same task.
    X2, y2, truth2 = make_vsr_task(500, 7, bases="poly", n_terms=2, random_state=4)
    assert np.array_equal(X, X2) and np.array_equal(y, y2) and truth2 == truth


def test_terms_match_rule():
    truth = Formula("2*sin(2.3*x) + x**2")
    assert terms_match(Formula("0.5*sin(2.33*x) - x**2 + 4"), truth)
    assert not terms_match(Formula("sin(2.6*x) + x**2"), truth)        # constant 13 % off
    assert not terms_match(Formula("cos(2.3*x) + x**2"), truth)        # other shape
    assert not terms_match(Formula("sin(2.3*x) + x**2 + x"), truth)    # extra term


# ---------------------------------------------------------------------------------------------
# Outputs, tasks and fitted attributes.
# ---------------------------------------------------------------------------------------------

def test_fitted_attributes_and_semantics():
    X, y, _ = _task()
    model = VSR(random_state=0).fit(X, y)
    assert model.n_features_in_ == X.shape[1]
    assert model.coef_.shape == (1, len(model.terms_)) and model.intercept_.shape == (1,)
    # formula_ lives in the scaled inputs: c0 + sum_k c_k sum_i phi_k(u_i), constant added once.
    U = model.scaler_.transform(X)
    assert np.allclose(model.formula_.predict(U), model.predict(X))
    by_hand = model.intercept_[0] + sum(c * t.evaluate(U).sum(axis=1)
                                        for c, t in zip(model.coef_[0], model.terms_, strict=True))
    assert np.allclose(by_hand, model.predict(X))
    assert model.formula_raw_ is None  # minmax: no single raw-unit formula


def test_feature_names_from_dataframe():
    X, y, _ = _task(d=3)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = VSR(random_state=0).fit(frame, y)
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    assert np.allclose(model.predict(frame), VSR(random_state=0).fit(X, y).predict(X))


def test_pareto_front_table():
    X, y, _ = _task()
    model = VSR(random_state=0).fit(X, y)
    front = model.pareto_
    assert list(front.columns) == ["complexity", "n_terms", "train_loss", "val_loss", "bic", "selected", "formula"]
    assert front["selected"].sum() == 1
    assert front["complexity"].is_monotonic_increasing
    assert front[["train_loss", "val_loss", "bic"]].notna().all().all()
    assert all(isinstance(f, Formula) for f in front["formula"])
    chosen = front[front["selected"]].iloc[0]
    assert chosen["formula"] == model.formula_


def test_parsimony_prefers_the_true_small_formula():
    X, y, _ = _task(truth="2*x**2", n=800)
    model = VSR(scale=None, random_state=0).fit(X, y)
    assert [t.key for t in model.formula_.terms] == ["x**2"]


def test_multi_output_shares_terms():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(600, 6))
    s2, s3 = (X ** 2).sum(1), (X ** 3).sum(1)
    Y = np.column_stack([2 * s2 - s3, -s2 + 3 * s3 + 1]) + 0.01 * rng.standard_normal((600, 2))
    model = VSR(scale=None, random_state=0).fit(X, Y)
    assert model.coef_.shape == (2, len(model.terms_)) and model.intercept_.shape == (2,)
    assert len(model.formulas_) == 2
    assert {t.key for t in model.terms_} == {"x**2", "x**3"}
    assert all(f.same_terms(model.formula_) for f in model.formulas_)
    assert model.formula_ == model.formulas_[0]
    assert model.predict(X).shape == (600, 2)
    assert np.allclose(model.coef_[1][[t.key for t in model.terms_].index("x**3")], 3, rtol=0.02)
    assert model.score(X, Y) > 0.999


def test_binary_classification_with_string_labels():
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(800, 5))
    signal = (X ** 2).sum(1) - 0.5 * X.sum(1)
    y = np.where(signal > np.median(signal), "yes", "no")
    model = VSR(task="classification", random_state=0).fit(X, y)
    assert list(model.classes_) == ["no", "yes"]
    assert model.coef_.shape[0] == 1  # one 0/1 column for two classes
    assert set(model.predict(X)) <= {"no", "yes"}
    assert model.score(X, y) > 0.9


def test_multiclass_classification_one_hot_and_label_modes():
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, size=(900, 4))
    signal = (X ** 3).sum(1)
    y = np.array(["low", "mid", "high"])[np.digitize(signal, np.quantile(signal, [1 / 3, 2 / 3]))]
    onehot = VSR(task="classification", random_state=0).fit(X, y)
    assert onehot.coef_.shape[0] == 3 and len(onehot.formulas_) == 3
    assert onehot.score(X, y) > 0.8
    label = VSR(task="classification", classification="label", random_state=0).fit(X, y)
    assert label.coef_.shape[0] == 1
    assert set(label.predict(X)) <= {"low", "mid", "high"}


# ---------------------------------------------------------------------------------------------
# Scaling.
# ---------------------------------------------------------------------------------------------

def test_shared_scaling_keeps_raw_formula_exact():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 10, size=(700, 5))      # not symmetric: the shared map shifts as well
    truth = Formula("0.02*x**3 - 0.3*x**2 + 1")
    y = truth.predict(X) + 0.01 * rng.standard_normal(700)
    model = VSR(scale="shared", random_state=0).fit(X, y)
    assert model.scaler_.is_shared
    assert np.allclose(model.formula_raw_.predict(X), model.predict(X), rtol=1e-8, atol=1e-8)
    raw = dict(zip((t.key for t in model.formula_raw_.terms), model.formula_raw_.coefficients, strict=True))
    assert raw["x**3"] == pytest.approx(0.02, rel=0.01)
    assert raw["x**2"] == pytest.approx(-0.3, rel=0.01)
    assert model.formula_raw_.constant == pytest.approx(1, abs=0.1)


def test_no_scaling_means_raw_formula_is_the_formula():
    X, y, _ = _task()
    model = VSR(scale=None, random_state=0).fit(X, y)
    assert model.formula_raw_ == model.formula_


def test_minmax_and_shared_scalers():
    X = np.array([[0.0, 10.0], [2.0, 30.0], [1.0, 20.0]])
    minmax = AffineScaler("minmax").fit(X)
    assert np.allclose(minmax.transform(X), [[-1, -1], [1, 1], [0, 0]])
    shared = AffineScaler("shared").fit(X)
    U = shared.transform(X)
    assert U.min() == pytest.approx(-1) and U.max() == pytest.approx(1)
    assert np.allclose(shared.inverse_transform(U), X)
    symmetric = AffineScaler("shared").fit(np.array([[-4.0, 3.9], [1.0, 2.0]]))
    assert symmetric.offset_[0] == 0 and symmetric.scale_[0] == pytest.approx(0.25)
    constant = AffineScaler("minmax").fit(np.ones((4, 2)))
    assert np.isfinite(constant.transform(np.ones((4, 2)))).all()
    with pytest.raises(ValueError, match="scale"):
        AffineScaler("robust")


# ---------------------------------------------------------------------------------------------
# Feature aggregation and linear algebra.
# ---------------------------------------------------------------------------------------------

def _candidates():
    return generate_candidates(FAMILIES, 7, DataRange(-1.0, 1.0))[::7]


def test_chunked_aggregation_equals_unchunked():
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 5, size=(53, 11))
    scaler = AffineScaler("minmax").fit(X)
    cands = _candidates()
    whole = aggregate(X, cands, scaler, chunk_size=10_000)
    chunked = aggregate(X, cands, scaler, chunk_size=7)
    threaded = aggregate(X, cands, scaler, chunk_size=5, n_jobs=2)
    assert np.allclose(whole, chunked, rtol=1e-12, atol=1e-12)
    assert np.array_equal(chunked, threaded)
    rows = np.array([2, 5, 40])
    assert np.allclose(aggregate(X, cands, scaler, rows=rows, chunk_size=2), whole[rows])
    # Every column is the sum over features of the term on the scaled inputs.
    U = scaler.transform(X)
    for j, c in enumerate(cands):
        assert np.allclose(whole[:, j], c.term.evaluate(U).sum(axis=1))


def test_torch_backend_equals_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    X = rng.uniform(-2, 2, size=(40, 9))
    scaler = AffineScaler("shared").fit(X)
    cands = _candidates()
    ref = aggregate(X, cands, scaler)
    got = aggregate(X, cands, scaler, backend="torch", device="cpu", chunk_size=6)
    assert np.allclose(ref, got, rtol=1e-10, atol=1e-10)
    fast = aggregate(X, cands, scaler, backend="torch", fast=True)
    assert np.allclose(ref, fast, rtol=1e-4, atol=1e-4)
    Xt, yt, _ = _task(n=300, d=4)
    a = VSR(random_state=0).fit(Xt, yt)
    b = VSR(random_state=0, backend="torch").fit(Xt, yt)
    assert a.formula_.same_terms(b.formula_)
    assert np.allclose(a.coef_, b.coef_, rtol=1e-6)
    assert torch.get_default_dtype() == torch.float32  # the library changed no global state


@pytest.mark.cuda
def test_cuda_device_matches_cpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    X, y, _ = _task(n=400, d=6)
    cpu = VSR(random_state=0).fit(X, y)
    gpu = VSR(random_state=0, device="cuda").fit(X, y)
    assert cpu.formula_.same_terms(gpu.formula_)
    assert np.allclose(cpu.predict(X), gpu.predict(X), rtol=1e-6)


def test_singular_systems_stay_finite():
    A = np.zeros((3, 2, 2))
    A[1] = [[1, 1], [1, 1]]
    A[2] = [[np.nan, 0], [0, 1]]
    B = np.ones((3, 2, 1))
    X = solve_batched(A, B)
    assert np.isfinite(X).all()
    S = np.column_stack([np.ones(10), np.arange(10.0), np.arange(10.0)])  # constant and duplicate
    coef, intercept = least_squares_coefficients(S, 2 * np.arange(10.0)[:, None] + 1)
    assert np.isfinite(coef).all() and np.isfinite(intercept).all()
    assert np.allclose(S @ coef[0] + intercept[0], 2 * np.arange(10.0) + 1)


def test_degenerate_data_fit_without_nan():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(200, 1))
    X = np.hstack([x, x, np.full((200, 1), 3.0)])  # duplicated and constant columns
    y = (X ** 2).sum(1) + 0.01 * rng.standard_normal(200)
    model = VSR(random_state=0).fit(X, y)
    assert np.isfinite(model.coef_).all() and np.isfinite(model.intercept_).all()
    assert np.isfinite(model.pareto_[["train_loss", "bic"]].to_numpy()).all()
    assert model.score(X, y) > 0.99


def test_gram_cache_matches_direct_least_squares():
    rng = np.random.default_rng(0)
    S = rng.normal(size=(60, 5))
    Y = S[:, [0, 3]] @ np.array([[1.0], [-2.0]]) + 0.1 * rng.normal(size=(60, 1))
    cache = GramCache(S[:, :3], Y, np.arange(45), np.arange(45, 60))
    cache.add_columns(S[:, 3:])
    sse, beta = cache.solve(np.array([[0, 3], [1, 2]]))
    for i, cols in enumerate(([0, 3], [1, 2])):
        Z = np.column_stack([np.ones(45), S[:45, cols]])
        coef, res, *_ = np.linalg.lstsq(Z, Y[:45], rcond=None)
        assert sse[i] == pytest.approx(float(res[0]) / Y[:45].var(), rel=1e-6)
    children = cache.child_sse(np.array([[0], [1]]), cache.solve(np.array([[0], [1]]))[0], np.arange(5))
    assert children[0, 3] == pytest.approx(sse[0], rel=1e-6)
    assert np.isinf(children[0, 0]) and np.isinf(children[1, 1])


def _small_search(refine=False):
    from taskneurons.vsr.search import DataAccess, SearchConfig, TermSearch

    X, y, _ = make_vsr_task(300, 4, terms=["sin(2.3*x)", "x**2"], random_state=2)
    scaler = AffineScaler(None).fit(X)
    data_range = DataRange(float(X.min()), float(X.max()))
    rows = np.arange(len(X))
    data = DataAccess(X, scaler, data_range, rows)
    candidates = generate_candidates(("poly", "trig", "exp"), 5, data_range)
    cache = GramCache(data.columns(candidates), y[:, None], rows, np.arange(0))
    search = TermSearch(cache, candidates, data, SearchConfig(max_terms=3, refine=refine), np.random.default_rng(0))
    search.run(range(len(candidates)))
    return search


def test_vectorised_search_bookkeeping_matches_plain_loops():
    search = _small_search()
    records = search.records
    groups = search._record_groups()
    for k, (subsets, arr, sse) in groups.items():
        expected = [t for t in records if len(t) == k]  # insertion order of the dict
        assert subsets == expected
        np.testing.assert_array_equal(arr, np.array(expected))
        np.testing.assert_array_equal(sse, [records[t] for t in expected])
    ranked = list(groups[2][0])
    rng = np.random.default_rng(0)
    ranked = [ranked[i] for i in rng.permutation(len(ranked))] + ranked[:50]  # shuffled, with repeats

    def diverse(limit, per_signature):
        counts, out = {}, []
        for subset in sorted(dict.fromkeys(ranked), key=lambda t: records[t]):
            sig = search.signature(subset)
            if counts.get(sig, 0) < per_signature:
                counts[sig] = counts.get(sig, 0) + 1
                out.append(subset)
                if len(out) >= limit:
                    break
        return out

    for limit, per_signature in [(1000, 10), (37, 2), (5, 1)]:
        assert search._diverse(ranked, limit, per_signature) == diverse(limit, per_signature)
    sse = np.array([records[t] for t in ranked])
    chosen, seen = [], set()
    for i in np.argsort(sse, kind="stable"):
        if search.signature(ranked[i]) not in seen:
            seen.add(search.signature(ranked[i]))
            chosen.append(ranked[i])
    assert search._best_per_signature(ranked, sse, 8) == chosen[:8]


def test_refinement_is_remembered_per_start_and_columns_are_reused():
    search = _small_search(refine=True)
    start = next(iter(search._refined_start))
    assert search.refine_set(start) is search._refined_start[start]
    _, U, _ = search._subsample()
    cands = [search.bank[c] for c in start if search.bank[c].n_params]
    np.testing.assert_array_equal(search._subsample_columns(U, cands), search.data.row_columns(U, cands))


def test_front_and_grammar_helpers():
    entries = [FrontEntry((0,), 5, 1, 0, 10.0), FrontEntry((1,), 7, 1, 0, 12.0),
               FrontEntry((0, 1), 11, 2, 0, 3.0), FrontEntry((2,), 9, 2, 1, 4.0)]
    front = pareto_front(entries)
    assert [e.columns for e in front] == [(0,), (2,), (0, 1)]
    assert parse_bases("all") == FAMILIES
    assert parse_bases(["trig", "poly"]) == ("poly", "trig")
    with pytest.raises(ValueError, match="unknown term family"):
        parse_bases("fourier")


# ---------------------------------------------------------------------------------------------
# Bad input.
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["nan_x", "inf_y", "two_rows", "no_columns", "constant_y", "length",
                                  "three_d", "string_column", "string_values", "one_class", "constant_x",
                                  "empty", "missing_label"])
def test_bad_input_raises_clear_data_error(case):
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(30, 3))
    y = X.sum(1)
    est = VSR()
    if case == "nan_x":
        X[3, 1] = np.nan
        match = "NaN"
    elif case == "inf_y":
        y[4] = np.inf
        match = "infinity"
    elif case == "two_rows":
        X, y = X[:2], y[:2]
        match = "at least 3 samples"
    elif case == "no_columns":
        X = np.empty((30, 0))
        match = "feature"
    elif case == "constant_y":
        y = np.full(30, 2.5)
        match = "constant"
    elif case == "length":
        y = y[:-1]
        match = "same length"
    elif case == "three_d":
        X = X[:, :, None]
        match = "2-D|2D|dimension"
    elif case == "string_column":
        X = pd.DataFrame({"a": X[:, 0], "sex": ["M", "F", "I"] * 10})
        match = "non-numeric columns \\['sex'\\]"
    elif case == "string_values":
        X = X.astype(object)
        X[0, 0] = "abc"
        match = "non-numeric"
    elif case == "one_class":
        est = VSR(task="classification")
        y = np.array(["a"] * 30)
        match = "one class"
    elif case == "constant_x":
        X = np.ones((30, 3))
        match = "constant"
    elif case == "empty":
        X, y = X[:0], y[:0]
        match = "0 sample"
    elif case == "missing_label":
        est = VSR(task="classification")
        y = np.array(["a", "b", None] * 10, dtype=object)
        match = "10 missing label"
    with pytest.raises(DataError, match=match):
        est.fit(X, y)


def test_bad_input_at_predict_and_bad_parameters():
    X, y, _ = _task(n=200, d=4)
    model = VSR(random_state=0).fit(X, y)
    bad = X.copy()
    bad[0, 0] = np.inf
    with pytest.raises(DataError, match="NaN or infinity"):
        model.predict(bad)
    with pytest.raises(DataError, match="features"):
        model.predict(X[:, :3])
    for params, match in [({"scale": "robust"}, "scale"), ({"bases": "fourier"}, "family"),
                          ({"max_degree": 0}, "max_degree"), ({"selection": "aic"}, "selection"),
                          ({"task": "ranking"}, "task"), ({"device": "cuda:7", "backend": "numpy"}, "numpy"),
                          ({"max_degree": True}, "max_degree"), ({"max_terms": True}, "max_terms"),
                          ({"parsimony": float("nan")}, "parsimony"), ({"n_jobs": "2"}, "n_jobs"),
                          ({"backend": "torch", "device": "meta"}, "runs on 'cpu' or 'cuda'")]:
        with pytest.raises(ValueError, match=match):
            VSR(**params).fit(X, y)
    # numpy scalars are numbers too
    assert VSR(parsimony=np.float32(1.0), time_budget=np.float64(30), max_degree=np.int64(3)).fit(X, y).formula_
    assert VSR(time_budget=float("inf")).fit(X, y).stopped_early_ is None  # no limit


def test_predict_outside_a_terms_domain_raises_numerical_error():
    from taskneurons import NumericalError

    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(300, 3))
    y = np.sqrt(X + 0.3).sum(1) + 0.001 * rng.standard_normal(300)
    model = VSR(bases="sqrt", scale=None, random_state=0).fit(X, y)
    assert "sqrt" in str(model.formula_)
    with pytest.raises(NumericalError, match="not finite"):
        model.predict(np.full((2, 3), -50.0))


def test_targets_are_fitted_in_power_of_two_units_exactly():
    X, y, _ = _task(n=300, d=5)
    plain = VSR(random_state=0).fit(X, y)
    scaled = VSR(random_state=0).fit(X, y * 2.0 ** 900)  # 1e271: its squares overflow float64
    assert scaled.formula_.same_terms(plain.formula_)
    # Dividing by a power of two rounds nothing, so the fit is the same number for number.
    np.testing.assert_array_equal(scaled.coef_, plain.coef_ * 2.0 ** 900)
    np.testing.assert_array_equal(scaled.intercept_, plain.intercept_ * 2.0 ** 900)
    assert np.isfinite(scaled.predict(X)).all()
    huge = VSR(random_state=0).fit(X, y / np.abs(y).max() * 1.7e308)  # next to the largest float64
    assert huge.formula_.same_terms(plain.formula_)
    predictions = huge.predict(X)
    assert np.isfinite(predictions).all()
    np.testing.assert_allclose(predictions / 1.7e308, plain.predict(X) / np.abs(y).max(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("scale", ["minmax", "shared"])
def test_inputs_near_the_largest_float_scale_without_overflow(scale):
    X, y, _ = _task(n=300, d=5)
    plain = VSR(scale=scale, random_state=0).fit(X, y)
    huge = VSR(scale=scale, random_state=0).fit(X * 1.7e308, y)
    assert np.isfinite(huge.scaler_.scale_).all() and np.isfinite(huge.scaler_.offset_).all()
    assert huge.formula_.same_terms(plain.formula_)
    assert huge.score(X * 1.7e308, y) == pytest.approx(plain.score(X, y), abs=1e-6)
    # In raw units the powers' coefficients would underflow (a ~ 1e-308): no raw formula then.
    assert huge.formula_raw_ is None


@pytest.mark.parametrize("scale", ["minmax", "shared"])
def test_subnormal_inputs_are_refused_with_a_clear_error(scale):
    X, y, _ = _task(n=100, d=3)
    with pytest.raises(DataError, match="subnormal.*multiply X by a large constant"):
        VSR(scale=scale).fit(X * 1e-310, y)


def test_overflowing_terms_and_targets_are_clear_errors():
    X, y, _ = _task(n=100, d=3)
    # Raw inputs whose squares overflow the statistics still fit exactly (standardised in
    # power-of-two units); inputs whose every term overflows are a clear error.
    assert VSR(scale=None, max_degree=3, random_state=0).fit(X * 1e100, y).score(X * 1e100, y) > 0.99
    with pytest.raises(DataError, match="every term overflows"):
        VSR(scale=None, max_degree=3).fit(X * 1.7e308, y)
    with pytest.raises(DataError, match="Complex data not supported"):
        VSR().fit(X, y + 1j)
    with pytest.raises(DataError, match="sparse"):
        import scipy.sparse

        VSR().fit(X, scipy.sparse.csr_matrix(y[:, None]))


def test_too_many_classes_are_refused_up_front(monkeypatch):
    import taskneurons.vsr.estimator as estimator

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(100, 2))
    with pytest.raises(DataError, match="100 classes for 100 samples"):
        VSR(task="classification").fit(X, np.arange(100))
    # One-hot targets beyond the memory limit are refused before they are built.
    monkeypatch.setattr(estimator, "_MAX_ONEHOT_VALUES", 1000)
    y = np.arange(100) % 20
    with pytest.raises(DataError, match=r"one-hot targets would hold 2e\+03 values.*classification='label'"):
        VSR(task="classification").fit(X, y)
    assert VSR(task="classification", classification="label", max_degree=2).fit(X, y).classes_.size == 20


def test_unfitted_predict_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        VSR().predict(np.ones((3, 2)))


# ---------------------------------------------------------------------------------------------
# Control: determinism, budgets, callbacks, verbosity, scikit-learn conventions.
# ---------------------------------------------------------------------------------------------

def test_random_state_makes_fits_identical():
    X, y, _ = make_vsr_task(400, 6, terms=["sin(2.3*x)", "x**3"], random_state=5)
    a = VSR(bases=("poly", "trig"), random_state=7).fit(X, y)
    b = VSR(bases=("poly", "trig"), random_state=7).fit(X, y)
    assert a.formula_ == b.formula_
    assert a.pareto_.drop(columns="formula").equals(b.pareto_.drop(columns="formula"))


def test_time_budget_and_callback_stop_early():
    X, y, _ = make_vsr_task(300, 5, terms=["tanh(2.5*x)", "x**2", "cos(3.1*x)"], random_state=2)
    quick = VSR(bases="all", time_budget=0, random_state=0).fit(X, y)
    assert quick.stopped_early_ == "time_budget"
    assert len(quick.formula_.terms) == 1  # only single terms were evaluated
    calls = []

    def stop(info):
        calls.append(info)
        return True

    stopped = VSR(bases="all", callback=stop, random_state=0).fit(X, y)
    assert stopped.stopped_early_ == "callback"
    assert len(calls) == 1 and calls[0]["stage"] == "search" and calls[0]["n_terms"] == 1
    assert {"n_evaluated", "best_terms", "best_loss", "elapsed"} <= set(calls[0])
    full = VSR(bases="all", random_state=0).fit(X, y)
    assert full.stopped_early_ is None and full.n_evaluated_ > stopped.n_evaluated_


def test_threads_give_the_same_fit():
    X, y, _ = _task(n=300, d=40)
    a = VSR(random_state=0, chunk_size=16).fit(X, y)
    b = VSR(random_state=0, chunk_size=16, n_jobs=2).fit(X, y)
    assert a.formula_ == b.formula_


def test_verbose_runs(capsys):
    X, y, _ = _task(n=200, d=3)
    VSR(verbose=True, random_state=0).fit(X, y)
    assert capsys.readouterr().out == ""  # progress bars go to stderr, nothing is printed


def test_sklearn_conventions():
    est = VSR(bases=("poly", "exp"), max_terms=3, random_state=1)
    params = est.get_params()
    assert params["bases"] == ("poly", "exp") and params["max_terms"] == 3
    twin = clone(est)
    assert twin.get_params() == params
    twin.set_params(max_degree=4)
    assert twin.max_degree == 4 and est.max_degree == 7
    assert not hasattr(VSR(), "formula_")


# Checks that cannot apply to a formula shared by all features, with the reason.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


def _expected_failed(estimator):
    return EXPECTED_FAILED_CHECKS


try:
    from sklearn.utils.estimator_checks import parametrize_with_checks
except ImportError:  # pragma: no cover
    parametrize_with_checks = None


if parametrize_with_checks is not None:
    @parametrize_with_checks([VSR(max_degree=3)], expected_failed_checks=_expected_failed)
    def test_sklearn_estimator_checks(estimator, check):
        check(estimator)


def test_noise_free_target_returns_the_exact_formula_not_rounding_terms():
    # On exact data the float32 refinement leaves residuals of ~1e-7; the BIC used to reward a
    # second copy of the term that trims them (-3.6e-10*exp(-0.7999996*x) beside 2.4*exp(-0.8*x)).
    X, y, truth = make_vsr_task(500, 5, terms=["exp(-0.8*x)"], random_state=0, noise=0.0)
    model = VSR(scale=None, bases="all", random_state=0).fit(X, y)
    assert model.formula_.n_terms == 1
    assert terms_match(model.formula_, truth)


# ---------------------------------------------------------------------------------------------
# Review fixes: clear errors, extreme input magnitudes, score, time budget.
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("params, match", [
    ({"bases": None}, "bases must be a family name or a sequence"),
    ({"random_state": -1}, "random_state must be None, a non-negative integer"),
    ({"random_state": "a"}, "random_state must be None, a non-negative integer"),
    ({"n_jobs": 0}, "n_jobs must be a nonzero integer"),
    ({"refine": "no"}, "refine must be True or False"),
    ({"verbose": "yes"}, "verbose must be True or False"),
])
def test_bad_parameters_name_the_parameter_and_what_is_allowed(params, match):
    X, y, _ = _task(n=60, d=3)
    with pytest.raises(ValueError, match=match):
        VSR(**params).fit(X, y)


def test_cpu_0_is_the_cpu_for_the_numpy_backend():
    from taskneurons.vsr.features import chunk_rows

    X, y, _ = _task(n=100, d=3)
    assert VSR(backend="numpy", device="cpu:0").fit(X, y).formula_
    assert VSR(device="cpu:0")._check_params()[2] == "numpy"  # auto stays on numpy
    assert chunk_rows(200, device="cpu:0") == chunk_rows(200, device="cpu")


def test_a_failed_refit_leaves_the_previous_fit_intact():
    from sklearn.exceptions import NotFittedError

    X, y, _ = _task(n=100, d=3)
    model = VSR(random_state=0).fit(X, y)
    before = model.predict(X)
    X5 = np.random.default_rng(1).uniform(-1, 1, size=(100, 5))
    with pytest.raises(DataError, match="constant"):
        model.fit(X5, np.ones(100))
    assert model.n_features_in_ == 3
    np.testing.assert_array_equal(model.predict(X), before)
    with pytest.raises(DataError, match="3 features"):
        model.predict(X5)
    fresh = VSR()
    with pytest.raises(DataError):
        fresh.fit(X5, np.ones(100))
    assert not hasattr(fresh, "n_features_in_")
    with pytest.raises(NotFittedError):
        fresh.predict(X5)


def test_raw_inputs_beyond_float32_keep_every_family_without_warnings():
    import warnings

    U = np.random.default_rng(0).uniform(-1, 1, size=(300, 5))
    y = np.sin(3 * U).sum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warning may leak
        # Beyond float32's range (3.4e38) the float32 fast path would turn sin's argument into inf.
        model = VSR(scale=None, bases=("poly", "trig"), random_state=0).fit(U * 1e39, y)
        assert any(t.power is None for t in model.formula_.terms)
        assert model.score(U * 1e39, y) > 0.999
        # sin(3e-200*x) is finite in float64: not "every term overflows".
        model = VSR(scale=None, bases="trig", random_state=0).fit(U * 1e200, y)
        assert model.score(U * 1e200, y) > 0.999
    for bases in ("log", "rational", "all"):
        # Rates of x**2 (~1e-400) cannot be written in float64: a clear error, not OverflowError.
        with pytest.raises(DataError, match=r"the \[('log'|'rational').*\] terms.*scale='minmax'"):
            VSR(scale=None, bases=bases).fit(U * 1e200, y)


def test_tiny_raw_inputs_keep_their_powers_and_grids():
    from taskneurons.vsr.fit import standardize

    mean, scale = standardize(np.array([[1e-200], [2e-200], [3e-200]]))
    assert scale[0] == pytest.approx(np.sqrt(2 / 3) * 1e-200)
    U = np.random.default_rng(0).uniform(-1, 1, size=(300, 4))
    y = (U ** 2).sum(1) + 0.5 * U.sum(1)
    model = VSR(scale=None, random_state=0).fit(U * 1e-100, y)  # x**2 ~ 1e-200: variance 0 in float64
    assert {t.power for t in model.formula_.terms} == {1, 2}
    assert model.score(U * 1e-100, y) > 0.999
    # Grids in units of the true radius (it was floored at 1e-12: sin(2.5e12*x) on x ~ 1e-20).
    y = np.sin(2.5 * U).sum(axis=1)
    model = VSR(scale=None, bases="trig", random_state=0).fit(U * 1e-20, y)
    assert model.score(U * 1e-20, y) > 0.999


def test_score_of_targets_near_the_float64_limit():
    import warnings

    X, y, _ = _task(n=200, d=4)
    plain = VSR(random_state=0).fit(X, y).score(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        huge = VSR(random_state=0).fit(X, y * 1e300).score(X, y * 1e300)
    assert huge == pytest.approx(plain, abs=1e-12)


def test_time_budget_is_checked_inside_the_powers_stage_and_refinements(monkeypatch):
    import time

    from taskneurons.vsr.search import TermSearch

    X, y, _ = make_vsr_task(300, 5, terms=["sin(2.3*x)", "x**2"], random_state=0)
    seen = {}
    original = TermSearch.complete_with_powers

    def expire_then_complete(self, *args, **kwargs):
        self.config.deadline = time.perf_counter()  # the budget runs out as the stage begins
        seen["before"] = self.n_evaluated
        targets = [t for t in self.records if t not in self.refined
                   and any(self.bank[c].n_params for c in t)][:3]
        assert targets
        self.refine_best(targets, limit=3)
        assert not set(targets) & self.refined  # past the deadline nothing more is refined
        try:
            return original(self, *args, **kwargs)
        finally:
            seen["after"] = self.n_evaluated

    monkeypatch.setattr(TermSearch, "complete_with_powers", expire_then_complete)
    model = VSR(bases=("poly", "trig"), max_degree=5, random_state=0).fit(X, y)
    assert model.stopped_early_ == "time_budget"
    assert seen["after"] == seen["before"]  # no set of the stage was solved after the deadline
