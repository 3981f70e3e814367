"""Translate a ComponentSystem's ``components`` into C statements on vector types.

``components(t, *xs)`` runs once on torch.fx proxies; the elementwise operations it records
become C statements on V (lanes of the state dtype) and TV (lanes of float64 times). The
arithmetic follows PyTorch's: state-dtype constants as exact hex literals, ``x ** 2`` as
``x * x`` (ATen's rewrites), libm per lane for transcendental functions. What it does not know
(value-dependent Python control flow, reductions, numpy or ``math`` calls on the state)
raises ``KernelUnsupportedError``, and the integrator runs the field eagerly.
"""

from __future__ import annotations

import operator
from typing import NamedTuple

import torch
import torch.fx as fx
from torch.fx.proxy import GraphAppendingTracer, Proxy

from partime.dynamics.base import ComponentSystem

_BINARY = {"add": "+", "sub": "-", "subtract": "-", "mul": "*", "multiply": "*", "div": "/"}
_BINARY.update(true_divide="/", divide="/")
_OPERATORS = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/"}
_OPERATORS_BY_SYMBOL = {symbol: op for op, symbol in _OPERATORS.items()}
# libm functions by torch name (elementwise, one argument)
_LIBM = {name: name for name in ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh")}
_LIBM.update({name: name for name in ("tanh", "asinh", "acosh", "atanh", "exp", "exp2")})
_LIBM.update({name: name for name in ("expm1", "log", "log2", "log10", "log1p", "sqrt", "erf")})
_LIBM.update(abs="fabs", erfc="erfc")
# torch's own rewrites of pow(x, c) (ATen's pow_tensor_scalar kernels)
_POW = {2.0: "{a} * {a}", 3.0: "{a} * {a} * {a}", -1.0: "1 / {a}", -2.0: "1 / ({a} * {a})"}
_CASTS = {torch.as_tensor, "to"}
_IDENTITY = {"clone", "detach", "contiguous"}
_LIKE = {torch.zeros_like: 0.0, torch.ones_like: 1.0}


class KernelUnsupportedError(Exception):
    """A vector field whose ``components`` the kernel generator cannot translate."""


class _Value(NamedTuple):
    kind: str  # "state" (V: lanes of the state dtype), "time" (TV: lanes of doubles),
    # "const" (a Python number) or "meta" (a dtype or device, only as a cast argument)
    code: str
    number: float = 0.0


def trace_components(system: ComponentSystem) -> fx.Graph:
    """The graph of ``system.components(t, x0, ..., x{dim-1})`` on fx proxies."""
    graph = fx.Graph()
    tracer = GraphAppendingTracer(graph)
    t = Proxy(graph.placeholder("t"), tracer)
    xs = [Proxy(graph.placeholder(f"x{i}"), tracer) for i in range(system.dim)]
    try:
        out = system.components(t, *xs)
    except Exception as err:  # noqa: BLE001 - any failure means "not traceable"
        raise KernelUnsupportedError(
            f"tracing components failed ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(out, tuple | list) or len(out) != system.dim:
        raise KernelUnsupportedError(f"components returned {type(out).__name__}, not {system.dim}")
    graph.output(tuple(o.node if isinstance(o, Proxy) else o for o in out))
    return graph


class _Emitter:
    """Translates a traced graph into C statements on V (state) and TV (time) values."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.libm_suffix = "" if dtype == torch.float64 else "f"  # sinf, expf, ... for float
        self.values: dict[fx.Node, _Value] = {}
        self.lines: list[str] = []
        self.helpers: dict[str, str] = {}

    def operand(self, arg: object) -> _Value:
        if isinstance(arg, fx.Node):
            return self.values[arg]
        if isinstance(arg, bool) or arg is None:
            raise KernelUnsupportedError(f"operand {arg!r}")
        if isinstance(arg, int | float):
            return _Value("const", "", float(arg))
        if isinstance(arg, torch.Tensor) and arg.numel() == 1 and not arg.is_complex():
            return _Value("const", "", float(arg.item()))
        if isinstance(arg, torch.dtype | torch.device):
            return _Value("meta", str(arg))
        raise KernelUnsupportedError(f"operand {type(arg).__name__} {arg!r}")

    def code(self, value: _Value, kind: str) -> str:
        """``value`` as C of ``kind``; constants stay scalars (broadcast by the vector ops)."""
        if value.kind == "const":
            literal = float(value.number).hex()
            return f"((T){literal})" if kind == "state" else f"({literal})"
        if value.kind == "time" and kind == "state":
            return f"TIME_TO_STATE({value.code})"
        return value.code

    def vector(self, value: _Value, kind: str) -> str:
        """``value`` as a full vector of ``kind`` (for lane-wise helper arguments)."""
        if value.kind == "const":
            return f"(({'V' if kind == 'state' else 'TV'}){{0}} + {self.code(value, kind)})"
        return self.code(value, kind)

    def emit(self, node: fx.Node, kind: str, expr: str) -> _Value:
        name = f"v{len(self.lines)}"
        self.lines.append(f"    {'V' if kind == 'state' else 'TV'} {name} = {expr};")
        return _Value(kind, name)

    def binary(self, node: fx.Node, op: str, a: _Value, b: _Value) -> _Value:
        if "meta" in (a.kind, b.kind):
            raise KernelUnsupportedError(node.format_node())
        if a.kind == b.kind == "const":
            return _Value("const", "", _OPERATORS_BY_SYMBOL[op](a.number, b.number))
        kind = "state" if "state" in (a.kind, b.kind) else "time"
        return self.emit(node, kind, f"{self.code(a, kind)} {op} {self.code(b, kind)}")

    def lanewise(self, node: fx.Node, function: str, args: list[_Value]) -> _Value:
        if any(a.kind == "meta" for a in args) or all(a.kind == "const" for a in args):
            raise KernelUnsupportedError(node.format_node())
        kind = "state" if any(a.kind == "state" for a in args) else "time"
        helper = f"{function}_{kind}"
        if helper not in self.helpers:
            vtype = "V" if kind == "state" else "TV"
            cname = function + (self.libm_suffix if kind == "state" else "")
            params = ", ".join(f"{vtype} a{i}" for i in range(len(args)))
            lanes = ", ".join(f"a{i}[l]" for i in range(len(args)))
            self.helpers[helper] = (
                f"INLINE {vtype} {helper}({params}) {{\n    {vtype} r;\n"
                f"    for (int l = 0; l < LANES; l++) r[l] = {cname}({lanes});\n"
                "    return r;\n}"
            )
        return self.emit(node, kind, f"{helper}({', '.join(self.vector(a, kind) for a in args)})")

    def power(self, node: fx.Node, base: _Value, exponent: _Value) -> _Value:
        if exponent.kind != "const" or base.kind not in ("state", "time"):
            return self.lanewise(node, "pow", [base, exponent])
        e = exponent.number
        if e == 0.0:
            return _Value("const", "", 1.0)
        if e == 1.0:
            return base
        if e in (0.5, -0.5):
            root = self.lanewise(node, "sqrt", [base])
            return root if e == 0.5 else self.binary(node, "/", _Value("const", "", 1.0), root)
        if e in _POW:
            return self.emit(node, base.kind, _POW[e].format(a=base.code))
        return self.lanewise(node, "pow", [base, exponent])

    def unary(self, node: fx.Node, name: str, a: _Value) -> _Value:
        if name in _LIBM:
            return self.lanewise(node, _LIBM[name], [a])
        if a.kind not in ("state", "time"):
            raise KernelUnsupportedError(node.format_node())
        one = _Value("const", "", 1.0)
        if name == "neg":
            return self.emit(node, a.kind, f"-{a.code}")
        if name == "square":
            return self.emit(node, a.kind, f"{a.code} * {a.code}")
        if name == "reciprocal":
            return self.binary(node, "/", one, a)
        if name == "rsqrt":
            return self.binary(node, "/", one, self.lanewise(node, "sqrt", [a]))
        if name == "sigmoid":
            exp = self.lanewise(node, "exp", [self.emit(node, a.kind, f"-{a.code}")])
            return self.binary(node, "/", one, self.binary(node, "+", one, exp))
        raise KernelUnsupportedError(node.format_node())

    def cast(self, node: fx.Node, a: _Value, dtype: _Value, state_dtype: torch.dtype) -> _Value:
        """``torch.as_tensor(v, dtype=)`` / ``v.to(dtype)``: to the state type, or a no-op."""
        target = dtype.code if dtype.kind == "meta" else None
        if a.kind not in ("state", "time") or target is None:
            raise KernelUnsupportedError(node.format_node())
        if target in ("dtype", str(state_dtype)):
            return self.emit(node, "state", self.code(a, "state"))
        if target == str(torch.float64) and a.kind == "time":
            return a
        raise KernelUnsupportedError(node.format_node())

    def call(self, node: fx.Node, state_dtype: torch.dtype) -> _Value:
        target, kwargs = node.target, dict(node.kwargs)
        name = target if isinstance(target, str) else getattr(target, "__name__", "")
        is_torch = isinstance(target, str) or getattr(torch, name, None) is target
        if target is getattr and node.args[1] in ("dtype", "device"):
            return _Value("meta", "dtype" if node.args[1] == "dtype" else "device")
        args = [self.operand(a) for a in node.args]
        if target in _LIKE or target is torch.full_like:
            fill = args[1] if target is torch.full_like else _Value("const", "", _LIKE[target])
            if kwargs or fill.kind != "const":
                raise KernelUnsupportedError(node.format_node())
            return fill
        if target in _CASTS:
            kwargs.pop("device", None)
            dtype = kwargs.pop("dtype", node.args[1] if len(args) > 1 else None)
            if kwargs or dtype is None:
                raise KernelUnsupportedError(f"{node.format_node()} (give the dtype, e.g. x.dtype)")
            return self.cast(node, args[0], self.operand(dtype), state_dtype)
        alpha = kwargs.pop("alpha", None) if name in ("add", "sub") else None
        if kwargs.pop("rounding_mode", None) is not None or kwargs:
            raise KernelUnsupportedError(node.format_node())
        if target in _OPERATORS or (is_torch and name in _BINARY):
            op = _OPERATORS.get(target) or _BINARY[name]
            b = args[1] if alpha is None else self.binary(node, "*", self.operand(alpha), args[1])
            return self.binary(node, op, args[0], b)
        if target is operator.abs:
            return self.unary(node, "abs", args[0])
        if target is operator.neg:
            return self.unary(node, "neg", args[0])
        if target is operator.pos:
            return args[0]
        if target is operator.pow or (is_torch and name == "pow"):
            return self.power(node, args[0], args[1])
        if is_torch and name in _IDENTITY and len(args) == 1:
            return args[0]
        if is_torch and len(args) == 1:
            return self.unary(node, name, args[0])
        raise KernelUnsupportedError(node.format_node())

    def output(self, value: _Value) -> str:
        if value.kind == "const":
            return self.vector(value, "state")
        if value.kind == "meta":
            raise KernelUnsupportedError("components returned a dtype or device")
        return self.code(value, "state")


def rhs_source(graph: fx.Graph, dim: int, dtype: torch.dtype) -> tuple[str, str, int]:
    """(helpers, body of ``rhs``, operation count) for a traced ``components`` graph."""
    emitter = _Emitter(dtype)
    outputs: tuple = ()
    for node in graph.nodes:
        if node.op == "placeholder":
            is_time = node.target == "t"
            emitter.values[node] = _Value("time" if is_time else "state", node.target)
        elif node.op in ("call_function", "call_method"):
            emitter.values[node] = emitter.call(node, dtype)
        elif node.op == "output":
            outputs = node.args[0]
        else:
            raise KernelUnsupportedError(node.format_node())
    lines = list(emitter.lines)
    lines += [
        f"    dx[{c}] = {emitter.output(emitter.operand(out))};" for c, out in enumerate(outputs)
    ]
    unpack = [f"    const V x{c} = x[{c}];" for c in range(dim)]
    return "\n\n".join(emitter.helpers.values()), "\n".join(unpack + lines), len(emitter.lines)
