"""Fixtures for every test: torch's global thread count is restored after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    """A test may set torch's thread count (tiny matmuls crawl with 2 threads on a busy
    machine); the next test starts with the count the session had."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
