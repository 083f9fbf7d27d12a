"""Formulas of task-based neurons: safe parsing, a canonical form, printing and evaluation.

A formula is written in the one scalar symbol ``x`` and is kept in the canonical form

    F(x) = c0 + sum_k c_k * phi_k(x)

with ``c0`` the constant, ``c_k`` the (outer) coefficients and ``phi_k`` coefficient-free
terms such as ``x**3`` or ``sin(1.7*x)``. Applied to a sample of d variables, a formula means
the *vectorized* value ``c0 + sum_k c_k sum_i phi_k(x_i)`` (see ``Formula.predict``).

Text is parsed by a small recursive-descent parser of our own: user text is never handed to
``eval``, ``exec``, ``sympify`` or ``parse_expr``. The parser accepts ``+ - * / **`` (``^`` is
read as ``**``), unary signs, decimal numbers (``1e-5``, ``.5``), parentheses, the constant
``pi`` and the functions ``sin cos tan exp log sqrt abs tanh sigmoid``. The paper's notation
``6@x**2 + 2@x - 3`` (``@`` multiplies a coefficient and a term) is accepted as well.

Limits (each violation raises :class:`~taskneurons.errors.FormulaError`):

* ``MAX_LENGTH`` characters of text, ASCII only (look-alike letters such as a full-width x
  are refused rather than silently normalised);
* ``MAX_DEPTH`` levels of nesting (parentheses, signs, function calls, powers);
* exponents must be numbers with magnitude <= ``MAX_EXPONENT``; the expanded formula may have
  at most ``MAX_TERMS`` terms and polynomial degree at most ``MAX_DEGREE``;
* every number must be finite, and so must every constant sub-expression;
* what SymPy makes of the formula as it simplifies must stay real and inside the language:
  ``sqrt(-x**2)`` (SymPy: ``I*abs(x)``), ``(-x**2)**(1/3)`` (SymPy: ``(-1)**(1/3)*abs(x)**(2/3)``)
  and ``abs(exp(sqrt(x)))`` (SymPy writes it with ``atan2``) are refused.

Inner constants: every number inside a term, except exponents and the values +1/-1, is an
*inner constant* (the 1.7 of ``sin(1.7*x)``, the 1/11 of ``exp(x/11)``, the 0.5 of
``sqrt(x + 0.5)``). Task-based layers make them learnable per input feature; VSR refines them.
A number that multiplies a whole term (``x/11`` = ``(1/11)*x``) is an outer coefficient.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from .errors import FormulaError, NumericalError

__all__ = [
    "Formula",
    "Term",
    "FormulaError",
    "X",
    "FUNCTIONS",
    "MAX_LENGTH",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_DEGREE",
    "MAX_TERMS",
    "power_chain",
    "evaluate_program",
    "torch_functions",
    "NUMPY_FUNCTIONS",
]

MAX_LENGTH = 2000
MAX_DEPTH = 32
MAX_EXPONENT = 32
MAX_DEGREE = 32
MAX_TERMS = 128

FORMAT_NAME = "taskneurons.formula"
FORMAT_VERSION = 1

#: The one symbol formulas are written in. Real, so that sqrt(x**2) -> Abs(x) and friends.
X = sp.Symbol("x", real=True)


class sigmoid(sp.Function):  # noqa: N801 - printed as `sigmoid(...)`, like the other functions
    """The logistic function 1 / (1 + exp(-u)) as a SymPy function.

    Constant arguments are folded by the parser (``_Builder.call``), like every other function.
    """

    def fdiff(self, argindex=1):
        return self * (1 - self)

    def _eval_rewrite_as_exp(self, arg, **kwargs):
        return 1 / (1 + sp.exp(-arg))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _latex(self, printer, exp=None):
        inner = printer._print(self.args[0])
        text = rf"\sigma\left({inner}\right)"
        return f"{text}^{{{exp}}}" if exp else text


#: Functions a formula may use: name -> SymPy class.
FUNCTIONS: dict[str, Any] = {
    "sin": sp.sin,
    "cos": sp.cos,
    "tan": sp.tan,
    "exp": sp.exp,
    "log": sp.log,
    "sqrt": sp.sqrt,
    "abs": sp.Abs,
    "tanh": sp.tanh,
    "sigmoid": sigmoid,
}
# Names SymPy prints that we read back as the same function.
_FUNCTION_ALIASES = {"Abs": "abs"}
# SymPy class -> our function name (sqrt is a Pow in SymPy, so it is not here).
_SYMPY_TO_NAME = {sp.sin: "sin", sp.cos: "cos", sp.tan: "tan", sp.exp: "exp", sp.log: "log",
                  sp.Abs: "abs", sp.tanh: "tanh", sigmoid: "sigmoid"}

# ---------------------------------------------------------------------------------------------
# Building blocks shared by the text parser and the SymPy-expression walker.
# ---------------------------------------------------------------------------------------------


class _Node(NamedTuple):
    """A checked sub-expression with upper bounds on its expanded size.

    ``size`` bounds the number of additive terms once expanded; ``degree`` bounds the
    polynomial degree in x. Both exist so that `(x + 1)**32 * (x + 2)**32` is refused before
    SymPy spends seconds expanding it.
    """

    expr: sp.Expr
    size: int
    degree: int


def _check_finite_number(value: sp.Expr, token: str | None, position: int | None,
                         what: str | None = None) -> sp.Expr:
    """Refuse a non-finite constant; ``what`` names it in the message when ``token`` is only an operator."""
    if value.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        raise FormulaError(f"{what or f'the constant expression {token or value!s}'} is not finite (division by "
                           "zero or overflow); remove it", token=token, position=position)
    if value.is_Number and not math.isfinite(float(value)):
        raise FormulaError(f"{what or f'the number {token or value!s}'} is too large to be represented as a "
                           "float; use a smaller constant", token=token, position=position)
    return value


def _as_exponent(node: _Node, token: str | None, position: int | None) -> sp.Rational:
    """Return the exponent as an exact SymPy rational, or refuse it."""
    e = node.expr
    if not e.is_Number:
        raise FormulaError(f"exponents must be numbers, got {token or e!s}; formulas are "
                           "sums of terms such as x**3 or sin(1.7*x)", token=token, position=position)
    value = float(e)
    if not math.isfinite(value) or abs(value) > MAX_EXPONENT:
        raise FormulaError(f"the exponent {token or e!s} is out of range; exponents must lie in "
                           f"[-{MAX_EXPONENT}, {MAX_EXPONENT}]", token=token, position=position)
    if e.is_Rational:
        return e
    # A decimal exponent such as 0.5 becomes the exact rational 1/2, so x**0.5 == sqrt(x).
    return sp.Rational(repr(value))


class _Builder:
    """Constructs SymPy expressions from checked parts and keeps the expansion bounds."""

    @staticmethod
    def number(value: float | int, token: str | None = None, position: int | None = None) -> _Node:
        if isinstance(value, int) and abs(value) <= 1e300:
            return _Node(sp.Integer(value), 1, 0)
        if isinstance(value, int):
            raise FormulaError(f"the integer constant of {len(str(abs(value)))} digits is larger than the "
                               "limit of 1e300 on constants; use a smaller constant", token=token, position=position)
        if not math.isfinite(value):
            raise FormulaError(f"the number {token or value!r} is not finite as a float; use a "
                               "smaller constant", token=token, position=position)
        if value == 0.0 and token is not None and re.search(r"[1-9]", re.split(r"[eE]", token)[0]):
            # 1e-400 reads as 0.0; refused here, it would otherwise surface as a puzzling
            # "does not depend on x" or a silently vanished term.
            raise FormulaError(f"the number {token} is too small to be represented as a float (it underflows "
                               "to 0); write 0 or a constant of magnitude above 1e-308",
                               token=token, position=position)
        return _Node(sp.Float(value), 1, 0)

    @staticmethod
    def variable() -> _Node:
        return _Node(X, 1, 1)

    @staticmethod
    def add(a: _Node, b: _Node, token=None, position=None) -> _Node:
        expr = a.expr + b.expr
        _check_constant(expr, token, position)
        return _check_bounds(_Node(expr, a.size + b.size, max(a.degree, b.degree)), token, position)

    @staticmethod
    def neg(a: _Node) -> _Node:
        return _Node(-a.expr, a.size, a.degree)

    @staticmethod
    def mul(a: _Node, b: _Node, token=None, position=None) -> _Node:
        expr = a.expr * b.expr
        _check_constant(expr, token, position)
        return _check_bounds(_Node(expr, a.size * b.size, a.degree + b.degree), token, position)

    @staticmethod
    def div(a: _Node, b: _Node, token=None, position=None) -> _Node:
        if b.expr.is_Number and b.expr.is_zero:  # is_zero: SymPy >= 1.13 has Float(0.0) != 0
            raise FormulaError("division by zero; remove it", token=token, position=position)
        expr = a.expr / b.expr
        _check_constant(expr, token, position)
        # Expansion does not multiply out a denominator into the numerator's terms.
        return _check_bounds(_Node(expr, a.size, a.degree + b.degree), token, position)

    @staticmethod
    def power(base: _Node, exponent: _Node, token=None, position=None) -> _Node:
        k = _as_exponent(exponent, token, position)
        if base.expr.is_Number:
            if base.expr.is_zero and k < 0:  # is_zero: SymPy >= 1.13 has Float(0.0) != 0
                raise FormulaError("0 raised to a negative power is not finite; remove it",
                                   token=token, position=position)
            if base.expr < 0 and not k.is_Integer:
                raise FormulaError(f"a negative number to the power {k} is not real",
                                   token=token, position=position)
            what = "a constant power in the formula"
            if base.expr.is_Integer and k.is_Integer and k >= 0:
                value = base.expr ** k
            else:
                try:  # Python's float ** raises OverflowError (1e200**2) instead of returning inf
                    value = sp.Float(float(base.expr) ** float(k))
                except (OverflowError, ZeroDivisionError):
                    raise FormulaError(f"{what} is too large to be represented as a float; use a smaller "
                                       "constant", token=token, position=position) from None
            return _Node(_check_finite_number(value, token, position, what), 1, 0)
        expr = base.expr ** k
        _check_evaluable(expr, "this power", token, position)
        if k.is_Integer and k > 0:
            size = math.comb(base.size + int(k) - 1, int(k)) if base.size > 1 else 1
            degree = base.degree * int(k)
        else:
            size, degree = 1, base.degree * max(1, math.ceil(abs(float(k))))
        return _check_bounds(_Node(expr, size, degree), token, position)

    @staticmethod
    def call(name: str, arg: _Node, token=None, position=None) -> _Node:
        func = FUNCTIONS[name]
        if arg.expr.is_Number:
            value = float(arg.expr)
            with np.errstate(all="ignore"):
                result = float(NUMPY_FUNCTIONS[name](np.float64(value)))
            if not math.isfinite(result):
                raise FormulaError(f"{name}({value:g}) is not a finite real number; remove it",
                                   token=token, position=position)
            return _Node(sp.Float(result), 1, 0)
        expr = func(arg.expr)
        _check_evaluable(expr, f"{name}(...)", token, position)
        return _check_bounds(_Node(expr, 1, arg.degree), token, position)


def _check_constant(expr: sp.Expr, token, position) -> None:
    if expr.is_Number:  # ``token`` is the operator (+ - * / @) that combined two constants
        _check_finite_number(expr, token, position, "a constant part of the formula")


def _check_bounds(node: _Node, token, position) -> _Node:
    if node.size > MAX_TERMS:
        raise FormulaError(f"the formula would expand to more than {MAX_TERMS} terms; "
                           "write a smaller formula", token=token, position=position)
    if node.degree > MAX_DEGREE:
        raise FormulaError(f"the formula's degree in x would exceed {MAX_DEGREE}; "
                           "use lower powers", token=token, position=position)
    return node


def _unevaluable_part(expr: sp.Expr) -> tuple[bool, tuple[str, sp.Expr] | None]:
    """Walk ``expr``: (whether it depends on x, the first part a Term cannot evaluate or None).

    The part is returned as ``(kind, sub-expression)`` with kind ``"complex"`` (a constant that
    is not real), ``"function"`` (a function outside :data:`FUNCTIONS`), ``"exponent"`` (an
    exponent in x) or ``"range"`` (an exponent beyond ``MAX_EXPONENT``).
    """
    if expr.is_Symbol:
        return True, None
    if not expr.args:  # numbers, I, pi, E: their parent checks that they are real
        return False, None
    results = [_unevaluable_part(a) for a in expr.args]
    for _, problem in results:
        if problem is not None:
            return True, problem
    if not any(depends for depends, _ in results):
        return False, None  # a constant; the node using it checks it
    for arg, (depends, _) in zip(expr.args, results, strict=True):
        if not depends and arg.is_extended_real is False:
            return True, ("complex", arg)
    if expr.is_Add or expr.is_Mul:
        return True, None
    if expr.is_Pow:
        exponent = expr.args[1]
        if results[1][0]:
            return True, ("exponent", expr)
        if exponent.is_number and abs(float(exponent)) > MAX_EXPONENT:
            return True, ("range", expr)
        return True, None
    if expr.func in _SYMPY_TO_NAME and len(expr.args) == 1:
        return True, None
    return True, ("function", expr)


def _check_evaluable(expr: sp.Expr, what: str, token: str | None = None, position: int | None = None) -> None:
    """Refuse what SymPy's automatic simplification turned into something a Term cannot evaluate.

    SymPy rewrites expressions as it builds them, and some rewrites leave the formula language:
    ``abs(exp(sqrt(x)))`` becomes ``exp(cos(atan2(0, x)/2)*sqrt(abs(x)))``, ``sqrt(-x**2)``
    becomes ``I*abs(x)`` and ``(-exp(x))**(1/3)`` becomes ``(-1)**(1/3)*exp(x/3)``. The first
    cannot be compiled; the others are not real for any real x != 0 (numpy would give NaN or
    complex numbers), like ``(-2)**0.5``, which the parser refuses directly.
    """
    _, problem = _unevaluable_part(expr)
    if problem is None:
        return
    kind, part = problem
    text = _STR_PRINTER.doprint(expr)
    if len(text) > 80:
        text = text[:77] + "..."
    if kind == "complex":
        message = (f"{what} is not real-valued: SymPy writes it as {text}, which contains the complex number "
                   f"{_STR_PRINTER.doprint(part)}; a neuron formula must be real for real x (avoid square and "
                   "fractional roots of expressions that are always negative)")
    elif kind == "function":
        name = getattr(part.func, "__name__", type(part).__name__)
        message = (f"SymPy simplifies {what} into {text}, which uses {name}; formulas may only use "
                   f"{', '.join(FUNCTIONS)}, so rewrite that part by hand (for example drop abs() around an "
                   "expression that is never negative)")
    elif kind == "exponent":
        message = (f"SymPy simplifies {what} into {text}, a power whose exponent depends on x; exponents must "
                   "be numbers, so write the formula without it")
    else:
        message = (f"SymPy simplifies {what} into {_STR_PRINTER.doprint(part)}, whose exponent is out of range; "
                   f"exponents must lie in [-{MAX_EXPONENT}, {MAX_EXPONENT}]")
    raise FormulaError(message, token=token, position=position)


# ---------------------------------------------------------------------------------------------
# Text parser.
# ---------------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|[-+*/^@(),])
    """,
    # ASCII: without it \d and \s also match Unicode digits and spaces *inside* a token that
    # starts with an ASCII character ("1\u0663" would read as 13), past the ASCII check below.
    re.VERBOSE | re.ASCII,
)


class _Token(NamedTuple):
    kind: str  # "number", "name", "op", "end"
    text: str
    position: int


_CHARACTER_HINTS = {
    ".": "attribute access is not allowed",
    "[": "subscripts are not allowed",
    "]": "subscripts are not allowed",
    ":": "lambdas, slices and annotations are not allowed",
    "=": "assignments and comparisons are not allowed",
    "<": "comparisons are not allowed",
    ">": "comparisons are not allowed",
    '"': "strings are not allowed",
    "'": "strings are not allowed",
    ";": "statements are not allowed",
}


def _tokenize(text: str) -> list[_Token]:
    """Split ``text`` into tokens.

    A character that cannot start a token becomes an ``error`` token that ends the list, so
    the parser reports the first problem in reading order (``__import__('os')`` is refused as
    an unknown function at position 0, not as a stray quote further on).
    """
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"the formula text has {len(text)} characters, more than the limit of "
                           f"{MAX_LENGTH}; write a shorter formula", token=text[MAX_LENGTH:MAX_LENGTH + 10],
                           position=MAX_LENGTH)
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None or ord(text[pos]) > 127:
            tokens.append(_Token("error", text[pos], pos))
            return tokens
        kind = match.lastgroup
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _character_error(token: _Token) -> FormulaError:
    char = token.text
    if ord(char) > 127:
        return FormulaError(f"unexpected character {char!r} (U+{ord(char):04X}); formulas are plain "
                            "ASCII: write x, *, ** and the function names in Latin letters",
                            token=char, position=token.position)
    hint = _CHARACTER_HINTS.get(char, "formulas may use numbers, x, + - * / ** ^ @, parentheses and "
                                      f"the functions {', '.join(FUNCTIONS)}")
    return FormulaError(f"unexpected character {char!r}: {hint}", token=char, position=token.position)


class _Parser:
    """Recursive descent over the grammar

        expr   := term (("+" | "-") term)*
        term   := unary (("*" | "/" | "@") unary)*
        unary  := ("+" | "-") unary | power
        power  := atom (("**" | "^") unary)?        (right-associative; -x**2 == -(x**2))
        atom   := number | "x" | "pi" | name "(" expr ")" | "(" expr ")"
    """

    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0

    # -- helpers ------------------------------------------------------------------------------
    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FormulaError(f"the formula is nested more than {MAX_DEPTH} levels deep; "
                               "write a flatter formula", token=token.text, position=token.position)

    def unexpected(self, token: _Token, expected: str) -> FormulaError:
        if token.kind == "error":
            return _character_error(token)
        if token.kind == "end":
            return FormulaError(f"the formula ends too early: expected {expected}",
                                token="", position=token.position)
        hint = ""
        previous = self.tokens[self.index - 1] if self.index > 0 else None
        if previous is not None and previous.kind == "number" and token.kind in ("name", "op") \
                and token.text in ("x", "(") | FUNCTIONS.keys():
            hint = f"; write {previous.text}*{token.text} for a product"
        return FormulaError(f"unexpected {token.text!r}: expected {expected}{hint}",
                            token=token.text, position=token.position)

    # -- grammar ------------------------------------------------------------------------------
    def parse(self) -> _Node:
        if not self.text.strip():
            raise FormulaError("the formula is empty; write a formula in x such as '2*x**2 + x'",
                               token="", position=0)
        node = self.expr()
        if self.current.kind != "end":
            raise self.unexpected(self.current, "an operator or the end of the formula")
        return node

    def expr(self) -> _Node:
        node = self.term()
        while self.current.text in ("+", "-") and self.current.kind == "op":
            op = self.advance()
            right = self.term()
            if op.text == "-":
                right = _Builder.neg(right)
            node = _Builder.add(node, right, op.text, op.position)
        return node

    def term(self) -> _Node:
        node = self.unary()
        while self.current.kind == "op" and self.current.text in ("*", "/", "@"):
            op = self.advance()
            right = self.unary()
            if op.text == "/":
                node = _Builder.div(node, right, op.text, op.position)
            else:
                node = _Builder.mul(node, right, op.text, op.position)
        return node

    def unary(self) -> _Node:
        token = self.current
        if token.kind == "op" and token.text in ("+", "-"):
            self.enter(token)
            self.advance()
            node = self.unary()
            self.depth -= 1
            return _Builder.neg(node) if token.text == "-" else node
        return self.power()

    def power(self) -> _Node:
        base = self.atom()
        token = self.current
        if token.kind == "op" and token.text in ("**", "^"):
            self.enter(token)
            self.advance()
            exponent = self.unary()
            self.depth -= 1
            exponent_text = self.text[token.position + len(token.text):self.current.position].strip()
            return _Builder.power(base, exponent, exponent_text or token.text, token.position)
        return base

    def atom(self) -> _Node:
        token = self.advance()
        if token.kind == "number":
            text = token.text
            if re.fullmatch(r"\d+", text):
                return _Builder.number(int(text), text, token.position)
            return _Builder.number(float(text), text, token.position)
        if token.kind == "name":
            name = _FUNCTION_ALIASES.get(token.text, token.text)
            if name == "x":
                return _Builder.variable()
            if name == "pi":
                return _Builder.number(math.pi, token.text, token.position)
            if name in FUNCTIONS:
                self.enter(token)
                if self.current.text != "(":
                    raise self.unexpected(self.current, f"'(' after the function name {name}")
                self.advance()
                arg = self.expr()
                if self.current.text == ",":
                    raise FormulaError(f"{name} takes one argument", token=",",
                                       position=self.current.position)
                if self.current.text != ")":
                    raise self.unexpected(self.current, f"')' closing {name}(")
                self.advance()
                self.depth -= 1
                return _Builder.call(name, arg, token.text, token.position)
            if self.current.text == "(":
                raise FormulaError(f"unknown function {token.text!r}; the functions are "
                                   f"{', '.join(FUNCTIONS)}", token=token.text, position=token.position)
            raise FormulaError(f"unknown name {token.text!r}; formulas are written in the one "
                               "variable x (and the constant pi)", token=token.text,
                               position=token.position)
        if token.kind == "op" and token.text == "(":
            self.enter(token)
            node = self.expr()
            if self.current.text != ")":
                raise self.unexpected(self.current, "')'")
            self.advance()
            self.depth -= 1
            return node
        raise self.unexpected(token, "a number, x, a function or '('")


def _from_sympy(expr: sp.Basic, depth: int = 0) -> _Node:
    """Rebuild a user-supplied SymPy expression through the checked builders."""
    if depth > MAX_DEPTH:
        raise FormulaError(f"the expression is nested more than {MAX_DEPTH} levels deep")
    if not isinstance(expr, sp.Expr):
        raise FormulaError(f"{type(expr).__name__} is not an expression in x")
    if expr.is_Symbol:
        if expr.name != "x":
            raise FormulaError(f"unknown symbol {expr.name!r}; formulas use the one variable x",
                               token=expr.name)
        return _Builder.variable()
    if expr.is_Number:
        if expr.is_Integer:
            return _Builder.number(int(expr), str(expr))
        if expr.is_Rational:
            return _Node(_check_finite_number(expr, str(expr), None), 1, 0)
        if expr.is_Float:
            return _Builder.number(float(expr), str(expr))
        raise FormulaError(f"the number {expr} is not a finite real number", token=str(expr))
    if expr in (sp.pi, sp.E):
        return _Builder.number(float(expr), str(expr))
    if expr.is_Add:
        args = [_from_sympy(a, depth + 1) for a in expr.args]
        node = args[0]
        for arg in args[1:]:
            node = _Builder.add(node, arg)
        return node
    if expr.is_Mul:
        args = [_from_sympy(a, depth + 1) for a in expr.args]
        node = args[0]
        for arg in args[1:]:
            node = _Builder.mul(node, arg)
        return node
    if expr.is_Pow:
        base, exponent = expr.args
        if base == sp.E:
            return _Builder.call("exp", _from_sympy(exponent, depth + 1))
        return _Builder.power(_from_sympy(base, depth + 1), _from_sympy(exponent, depth + 1), str(exponent))
    name = _SYMPY_TO_NAME.get(expr.func)
    if name is None:
        raise FormulaError(f"the function {expr.func.__name__} is not allowed; the functions are "
                           f"{', '.join(FUNCTIONS)}", token=expr.func.__name__)
    if len(expr.args) != 1:
        raise FormulaError(f"{name} takes one argument", token=name)
    return _Builder.call(name, _from_sympy(expr.args[0], depth + 1), name)


# ---------------------------------------------------------------------------------------------
# Terms: coefficient-free pieces with a compiled evaluator.
# ---------------------------------------------------------------------------------------------

def _numpy_sigmoid(u):
    return 0.5 * (1.0 + np.tanh(0.5 * u))  # stable for large |u|, unlike 1/(1+exp(-u))


NUMPY_FUNCTIONS = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "abs": np.abs, "tanh": np.tanh, "sigmoid": _numpy_sigmoid,
}


def torch_functions() -> dict[str, Any]:
    """Function name -> torch function, for :func:`evaluate_program` on tensors."""
    import torch

    return {
        "sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "exp": torch.exp, "log": torch.log,
        "sqrt": torch.sqrt, "abs": torch.abs, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
    }


# A compiled term is a tree of tuples:
#   ("x",)                         the input
#   ("num", value)                 a fixed number
#   ("const", j)                   the j-th inner constant
#   ("add", (child, ...)), ("mul", (child, ...))
#   ("ipow", child, k)             integer power
#   ("pow", child, exponent)       real power (child assumed in its domain)
#   ("fn", name, child)
Program = tuple


def _is_inner_constant(number: sp.Expr) -> bool:
    return float(number) not in (1.0, -1.0)  # (SymPy >= 1.13: Float(1.0) != Integer(1))


def _compile(expr: sp.Expr, constants: list[float]) -> Program:
    if expr.is_Symbol:
        return ("x",)
    if expr.is_Number:
        value = float(expr)
        if _is_inner_constant(expr):
            constants.append(value)
            return ("const", len(constants) - 1)
        return ("num", value)
    if expr.is_Add:
        return ("add", tuple(_compile(a, constants) for a in expr.args))
    if expr.is_Mul:
        return ("mul", tuple(_compile(a, constants) for a in expr.args))
    if expr.is_Pow:
        base, exponent = expr.args
        child = _compile(base, constants)
        if exponent.is_Integer:
            return ("ipow", child, int(exponent))
        if exponent == sp.Rational(1, 2):
            return ("fn", "sqrt", child)
        return ("pow", child, float(exponent))
    name = _SYMPY_TO_NAME.get(expr.func)
    if name is None:  # _check_evaluable refuses these first; this keeps a KeyError from escaping
        raise FormulaError(f"the term {_STR_PRINTER.doprint(expr)} uses {getattr(expr.func, '__name__', expr.func)}, "
                           f"which is not one of the functions {', '.join(FUNCTIONS)}; rewrite it by hand")
    return ("fn", name, _compile(expr.args[0], constants))


def evaluate_program(program: Program, x, constants: Sequence, funcs: Mapping[str, Any]):
    """Evaluate a compiled term elementwise on ``x`` (numpy array or torch tensor).

    ``constants[j]`` replaces the j-th inner constant; it may be a scalar or anything that
    broadcasts against ``x`` (a per-feature vector of shape ``(d,)`` for ``x`` of shape
    ``(n, d)``). The structure of ``program`` is fixed, so under ``torch.compile`` this
    recursion is traced once and leaves no Python branching on data.
    """
    op = program[0]
    if op == "x":
        return x
    if op == "num":
        return program[1]
    if op == "const":
        return constants[program[1]]
    if op == "add":
        out = evaluate_program(program[1][0], x, constants, funcs)
        for child in program[1][1:]:
            out = out + evaluate_program(child, x, constants, funcs)
        return out
    if op == "mul":
        out = evaluate_program(program[1][0], x, constants, funcs)
        for child in program[1][1:]:
            out = out * evaluate_program(child, x, constants, funcs)
        return out
    if op == "ipow":
        base = evaluate_program(program[1], x, constants, funcs)
        k = program[2]
        if k == 1:
            return base
        if k == 2:
            return base * base
        return base ** k if k > 0 else 1.0 / (base ** (-k))
    if op == "pow":
        return evaluate_program(program[1], x, constants, funcs) ** program[2]
    if op == "fn":
        return funcs[program[1]](evaluate_program(program[2], x, constants, funcs))
    raise AssertionError(f"unknown program node {op!r}")  # pragma: no cover - compiler bug


def power_chain(x, degrees: Sequence[int]) -> dict[int, Any]:
    """Compute ``x**k`` for every positive integer ``k`` in ``degrees`` by reusing products.

    Each power is formed as the product of two powers already computed (x**5 = x**3 * x**2),
    so ``m`` distinct degrees cost about ``m`` elementwise multiplications instead of
    ``m`` calls to ``pow``. Works for numpy arrays and torch tensors alike.

    Returns a dict ``{k: x**k}`` holding at least the requested degrees.
    """
    powers: dict[int, Any] = {1: x}
    for k in sorted(set(int(d) for d in degrees)):
        if k < 1:
            raise ValueError(f"power_chain takes positive degrees, got {k}")
        _power(powers, k)
    return powers


def _power(powers: dict[int, Any], k: int):
    if k in powers:
        return powers[k]
    # Prefer splitting k into the largest available power plus an available remainder.
    for a in sorted(powers, reverse=True):
        if a < k and (k - a) in powers:
            powers[k] = powers[a] * powers[k - a]
            return powers[k]
    half = _power(powers, k // 2)
    powers[k] = half * half if k % 2 == 0 else half * _power(powers, k - k // 2)
    return powers[k]


@dataclass(frozen=True, eq=False)
class Term:
    """One coefficient-free term phi(x) of a formula, e.g. ``x**3`` or ``sin(1.7*x)``.

    Attributes
    ----------
    expr : sympy.Expr
        The canonical SymPy expression in :data:`X`.
    program : tuple
        The compiled evaluator (see :func:`evaluate_program`).
    constants : tuple of float
        The inner constants, in the order the program uses them.
    power : int or None
        ``k`` when the term is exactly ``x**k`` with ``k >= 1``, else ``None``.
    """

    expr: sp.Expr
    program: Program = field(repr=False)
    constants: tuple[float, ...]
    power: int | None

    @classmethod
    def from_expr(cls, expr: sp.Expr) -> Term:
        constants: list[float] = []
        program = _compile(expr, constants)
        power = None
        if expr == X:
            power = 1
        elif expr.is_Pow and expr.args[0] == X and expr.args[1].is_Integer and expr.args[1] > 0:
            power = int(expr.args[1])
        return cls(expr, program, tuple(constants), power)

    @classmethod
    def parse(cls, text: str) -> Term:
        """Parse a single coefficient-free term, e.g. ``"sin(1.7*x)"``."""
        formula = Formula(text)
        if len(formula.terms) != 1 or formula.constant != 0 or formula.coefficients[0] != 1:
            raise FormulaError(f"{text!r} is not a single coefficient-free term; write e.g. 'x**3'")
        return formula.terms[0]

    @cached_property
    def key(self) -> str:
        return _STR_PRINTER.doprint(self.expr)

    @property
    def n_constants(self) -> int:
        return len(self.constants)

    @cached_property
    def complexity(self) -> int:
        return _count_nodes(self.expr)

    def evaluate(self, x, constants: Sequence | None = None):
        """phi(x) elementwise; ``x`` is a numpy array or torch tensor of any shape.

        ``constants`` overrides the inner constants (scalars or arrays broadcastable to ``x``).
        """
        consts = self.constants if constants is None else constants
        if len(consts) != len(self.constants):
            raise ValueError(f"the term {self} has {len(self.constants)} inner constants, "
                             f"got {len(consts)}")
        x = _as_float(x)
        if _is_torch(x):
            return evaluate_program(self.program, x, consts, torch_functions())
        with np.errstate(all="ignore"):
            return evaluate_program(self.program, x, consts, NUMPY_FUNCTIONS)

    def latex(self) -> str:
        return _LATEX_PRINTER.doprint(self.expr)

    def __str__(self) -> str:
        return self.key

    def __repr__(self) -> str:
        return f"Term({self.key!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Term) and self.key == other.key

    def __hash__(self) -> int:
        return hash(("Term", self.key))

    def sort_key(self) -> tuple:
        """Polynomial terms first by descending degree, then the rest by complexity and text."""
        if self.power is not None:
            return (0, -self.power, 0, "")
        return (1, 0, self.complexity, self.key)


def _count_nodes(expr: sp.Basic) -> int:
    """Size of the expression tree, counting n-ary sums and products as n - 1 binary nodes."""
    if not expr.args:
        return 1
    children = sum(_count_nodes(a) for a in expr.args)
    if expr.is_Add or expr.is_Mul:
        return children + len(expr.args) - 1
    return children + 1


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "dim")


def _as_float(x):
    """Inputs as floats: integer tensors become float64 (as numpy inputs do), so that x**32
    does not wrap around in int64; floating tensors keep their dtype and device."""
    if _is_torch(x):
        return x if x.is_floating_point() or x.is_complex() else x.double()
    return np.asarray(x, dtype=float)


# ---------------------------------------------------------------------------------------------
# Printing.
# ---------------------------------------------------------------------------------------------

def _format_number(value: float, precision: int | None = None) -> str:
    """Shortest text that reads back as the same float (or ``precision`` significant digits);
    integers without '.0'."""
    if precision is not None:
        return f"{value:.{precision}g}"
    if math.isfinite(value) and value == int(value) and abs(value) < 1e16:
        return str(int(value))
    return repr(float(value))


class _StrPrinter(StrPrinter):
    """SymPy's text printer with shortest round-trip floats (or ``precision`` significant digits)."""

    def __init__(self, settings=None, precision: int | None = None):
        super().__init__(settings)
        self.precision = precision

    def _print_Float(self, expr):
        return _format_number(float(expr), self.precision)

    def _print_Abs(self, expr):
        return f"abs({self._print(expr.args[0])})"


def _latex_number(value: float) -> str:
    text = _format_number(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        return rf"{mantissa} \cdot 10^{{{int(exponent)}}}"
    return text


class _LatexPrinter(LatexPrinter):
    def _print_Float(self, expr):
        return _latex_number(float(expr))


_STR_PRINTER = _StrPrinter({"order": "none"})
_LATEX_PRINTER = _LatexPrinter()


# ---------------------------------------------------------------------------------------------
# Formula.
# ---------------------------------------------------------------------------------------------

def _canonical_parts(expr: sp.Expr) -> tuple[float, list[tuple[Term, float]]]:
    expanded = sp.expand(expr, deep=True, mul=True, multinomial=True, power_exp=False,
                         power_base=False, log=False)
    if expanded.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        raise FormulaError("the formula is not finite (it contains a division by zero or an overflow)")
    if not expanded.has(X):
        raise FormulaError(f"the formula {_STR_PRINTER.doprint(expanded)} does not depend on x; "
                           "a neuron formula must contain x", token="x")
    # The builders check each power and function call with its position; expansion can rewrite
    # once more, so the whole is checked again (without a position) before any float() below.
    _check_evaluable(expanded, "the formula")
    constant = 0.0
    merged: dict[str, list] = {}
    for term_expr, coefficient in expanded.as_coefficients_dict().items():
        value = float(coefficient)
        if not term_expr.has(X):
            constant += value * float(term_expr)
            continue
        factor, term_expr = _canonical_term(term_expr)
        if not math.isfinite(factor * value) or (factor == 0.0 and value != 0.0):
            size = "overflows" if not math.isfinite(factor * value) else "underflows to 0"
            # SymPy moves constants out of functions, so the culprit may be inside one: say so.
            moved = "" if factor == 1.0 else " (SymPy moves constants out of functions: exp(x + 1000) = exp(1000)*exp(x))"
            raise FormulaError(f"the coefficient of {_STR_PRINTER.doprint(term_expr)} {size} as a float{moved}; "
                               "use constants of smaller magnitude")
        value *= factor
        term = Term.from_expr(term_expr)
        if term.key in merged:  # like terms SymPy kept apart (rare: Float-vs-Rational forms)
            merged[term.key][1] += value
        else:
            merged[term.key] = [term, value]
    if not math.isfinite(constant):
        raise FormulaError("the formula's constant is not finite (a constant overflows a float); use "
                           "constants of smaller magnitude")
    parts = [(t, c) for t, c in merged.values() if c != 0.0]
    if not parts:
        raise FormulaError("the formula does not depend on x once like terms are merged; "
                           "a neuron formula must contain x", token="x")
    parts.sort(key=lambda tc: tc[0].sort_key())
    return constant, parts


def _canonical_term(term_expr: sp.Expr) -> tuple[float, sp.Expr]:
    """Split one summand into ``(numeric factor, canonical coefficient-free term)``.

    Writing the inner constants as Floats makes SymPy evaluate again: ``exp(x + 2)`` becomes
    ``exp(x + 2.0)``, which SymPy turns into ``7.389*exp(x)`` (as it does at once for
    ``exp(x + 0.5)``). So numeric factors are pulled into the coefficient until the term is
    stable, and the term is canonical whatever spelling it came from.
    """
    factor = 1.0
    for _ in range(4):  # one round suffices in practice; the bound makes a loop impossible
        if term_expr.is_Mul:  # pull numeric factors such as sqrt(2) (from sqrt(2*x)) into the coefficient
            numeric = [a for a in term_expr.args if not a.has(X)]
            if numeric:
                factor *= float(sp.Mul(*numeric))
                term_expr = sp.Mul(*[a for a in term_expr.args if a.has(X)])
        floated = _float_inner_numbers(term_expr)
        if floated == term_expr:
            break
        term_expr = floated
    if term_expr.is_Add or (term_expr.is_Mul and any(not a.has(X) for a in term_expr.args)):
        raise FormulaError(f"the term {_STR_PRINTER.doprint(term_expr)} has no canonical form (SymPy keeps "
                           "rewriting it); write it differently, e.g. with its constants multiplied out")
    _check_evaluable(term_expr, "a term of the formula")
    return factor, term_expr


def _exact_exponent(exponent: sp.Expr) -> sp.Expr:
    """A numeric exponent as the exact rational the parser makes of its decimal text.

    ``exp(0.7*log(x))`` simplifies to ``x**0.7`` with a Float exponent, while the text
    ``x**0.7`` parses to ``x**(7/10)`` (``_as_exponent``); both must be the same term.
    """
    if exponent.is_Rational or exponent.has(X) or not exponent.is_number:
        return exponent
    value = float(exponent)
    return sp.Rational(repr(value)) if math.isfinite(value) else exponent


def _parse_canonical(spec: str | sp.Basic) -> tuple[float, list[tuple[Term, float]]]:
    """Parse text or a SymPy expression into canonical parts; every refusal is a FormulaError.

    The checks above name what is wrong where they can. SymPy and mpmath can still raise
    their own errors on inputs nobody foresaw (a float() of a complex number, an overflow in
    an evaluation); those are turned into a FormulaError too, so that callers catching
    FormulaError (or ValueError) see every refusal.
    """
    try:
        if isinstance(spec, str):
            return _canonical_parts(_Parser(spec).parse().expr)
        return _canonical_parts(_from_sympy(spec).expr)
    except FormulaError:
        raise
    except (ArithmeticError, TypeError, KeyError, ValueError) as exc:
        raise FormulaError(f"the formula cannot be put into canonical form ({type(exc).__name__}: {exc}); "
                           "write it differently, e.g. simplified by hand") from exc


def _float_inner_numbers(expr: sp.Expr) -> sp.Expr:
    """Write every inner constant as a Float (and +-1 as integers), exponents as exact rationals.

    Makes ``sin(x/2)``, ``sin(0.5*x)`` and ``sin(2*x)``/``sin(2.0*x)`` the same term, and
    ``x**0.7`` (a Float exponent from simplification) the same as the parsed ``x**(7/10)``.
    """
    if expr.is_Number:
        value = float(expr)
        return sp.Integer(int(value)) if value in (1.0, -1.0) else sp.Float(value)
    if expr.is_Pow:
        return sp.Pow(_float_inner_numbers(expr.args[0]), _exact_exponent(expr.args[1]))
    if not expr.args:
        return expr
    return expr.func(*[_float_inner_numbers(a) for a in expr.args])


class Formula:
    """A neuron formula ``c0 + sum_k c_k * phi_k(x)`` in canonical form.

    Parameters
    ----------
    spec : str, sympy.Expr, Formula or mapping
        Formula text (``"0.068*x**3 + 0.15*x + 0.76"``, the paper's ``"6@x**2 + 2@x - 3"``),
        a SymPy expression in a symbol named ``x``, another Formula, or the output of
        :meth:`to_dict`.

    Raises
    ------
    FormulaError
        When the text or expression cannot be accepted; the message names the offending token
        and its position.

    Notes
    -----
    A Formula equals only another Formula with the same canonical form (and then has the same
    hash); to compare with text, write ``f == Formula(text)``.

    Examples
    --------
    >>> f = Formula("6@x**2 + 2@x - 3")
    >>> str(f)
    '6*x**2 + 2*x - 3'
    >>> f.predict(np.array([[1.0, 2.0]]))   # (6 + 2) + (24 + 4) - 3
    array([33.])
    """

    def __init__(self, spec: str | sp.Expr | Formula | Mapping[str, Any]):
        if isinstance(spec, Formula):
            constant, parts = spec._constant, list(spec._parts)
        elif isinstance(spec, (str, sp.Basic)):
            constant, parts = _parse_canonical(spec)
        elif isinstance(spec, Mapping):
            other = Formula.from_dict(spec)
            constant, parts = other._constant, list(other._parts)
        else:
            raise FormulaError(f"cannot make a Formula from {type(spec).__name__}; pass formula text "
                               "such as '2*x**2 + x', a SymPy expression, or a dict from to_dict()")
        self._constant: float = float(constant)
        self._parts: tuple[tuple[Term, float], ...] = tuple(parts)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_terms(cls, terms: Sequence[Term | str], coefficients: Sequence[float] | None = None,
                   constant: float = 0.0) -> Formula:
        """Build ``constant + sum_k coefficients[k] * terms[k]`` (coefficients default to 1)."""
        terms = [t if isinstance(t, Term) else Term.parse(t) for t in terms]
        coefficients = [1.0] * len(terms) if coefficients is None else [float(c) for c in coefficients]
        if len(coefficients) != len(terms):
            raise ValueError(f"got {len(terms)} terms but {len(coefficients)} coefficients")
        values = [float(constant), *coefficients]
        if not all(math.isfinite(v) for v in values):
            raise FormulaError("coefficients and constant must be finite numbers")
        expr = sp.Float(float(constant)) + sp.Add(*[sp.Float(c) * t.expr for t, c in zip(terms, coefficients, strict=False)])
        return cls(expr)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Formula:
        """Inverse of :meth:`to_dict`; every term text goes through the safe parser."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT_NAME:
            raise FormulaError(f"not a formula record: expected a mapping with format={FORMAT_NAME!r}")
        version = data.get("version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise FormulaError(f"formula record version {version!r} is newer than this taskneurons "
                               f"understands ({FORMAT_VERSION}); upgrade taskneurons")
        terms = data.get("terms")
        if isinstance(terms, Sequence) and len(terms) > MAX_TERMS:  # bound the parsing work up front
            raise FormulaError(f"the formula record has {len(terms)} terms, more than the limit of {MAX_TERMS}")
        try:
            constant = float(data["constant"])
            rows = [(str(r["term"]), float(r["coefficient"])) for r in terms]
        except (KeyError, TypeError, ValueError, OverflowError) as exc:  # float(10**400): OverflowError
            raise FormulaError(f"malformed formula record: {exc}") from None
        return cls.from_terms([Term.parse(t) for t, _ in rows], [c for _, c in rows], constant)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe record; ``Formula.from_dict(f.to_dict()) == f`` exactly."""
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "text": str(self),
            "constant": self._constant,
            "terms": [{"term": t.key, "coefficient": c} for t, c in self._parts],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def with_coefficients(self, coefficients: Sequence[float], constant: float | None = None) -> Formula:
        """The same terms with new outer coefficients (and constant)."""
        return Formula.from_terms(self.terms, coefficients, self._constant if constant is None else constant)

    # -- canonical parts ----------------------------------------------------------------------
    @property
    def terms(self) -> tuple[Term, ...]:
        return tuple(t for t, _ in self._parts)

    @property
    def coefficients(self) -> tuple[float, ...]:
        return tuple(c for _, c in self._parts)

    @property
    def constant(self) -> float:
        return self._constant

    @property
    def n_terms(self) -> int:
        return len(self._parts)

    @property
    def inner_constants(self) -> tuple[tuple[float, ...], ...]:
        return tuple(t.constants for t in self.terms)

    @property
    def is_polynomial(self) -> bool:
        return all(t.power is not None for t in self.terms)

    @property
    def degree(self) -> int | None:
        """Highest power of x when the formula is a polynomial, else None."""
        return max(t.power for t in self.terms) if self.is_polynomial else None

    @cached_property
    def expr(self) -> sp.Expr:
        """The formula as a SymPy expression in :data:`X`."""
        return sp.Float(self._constant) + sp.Add(*[sp.Float(c) * t.expr for t, c in self._parts])

    @cached_property
    def complexity(self) -> int:
        """Number of nodes of the expression tree (binary +/*), as PySR counts complexity."""
        summands = [(t.complexity if c == 1 else t.complexity + (1 if c == -1 else 2)) for t, c in self._parts]
        if self._constant != 0:
            summands.append(1)
        return sum(summands) + len(summands) - 1

    # -- printing -----------------------------------------------------------------------------
    def _summands(self, print_term, print_number, times: str) -> list[tuple[bool, str]]:
        out = []
        for term, c in self._parts:
            text = print_term(term)
            magnitude = abs(c)
            if magnitude != 1:
                if text.startswith("1/"):
                    text = f"{print_number(magnitude)}{text[1:]}"
                else:
                    text = f"{print_number(magnitude)}{times}{text}"
            out.append((c < 0, text))
        if self._constant != 0:
            out.append((self._constant < 0, print_number(abs(self._constant))))
        return out

    @staticmethod
    def _join(summands: list[tuple[bool, str]]) -> str:
        first_negative, text = summands[0]
        pieces = [("-" if first_negative else "") + text]
        for negative, piece in summands[1:]:
            pieces.append((" - " if negative else " + ") + piece)
        return "".join(pieces)

    def __str__(self) -> str:
        return self._join(self._summands(lambda t: t.key, _format_number, "*"))

    def format(self, precision: int | None = 4) -> str:
        """Text for people: numbers rounded to ``precision`` significant digits.

        ``str(formula)`` is exact (it reads back as the same formula); this is for tables
        and reports, e.g. ``'0.06825*x**3 + 0.1503*x + 0.7601'``.
        """
        if precision is None:
            return str(self)
        if not (isinstance(precision, int) and precision >= 1):
            raise ValueError(f"precision must be a positive integer or None, got {precision!r}")
        printer = _StrPrinter({"order": "none"}, precision=precision)
        return self._join(self._summands(lambda t: printer.doprint(t.expr),
                                         lambda v: _format_number(v, precision), "*"))

    def latex(self) -> str:
        """LaTeX of the formula, e.g. ``0.068 x^{3} + 0.15 x + 0.76``."""
        return self._join(self._summands(lambda t: t.latex(), _latex_number, " "))

    def _repr_latex_(self) -> str:
        return f"${self.latex()}$"

    def __repr__(self) -> str:
        return f"Formula({str(self)!r})"

    # -- identity -----------------------------------------------------------------------------
    @cached_property
    def _key(self) -> tuple:
        return (self._constant, tuple((t.key, c) for t, c in self._parts))

    def __eq__(self, other: object) -> bool:
        # Only Formulas compare equal: a text equal to a Formula would need the Formula's hash,
        # which no str has (a == b must imply hash(a) == hash(b)). Compare Formula(text).
        if not isinstance(other, Formula):
            return NotImplemented
        return self._key == other._key

    def __hash__(self) -> int:
        return hash(("Formula", self._key))

    def same_terms(self, other: Formula | str) -> bool:
        """True when both formulas have the same set of terms (coefficients ignored)."""
        other = other if isinstance(other, Formula) else Formula(other)
        return {t.key for t in self.terms} == {t.key for t in other.terms}

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, x):
        """The scalar formula g(x) = c0 + sum_k c_k phi_k(x), elementwise, any shape."""
        phis = self._term_values(x, check=False)
        out = self._constant
        for (_, c), phi in zip(self._parts, phis, strict=False):
            out = out + c * phi
        return out

    def features(self, X):
        """Aggregated term features ``s[:, k] = sum_i phi_k(X[:, i])``.

        Parameters
        ----------
        X : array of shape (n_samples, n_features), numpy or torch

        Returns
        -------
        array of shape (n_samples, n_terms), same library as ``X``.
        """
        X = _as_2d(X)
        phis = self._term_values(X, check=True)
        if _is_torch(X):
            import torch

            return torch.stack([phi.sum(dim=1) for phi in phis], dim=1)
        return np.stack([phi.sum(axis=1) for phi in phis], axis=1)

    def predict(self, X):
        """The vectorized value ``c0 + sum_k c_k sum_i phi_k(X[:, i])`` for every row.

        Parameters
        ----------
        X : array of shape (n_samples, n_features), numpy or torch

        Returns
        -------
        array of shape (n_samples,), same library as ``X``.

        Raises
        ------
        DataError
            When ``X`` is not 2-D or holds NaN/inf.
        NumericalError
            When a term, or the weighted sum, is not finite on the given inputs (log of a
            negative number, overflow).
        """
        S = self.features(X)
        coefficients = self.coefficients
        if _is_torch(S):
            import torch

            out = self._constant + S @ torch.as_tensor(coefficients, dtype=S.dtype, device=S.device)
            finite = bool(out.isfinite().all())
        else:
            with np.errstate(over="ignore", invalid="ignore"):  # reported below, as an error
                out = self._constant + S @ np.asarray(coefficients, dtype=float)
            finite = bool(np.isfinite(out).all())
        if not finite:  # finite terms times large coefficients can still overflow in the sum
            raise NumericalError(f"the value of {self.format()} overflows on the given inputs (every term is "
                                 "finite, their weighted sum is not); scale the inputs down")
        return out

    def _term_values(self, x, check: bool) -> list:
        degrees = [t.power for t in self.terms if t.power is not None]
        x = _as_float(x)
        with np.errstate(all="ignore"):
            powers = power_chain(x, degrees) if degrees else {}
            values = [powers[t.power] if t.power is not None else t.evaluate(x) for t in self.terms]
        if check:
            for term, value in zip(self.terms, values, strict=False):
                finite = bool(value.isfinite().all()) if _is_torch(value) else bool(np.isfinite(value).all())
                if not finite:
                    raise NumericalError(f"the term {term} is not finite on the given inputs (outside its "
                                         "domain or overflowing); scale the inputs or change the formula")
        return values


def _as_2d(X):
    from .errors import DataError

    if _is_torch(X):
        if X.dim() != 2:
            raise DataError(f"X must be 2-D (n_samples, n_features), got shape {tuple(X.shape)}")
        if not X.is_floating_point():
            X = X.double()
        if not bool(X.isfinite().all()):
            raise DataError("X contains NaN or infinity; remove or impute those values first")
        return X
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise DataError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}; "
                        "use X.reshape(-1, 1) for a single feature")
    if not np.isfinite(X).all():
        raise DataError("X contains NaN or infinity; remove or impute those values first")
    return X
