"""``partime bench nets``: the contenders compute the same block; the JSON row shape."""

from __future__ import annotations

import json

import torch

from partime.bench.nets import _contenders
from partime.cli.main import main


def test_contenders_compute_the_same_block():
    torch.manual_seed(0)
    contenders = _contenders("signal", 4, 3)
    x = torch.randn(5, 4, 10)
    reference = contenders["resnet"](x)
    for name in ("odeblock", "functional_call"):
        torch.testing.assert_close(contenders[name](x), reference, atol=1e-5, rtol=1e-5)


def test_bench_nets_quick_json(capsys):
    threads = torch.get_num_threads()
    try:
        assert main(["bench", "nets", "--quick", "--rounds", "1", "--json"]) == 0
    finally:
        torch.set_num_threads(threads)
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["target"] == 1.2 and len(result["rows"]) == 2
    for row in result["rows"]:
        assert row["resnet_ratio"] == 1.0
        assert row["odeblock_ms"] > 0 and row["functional_call_ratio"] > 0
