"""boundlab: exact tabular token MDPs for checking the theory of LLM policy-gradient methods.

The quantities and bounds are those of ``shared/spec/theory.md`` (Li et al., "Trust Region
Masking for Long-Horizon LLM Reinforcement Learning", arXiv 2512.23075).

>>> import boundlab
>>> mdp = boundlab.families.random_tree(T=4, V=2, noise=0.3, seed=1)
>>> report = boundlab.evaluate(mdp)
>>> report.worst_case_error <= report.bounds["unified"]
True
"""

from . import bounds, families
from .errors import ValidationError
from .evaluation import BoundReport, evaluate
from .model import TokenMDP

__all__ = ["TokenMDP", "evaluate", "BoundReport", "ValidationError", "bounds", "families"]
__version__ = "0.1.0"
