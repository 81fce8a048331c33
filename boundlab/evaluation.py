"""Exact evaluation of a TokenMDP: objectives, surrogate error, divergences and bounds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import _kernels, bounds as _bounds
from .model import TokenMDP

__all__ = ["BoundReport", "evaluate", "forward_pass", "bound_status", "rounding_tolerance",
           "SUFFICIENT_STAT_TOL"]

#: Two paths into the same final state whose log likelihood ratios differ by at most this
#: are treated as having the same ratio (the final state is then a sufficient statistic).
#: Summing T log ratios of size <= 20 in two orders differs by < T * 20 * 2.2e-16, which is
#: below 1e-10 up to T ~ 2e4; a genuine difference this small changes D_TV^seq by < 1e-10.
SUFFICIENT_STAT_TOL = 1e-10


def rounding_tolerance(T: int) -> float:
    """Absolute rounding allowance for comparing an error (reward units) with a bound.

    Each of the T forward steps adds a few float64 roundings (relative 2.2e-16) to
    quantities of size at most 1 (probability masses times rewards), so the computed error
    is within about T * 2.2e-16 of the exact one; we allow 64 times that. A bound exceeded
    by less than this is reported as "within rounding", never silently accepted.
    """
    return 64.0 * max(T, 1) * np.finfo(np.float64).eps


def bound_status(error: float, bound: float, T: int) -> str:
    """"holds" if error <= bound, "within rounding" if it exceeds the bound by less than
    :func:`rounding_tolerance` (T), else "VIOLATED"."""
    if error <= bound:
        return "holds"
    if error - bound <= rounding_tolerance(T):
        return "within rounding"
    return "VIOLATED"


@dataclass(frozen=True)
class BoundReport:
    """Exact evaluation of one TokenMDP (theory.md sections 2, 3 and 5).

    Attributes (names fixed by the issue tracker)
    ----------
    J_roll, J_theta : float
        E[R] under pi_roll and pi_theta.
    surrogate : float
        L = E_roll[R sum_t (rho_t - 1)].
    error : float
        J_theta - J_roll - L (computed without cancellation, see ``_kernels``).
    worst_case_error : float
        sup of |Error| over rewards in [0, 1] that are functions of the final state
        (for a tree: over all rewards) = (1/2) sum_s |w(s)|.
    delta, eps : float
        D_KL^{tok,max} (nats) and D_TV^{tok,max} over reachable contexts.
    dkl_seq : float
        D_KL^seq = sum_t E_{d_t^roll}[D_KL(c_t)] (nats).
    dtv_seq : float
        D_TV^seq, exact if ``dtv_seq_exact``, else a valid upper bound
        (``dtv_seq_method`` says which).
    dbar : ndarray (T,)
        Dbar_t = E_{d_t^roll}[D_TV(c_t)].
    bounds : dict
        Every bound of :data:`boundlab.bounds.BOUND_NAMES` at these parameters.
    tightest : str
        Name of the smallest base bound.
    """

    T: int
    V: int
    J_roll: float
    J_theta: float
    surrogate: float
    error: float
    worst_case_error: float
    delta: float
    eps: float
    dkl_seq: float
    dtv_seq: float
    dtv_seq_exact: bool
    dtv_seq_method: str
    dbar: np.ndarray = field(repr=False)
    bounds: dict = field(repr=False)
    tightest: str
    #: Per-step expected KL E_{d_t^roll}[D_KL(c_t)], shape (T,); sums to dkl_seq.
    dkl_t: np.ndarray = field(repr=False)
    #: Per-step maxima of D_TV and D_KL over reachable contexts, shape (T,).
    eps_t: np.ndarray = field(repr=False)
    delta_t: np.ndarray = field(repr=False)

    def status(self, name: str, *, worst_case: bool = True) -> str:
        """:func:`bound_status` of bound ``name`` against the worst-case (or actual) error."""
        err = self.worst_case_error if worst_case else abs(self.error)
        return bound_status(err, self.bounds[name], self.T)

    @property
    def frame(self) -> pd.DataFrame:
        """One row per bound: value, ratio bound / worst_case_error, and status."""
        rows = []
        for name in _bounds.BOUND_NAMES:
            b = self.bounds[name]
            rows.append({
                "bound": name,
                "value": b,
                "ratio_to_worst_case": b / self.worst_case_error if self.worst_case_error > 0
                else math.inf,
                "status": self.status(name),
            })
        return pd.DataFrame(rows).set_index("bound")

    def summary(self) -> dict:
        """Scalars of the report plus every bound, one flat dict (a row of a tidy table)."""
        out = {k: getattr(self, k) for k in (
            "T", "V", "J_roll", "J_theta", "surrogate", "error", "worst_case_error",
            "delta", "eps", "dkl_seq", "dtv_seq", "dtv_seq_exact", "dtv_seq_method",
            "tightest")}
        out.update(self.bounds)
        return out

    def headline(self) -> str:
        """Three lines: objectives, errors, divergences."""
        return (
            f"T={self.T} V={self.V}  J_roll={self.J_roll:.6g} J_theta={self.J_theta:.6g} "
            f"L={self.surrogate:.6g}\nerror={self.error:.6g} worst_case_error="
            f"{self.worst_case_error:.6g}\ndelta={self.delta:.6g} eps={self.eps:.6g} "
            f"dkl_seq={self.dkl_seq:.6g} dtv_seq={self.dtv_seq:.6g} ({self.dtv_seq_method})"
        )

    def __str__(self) -> str:  # a readable report for the CLI and notebooks
        return self.headline() + "\n" + self.frame.to_string()


def forward_pass(mdp: TokenMDP, *, roll=None, row_values=None) -> tuple:
    """Run the numba forward kernel on ``mdp``'s flat tables (see :mod:`boundlab._kernels`).

    ``roll`` replaces the per-transition pi_roll factors (e.g. pi_roll with failing
    transitions set to 0, or theta^2 / roll), ``row_values`` the per-row KL whose per-step
    expectation the kernel returns. Returns the kernel's tuple (m, dp, a, e, reach, lmin,
    lmax, dbar, dkl_t, eps_t, delta_t) over the final layer and the steps."""
    f = mdp._flat
    return _kernels.forward(
        f["nxt"], f["roll"] if roll is None else np.ascontiguousarray(roll, dtype=np.float64),
        f["theta"], f["diff"], f["logratio"],
        f["kl"] if row_values is None else np.ascontiguousarray(row_values, dtype=np.float64),
        f["tv"], f["block_start"], f["layer_block"], f["n_states"], f["init"])


def evaluate(mdp: TokenMDP, *, enumerate_limit: int = 2**16) -> BoundReport:
    """Exact evaluation of ``mdp``: objectives, error, worst-case error, divergences, bounds.

    Formulas: theory.md section 2 (surrogate L, Error, worst case over rewards), section 3
    (delta, eps, D_KL^seq, D_TV^seq, Dbar_t), section 5 (bounds). Source: arXiv 2512.23075
    (v4 section 2 for the definitions).

    One forward pass of the numba kernel over the layers, O(sum_t S_t V) time. D_TV^seq is
    exact for trees, for automata whose final state determines the likelihood ratio (e.g.
    the counting automaton of an i.i.d. pair with V = 2), and for automata with at most
    ``enumerate_limit`` sequences (by enumeration); otherwise it is replaced by the smaller
    of the Pinsker and Bretagnolle-Huber upper bounds, min(1, sqrt(D/2), sqrt(1 - e^-D))
    with D = D_KL^seq, and ``dtv_seq_exact`` is False. Every bound stays valid with an upper
    bound of D_TV^seq in place of the exact value.

    Parameters
    ----------
    mdp : TokenMDP
        The model; already validated at construction.
    enumerate_limit : int
        Largest number of sequences S_1 * V**T enumerated for an exact D_TV^seq.

    Returns
    -------
    BoundReport
    """
    m, dp, a, e, reach, lmin, lmax, dbar, dkl_t, eps_t, delta_t = forward_pass(mdp)
    R = mdp.reward
    J_roll = float(R @ m)
    J_theta = J_roll + float(R @ dp)
    surrogate = float(R @ a)
    error = float(R @ e)
    worst = 0.5 * float(np.abs(e).sum())
    delta = float(delta_t.max())
    eps = float(eps_t.max())
    dkl_seq = math.fsum(dkl_t) if np.isfinite(dkl_t).all() else math.inf

    with np.errstate(invalid="ignore"):  # -inf - -inf where pi_theta = 0: not finite
        spread = lmax[reach] - lmin[reach]
    if mdp.is_tree or (np.isfinite(spread).all() and
                       (spread <= SUFFICIENT_STAT_TOL).all()):
        # The likelihood ratio is a function of the final state: TV of final-state laws.
        dtv_seq, exact = min(1.0, 0.5 * float(np.abs(dp).sum())), True
        method = "tree" if mdp.is_tree else "sufficient-statistic"
    elif mdp.n_sequences <= enumerate_limit:
        from .reference import enumerate_sequences

        dtv_seq, exact, method = enumerate_sequences(mdp).dtv_seq, True, "enumeration"
    else:
        pinsker = math.sqrt(dkl_seq / 2.0)
        bh = math.sqrt(-math.expm1(-dkl_seq))
        dtv_seq, exact = min(1.0, pinsker, bh), False
        method = "pinsker-bound" if pinsker <= bh else "bretagnolle-huber-bound"

    b = _bounds.compute(mdp.T, delta, eps, dkl_seq, dtv_seq, dbar=np.minimum(dbar, 1.0))
    return BoundReport(
        T=mdp.T, V=mdp.V, J_roll=J_roll, J_theta=J_theta, surrogate=surrogate, error=error,
        worst_case_error=worst, delta=delta, eps=min(eps, 1.0), dkl_seq=dkl_seq,
        dtv_seq=dtv_seq, dtv_seq_exact=exact, dtv_seq_method=method, dbar=dbar, bounds=b,
        tightest=_bounds.tightest(b), dkl_t=dkl_t, eps_t=eps_t, delta_t=delta_t,
    )
