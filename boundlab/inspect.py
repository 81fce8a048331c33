"""``boundlab inspect``: every link of every proof route, exact, on one instance.

For a tree-sized instance (automata are expanded with :meth:`TokenMDP.to_tree`), each
route of theory.md section 4 is written as a chain of quantities, each at least the one
before, from the exact |Error| to the closed-form bound:

PDI routes (coupling, pm_kl, pm_tv, mix_kl, mix_tv), arXiv 2512.23075v4 eq:master-decomp:
    |Error|
    <= sum_t |E_{d_t^theta} g_t - E_{d_t^roll} g_t|                 (triangle inequality)
    <= sum_t 2 ||g_t||_inf ||d_t^theta - d_t^roll||_TV               (Hoelder; exact values)
    <= sum_t 2 (2 max_{c_t} D_TV(c_t)) ||d_t^theta - d_t^roll||_TV   (|g_t(c)| <= 2 D_TV(c))
    <= sum_t 2 (2 a) ||d_t^theta - d_t^roll||_TV                     (a = min(1, eps) or
                                                                      min(1, sqrt(delta/2)))
    <= sum_t 2 (2 a) s_t = the bound                                 (context-shift lemma s_t)

Adaptive routes (adap_star, adap_kl, adap_tv), v4 Appendix "Proof of the Adaptive Bound":
    |Error|
    <= sum_t E_roll[|rho_t - 1| |1 - prod_{j>t} rho_j|]              (|R| <= 1, triangle)
    =  sum_t E_roll[|rho_t - 1| 2 TV_future(c_{t+1})]                (tower property)
    <= sum_t 2 Dbar_t 2 max_{c_{t+1}} TV_future(c_{t+1})             (sup pulled out)
    <= sum_t 4 Dbar_t min(1, (T-t) eps, sqrt((T-t) delta / 2)) = the bound

The reward used is the instance's own (``reward="given"``) or the maximiser of |Error|
over rewards in [0, 1] (``reward="worst"``, default), so that the chain starts at the
worst case the bounds must cover. The slack of a link is its value divided by the value
of the link before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import bounds as B
from .errors import ValidationError
from .evaluation import BoundReport, evaluate
from .model import TokenMDP
from .reference import paths

__all__ = ["inspect", "InspectResult", "ROUTES", "MAX_SEQUENCES", "plot_waterfall",
           "slack_table", "waterfall_figure"]

#: Largest tree (number of complete sequences) for which exact intermediates are computed.
MAX_SEQUENCES = 2**21

#: route -> (advantage relaxation, context-shift lemma) for the PDI routes.
PDI_ROUTES = {
    "coupling": ("tv", "coupling"),
    "pm_kl": ("kl", "pinsker_marginal"),
    "pm_tv": ("tv", "pinsker_marginal"),
    "mix_kl": ("kl", "pinsker_seq"),
    "mix_tv": ("tv", "data_processing"),
}
ADAPTIVE_ROUTES = ("adap_star", "adap_kl", "adap_tv")
ROUTES = tuple(PDI_ROUTES) + ADAPTIVE_ROUTES

_SHIFT_LABEL = {
    "coupling": "context shift -> min(1, (t-1) eps)  [coupling]",
    "pinsker_marginal": "context shift -> min(1, sqrt((t-1) delta/2))  [Pinsker on marginal]",
    "pinsker_seq": "context shift -> min(1, sqrt(D_KL^seq/2))  [Pinsker on sequence]",
    "data_processing": "context shift -> min(1, D_TV^seq)  [data processing]",
}


@dataclass(frozen=True)
class InspectResult:
    """Chains of every route for one instance.

    chain : DataFrame with columns route, order, link, value, slack (value / previous
        link's value; 1 for the first), cumulative (value / |Error|).
    per_step : DataFrame, one row per t: exact PDI term, ||g_t||_inf, max_c D_TV(c_t),
        ||d_t^theta - d_t^roll||_TV and each lemma's bound on it, Dbar_t,
        E_roll[|rho_t - 1| 2 TV_future], max TV_future and its min(1, ...) relaxation.
    report : the :class:`BoundReport` of the instance with the reward used.
    reward : "given" or "worst".
    """

    chain: pd.DataFrame
    per_step: pd.DataFrame
    report: BoundReport
    reward: str

    def __str__(self) -> str:
        lines = [f"|Error| = {self.chain['value'].iloc[0]:.6g} (reward: {self.reward}); "
                 f"worst case over rewards = {self.report.worst_case_error:.6g}"]
        for route, sub in self.chain.groupby("route", sort=False):
            lines.append(f"\n[{route}]")
            for _, r in sub.iterrows():
                lines.append(f"  {r['value']:12.5g}  x{r['slack']:<9.3g} {r['link']}")
        return "\n".join(lines)


def inspect(mdp: TokenMDP, *, reward: str = "worst",
            max_sequences: int = MAX_SEQUENCES) -> InspectResult:
    """Exact chains of every proof route (see module docstring) for ``mdp``.

    Raises
    ------
    ValidationError
        ``reward`` not "given" or "worst", or the instance's tree has more than
        ``max_sequences`` sequences (exact intermediates need the tree: reduce T or V).
    """
    if reward not in ("given", "worst"):
        raise ValidationError(f"reward = {reward!r}; expected 'given' or 'worst'")
    if mdp.n_sequences > max_sequences:
        raise ValidationError(
            f"exact intermediate quantities need the tree of this instance, "
            f"{mdp.n_sequences:.3g} sequences (limit {max_sequences:,}): use a smaller T or V")
    tree = mdp if (mdp.is_tree and mdp.n_blocks == mdp.T) else mdp.to_tree()
    T, V = tree.T, tree.V
    P = int(tree.n_states[0])
    prompt = tree.init
    pa = paths(tree, max_sequences)
    N = pa.lr.shape[0]
    lr, alive, p_roll, rho_m1 = pa.lr, pa.alive, pa.p_roll, pa.rho_m1  # log rho_t, (N, T)
    suffix = np.zeros((N, T))
    suffix[:, :-1] = np.cumsum(lr[:, ::-1], axis=1)[:, ::-1][:, 1:]
    with np.errstate(invalid="ignore"):
        one_minus_prod = -np.expm1(suffix)                            # 1 - prod_{j>t} rho_j
    w = p_roll * (rho_m1 * (-one_minus_prod)).sum(axis=1)             # error density per leaf
    if reward == "worst":
        R = (w > 0).astype(float)
        tree = TokenMDP.tree([tree.step(t)[1] for t in range(T)],
                             [tree.step(t)[2] for t in range(T)], R, prompt_probs=prompt)
    report = evaluate(tree)
    R = tree.reward
    delta, eps = report.delta, report.eps

    # ------------------------------------------------------------ PDI route quantities
    # g_t(c) = sum_v (theta - roll)(v|c) Q_t(c, v), Q by backward DP over the tree layers.
    value = R.copy()
    g = [None] * T
    for t in range(T - 1, -1, -1):
        nxt, roll, theta = tree.step(t)
        Q = value[nxt]
        g[t] = ((theta - roll) * Q).sum(axis=1)
        value = (roll * Q).sum(axis=1)
    # context laws d_t over the P V^(t-1) contexts of step t, from leaf masses
    pdi, g_inf, tv_max_t, ctx_tv = (np.zeros(T) for _ in range(4))
    for t in range(T):
        ctx = np.arange(N) // V ** (T - t)                            # context index at step t
        n_ctx = P * V**t
        # d_t^theta - d_t^roll per context, accurately: sum over leaves of p_roll (ratio of prefix - 1)
        prefix = lr[:, :t].sum(axis=1)
        diff_leaf = p_roll * np.expm1(prefix) if t > 0 else np.zeros(N)
        d_diff = np.bincount(ctx, weights=diff_leaf, minlength=n_ctx)
        pdi[t] = float((d_diff * g[t]).sum())  # E_{d_t^theta} g_t - E_{d_t^roll} g_t
        reach = _reachable_contexts(tree, t)
        g_inf[t] = float(np.abs(g[t][reach]).max(initial=0.0))
        _, roll, theta = tree.step(t)
        tv_rows = 0.5 * np.abs(theta - roll).sum(axis=1)
        tv_max_t[t] = float(tv_rows[reach].max(initial=0.0))
        ctx_tv[t] = 0.5 * float(np.abs(d_diff).sum())
    k = np.arange(T, dtype=float)                                     # t - 1
    shift = {
        "coupling": np.minimum(1.0, k * eps),
        "pinsker_marginal": B._pinsker_route(k, delta),
        "pinsker_seq": np.full(T, min(1.0, np.sqrt(report.dkl_seq / 2))),
        "data_processing": np.full(T, min(1.0, report.dtv_seq)),
    }
    adv = {"tv": min(1.0, eps), "kl": min(1.0, float(np.sqrt(delta / 2)))}
    adv_label = {"tv": "advantage -> 2 min(1, eps)  [TV]",
                 "kl": "advantage -> 2 min(1, sqrt(delta/2))  [Pinsker]"}

    err = abs(report.error)
    rows = []

    def add(route, links):
        prev = None
        for order, (label, value) in enumerate(links):
            rows.append(dict(route=route, order=order, link=label, short=_short(label),
                             value=value,
                             slack=1.0 if prev is None else _ratio(value, prev),
                             cumulative=_ratio(value, err)))
            prev = value

    base = [("|Error| (exact)", err),
            ("sum_t |E_dtheta g_t - E_droll g_t|  [triangle]", float(np.abs(pdi).sum())),
            ("sum_t 2 ||g_t||_inf ||d_t^theta - d_t^roll||_TV  [Hoelder]",
             float((2 * g_inf * ctx_tv).sum())),
            ("||g_t||_inf -> 2 max_c D_TV(c_t)  [advantage, exact]",
             float((4 * tv_max_t * ctx_tv).sum()))]
    for route, (a, s) in PDI_ROUTES.items():
        links = base + [(adv_label[a], float((4 * adv[a] * ctx_tv).sum())),
                        (_SHIFT_LABEL[s], float((4 * adv[a] * shift[s]).sum()))]
        add(route, links)

    # ------------------------------------------------------------ adaptive route quantities
    a_t = np.abs(rho_m1)                                              # |rho_t - 1|
    b_t = np.abs(one_minus_prod)                                      # |1 - prod_{j>t}|
    triangle = (p_roll[:, None] * a_t * b_t).sum(axis=0)              # per t
    tv_future = np.zeros((N, T))                                      # TV_future(c_{t+1})
    tv_future_max = np.zeros(T)
    for t in range(T - 1):
        node = np.arange(N) // V ** (T - t - 1)                       # context c_{t+1}
        # conditional leaf laws given c_{t+1}: prod of steps > t; |P^th - P^ro| per leaf
        cond_roll = np.where(alive, np.exp(pa.log_roll_t[:, t + 1:].sum(axis=1)), 0.0)
        per_leaf = cond_roll * np.abs(np.expm1(suffix[:, t]))
        tv_node = 0.5 * np.bincount(node, weights=per_leaf, minlength=P * V ** (t + 1))
        tv_future[:, t] = tv_node[node]
        reach_next = _reachable_contexts(tree, t + 1) if t + 1 < T else None
        tv_future_max[t] = float(tv_node[reach_next].max(initial=0.0))
    tower = (p_roll[:, None] * a_t * 2 * tv_future).sum(axis=0)
    dbar = report.dbar
    pulled = 4 * dbar * tv_future_max
    kf = np.arange(T - 1, -1, -1, dtype=float)                        # T - t
    routes_future = {
        "adap_star": (np.minimum(np.minimum(1.0, kf * eps), B._pinsker_route(kf, delta)),
                      "future TV -> min(1, (T-t) eps, sqrt((T-t) delta/2))"),
        "adap_kl": (B._pinsker_route(kf, delta), "future TV -> min(1, sqrt((T-t) delta/2))"),
        "adap_tv": (np.minimum(1.0, kf * eps), "future TV -> min(1, (T-t) eps)"),
    }
    for route, (fut, label) in routes_future.items():
        add(route, [("|Error| (exact)", err),
                    ("sum_t E_roll[|rho_t-1| |1 - prod_{j>t} rho_j|]  [|R| <= 1, triangle]",
                     float(triangle.sum())),
                    ("sum_t E_roll[|rho_t-1| 2 TV_future(c_{t+1})]  [tower, equality]",
                     float(tower.sum())),
                    ("sum_t 2 Dbar_t 2 max TV_future(c_{t+1})  [sup pulled out]",
                     float(pulled.sum())),
                    (label + "  [future-TV lemma]", float((4 * dbar * fut).sum()))])

    per_step = pd.DataFrame({
        "t": np.arange(1, T + 1), "pdi_term": pdi, "g_inf": g_inf,
        "max_tv_ctx": tv_max_t, "context_tv": ctx_tv,
        **{f"shift_{k_}": v for k_, v in shift.items()},
        "dbar": dbar, "adaptive_triangle": triangle, "adaptive_tower": tower,
        "tv_future_max": tv_future_max,
        "future_bound_star": routes_future["adap_star"][0],
    })
    return InspectResult(chain=pd.DataFrame(rows), per_step=per_step, report=report,
                         reward=reward)


def _ratio(a: float, b: float) -> float:
    if b == 0:
        return 1.0 if a == 0 else np.inf
    return a / b


def _reachable_contexts(tree: TokenMDP, t: int) -> np.ndarray:
    """Boolean mask of the step-t contexts reachable under pi_roll."""
    reach = tree.init > 0
    for s in range(t):
        _, roll, _ = tree.step(s)
        reach = (reach[:, None] & (roll > 0)).reshape(-1)
    return reach


def slack_table(result: InspectResult, **labels) -> pd.DataFrame:
    """The chain as a tidy table with the instance's labels (for grid CSVs)."""
    out = result.chain.copy()
    for k_, v in labels.items():
        out.insert(0, k_, v)
    out["worst_case_error"] = result.report.worst_case_error
    return out


def plot_waterfall(chain: pd.DataFrame, axes) -> list:
    """Slack waterfall: one panel per route; bars are the chain's link values (log scale),
    each annotated with its slack factor over the previous link. ``axes`` is an iterable
    of Axes with at least as many entries as routes. Returns the axes used."""
    from .plotting import BOUND_LABEL, BOUND_STYLE

    used = []
    for ax, (route, sub) in zip(axes, chain.groupby("route", sort=False)):
        vals = sub["value"].to_numpy(float)
        pos = np.where(vals > 0, vals, np.nan)
        colour = BOUND_STYLE[route]["color"]
        x = np.arange(len(vals))
        ax.bar(x, pos, color=[("0.3" if i == 0 else colour) for i in x], alpha=0.85)
        for i, (v, s) in enumerate(zip(vals, sub["slack"])):
            if i > 0 and np.isfinite(s):
                ax.annotate(f"x{s:.3g}", (i, v if v > 0 else np.nan), ha="center",
                            va="bottom", fontsize=6, xytext=(0, 1),
                            textcoords="offset points")
        ax.set_yscale("log")
        ax.set_xticks(x)
        ax.set_xticklabels(sub["short"], rotation=35, ha="right", fontsize=6)
        ax.set_title(f"{BOUND_LABEL[route]}: total x{vals[-1] / vals[0]:.3g}"
                     if vals[0] > 0 else BOUND_LABEL[route], fontsize=8)
        ax.tick_params(axis="y", labelsize=6)
        used.append(ax)
    return used


def waterfall_figure(result: InspectResult, name: str):
    """A 2 x 4 figure of :func:`plot_waterfall` for every route, titled with the instance."""
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(2, 4, figsize=(13, 6.5))
    plot_waterfall(result.chain, axs.flat)
    fig.suptitle(f"Slack waterfall: {name}, T = {result.report.T} (reward: {result.reward}; "
                 f"|Error| = {result.chain['value'].iloc[0]:.3g}). Each bar: one link of the "
                 "proof; label: its slack factor over the previous link", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig


def _short(label: str) -> str:
    """Axis label of a link: the text in its final [...] tag, else a fixed short name."""
    if label.endswith("]"):
        return label[label.rindex("[") + 1:-1]
    if label.startswith("future TV"):
        return "future TV -> " + label.split("-> ")[1]
    return label.split(" (")[0]
