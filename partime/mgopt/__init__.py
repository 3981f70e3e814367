"""partime.mgopt: MG/OPT multilevel training of deep ResNets (Gaedke-Merzhäuser et al.)."""

from partime.mgopt.fused import euler_relu_autograd, euler_relu_fused
from partime.mgopt.model import ResNetLevels, ResNetSpec, check_depth
from partime.mgopt.setup import TABLE1_PAPER, TABLE2_PAPER, VCycleSetup, table1_setup
from partime.mgopt.sgd import MGOptConfig, multilevel_sgd, train_mgopt
from partime.mgopt.transfer import prolong, restrict_gradient, restrict_parameters
from partime.mgopt.vcycle import LevelObjective, VCycle
from partime.mgopt.work import TrainingHistory, VCycleRecord, WorkCounter

__all__ = [
    "TABLE1_PAPER",
    "TABLE2_PAPER",
    "LevelObjective",
    "MGOptConfig",
    "ResNetLevels",
    "ResNetSpec",
    "TrainingHistory",
    "VCycle",
    "VCycleRecord",
    "VCycleSetup",
    "WorkCounter",
    "check_depth",
    "euler_relu_autograd",
    "euler_relu_fused",
    "multilevel_sgd",
    "prolong",
    "restrict_gradient",
    "restrict_parameters",
    "table1_setup",
    "train_mgopt",
]
