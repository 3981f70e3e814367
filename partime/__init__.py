"""partime: distributed parallel-in-time integration and layer-parallel training with PyTorch.

Importing partime needs only torch, numpy and scipy; MPI and Ray are imported lazily.
"""

from __future__ import annotations

__version__ = "0.1.0"
