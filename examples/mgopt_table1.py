"""Reproduce MG/OPT's Table 1 (circles, L = 1, 2, 4, 6, 8), Table 2, the depth independence
of Fig. 6 and a minibatch row (digits, Algorithm 2), with the Fig. 5/6 style figure.

    python examples/mgopt_table1.py                       # 5 seeds, depth 2048 (~20 min, 1 core)
    python examples/mgopt_table1.py --seeds 2 --depth 512 --depths 128,256

It is ``partime bench mgopt`` with the paper's full set switched on and the figure written to
docs/figures/mgopt_table1.png; every option of the bench is accepted.
"""

from __future__ import annotations

import argparse

from partime.bench import mgopt

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mgopt.add_arguments(parser)
    parser.set_defaults(
        table2=True, depths="512,1024", plot="docs/figures/mgopt_table1.png",
        out="results/mgopt_table1.json",
    )  # fmt: skip
    raise SystemExit(mgopt.run(parser.parse_args()))
