"""Layer-parallel ≡ serial (float64, ≤ 1e-12): loss, output and every gradient, by name.

The ``test_side_*`` tests run inside the jobs that the wrappers at the bottom launch
(``mpiexec -n 2/3``, ``torchrun`` with gloo); in a plain run they run on one rank (serial).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import layerpar_models
import pytest
import torch
from layerpar_models import MODELS, batch, lm_pair, serial_gradients, stochastic
from torch import nn

from partime.comm import detect_launcher, from_env
from partime.layerpar import DepthPartition, LayerParallel
from partime.layerpar.units import next_step_key

HERE = os.path.abspath(__file__)
TOL = 1e-12
inside_a_job = detect_launcher() is not None


@pytest.fixture(scope="module")
def comm():
    return from_env(num_threads=None)


def close(a, b) -> float:
    return float((a - b).detach().abs().max())


def check_gradients(lp: LayerParallel, reference: dict) -> None:
    names = [name for name, _ in lp.named_parameters()]
    assert names, "every rank holds parameters here"
    for name, p in lp.named_parameters():
        assert close(p.grad, reference[name]) <= TOL, name


@pytest.mark.parametrize("schedule", ["1f1b", "gpipe"])
@pytest.mark.parametrize("model_name", ["mlp", "lm_pair", "tied"])
def test_side_train_step_equals_serial(comm, model_name, schedule):
    model = MODELS[model_name]()
    x, y = batch(11)  # 4 micro-batches of 3, 3, 3, 2
    loss_ref, grads_ref = serial_gradients(MODELS[model_name](), x, y)
    lp = LayerParallel(model, comm, micro_batches=4, schedule=schedule)
    loss = lp.train_step(x, y, nn.functional.mse_loss)
    assert abs(float(loss) - float(loss_ref)) <= TOL
    check_gradients(lp, grads_ref)
    # a second step accumulates, as backward() does
    lp.train_step(x, y, nn.functional.mse_loss)
    for name, p in lp.named_parameters():
        assert close(p.grad, 2 * grads_ref[name]) <= 2 * TOL


def test_side_uneven_partition_and_names(comm):
    model = MODELS["mlp"](7)
    sizes = [7 - 2 * (comm.size - 1)] + [2] * (comm.size - 1)  # e.g. 3,2,2 or 5,2
    bounds = tuple(int(sum(sizes[:i])) for i in range(comm.size + 1))
    lp = LayerParallel(model, comm, micro_batches=5, partition=DepthPartition(bounds))
    x, y = batch(13)
    loss_ref, grads_ref = serial_gradients(MODELS["mlp"](7), x, y)
    loss = lp.train_step(x, y, nn.functional.mse_loss)
    assert abs(float(loss) - float(loss_ref)) <= TOL
    check_gradients(lp, grads_ref)
    mine = lp.partition.units(comm.rank)
    expected = {f"{u}.{kind}" for u in mine for kind in ("weight", "bias")}
    expected = {e.replace(".weight", ".linear.weight").replace(".bias", ".linear.bias")
                if 0 < int(e.split(".")[0]) < 6 else e for e in expected}  # fmt: skip
    assert {name for name, _ in lp.named_parameters()} == expected
    everyone = comm.allgather(sorted(name for name, _ in lp.named_parameters()))
    assert sorted(sum(everyone, [])) == sorted(name for name, _ in model.named_parameters())


@pytest.mark.parametrize("model_name", ["mlp", "lm_pair"])
def test_side_drop_in_forward_and_backward(comm, model_name):
    x, y = batch(10)
    reference = MODELS[model_name]()
    x_ref = x.clone().requires_grad_()
    out_ref = reference(x_ref)
    nn.functional.mse_loss(out_ref, y).backward()
    lp = LayerParallel(MODELS[model_name](), comm, micro_batches=3)
    x_lp = x.clone().requires_grad_()
    out = lp(x_lp)
    assert close(out, out_ref) <= TOL  # on every rank
    nn.functional.mse_loss(out, y).backward()
    check_gradients(lp, {n: p.grad for n, p in reference.named_parameters()})
    if lp.stage.is_first:
        assert close(x_lp.grad, x_ref.grad) <= TOL
    with torch.no_grad():  # inference: no graphs kept
        assert close(lp(x), out_ref) <= TOL
        assert not lp.stage.in_flight
        assert close(lp(x[:2]), out_ref[:2]) <= TOL  # fewer rows than micro-batches


def test_side_batch_norm_and_dropout_follow_the_micro_batch_definition(comm):
    x, y = batch(12)
    reference = stochastic()
    lp = LayerParallel(stochastic(), comm, micro_batches=3, seed=7)
    for step in range(2):
        torch.manual_seed(50 + step)  # each step's key is drawn from torch's RNG
        key = next_step_key()
        loss_ref, grads_ref = serial_gradients(reference, x, y, micro_batches=3, seed=7, step=key)
        lp.serial_model.zero_grad()
        torch.manual_seed(50 + step)
        loss = lp.train_step(x, y, nn.functional.mse_loss)
        assert abs(float(loss) - float(loss_ref)) <= TOL
        check_gradients(lp, grads_ref)
    # running statistics gathered from their owners equal the serial ones, update by update
    full = lp.state_dict()
    for name, value in reference.state_dict().items():
        assert close(full[name].double(), value.double()) <= TOL, name
    lp.eval()
    reference.eval()
    with torch.no_grad():  # eval: running statistics, no dropout, so even the full batch agrees
        assert close(lp(x), reference(x)) <= TOL


@pytest.mark.parametrize("family", ["cnet", "lmresnet"])
def test_side_partime_nets_models(comm, family):
    """ContinuousNet (cut at piece boundaries, per-piece batch norm) and LM-ResNet (a pair
    across the boundary) under micro-batch batch norm; eval mode equals the full-batch model."""
    build = {"cnet": layerpar_models.cnet, "lmresnet": layerpar_models.lmresnet}[family]
    x, y = layerpar_models.labels(11) if family == "cnet" else batch(11)
    if family == "lmresnet":
        y = (y[:, 0] > 0).long()
    ce = nn.functional.cross_entropy
    reference = build()
    lp = LayerParallel(build(), comm, micro_batches=4)
    torch.manual_seed(3)
    key = next_step_key()
    loss_ref, grads_ref = serial_gradients(reference, x, y, micro_batches=4, step=key, loss_fn=ce)
    torch.manual_seed(3)
    loss = lp.train_step(x, y, ce)
    assert abs(float(loss) - float(loss_ref)) <= TOL
    check_gradients(lp, grads_ref)
    full = lp.state_dict()  # per-piece statistics merged from the ranks that updated them
    for name, value in reference.state_dict().items():
        assert close(full[name].double(), value.double()) <= TOL, name
    lp.eval()
    reference.eval()
    with torch.no_grad():
        assert close(lp(x), reference(x)) <= TOL


def test_side_state_dict_round_trip(comm):
    lp = LayerParallel(lm_pair(), comm, micro_batches=comm.size)
    full = lp.state_dict()
    assert list(full) == list(lm_pair().state_dict())
    changed = {name: value + 1.0 for name, value in full.items()}
    lp.load_state_dict(changed)
    for name, value in lp.named_parameters():
        assert torch.equal(value.detach(), changed[name])
    assert all(torch.equal(a, changed[k]) for k, a in lp.state_dict().items())


def test_side_data_times_layer_parallel(comm):
    if comm.size % 2:
        pytest.skip("needs an even number of ranks")
    x, y = batch(16)
    loss_ref, grads_ref = serial_gradients(MODELS["mlp"](), x, y)
    lp = LayerParallel(MODELS["mlp"](), comm, micro_batches=2, data_parallel=2)
    # unequal shards: 9 and 7 rows; each replica's mean is weighted by its share
    shard = torch.arange(0, 9) if lp.grid.replica == 0 else torch.arange(9, 16)
    loss = lp.train_step(x[shard], y[shard], nn.functional.mse_loss)
    assert abs(float(loss) - float(loss_ref)) <= TOL
    check_gradients(lp, grads_ref)


def test_side_errors_before_any_communication_on_every_rank(comm):
    size = comm.size
    if size > 1:
        with pytest.raises(ValueError, match=f"micro_batches={size - 1} is fewer than the {size}"):
            LayerParallel(MODELS["mlp"](), comm, micro_batches=size - 1)
        units = [nn.Linear(2, 2) for _ in range(size - 1)]
        with pytest.raises(ValueError, match=f"{size - 1} depth units for {size} ranks"):
            LayerParallel(nn.Sequential(*units), comm, micro_batches=4)
    with pytest.raises(ValueError, match="known schedules: gpipe, 1f1b"):
        LayerParallel(MODELS["mlp"](), comm, micro_batches=4, schedule="zero-bubble")
    with pytest.raises(ValueError, match="cannot split a Linear"):
        LayerParallel(nn.Linear(2, 2), comm)
    lp = LayerParallel(MODELS["mlp"](), comm, micro_batches=4)
    x, y = batch(3)
    with pytest.raises(ValueError, match="a batch of 3 cannot make 4 micro-batches"):
        lp.train_step(x, y, nn.functional.mse_loss)
    comm.barrier()  # every rank raised and is still in step


# -- the launches --------------------------------------------------------------------------

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
PYTEST = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "-k", "side", HERE]
launches = pytest.mark.skipif(inside_a_job, reason="the launches run in the serial session")


def launch(command: list[str], limit_s: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["timeout", str(limit_s), *command], env=ENV, capture_output=True, text=True
    )


@launches
@pytest.mark.parametrize("ranks", [2, 3])
def test_mpiexec(ranks):
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec not on PATH")
    proc = launch([mpiexec, "-n", str(ranks), sys.executable, *PYTEST])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


@launches
def test_torchrun_gloo():
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    proc = launch([*run, *PYTEST])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]


@launches
@pytest.mark.slow
def test_mpiexec_four_ranks_two_replicas_of_two_stages():
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec not on PATH")
    args = [*PYTEST[:-3], "-k", "side and (data_times or train_step)", HERE]
    proc = launch([mpiexec, "-n", "4", sys.executable, *args])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    assert "7 passed" in proc.stdout


FAILING_RANK = """
import torch
from torch import nn
from partime.comm import abort_on_exception, from_env
from partime.layerpar import LayerParallel

class Breaks(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom in the unit of rank 1")

comm = from_env()
model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3), Breaks(), nn.Linear(3, 3)).double()
with abort_on_exception(comm):
    lp = LayerParallel(model, comm, micro_batches=2)
    x = torch.ones(4, 3, dtype=torch.float64)
    lp.train_step(x, x, nn.functional.mse_loss)  # rank 0 then waits for gradients forever
"""


@launches
@pytest.mark.parametrize("launcher", ["mpiexec", "torchrun"])
def test_an_exception_on_one_rank_ends_the_job_quickly(launcher, tmp_path):
    if launcher == "mpiexec":
        if shutil.which("mpiexec") is None:
            pytest.skip("mpiexec not on PATH")
        command = [shutil.which("mpiexec"), "-n", "2", sys.executable, "-c", FAILING_RANK]
    else:
        script = tmp_path / "failing_rank.py"
        script.write_text(FAILING_RANK)
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc-per-node", "2", str(script)]  # fmt: skip
    start = time.monotonic()
    proc = launch(command, limit_s=90)
    assert proc.returncode not in (0, 124), proc.stderr[-3000:]
    assert time.monotonic() - start < 30
    assert "boom in the unit of rank 1" in proc.stderr
