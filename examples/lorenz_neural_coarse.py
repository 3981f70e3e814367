"""Train a neural flow map for Lorenz to serve as parareal's coarse propagator.

Draws states on the attractor, integrates short RK4 windows of ``n_forward`` steps of size
``--step`` (the HiTS training windows), trains ``FlowMapMLP(3)`` with the HiTS multi-step loss
for ``--time-budget`` seconds on one core and saves a ``NeuralStepper`` file that
``partime solve lorenz --coarse neural:PATH`` loads, e.g.

    python examples/lorenz_neural_coarse.py --out lorenz_coarse.pt
    partime solve lorenz --t-end 2.56 --slices 32 --fine rk4:5e-4 \\
        --coarse neural:lorenz_coarse.pt --batch 16 --compare-serial --plot lorenz.png
"""

from __future__ import annotations

import argparse
import time

import torch

from partime.data.initial import initial_states
from partime.dynamics import Lorenz
from partime.steppers import FlowMapMLP, NeuralStepper, RKPropagator, train_flow_map

N_FORWARD = 5  # steps per training window (HiTS)
DATA_DT = 5e-4  # RK4 step that makes the training data (the bench's fine step)


def make_windows(n_traj: int, step: float, seed: int) -> torch.Tensor:
    """(n_traj, N_FORWARD + 1, 3) float64 RK4 windows of ``step`` from attractor states."""
    lorenz = Lorenz()
    x0 = initial_states(lorenz, n_traj, seed)  # spun up onto the attractor
    fine = RKPropagator(lorenz, DATA_DT)
    return fine.trajectory(x0, 0.0, N_FORWARD * step, round(step / DATA_DT)).transpose(0, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="lorenz_coarse.pt", help="NeuralStepper file to write")
    parser.add_argument("--step", type=float, default=0.04, help="flow-map time step")
    parser.add_argument("--n-train", type=int, default=4096, help="training windows")
    parser.add_argument("--time-budget", type=float, default=30.0, help="training seconds")
    parser.add_argument("--seed", type=int, default=1, help="seed of the training states")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    parser.add_argument("--batch-size", type=int, default=1024, help="windows per Adam step")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)

    start = time.perf_counter()
    data = make_windows(args.n_train, args.step, args.seed)
    val = make_windows(512, args.step, args.seed + 1000)
    model = FlowMapMLP(3, normalize=True)  # Lorenz states are O(10): scale them to O(1)
    history = train_flow_map(
        model,
        data.float(),
        1,
        val_data=val.float(),
        time_budget=args.time_budget,
        val_every=200,
        lr=args.lr,
        batch_size=args.batch_size,
    )
    # float64: parareal's correction G(U^k) - G(U^{k-1}) must resolve differences far below
    # float32 rounding, or the iteration stalls once the residual reaches ~1e-6.
    stepper = NeuralStepper(model, args.step, system="lorenz", dt=DATA_DT, dtype=torch.float64)
    stepper.save(args.out)
    with torch.no_grad():
        err = (stepper(val[:, 0], 0.0, args.step) - val[:, 1]).abs().max()
    print(
        f"trained {len(history)} epochs in {time.perf_counter() - start:.1f} s, final loss "
        f"{history[-1]:.3e}, one-step max error on validation {float(err):.3e}; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
