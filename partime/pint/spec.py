"""Propagators from short text specs: ``rk4:0.01``, ``SCHEME:DT[:MODE]``, ``etdrk4:DT``,
``neural:PATH``, and kinds that packages above register (``hits:PATH``). MODE picks the RK
path: ``auto`` (default), ``eager`` or ``compiled`` (the integrators' compiled block path).

The spec is how the command line (``--fine``/``--coarse``) and configs name a propagator.
Every kind validates its argument here, on every rank, before any communication starts.
Other kinds plug in without this module knowing them: ``register_propagator_kind`` at run
time, or an entry point in the group ``partime.propagators`` (how ``partime.hits`` adds
``hits:``), loaded on first use.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from partime.dynamics.base import VectorField
from partime.steppers.base import Propagator

# the spec forms, for error messages and ``--help``
SPEC_HELP = (
    "rk4:DT | SCHEME:DT[:auto|eager|compiled] (any Butcher tableau name) | etdrk4:DT (ks) | "
    "neural:PATH | hits:PATH"
)
ENTRY_POINT_GROUP = "partime.propagators"
# RK MODE suffix -> the integrators' ``fast`` flag
RK_MODES: dict[str, bool | None] = {"auto": None, "eager": False, "compiled": True}

Builder = Callable[[str, "VectorField | None", "int | None"], Propagator]


def _positive_step(arg: str, spec_kind: str) -> float:
    try:
        step = float(arg)
    except ValueError:
        raise ValueError(f"{spec_kind}:{arg}: the step {arg!r} is not a number") from None
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"{spec_kind}:{arg}: the step must be a positive number, got {step}")
    return step


def _needs_field(system: VectorField | None, kind: str) -> VectorField:
    if system is None:
        raise ValueError(
            f"the {kind!r} propagator integrates a vector field, but the system is 'none' "
            "(data-driven); use a neural:PATH or hits:PATH propagator instead"
        )
    return system


def existing_file(arg: str, kind: str) -> Path:
    path = Path(arg).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{kind}:{arg}: no such model file: {str(path)!r}")
    return path


def _rk(scheme: str) -> Builder:
    def build(arg: str, system: VectorField | None, dim: int | None) -> Propagator:
        from partime.steppers import RKPropagator

        step, _, mode = arg.partition(":")
        if mode and mode not in RK_MODES:
            raise ValueError(
                f"{scheme}:{arg}: unknown RK mode {mode!r}; choose one of {', '.join(RK_MODES)}"
            )
        field = _needs_field(system, scheme)
        fast = RK_MODES[mode or "auto"]
        return RKPropagator(field, _positive_step(step, scheme), scheme=scheme, fast=fast)

    return build


def _etdrk4(arg: str, system: VectorField | None, dim: int | None) -> Propagator:
    from partime.steppers import SpectralPropagator

    field = _needs_field(system, "etdrk4")
    if not hasattr(field, "linear"):
        raise ValueError(
            f"etdrk4 needs a semilinear spectral system such as 'ks', got {field.name!r}"
        )
    return SpectralPropagator(field, _positive_step(arg, "etdrk4"))


def _neural(arg: str, system: VectorField | None, dim: int | None) -> Propagator:
    from partime.steppers import NeuralStepper

    return NeuralStepper.load(existing_file(arg, "neural"), dim=dim)


_REGISTERED: dict[str, Builder] = {}


def register_propagator_kind(kind: str, builder: Builder) -> None:
    """Make ``KIND:ARG`` specs build ``builder(arg, system, dim)``."""
    if not kind.isidentifier():
        raise ValueError(f"a propagator kind must be an identifier, got {kind!r}")
    _REGISTERED[kind] = builder


def _from_entry_point(entry: EntryPoint) -> Builder:
    def build(arg: str, system: VectorField | None, dim: int | None) -> Propagator:
        return entry.load()(arg, system, dim)

    return build


def spec_kinds() -> dict[str, Builder]:
    """Every spec kind -> its builder: one RK kind per Butcher tableau, ETDRK4, neural, then the
    kinds of entry points and of ``register_propagator_kind``."""
    from partime.integrators import TABLEAUS

    kinds: dict[str, Builder] = {name: _rk(name) for name in TABLEAUS}
    kinds.update({"etdrk4": _etdrk4, "neural": _neural})
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        kinds.setdefault(entry.name, _from_entry_point(entry))
    kinds.update(_REGISTERED)
    return kinds


def propagator_from_spec(
    spec: str, system: VectorField | None, dim: int | None = None
) -> Propagator:
    """Build the propagator ``spec`` names for ``system`` (None: data-driven, no vector field).

    Raises ValueError for an unknown kind, a bad step, or a state dimension other than
    ``dim`` (when given); FileNotFoundError for a missing model file.
    """
    kind, sep, arg = spec.partition(":")
    if not sep or not arg:
        raise ValueError(f"propagator spec {spec!r} is not KIND:ARG ({SPEC_HELP})")
    kinds = spec_kinds()
    if kind not in kinds:
        raise ValueError(
            f"unknown propagator kind {kind!r} in {spec!r}; known kinds: {', '.join(sorted(kinds))}"
        )
    prop = kinds[kind](arg, system, dim)
    if dim is not None and prop.dim != dim:
        raise ValueError(f"propagator {spec!r} has state dimension {prop.dim}, expected {dim}")
    return prop
