"""The Kuramoto–Sivashinsky dataset: shape, initial condition, chained splits."""

import numpy as np
import torch

from partime.data import DATASET_SPECS, KSSpec, make_dataset
from partime.dynamics import get_system


def test_ks_dataset():
    data = make_dataset("ks", n_points=21, cache=False, dtype=torch.float64)
    assert data.shape == (1, 21, 512) and DATASET_SPECS["ks"].n_points == 4001
    ks = get_system("ks")
    torch.testing.assert_close(data[0, 0], ks.initial_condition()[0])
    small = KSSpec(n=64, n_points=41)
    train = small.simulate("train", None, 1, 41)
    val = small.simulate("val", None, 1, 41)
    np.testing.assert_allclose(val[0, 0], train[0, -1], atol=1e-12)  # splits are chained
