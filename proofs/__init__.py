"""Symbolic proof obligations (sympy) for the algebra behind boundlab's bounds.

Each module exposes ``check() -> ProofResult`` (statement, assumptions, steps as sympy
expressions, verdict). ``boundlab proofs`` runs them all; ``boundlab proofs NAME --latex``
prints one derivation. A step sympy cannot settle is reported as a numeric check.
"""

from . import adaptive, bound_algebra, clipping, estimators, pinsker, ratio_pdi, telescoping
from ._core import ProofResult, Step

MODULES = (telescoping, ratio_pdi, estimators, pinsker, bound_algebra, adaptive, clipping)
OBLIGATIONS = {m.NAME: m.check for m in MODULES}

__all__ = ["OBLIGATIONS", "ProofResult", "Step", "run_all"]


def run_all() -> list[ProofResult]:
    """Run every obligation, in order."""
    return [check() for check in OBLIGATIONS.values()]
