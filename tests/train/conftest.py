"""One torch thread per training test: tiny networks run many times slower with more threads
on a shared machine (threads wait on each other)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
