"""Tests of taskneurons.nn: TaskLinear, TaskMLP, initialisation and sizing helpers."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from taskneurons.errors import DataError, FormulaError
from taskneurons.formula import Formula
from taskneurons.nn import (
    ACTIVATIONS,
    TaskLinear,
    TaskMLP,
    count_parameters,
    layer_parameter_count,
    make_activation,
    match_parameters,
    term_second_moment,
)

POLY = "2*x**5 - 3*x**3 + 3*x**2 + x + 1"
MIXED = "sin(1.7*x) + x**2"
RICH = "0.5*x**3 + sin(1.7*x) - 2*exp(x/11) + sqrt(x + 3.5) + x + 4"

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def naive_forward(layer: TaskLinear, x: torch.Tensor) -> torch.Tensor:
    """Reference: one F.linear per term, each term evaluated on its own (torch.pow for powers)."""
    out = layer.bias if layer.bias is not None else 0.0
    for k, term in enumerate(layer.terms):
        if term.power is not None:
            phi = torch.pow(x, term.power)
        else:
            consts = layer.term_constants(k)
            phi = term.evaluate(x, constants=[] if consts is None else list(consts))
        out = out + F.linear(phi, layer.term_weight(k))
    return out


# ---------------------------------------------------------------------------------------------
# TaskLinear: values
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("formula", ["x", "x**2 + x", POLY, MIXED, RICH, "x**7 + x**4", "abs(x) + x**3",
                                     "1/x + x"])
def test_matches_naive_per_term_reference(formula):
    layer = TaskLinear(6, 4, formula, dtype=torch.float64)
    layer.reset_parameters(gen(1))
    with torch.no_grad():  # move the inner constants off their initial values
        if layer.inner_constants is not None:
            layer.inner_constants.add_(0.1 * torch.randn(layer.inner_constants.shape, generator=gen(2),
                                                         dtype=torch.float64))
    x = torch.rand(9, 6, generator=gen(3), dtype=torch.float64) * 1.8 + 0.1  # in every term's domain
    torch.testing.assert_close(layer(x), naive_forward(layer, x), rtol=1e-6, atol=1e-6)
    # float32 agrees with the float64 reference to float32 precision
    layer32 = TaskLinear(6, 4, formula)
    layer32.load_state_dict({k: v.float() for k, v in layer.state_dict().items()})
    torch.testing.assert_close(layer32(x.float()).double(), naive_forward(layer, x), rtol=1e-5, atol=1e-5)


def test_expand_layout_is_term_major():
    layer = TaskLinear(3, 2, POLY)
    x = torch.tensor([[0.5, -1.0, 2.0]])
    expected = torch.cat([x ** 5, x ** 3, x ** 2, x], dim=-1)
    torch.testing.assert_close(layer.expand(x), expected)
    assert [str(t) for t in layer.terms] == ["x**5", "x**3", "x**2", "x"]
    assert layer.n_terms == 4 and layer.weight.shape == (2, 12)


def test_arbitrary_leading_dimensions():
    layer = TaskLinear(5, 3, MIXED)
    x = torch.randn(2, 4, 5, generator=gen())
    y = layer(x)
    assert y.shape == (2, 4, 3)
    torch.testing.assert_close(y[1, 2], layer(x[1, 2]))


def test_formula_constant_and_coefficients_are_not_used_as_values():
    # The formula gives the terms; weights are learned, so coefficient changes give the same layer.
    a = TaskLinear(4, 2, "2*x**2 + 3*x + 7")
    b = TaskLinear(4, 2, "x**2 - x")
    b.load_state_dict(a.state_dict())
    x = torch.randn(5, 4, generator=gen())
    torch.testing.assert_close(a(x), b(x))


# ---------------------------------------------------------------------------------------------
# TaskLinear: gradients
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("formula", [MIXED, POLY, RICH])
def test_gradcheck_float64_including_inner_constants(formula):
    layer = TaskLinear(3, 2, formula, dtype=torch.float64)
    layer.reset_parameters(gen(4))
    names = [n for n, _ in layer.named_parameters()]
    if formula != POLY:
        assert "inner_constants" in names
    params = tuple(p.detach().clone().requires_grad_(True) for _, p in layer.named_parameters())
    x = (torch.rand(4, 3, generator=gen(5), dtype=torch.float64) + 0.2).requires_grad_(True)

    def f(x, *ps):
        return torch.func.functional_call(layer, dict(zip(names, ps, strict=True)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params))
    assert torch.autograd.gradgradcheck(f, (x, *params))


def test_inner_constants_learn_per_feature():
    layer = TaskLinear(3, 1, "sin(1.7*x)", bias=False)
    torch.testing.assert_close(layer.inner_constants, torch.full((1, 3), 1.7))
    x = torch.randn(8, 3, generator=gen())
    layer(x).sum().backward()
    assert layer.inner_constants.grad.shape == (1, 3)
    assert torch.all(layer.inner_constants.grad != 0)
    assert layer.term_constants(0).shape == (1, 3)


@pytest.mark.parametrize("formula", ["x**2 + x", "sin(1.7*x)"])
def test_training_recovers_formula_and_inner_constant(formula):
    # y = 2*sum(x**2) - sum(x) + 1 is exactly a TaskLinear("x**2 + x") with W_2 = 2, W_1 = -1, b = 1,
    # and y = sin(2.3*x) needs the inner constant to move from its initial 1.7 to 2.3.
    x = torch.rand(256, 3, generator=gen(1), dtype=torch.float64) * 2 - 1
    if formula == "x**2 + x":
        y = 2 * (x ** 2).sum(1, keepdim=True) - x.sum(1, keepdim=True) + 1
    else:
        x = x[:, :1]
        y = torch.sin(2.3 * x)
    layer = TaskLinear(x.shape[1], 1, formula, dtype=torch.float64)
    layer.reset_parameters(gen(0))
    if layer.inner_constants is not None:
        with torch.no_grad():  # start the weight near the answer so the fit is about the constant
            layer.weight.fill_(0.9)
            layer.bias.zero_()
    optimizer = torch.optim.LBFGS(layer.parameters(), max_iter=100, tolerance_grad=1e-12,
                                  tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.mse_loss(layer(x), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    assert closure().item() < 1e-8
    if layer.inner_constants is not None:
        torch.testing.assert_close(layer.inner_constants, torch.full((1, 1), 2.3, dtype=torch.float64))
    else:
        torch.testing.assert_close(layer.weight, torch.tensor([[2.0] * 3 + [-1.0] * 3], dtype=torch.float64))


# ---------------------------------------------------------------------------------------------
# TaskLinear: formula "x" is nn.Linear
# ---------------------------------------------------------------------------------------------

def test_linear_equivalence_outputs_and_state_dict():
    linear = nn.Linear(7, 5)
    task = TaskLinear(7, 5, "x")
    sd = linear.state_dict()
    assert list(task.state_dict()) == list(sd)
    assert all(task.state_dict()[k].shape == v.shape for k, v in sd.items())
    task.load_state_dict(sd)
    x = torch.randn(11, 7, generator=gen())
    assert torch.equal(task(x), linear(x))
    # and back: a TaskLinear("x") state dict loads into nn.Linear
    linear.load_state_dict(TaskLinear(7, 5, "x").state_dict())


def test_linear_equivalence_initial_distribution():
    # Same random stream -> the same numbers as nn.Linear's own reset_parameters.
    linear = nn.Linear(7, 5)
    task = TaskLinear(7, 5, "x")
    with torch.random.fork_rng():
        torch.manual_seed(123)
        linear.reset_parameters()
        torch.manual_seed(123)
        task.reset_parameters()
    assert torch.equal(linear.weight, task.weight) and torch.equal(linear.bias, task.bias)
    # With an explicit generator: nn.Linear's recipe, drawn from that generator.
    task.reset_parameters(gen(9))
    w = torch.empty(5, 7)
    b = torch.empty(5)
    g = gen(9)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)
    nn.init.uniform_(b, -1 / math.sqrt(7), 1 / math.sqrt(7), generator=g)
    assert torch.equal(task.weight, w) and torch.equal(task.bias, b)


def test_reset_parameters_is_reproducible_without_global_seed():
    a = TaskLinear(6, 4, RICH)
    b = TaskLinear(6, 4, RICH)
    a.reset_parameters(gen(3))
    state = torch.random.get_rng_state()
    b.reset_parameters(gen(3))
    assert torch.equal(state, torch.random.get_rng_state())  # global stream untouched
    for (na, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(pa, pb), na
    values = [c for t in a.terms for c in t.constants]
    assert sorted(values) == pytest.approx([1 / 11, 1.7, 3.5])
    torch.testing.assert_close(a.inner_constants, torch.tensor(values)[:, None].expand(3, 6))


# ---------------------------------------------------------------------------------------------
# TaskLinear: initialisation scale
# ---------------------------------------------------------------------------------------------

def output_second_moment(formula, x, n_inits=8):
    """E[y**2] over inputs, output units and initialisations of TaskLinear(in, 64, formula)."""
    total = 0.0
    for seed in range(n_inits):
        layer = TaskLinear(x.shape[1], 64, formula)
        layer.reset_parameters(gen(seed))
        with torch.no_grad():
            total += float(layer(x).pow(2).mean())
    return total / n_inits


def test_term_second_moments():
    assert term_second_moment(Formula("x").terms[0]) == 1.0
    assert term_second_moment(Formula("x**5").terms[0]) == 945.0
    sin = Formula("sin(x)").terms[0]
    assert term_second_moment(sin) == pytest.approx((1 - math.exp(-2)) / 2, rel=1e-6)
    exp = Formula("exp(x)").terms[0]
    assert term_second_moment(exp) == pytest.approx(math.exp(2), rel=1e-6)
    sqrt = Formula("sqrt(x)").terms[0]  # measured on its domain x > 0: E[x | x > 0] = sqrt(2/pi)
    assert term_second_moment(sqrt) == pytest.approx(math.sqrt(2 / math.pi), rel=0.05)


@pytest.mark.parametrize("formula", [POLY, "x**7 + x**6 + x**5 + x**4 + x**3 + x**2 + x",
                                     "0.5*x**3 + sin(1.7*x) - 2*exp(x/11) + tanh(2*x) + x"])
def test_init_output_variance_comparable_to_linear(formula):
    # formula "x" draws exactly nn.Linear's weights (test_linear_equivalence_initial_distribution)
    x_normal = torch.randn(2048, 32, generator=gen(7))
    base = output_second_moment("x", x_normal)
    task = output_second_moment(formula, x_normal)
    # Reference inputs N(0, 1): the same second moment as nn.Linear (documented: within 20 %; the
    # estimate itself scatters by about 10 % for x**7, whose square has heavy tails).
    assert base == pytest.approx(1 / 3 + 1 / (3 * 32), rel=0.1)
    assert task / base == pytest.approx(1.0, rel=0.2)
    # Inputs in [-1, 1]: polynomials start smaller than nn.Linear (the documented safe direction:
    # 0.31x for POLY, 0.17x for degree 7), other terms within a factor 2.
    x_unit = torch.rand(2048, 32, generator=gen(8)) * 2 - 1
    ratio_unit = output_second_moment(formula, x_unit) / output_second_moment("x", x_unit)
    if Formula(formula).is_polynomial:
        assert 0.1 < ratio_unit < 0.4
    else:
        assert 0.5 < ratio_unit < 2.0


# ---------------------------------------------------------------------------------------------
# TaskLinear: compile, serialisation, dtypes, devices
# ---------------------------------------------------------------------------------------------

def test_compile_fullgraph_matches_eager():
    layer = TaskLinear(5, 3, "x**3 + sin(1.7*x) + x")
    x = torch.randn(8, 5, generator=gen())
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    y = compiled(x)
    torch.testing.assert_close(y, layer(x))
    y.sum().backward()
    assert layer.inner_constants.grad is not None and layer.weight.grad is not None


def test_compiled_layer_still_reports_wrong_width():
    layer = TaskLinear(4, 2, "x**2 + x")
    compiled = torch.compile(layer, fullgraph=True, backend="eager")
    compiled(torch.randn(3, 4))
    with pytest.raises(Exception, match=r"expects inputs of shape \(\*, 4\)"):
        compiled(torch.randn(3, 5))


def test_state_dict_round_trip_via_torch_save():
    layer = TaskLinear(4, 3, RICH, dtype=torch.float64)
    layer.reset_parameters(gen(2))
    with torch.no_grad():
        layer.inner_constants.mul_(1.25)  # trained-looking constants survive the trip
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    clone = TaskLinear(4, 3, RICH, dtype=torch.float64)
    clone.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.rand(6, 4, generator=gen(), dtype=torch.float64)
    assert torch.equal(layer(x), clone(x))
    assert set(layer.state_dict()) == {"weight", "bias", "inner_constants"}
    with pytest.raises(RuntimeError, match="size mismatch"):
        TaskLinear(4, 3, "x**2 + x").load_state_dict(TaskLinear(4, 3, POLY).state_dict())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes(dtype):
    layer = TaskLinear(4, 2, RICH, dtype=dtype)
    assert all(p.dtype == dtype for p in layer.parameters())
    y = layer(torch.rand(3, 4, dtype=dtype))
    assert y.dtype == dtype and torch.isfinite(y).all()


def test_no_bias_and_repr():
    layer = TaskLinear(4, 2, POLY, bias=False)
    assert layer.bias is None
    assert sum(p.numel() for p in layer.parameters()) == 4 * 2 * 4
    text = repr(layer)
    assert "formula='2*x**5 - 3*x**3 + 3*x**2 + x + 1'" in text and "n_terms=4" in text
    assert "bias=False" in text


def test_meta_device_builds_without_memory():
    layer = TaskLinear(1000, 1000, RICH, device="meta")
    assert layer.weight.device.type == "meta" and layer.weight.shape == (1000, 5000)


@cuda
def test_cuda_matches_cpu():
    layer = TaskLinear(5, 3, RICH, dtype=torch.float64)
    layer.reset_parameters(gen(1))
    x = torch.rand(7, 5, generator=gen(), dtype=torch.float64)
    gpu = TaskLinear(5, 3, RICH, dtype=torch.float64, device="cuda")
    gpu.load_state_dict(layer.state_dict())
    torch.testing.assert_close(gpu(x.cuda()).cpu(), layer(x))
    gpu.reset_parameters(gen(1))  # a CPU generator initialises CUDA parameters
    torch.testing.assert_close(gpu.weight.cpu(), layer.weight)


# ---------------------------------------------------------------------------------------------
# TaskLinear: bad input
# ---------------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------------
# TaskLinear: basis="orthonormal"
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("in_features", [3, 200])  # 3: the kron fast path; 200: the einsum path
def test_orthonormal_basis_is_orthonormal_on_the_unit_interval(in_features):
    layer = TaskLinear(in_features, 2, POLY, basis="orthonormal", dtype=torch.float64)
    assert (layer.basis_kron is not None) == (in_features == 3)
    nodes, weights = (torch.from_numpy(a) for a in __import__("numpy").polynomial.legendre.leggauss(64))
    x = nodes[:, None].expand(-1, in_features)
    phi = layer.expand(x).view(64, layer.n_terms, in_features)[:, :, 0]       # (nodes, K)
    psi = (phi - layer.basis_means) @ layer.basis_mixing.T                     # psi = A (phi - mu)
    gram = (psi * (weights / 2)[:, None]).T @ psi
    torch.testing.assert_close(gram, torch.eye(layer.n_terms, dtype=torch.float64), atol=1e-9, rtol=0)


@pytest.mark.parametrize("in_features", [3, 200])
def test_orthonormal_layer_equals_a_terms_layer_with_the_mapped_weights(in_features):
    ortho = TaskLinear(in_features, 5, MIXED, basis="orthonormal", dtype=torch.float64)
    ortho.reset_parameters(gen(3))
    weight, bias = ortho.term_parameters()
    # Reference map, written directly from the definition psi_k = sum_j A_kj (phi_j - mu_j).
    blocks = ortho.weight.view(5, ortho.n_terms, in_features)
    expected = torch.einsum("okn,kj->ojn", blocks, ortho.basis_mixing)
    expected_bias = ortho.bias - torch.einsum("ojn,j->o", expected, ortho.basis_means)
    torch.testing.assert_close(weight, expected.reshape(5, -1))
    torch.testing.assert_close(bias, expected_bias)
    plain = TaskLinear(in_features, 5, MIXED, dtype=torch.float64)
    with torch.no_grad():
        plain.weight.copy_(weight)
        plain.bias.copy_(bias)
        plain.inner_constants.copy_(ortho.inner_constants)
    x = torch.rand(17, in_features, generator=gen(4), dtype=torch.float64) * 2 - 1
    torch.testing.assert_close(ortho(x), plain(x))


@pytest.mark.parametrize("in_features", [3, 200])
def test_orthonormal_layer_without_bias_spans_the_terms_exactly(in_features):
    # A centred basis would tie a constant to the weights: a bias-free layer could then not
    # output 0 at x = 0, and could not represent w * x**2.
    ortho = TaskLinear(in_features, 4, "x**2 + x", bias=False, basis="orthonormal", dtype=torch.float64)
    assert ortho(torch.zeros(2, in_features, dtype=torch.float64)).abs().max() == 0
    weight, bias = ortho.term_parameters()
    assert bias is None
    plain = TaskLinear(in_features, 4, "x**2 + x", bias=False, dtype=torch.float64)
    with torch.no_grad():
        plain.weight.copy_(weight)
    x = torch.rand(9, in_features, generator=gen(5), dtype=torch.float64) * 2 - 1
    torch.testing.assert_close(ortho(x), plain(x))
    nodes, weights = (torch.from_numpy(a) for a in __import__("numpy").polynomial.legendre.leggauss(64))
    phi = ortho.expand(nodes[:, None].expand(-1, in_features)).view(64, 2, in_features)[:, :, 0]
    psi = phi @ ortho.basis_mixing.T                                           # no centring
    gram = (psi * (weights / 2)[:, None]).T @ psi
    torch.testing.assert_close(gram, torch.eye(2, dtype=torch.float64), atol=1e-9, rtol=0)


@pytest.mark.parametrize("formula", ["1/x + x", "log(abs(x)) + x", "sqrt(x) + x"])
def test_orthonormal_basis_falls_back_to_the_terms_where_a_term_is_not_finite(formula):
    layer = TaskLinear(3, 2, formula, basis="orthonormal")
    assert layer.basis_mixing is None and layer.term_parameters() == (layer.weight, layer.bias)


def test_orthonormal_basis_falls_back_to_the_terms_where_they_are_nearly_dependent():
    # exp(x/11) - 1 is x/11 + x**2/242 + ... on [-1, 1]: orthogonalising it against x, x**2 and
    # sin(1.7*x) needs mixing coefficients near 1e6, and float32 psi would be mostly rounding.
    assert TaskLinear(3, 2, "x + x**2 + sin(1.7*x) + exp(x/11)", basis="orthonormal").basis_mixing is None
    kept = TaskLinear(3, 2, "x + x**2 + sin(1.7*x) + exp(-1.2*x)", basis="orthonormal")
    assert kept.basis_mixing is not None and kept.basis_mixing.abs().max() < 1e3
    x = torch.rand(256, 3) * 2 - 1
    exact = kept.double()(x.double())
    torch.testing.assert_close(kept.float()(x).double(), exact, rtol=0, atol=1e-4 * exact.abs().max().item())



@pytest.mark.parametrize("bad", [0, -3, 2.5, "4", True, None])
def test_bad_widths(bad):
    with pytest.raises(ValueError, match="positive integer"):
        TaskLinear(bad, 3, "x")
    with pytest.raises(ValueError, match="positive integer"):
        TaskLinear(3, bad, "x")


def test_bad_formula():
    with pytest.raises(FormulaError):
        TaskLinear(3, 2, "y**2")
    with pytest.raises(FormulaError):
        TaskLinear(3, 2, "__import__('os')")


def test_wrong_input_width_gives_clear_error():
    layer = TaskLinear(4, 2, POLY)
    with pytest.raises(DataError, match=r"shape \(\*, 4\), got \(3, 5\)"):
        layer(torch.randn(3, 5))
    with pytest.raises(DataError):
        layer(torch.tensor(1.0))


# ---------------------------------------------------------------------------------------------
# TaskMLP
# ---------------------------------------------------------------------------------------------

def test_mlp_shapes_and_structure():
    net = TaskMLP(6, [16, 8], 3, "x**2 + x", activation="tanh", generator=0)
    assert net(torch.randn(5, 6)).shape == (5, 3)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["TaskLinear", "Tanh", "TaskLinear", "Tanh", "TaskLinear"]
    assert [layer.formula for layer in net.task_layers] == [Formula("x**2 + x")] * 3
    assert net.hidden == (16, 8)
    single = TaskMLP(6, [], 2, POLY)
    assert len(single) == 1 and single(torch.randn(2, 6)).shape == (2, 2)
    assert TaskMLP(6, 5, 1, "x").hidden == (5,)


def test_mlp_output_formula_and_per_layer_formulas():
    net = TaskMLP(4, [8], 2, POLY, output_formula="x")
    assert net.task_layers[-1].n_terms == 1 and net.task_layers[0].n_terms == 4
    per_layer = TaskMLP(4, [8, 8], 2, ["x**2 + x", MIXED, "x"])
    assert [str(f) for f in per_layer.formulas] == ["x**2 + x", "x**2 + sin(1.7*x)", "x"]
    assert per_layer.task_layers[1].inner_constants.shape == (1, 8)
    with pytest.raises(ValueError, match="got 2 formulas for 2 hidden layers"):
        TaskMLP(4, [8, 8], 2, ["x", "x"])
    with pytest.raises(ValueError, match="output_formula cannot be combined"):
        TaskMLP(4, [8], 2, ["x", "x"], output_formula="x")


def test_mlp_parameter_counts_before_building():
    for args, kwargs in [((6, [16, 8], 3, MIXED), {}),
                         ((6, [16, 8], 3, POLY), {"output_formula": "x"}),
                         ((6, [16, 8], 3, ["x**2 + x", RICH, "x"]), {"bias": False}),
                         ((6, [], 3, RICH), {})]:
        expected = sum(p.numel() for p in TaskMLP(*args, **kwargs).parameters())
        assert count_parameters(*args, **kwargs) == expected
        assert TaskMLP.count_parameters(*args, **kwargs) == expected
    assert count_parameters(10, [32], 1, "x") == sum(
        p.numel() for p in nn.Sequential(nn.Linear(10, 32), nn.Linear(32, 1)).parameters())
    assert layer_parameter_count(5, 3, RICH) == TaskLinear.count_parameters(5, 3, RICH) == \
        sum(p.numel() for p in TaskLinear(5, 3, RICH).parameters())


def test_match_parameters_fits_budget_and_is_largest():
    ln_hidden = (64, 32)
    budget = count_parameters(10, ln_hidden, 1, "x")
    for formula, output_formula in [(POLY, None), ("x**2 + x", "x"), (RICH, None)]:
        tn_hidden = match_parameters(10, 1, ln_hidden, formula, output_formula=output_formula)
        assert len(tn_hidden) == 2 and all(h >= 1 for h in tn_hidden)
        assert count_parameters(10, tn_hidden, 1, formula, output_formula=output_formula) <= budget
        # the next common scale at which a width grows no longer fits
        scale = max(h / ln for h, ln in zip(tn_hidden, ln_hidden, strict=True))
        assert tn_hidden == tuple(max(1, math.floor(scale * ln + 1e-9)) for ln in ln_hidden)
        nxt = min((h + 1) / ln for h, ln in zip(tn_hidden, ln_hidden, strict=True))
        step = tuple(max(1, math.floor(nxt * ln + 1e-9)) for ln in ln_hidden)
        assert count_parameters(10, step, 1, formula, output_formula=output_formula) > budget
    assert match_parameters(10, 1, [64, 32], "x") == (64, 32)
    # LN: 10*40 + 40 + 40 + 1 = 481; TN: 2*10*h + h + h + 1 = 22h + 1 <= 481 -> h = 21
    assert TaskMLP.match_parameters(10, 1, 40, "x**2 + x", output_formula="x") == (21,)
    with pytest.raises(ValueError, match="no TN network fits"):
        match_parameters(100, 1, [1], "x**3 + x**2 + x")


def test_mlp_activations():
    x = torch.randn(4, 3, generator=gen())
    for name in ACTIVATIONS:
        net = TaskMLP(3, [5], 2, "x**2 + x", activation=name)
        assert torch.isfinite(net(x)).all()
    assert isinstance(make_activation("Leaky-ReLU"), nn.LeakyReLU)
    net = TaskMLP(3, [5, 5], 2, "x", activation=nn.PReLU())
    assert net[1] is not net[3] and isinstance(net[1], nn.PReLU)  # instances are copied per layer
    assert isinstance(TaskMLP(3, [5], 2, "x", activation=nn.Softsign)[1], nn.Softsign)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        TaskMLP(3, [5], 2, "x", activation="swish")
    with pytest.raises(ValueError, match="activation must be"):
        TaskMLP(3, [5], 2, "x", activation=3)


def test_mlp_bad_inputs():
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        TaskMLP(0, [4], 1, "x")
    with pytest.raises(ValueError, match="hidden width must be a positive integer"):
        TaskMLP(3, [4, 0], 1, "x")
    with pytest.raises(ValueError, match="hidden must be"):
        TaskMLP(3, "4", 1, "x")
    with pytest.raises(ValueError, match="unknown norm"):
        TaskMLP(3, [4], 1, "x", norm="batch")
    with pytest.raises(ValueError, match="generator must be"):
        TaskMLP(3, [4], 1, "x", generator="seed")
    with pytest.raises(DataError):
        TaskMLP(3, [4], 1, "x")(torch.randn(2, 4))


def test_mlp_generator_reproducible_and_dtype():
    a = TaskMLP(5, [7, 7], 2, MIXED, generator=3, dtype=torch.float64)
    b = TaskMLP(5, [7, 7], 2, MIXED, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert pa.dtype == torch.float64 and torch.equal(pa, pb)
    c = TaskMLP(5, [7, 7], 2, MIXED, generator=4, dtype=torch.float64)
    assert not torch.equal(a[0].weight, c[0].weight)


DEG7 = "x**7 + x**6 + x**5 + x**4 + x**3 + x**2 + x"


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "gelu", "identity"])
def test_deep_degree7_mlp_is_finite_at_init_on_unit_inputs(activation):
    x = torch.rand(512, 8, generator=gen(1)) * 2 - 1
    for seed in range(3):
        net = TaskMLP(8, [64] * 5, 1, DEG7, activation=activation, generator=seed)
        h = x
        for module in net:
            h = module(h)
            assert torch.isfinite(h).all()
        # documented behaviour: activations shrink through the stack rather than grow
        assert h.abs().max() < 1.0


def test_deep_degree7_mlp_guard_for_large_inputs():
    x = (torch.rand(512, 8, generator=gen(1)) * 2 - 1) * 10  # unscaled data: powers explode
    plain = TaskMLP(8, [64] * 5, 1, DEG7, activation="relu", generator=0)
    with torch.no_grad():
        assert not torch.isfinite(plain(x)).all()
        guarded = TaskMLP(8, [64] * 5, 1, DEG7, activation="relu", norm="layer", generator=0)
        assert torch.isfinite(guarded(x)).all()
        bounded = TaskMLP(8, [64] * 5, 1, DEG7, activation="tanh", generator=0)
        assert torch.isfinite(bounded(x)).all()
    assert count_parameters(8, [64] * 5, 1, DEG7) == sum(p.numel() for p in guarded.parameters())


def test_mlp_compiles_fullgraph():
    net = TaskMLP(4, [6], 2, MIXED, generator=0)
    x = torch.randn(3, 4, generator=gen())
    compiled = torch.compile(net, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(x), net(x))


# ---------------------------------------------------------------------------------------------
# Review follow-ups
# ---------------------------------------------------------------------------------------------

def test_converting_an_orthonormal_layer_to_float64_recomputes_its_basis():
    # Buffers converted as stored would keep float32-rounded bases (errors up to 3e-5 for x**11).
    built32 = TaskLinear(8, 4, "x**11 + x**9 + x**7 + x**5 + x**3 + x", basis="orthonormal")
    built64 = TaskLinear(8, 4, "x**11 + x**9 + x**7 + x**5 + x**3 + x", basis="orthonormal", dtype=torch.float64)
    built64.load_state_dict(built32.state_dict())
    x = torch.rand(5, 8, generator=gen(6), dtype=torch.float64) * 2 - 1
    torch.testing.assert_close(built32.double()(x), built64(x), rtol=0, atol=0)


def test_slices_of_a_task_mlp_are_plain_sequentials_and_width_one_norm_is_refused():
    net = TaskMLP(4, [8], 2, "x**2 + x", generator=0)
    hidden = net[:-1]  # nn.Sequential slices by calling type(self)(OrderedDict): TaskMLP cannot
    assert type(hidden) is torch.nn.Sequential and hidden(torch.randn(3, 4)).shape == (3, 8)
    assert isinstance(net[0], TaskLinear)
    with pytest.raises(ValueError, match="norm='layer' needs hidden widths >= 2"):
        TaskMLP(10, [5, 1], 1, "x**2 + x", norm="layer")  # LayerNorm over 1 feature outputs 0


# -- dtypes, low precision, meta device ----------------------------------------------------------

@pytest.mark.parametrize("formula", ["x**7 + sin(1.7*x)", "x**2 + x", "x"])
def test_integer_inputs_are_refused_before_their_powers_wrap_around(formula):
    layer = TaskLinear(1, 1, formula)
    with pytest.raises(DataError, match="floating-point inputs, got torch.int64"):
        layer(torch.tensor([[1000]]))


def test_an_input_of_another_dtype_is_refused_outside_autocast():
    layer = TaskLinear(1, 1, "x**3 + sin(1.7*x)")
    with pytest.raises(DataError, match=r"float32 parameters but got a torch.float16 input.*autocast"):
        layer(torch.tensor([[50.0]], dtype=torch.float16))  # x**3 = 125000 is inf in float16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(torch.tensor([[0.5]], dtype=torch.bfloat16)).isfinite().all()


@pytest.mark.parametrize("bias", [True, False])
def test_orthonormal_layer_under_autocast_is_as_accurate_as_linear(bias):
    layer = TaskLinear(8, 8, "x**3 + sin(1.7*x) + x", bias=bias, basis="orthonormal")
    layer.reset_parameters(gen(4))
    x = torch.rand(500, 8, generator=gen(5)) * 2 - 1
    exact = layer.double()(x.double())
    layer.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = layer(x)
        linear_low = F.linear(layer.expand(x), *layer.term_parameters())  # the term-space product
    assert low.dtype == torch.bfloat16
    error = ((low.double() - exact).norm() / exact.norm()).item()
    assert error < 0.01  # bfloat16 keeps 8 bits; mapping the weights to the terms first gave 0.35
    assert ((linear_low.double() - exact).norm() / exact.norm()).item() > 10 * error


def test_orthonormal_features_are_what_the_weights_apply_to():
    layer = TaskLinear(3, 2, "x**5 + x**3 + x", basis="orthonormal", dtype=torch.float64)
    x = torch.rand(7, 3, generator=gen(1), dtype=torch.float64) * 2 - 1
    psi = layer.orthonormal_features(x)
    assert psi.shape == (7, 9)
    torch.testing.assert_close(F.linear(psi, layer.weight, layer.bias), layer(x))
    with pytest.raises(ValueError, match="basis='orthonormal'"):
        TaskLinear(3, 2, "x**2 + x").orthonormal_features(x.float())


def test_term_constants_names_a_bad_term_index():
    layer = TaskLinear(2, 1, "x**3 + sin(1.7*x)")
    assert layer.term_constants(-1).shape == (1, 2)
    with pytest.raises(IndexError, match="term index 5 out of range for 2 terms"):
        layer.term_constants(5)


def test_mlp_factory_arguments_reach_parametrised_activations_and_numpy_widths_are_accepted():
    np = pytest.importorskip("numpy")
    net = TaskMLP(3, np.int64(4), 1, "x**2 + x", activation=nn.PReLU, dtype=torch.float64,
                  generator=np.int64(3))
    assert net.hidden == (4,)
    assert net(torch.randn(2, 3, dtype=torch.float64)).dtype == torch.float64
    again = TaskMLP(3, [4], 1, "x**2 + x", activation=nn.PReLU, dtype=torch.float64, generator=3)
    assert torch.equal(net[0].weight, again[0].weight)


def test_meta_device_then_to_empty_rebuilds_the_index_buffers():
    with torch.device("meta"):
        net = TaskMLP(3, [4], 1, "x**2 + x", linear_inputs=[0])
        factored = TaskMLP(3, [4], 1, "x**2 + x", linear_inputs=[0], term_weights="per_input")
    for model in (net, factored):
        model.to_empty(device="cpu")
        model.reset_parameters(0)
        first = model[0]
        assert first.task_index.tolist() == [1, 2]
        reference = type(model)(3, [4], 1, "x**2 + x", linear_inputs=[0], term_weights=model.term_weights,
                                generator=0)
        x = torch.randn(5, 3, generator=gen(2))
        torch.testing.assert_close(model(x), reference(x))
    assert net[0].linear_index.tolist() == [0]


@pytest.mark.parametrize("budget", [float("inf"), 100.0, "100", True])
def test_match_parameters_refuses_a_budget_that_is_not_an_int(budget):
    with pytest.raises(ValueError, match="budget must be a whole number of parameters"):
        match_parameters(3, 1, [4], "x**2 + x", budget=budget)


def test_match_parameters_without_hidden_layers_says_so_when_nothing_fits():
    with pytest.raises(ValueError, match="the network without hidden layers has 7"):
        match_parameters(3, 1, [], "x**2 + x", budget=5)
    assert match_parameters(3, 1, [], "x**2 + x", budget=np_int(7)) == ()


def np_int(value):
    return pytest.importorskip("numpy").int64(value)


def test_a_seeded_mlp_leaves_the_global_generator_alone():
    state = torch.get_rng_state()
    TaskMLP(3, [4, 4], 1, "x**3 + sin(1.7*x)", generator=0, linear_inputs=[0])
    assert torch.equal(torch.get_rng_state(), state)
    TaskMLP(3, [4], 1, "x**2 + x")  # unseeded: draws from the global generator, like nn.Linear
    assert not torch.equal(torch.get_rng_state(), state)
