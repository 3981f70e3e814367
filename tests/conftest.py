"""Fixtures for every test: one torch thread, and torch's thread count restored after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tests run on one torch thread (tiny matmuls crawl when OpenMP threads compete for a
    busy machine's cores); a test may set another count, and the next one starts afresh."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
