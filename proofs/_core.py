"""Structured proof obligations: statement, assumptions, steps (sympy expressions), verdict.

A step is "proved" when sympy settles it symbolically (a difference simplifies to 0, a
sign is decided by sympy's assumptions system, an equation is solved). A step sympy cannot
settle is run as a numeric spot-check on seeded random points and labelled "numeric",
never "proved". The obligation's verdict is "proved" only if every step is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import sympy as sp

__all__ = ["Step", "ProofResult", "Obligation", "zero_step", "positive_step", "numeric_step",
           "given_step", "timed"]

PROVED, NUMERIC, FAILED, GIVEN = "proved", "numeric check", "FAILED", "given"


@dataclass
class Step:
    """One step: what it claims, the sympy expression it rests on, and how it was settled."""

    claim: str
    expr: object = None
    verdict: str = PROVED
    detail: str = ""

    def latex(self) -> str:
        body = sp.latex(self.expr) if self.expr is not None else ""
        tag = {PROVED: "", NUMERIC: r"\quad\text{(numeric check)}",
               FAILED: r"\quad\text{(FAILED)}", GIVEN: r"\quad\text{(given)}"}[self.verdict]
        return rf"\text{{{_tex_escape(self.claim)}}}: \quad {body}{tag}"


@dataclass
class ProofResult:
    """What a proof module's ``check()`` returns."""

    name: str
    statement: str
    assumptions: list[str]
    steps: list[Step]
    source: str
    seconds: float = 0.0

    @property
    def method(self) -> str:
        """"sympy", or "sympy + numeric" when a step fell back to a numeric spot-check."""
        return "sympy + numeric" if any(s.verdict == NUMERIC for s in self.steps) else "sympy"

    @property
    def verdict(self) -> str:
        kinds = {s.verdict for s in self.steps}
        if FAILED in kinds:
            return FAILED
        if NUMERIC in kinds:
            return NUMERIC
        return PROVED

    def latex(self) -> str:
        lines = [rf"% {self.name}: {self.statement}",
                 r"% assumptions: " + "; ".join(self.assumptions),
                 r"% source: " + self.source,
                 r"\begin{align*}"]
        lines += [s.latex() + r" \\" for s in self.steps]
        lines += [r"\end{align*}", rf"% verdict: {self.verdict}"]
        return "\n".join(lines)


@dataclass
class Obligation:
    name: str
    check: Callable[[], ProofResult]
    summary: str = field(default="")


def _tex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash "), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"),
                 ("#", r"\#")):
        text = text.replace(a, b)
    return text


def zero_step(claim: str, lhs, rhs=0, *, numeric_vars=None, rng_seed: int = 0,
              positive: bool = True) -> Step:
    """Proved if ``simplify(lhs - rhs) == 0`` (logs expanded for positive symbols);
    otherwise a numeric spot-check of ``lhs == rhs`` at 200 random points of
    ``numeric_vars`` (positive values by default). The step displays ``lhs = rhs``."""
    shown = sp.Eq(lhs, rhs, evaluate=False)
    if isinstance(lhs, sp.Tuple):  # e.g. the solutions of an equation, element by element
        ok = len(lhs) == len(rhs) and all(sp.simplify(a - b) == 0 for a, b in zip(lhs, rhs))
        return Step(claim, shown, PROVED if ok else FAILED,
                    "" if ok else f"{lhs} != {rhs}")
    expr = sp.sympify(lhs) - sp.sympify(rhs)
    simplified = sp.simplify(sp.expand_log(sp.expand(expr), force=False))
    if simplified != 0 and expr.has(sp.Min, sp.Max):
        simplified = sp.simplify(expr.rewrite(sp.Piecewise))
    if simplified == 0:
        return Step(claim, shown, PROVED)
    step = numeric_step(claim, expr, numeric_vars or sorted(expr.free_symbols, key=str),
                        lambda v: abs(v) <= 1e-9, rng_seed=rng_seed, positive=positive,
                        what="= 0")
    step.expr = shown
    return step


def positive_step(claim: str, expr, *, nonneg: bool = True, numeric_vars=None) -> Step:
    """Proved if sympy's assumptions decide ``expr >= 0`` (or > 0); else a numeric check."""
    decided = expr.is_nonnegative if nonneg else expr.is_positive
    if not decided:
        simple = sp.factor(sp.simplify(expr))
        decided = simple.is_nonnegative if nonneg else simple.is_positive
    if decided:
        rel = sp.GreaterThan(expr, 0, evaluate=False) if nonneg else \
            sp.StrictGreaterThan(expr, 0, evaluate=False)
        return Step(claim, rel, PROVED)
    return numeric_step(claim, expr, numeric_vars or sorted(expr.free_symbols, key=str),
                        (lambda v: v >= -1e-12) if nonneg else (lambda v: v > 0),
                        what=">= 0" if nonneg else "> 0")


def numeric_step(claim: str, expr, variables, ok: Callable[[float], bool], *,
                 rng_seed: int = 0, positive: bool = True, n: int = 200,
                 sampler=None, what: str = "") -> Step:
    """Evaluate ``expr`` at ``n`` seeded random points and label the step "numeric"."""
    rng = np.random.default_rng(rng_seed)
    f = sp.lambdify(variables, expr, "numpy")
    worst = None
    for _ in range(n):
        vals = sampler(rng) if sampler else (rng.uniform(0.01, 3.0, len(variables))
                                             if positive else rng.normal(size=len(variables)))
        v = complex(f(*vals))
        v = v.real if abs(v.imag) < 1e-12 else float("nan")
        if not ok(v):
            return Step(claim, expr, FAILED, f"fails at {dict(zip(map(str, variables), vals))}")
        worst = v if worst is None else max(worst, abs(v))
    return Step(claim, expr, NUMERIC,
                f"sympy did not settle it; holds ({what}) at {n} seeded random points")


def given_step(claim: str, expr=None, detail: str = "") -> Step:
    """A cited standard fact used by the proof (reported as such, not as proved here)."""
    return Step(claim, expr, GIVEN, detail)


def timed(fn: Callable[[], ProofResult]) -> Callable[[], ProofResult]:
    def wrapper() -> ProofResult:
        t0 = time.perf_counter()
        res = fn()
        res.seconds = time.perf_counter() - t0
        return res
    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper
