"""The main sweep behind ``boundlab sweep``: every figure and table of the engine issue.

Parts (each a list of cached points, see :mod:`boundlab.sweeps`):

(a) horizon scaling, T = 1 .. 4096, for the bigram-bf16 real input, sparse MoE flips and
    i.i.d. pairs at delta = 1e-4 (the paper's value);
(b) divergence sweep at fixed T for dense noise and for flips of growing size, across
    delta = 2 / T where the min(1, .) caps start to bind;
(c) the paper's tables (closed forms, :mod:`boundlab.tables`);
(d) which bound is tightest over (T, noise scale) and over (T, flip fraction);
(e) validity: worst-case |Error| against every bound over hundreds of random trees.

Outputs under ``out``: ``figures/*.png`` and ``*.pdf``, tidy CSVs in ``results/``, and
the per-point cache in ``results/cache/``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import plotting, tables  # noqa: E402
from .bounds import BASE_BOUNDS, BOUND_NAMES  # noqa: E402
from .evaluation import bound_status  # noqa: E402
from .families import bigram_model  # noqa: E402
from .sweeps import atomic_write_text, horizon_grid, run_points  # noqa: E402

__all__ = ["MainConfig", "main_points", "run_main", "save_figure"]

plt.rcParams.update({"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8,
                     "savefig.bbox": "tight", "figure.dpi": 110})


@dataclass(frozen=True)
class MainConfig:
    """Grid sizes of the main sweep; :meth:`quick` is the CI-sized version."""

    t_max: int = 4096
    n_t: int = 25
    div_T: int = 1024
    n_div: int = 24
    map_t_max: int = 4096
    n_map_t: int = 13
    n_map_y: int = 14
    n_valid: int = 400
    seed: int = 2025

    @classmethod
    def quick(cls) -> "MainConfig":
        return cls(t_max=1024, n_t=10, div_T=256, n_div=10, map_t_max=512, n_map_t=6,
                   n_map_y=6, n_valid=120)


MOE = dict(V=8, k=2, flip_frac=1 / 16, jump=7.0, seed=0)
DENSE = dict(V=8, k=2, seed=0)
IID_DELTA = 1e-4


def _horizon_points(cfg: MainConfig) -> list[dict]:
    pts = []
    for T in horizon_grid(cfg.t_max, cfg.n_t):
        pts.append(dict(part="horizon", label="bigram_bf16", family="bigram_bf16",
                        params=dict(T=T)))
        pts.append(dict(part="horizon", label="moe_flip", family="moe_flip",
                        params=dict(T=T, **MOE)))
        pts.append(dict(part="horizon", label="iid", family="iid",
                        params=dict(T=T, delta=IID_DELTA, reward="majority")))
    return pts


def _divergence_points(cfg: MainConfig) -> list[dict]:
    pts = []
    for noise in np.geomspace(1e-4, 4.0, cfg.n_div):
        pts.append(dict(part="divergence", label="random_dense", family="random_dense",
                        params=dict(T=cfg.div_T, noise=float(noise), **DENSE)))
    for jump in np.geomspace(1e-2, 20.0, cfg.n_div):
        pts.append(dict(part="divergence", label="moe_flip", family="moe_flip",
                        params=dict(T=cfg.div_T, **{**MOE, "jump": float(jump)})))
    return pts


def _map_points(cfg: MainConfig) -> list[dict]:
    pts = []
    Ts = [T for T in horizon_grid(cfg.map_t_max, cfg.n_map_t) if T >= 2]  # T = 1: all zero
    for T in Ts:
        for noise in np.geomspace(1e-4, 3.0, cfg.n_map_y):
            pts.append(dict(part="map_dense", label="random_dense", family="random_dense",
                            params=dict(T=T, noise=float(noise), **DENSE)))
        for frac in 2.0 ** np.arange(-6, 1):  # 1/64 .. 1 of the 64 states
            pts.append(dict(part="map_sparsity", label="moe_flip", family="moe_flip",
                            params=dict(T=T, **{**MOE, "flip_frac": float(frac)})))
    return pts


def _validity_points(cfg: MainConfig) -> list[dict]:
    rng = np.random.default_rng(cfg.seed)
    pts = []
    for i in range(cfg.n_valid):
        V = int(rng.choice([2, 3, 4]))
        T = int(rng.integers(1, {2: 11, 3: 7, 4: 6}[V] + 1))
        regime = rng.choice(["tiny", "dense", "near_cap", "sparse", "sparse_zero"])
        noise = {"tiny": 10 ** rng.uniform(-7, -3), "dense": 10 ** rng.uniform(-2, 0),
                 "near_cap": 10 ** rng.uniform(0, 0.8), "sparse": 0.0,
                 "sparse_zero": 1e-3}[regime]
        params = dict(T=T, V=V, noise=float(noise), seed=int(rng.integers(2**31)),
                      logit_scale=float(rng.choice([0.5, 1.5, 4.0])))
        if regime.startswith("sparse"):
            params.update(flip_frac=float(rng.choice([0.05, 0.2, 0.5])),
                          jump=float(rng.choice([3.0, 7.0, 15.0])),
                          zero_frac=0.3 if regime == "sparse_zero" else 0.0)
        pts.append(dict(part="validity", label=str(regime), family="random_tree",
                        params=params))
    return pts


def main_points(cfg: MainConfig) -> dict[str, list[dict]]:
    """The points of every part of the main sweep, by part name."""
    return {
        "horizon": _horizon_points(cfg),
        "divergence": _divergence_points(cfg),
        "map": _map_points(cfg),
        "validity": _validity_points(cfg),
    }


def save_figure(fig, figures_dir: Path, name: str) -> list[Path]:
    """Save ``fig`` as PNG (200 dpi) and PDF under ``figures_dir``, atomically."""
    figures_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        path = figures_dir / f"{name}.{ext}"
        tmp = figures_dir / f".{name}.tmp.{ext}"
        fig.savefig(tmp, dpi=200 if ext == "png" else None)
        tmp.replace(path)
        paths.append(path)
    plt.close(fig)
    return paths


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    atomic_write_text(path, frame.to_csv(index=False))
    return path


# ---------------------------------------------------------------- figures
def _fig_horizon(h: pd.DataFrame, figures: Path, bigram_note: str):
    fig, axes = plt.subplots(1, 3, figsize=(11.5, 4.2))
    titles = {"bigram_bf16": f"bigram LM, float32 vs bfloat16 (real input)\n{bigram_note}",
              "moe_flip": "sparse MoE flips\n(1/16 of 64 contexts, jump 7 nats)",
              "iid": f"i.i.d. binary pair, $\\delta$ = {IID_DELTA:g}\n"
                     "(counting automaton, majority reward)"}
    for ax, label in zip(axes, ("bigram_bf16", "moe_flip", "iid")):
        plotting.plot_horizon(h[h["label"] == label], ax, title=titles[label],
                              legend=label == "bigram_bf16")
    fig.suptitle("Horizon scaling: every bound against the exact error "
                 "(dotted grey: reference slopes $T^2$, $T^{1.5}$, $T$)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return save_figure(fig, figures, "horizon_scaling")


def _fig_divergence(d: pd.DataFrame, figures: Path, T: int):
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.9), sharey=True)
    plotting.plot_divergence(d[d["label"] == "random_dense"], axes[0],
                             title=f"dense logit noise (T = {T})")
    plotting.plot_divergence(d[d["label"] == "moe_flip"], axes[1], legend=False,
                             title=f"MoE flips of growing size (T = {T})")
    axes[1].set_ylabel("")
    fig.suptitle("Divergence sweep: from caps inactive ($\\delta < 2/T$) to caps active",
                 fontsize=10)
    return save_figure(fig, figures, "divergence_sweep")


def _fig_maps(m: pd.DataFrame, figures: Path):
    fig, axes = plt.subplots(2, 2, figsize=(10.5, 7.0))
    dense, sparse = m[m["part"] == "map_dense"], m[m["part"] == "map_sparsity"]
    for row, (column, what) in enumerate((("tightest", "all bounds"),
                                          ("tightest_closed_form",
                                           "closed-form bounds (no $\\bar D_t$)"))):
        names = [n for n in plotting.BOUND_STYLE if n in set(m[column])]
        plotting.plot_tightest_map(dense, axes[row, 0], y="p_noise", column=column,
                                   ylabel="logit noise scale (nats)", legend=False,
                                   categories=names, title=f"dense noise: tightest of {what}")
        plotting.plot_tightest_map(sparse, axes[row, 1], y="p_flip_frac", column=column,
                                   ylabel="fraction of contexts flipped (jump 7 nats)",
                                   categories=names,
                                   title=f"MoE-flip sparsity: tightest of {what}")
    fig.suptitle("Which bound is tightest (exact evaluation at every cell; ties go to the "
                 "bound with fewer ingredients)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return save_figure(fig, figures, "tightest_map")


def _fig_validity(v: pd.DataFrame, figures: Path):
    names = list(BASE_BOUNDS) + ["unified"]
    fig, axes = plt.subplots(3, 4, figsize=(10, 7.4))
    for ax, name in zip(axes.flat, names):
        plotting.plot_validity(v, ax, name)
    for ax in axes[-1]:
        ax.set_xlabel("bound (reward units)", fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("|Error| (reward units)", fontsize=7)
    axes.flat[0].legend(fontsize=6, loc="upper left", frameon=False)
    fig.suptitle(f"Validity on {len(v)} random exact trees (tiny, dense, near-cap and sparse "
                 "divergences): every point must lie on or below the diagonal", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return save_figure(fig, figures, "validity")


#: The two instances whose proof chains the sweep draws (issue: bigram-bf16 and MoE flips).
WATERFALLS = {
    "bigram_bf16": ("bigram_bf16", dict(T=3)),
    "moe_flip": ("moe_flip", dict(T=4, **MOE)),
}


def _waterfalls(figures: Path, results: Path) -> list[Path]:
    from .families import FAMILIES
    from .inspect import inspect, slack_table, waterfall_figure

    out, frames = [], []
    for name, (family, params) in WATERFALLS.items():
        res = inspect(FAMILIES[family](**params))
        label = family + "".join(f", {k}={v}" for k, v in params.items() if k != "T")
        out += save_figure(waterfall_figure(res, label), figures, f"waterfall_{name}")
        frames.append(slack_table(res, family=family, **params))
    out.append(_write_csv(pd.concat(frames), results / "slack_chains.csv"))
    return out


# ---------------------------------------------------------------- driver
def run_main(out: Path, *, quick: bool = False, jobs: int = 1, progress=None,
             scheduler=None) -> dict:
    """Run the main sweep into ``out`` and return a dict of what was written and measured.

    Finished points are cached in ``out/results/cache``; rerunning after an interruption
    recomputes only the missing ones.
    """
    cfg = MainConfig.quick() if quick else MainConfig()
    out = Path(out)
    results, figures = out / "results", out / "figures"
    cache = results / "cache"
    pts = main_points(cfg)
    written: list[Path] = []

    model = bigram_model()  # estimate once here (also warms the in-process cache)
    frames = {}
    for part, points in pts.items():
        frames[part] = run_points(points, cache, jobs=jobs, progress=progress,
                                  description=f"({part}) {len(points)} points",
                                  scheduler=scheduler)

    h, d, m, v = frames["horizon"], frames["divergence"], frames["map"], frames["validity"]
    for name in BOUND_NAMES:  # validity status of every bound, per instance
        v[f"status_{name}"] = [bound_status(e, b, T) for e, b, T in
                               zip(v["worst_case_error"], v[name], v["T"])]

    big = h[h["label"] == "bigram_bf16"].sort_values("T")
    last = big.iloc[-1]
    bigram = pd.DataFrame([{
        "python": sys.version.split()[0], "n_chars": model.n_chars, "V": int(last["V"]),
        "delta": last["delta"], "eps": last["eps"],
        "dkl_per_token": last["dkl_seq"] / last["T"], "T": int(last["T"]),
        "dkl_seq": last["dkl_seq"], "dtv_seq": last["dtv_seq"],
        "dtv_seq_method": last["dtv_seq_method"], "worst_case_error": last["worst_case_error"],
        "unified": last["unified"], "tightest": last["tightest"],
    }])
    note = (f"measured $\\delta$ = {last['delta']:.2e} nats, $D_{{KL}}^{{seq}}$ = "
            f"{last['dkl_seq']:.3g} at T = {int(last['T'])}")

    written += [_write_csv(h, results / "horizon.csv"),
                _write_csv(d, results / "divergence.csv"),
                _write_csv(m, results / "tightest_map.csv"),
                _write_csv(v, results / "validity.csv"),
                _write_csv(bigram, results / "bigram_bf16.csv")]
    tab = tables.paper_tables()
    written.append(_write_csv(tab, results / "paper_tables.csv"))
    atomic_write_text(results / "paper_tables.md", tables.to_markdown(tab))
    written.append(results / "paper_tables.md")

    written += _fig_horizon(h, figures, note)
    written += _fig_divergence(d, figures, cfg.div_T)
    written += _fig_maps(m, figures)
    written += _fig_validity(v, figures)
    written += _waterfalls(figures, results)

    status_cols = [c for c in v.columns if c.startswith("status_")]
    n_viol = int((v[status_cols] == "VIOLATED").to_numpy().sum())
    n_round = int((v[status_cols] == "within rounding").to_numpy().sum())
    return {"written": written, "bigram": bigram.iloc[0].to_dict(),
            "violations": n_viol, "within_rounding": n_round, "n_validity": len(v),
            "tables_match": bool(tab["match"].all()), "n_points": sum(map(len, pts.values()))}
