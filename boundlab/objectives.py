"""Method zoo: per-token objectives of LLM policy-gradient methods, exactly (issue 5).

Definitions: ``shared/spec/methods.md``. Notation there: mu = pi_roll (behaviour),
pi = pi_theta, r_t = pi(y_t|s_t) / mu(y_t|s_t), Delta_t = pi - mu at the sampled token,
A = R(y) - b the sequence advantage broadcast to every token (b a constant baseline; the
group mean of GRPO is replaced by its expectation, J(roll) by default).

Every token method here has an objective of the form
    phi_t = A+ f+(r_t, context) - A- f-(r_t, context),   A+ = max(A, 0), A- = max(-A, 0),
and its gradient with respect to the logits z of pi (tabular softmax, one row of logits per
distinct state table) is sum_t coef_t grad log pi(y_t|s_t) with
    coef_t = A+ c+ - A- c-,   c = r d f / d r   (masks and divergences held fixed, as the
methods' stop-gradients do). The exact expectation under pi_roll uses one backward pass for
E_roll[A+- | s_{t+1}] and one forward pass for the visitation d_t (``method="dp"``, any
automaton); ``method="enumeration"`` sums over every sequence (small instances), and is
also the only path for sequence masks that are not checks at every step (TRM-Avg, SER,
LN-TRM) and for the sequence-level RPG objectives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import ValidationError
from .evaluation import evaluate
from .masking import ENUMERATE_LIMIT, _accept, _pass_table, _stats_from_paths, _weights_of
from .model import TokenMDP
from .reference import paths

__all__ = [
    "PGIS", "TIS", "PPOClip", "DualClip", "TokenMask", "TRMMask", "DPPO", "SPO", "DRPO",
    "TOKEN_METHODS", "MethodResult", "expected", "sampled", "coefficients",
    "finite_difference_gradient", "dppo_divergence", "with_logits",
    "logits_of", "RPG", "rpg_expected", "j_beta", "GRPOK3", "grpo_k3_expected", "PPG",
    "ppg_gradient", "ppg_objective", "objective_J",
]


# ---------------------------------------------------------------- token methods
@dataclass(frozen=True)
class PGIS:
    """Importance-sampled policy gradient: phi = r A; coef = A r."""

    name = "PG-IS"
    source = "standard (importance-sampled REINFORCE)"
    coef = "A r_t"
    seq_rule = None

    def parts(self, r, ctx):
        return r, r, r, r


@dataclass(frozen=True)
class TIS:
    """Truncated IS ("CISPO" in the DPPO paper): phi = sg(min(r, C)) A log pi;
    coef = A min(r, C). Its update is the gradient of phi only with the weight frozen."""

    C: float = 2.0
    name = "TIS"
    source = "Yao et al. 2025; MiniMax-M1 (CISPO)"
    coef = "A min(r_t, C)"
    seq_rule = None

    def parts(self, r, ctx):
        w = np.minimum(r, self.C)
        with np.errstate(divide="ignore"):
            logp = np.where(ctx["theta"] > 0, np.log(ctx["theta"]), 0.0)
        return w * logp, w * logp, w, w


def _clip(r, e_low, e_high):
    return np.clip(r, 1 - e_low, 1 + e_high)


@dataclass(frozen=True)
class PPOClip:
    """PPO / GRPO clip: phi = min(r A, clip(r, 1-e_low, 1+e_high) A); coef = A r, zeroed
    iff (A > 0 and r > 1+e_high) or (A < 0 and r < 1-e_low)."""

    e_low: float = 0.2
    e_high: float = 0.28
    name = "PPO-clip"
    source = "Schulman et al. 2017; DAPO clip-higher (e_low 0.2, e_high 0.28)"
    coef = "A r_t, 0 iff (A>0, r_t>1+e_high) or (A<0, r_t<1-e_low)"
    seq_rule = None

    def parts(self, r, ctx):
        c = _clip(r, self.e_low, self.e_high)
        fp, fm = np.minimum(r, c), np.maximum(r, c)
        return fp, fm, r * (r <= 1 + self.e_high), r * (r >= 1 - self.e_low)


@dataclass(frozen=True)
class DualClip:
    """Dual-clip PPO: as PPO, and for A < 0 the loss is capped at -c A; coef zeroed also
    when A < 0 and r > c."""

    e_low: float = 0.2
    e_high: float = 0.28
    c: float = 10.0
    name = "dual-clip PPO"
    source = "Ye et al. 2020"
    coef = "as PPO-clip, and 0 iff (A<0, r_t>c)"
    seq_rule = None

    def parts(self, r, ctx):
        cl = _clip(r, self.e_low, self.e_high)
        fp = np.minimum(r, cl)
        fm = np.minimum(np.maximum(r, cl), self.c)
        return fp, fm, r * (r <= 1 + self.e_high), r * ((r >= 1 - self.e_low) & (r <= self.c))


@dataclass(frozen=True)
class TokenMask:
    """Token masking (MIS / IcePop style): phi = M_t r A with M_t = 1[lo <= r <= hi]."""

    lo: float = 0.5
    hi: float = 2.0
    name = "token masking"
    source = "rollout-correction literature (MIS, IcePop)"
    coef = "A r_t 1[lo <= r_t <= hi]"
    seq_rule = None

    def parts(self, r, ctx):
        m = (r >= self.lo) & (r <= self.hi)
        return r * m, r * m, r * m, r * m


@dataclass(frozen=True)
class TRMMask:
    """TRM sequence masking: phi = M(y) r A with M from a masking rule (theory.md s. 6)."""

    rule: object = None
    name = "TRM"
    source = "Li et al., arXiv 2512.23075"
    coef = "A r_t M(y)"

    @property
    def seq_rule(self):
        return self.rule

    def parts(self, r, ctx):
        return r, r, r, r


def dppo_divergence(roll: np.ndarray, theta: np.ndarray, kind: str = "binary_tv",
                    k: int = 20) -> np.ndarray:
    """DPPO's divergence D(mu || pi) for every (context row, sampled token), shape (rows, V).

    binary_tv |mu(y) - pi(y)|; binary_kl KL(Bern(mu(y)) || Bern(pi(y))); topk_tv / topk_kl
    on the partition {top-k tokens of mu} + {rest} (the same for every token of a row);
    exact_tv / exact_kl over the full vocabulary. The binary and top-k forms are lower
    bounds of the exact ones (triangle and log-sum inequalities). methods.md; Qi et al.
    2026, arXiv 2602.04879.
    """
    from scipy.special import rel_entr

    def bern_kl(p, q):
        return rel_entr(p, q) + rel_entr(1 - p, 1 - q)

    if kind == "binary_tv":
        return np.abs(roll - theta)
    if kind == "binary_kl":
        return bern_kl(roll, theta)
    if kind in ("exact_tv", "exact_kl"):
        rows = 0.5 * np.abs(roll - theta).sum(axis=1) if kind == "exact_tv" else \
            rel_entr(roll, theta).sum(axis=1)
        return np.broadcast_to(rows[:, None], roll.shape).copy()
    if kind in ("topk_tv", "topk_kl"):
        kk = min(k, roll.shape[1])
        top = np.argsort(-roll, axis=1)[:, :kk]
        sel = np.zeros(roll.shape, dtype=bool)
        np.put_along_axis(sel, top, True, axis=1)
        mu_rest = np.where(sel, 0.0, roll).sum(axis=1)
        pi_rest = np.where(sel, 0.0, theta).sum(axis=1)
        if kind == "topk_tv":
            rows = 0.5 * (np.where(sel, np.abs(roll - theta), 0.0).sum(axis=1)
                          + np.abs(mu_rest - pi_rest))
        else:
            rows = np.where(sel, rel_entr(roll, theta), 0.0).sum(axis=1) + \
                rel_entr(mu_rest, pi_rest)
        return np.broadcast_to(rows[:, None], roll.shape).copy()
    raise ValidationError(f"unknown DPPO divergence {kind!r}")


@dataclass(frozen=True)
class DPPO:
    """DPPO: phi = M_t r A, M_t = 0 iff D > delta and ((A > 0, r > 1) or (A < 0, r < 1));
    coef = A min(r, C) M_t (with C < inf the update is not the gradient of phi)."""

    divergence: str = "binary_tv"
    delta: float = 0.15
    C: float = math.inf
    k: int = 20
    name = "DPPO"
    source = "Qi et al. 2026, arXiv 2602.04879"
    coef = "A min(r_t, C) M_t"
    seq_rule = None

    def parts(self, r, ctx):
        D = dppo_divergence(ctx["roll"], ctx["theta"], self.divergence, self.k)
        keep_p = ~((D > self.delta) & (r > 1))
        keep_m = ~((D > self.delta) & (r < 1))
        w = np.minimum(r, self.C)
        return r * keep_p, r * keep_m, w * keep_p, w * keep_m


@dataclass(frozen=True)
class SPO:
    """SPO: phi = r A - (|A| / (2 e)) (r - 1)^2; coef = A r (1 - sign(A (r-1)) |r-1| / e)."""

    e: float = 0.2
    name = "SPO"
    source = "Xie et al. 2024, arXiv 2401.16025"
    coef = "A r_t (1 - sign(A (r_t-1)) |r_t-1| / e)"
    seq_rule = None

    def parts(self, r, ctx):
        q = (r - 1) ** 2 / (2 * self.e)
        return r - q, r + q, r * (1 - (r - 1) / self.e), r * (1 + (r - 1) / self.e)


@dataclass(frozen=True)
class DRPO:
    """DRPO: phi = r A - (|A| / (2 delta)) mu (r - 1)^2; coef = A r (1 - sign(A) Delta/delta)."""

    delta: float = 12.5
    name = "DRPO"
    source = "Yao et al. 2026, arXiv 2606.09821"
    coef = "A r_t (1 - sign(A) Delta_t / delta)"
    seq_rule = None

    def parts(self, r, ctx):
        mu = ctx["roll"]
        q = mu * (r - 1) ** 2 / (2 * self.delta)
        dlt = ctx["theta"] - mu
        return r - q, r + q, r * (1 - dlt / self.delta), r * (1 + dlt / self.delta)


TOKEN_METHODS = (PGIS(), TIS(), PPOClip(), DualClip(), TokenMask(), DPPO(), SPO(), DRPO())


def coefficients(method, mdp: TokenMDP, advantage: float) -> np.ndarray:
    """The per-token coefficient on grad log pi(v | s) for every (row, token) of the flat
    tables, at sequence advantage ``advantage``: A+ c+ - A- c- (methods.md column "coef").
    Sequence masks are not applied here (they multiply the whole sequence)."""
    ctx = _context(mdp)
    _, _, cp, cm = method.parts(ctx["r"], ctx)
    return max(advantage, 0.0) * cp - max(-advantage, 0.0) * cm


# ---------------------------------------------------------------- exact expectation
@dataclass(frozen=True)
class MethodResult:
    """objective = E_roll[sum_t phi_t] (masked by the sequence rule, if any);
    gradient : (rows, V) d objective / d logits of pi_theta, per row of the flat tables
    (rows shared by several steps accumulate); acceptance of the sequence rule (1 if none);
    baseline used; method ("dp" or "enumeration")."""

    objective: float
    gradient: np.ndarray = field(repr=False)
    acceptance: float
    baseline: float
    method: str


def _flat_rows(mdp: TokenMDP, pa) -> np.ndarray:
    """Flat table row of every (enumerated sequence, step)."""
    fl = mdp._flat
    return pa.states + fl["block_start"][fl["layer_block"]][None, :]


def _scatter_gradient(mdp: TokenMDP, row, tok, coef) -> np.ndarray:
    """Gradient wrt pi_theta's logits of sum over (sequence, step) of coef * log pi(tok|row):
    grad_z(row) log pi(tok | row) = e_tok - pi_theta(row), accumulated per flat row."""
    theta = mdp._flat["theta"]
    grad = np.zeros(theta.shape)
    np.add.at(grad, (row, tok), coef)
    per_row = np.zeros(theta.shape[0])
    np.add.at(per_row, row, coef)
    return grad - per_row[:, None] * theta


def finite_difference_gradient(fun, z: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of ``fun`` over every finite entry of the logits ``z`` (error
    O(h^2) from truncation plus ~1e-16 / h from rounding: about 1e-10 at h = 1e-6)."""
    g = np.zeros_like(z)
    for i in zip(*np.nonzero(np.isfinite(z))):
        zp, zm = z.copy(), z.copy()
        zp[i] += h
        zm[i] -= h
        g[i] = (fun(zp) - fun(zm)) / (2 * h)
    return g


def _context(mdp: TokenMDP) -> dict:
    fl = mdp._flat
    roll, theta = fl["roll"], fl["theta"]
    r = np.where(roll > 0, theta / np.where(roll > 0, roll, 1.0), 0.0)
    return {"roll": roll, "theta": theta, "r": r}


def expected(method, mdp: TokenMDP, *, baseline=None, how: str = "auto") -> MethodResult:
    """Exact E_roll[sum_t phi_t] of a token method and its gradient wrt pi_theta's logits.

    ``baseline``: constant b in A = R - b; default J(roll). ``how``: "dp" (any automaton;
    sequence rules must be checks at every step), "enumeration" (<= ENUMERATE_LIMIT
    sequences, any rule) or "auto".
    """
    b = evaluate(mdp).J_roll if baseline is None else float(baseline)
    rule = method.seq_rule
    if how == "auto":
        how = "dp" if rule is None or rule.is_stepwise else "enumeration"
    if how == "dp":
        if rule is not None and not rule.is_stepwise:
            raise ValidationError(f"{rule.name} is not a check at every step: use "
                                  "how='enumeration'")
        return _expected_dp(method, mdp, b)
    if how == "enumeration":
        return _expected_enum(method, mdp, b)
    raise ValidationError(f"how = {how!r}; expected auto, dp or enumeration")


def _expected_dp(method, mdp, b):
    fl = mdp._flat
    ctx = _context(mdp)
    fp, fm, cp, cm = method.parts(ctx["r"], ctx)
    roll, theta = fl["roll"], fl["theta"]
    ok = _pass_table(mdp, method.seq_rule) if method.seq_rule is not None else \
        np.ones(roll.shape, dtype=bool)
    q = np.where(ok, roll, 0.0)                     # surviving transition probabilities
    R = mdp.reward
    Hp, Hm = np.maximum(R - b, 0.0), np.maximum(b - R, 0.0)
    T = mdp.T
    nxt, starts, lb, ns = fl["nxt"], fl["block_start"], fl["layer_block"], fl["n_states"]
    next_H = [None] * T                             # (S_t, V) E[A+- | s_{t+1} = next]
    for t in range(T - 1, -1, -1):
        rows = slice(starts[lb[t]], starts[lb[t]] + ns[t])
        hp, hm = Hp[nxt[rows]], Hm[nxt[rows]]
        next_H[t] = (rows, hp, hm)
        Hp, Hm = (q[rows] * hp).sum(axis=1), (q[rows] * hm).sum(axis=1)
    d = fl["init"].copy()
    obj = 0.0
    grad = np.zeros(roll.shape)
    for t in range(T):
        rows, hp, hm = next_H[t]
        wq = d[:, None] * q[rows]
        obj += float((wq * (fp[rows] * hp - fm[rows] * hm)).sum())
        W = wq * (cp[rows] * hp - cm[rows] * hm)
        grad[rows] += W - W.sum(axis=1, keepdims=True) * theta[rows]
        d = np.bincount(nxt[rows].ravel(), weights=wq.ravel(), minlength=int(ns[t + 1]))
    return MethodResult(obj, grad, float(d.sum()), b, "dp")


def _expected_enum(method, mdp, b):
    ctx = _context(mdp)
    fp, fm, cp, cm = method.parts(ctx["r"], ctx)
    pa = paths(mdp, ENUMERATE_LIMIT)
    row, tok = _flat_rows(mdp, pa), pa.tokens
    A = pa.reward - b
    Ap, Am = np.maximum(A, 0.0)[:, None], np.maximum(-A, 0.0)[:, None]
    if method.seq_rule is not None:
        st = _stats_from_paths(pa, _weights_of(method.seq_rule, mdp.T))
        M = _accept(method.seq_rule, st, mdp.T).astype(float)
    else:
        M = np.ones(len(pa.p_roll))
    w = (pa.p_roll * M)[:, None]
    obj = float((w * (Ap * fp[row, tok] - Am * fm[row, tok])).sum())
    grad = _scatter_gradient(mdp, row, tok, w * (Ap * cp[row, tok] - Am * cm[row, tok]))
    return MethodResult(obj, grad, float(pa.p_roll[M > 0].sum()), b, "enumeration")


def sampled(method, mdp: TokenMDP, n: int, *, seed: int = 0, baseline=None) -> MethodResult:
    """Batch estimate of :func:`expected`: draw ``n`` sequences from pi_roll (numba
    sampler, seeded) and average sum_t coef_t grad log pi(y_t|s_t) over them, with the
    sequence mask applied and normalised by n (the whole batch). ``baseline``: a constant,
    or None for the batch mean reward (GRPO's group mean). ``acceptance`` is the batch's
    accepted fraction. An all-masked batch gives a zero gradient with a RuntimeWarning."""
    import warnings
    from types import SimpleNamespace

    from . import _kernels
    from .masking import _cdf

    if n < 1:
        raise ValidationError(f"n = {n}: a batch needs at least one sequence")
    fl = mdp._flat
    ctx = _context(mdp)
    fp, fm, cp, cm = method.parts(ctx["r"], ctx)
    u = np.random.default_rng(seed).random((n, mdp.T + 1))
    row, tok, final = _kernels.sample_rows_tokens(
        fl["nxt"], _cdf(fl["roll"]), fl["block_start"], fl["layer_block"],
        _cdf(fl["init"][None, :])[0], u)
    R = mdp.reward[final]
    b = float(R.mean()) if baseline is None else float(baseline)
    Ap, Am = np.maximum(R - b, 0.0)[:, None], np.maximum(b - R, 0.0)[:, None]
    if method.seq_rule is not None:
        lr = fl["logratio"][row, tok]
        pa = SimpleNamespace(lr=lr, rho_m1=np.expm1(lr), kl_ctx=fl["kl"][row], final=final)
        M = _accept(method.seq_rule, _stats_from_paths(pa, _weights_of(method.seq_rule,
                                                                        mdp.T)), mdp.T)
    else:
        M = np.ones(n, dtype=bool)
    if not M.any():
        warnings.warn(f"all {n} sequences of the batch were masked: zero gradient",
                      RuntimeWarning, stacklevel=2)
    w = (M / n)[:, None]
    obj = float((w * (Ap * fp[row, tok] - Am * fm[row, tok])).sum())
    grad = _scatter_gradient(mdp, row, tok, w * (Ap * cp[row, tok] - Am * cm[row, tok]))
    return MethodResult(obj, grad, float(M.mean()), b, "monte-carlo")


# ---------------------------------------------------------------- logits helpers
def logits_of(mdp: TokenMDP) -> np.ndarray:
    """log pi_theta per flat row (a valid logit parametrisation; -inf where 0)."""
    with np.errstate(divide="ignore"):
        return np.log(mdp._flat["theta"])


def with_logits(mdp: TokenMDP, z: np.ndarray) -> TokenMDP:
    """The same model with pi_theta = softmax(z) (z of shape (rows, V) over the flat
    tables); support outside pi_roll's is cut to keep the model valid."""
    from scipy.special import softmax

    fl = mdp._flat
    z = np.where(fl["roll"] > 0, z, -np.inf)
    theta = softmax(z, axis=1)
    starts, lb, ns = fl["block_start"], fl["layer_block"], fl["n_states"]
    blocks = {}
    per_step = []
    for t in range(mdp.T):
        key = int(lb[t])
        if key not in blocks:
            blocks[key] = theta[starts[key]:starts[key] + ns[t]]
        per_step.append(blocks[key])
    return mdp.with_theta(per_step)


def objective_J(mdp: TokenMDP) -> float:
    """J(pi_theta) = E_theta[R], exact."""
    return evaluate(mdp).J_theta


# ---------------------------------------------------------------- RPG (sequence level)
@dataclass(frozen=True)
class RPG:
    """Regularised policy gradient (Zhang et al., arXiv 2505.17508), at the sequence level:
    x = a whole response, w = P^pi(x) / P^old(x), J_beta = E_pi[R] - beta D with D the
    variant's divergence between pi and pi_old (= pi_roll). ``form``: "loss" (the
    differentiable loss, minimised) or "reinforce" (-E[sg(weight) log pi])."""

    variant: str = "FKL"
    beta: float = 0.1
    form: str = "loss"
    name = "RPG"
    source = "Zhang et al., arXiv 2505.17508 (ICLR 2026)"

    @property
    def coef(self):
        return {"FKL": "w R + beta", "RKL": "w (R - beta (log w + 1))",
                "UFKL": "w R - beta (w - 1)", "URKL": "w (R - beta log w)"}[self.variant]


def rpg_expected(m: RPG, mdp: TokenMDP) -> MethodResult:
    """Exact loss value and gradient wrt pi_theta's logits, by enumeration over sequences.

    loss (minimised): FKL E[-w R - beta log pi], RKL E[w (-R + beta log w)],
    UFKL E[-w R + beta (w - log w - 1)], URKL E[-w R + beta (w log w - w)] (x ~ pi_old);
    reinforce: -E[sg(weight) log pi] with the weights of methods.md. Both should have
    gradient -grad J_beta (tested)."""
    pa = paths(mdp, ENUMERATE_LIMIT)
    row = _flat_rows(mdp, pa)
    logw = pa.lr.sum(axis=1)
    w = np.exp(logw)
    R = pa.reward
    beta = m.beta
    p = pa.p_roll
    with np.errstate(divide="ignore"):
        logpi = np.log(pa.p_theta)
    v = m.variant
    if m.form == "loss":
        loss = {"FKL": -w * R - beta * logpi, "RKL": w * (-R + beta * logw),
                "UFKL": -w * R + beta * (w - logw - 1), "URKL": -w * R + beta * (w * logw - w)}
        # d loss / d log pi(x): (w d/dw) for w-terms, and -beta for FKL's log pi term
        dl = {"FKL": -w * R - beta, "RKL": w * (-R + beta * (logw + 1)),
              "UFKL": -w * R + beta * (w - 1), "URKL": -w * R + beta * w * logw}
        value, g_seq = float((p * loss[v]).sum()), dl[v]
    elif m.form == "reinforce":
        weight = {"FKL": w * R + beta, "RKL": w * (R - beta * (logw + 1)),
                  "UFKL": w * R - beta * (w - 1), "URKL": w * (R - beta * logw)}[v]
        value, g_seq = float(-(p * weight * logpi).sum()), -weight
    else:
        raise ValidationError(f"form = {m.form!r}; expected loss or reinforce")
    grad = _scatter_gradient(mdp, row, pa.tokens, (p * g_seq)[:, None] * np.ones((1, mdp.T)))
    return MethodResult(value, grad, 1.0, 0.0, "enumeration")


def j_beta(variant: str, beta: float, mdp: TokenMDP) -> float:
    """J_beta = E_pi[R] - beta D(pi, pi_old) at the sequence level, exact (enumeration)."""
    pa = paths(mdp, ENUMERATE_LIMIT)
    p, q = pa.p_theta, pa.p_roll
    with np.errstate(divide="ignore", invalid="ignore"):
        fkl = float(np.where(q > 0, q * (np.log(q) - np.log(p)), 0.0).sum())
        rkl = float(np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0).sum())
    D = {"FKL": fkl, "RKL": rkl,
         "UFKL": fkl + float(p.sum() - q.sum()), "URKL": rkl + float(q.sum() - p.sum())}[variant]
    return float((p * pa.reward).sum()) - beta * D


@dataclass(frozen=True)
class GRPOK3:
    """GRPO's k3 penalty k3(pi_ref / pi) on tokens sampled from pi_old, with or without the
    importance weight w (sequence level here: x a whole response)."""

    weighted: bool = False
    name = "GRPO k3 penalty"
    source = "Shao et al. 2024 (GRPO); methods.md"


def grpo_k3_expected(m: GRPOK3, mdp: TokenMDP, ref: np.ndarray) -> MethodResult:
    """E_old[(w) k3(P^ref(x) / P^pi(x))] and its gradient wrt pi's logits (pi_old =
    pi_roll is the sampling policy, held fixed; ``ref`` gives P^ref of every enumerated
    sequence, in the order of :func:`boundlab.reference.paths`)."""
    pa = paths(mdp, ENUMERATE_LIMIT)
    row = _flat_rows(mdp, pa)
    w = np.exp(pa.lr.sum(axis=1)) if m.weighted else np.ones(len(pa.p_roll))
    u = ref / pa.p_theta                        # pi_ref / pi
    k3 = u - 1 - np.log(u)
    value = float((pa.p_roll * w * k3).sum())
    # d/d log pi of w k3(u): w k3 (if weighted) + w (-u + 1)
    g_seq = pa.p_roll * (w * (1 - u) + (w * k3 if m.weighted else 0.0))
    grad = _scatter_gradient(mdp, row, pa.tokens, g_seq[:, None] * np.ones((1, mdp.T)))
    return MethodResult(value, grad, 1.0, 0.0, "enumeration")


# ---------------------------------------------------------------- PPG (per-step rewards)
@dataclass(frozen=True)
class PPG:
    """Partial policy gradients (Mathur, Kveton, Mukherjee, Lai, arXiv 2603.06138): credit
    grad log pi(a_t|s_t) with the per-step rewards of a window S_t only. window: "full"
    (t..T), "greedy" ({t}), "kstep" (t..t+K-1), "segment" (t..end of t's segment of length
    K). Steps are tokens here; details of the paper beyond this are unconfirmed."""

    window: str = "full"
    K: int = 1
    name = "PPG"
    source = "Mathur et al., arXiv 2603.06138"

    def last(self, t: int, T: int) -> int:
        """Last step (0-based, inclusive) of the window starting at t."""
        if self.window == "full":
            return T - 1
        if self.window == "greedy":
            return t
        if self.window == "kstep":
            return min(T - 1, t + self.K - 1)
        if self.window == "segment":
            return min(T - 1, (t // self.K + 1) * self.K - 1)
        raise ValidationError(f"window = {self.window!r}")


def ppg_gradient(m: PPG, mdp: TokenMDP, step_rewards) -> np.ndarray:
    """On-policy exact g_S = E_pi[sum_t grad log pi(a_t|s_t) sum_{j in S_t} r_j] wrt
    pi_theta's logits; ``step_rewards[t]`` has shape (S_t, V) (reward of taking token v in
    state s at step t, >= 0). Sampling is from pi_theta here (on-policy)."""
    fl = mdp._flat
    theta, nxt, ns = fl["theta"], fl["nxt"], fl["n_states"]
    T = mdp.T
    rows_of, d = _theta_visitation(mdp)
    grad = np.zeros(theta.shape)
    for t in range(T):
        last = m.last(t, T)
        # W(s_t, a) = r_t(s, a) + E_pi[sum_{j=t+1}^{last} r_j | s_{t+1}], by a backward pass
        V = np.zeros(int(ns[last + 1]))
        for j in range(last, t, -1):
            rw = rows_of[j]
            V = (theta[rw] * (np.asarray(step_rewards[j]) + V[nxt[rw]])).sum(axis=1)
        rw = rows_of[t]
        W = np.asarray(step_rewards[t]) + V[nxt[rw]]
        wq = d[t][:, None] * theta[rw] * W
        grad[rw] += wq - wq.sum(axis=1, keepdims=True) * theta[rw]
    return grad


def ppg_objective(mdp: TokenMDP, step_rewards) -> float:
    """E_pi[sum_t r_t] under pi_theta (the objective whose gradient the full window gives)."""
    theta = mdp._flat["theta"]
    rows_of, d = _theta_visitation(mdp)
    return float(sum((d[t][:, None] * theta[rw] * np.asarray(step_rewards[t])).sum()
                     for t, rw in enumerate(rows_of)))


def _theta_visitation(mdp: TokenMDP):
    """Rows of every step in the flat tables, and d_t^theta (t = 1..T) under pi_theta."""
    fl = mdp._flat
    theta, nxt = fl["theta"], fl["nxt"]
    starts, lb, ns = fl["block_start"], fl["layer_block"], fl["n_states"]
    rows_of = [slice(starts[lb[t]], starts[lb[t]] + ns[t]) for t in range(mdp.T)]
    d = [fl["init"].copy()]
    for t in range(mdp.T - 1):
        rw = rows_of[t]
        d.append(np.bincount(nxt[rw].ravel(), weights=(d[t][:, None] * theta[rw]).ravel(),
                             minlength=int(ns[t + 1])))
    return rows_of, d
