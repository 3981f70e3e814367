"""The ODE-Net convergence test (Queiruga et al.): a vector field G trained inside Euler, midpoint
or RK4 (3/8 rule) on pendulum pairs Δt apart, then integrated with each scheme over a sweep of h.

The claims: the Euler-trained G's error has a sharp dip at h = Δt (>= 100x below its h -> 0
error) and does not converge; the RK-trained G converges to a model-error floor under RK4 and
midpoint (and at first order under Euler).

    python examples/convergence_test.py                      # Δt = 0.1 and 0.02, full budget
    python examples/convergence_test.py --quick --dt-data 0.1
"""

from __future__ import annotations

import argparse
import json

import torch

from partime.io import atomic_write
from partime.nets.convergence import ConvergenceConfig, run_convergence_test
from partime.plot.nets import plot_convergence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dt-data", default="0.1,0.02", help="comma-separated Δt (0.1,0.02)")
    parser.add_argument("--schemes", default="euler,midpoint,rk38", help="training schemes")
    parser.add_argument("--quick", action="store_true", help="the CLI's --quick preset")
    parser.add_argument("--seed", type=int, default=0, help="seed of G and the batches")
    parser.add_argument("--out", default="results/convergence_test.json", help="results JSON")
    parser.add_argument("--plot", default="docs/figures/convergence_test_dt{dt}.png",
                        help="figure per Δt ({dt} is replaced)")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    for dt in (float(v) for v in args.dt_data.split(",")):
        fields = {"dt_data": dt, "schemes": tuple(args.schemes.split(",")), "seed": args.seed}
        config = ConvergenceConfig.quick(**fields) if args.quick else ConvergenceConfig(**fields)
        result = run_convergence_test(config, progress=not args.no_progress)
        print(f"Δt = {dt}: {config.iterations} Adam iterations, batch {config.batch_size}, "
              f"{config.n_samples} pairs")  # fmt: skip
        print(result.table())
        print("\n".join(result.summary_lines()))
        print(f"wrote {plot_convergence(result, args.plot.format(dt=dt))}")
        results[str(dt)] = result.to_dict()
    with atomic_write(args.out, "w") as handle:
        json.dump(results, handle, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
