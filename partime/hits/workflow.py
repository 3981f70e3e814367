"""End-to-end HiTS runs shared by ``partime train hits``, ``partime bench hits`` and the
examples: load a system's data, train and cross-validate a hierarchy, score it on test data."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from partime.comm import Comm, SerialComm
from partime.hits.config import HierarchyConfig, chunk_trajectories
from partime.hits.coupling import cross_validate_range, forecast_mse
from partime.hits.hierarchy import Hierarchy
from partime.hits.training import train_hierarchy
from partime.options import option
from partime.steppers.base import Propagator
from partime.steppers.jacobian_fit import (
    JacobianFitConfig,
    fit_errors,
    fit_flow_map,
    propagator_targets,
)
from partime.steppers.neural import ACTIVATIONS, FlowMapMLP


@dataclasses.dataclass(frozen=True)
class DataSizes:
    """Trajectories per split (None = the paper's full split) and points per trajectory."""

    n_train: int | None = option(None, "training trajectories (default: the paper's split)")
    n_val: int | None = option(None, "validation trajectories (default: the paper's split)")
    n_test: int | None = option(None, "test trajectories (default: the paper's split)")
    n_points: int | None = option(None, "states per trajectory (default: all)")


def load_split(
    system: str, split: str, n_traj: int | None, n_points: int | None, comm: Comm | None = None
) -> Tensor:
    """``make_dataset`` on every rank: root generates (and caches) first, the others then read."""
    from partime.data import make_dataset

    comm = comm or SerialComm()
    data = make_dataset(system, split, n_traj=n_traj, n_points=n_points) if comm.is_root else None
    comm.barrier()
    return (
        data if data is not None else make_dataset(system, split, n_traj=n_traj, n_points=n_points)
    )


def train_system(
    system: str,
    config: HierarchyConfig,
    sizes: DataSizes | None = None,
    *,
    comm: Comm | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
    on_ray: bool = False,
    workers: int | None = None,
    address: str | None = None,
) -> Hierarchy | None:
    """Train a hierarchy on ``system``'s data and select its range by cross-validation on the
    validation split. Returns the hierarchy on the root rank, None elsewhere.

    ``on_ray``: the models are trained on ``workers`` Ray tasks (None: one per CPU; local Ray,
    or the cluster at ``address``) instead of the ranks of ``comm``."""
    from partime.data import DATASET_SPECS

    if system not in DATASET_SPECS:
        raise ValueError(f"unknown system {system!r}; known: {', '.join(DATASET_SPECS)}")
    comm, sizes = comm or SerialComm(), sizes or DataSizes()
    train = load_split(system, "train", sizes.n_train, sizes.n_points, comm)
    val = load_split(system, "val", sizes.n_val, sizes.n_points, comm)
    dt = DATASET_SPECS[system].dt
    if on_ray:
        from partime.hits.ray_training import train_hierarchy_ray

        hierarchy = train_hierarchy_ray(
            train, dt, config, workers=workers, address=address, val_data=val,
            system=system, checkpoint_dir=checkpoint_dir,
        )  # fmt: skip
    else:
        hierarchy = train_hierarchy(
            train, dt, config, val_data=val, comm=comm, system=system,
            checkpoint_dir=checkpoint_dir, progress=progress,
        )  # fmt: skip
    if hierarchy is not None:
        hierarchy.selected = cross_validate_range(hierarchy, val)
    return hierarchy


@dataclasses.dataclass(frozen=True)
class Score:
    """Test MSE and forecast wall time (s) of each single-scale model and of the coupling."""

    steps: tuple[int, ...]
    single_mse: tuple[float, ...]
    single_time: tuple[float, ...]
    multiscale_mse: float
    multiscale_time: float
    selected: tuple[int, int]

    @property
    def best_single(self) -> float:
        return min(self.single_mse)


def _timed_mse(hierarchy: Hierarchy, data: Tensor, repeats: int = 2) -> tuple[float, float]:
    """MSE and the best wall time of ``repeats`` forecasts (one run is noisy on a busy machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        mse = forecast_mse(hierarchy, data)
        times.append(time.perf_counter() - start)
    return mse, min(times)


def score(hierarchy: Hierarchy, test: Tensor) -> Score:
    """MSE over all test steps of every model alone (rolled out, interpolated) and of the
    selected multiscale coupling (Algorithm 1), with their wall times (best of two runs)."""
    singles = [_timed_mse(hierarchy.subset(i, i), test) for i in range(len(hierarchy))]
    multi_mse, multi_time = _timed_mse(hierarchy.active(), test)
    selected = hierarchy.selected or (0, len(hierarchy) - 1)
    return Score(
        tuple(hierarchy.steps),
        tuple(m for m, _ in singles),
        tuple(t for _, t in singles),
        multi_mse,
        multi_time,
        tuple(selected),
    )


def train_pint_hierarchy(
    config: HierarchyConfig, n_train: int = 128, n_val: int = 32, system: str = "lorenz"
) -> Hierarchy:
    """A float64 hierarchy for use as a parareal coarse propagator: trained (serially) on the
    system's trajectories cut into windows of the largest step (``chunk_trajectories``), the
    whole range selected. Float64 so the coarse corrections G(U^k) − G(U^{k−1}) do not carry
    float32 rounding (~1e−6 on Lorenz), which would stall parareal far above 1e−10."""
    from partime.data import DATASET_SPECS

    window = config.train.n_forward * config.steps[-1] + 1
    train = chunk_trajectories(load_split(system, "train", n_train, None), window)
    val = chunk_trajectories(load_split(system, "val", n_val, None), window)
    hierarchy = train_hierarchy(
        train, DATASET_SPECS[system].dt, config, val_data=val, system=system
    )
    for model in hierarchy.models:
        model.double()
    return hierarchy


# Every FIT_STRIDE-th state of the training trajectories is a fit state (the strides measured:
# docs/notes/hits-cpu-budget.md).
FIT_STRIDE = 320


def fit_pint_hierarchy(
    reference: Propagator,
    steps: Sequence[int],
    dt: float,
    fit: JacobianFitConfig | None = None,
    *,
    widths: Sequence[int] = (128, 128, 128),
    activation: str = "tanh",
    states: Tensor | None = None,
    system: str = "lorenz",
    progress: bool = False,
) -> Hierarchy:
    """A float64 hierarchy whose model of step ``steps[i]·dt`` is fitted to ``reference`` (the
    parareal fine propagator) over that interval: values and Jacobians at ``states`` (N, dim),
    by default every ``FIT_STRIDE``-th state of 128 training trajectories of ``system``.
    Matching the fine Jacobian is what makes parareal with this coarse converge in few
    iterations (``partime.steppers.jacobian_fit``). The whole range is selected."""
    fit = fit or JacobianFitConfig()
    if states is None:
        states = load_split(system, "train", 128, None)[:, ::FIT_STRIDE]
        states = states.reshape(-1, reference.dim)
    states, models = states.double(), []
    for index, step in enumerate(steps):
        targets = propagator_targets(reference, states, step * dt)
        with torch.random.fork_rng():  # seeded init without touching the caller's global RNG
            torch.manual_seed(fit.seed + index)
            model = FlowMapMLP(reference.dim, widths, normalize=True, activation=activation)
        model.double()
        fit_flow_map(model, targets, dataclasses.replace(fit, seed=fit.seed + index), progress)
        models.append(model)
    return Hierarchy(models, list(steps), dt, system, selected=(0, len(models) - 1))


@dataclasses.dataclass(frozen=True)
class CoarseConfig:
    """A parareal coarse fitted to a fine propagator (``partime train coarse``): one flow map
    spanning ``slice_length``, fitted at every ``stride``-th state of ``n_train`` training
    trajectories of ``system``, its errors reported on ``n_val`` validation trajectories."""

    system: str = option(help="system whose trajectory states are fitted at (e.g. lorenz)")
    fine: str = option(help="the fine propagator, e.g. rk4:5e-4")
    slice_length: float = option(help="time one model step spans (a parareal slice)")
    widths: tuple[int, ...] = option((128, 128, 128), "hidden widths of the MLP")
    activation: str = option("tanh", "nonlinearity of the MLP", choices=tuple(ACTIVATIONS))
    n_train: int = option(128, "training trajectories whose states are fitted at")
    n_val: int = option(32, "validation trajectories the errors are reported on")
    stride: int = option(FIT_STRIDE, "use every STRIDE-th state of each trajectory")

    def __post_init__(self) -> None:
        from partime.data import DATASET_SPECS

        if self.system not in DATASET_SPECS:
            raise ValueError(f"unknown system {self.system!r}; known: {', '.join(DATASET_SPECS)}")
        if min(self.stride, self.n_train, self.n_val) < 1:
            raise ValueError(
                f"need stride, n_train and n_val >= 1, got {self.stride}, {self.n_train}, "
                f"{self.n_val}"
            )
        self.model_step  # noqa: B018  (validates slice_length)

    @property
    def dt(self) -> float:
        from partime.data import DATASET_SPECS

        return DATASET_SPECS[self.system].dt

    @property
    def model_step(self) -> int:
        """The slice length in data steps dt; ValueError unless it is a whole number."""
        step = round(self.slice_length / self.dt)
        if step < 1 or abs(step * self.dt - self.slice_length) > 1e-9 * max(1.0, self.slice_length):
            raise ValueError(
                f"slice_length {self.slice_length} is not a whole number of data steps dt={self.dt}"
            )
        return step


@dataclasses.dataclass(frozen=True)
class CoarseFit:
    """A fitted coarse: the hierarchy (one model) and its rms value and Jacobian errors on the
    validation states."""

    hierarchy: Hierarchy
    value_rms: float
    jacobian_rms: float


def fit_coarse(
    config: CoarseConfig, fit: JacobianFitConfig | None = None, progress: bool = False
) -> CoarseFit:
    """Fit the coarse ``config`` describes (``fit_pint_hierarchy``) and measure it."""
    from partime.dynamics import get_system
    from partime.pint.spec import propagator_from_spec

    fine = propagator_from_spec(config.fine, get_system(config.system))
    train = load_split(config.system, "train", config.n_train, None)[:, :: config.stride]
    val = load_split(config.system, "val", config.n_val, None)[:, :: config.stride]
    hierarchy = fit_pint_hierarchy(
        fine, (config.model_step,), config.dt, fit, widths=config.widths,
        activation=config.activation, states=train.reshape(-1, fine.dim), system=config.system,
        progress=progress,
    )  # fmt: skip
    targets = propagator_targets(fine, val.reshape(-1, fine.dim).double(), config.slice_length)
    return CoarseFit(hierarchy, *fit_errors(hierarchy.models[0], targets))
