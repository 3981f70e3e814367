"""Every backend passes the same tests: serial here, MPI and torch gloo via tests/comm launchers.

The communicator comes from ``from_env()`` (auto-detecting the launcher); the launchers set
PARTIME_EXPECT_SIZE / PARTIME_EXPECT_BACKEND so a run that silently fell back to serial fails.
Every test is written for any size, and all ranks run the same tests in the same order.
"""

from __future__ import annotations

import json
import os
import time

import pytest
import torch

from partime.cli.main import main
from partime.comm import from_env


@pytest.fixture(scope="module")
def comm():
    # num_threads=None: do not change the thread count of a shared serial pytest process.
    return from_env(num_threads=None)


def make(rank: int, dtype: torch.dtype = torch.float64, kind: str = "matrix") -> torch.Tensor:
    """A tensor that depends on ``rank``, in one of several layouts (some non-contiguous)."""
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6) + 10.0 * rank
    layouts = {
        "matrix": lambda: base,
        "vector": lambda: base[1],
        "scalar": lambda: base[2, 3],
        "empty": lambda: base[:0],
        "empty3d": lambda: base.reshape(2, 3, 4)[:, :0],
        "transposed": lambda: base.T,
        "strided": lambda: base[:, ::2],
    }
    tensor = layouts[kind]()
    if dtype.is_complex:
        return torch.complex(tensor, -tensor).to(dtype)
    return (tensor % 2 == 1) if dtype == torch.bool else tensor.to(dtype)


DTYPES = [torch.float64, torch.float32, torch.int64, torch.bool, torch.complex128, torch.bfloat16]
KINDS = ["matrix", "vector", "scalar", "empty", "empty3d", "transposed", "strided"]


def assert_same(got: torch.Tensor, want: torch.Tensor) -> None:
    assert isinstance(got, torch.Tensor)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert torch.equal(got.cpu(), want)


def ring(comm, obj_of_rank, tag=0):
    """Send rank's item to rank+1 and receive rank-1's (rank 0 sends first, so no deadlock)."""
    nxt, prv = (comm.rank + 1) % comm.size, (comm.rank - 1) % comm.size
    if comm.rank == 0:
        comm.send(obj_of_rank(comm.rank), nxt, tag)
        return comm.recv(prv, tag), prv
    got = comm.recv(prv, tag)
    comm.send(obj_of_rank(comm.rank), nxt, tag)
    return got, prv


def test_rank_and_size_match_the_launch(comm):
    assert comm.size == int(os.environ.get("PARTIME_EXPECT_SIZE", "1"))
    assert comm.backend == os.environ.get("PARTIME_EXPECT_BACKEND", "serial")
    assert 0 <= comm.rank < comm.size and comm.is_root == (comm.rank == 0)
    assert comm.allgather(comm.rank) == list(range(comm.size))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("kind", KINDS)
def test_send_recv_tensor_keeps_dtype_shape_values(comm, dtype, kind):
    got, prv = ring(comm, lambda r: make(r, dtype, kind), tag=3)
    assert_same(got, make(prv, dtype, kind))
    assert got.is_contiguous()


def test_send_recv_tensors_the_header_words_cannot_describe(comm):
    """13 dimensions, and a dtype outside ``wire.WORDS_DTYPES``: a pickled header instead."""
    many_dims = lambda r: torch.arange(2**13, dtype=torch.float64).reshape((2,) * 13) + r  # noqa: E731
    got, prv = ring(comm, many_dims, tag=4)
    assert_same(got, many_dims(prv))
    unsigned = lambda r: (torch.arange(5) + 2**31 + r).to(torch.uint32)  # noqa: E731
    got, prv = ring(comm, unsigned, tag=4)
    assert got.dtype == torch.uint32 and got.shape == (5,)
    assert torch.equal(got.to(torch.int64), unsigned(prv).to(torch.int64))


def test_send_recv_objects_and_tags(comm):
    def message(r):
        return {"rank": r, "values": [1, 2.5, "x"], "tensor": make(r, kind="strided")}

    got, prv = ring(comm, message, tag=7)
    assert got["rank"] == prv and got["values"] == [1, 2.5, "x"]
    assert_same(got["tensor"], make(prv, kind="strided"))
    got, prv = ring(comm, lambda r: None, tag=0)
    assert got is None


def test_isend_many_before_any_recv_arrive_in_order(comm):
    """Every rank posts all its sends first (blocking sends of large tensors could deadlock
    here), then receives; the sent tensors are changed only after wait()."""
    nxt, prv = (comm.rank + 1) % comm.size, (comm.rank - 1) % comm.size
    big = torch.arange(300_000, dtype=torch.float64) + comm.rank  # past any eager-send limit
    messages = [big, *(make(comm.rank, dtype, kind) for dtype in DTYPES for kind in KINDS)]
    messages.append({"rank": comm.rank, "tensor": make(comm.rank, kind="strided")})
    requests = [comm.isend(m, nxt, tag=5) for m in messages]
    got = [comm.recv(prv, tag=5) for _ in messages]
    for request in requests:
        request.wait()
    big.zero_()
    assert_same(got[0], torch.arange(300_000, dtype=torch.float64) + prv)
    expected = [make(prv, dtype, kind) for dtype in DTYPES for kind in KINDS]
    for tensor, want in zip(got[1:-1], expected, strict=True):
        assert_same(tensor, want)
    assert got[-1]["rank"] == prv
    assert_same(got[-1]["tensor"], make(prv, kind="strided"))


def test_isend_to_self_and_on_two_tags(comm):
    request = comm.isend(make(comm.rank), comm.rank, tag=9)
    request.wait()
    assert_same(comm.recv(comm.rank, tag=9), make(comm.rank))
    nxt, prv = (comm.rank + 1) % comm.size, (comm.rank - 1) % comm.size
    first = comm.isend(make(comm.rank, torch.int64), nxt, tag=1)
    second = comm.isend(make(comm.rank, torch.float32), nxt, tag=2)
    assert_same(comm.recv(prv, tag=2), make(prv, torch.float32))  # tags are separate queues
    assert_same(comm.recv(prv, tag=1), make(prv, torch.int64))
    first.wait()
    second.wait()


def test_recv_returns_a_new_tensor(comm):
    sent = make(comm.rank)
    got, _ = ring(comm, lambda r: sent)
    got.zero_()
    assert_same(sent, make(comm.rank))


@pytest.mark.parametrize(
    "dtype", [torch.float64, torch.float32, torch.bool, torch.bfloat16], ids=str
)
@pytest.mark.parametrize("kind", ["matrix", "scalar", "empty"])
def test_send_buffer_lands_in_the_receivers_tensor(comm, dtype, kind):
    nxt, prv = (comm.rank + 1) % comm.size, (comm.rank - 1) % comm.size
    out = torch.full_like(make(0, dtype, kind), 7)
    mine = make(comm.rank, dtype, kind)
    if comm.rank == 0:  # the ring of ``ring``, with buffers
        comm.send_buffer(mine, nxt, tag=5)
        got = comm.recv_buffer(out, prv, tag=5)
    else:
        got = comm.recv_buffer(out, prv, tag=5)
        comm.send_buffer(mine, nxt, tag=5)
    assert got is out
    assert_same(out, make(prv, dtype, kind))
    assert_same(mine, make(comm.rank, dtype, kind))


def test_recv_buffer_of_another_shape_from_self_says_so(comm):
    comm.send_buffer(torch.ones(3), comm.rank, tag=6)
    with pytest.raises(ValueError, match=r"recv_buffer into torch.float32 \(5,\), but got"):
        comm.recv_buffer(torch.empty(5), comm.rank, tag=6)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bool, torch.bfloat16], ids=str)
def test_persistent_send_of_two_buffers_repeats_with_their_current_contents(comm, dtype):
    """A ring of ``send_init``/``recv_init`` messages of two buffers (a row of a matrix and a
    scalar), started three times: each start carries the values the buffers hold then."""
    nxt, prv = (comm.rank + 1) % comm.size, (comm.rank - 1) % comm.size
    mine = (make(comm.rank, dtype, "vector").clone(), make(comm.rank, dtype, "scalar").clone())
    into = torch.full_like(make(0, dtype), 7)
    scalar_in = torch.full_like(make(0, dtype, "scalar"), 7)
    send = comm.send_init(mine, nxt, tag=9)
    recv = comm.recv_init((into[1], scalar_in), prv, tag=9)  # a row of ``into``: contiguous
    for repeat in range(3):
        mine[0].copy_(make(comm.rank + repeat, dtype, "vector"))
        mine[1].copy_(make(comm.rank + repeat, dtype, "scalar"))
        if comm.rank == 0:
            send.start().wait()
            recv.start().wait()
        else:
            recv.start().wait()
            send.start().wait()
        assert_same(into[1], make(prv + repeat, dtype, "vector"))
        assert_same(scalar_in, make(prv + repeat, dtype, "scalar"))
        assert_same(into[0], torch.full_like(into[0], 7))  # the other rows untouched
    for channel in (send, recv):
        channel.free()


def test_persistent_bcast_repeats_and_completes_under_test(comm):
    root = comm.size - 1
    tensor = torch.zeros(3, dtype=torch.float64)
    broadcast = comm.bcast_init(tensor, root)
    for repeat in range(3):
        if comm.rank == root:
            tensor.copy_(torch.tensor([repeat, 1.0, 2.0]) * 10)
        broadcast.start()
        deadline = time.monotonic() + 30
        while not broadcast.test():
            assert time.monotonic() < deadline, "bcast_init never completed under test()"
        broadcast.wait()
        assert tensor.tolist() == [10.0 * repeat, 10.0, 20.0]
    broadcast.free()


@pytest.mark.parametrize("dtype", [torch.float64, torch.int64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("kind", ["matrix", "scalar", "empty"])
def test_ibcast_from_every_root_in_place_while_the_caller_works(comm, dtype, kind):
    requests = []
    for root in range(comm.size):  # every broadcast in flight at once
        mine = make(comm.rank, dtype, kind).clone() if comm.rank == root else None
        tensor = mine if mine is not None else torch.zeros_like(make(0, dtype, kind))
        requests.append((root, tensor, comm.ibcast(tensor, root)))
    if comm.rank == 0:
        time.sleep(0.05)  # the other ranks test before rank 0 does anything
    else:
        requests[-1][2].test()
    for root, tensor, request in reversed(requests):  # waited in another order
        assert request.wait() is tensor
        assert_same(tensor, make(root, dtype, kind))
        assert request.test()  # complete: stays so


def test_ibcast_test_turns_true_without_waiting(comm):
    root = comm.size - 1
    tensor = torch.tensor([float(comm.rank)], dtype=torch.float64)
    request = comm.ibcast(tensor, root)
    deadline = time.monotonic() + 30
    while not request.test():
        assert time.monotonic() < deadline, "ibcast never completed under test()"
    assert request.wait().item() == root


@pytest.mark.parametrize(
    "dtype", [torch.float64, torch.int64, torch.bool, torch.complex64], ids=str
)
@pytest.mark.parametrize("kind", ["matrix", "scalar", "empty", "strided"])
def test_bcast_tensor_from_every_root(comm, dtype, kind):
    for root in range(comm.size):
        mine = make(comm.rank, dtype, kind)
        assert_same(
            comm.bcast(mine if comm.rank == root else None, root=root), make(root, dtype, kind)
        )


def test_bcast_object(comm):
    root = comm.size - 1
    got = comm.bcast({"from": comm.rank, "t": make(comm.rank)} if comm.rank == root else None, root)
    assert got["from"] == root
    assert_same(got["t"], make(root))


@pytest.mark.parametrize("kind", ["matrix", "empty", "strided"])
def test_scatter_gather_allgather_tensors(comm, kind):
    root = comm.size - 1
    items = [make(r, torch.float32, kind) for r in range(comm.size)] if comm.rank == root else None
    assert_same(comm.scatter(items, root=root), make(comm.rank, torch.float32, kind))
    gathered = comm.gather(make(comm.rank, torch.int64, kind), root=0)
    if comm.rank == 0:
        assert len(gathered) == comm.size
        for r, item in enumerate(gathered):
            assert_same(item, make(r, torch.int64, kind))
    else:
        assert gathered is None
    everyone = comm.allgather(make(comm.rank, torch.complex128, kind))
    for r, item in enumerate(everyone):
        assert_same(item, make(r, torch.complex128, kind))


def test_scatter_gather_allgather_objects(comm):
    items = [("item", r) for r in range(comm.size)] if comm.rank == 0 else None
    assert comm.scatter(items) == ("item", comm.rank)
    gathered = comm.gather({"r": comm.rank}, root=comm.size - 1)
    expected = [{"r": r} for r in range(comm.size)] if comm.rank == comm.size - 1 else None
    assert gathered == expected
    assert comm.allgather(str(comm.rank)) == [str(r) for r in range(comm.size)]


@pytest.mark.parametrize("op", ["sum", "max", "min"])
@pytest.mark.parametrize(
    "dtype", [torch.float64, torch.float32, torch.int64, torch.bfloat16], ids=str
)
@pytest.mark.parametrize("kind", ["matrix", "scalar", "empty", "transposed"])
def test_allreduce_tensor(comm, op, dtype, kind):
    # alternate signs so that max and min pick values from different ranks
    def value(r):
        return make(r, dtype, kind) * (-1 if r % 2 else 1)

    stacked = torch.stack([value(r) for r in range(comm.size)]).double()
    want = {"sum": stacked.sum(0), "max": stacked.amax(0), "min": stacked.amin(0)}[op]
    mine = value(comm.rank)
    got = comm.allreduce(mine, op)
    assert_same(got, want.to(dtype))
    assert_same(mine, value(comm.rank))  # the input is left untouched


def test_allreduce_bool_and_complex(comm):
    flags = torch.tensor([comm.rank == 0, True, False])
    assert_same(comm.allreduce(flags, "max"), torch.tensor([True, True, False]))
    assert_same(comm.allreduce(flags, "min"), torch.tensor([comm.size == 1, True, False]))
    z = make(comm.rank, torch.complex128)
    want = sum(make(r, torch.complex128) for r in range(comm.size))
    assert_same(comm.allreduce(z, "sum"), want)


def test_allreduce_numbers(comm):
    ranks = range(comm.size)
    assert comm.allreduce(comm.rank + 1) == sum(r + 1 for r in ranks)
    assert comm.allreduce(0.5 * comm.rank, "max") == 0.5 * (comm.size - 1)
    assert comm.allreduce(-2.0 * comm.rank, "min") == -2.0 * (comm.size - 1)
    assert comm.allreduce(1j * comm.rank) == 1j * sum(ranks)


def test_barrier_waits_for_the_slowest_rank(comm):
    delay = 0.2
    time.sleep(delay * comm.rank)  # the last rank reaches the barrier (size-1)·delay late
    start = time.monotonic()
    comm.barrier()
    waited = time.monotonic() - start
    # every rank leaves the barrier only once the last one arrived
    assert waited >= delay * (comm.size - 1 - comm.rank) - 0.05


def test_split_even_odd_ordered_by_key(comm):
    parity = comm.rank % 2
    same = [r for r in range(comm.size) if r % 2 == parity]
    sub = comm.split(parity, key=-comm.rank)  # reversed key: highest rank first
    assert sub.size == len(same)
    assert sub.rank == sorted(same, reverse=True).index(comm.rank)
    assert sub.allgather(comm.rank) == sorted(same, reverse=True)
    assert sub.allreduce(comm.rank) == sum(same)
    assert_same(sub.bcast(make(comm.rank) if sub.rank == 0 else None), make(max(same)))
    got, prv = ring(sub, lambda r: make(comm.rank, torch.int64))
    assert_same(got, make(sorted(same, reverse=True)[prv], torch.int64))
    nested = sub.split(0, key=comm.rank)  # a split of a split: ascending order again
    assert nested.allgather(comm.rank) == same


BAD_CALLS = {
    "send dest=size": lambda c: c.send(1, dest=c.size),
    "send dest=-1": lambda c: c.send(1, dest=-1),
    "send dest float": lambda c: c.send(1, dest=0.0),
    "send tag=-1": lambda c: c.send(1, dest=0, tag=-1),
    "isend dest=size": lambda c: c.isend(1, dest=c.size),
    "isend tag too large": lambda c: c.isend(1, dest=0, tag=10**6),
    "recv source=size": lambda c: c.recv(source=c.size),
    "bcast root=size": lambda c: c.bcast(1, root=c.size),
    "gather root=-1": lambda c: c.gather(1, root=-1),
    "scatter too few items": lambda c: c.scatter([0] * (c.size + 1), root=c.rank),
    "scatter not a list": lambda c: c.scatter(torch.zeros(c.size), root=c.rank),
    "allreduce op": lambda c: c.allreduce(torch.ones(2), op="prod"),
    "allreduce complex max": lambda c: c.allreduce(torch.ones(2, dtype=torch.complex64), "max"),
    "split color=-1": lambda c: c.split(-1),
    "send_buffer not contiguous": lambda c: c.send_buffer(torch.ones(3, 2).T, dest=0),
    "recv_buffer not contiguous": lambda c: c.recv_buffer(torch.ones(3, 2).T, source=0),
    "send_buffer dest=size": lambda c: c.send_buffer(torch.ones(2), dest=c.size),
    "ibcast root=size": lambda c: c.ibcast(torch.ones(2), root=c.size),
    "ibcast not contiguous": lambda c: c.ibcast(torch.ones(3, 2).T),
    "send_init dest=size": lambda c: c.send_init(torch.ones(2), dest=c.size),
    "send_init no buffer": lambda c: c.send_init((), dest=0),
    "recv_init not contiguous": lambda c: c.recv_init((torch.ones(2), torch.ones(3, 2).T), 0),
    "recv_init tag=-1": lambda c: c.recv_init(torch.ones(2), source=0, tag=-1),
    "bcast_init root=size": lambda c: c.bcast_init(torch.ones(2), root=c.size),
    "bcast_init not contiguous": lambda c: c.bcast_init(torch.ones(3, 2).T),
}


def test_info_reports_every_rank_of_this_launch(comm, capsys):
    threads = torch.get_num_threads()  # keep the thread count of a shared pytest process
    assert main(["info", "--json", "--threads", str(threads)]) == 0
    out = capsys.readouterr().out
    if comm.rank != 0:
        assert out == ""  # only rank 0 prints
        return
    report = json.loads(out)
    assert report["size"] == comm.size and report["backend"] == comm.backend
    assert [r["rank"] for r in report["ranks"]] == list(range(comm.size))


@pytest.mark.parametrize("call", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_bad_arguments_raise_before_communicating(comm, call):
    with pytest.raises(ValueError):
        call(comm)


def test_bad_argument_message_names_the_value(comm):
    with pytest.raises(ValueError, match=f"dest={comm.size + 5}"):
        comm.send(1, dest=comm.size + 5)
    with pytest.raises(ValueError, match="'prod'"):
        comm.allreduce(1.0, op="prod")
    with pytest.raises(TypeError, match="str"):
        comm.allreduce("text")
    comm.barrier()  # every rank still in step after the failed calls
