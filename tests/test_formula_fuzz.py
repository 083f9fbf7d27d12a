"""Property-based tests: any text is either a Formula or a FormulaError, and never runs code."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskneurons import Formula, FormulaError

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces of formulas, Python and junk: concatenations of them exercise every parser path.
PIECES = st.sampled_from([
    "x", "x", "1", "2.5", "1e-5", ".5", "3.", "1e400", "pi", "+", "-", "*", "/", "**", "^", "@", "(", ")",
    ",", "sin(", "exp(", "log(", "sqrt(", "abs(", "sigmoid(", "tanh(", "Abs(", "__import__", "os", ".",
    "'", '"', "[", "]", "lambda", ":", "=", "system", "nan", "inf", " ", "\t", "\u00d7", "\uff58", "**-1",
])
TEXTS = st.one_of(st.text(max_size=60), st.lists(PIECES, max_size=25).map("".join))


@FUZZ
@given(TEXTS)
def test_any_text_is_a_formula_or_a_formula_error(text):
    try:
        f = Formula(text)
    except FormulaError as error:
        assert str(error)
        return
    # What parses is canonical and round-trips through its own text.
    assert Formula(str(f)) == f


ATOMS = st.one_of(st.just("x"), st.floats(0.1, 9.0).map(lambda v: f"{v:.3g}"), st.integers(1, 5).map(str))


def _grow(children):
    return st.one_of(
        st.tuples(children, st.sampled_from([" + ", " - ", "*"]), children).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
        st.tuples(st.sampled_from(["sin", "cos", "tanh", "sigmoid", "abs"]), children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(children, st.integers(1, 4)).map(lambda t: f"{t[0]}**{t[1]}"),
    )


EXPRESSIONS = st.recursive(ATOMS, _grow, max_leaves=8)


@FUZZ
@given(EXPRESSIONS)
def test_generated_formulas_evaluate_like_their_canonical_form(text):
    try:
        f = Formula(text)
    except FormulaError:
        return  # e.g. no x left after simplification
    g = Formula(str(f))
    X = np.linspace(-0.9, 0.9, 12).reshape(4, 3)
    np.testing.assert_allclose(f.predict(X), g.predict(X), rtol=1e-9, atol=1e-9)
