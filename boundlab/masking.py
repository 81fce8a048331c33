"""Trust Region Masking (TRM) and sample-based mismatch detectors, exactly.

Definitions: theory.md section 6; Li et al., arXiv 2512.23075 (v4 section "Trust Region
Masking", Appendix "Length-Neutral Trust Region Masking"). Sign convention everywhere:
rho_t = pi_theta(y_t | c_t) / pi_roll(y_t | c_t), l_t = log rho_t.

Exact sequence criteria (full distributions, as TRM with stored logits):
    TRMMax(delta_max)          max_t D_KL(c_t) <= delta_max
    TRMAvg(delta_avg)          (1/T) sum_t D_KL(c_t) <= delta_avg
    Combined(delta_max, delta_avg)   both
    LengthNeutral(delta_W, delta, eps)   W / Z <= delta_W, W = sum_t |rho_t - 1| w_t,
                               w_t = min(1, (T-t) eps, sqrt((T-t) delta / 2)), Z = sum_t w_t
    SER(delta_ser)             (1/T) sum_t |rho_t - 1| <= delta_ser

Sample-based detectors, spelled as verl's rollout correction (``rollout_rs`` options):
    k1 = -l_t, k2 = l_t^2 / 2, k3 = rho_t - 1 - l_t, aggregated per token (token_k*: the
    sequence is "accepted" when no token is masked), or over the sequence (seq_sum_k*,
    seq_mean_k*, seq_max_k2, seq_max_k3). Thresholds as verl: k1 takes "lower_upper" bounds
    on the ratio (token: rho_t; seq_sum: prod_t rho_t; seq_mean: the geometric mean), a single
    float u meaning [1/u, u]; k2 and k3 take one upper value.

How each probability is computed (always reported with the result):
    "dp"          exact on any automaton, for rules that are checks at every step
                  (TRMMax, token_*, seq_max_*, and conjunctions of these): a forward pass
                  with the failing transitions removed;
    "enumeration" exact, for instances with at most ``ENUMERATE_LIMIT`` sequences;
    "monte-carlo" a seeded estimate with its standard error, otherwise.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import _kernels
from ._kernels import STAT_COLUMNS
from .bounds import _future_k, _pinsker_route
from .errors import ValidationError
from .evaluation import evaluate, forward_pass
from .model import TokenMDP
from .reference import paths

__all__ = [
    "TRMMax", "TRMAvg", "Combined", "LengthNeutral", "SER", "Detector", "AllOf",
    "Estimate", "acceptance", "agreement", "masked_surrogate", "sample", "BatchStats",
    "batch_stats", "length_neutral_weights", "ENUMERATE_LIMIT", "path_product_sum",
    "step_expectations", "masked_batch_surrogate",
]

ENUMERATE_LIMIT = 2**18


# ---------------------------------------------------------------- rules
@dataclass(frozen=True)
class TRMMax:
    """max_t D_KL(c_t) <= delta_max (exact KL from full distributions)."""

    delta_max: float
    is_stepwise = True
    name = "TRM-Max"


@dataclass(frozen=True)
class TRMAvg:
    """(1/T) sum_t D_KL(c_t) <= delta_avg."""

    delta_avg: float
    is_stepwise = False
    name = "TRM-Avg"


@dataclass(frozen=True)
class Combined:
    """TRM-Max and TRM-Avg together."""

    delta_max: float
    delta_avg: float
    is_stepwise = False
    name = "TRM-Max+Avg"


@dataclass(frozen=True)
class LengthNeutral:
    """W / Z <= delta_W with W = sum_t |rho_t - 1| w_t (length-neutral TRM)."""

    delta_W: float
    delta: float
    eps: float
    is_stepwise = False
    name = "LN-TRM"


@dataclass(frozen=True)
class SER:
    """Sequence-error ratio (1/T) sum_t |rho_t - 1| <= delta_ser."""

    delta_ser: float
    is_stepwise = False
    name = "SER"


@dataclass(frozen=True)
class Detector:
    """A verl rollout-correction rejection option, e.g. ``Detector("seq_max_k2", 2.0)`` or
    ``Detector("token_k1", "0.5_2.0")``.

    Raises ValidationError for an unknown option or a malformed threshold.
    """

    option: str
    threshold: object
    kind: str = field(init=False)
    agg: str = field(init=False)
    lo: float = field(init=False)
    hi: float = field(init=False)

    def __post_init__(self):
        agg, _, kind = self.option.rpartition("_")
        if kind not in ("k1", "k2", "k3") or agg not in ("token", "seq_sum", "seq_mean",
                                                          "seq_max"):
            raise ValidationError(f"unknown detector {self.option!r}; expected token_k1..3, "
                                  "seq_sum_k1..3, seq_mean_k1..3, seq_max_k2 or seq_max_k3")
        if agg == "seq_max" and kind == "k1":
            raise ValidationError("seq_max_k1 is not a verl option (k1 is signed)")
        if kind == "k1":
            if isinstance(self.threshold, str) and "_" in self.threshold:
                lo_s, hi_s = self.threshold.split("_", 1)
                lo, hi = float(lo_s), float(hi_s)
            else:
                hi = float(self.threshold)
                lo = 1.0 / hi
            if not 0 < lo <= 1 <= hi:
                raise ValidationError(f"{self.option} threshold {self.threshold!r}: need "
                                      "0 < lower <= 1 <= upper (ratio bounds)")
            lo, hi = math.log(lo), math.log(hi)  # bounds on l = log rho (i.e. on -k1)
        else:
            hi = float(self.threshold)
            if not hi >= 0:
                raise ValidationError(f"{self.option} threshold {self.threshold!r} must be "
                                      ">= 0 (an upper bound)")
            lo = -math.inf
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "agg", agg)
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @property
    def is_stepwise(self) -> bool:
        return self.agg in ("token", "seq_max")

    @property
    def name(self) -> str:
        return f"{self.option}({self.threshold})"


@dataclass(frozen=True)
class AllOf:
    """Conjunction of rules (verl combines several options this way)."""

    rules: tuple

    @property
    def is_stepwise(self) -> bool:
        return all(r.is_stepwise for r in self.rules)

    @property
    def name(self) -> str:
        return " & ".join(r.name for r in self.rules)


def length_neutral_weights(T: int, delta: float, eps: float) -> np.ndarray:
    """w_t = min(1, (T - t) eps, sqrt((T - t) delta / 2)), t = 1..T (theory.md section 6)."""
    k = _future_k(T)
    return np.minimum(np.minimum(1.0, k * eps), _pinsker_route(k, delta))


# ---------------------------------------------------------------- per-sequence decisions
def _accept(rule, st: dict, T: int) -> np.ndarray:
    """Acceptance of each sequence from its statistics (columns of STAT_COLUMNS)."""
    if isinstance(rule, AllOf):
        out = np.ones(len(st["sum_lr"]), dtype=bool)
        for r in rule.rules:
            out &= _accept(r, st, T)
        return out
    if isinstance(rule, TRMMax):
        return st["max_kl"] <= rule.delta_max
    if isinstance(rule, TRMAvg):
        return st["sum_kl"] / T <= rule.delta_avg
    if isinstance(rule, Combined):
        return (st["max_kl"] <= rule.delta_max) & (st["sum_kl"] / T <= rule.delta_avg)
    if isinstance(rule, LengthNeutral):
        Z = length_neutral_weights(T, rule.delta, rule.eps).sum()
        W = st["sum_w_abs"]
        return W <= rule.delta_W * Z if Z > 0 else W <= 0
    if isinstance(rule, SER):
        return st["sum_abs"] / T <= rule.delta_ser
    if isinstance(rule, Detector):
        if rule.kind == "k1":
            if rule.agg == "token":  # every token's ratio within [lower, upper]
                return (st["min_lr"] >= rule.lo) & (st["max_lr"] <= rule.hi)
            stat = st["sum_lr"] if rule.agg == "seq_sum" else st["sum_lr"] / T
            return (stat >= rule.lo) & (stat <= rule.hi)
        key = "k2" if rule.kind == "k2" else "k3"
        stat = {"token": st[f"max_{key}"], "seq_max": st[f"max_{key}"],
                "seq_sum": st[f"sum_{key}"], "seq_mean": st[f"sum_{key}"] / T}[rule.agg]
        return stat <= rule.hi
    raise ValidationError(f"not a masking rule: {rule!r}")


def _weights_of(rule, T: int) -> np.ndarray:
    """LN-TRM weights needed by the rule (zeros if none)."""
    if isinstance(rule, LengthNeutral):
        return length_neutral_weights(T, rule.delta, rule.eps)
    if isinstance(rule, AllOf):
        for r in rule.rules:
            if isinstance(r, LengthNeutral):
                return length_neutral_weights(T, r.delta, r.eps)
    return np.zeros(T)


def _stats_from_paths(pa, weights) -> dict:
    lr = pa.lr
    with np.errstate(invalid="ignore"):
        k3 = np.where(np.isfinite(lr), np.expm1(lr) - lr, np.inf)
    small = np.abs(lr) < 1e-3
    k3 = np.where(small, lr * lr * (0.5 + lr * (1 / 6 + lr * (1 / 24 + lr / 120))), k3)
    k2 = 0.5 * lr**2
    rm1 = pa.rho_m1
    return {
        "sum_lr": lr.sum(axis=1), "min_lr": lr.min(axis=1), "max_lr": lr.max(axis=1),
        "sum_k2": k2.sum(axis=1), "max_k2": k2.max(axis=1),
        "sum_k3": k3.sum(axis=1), "max_k3": k3.max(axis=1),
        "sum_abs": np.abs(rm1).sum(axis=1), "sum_w_abs": (np.abs(rm1) * weights).sum(axis=1),
        "max_kl": pa.kl_ctx.max(axis=1), "sum_kl": pa.kl_ctx.sum(axis=1),
        "sum_rho_m1": rm1.sum(axis=1), "sum_rho_m1_sq": (rm1**2).sum(axis=1),
        "final": pa.final,
    }


# ---------------------------------------------------------------- exact DP primitives
def path_product_sum(mdp: TokenMDP, factor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For per-transition factors f (same shape as the flat pi_roll table), return, per
    final state s, sum over paths into s of init * prod_t f(s_t, y_t), and
    sum over those paths of init * prod_t f * sum_t (rho_t - 1)  (two arrays).

    With f = pi_roll * 1[transition passes] this is P(accept, s_{T+1} = s) and
    E_roll[M sum_t (rho_t - 1); s_{T+1} = s]. Runs the numba forward kernel with f in
    place of pi_roll (transitions with f = 0 are skipped).
    """
    m, _, a, *_ = forward_pass(mdp, roll=factor)
    return m, a


def step_expectations(mdp: TokenMDP, row_values: np.ndarray) -> np.ndarray:
    """E_{d_t^roll}[f(c_t)] for t = 1..T, for a function f given per row of the flat tables
    (shape (rows,)). Exact: the forward kernel's per-step expected-KL output with f in
    place of the KL."""
    return forward_pass(mdp, row_values=row_values)[8]


def _pass_table(mdp: TokenMDP, rule) -> np.ndarray:
    """Boolean (rows, V): does a step from this row with this token pass the stepwise rule?"""
    fl = mdp._flat
    lr = fl["logratio"]
    if isinstance(rule, AllOf):
        ok = np.ones(lr.shape, dtype=bool)
        for r in rule.rules:
            ok &= _pass_table(mdp, r)
        return ok
    if isinstance(rule, TRMMax):
        return np.broadcast_to((fl["kl"] <= rule.delta_max)[:, None], lr.shape).copy()
    if isinstance(rule, Detector) and rule.is_stepwise:
        if rule.kind == "k1":
            return (lr >= rule.lo) & (lr <= rule.hi)
        with np.errstate(invalid="ignore"):
            stat = 0.5 * lr**2 if rule.kind == "k2" else np.where(
                np.isfinite(lr), np.expm1(lr) - lr, np.inf)
        small = np.abs(lr) < 1e-3
        if rule.kind == "k3":
            stat = np.where(small, lr * lr * (0.5 + lr * (1 / 6 + lr * (1 / 24 + lr / 120))),
                            stat)
        return stat <= rule.hi
    raise ValidationError(f"{rule!r} is not a check at every step; no exact DP for it")


# ---------------------------------------------------------------- results
@dataclass(frozen=True)
class Estimate:
    """A probability or expectation with how it was obtained.

    value; stderr (0 when exact); method: "dp", "enumeration" or "monte-carlo"; exact: bool.
    """

    value: float
    method: str
    stderr: float = 0.0

    @property
    def exact(self) -> bool:
        return self.method != "monte-carlo"


def _method(mdp: TokenMDP, rule, method: str) -> str:
    if method != "auto":
        if method == "dp" and not rule.is_stepwise:
            raise ValidationError(f"{rule.name} is not a check at every step; no exact DP")
        if method == "enumeration" and mdp.n_sequences > ENUMERATE_LIMIT:
            raise ValidationError(f"{mdp.n_sequences:.3g} sequences: too many to enumerate")
        return method
    if rule.is_stepwise:
        return "dp"
    if mdp.n_sequences <= ENUMERATE_LIMIT:
        return "enumeration"
    return "monte-carlo"


def acceptance(mdp: TokenMDP, rule, *, method: str = "auto", n: int = 20_000,
               seed: int = 0) -> Estimate:
    """P_roll(rule accepts the sequence), exact where possible (see module docstring)."""
    how = _method(mdp, rule, method)
    if how == "dp":
        ok = _pass_table(mdp, rule)
        m, _ = path_product_sum(mdp, np.where(ok, mdp._flat["roll"], 0.0))
        return Estimate(float(m.sum()), "dp")
    if how == "enumeration":
        pa = paths(mdp, ENUMERATE_LIMIT)
        acc = _accept(rule, _stats_from_paths(pa, _weights_of(rule, mdp.T)), mdp.T)
        return Estimate(float(pa.p_roll[acc].sum()), "enumeration")
    st = sample(mdp, n, seed=seed, weights=_weights_of(rule, mdp.T))
    acc = _accept(rule, st, mdp.T)
    p = float(acc.mean())
    return Estimate(p, "monte-carlo", math.sqrt(max(p * (1 - p), 1e-300) / n))


def agreement(mdp: TokenMDP, detector, criterion, *, method: str = "auto",
              n: int = 20_000, seed: int = 0) -> dict[str, Estimate]:
    """How a detector's decisions relate to an exact criterion's, under pi_roll:

    false_accept = P(detector accepts and criterion rejects),
    false_reject = P(detector rejects and criterion accepts), plus both acceptances.
    """
    both = AllOf((detector, criterion))
    how = _method(mdp, both, method)
    if how == "monte-carlo":
        st = sample(mdp, n, seed=seed, weights=_weights_of(both, mdp.T))
        d, c = _accept(detector, st, mdp.T), _accept(criterion, st, mdp.T)

        def est(x):
            p = float(x.mean())
            return Estimate(p, "monte-carlo", math.sqrt(max(p * (1 - p), 1e-300) / n))

        return {"false_accept": est(d & ~c), "false_reject": est(~d & c),
                "detector_accept": est(d), "criterion_accept": est(c)}
    pd_ = acceptance(mdp, detector, method=how).value
    pc = acceptance(mdp, criterion, method=how).value
    pb = acceptance(mdp, both, method=how).value
    return {"false_accept": Estimate(max(pd_ - pb, 0.0), how),
            "false_reject": Estimate(max(pc - pb, 0.0), how),
            "detector_accept": Estimate(pd_, how), "criterion_accept": Estimate(pc, how)}


def masked_surrogate(mdp: TokenMDP, rule, *, baseline: float = 0.0,
                     method: str = "auto", n: int = 20_000, seed: int = 0) -> dict:
    """Exact (or estimated) masked surrogates under pi_roll, normalised by all sequences:

    ``masked`` = E_roll[M (R - b) sum_t rho_t]  (theory.md section 6, b = ``baseline``);
    ``masked_centered`` = E_roll[M R sum_t (rho_t - 1)]  (comparable with the full L);
    ``full`` = L = E_roll[R sum_t (rho_t - 1)]; ``improvement`` = J(theta) - J(roll);
    ``acceptance`` = P(M = 1); ``method``.
    """
    how = _method(mdp, rule, method)
    report = evaluate(mdp)
    R, T = mdp.reward, mdp.T
    if how == "dp":
        ok = _pass_table(mdp, rule)
        m, a = path_product_sum(mdp, np.where(ok, mdp._flat["roll"], 0.0))
        p_acc, E_MR, E_MRs = m.sum(), R @ m, R @ a   # E[M], E[M R], E[M R sum(rho - 1)]
        E_Ms = a.sum()                                # E[M sum(rho - 1)]
        se = 0.0
    else:
        if how == "enumeration":
            pa = paths(mdp, ENUMERATE_LIMIT)
            st = _stats_from_paths(pa, _weights_of(rule, T))
            w = pa.p_roll
            Rs = pa.reward
        else:
            st = sample(mdp, n, seed=seed, weights=_weights_of(rule, T))
            w = np.full(n, 1.0 / n)
            Rs = R[st["final"].astype(np.int64)]
        M = _accept(rule, st, T).astype(float)
        s = st["sum_rho_m1"]
        p_acc, E_MR, E_MRs, E_Ms = (w * M).sum(), (w * M * Rs).sum(), \
            (w * M * Rs * s).sum(), (w * M * s).sum()
        se = float(np.std(M * (Rs - baseline) * (s + T)) / math.sqrt(n)) \
            if how == "monte-carlo" else 0.0
    masked = (E_MRs + T * E_MR) - baseline * (E_Ms + T * p_acc)
    return {"masked": float(masked), "masked_centered": float(E_MRs),
            "full": report.surrogate, "improvement": report.J_theta - report.J_roll,
            "acceptance": float(p_acc), "method": how, "stderr": se}


# ---------------------------------------------------------------- Monte Carlo
def sample(mdp: TokenMDP, n: int, *, seed: int = 0, weights=None) -> dict:
    """Draw ``n`` sequences from pi_roll (numba sampler, seeded) and return per-sequence
    statistics (dict of arrays, keys ``STAT_COLUMNS``). ``weights`` (T,) are the LN-TRM
    weights used for ``sum_w_abs`` (zeros by default). Same seed, same draws."""
    if n < 1:
        raise ValidationError(f"n = {n}: draw at least one sequence")
    out = _draw(mdp, n, seed, weights)
    return {name: out[:, i] for i, name in enumerate(STAT_COLUMNS)}


def _draw(mdp: TokenMDP, n: int, seed: int, weights=None, logratio=None,
          chunk: int = 1 << 20) -> np.ndarray:
    """The sampler's raw (n, len(STAT_COLUMNS)) output. ``logratio`` replaces the
    per-transition log ratio table (the draws depend only on ``seed``)."""
    fl = mdp._flat
    T = mdp.T
    w = np.zeros(T) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (T,):
        raise ValidationError(f"weights has shape {w.shape}; expected ({T},)")
    lr = fl["logratio"] if logratio is None else np.ascontiguousarray(logratio)
    cdf = _cdf(fl["roll"])
    init_cdf = _cdf(fl["init"][None, :])[0]
    rng = np.random.default_rng(seed)
    per_chunk = max(1, chunk // (T + 1))
    parts = []
    done = 0
    while done < n:
        k = min(per_chunk, n - done)
        u = rng.random((k, T + 1))
        parts.append(_kernels.sample_paths(fl["nxt"], cdf, lr, fl["kl"], fl["block_start"],
                                           fl["layer_block"], init_cdf, u, w))
        done += k
    return np.concatenate(parts)


def _cdf(p: np.ndarray) -> np.ndarray:
    """Row CDFs with every entry from the last positive probability on set to exactly 1,
    so inverse-CDF sampling with u in [0, 1) never picks a zero-probability token."""
    c = np.cumsum(p, axis=1)
    last = p.shape[1] - 1 - np.argmax(p[:, ::-1] > 0, axis=1)
    cols = np.arange(p.shape[1])[None, :]
    return np.ascontiguousarray(np.where(cols >= last[:, None], 1.0, c))


@dataclass(frozen=True)
class BatchStats:
    """Batch statistics with the names practitioners log (column ``batch``), the standard
    error of the batch mean (``stderr``; NaN for ess, a ratio), and the exact expectation
    (``exact``; NaN where no exact method applies, ``method`` says why)."""

    frame: pd.DataFrame
    n: int
    seed: int

    def __str__(self) -> str:
        return self.frame.to_string()


def batch_stats(mdp: TokenMDP, n: int, *, token_rule: Detector | None = None,
                seq_rule=None, seed: int = 0) -> BatchStats:
    """Sample ``n`` sequences and report: masked_fraction (tokens masked by ``token_rule``,
    a token_* detector), seq_masked_fraction (sequences rejected by ``seq_rule``), k3_kl
    (mean k3 per token), log_ppl_abs_diff (mean over sequences of |mean_t l_t|), chi2_token
    (mean rho_t^2 - 1), chi2_seq (mean (prod rho)^2 - 1), ess (effective sample size
    fraction (sum w)^2 / (n sum w^2) of the sequence weights w = prod rho)."""
    T = mdp.T
    st = sample(mdp, n, seed=seed, weights=_weights_of(seq_rule, T) if seq_rule else None)
    fl = mdp._flat
    rows = []
    report = evaluate(mdp)
    # exact expectations
    theta, roll = fl["theta"], fl["roll"]
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2_rows = np.where(roll > 0, theta**2 / np.where(roll > 0, roll, 1.0), 0.0).sum(1) - 1
    chi2_token_exact = float(step_expectations(mdp, chi2_rows).mean())
    with np.errstate(divide="ignore", invalid="ignore"):
        sq = np.where(roll > 0, theta**2 / np.where(roll > 0, roll, 1.0), 0.0)
    second_moment = float(path_product_sum(mdp, sq)[0].sum())
    w = np.exp(st["sum_lr"])
    n_sqrt = math.sqrt(n)

    def mean_se(x):  # sample mean and its standard error
        return float(x.mean()), float(x.std() / n_sqrt)

    if token_rule is not None:
        if token_rule.agg != "token":
            raise ValidationError("token_rule must be a token_* detector")
        ok = _pass_table(mdp, token_rule)
        fail_rows = (roll * ~ok).sum(axis=1)
        exact_mf = float(step_expectations(mdp, fail_rows).mean())
        rows.append(("masked_fraction", *_token_masked_fraction(mdp, token_rule, n, seed),
                     exact_mf, "dp"))
    if seq_rule is not None:
        acc = _accept(seq_rule, st, T)
        ex = acceptance(mdp, seq_rule, method="auto", n=n, seed=seed + 1)
        rows.append(("seq_masked_fraction", *mean_se(1.0 - acc),
                     1 - ex.value if ex.exact else math.nan, ex.method))
    rows.append(("k3_kl", *mean_se(st["sum_k3"] / T), report.dkl_seq / T, "dp"))
    if mdp.n_sequences <= ENUMERATE_LIMIT:
        pa = paths(mdp, ENUMERATE_LIMIT)
        lppl_exact, how = float((pa.p_roll * np.abs(pa.lr.sum(axis=1) / T)).sum()), \
            "enumeration"
    else:
        lppl_exact, how = math.nan, "needs enumeration (E of an absolute path sum)"
    rows.append(("log_ppl_abs_diff", *mean_se(np.abs(st["sum_lr"] / T)), lppl_exact, how))
    rows.append(("chi2_token", *mean_se(st["sum_rho_m1_sq"] / T), chi2_token_exact, "dp"))
    rows.append(("chi2_seq", *mean_se(w**2 - 1), second_moment - 1, "dp"))
    ess = float(w.sum() ** 2 / (n * (w**2).sum())) if (w**2).sum() > 0 else 0.0
    rows.append(("ess", ess, math.nan, 1.0 / second_moment, "dp (1 / E[w^2])"))
    frame = pd.DataFrame(rows, columns=["statistic", "batch", "stderr", "exact", "method"])
    return BatchStats(frame.set_index("statistic"), n, seed)


def _token_masked_fraction(mdp, rule, n, seed) -> tuple[float, float]:
    """Fraction of the sampled tokens that ``rule`` masks, and its standard error, on the
    same draws as :func:`sample` with this seed (the 0/1 failure of each transition is
    summed in place of the log ratio)."""
    fail = np.where(_pass_table(mdp, rule), 0.0, 1.0)
    per_seq = _draw(mdp, n, seed, logratio=fail)[:, 0] / mdp.T
    return float(per_seq.mean()), float(per_seq.std() / math.sqrt(n))


def masked_batch_surrogate(mdp: TokenMDP, rule, n: int, *, baseline: float = 0.0,
                           seed: int = 0) -> float:
    """The batch estimate (1/N) sum_i M_i (R_i - b) sum_t rho_t of the masked surrogate,
    normalised by the total batch size N (theory.md section 6). An all-masked batch gives
    0 (zero gradient) with a RuntimeWarning, never a division by zero."""
    st = sample(mdp, n, seed=seed, weights=_weights_of(rule, mdp.T))
    M = _accept(rule, st, mdp.T)
    if not M.any():
        warnings.warn(f"all {n} sequences of the batch were masked by {rule.name}: the "
                      "masked surrogate and its gradient are zero", RuntimeWarning,
                      stacklevel=2)
        return 0.0
    R = mdp.reward[st["final"].astype(np.int64)]
    return float((M * (R - baseline) * (st["sum_rho_m1"] + mdp.T)).sum() / n)
