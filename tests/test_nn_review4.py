"""Review 4 of taskneurons.nn: a PyTorch user's journey -- torch.func derivatives, device contexts and
assign-loading, formulas undefined on the activations' outputs, and argument checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, hessian, jacfwd, jacrev, vmap

from taskneurons.errors import NumericalError
from taskneurons.nn import FactoredTaskLinear, MixedTaskLinear, TaskLinear, TaskMLP, count_parameters
from taskneurons.nn.mlp import make_activation

D = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# Derivatives with respect to the inputs (physics-informed networks), checked against formulas
# ---------------------------------------------------------------------------------------------

# term -> (phi, phi', phi'') in x for the per-feature inner constant c
_TERMS = {
    "sin(1.7*x)": (lambda x, c: torch.sin(c * x), lambda x, c: c * torch.cos(c * x),
                   lambda x, c: -c * c * torch.sin(c * x)),
    "exp(0.5*x)": (lambda x, c: torch.exp(c * x), lambda x, c: c * torch.exp(c * x),
                   lambda x, c: c * c * torch.exp(c * x)),
    "log(1.3*x)": (lambda x, c: torch.log(c * x), lambda x, c: 1 / x, lambda x, c: -1 / x**2),
    "sqrt(x)": (lambda x, c: torch.sqrt(x), lambda x, c: 0.5 / torch.sqrt(x), lambda x, c: -0.25 * x**-1.5),
    "abs(x)": (lambda x, c: x.abs(), lambda x, c: torch.sign(x), lambda x, c: 0 * x),
    "x**5": (lambda x, c: x**5, lambda x, c: 5 * x**4, lambda x, c: 20 * x**3),
}


def _layer_and_reference(term: str):
    layer = TaskLinear(3, 2, f"{term} + x", dtype=D)
    with torch.no_grad():
        layer.weight.normal_(generator=gen(1))
        if layer.inner_constants is not None:  # per-feature constants away from their common start
            layer.inner_constants.add_(0.1 * torch.randn(layer.inner_constants.shape, generator=gen(2), dtype=D))
    c = layer.inner_constants[0].detach() if layer.inner_constants is not None else torch.ones(3, dtype=D)
    k = next(i for i, t in enumerate(layer.terms) if t.power != 1)
    w_term, w_x = layer.term_weight(k).detach(), layer.term_weight(1 - k).detach()
    return layer, c, w_term, w_x


# torch.func's forward-mode rules script helpers with the deprecated torch.jit.script (torch's own warning)
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("term", list(_TERMS))
def test_input_derivatives_of_every_torch_func_transform_match_the_formula(term):
    import torch.autograd.forward_ad as fwAD

    phi, d1, d2 = _TERMS[term]
    layer, c, w_term, w_x = _layer_and_reference(term)
    x = torch.rand(5, 3, generator=gen(3), dtype=D) + 0.3
    jacobian = w_term[None] * d1(x, c)[:, None, :] + w_x[None]            # (n, out, in)
    hess_diag = w_term[None] * d2(x, c)[:, None, :]                          # terms act elementwise
    expected_h = torch.diag_embed(hess_diag)                                 # (n, out, in, in)
    for transform in (jacrev, jacfwd):
        torch.testing.assert_close(vmap(transform(layer))(x), jacobian)
    torch.testing.assert_close(vmap(hessian(layer))(x), expected_h)
    # double backward with create_graph, the PINN way
    xg = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(layer(xg)[:, 0].sum(), xg, create_graph=True)
    torch.testing.assert_close(g, jacobian[:, 0])
    h = torch.stack([torch.autograd.grad(g[:, i].sum(), xg, retain_graph=True)[0][:, i] for i in range(3)], -1)
    torch.testing.assert_close(h, hess_diag[:, 0])
    # forward mode: dual numbers and torch.func.jvp
    v = torch.randn(5, 3, generator=gen(4), dtype=D)
    with fwAD.dual_level():
        tangent = fwAD.unpack_dual(layer(fwAD.make_dual(x, v))).tangent
    expected_t = torch.einsum("noi,ni->no", jacobian, v)
    torch.testing.assert_close(tangent, expected_t)
    torch.testing.assert_close(torch.func.jvp(layer, (x,), (v,))[1], expected_t)


def test_gradient_of_a_second_derivative_with_respect_to_the_inner_constants():
    layer = TaskLinear(3, 1, "sin(1.7*x) + x", dtype=D)
    x = torch.rand(6, 3, generator=gen(5), dtype=D)

    def laplacian(constants):
        params = {**dict(layer.named_parameters()), "inner_constants": constants}
        f = lambda z: functional_call(layer, params, (z,)).sum()  # noqa: E731
        return vmap(hessian(f))(x).diagonal(dim1=-2, dim2=-1).sum()

    c0 = layer.inner_constants.detach().clone()
    g = grad(laplacian)(c0)
    eps = 1e-6
    fd = torch.stack([(laplacian(c0 + eps * e) - laplacian(c0 - eps * e)) / (2 * eps)
                      for e in torch.eye(3, dtype=D)[:, None, :]]).reshape(1, 3)
    torch.testing.assert_close(g, fd, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("options", [{}, {"basis": "orthonormal"}, {"term_weights": "per_input"},
                                     {"linear_inputs": [1]}])
def test_per_sample_gradients_with_vmap_match_one_backward_per_sample(options):
    net = TaskMLP(3, [5], 2, "sin(1.7*x) + x**3 + x", activation="tanh", dtype=D, generator=0, **options)
    params = {k: v.detach() for k, v in net.named_parameters()}
    buffers = dict(net.named_buffers())
    X, Y = torch.rand(4, 3, generator=gen(6), dtype=D) * 2 - 1, torch.randn(4, 2, generator=gen(7), dtype=D)

    def loss(p, x, y):
        return ((functional_call(net, (p, buffers), (x[None],)) - y[None]) ** 2).sum()

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))(params, X, Y)
    for i in range(4):
        net.zero_grad()
        ((net(X[i:i + 1]) - Y[i:i + 1]) ** 2).sum().backward()
        for name, p in net.named_parameters():
            torch.testing.assert_close(per_sample[name][i], p.grad)


@pytest.mark.parametrize("make", [
    lambda: TaskLinear(4, 3, "sin(1.7*x) + x**3 + x", basis="orthonormal"),
    lambda: FactoredTaskLinear(4, 3, "sin(1.7*x) + x**3 + x", linear_inputs=[2]),
    lambda: MixedTaskLinear(4, 3, "sin(1.7*x) + x**3 + x", [0, 2]),
    lambda: TaskMLP(4, [5], 3, "sin(1.7*x) + x", linear_inputs=[1], norm="layer"),
])
def test_inputs_of_any_leading_shape_layout_and_zero_rows(make):
    module = make()
    x = torch.randn(6, 4, generator=gen(8))
    out = module(x)
    torch.testing.assert_close(module(x[0]), out[0])                                   # (in,)
    torch.testing.assert_close(module(x.view(2, 3, 4)), out.view(2, 3, 3))             # (b, t, in)
    transposed = x.t().contiguous().t()
    torch.testing.assert_close(module(transposed), out)                                # non-contiguous
    torch.testing.assert_close(module(x[:1].expand(6, 4)), out[:1].expand(6, 3))       # stride 0
    empty = torch.zeros(0, 4, requires_grad=True)
    result = module(empty)
    assert result.shape == (0, 3)
    result.sum().backward()
    assert all(p.grad is not None and not p.grad.any() for p in module.parameters())


# ---------------------------------------------------------------------------------------------
# Devices: a `with torch.device(...)` context, and load_state_dict(assign=True) from the meta device
# ---------------------------------------------------------------------------------------------

def test_constant_buffers_are_where_the_parameters_are_under_a_device_context():
    # Under `with torch.device("cuda")` the buffers stayed on the CPU (float64 originals .to(None)), so
    # the first forward failed with a device mismatch; the meta device shows the same placement here.
    with torch.device("meta"):
        modules = [TaskLinear(4, 3, "sin(1.7*x) + x**3 + x", basis="orthonormal"),
                   TaskLinear(300, 3, "sin(1.7*x) + x**3 + x", basis="orthonormal"),
                   FactoredTaskLinear(4, 3, "sin(1.7*x) + x**3 + x", basis="orthonormal", linear_inputs=[1]),
                   TaskMLP(4, [5], 3, "sin(1.7*x) + x", basis="auto", linear_inputs=[1])]
    for module in modules:
        assert [name for name, b in module.named_buffers() if b.device.type != "meta"] == []


@pytest.mark.parametrize("options", [{"basis": "orthonormal"}, {"linear_inputs": [1]},
                                     {"term_weights": "per_input", "linear_inputs": [1], "basis": "orthonormal"}])
def test_load_state_dict_with_assign_into_a_model_built_on_the_meta_device(options):
    trained = TaskMLP(4, [5], 2, "sin(1.7*x) + x**3 + x", generator=0, **options)
    with torch.device("meta"):
        model = TaskMLP(4, [5], 2, "sin(1.7*x) + x**3 + x", **options)
    model.load_state_dict(trained.state_dict(), assign=True)
    assert {b.device.type for b in model.buffers()} == {"cpu"}
    x = torch.rand(3, 4, generator=gen(9)) * 2 - 1
    torch.testing.assert_close(model(x), trained(x))


def test_reset_parameters_after_to_empty_also_initialises_parametrised_activations():
    with torch.device("meta"):
        net = TaskMLP(3, [4, 4], 1, "x**2 + x", activation=nn.PReLU)
    net.to_empty(device="cpu")
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(float("nan"))  # what uninitialised memory may hold
    net.reset_parameters(0)
    assert all(torch.isfinite(p).all() for p in net.parameters())
    assert net[1].weight.item() == 0.25
    torch.testing.assert_close(net(torch.ones(2, 3)), TaskMLP(3, [4, 4], 1, "x**2 + x", activation=nn.PReLU,
                                                             generator=0)(torch.ones(2, 3)))
    # building still copies an activation instance as given, learned slope included
    prelu = nn.PReLU()
    with torch.no_grad():
        prelu.weight.fill_(0.7)
    assert TaskMLP(3, [4], 1, "x**2 + x", activation=prelu)[1].weight.item() == pytest.approx(0.7)


# ---------------------------------------------------------------------------------------------
# Formulas of the later layers must be defined where the activation's outputs lie
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("formula, options, message", [
    ("log(x) + x", {"activation": "relu"}, "ReLU activation, which lie in \\[0, inf\\).*log\\(x\\) is -inf at x = 0"),
    ("1/x + x", {"activation": "relu"}, "is inf at x = 0"),
    ("sqrt(x) + x", {"activation": "tanh"}, "Tanh activation, which lie in \\(-1, 1\\).*sqrt\\(x\\) is nan"),
    ("x**1.5 + x", {"activation": "gelu"}, "GELU activation"),
    ("log(x + 1) + x", {"activation": "sigmoid", "norm": "layer"}, "LayerNorm"),
    ("log(x) + x", {"activation": nn.PReLU}, "PReLU activation"),
])
def test_a_later_layer_formula_undefined_on_the_activation_outputs_is_refused(formula, options, message):
    # Before, these networks were built and every output was NaN (log(0) = -inf times weights of both signs).
    with pytest.raises(NumericalError, match=message):
        TaskMLP(3, [8, 8], 1, formula, **options)
    with pytest.raises(NumericalError, match="task layer 2"):
        TaskMLP(3, [8, 8], 1, ["x", "x", formula], **options)


@pytest.mark.parametrize("formula, activation", [("log(x) + x", "sigmoid"), ("log(x) + x", "softplus"),
                                                 ("sqrt(x) + x", "relu"), ("1/x + x", "tanh"),
                                                 ("log(x + 2) + x", "tanh")])
def test_formulas_defined_on_the_activation_outputs_are_accepted_and_finite(formula, activation):
    net = TaskMLP(3, [16, 8], 1, formula, activation=activation, generator=0)
    x = torch.rand(64, 3, generator=gen(10)) + 0.5
    out = net(x)
    out.sum().backward()
    assert torch.isfinite(out).all() and all(torch.isfinite(p.grad).all() for p in net.parameters())


def test_the_first_layer_and_unknown_activations_are_not_checked():
    TaskMLP(3, [4], 1, ["log(x) + x", "x"], activation="relu")   # the first layer's inputs are the user's data
    TaskMLP(3, [4], 1, "log(x) + x", activation=nn.Hardtanh)     # range not known to TaskMLP


# ---------------------------------------------------------------------------------------------
# Argument checks: every bad value is a ValueError saying what to pass
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bias", ["False", "no", None, 0, 1.0])
def test_bias_must_be_a_bool(bias):
    # "False" is truthy: it used to build a layer *with* a bias and count its parameters
    for build in (lambda: TaskLinear(3, 2, "x**2 + x", bias=bias),
                  lambda: FactoredTaskLinear(3, 2, "x**2 + x", bias=bias),
                  lambda: MixedTaskLinear(3, 2, "x**2 + x", [0], bias=bias),
                  lambda: TaskMLP(3, [4], 2, "x**2 + x", bias=bias),
                  lambda: count_parameters(3, [4], 2, "x**2 + x", bias=bias),
                  lambda: TaskLinear.count_parameters(3, 2, "x", bias=bias)):
        with pytest.raises(ValueError, match="bias must be True or False"):
            build()
    assert TaskLinear(3, 2, "x", bias=np.False_).bias is None


@pytest.mark.parametrize("dtype", [torch.int64, torch.complex64, torch.bool, "float32", np.float32])
def test_dtype_must_be_a_floating_torch_dtype(dtype):
    for build in (lambda: TaskLinear(3, 2, "x**2 + x", dtype=dtype),
                  lambda: FactoredTaskLinear(3, 2, "x**2 + x", dtype=dtype),
                  lambda: TaskMLP(3, [4], 2, "x**2 + x", dtype=dtype)):
        with pytest.raises(ValueError, match="dtype must be a floating-point torch.dtype"):
            build()


def test_hidden_widths_given_as_an_array_or_tensor():
    for widths in (np.array([4, 5]), torch.tensor([4, 5]), np.array([4, 5], dtype=np.int32)):
        net = TaskMLP(3, widths, 2, "x**2 + x")
        assert net.hidden == (4, 5)
        assert count_parameters(3, widths, 2, "x**2 + x") == sum(p.numel() for p in net.parameters())
    for bad in (np.array([4.0, 5.0]), np.array([[4, 5]]), torch.tensor([4.5])):
        with pytest.raises(ValueError, match="hidden width must be a positive integer"):
            TaskMLP(3, bad, 2, "x**2 + x")


@pytest.mark.parametrize("make", [lambda: TaskLinear(3, 4, "sin(1.7*x) + x**2"),
                                  lambda: FactoredTaskLinear(3, 4, "sin(1.7*x) + x**2"),
                                  lambda: MixedTaskLinear(3, 4, "sin(1.7*x) + x**2", [0])])
def test_layer_reset_parameters_takes_an_int_seed_like_task_mlp(make):
    a, b = make(), make()
    a.reset_parameters(3)
    b.reset_parameters(gen(3))
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    for bad in ("3", 1.5, True):
        with pytest.raises(ValueError, match="generator must be a torch.Generator, an int seed or None"):
            a.reset_parameters(bad)
    with pytest.raises(ValueError, match="a generator seed must fit in 64 bits"):  # was "Overflow when unpacking"
        TaskMLP(3, [4], 1, "x**2 + x", generator=2**70)


def test_an_activation_class_that_needs_arguments_is_a_value_error():
    with pytest.raises(ValueError, match="activation class Threshold cannot be built without arguments"):
        TaskMLP(3, [4], 1, "x**2 + x", activation=nn.Threshold)
    TaskMLP(3, [4], 1, "x**2 + x", activation=nn.Threshold(0.1, 0.0))


def test_a_term_whose_second_moment_overflows_initialises_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer = TaskLinear(3, 2, "exp(100*x) + x")
    assert torch.isfinite(layer.weight).all() and layer.weight.abs().max() > 0


def test_a_forward_on_meta_tensors_infers_the_output_shape():
    # Asking torch.is_autocast_enabled("meta") raises "unknown device type for autocast": the orthonormal,
    # factored and mixed layers failed on the meta device that shape inference and FLOP counters use.
    with torch.device("meta"):
        modules = [TaskLinear(4, 3, "sin(1.7*x) + x**3 + x", basis="orthonormal"),
                   FactoredTaskLinear(4, 3, "sin(1.7*x) + x**3 + x", basis="orthonormal", linear_inputs=[1]),
                   MixedTaskLinear(4, 3, "sin(1.7*x) + x**3 + x", [1], basis="orthonormal"),
                   TaskMLP(4, [5], 3, "sin(1.7*x) + x", basis="auto", norm="layer")]
        for module in modules:
            out = module(torch.empty(2, 7, 4))
            assert out.shape == (2, 7, 3) and out.device.type == "meta"
        with pytest.raises(ValueError, match="has torch.float32 parameters but got a torch.float64 input"):
            modules[0](torch.empty(2, 4, dtype=D))


@pytest.mark.parametrize("spelling", ["leaky_relu", "leaky-relu", "LeakyReLU", " Leaky_ReLU "])
def test_activation_names_ignore_case_spaces_hyphens_and_underscores(spelling):
    assert isinstance(make_activation(spelling), torch.nn.LeakyReLU)


def test_an_unknown_activation_name_is_refused_with_the_names():
    with pytest.raises(ValueError, match="unknown activation 'leaky'; use one of relu, sigmoid"):
        make_activation("leaky")
