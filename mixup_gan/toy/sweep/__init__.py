"""Sweeps: a grid over toy config keys x seeds, trained as populations of stacked toy GANs.

grid.py expands and checks the grid and groups runs into populations; train.py trains each
population through the one run skeleton; shard.py splits the populations over processes
(`--shard K/N`, torchrun, SLURM arrays); report.py writes the tables and figures.py the
pictures, both from the plain result rows.
"""

from .grid import SweepConfig, SweepRun, expand, populations
from .shard import Shard, resolve_shard
from .train import run_sweep

__all__ = ["Shard", "SweepConfig", "SweepRun", "expand", "populations", "resolve_shard",
           "run_sweep"]
