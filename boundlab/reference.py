"""Slow pure-numpy reference: enumerate every sequence and apply the definitions literally.

This module exists to check the numba engine (tests) and to measure it (benchmarks). It
shares no code with the kernel (only the elementwise primitive ``log_ratio``, itself
tested against mpmath): sequence probabilities are products along enumerated
paths, the error is computed in the *ratio form* of theory.md section 2,

    Error = E_roll[ R sum_t (rho_t - 1) (prod_{j>t} rho_j - 1) ],

with ``prod - 1 = expm1(sum of log ratios)`` (accurate for ratios near 1), D_KL^seq
directly as KL(P^roll || P^theta) over whole sequences (not via the chain rule), and the
performance-difference terms E_{d_t}[g_t] from a backward pass for Q_t and A_t.
Cost is O(S_1 V^T T): use it only on small instances.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._numerics import log_ratio
from .errors import ValidationError
from .model import TokenMDP

__all__ = ["ReferenceResult", "Paths", "paths", "enumerate_sequences", "MAX_SEQUENCES"]

MAX_SEQUENCES = 2**22


@dataclass(frozen=True)
class ReferenceResult:
    """Quantities computed by brute-force enumeration (see module docstring)."""

    J_roll: float
    J_theta: float
    surrogate: float
    error_ratio_form: float
    worst_case_error: float
    delta: float
    eps: float
    dkl_seq: float
    dtv_seq: float
    dbar: np.ndarray = field(repr=False)
    #: E_{d_t^theta}[g_t] and E_{d_t^roll}[g_t], shape (T,) (performance difference identity).
    pdi_theta: np.ndarray = field(repr=False)
    pdi_roll: np.ndarray = field(repr=False)


def _token_matrix(n_seq_per_prompt: int, V: int, T: int) -> np.ndarray:
    """All V**T responses, earliest token most significant, shape (V**T, T)."""
    idx = np.arange(n_seq_per_prompt, dtype=np.int64)
    powers = V ** np.arange(T - 1, -1, -1, dtype=np.int64)
    return (idx[:, None] // powers[None, :]) % V


def _advantage_shift(mdp: TokenMDP) -> list[np.ndarray]:
    """g_t(s) = sum_v (pi_theta - pi_roll)(v|s) Q_t(s, v) for every layer, by backward DP.

    Q_t(s, v) = V_{t+1}(next(s, v)), V_{T+1} = R, V_t(s) = sum_v pi_roll(v|s) Q_t(s, v).
    (Subtracting V_t(s) to form A_t changes nothing because sum_v (theta - roll) = 0.)
    """
    value = mdp.reward.copy()
    g = [None] * mdp.T
    for t in range(mdp.T - 1, -1, -1):
        nxt, roll, theta = mdp.step(t)
        Q = value[nxt]
        g[t] = ((theta - roll) * Q).sum(axis=1)
        value = (roll * Q).sum(axis=1)
    return g


@dataclass(frozen=True)
class Paths:
    """Every (prompt, response) pair of a model, one row each (N = S_1 V^T rows).

    tokens, states : (N, T) ints; lr (log rho_t), rho_m1 (rho_t - 1), kl_ctx and tv_ctx
    (D_KL and D_TV of the context c_t) : (N, T) floats; p_roll, p_theta : (N,) sequence
    probabilities; alive : (N,) reachable under pi_roll; final : (N,) final states;
    tele : (N,) prod rho - 1 - sum(rho - 1) (accurate); reward : (N,) R(final);
    log_roll_t : (N, T) log pi_roll(y_t | c_t) (-inf where pi_roll = 0).
    """

    tokens: np.ndarray
    states: np.ndarray
    lr: np.ndarray
    rho_m1: np.ndarray
    kl_ctx: np.ndarray
    tv_ctx: np.ndarray
    p_roll: np.ndarray
    p_theta: np.ndarray
    alive: np.ndarray
    final: np.ndarray
    tele: np.ndarray
    reward: np.ndarray
    log_roll_t: np.ndarray


def paths(mdp: TokenMDP, max_sequences: int = MAX_SEQUENCES) -> Paths:
    """Enumerate every sequence of ``mdp`` with its per-step quantities (see :class:`Paths`).

    Raises
    ------
    ValidationError
        If there are more than ``max_sequences`` sequences.
    """
    S1, V, T = int(mdp.n_states[0]), mdp.V, mdp.T
    n = mdp.n_sequences
    if n > max_sequences:
        raise ValidationError(
            f"enumerating {n} sequences exceeds max_sequences={max_sequences}; "
            "the reference enumerator is for small instances"
        )
    per = V**T
    tokens = np.tile(_token_matrix(per, V, T), (S1, 1))  # (n, T)
    state = np.repeat(np.arange(S1, dtype=np.int64), per)
    with np.errstate(divide="ignore"):
        log_init = np.log(mdp.init[state])
    log_roll = log_init.copy()
    alive = mdp.init[state] > 0  # reachable under pi_roll (structurally)
    lr = np.zeros((n, T))  # log rho_t
    rho_m1 = np.zeros((n, T))  # rho_t - 1
    tv_ctx = np.zeros((n, T))
    kl_ctx = np.zeros((n, T))
    states = np.zeros((n, T), dtype=np.int64)
    log_roll_t = np.zeros((n, T))
    for t in range(T):
        nxt, roll, theta = mdp.step(t)
        states[:, t] = state
        # per-context divergences, straight from the definitions
        with np.errstate(divide="ignore", invalid="ignore"):
            kl_rows = np.where(roll > 0, roll * np.log(roll / theta), 0.0).sum(axis=1)
        tv_rows = 0.5 * np.abs(theta - roll).sum(axis=1)
        tv_ctx[:, t] = tv_rows[state]
        kl_ctx[:, t] = kl_rows[state]
        y = tokens[:, t]
        r = roll[state, y]
        th = theta[state, y]
        alive &= r > 0
        safe = np.where(r > 0, r, 1.0)
        lr[:, t] = log_ratio(th, r)  # accurate near rho = 1 and rho = 0 (tested vs mpmath)
        with np.errstate(divide="ignore"):
            log_roll_t[:, t] = np.log(r)
        log_roll += log_roll_t[:, t]
        rho_m1[:, t] = np.where(r > 0, (th - r) / safe, 0.0)
        state = nxt[state, y]
    p_roll = np.where(alive, np.exp(log_roll), 0.0)
    total_lr = lr.sum(axis=1)
    p_theta = np.where(alive, p_roll * np.exp(total_lr), 0.0)  # theta << roll: same support
    # suffix sums S_{>t} = sum_{j>t} log rho_j
    suffix = np.zeros((n, T))
    suffix[:, :-1] = np.cumsum(lr[:, ::-1], axis=1)[:, ::-1][:, 1:]
    with np.errstate(invalid="ignore"):
        tele = (rho_m1 * np.expm1(suffix)).sum(axis=1)  # prod rho - 1 - sum (rho - 1)
    tele = np.where(alive, tele, 0.0)
    return Paths(tokens=tokens, states=states, lr=lr, rho_m1=rho_m1, kl_ctx=kl_ctx,
                 tv_ctx=tv_ctx, p_roll=p_roll, p_theta=p_theta, alive=alive, final=state,
                 tele=tele, reward=mdp.reward[state], log_roll_t=log_roll_t)


def enumerate_sequences(mdp: TokenMDP, max_sequences: int = MAX_SEQUENCES) -> ReferenceResult:
    """Brute-force evaluation of ``mdp`` over all S_1 * V**T (prompt, response) pairs.

    Raises
    ------
    ValidationError
        If there are more than ``max_sequences`` sequences.
    """
    S1, V, T = int(mdp.n_states[0]), mdp.V, mdp.T
    per = V**T
    pa = paths(mdp, max_sequences)
    tokens, states, lr, rho_m1 = pa.tokens, pa.states, pa.lr, pa.rho_m1
    kl_ctx, tv_ctx, p_roll, p_theta = pa.kl_ctx, pa.tv_ctx, pa.p_roll, pa.p_theta
    final, tele, R = pa.final, pa.tele, pa.reward
    total_lr = lr.sum(axis=1)
    w = p_roll * tele  # Error density per sequence, = P^theta - P^roll (1 + sum(rho-1))
    w_state = np.bincount(final, weights=w, minlength=int(mdp.n_states[-1]))

    # delta, eps: maxima over contexts reachable under pi_roll (every earlier token has
    # pi_roll > 0); every reachable context appears in at least one enumerated sequence.
    reach_t = mdp.init[np.repeat(np.arange(S1), per)] > 0
    delta = eps = 0.0
    for t in range(T):
        delta = max(delta, float(kl_ctx[reach_t, t].max(initial=0.0)))
        eps = max(eps, float(tv_ctx[reach_t, t].max(initial=0.0)))
        reach_t = reach_t & (mdp.step(t)[1][states[:, t], tokens[:, t]] > 0)

    with np.errstate(invalid="ignore"):
        dkl_terms = np.where(p_roll > 0, p_roll * (-total_lr), 0.0)
    dkl_seq = float(dkl_terms.sum())
    dtv_seq = 0.5 * float((p_roll * np.abs(np.expm1(total_lr))).sum())

    g = _advantage_shift(mdp)
    pdi_theta = np.array([(p_theta * g[t][states[:, t]]).sum() for t in range(T)])
    pdi_roll = np.array([(p_roll * g[t][states[:, t]]).sum() for t in range(T)])
    return ReferenceResult(
        J_roll=float((p_roll * R).sum()),
        J_theta=float((p_theta * R).sum()),
        surrogate=float((p_roll * R * rho_m1.sum(axis=1)).sum()),
        error_ratio_form=float((R * w).sum()),
        worst_case_error=0.5 * float(np.abs(w_state).sum()),
        delta=delta,
        eps=eps,
        dkl_seq=dkl_seq,
        dtv_seq=dtv_seq,
        dbar=(p_roll[:, None] * tv_ctx).sum(axis=0),
        pdi_theta=pdi_theta,
        pdi_roll=pdi_roll,
    )

