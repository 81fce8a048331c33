"""How tight are the bounds? Adversarial search for the largest worst-case error.

For a fixed (V, T) and a divergence budget, search over policy pairs for the largest
``worst_case_error`` (the sup over rewards is already exact), with scipy.optimize (SLSQP)
and many seeded random restarts:

* exact trees (state = history, up to 2^16 sequences): pi_roll and pi_theta parametrised
  by their logits at every context, analytic gradients of the objective and of the
  budget constraints;
* structured automata for large T: the i.i.d. counting automaton (one parameter, the
  rollout probability q; pi_theta sits on the budget) and chains whose state is the last
  k tokens (all logits, finite-difference gradients; the worst case is then over rewards
  of the final state).

Budgets: ``("delta", d)`` every context has D_KL(c) <= d (nats); ``("eps", e)`` every
context has D_TV(c) <= e (trees with V = 2); ``("dkl_seq", D)`` D_KL^seq <= D.
The pair found is saved as JSON (:func:`save_pair`), reloadable with :func:`load_pair`
and re-verifiable with :func:`boundlab.evaluate`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import minimize, minimize_scalar
from scipy.special import softmax

from .errors import ValidationError
from .evaluation import BoundReport, evaluate, forward_pass
from .families import bernoulli_at_kl, last_k_next
from .model import TokenMDP

__all__ = ["SearchResult", "search_tree", "search_chain", "search_iid", "fit_exponent",
           "Exponent", "save_pair", "load_pair", "MAX_TREE_SEQUENCES"]

MAX_TREE_SEQUENCES = 2**16
#: Logits are boxed in [-LOGIT_BOX, LOGIT_BOX] so that no probability underflows to 0
#: (which would leave the support condition of theory.md section 1).
LOGIT_BOX = 15.0


@dataclass(frozen=True)
class SearchResult:
    """Best pair found by a search.

    mdp : the pair (TokenMDP); report : its evaluate() report; worst_case_error : the
    value found (equal to report.worst_case_error); ratios : bound name -> worst case /
    bound (<= 1 unless a bound fails); budget : (kind, value); n_restarts, kind.
    """

    mdp: TokenMDP
    report: BoundReport
    worst_case_error: float
    budget: tuple
    n_restarts: int
    kind: str

    @property
    def ratios(self) -> dict[str, float]:
        w = self.worst_case_error
        return {k: (w / b if b > 0 else (0.0 if w == 0 else math.inf))
                for k, b in self.report.bounds.items()}

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"bound": list(self.report.bounds),
                             "value": list(self.report.bounds.values()),
                             "worst_case / bound": list(self.ratios.values())}
                            ).set_index("bound")


def _check_budget(budget, V):
    kind, value = budget
    if kind not in ("delta", "eps", "dkl_seq"):
        raise ValidationError(f"budget kind {kind!r}; expected delta, eps or dkl_seq")
    if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
        raise ValidationError(f"budget value {value!r} must be a positive number")
    if kind == "eps" and (V != 2 or value >= 1):
        raise ValidationError("an eps budget is supported for V = 2 with eps < 1")
    return kind, float(value)


# ---------------------------------------------------------------- trees
class _TreeProblem:
    """Objective and constraints of the tree search, with analytic gradients.

    Variables: x = [u.ravel(), z.ravel()], u and z of shape (rows, V) the logits of
    pi_roll and pi_theta at every context (rows = (V^T - 1) / (V - 1), one prompt).
    """

    def __init__(self, V: int, T: int, budget):
        self.V, self.T = V, T
        self.rows = (V**T - 1) // (V - 1)
        N = V**T
        leaf = np.arange(N)
        self.tok = np.stack([(leaf // V ** (T - 1 - t)) % V for t in range(T)], axis=1)
        offset = np.array([(V**t - 1) // (V - 1) for t in range(T)])
        self.ctx = np.stack([offset[t] + leaf // V ** (T - t) for t in range(T)], axis=1)
        self.kind, self.value = budget
        self.n = 2 * self.rows * V

    def split(self, x):
        u = x[: self.rows * self.V].reshape(self.rows, self.V)
        z = x[self.rows * self.V:].reshape(self.rows, self.V)
        return u, z

    def _paths(self, x):
        u, z = self.split(x)
        roll, theta = softmax(u, axis=1), softmax(z, axis=1)
        r = roll[self.ctx, self.tok]
        th = theta[self.ctx, self.tok]
        rho = th / r
        log_rho = np.log(th) - np.log(r)
        P_roll = np.exp(np.log(r).sum(axis=1))
        P_theta = np.exp(np.log(th).sum(axis=1))
        suffix = np.zeros_like(log_rho)
        suffix[:, :-1] = np.cumsum(log_rho[:, ::-1], axis=1)[:, ::-1][:, 1:]
        w = P_roll * ((rho - 1) * np.expm1(suffix)).sum(axis=1)
        S = (rho - 1).sum(axis=1)
        return roll, theta, rho, P_roll, P_theta, w, S

    def _scatter(self, coef, probs):
        """Gradient wrt the logits of one softmax table: sum over (leaf, t) of
        coef * (e_token - probs[ctx])."""
        A = np.zeros((self.rows, self.V))
        np.add.at(A, (self.ctx, self.tok), coef)
        Bsum = np.zeros(self.rows)
        np.add.at(Bsum, self.ctx, coef)
        return A - Bsum[:, None] * probs

    def objective(self, x):
        """-(worst case) and its (sub)gradient (SLSQP minimises)."""
        roll, theta, rho, P_roll, P_theta, w, S = self._paths(x)
        s = np.sign(w)
        f = 0.5 * np.abs(w).sum()
        cz = s[:, None] * (P_theta[:, None] - P_roll[:, None] * rho)
        cu = s[:, None] * (-P_roll[:, None] * (1 + S[:, None] - rho))
        g = 0.5 * np.concatenate([self._scatter(cu, roll).ravel(),
                                  self._scatter(cz, theta).ravel()])
        return -f, -g

    def constraints(self):
        if self.kind == "delta":
            return [{"type": "ineq", "fun": self._kl_slack, "jac": self._kl_jac}]
        if self.kind == "eps":
            return [{"type": "ineq", "fun": self._tv_slack, "jac": self._tv_jac}]
        return [{"type": "ineq", "fun": self._seq_slack, "jac": self._seq_jac}]

    def _kl_rows(self, x):
        u, z = self.split(x)
        roll, theta = softmax(u, axis=1), softmax(z, axis=1)
        kl = (roll * (np.log(roll) - np.log(theta))).sum(axis=1)
        return roll, theta, kl

    def _kl_slack(self, x):
        return self.value - self._kl_rows(x)[2]

    def _kl_jac(self, x):
        roll, theta, kl = self._kl_rows(x)
        du = roll * (np.log(roll) - np.log(theta) - kl[:, None])
        dz = theta - roll
        J = np.zeros((self.rows, self.n))
        for c in range(self.rows):
            J[c, c * self.V:(c + 1) * self.V] = -du[c]
            J[c, self.rows * self.V + c * self.V: self.rows * self.V + (c + 1) * self.V] = -dz[c]
        return J

    def _tv_slack(self, x):  # V = 2: |theta_0 - roll_0| <= eps, as two smooth constraints
        u, z = self.split(x)
        d = softmax(z, axis=1)[:, 0] - softmax(u, axis=1)[:, 0]
        return np.concatenate([self.value - d, self.value + d])

    def _tv_jac(self, x):
        u, z = self.split(x)
        roll, theta = softmax(u, axis=1), softmax(z, axis=1)
        J = np.zeros((2 * self.rows, self.n))
        for c in range(self.rows):
            dth = theta[c, 0] * (np.eye(2)[0] - theta[c])   # d theta_0 / d z_c
            dro = roll[c, 0] * (np.eye(2)[0] - roll[c])     # d roll_0 / d u_c
            zs = self.rows * 2 + 2 * c
            J[c, 2 * c:2 * c + 2] = dro
            J[c, zs:zs + 2] = -dth
            J[self.rows + c, 2 * c:2 * c + 2] = -dro
            J[self.rows + c, zs:zs + 2] = dth
        return J

    def _seq_slack(self, x):
        roll, theta, rho, P_roll, *_ = self._paths(x)
        return np.array([self.value - (P_roll * (-np.log(rho).sum(axis=1))).sum()])

    def _seq_jac(self, x):
        roll, theta, rho, P_roll, *_ = self._paths(x)
        L = -np.log(rho).sum(axis=1)  # log P_roll / P_theta per leaf
        cu = P_roll[:, None] * L[:, None] * np.ones((1, self.T))
        cz = -P_roll[:, None] * np.ones((1, self.T))
        # d/du of sum_y P_roll L: P_roll (e - roll) L per step (the "+1" part sums to 0);
        # d/dz: -P_roll (e - theta) per step
        g = np.concatenate([self._scatter(cu, roll).ravel(), self._scatter(cz, theta).ravel()])
        return -g[None, :]

    def mdp(self, x) -> TokenMDP:
        u, z = self.split(x)
        roll, theta = softmax(u, axis=1), softmax(z, axis=1)
        offs = [(self.V**t - 1) // (self.V - 1) for t in range(self.T + 1)]
        R = (self._paths(x)[5] > 0).astype(float)  # the worst-case reward
        return TokenMDP.tree([roll[offs[t]:offs[t + 1]] for t in range(self.T)],
                             [theta[offs[t]:offs[t + 1]] for t in range(self.T)], R)


def search_tree(V: int, T: int, budget, *, restarts: int = 20, seed: int = 0,
                maxiter: int = 300) -> SearchResult:
    """Largest worst-case error over exact trees (one prompt) within the budget.

    Each restart draws pi_roll logits N(0, 1.5^2) and pi_theta = pi_roll plus small noise,
    then runs SLSQP (analytic gradients). Raises ValidationError for trees beyond
    2^16 sequences or a bad budget.
    """
    if V < 2 or T < 1 or V**T > MAX_TREE_SEQUENCES:
        raise ValidationError(f"V = {V}, T = {T}: the tree search needs V >= 2 and at most "
                              f"{MAX_TREE_SEQUENCES} sequences; use search_chain for larger T")
    budget = _check_budget(budget, V)
    prob = _TreeProblem(V, T, budget)
    rng = np.random.default_rng(seed)
    best_x, best_f = None, -1.0
    for _ in range(restarts):
        u = 1.5 * rng.standard_normal((prob.rows, V))
        z = u + 0.05 * rng.standard_normal((prob.rows, V))
        res = minimize(prob.objective, np.concatenate([u.ravel(), z.ravel()]), jac=True,
                       method="SLSQP", constraints=prob.constraints(),
                       bounds=[(-LOGIT_BOX, LOGIT_BOX)] * prob.n,
                       options={"maxiter": maxiter, "ftol": 1e-12})
        x = res.x
        if not _feasible(prob, x):
            continue
        f = -prob.objective(x)[0]
        if f > best_f:
            best_x, best_f = x, f
    if best_x is None:
        raise ValidationError("no restart ended feasible; raise restarts or maxiter")
    mdp = prob.mdp(best_x)
    rep = evaluate(mdp)
    return SearchResult(mdp, rep, rep.worst_case_error, budget, restarts, "tree")


def _feasible(prob, x, tol=1e-9) -> bool:
    return all((c["fun"](x) >= -tol * max(1.0, prob.value)).all() for c in prob.constraints())


# ---------------------------------------------------------------- automata
def search_iid(T: int, delta: float, *, n_grid: int = 64) -> SearchResult:
    """Largest worst-case error of i.i.d. binary pairs with KL(roll || theta) = delta at
    every context (counting automaton, rewards of the count): maximise over the rollout
    probability q in (0, 1) and both directions of pi_theta, by a grid then Brent's method.
    """
    _check_budget(("delta", delta), 2)

    def pair(q, up):
        p = bernoulli_at_kl(q, delta) if up else 1 - bernoulli_at_kl(1 - q, delta)
        return TokenMDP.counting(np.array([1 - q, q]), np.array([1 - p, p]), T, token=1)

    def value(q, up):
        try:
            return evaluate(_worst_reward(pair(q, up))).worst_case_error
        except ValidationError:  # delta unreachable from this q in this direction
            return -1.0

    best = (-1.0, None, None)
    qs = np.linspace(0.01, 0.99, n_grid)
    for up in (True, False):
        vals = [value(q, up) for q in qs]
        i = int(np.argmax(vals))
        lo, hi = qs[max(i - 1, 0)], qs[min(i + 1, n_grid - 1)]
        res = minimize_scalar(lambda q: -value(q, up), bounds=(lo, hi), method="bounded",
                              options={"xatol": 1e-6})
        for q, v in ((qs[i], vals[i]), (res.x, -res.fun)):
            if v > best[0]:
                best = (v, q, up)
    mdp = _worst_reward(pair(best[1], best[2]))
    rep = evaluate(mdp)
    return SearchResult(mdp, rep, rep.worst_case_error, ("delta", delta), 2 * n_grid, "iid")


def search_chain(T: int, delta: float, *, V: int = 2, k: int = 1, restarts: int = 8,
                 seed: int = 0, maxiter: int = 100) -> SearchResult:
    """Largest worst-case error (over rewards of the final state) of chains whose state is
    the last k tokens, with D_KL(c) <= delta at every state; SLSQP over all logits with
    finite-difference gradients, seeded restarts."""
    _check_budget(("delta", delta), V)
    S = V**k
    nxt = last_k_next(V, k)
    init = np.full(S, 1.0 / S)

    def build(x):
        u, z = x[: S * V].reshape(S, V), x[S * V:].reshape(S, V)
        roll, theta = softmax(u, axis=1), softmax(z, axis=1)
        return roll, theta, TokenMDP.markov(nxt, roll, theta, init, np.zeros(S), T)

    def obj(x):
        return -evaluate(build(x)[2]).worst_case_error

    def kl_slack(x):
        roll, theta, _ = build(x)
        return delta - (roll * (np.log(roll) - np.log(theta))).sum(axis=1)

    rng = np.random.default_rng(seed)
    best_x, best_f = None, -1.0
    for _ in range(restarts):
        u = 1.5 * rng.standard_normal((S, V))
        x0 = np.concatenate([u.ravel(), (u + 0.05 * rng.standard_normal((S, V))).ravel()])
        res = minimize(obj, x0, method="SLSQP",
                       constraints=[{"type": "ineq", "fun": kl_slack}],
                       bounds=[(-LOGIT_BOX, LOGIT_BOX)] * x0.size,
                       options={"maxiter": maxiter, "ftol": 1e-12})
        if (kl_slack(res.x) >= -1e-9 * max(1, delta)).all() and -res.fun > best_f:
            best_x, best_f = res.x, -res.fun
    if best_x is None:
        raise ValidationError("no restart ended feasible; raise restarts or maxiter")
    mdp = _worst_reward(build(best_x)[2])
    rep = evaluate(mdp)
    return SearchResult(mdp, rep, rep.worst_case_error, ("delta", delta), restarts,
                        f"chain(last {k} of V={V})")


def _worst_reward(mdp: TokenMDP) -> TokenMDP:
    """The same pair with the reward that attains the worst case (1 where the error
    density of the final state is positive)."""
    e = forward_pass(mdp)[3]
    return TokenMDP([mdp.step(t)[0] for t in range(mdp.T)],
                    [mdp.step(t)[1] for t in range(mdp.T)],
                    [mdp.step(t)[2] for t in range(mdp.T)], mdp.init, (e > 0).astype(float))


# ---------------------------------------------------------------- exponents
@dataclass(frozen=True)
class Exponent:
    """Slope of log(worst case) against log(T) with a 95% confidence interval."""

    slope: float
    low: float
    high: float
    n: int
    T_min: int
    T_max: int

    def __str__(self) -> str:
        return (f"{self.slope:.3f} [95% CI {self.low:.3f}, {self.high:.3f}] over T = "
                f"{self.T_min}..{self.T_max} ({self.n} points)")


def fit_exponent(T, values) -> Exponent:
    """Least squares fit of log(values) = a + slope log(T); the interval uses Student's t
    with n - 2 degrees of freedom on the slope's standard error (scipy.stats.linregress).
    Zero values are dropped. Raises ValidationError with fewer than 3 points."""
    T = np.asarray(T, dtype=float)
    v = np.asarray(values, dtype=float)
    keep = (v > 0) & (T > 0)
    if keep.sum() < 3:
        raise ValidationError("fitting an exponent needs at least 3 positive points")
    res = stats.linregress(np.log(T[keep]), np.log(v[keep]))
    half = stats.t.ppf(0.975, keep.sum() - 2) * res.stderr
    return Exponent(res.slope, res.slope - half, res.slope + half, int(keep.sum()),
                    int(T[keep].min()), int(T[keep].max()))


# ---------------------------------------------------------------- saving
def save_pair(result: SearchResult, path) -> Path:
    """Save the pair found as JSON (:meth:`TokenMDP.to_dict` plus the budget, the value
    found and the ratios to every bound); reload with :func:`load_pair`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from .sweeps import atomic_write_text

    meta = {"budget": list(result.budget), "worst_case_error": result.worst_case_error,
            "kind": result.kind, "T": result.mdp.T, "V": result.mdp.V,
            "n_restarts": result.n_restarts, "ratios": result.ratios,
            "mdp": result.mdp.to_dict()}
    atomic_write_text(path, json.dumps(meta))
    return path


def load_pair(path) -> tuple[TokenMDP, dict]:
    """Reload a pair saved by :func:`save_pair`: (TokenMDP, metadata)."""
    meta = json.loads(Path(path).read_text())
    return TokenMDP.from_dict(meta.pop("mdp")), meta
