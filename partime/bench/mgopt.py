"""MG/OPT Table 1 on circles (V-cycles, U_c, U per level count) beside the paper's numbers.

Every run trains the same data (data seed 0) from glorot weights of one init seed until the
validation accuracy target; medians are over seeds, and the ratios to one level are taken per
seed, then the median. Wall times are the training time of the runs (evaluations excluded),
measured side by side in this process. Optional: Table 2's setups, depth independence
(the paper's Fig. 6) and a minibatch row on digits (Algorithm 2, stand-in for MNIST).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from partime.mgopt.setup import TABLE1_PAPER, TABLE2_PAPER, VCycleSetup, table1_setup

PAPER_V_RATIOS = {2: 2.97, 4: 7.9, 6: 13.6, 8: 19.0}  # V(1)/V(L), Table 1 circles


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, default=5, help="init seeds 0..N-1")
    parser.add_argument("--depth", type=int, default=2048, help="layers of the finest network")
    parser.add_argument("--levels", default="1,2,4,6,8", help="level counts of Table 1")
    parser.add_argument("--table2", action="store_true", help="also Table 2's 8-level setups")
    parser.add_argument(
        "--depths", default="", help="depth independence: 8 levels at these depths (512,1024)"
    )
    parser.add_argument("--no-minibatch", action="store_true", help="skip the digits row")
    parser.add_argument("--max-vcycles", type=int, default=2000, help="cap per run")
    parser.add_argument("--quick", action="store_true", help="depth 64, 2 seeds, L = 1, 2, 4")
    parser.add_argument("--out", default=None, help="JSON file with every run's records")
    parser.add_argument("--plot", default=None, help="PNG: Fig. 5 style curves of seed 0")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _runs(data: str, depth: int, setups: list[str], seeds: int, max_vcycles: int, log):
    """{setup: [history per seed]} trained one after another (side by side in time)."""
    from partime.mgopt.presets import run_preset

    runs: dict[str, list] = {setup: [] for setup in setups}
    for seed in range(seeds):
        for setup in setups:
            _, history = run_preset(data, depth, setup, seed=seed, max_vcycles=max_vcycles)
            runs[setup].append(history)
            s = history.summary()
            log(
                f"  {data} depth {depth} seed {seed} {setup}: {s['v_cycles']} V-cycles, "
                f"U {s['work_units']:g}, {s['wall_s']:.1f} s, {s['stopped']}"
            )
    return runs


def _rows(runs: dict[str, list], reference: str) -> list[dict]:
    """Per setup: medians of V, U, wall and of the per-seed ratios to ``reference``."""
    base = runs[reference]
    rows = []
    for setup, histories in runs.items():
        sums = [h.summary() for h in histories]
        pairs = list(zip([b.summary() for b in base], sums, strict=True))
        rows.append({
            "setup": setup, "levels": VCycleSetup.parse(setup).levels,
            "v_cycles": _median([s["v_cycles"] for s in sums]),
            "work_per_cycle": sums[0]["work_per_cycle"],
            "work_per_cycle_eq10": float(VCycleSetup.parse(setup).work_units()),
            "work_units": _median([s["work_units"] for s in sums]),
            "wall_s": _median([s["wall_s"] for s in sums]),
            "v_ratio": _median([b["v_cycles"] / s["v_cycles"] for b, s in pairs]),
            "u_ratio": _median([b["work_units"] / s["work_units"] for b, s in pairs]),
            "wall_ratio": _median([b["wall_s"] / s["wall_s"] for b, s in pairs]),
            "reached": sum(s["stopped"] == "target" for s in sums), "seeds": len(sums),
            "per_seed_v": [s["v_cycles"] for s in sums],
        })  # fmt: skip
    return rows


_HEAD = (
    f"{'L':>2} {'setup':<24}{'V':>7}{'paper':>6}{'U_c':>8}{'eq10':>8}{'U':>8}{'paper':>6}"
    f"{'V1/V':>7}{'paper':>6}{'U1/U':>7}{'paper':>6}{'wall s':>8}{'wall1/':>7}{'hit':>5}"
)


def _format(row: dict, paper: tuple[int, int] | None, paper_v_ratio: float | None) -> str:
    pv, pu = paper or (float("nan"), float("nan"))
    pr = pu and (paper and TABLE1_PAPER[1]["circles"][1] / pu) or float("nan")
    return (
        f"{row['levels']:>2} {row['setup']:<24}{row['v_cycles']:>7g}{pv:>6g}"
        f"{row['work_per_cycle']:>8.4g}{row['work_per_cycle_eq10']:>8.4g}{row['work_units']:>8.4g}"
        f"{pu:>6g}{row['v_ratio']:>7.2f}{paper_v_ratio or float('nan'):>6.3g}"
        f"{row['u_ratio']:>7.2f}{pr:>6.2f}{row['wall_s']:>8.1f}{row['wall_ratio']:>7.2f}"
        f"{row['reached']:>3}/{row['seeds']}"
    )


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(1)
    depth, seeds = (64, 2) if args.quick else (args.depth, args.seeds)
    level_counts = (1, 2, 4) if args.quick else tuple(int(v) for v in args.levels.split(","))
    depths = [int(v) for v in args.depths.split(",") if v]
    # every argument checked before any run
    for count in level_counts + ((8,) if args.table2 else ()):
        table1_setup(count).check_depth(depth)
    for d in depths:
        table1_setup(8).check_depth(d)
    if 1 not in level_counts or seeds < 1:
        raise ValueError("--levels must include 1 (the reference) and --seeds must be >= 1")
    start = time.perf_counter()
    log = lambda line: print(line, flush=True)  # noqa: E731 - a one-line progress logger
    table1 = [str(table1_setup(count)) for count in level_counts]
    runs = _runs("circles", depth, table1, seeds, args.max_vcycles, log)
    result = {"depth": depth, "seeds": seeds, "table1": _rows(runs, table1[0])}
    print(f"\nTable 1, circles, depth {depth}, medians over {seeds} seeds (paper: depth 2048)")
    print(_HEAD)
    for row in result["table1"]:
        paper = TABLE1_PAPER.get(row["levels"], {}).get("circles")
        print(_format(row, paper, PAPER_V_RATIOS.get(row["levels"])))
    histories = {"circles": runs}
    if args.table2:
        setups = [table1[0], *TABLE2_PAPER]
        table2 = _runs("circles", depth, setups[1:], seeds, args.max_vcycles, log)
        table2 = {table1[0]: runs[table1[0]], **table2}
        result["table2"] = _rows(table2, table1[0])[1:]
        print(f"\nTable 2, circles, depth {depth}, 8 levels (paper V / U_c as printed / U)")
        print(_HEAD)
        for row in result["table2"]:
            pv, pc, pu = TABLE2_PAPER[row["setup"]]
            print(_format(row, (pv, pu), None) + f"   paper U_c {pc}")
    if depths:
        setup = str(table1_setup(8))
        rows, by_depth = [], {f"depth {depth}": runs[setup]} if setup in runs else {}
        for d in depths:
            by_depth[f"depth {d}"] = _runs("circles", d, [setup], seeds, args.max_vcycles, log)[
                setup
            ]
            rows.append({"depth": d, **_rows({setup: by_depth[f"depth {d}"]}, setup)[0]})
        result["depths"] = rows
        histories["circles, 8 levels, by depth"] = by_depth
        print("\nDepth independence, 8 levels: median V-cycles per depth")
        for row in rows:
            print(
                f"  depth {row['depth']:>5}: V {row['v_cycles']:g} (per seed {row['per_seed_v']})"
            )
    if not args.no_minibatch:
        mini = [str(table1_setup(1)), str(table1_setup(8 if depth >= 128 else 4))]
        digits = _runs("digits", depth, mini, seeds, args.max_vcycles, log)
        result["digits"] = _rows(digits, mini[0])
        histories["digits"] = digits
        print(f"\nMinibatch (Algorithm 2), digits, batch 100, depth {depth}, stop at 0.93")
        print("(paper, MNIST batch 1000: L=1 V 460 = U 460; L=8 V 28, U 145, U1/U 3.17)")
        print(_HEAD)
        for row in result["digits"]:
            print(_format(row, None, None))
    result["total_s"] = time.perf_counter() - start
    print(f"\ntotal {result['total_s']:.0f} s (shared machine: ratios, not absolute times)")
    if args.out:
        from partime.io.atomic import atomic_write

        with atomic_write(args.out, "w") as handle:
            records = {
                data: {setup: [h.summary() | {"records": [r.__dict__ for r in h.records]}
                               for h in hs] for setup, hs in by_setup.items()}
                for data, by_setup in histories.items()
            }  # fmt: skip
            json.dump({**result, "runs": records}, handle)
    if args.plot:
        from partime.plot.mgopt import plot_histories

        panels = {
            f"{data} (seed 0)": {
                label if label.startswith("depth") else f"L={VCycleSetup.parse(label).levels}": hs[
                    0
                ]
                for label, hs in r.items()
            }
            for data, r in histories.items()
        }
        plot_histories(panels, args.plot)
    if args.json:
        print(json.dumps(result))
    return 0
