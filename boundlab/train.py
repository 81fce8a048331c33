"""Policy optimisation in a TokenMDP under injected training-inference mismatch (issue 5).

Each iteration i, with current policy pi_i = softmax(z_i) (tabular logits):

1. the rollout policy mu_i is a mismatched copy of pi_i: ``"bf16"`` (logits and softmax
   in bfloat16, as an inference backend), ``"moe"`` (a fresh random fraction ``flip_rate``
   of the contexts gets its top token's logit lowered by ``jump`` nats: routing flips),
   ``"stale"`` (mu_i = pi_{i-k}) or ``"none"``;
2. the update is z_{i+1} = z_i + lr * g, with g the method's exact expected gradient
   (theory in :mod:`boundlab.objectives`) computed with pi_roll = mu_i, pi_theta = pi_i;
3. the log records, for the step mu_i -> pi_{i+1}: J (of pi_i and pi_{i+1}), the
   surrogate L, the exact error, delta, the unified bound, whether the step was guaranteed
   to improve (L > bound) and whether it did (J(pi_{i+1}) > J(mu_i)), the masked fraction
   of the method's sequence rule, and the log absolute perplexity gap between mu_i and pi_i.

The update is exact by default; ``batch=N`` uses a sampled batch of N sequences instead
(the logged quantities stay exact). PPG trains on per-step rewards (its own objective).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ml_dtypes
import numpy as np
import pandas as pd
from scipy.special import softmax

from .errors import ValidationError
from .evaluation import evaluate
from .masking import ENUMERATE_LIMIT
from .model import TokenMDP
from .objectives import (PPG, RPG, MethodResult, expected, logits_of, ppg_gradient,
                         ppg_objective, rpg_expected, sampled)
from .reference import paths

__all__ = ["Mismatch", "train", "rollout_policy", "log_ppl_gap"]


@dataclass(frozen=True)
class Mismatch:
    """How the rollout policy differs from the trained one (see module docstring)."""

    kind: str = "moe"
    flip_rate: float = 0.1
    jump: float = 7.0
    staleness: int = 1

    def __post_init__(self):
        if self.kind not in ("none", "bf16", "moe", "stale"):
            raise ValidationError(f"mismatch kind {self.kind!r}; expected none, bf16, moe "
                                  "or stale")
        if not 0 <= self.flip_rate <= 1 or self.staleness < 1:
            raise ValidationError("flip_rate must lie in [0, 1] and staleness be >= 1")


def _softmax_bf16(z: np.ndarray) -> np.ndarray:
    bf = ml_dtypes.bfloat16
    x = np.where(np.isfinite(z), z, -1e30).astype(bf)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    p = (e / e.sum(axis=1, keepdims=True, dtype=bf)).astype(np.float64)
    p = np.where(np.isfinite(z), p, 0.0)
    return p / p.sum(axis=1, keepdims=True)


def rollout_policy(z: np.ndarray, history: list, mismatch: Mismatch,
                   rng: np.random.Generator) -> np.ndarray:
    """Rollout probabilities (rows, V) for current logits ``z`` (``history`` holds past
    logits, newest last)."""
    if mismatch.kind == "none":
        return softmax(z, axis=1)
    if mismatch.kind == "bf16":
        return _softmax_bf16(z)
    if mismatch.kind == "stale":
        past = history[-mismatch.staleness] if len(history) >= mismatch.staleness \
            else history[0]
        return softmax(past, axis=1)
    zz = z.copy()
    n = zz.shape[0]
    flip = rng.random(n) < mismatch.flip_rate
    top = np.argmax(np.where(np.isfinite(zz), zz, -np.inf), axis=1)
    zz[np.arange(n)[flip], top[flip]] -= mismatch.jump
    return softmax(zz, axis=1)


def _pair(template: TokenMDP, roll: np.ndarray, theta: np.ndarray) -> TokenMDP:
    fl = template._flat
    starts, lb, ns = fl["block_start"], fl["layer_block"], fl["n_states"]
    cache_r, cache_t = {}, {}
    R, Th = [], []
    for t in range(template.T):
        k = int(lb[t])
        if k not in cache_r:
            sl = slice(starts[k], starts[k] + ns[t])
            cache_r[k], cache_t[k] = roll[sl], theta[sl]
        R.append(cache_r[k])
        Th.append(cache_t[k])
    return TokenMDP([template.step(t)[0] for t in range(template.T)], R, Th,
                    template.init, template.reward)


def log_ppl_gap(mdp: TokenMDP, *, n: int = 2000, seed: int = 0) -> float:
    """E_roll |(1/T) sum_t log pi_theta(y_t) - log pi_roll(y_t)| (theory.md section 6):
    exact by enumeration on small models, else a seeded Monte Carlo mean of n sequences."""
    if mdp.n_sequences <= ENUMERATE_LIMIT:
        pa = paths(mdp, ENUMERATE_LIMIT)
        return float((pa.p_roll * np.abs(pa.lr.sum(axis=1) / mdp.T)).sum())
    from .masking import sample

    return float(np.abs(sample(mdp, n, seed=seed)["sum_lr"] / mdp.T).mean())


def _grad(method, pair: TokenMDP, step_rewards, batch=None, seed=0) -> MethodResult:
    if isinstance(method, RPG):
        res = rpg_expected(method, pair)
        return MethodResult(-res.objective, -res.gradient, 1.0, 0.0, res.method)
    if isinstance(method, PPG):
        g = ppg_gradient(method, pair, step_rewards)  # on-policy: samples from pi_theta
        return MethodResult(ppg_objective(pair, step_rewards), g, 1.0, 0.0, "dp")
    if batch is not None:
        return sampled(method, pair, batch, seed=seed)
    return expected(method, pair)


def train(template: TokenMDP, method, *, iterations: int = 50, lr: float = 1.0,
          mismatch: Mismatch = Mismatch(), seed: int = 0, step_rewards=None,
          batch: int | None = None) -> pd.DataFrame:
    """Train pi_theta (initialised at ``template``'s pi_theta) with ``method``'s exact
    gradient under ``mismatch``; returns one row per iteration (see module docstring).

    ``batch``: if given, each update uses a sampled batch of that many sequences from
    the rollout policy (:func:`boundlab.objectives.sampled`, batch-mean baseline, seeded)
    instead of the exact expected gradient; the logged quantities stay exact.
    ``step_rewards`` (per step, (S_t, V)) is needed for PPG methods, which ascend
    E[sum_t r_t]; the others ascend J = E[R]. PPG and RPG use exact gradients only."""
    if batch is not None and (isinstance(method, (PPG, RPG)) or batch < 1):
        raise ValidationError("batch must be a positive integer, for token methods")
    if iterations < 1 or not (lr > 0 and math.isfinite(lr)):
        raise ValidationError("iterations must be >= 1 and lr a positive number")
    if isinstance(method, PPG) and step_rewards is None:
        raise ValidationError("PPG needs step_rewards")
    rng = np.random.default_rng(seed)
    z = logits_of(template).copy()
    history = [z.copy()]
    rows = []
    for i in range(iterations):
        mu = rollout_policy(z, history, mismatch, rng)
        theta = softmax(z, axis=1)
        pair = _pair(template, mu, theta)
        res = _grad(method, pair, step_rewards, batch, seed * 100_003 + i)
        z_new = z + lr * res.gradient
        new_pair = _pair(template, mu, softmax(z_new, axis=1))
        rep_new = evaluate(new_pair)
        rep_cur = evaluate(pair)
        rows.append({
            "iteration": i, "J": rep_cur.J_theta, "J_next": rep_new.J_theta,
            "J_roll": rep_new.J_roll, "surrogate": rep_new.surrogate, "error": rep_new.error,
            "delta": rep_new.delta, "unified": rep_new.bounds["unified"],
            "guaranteed": bool(rep_new.surrogate > rep_new.bounds["unified"]),
            "improved": bool(rep_new.J_theta > rep_new.J_roll),
            "masked_fraction": 1.0 - res.acceptance,
            "log_ppl_gap": log_ppl_gap(pair, seed=seed + i),
            "objective": res.objective,
            "step_objective": ppg_objective(pair, step_rewards) if step_rewards is not None
            else math.nan,
        })
        history.append(z_new.copy())
        z = z_new
    return pd.DataFrame(rows)

