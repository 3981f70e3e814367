"""partime.data: the HiTS trajectory datasets (scipy, tight tolerance) and KS (ETDRK4), cached;
classification sets for the networks (digits, mnist1d, circles, MNIST IDX, CIFAR-10 files)."""

from partime.data.classification import (
    CLASSIFICATION_SETS,
    ClassificationData,
    DataConfig,
    load_classification,
    parse_data_spec,
)
from partime.data.datasets import (
    DATASET_SPECS,
    DatasetSpec,
    add_noise,
    dataset_spec,
    default_cache_dir,
    generate,
    make_dataset,
)
from partime.data.ks import KSSpec
from partime.data.specs import N_POINTS, SPLITS, Box, TrajectorySpec

__all__ = [
    "CLASSIFICATION_SETS",
    "ClassificationData",
    "DataConfig",
    "load_classification",
    "parse_data_spec",
    "DATASET_SPECS",
    "N_POINTS",
    "SPLITS",
    "Box",
    "DatasetSpec",
    "KSSpec",
    "TrajectorySpec",
    "add_noise",
    "dataset_spec",
    "default_cache_dir",
    "generate",
    "make_dataset",
]
