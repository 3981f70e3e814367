"""Integrator tests build their kernels in a fresh cache folder, not the user's."""

import os

import pytest

from partime.integrators import fast, kernels


@pytest.fixture(autouse=True, scope="session")
def kernel_cache(tmp_path_factory):
    """A session-wide ``PARTIME_CACHE``; kernels held in memory are dropped around it."""
    saved = os.environ.get(kernels.CACHE_ENV)
    os.environ[kernels.CACHE_ENV] = str(tmp_path_factory.mktemp("partime-cache"))
    fast.forget_kernels()
    yield kernels.cache_dir()
    fast.forget_kernels()
    if saved is None:
        os.environ.pop(kernels.CACHE_ENV, None)
    else:
        os.environ[kernels.CACHE_ENV] = saved
