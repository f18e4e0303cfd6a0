"""Sweeps: a grid over toy config keys x seeds, trained as populations of stacked toy GANs.

grid.py expands and checks the grid and groups runs into populations; train.py trains each
population through the one run skeleton; report.py writes the tables and figures.py the
pictures, both from the plain result rows.
"""

from .grid import SweepConfig, SweepRun, expand, populations
from .train import run_sweep

__all__ = ["SweepConfig", "SweepRun", "expand", "populations", "run_sweep"]
