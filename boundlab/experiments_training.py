"""``boundlab sweep training`` and ``boundlab methods`` (issue 5).

Training runs are cached points (method, mismatch, seed) on a small exact model (a
last-token chain, V = 4, T = 6: 16384 sequences, so every method, including
sequence-masked ones, is evaluated exactly). Figures, J and the log absolute perplexity
gap against iterations, mean and min-max band over seeds:

* ``training_token_is_vs_ppo``: token IS (PG-IS) against PPO clip;
* ``training_trm_vs_ppo``: TRM-Max and TRM-Avg against PPO clip;
* ``training_combined``: loose single criteria against their combination;
* ``training_other``: DPPO, DRPO at the paper's delta = 12.5 and at delta = 0.3, RPG (FKL)
  against PG-IS;
* ``training_ppg``: PPG windows on per-step rewards (their own objective E[sum_t r_t]).
The mismatch is MoE routing flips (30% of contexts per iteration, 9 nats).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import masking as M  # noqa: E402
from . import objectives as O  # noqa: E402
from .experiments import _write_csv, save_figure  # noqa: E402
from .families import random_dense, random_tree  # noqa: E402
from .sweeps import run_points  # noqa: E402
from .train import Mismatch, train  # noqa: E402

__all__ = ["build_method", "training_point", "run_training", "method_table"]

TEMPLATE = dict(T=6, V=4, k=1, noise=0.0, seed=3)
MISMATCH = dict(kind="moe", flip_rate=0.3, jump=9.0)
LR = 40.0

GROUPS = {
    "training_token_is_vs_ppo": [("token IS (PG-IS)", {"method": "PGIS"}),
                                 ("PPO clip", {"method": "PPOClip"})],
    "training_trm_vs_ppo": [("PPO clip", {"method": "PPOClip"}),
                            ("TRM-Max (0.05)", {"method": "TRMMask", "rule": ["TRMMax", [0.05]]}),
                            ("TRM-Avg (0.01)", {"method": "TRMMask", "rule": ["TRMAvg", [0.01]]})],
    "training_combined": [("TRM-Max loose (0.5)", {"method": "TRMMask", "rule": ["TRMMax", [0.5]]}),
                          ("TRM-Avg loose (0.1)", {"method": "TRMMask", "rule": ["TRMAvg", [0.1]]}),
                          ("combined (0.5, 0.1)",
                           {"method": "TRMMask", "rule": ["Combined", [0.5, 0.1]]})],
    "training_other": [("token IS (PG-IS)", {"method": "PGIS"}),
                       ("DPPO binary TV 0.15", {"method": "DPPO"}),
                       ("DRPO delta = 12.5", {"method": "DRPO", "args": {"delta": 12.5}}),
                       ("DRPO delta = 0.3", {"method": "DRPO", "args": {"delta": 0.3}}),
                       ("RPG FKL beta 0.01", {"method": "RPG",
                                              "args": {"variant": "FKL", "beta": 0.01}})],
    "training_ppg": [("PPG full", {"method": "PPG", "args": {"window": "full"}}),
                     ("PPG greedy", {"method": "PPG", "args": {"window": "greedy"}}),
                     ("PPG 2-step", {"method": "PPG", "args": {"window": "kstep", "K": 2}})],
}


def build_method(spec: dict):
    """A method object from a JSON spec {"method": class name, "args": {...}, "rule": ...}."""
    cls = getattr(O, spec["method"])
    if spec["method"] == "TRMMask":
        kind, args = spec["rule"]
        return cls(getattr(M, kind)(*args))
    return cls(**spec.get("args", {}))


def _step_rewards(tmpl):
    """Per-step rewards for PPG: the reward of the state each token leads to, / T."""
    return [tmpl.reward[tmpl.step(t)[0]] / tmpl.T for t in range(tmpl.T)]


def training_point(point: dict) -> dict:
    tmpl = random_dense(**TEMPLATE)
    method = build_method(point["spec"])
    log = train(tmpl, method, iterations=point["iterations"], lr=LR,
                mismatch=Mismatch(**MISMATCH), seed=point["seed"],
                step_rewards=_step_rewards(tmpl) if isinstance(method, O.PPG) else None)
    return {"group": point["group"], "label": point["label"], "seed": point["seed"],
            "log": log.to_dict(orient="list")}


def _points(quick: bool):
    seeds = range(2 if quick else 5)
    iters = 15 if quick else 40
    return [dict(kind="training", group=g, label=label, spec=spec, seed=s, iterations=iters,
                 template=TEMPLATE, mismatch=MISMATCH, lr=LR)
            for g, runs in GROUPS.items() for label, spec in runs for s in seeds]


def _band(ax, frame, column, label, color):
    piv = frame.pivot_table(index="iteration", columns="seed", values=column)
    x = piv.index.to_numpy()
    ax.plot(x, piv.mean(axis=1), color=color, lw=1.6, label=label)
    ax.fill_between(x, piv.min(axis=1), piv.max(axis=1), color=color, alpha=0.2, lw=0)


def run_training(out: Path, *, quick: bool = False, jobs: int = 1, progress=None,
                 scheduler=None) -> dict:
    out = Path(out)
    frame = run_points(_points(quick), out / "results" / "cache", jobs=jobs, progress=progress,
                       description="(training) runs", worker=training_point,
                       scheduler=scheduler)
    logs = []
    for _, r in frame.iterrows():
        lg = pd.DataFrame(r["log"])
        lg["group"], lg["label"], lg["seed"] = r["group"], r["label"], r["seed"]
        logs.append(lg)
    logs = pd.concat(logs, ignore_index=True)
    written = [_write_csv(logs, out / "results" / "training.csv")]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for group, runs in GROUPS.items():
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        sub = logs[logs["group"] == group]
        objective = "step_objective" if group == "training_ppg" else "J"
        for i, (label, _) in enumerate(runs):
            part = sub[sub["label"] == label]
            _band(axes[0], part, objective, label, colors[i % len(colors)])
            _band(axes[1], part, "log_ppl_gap", label, colors[i % len(colors)])
        axes[0].set_ylabel("$E[\\sum_t r_t]$ (per-step rewards)" if objective != "J"
                           else "$J(\\pi_\\theta)$ (exact)")
        axes[1].set_ylabel("log absolute perplexity gap (exact)")
        for ax in axes:
            ax.set_xlabel("iteration")
            ax.grid(True, alpha=0.25)
        axes[0].legend(fontsize=7, frameon=False)
        n = sub["seed"].nunique()
        fig.suptitle(f"{group.replace('training_', '').replace('_', ' ')}: exact training "
                     f"under MoE flips ({int(MISMATCH['flip_rate'] * 100)}% of contexts, "
                     f"{MISMATCH['jump']:g} nats); mean and min-max over {n} seeds",
                     fontsize=9)
        fig.tight_layout(rect=(0, 0, 1, 0.93))
        written += save_figure(fig, out / "figures", group)
    return {"written": written, "n_points": len(frame)}


# ---------------------------------------------------------------- methods table
_fd = O.finite_difference_gradient


def method_table() -> pd.DataFrame:
    """Every method with its coefficient formula, source, and the exact checks it passes
    (run now, on small instances): gradient = finite differences, DP = enumeration, and
    the method-specific claims of methods.md."""
    from .evaluation import evaluate
    from .reference import paths

    mdp = random_dense(3, V=3, k=1, noise=0.4, flip_frac=0.3, jump=2.0, seed=2)
    z = O.logits_of(mdp)
    rows = []

    def token_checks(m):
        dp, en = O.expected(m, mdp), O.expected(m, mdp, how="enumeration")
        g = _fd(lambda zz: O.expected(m, O.with_logits(mdp, zz), baseline=dp.baseline)
                .objective, z)
        return {"gradient = finite differences": bool(np.allclose(dp.gradient, g, atol=1e-8)),
                "DP = enumeration": bool(np.allclose(dp.gradient, en.gradient, atol=1e-13))}

    at_roll = random_dense(3, V=3, k=1, noise=0.0, seed=2)
    gJ = _fd(lambda zz: evaluate(O.with_logits(at_roll, zz)).J_theta, O.logits_of(at_roll))
    specials = {
        "PG-IS": {"gradient = grad J at theta = roll": bool(np.allclose(
            O.expected(O.PGIS(), at_roll, baseline=0.0).gradient, gJ, atol=1e-9))},
        "TIS": {"C = inf gives PG-IS": bool(np.allclose(
            O.expected(O.TIS(np.inf), mdp).gradient, O.expected(O.PGIS(), mdp).gradient))},
        "PPO-clip": {"four-case table (leaks for A<0, r>1+e and A>0, r<1-e)":
                     _ppo_cases(O.PPOClip())},
        "dual-clip PPO": {"capped beyond c for A < 0": bool(
            O.DualClip(c=3.0).parts(np.array([5.0]), {})[3][0] == 0)},
        "DRPO": {"weight 0 at Delta = delta, negative beyond": _drpo_weight()},
    }
    for m in O.TOKEN_METHODS:
        checks = token_checks(m) if m.name != "TIS" else _tis_checks(m, mdp, z)
        checks.update(specials.get(m.name, {}))
        if m.name == "DPPO":
            checks["binary/top-K divergences <= exact"] = _dppo_lower()
        rows.append(dict(method=m.name, variant=_variant(m), coef=m.coef, source=m.source,
                         checks=checks))
    for rule in (M.TRMMax(float(np.quantile(mdp._flat["kl"], 0.6))),):
        m = O.TRMMask(rule)
        rows.append(dict(method="TRM", variant=rule.name, coef=m.coef, source=m.source,
                         checks=token_checks(m)))
    tree = random_tree(T=2, V=3, noise=0.5, seed=1)
    tz = O.logits_of(tree)
    for variant in ("FKL", "RKL", "UFKL", "URKL"):
        for form in ("loss", "reinforce"):
            m = O.RPG(variant, 0.3, form)
            g = _fd(lambda zz: O.j_beta(variant, 0.3, O.with_logits(tree, zz)), tz)
            checks = {"gradient = -grad J_beta": bool(np.allclose(
                O.rpg_expected(m, tree).gradient, -g, atol=1e-8))}
            if variant in ("UFKL", "URKL"):
                base = {"UFKL": "FKL", "URKL": "RKL"}[variant]
                checks[f"objective = {base} (normalised)"] = bool(np.isclose(
                    O.j_beta(variant, 0.3, tree), O.j_beta(base, 0.3, tree), rtol=1e-12))
            rows.append(dict(method="RPG", variant=f"{variant} ({form})", coef=m.coef,
                             source=m.source, checks=checks))
    on = random_tree(T=2, V=3, noise=0.0, seed=3)
    ref = paths(random_tree(T=2, V=3, noise=0.0, seed=4)).p_roll
    from scipy.special import rel_entr
    g_un = _fd(lambda zz: float(rel_entr(ref, paths(O.with_logits(on, zz)).p_theta).sum()),
               O.logits_of(on))
    g_w = _fd(lambda zz: float(rel_entr(paths(O.with_logits(tree, zz)).p_theta,
                                        ref).sum()), tz)
    rows.append(dict(method="GRPO k3 penalty", variant="without w", coef="(1 - pi_ref/pi)",
                     source=O.GRPOK3.source, checks={
                         "on-policy gradient = grad KL(ref || pi)": bool(np.allclose(
                             O.grpo_k3_expected(O.GRPOK3(False), on, ref).gradient, g_un,
                             atol=1e-8))}))
    rows.append(dict(method="GRPO k3 penalty", variant="with w", coef="w (1 - pi_ref/pi + k3)",
                     source=O.GRPOK3.source, checks={
                         "gradient = grad KL(pi || ref)": bool(np.allclose(
                             O.grpo_k3_expected(O.GRPOK3(True), tree, ref).gradient,
                             g_w, atol=1e-8))}))
    chain = random_dense(4, V=3, k=1, noise=0.2, seed=6)
    rw = [np.random.default_rng(0).random((3, 3)) for _ in range(4)]
    gP = _fd(lambda zz: O.ppg_objective(O.with_logits(chain, zz), rw), O.logits_of(chain))
    full = O.ppg_gradient(O.PPG("full"), chain, rw)
    for window, K in (("full", 1), ("greedy", 1), ("kstep", 2), ("segment", 2)):
        if window == "full":
            checks = {"full window = policy gradient": bool(np.allclose(full, gP, atol=1e-8))}
        else:
            checks = {"short window differs from the policy gradient (biased)": bool(
                not np.allclose(O.ppg_gradient(O.PPG(window, K), chain, rw), full))}
        if window in ("kstep", "segment"):
            checks["window = whole future reproduces full"] = bool(np.allclose(
                O.ppg_gradient(O.PPG(window, chain.T), chain, rw), full, atol=1e-14))
        rows.append(dict(method="PPG", variant=f"{window}" + (f" K={K}" if window in
                                                              ("kstep", "segment") else ""),
                         coef="sum_{j in S_t} r_j", source=O.PPG.source, checks=checks))
    out = pd.DataFrame(rows)
    out["passed"] = [sum(c.values()) for c in out["checks"]]
    out["n_checks"] = [len(c) for c in out["checks"]]
    out["all_pass"] = out["passed"] == out["n_checks"]
    return out


class _FrozenWeight:
    """TIS with its stop-gradient weight frozen at given values: objective A w0 log pi."""

    seq_rule = None

    def __init__(self, w0):
        self.w0 = w0

    def parts(self, r, ctx):
        with np.errstate(divide="ignore"):
            logp = np.where(ctx["theta"] > 0, np.log(ctx["theta"]), 0.0)
        return self.w0 * logp, self.w0 * logp, self.w0, self.w0


def _tis_checks(m, mdp, z) -> dict:
    """TIS's update is not the gradient of its objective (the weight is a stop-gradient):
    check it against finite differences of E[A w0 log pi] with w0 = min(r, C) frozen."""
    ctx = O._context(mdp)
    frozen = _FrozenWeight(np.minimum(ctx["r"], m.C))
    dp = O.expected(m, mdp)
    g = _fd(lambda zz: O.expected(frozen, O.with_logits(mdp, zz), baseline=dp.baseline)
            .objective, z)
    en = O.expected(m, mdp, how="enumeration")
    return {"gradient = finite differences with the weight frozen": bool(
                np.allclose(dp.gradient, g, atol=1e-8)),
            "DP = enumeration": bool(np.allclose(dp.gradient, en.gradient, atol=1e-13))}


def _variant(m) -> str:
    if isinstance(m, O.DPPO):
        return f"{m.divergence}, delta={m.delta}"
    if isinstance(m, O.DRPO):
        return f"delta={m.delta}"
    return ""


def _ppo_cases(m) -> bool:
    fp, fm, cp, cm = m.parts(np.array([1.5, 0.5, 1.5, 0.5]), {})
    return bool(cp[0] == 0 and cm[1] == 0 and cm[2] == 1.5 and cp[3] == 0.5)


def _drpo_weight() -> bool:
    mu, delta = 0.3, 0.2
    pis = np.array([mu + delta, mu + 1.5 * delta])
    _, _, cp, _ = O.DRPO(delta).parts(pis / mu, {"roll": np.full(2, mu), "theta": pis})
    w = cp / (pis / mu)
    return bool(abs(w[0]) < 1e-12 and w[1] < 0)


def _dppo_lower() -> bool:
    rng = np.random.default_rng(0)
    roll = rng.dirichlet(np.ones(6) * 0.5, size=40)
    theta = rng.dirichlet(np.ones(6) * 0.5, size=40)
    tv, kl = (O.dppo_divergence(roll, theta, k) for k in ("exact_tv", "exact_kl"))
    return bool((O.dppo_divergence(roll, theta, "binary_tv") <= tv + 1e-15).all()
                and (O.dppo_divergence(roll, theta, "topk_tv", k=3) <= tv + 1e-15).all()
                and (O.dppo_divergence(roll, theta, "binary_kl") <= kl + 1e-12).all()
                and (O.dppo_divergence(roll, theta, "topk_kl", k=3) <= kl + 1e-12).all())
