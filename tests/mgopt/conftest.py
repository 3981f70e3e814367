"""The small circles-like MG/OPT problem as a fixture."""

import pytest
from mgopt_problems import make_problem


@pytest.fixture
def small_problem():
    return make_problem()
