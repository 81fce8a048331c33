"""``boundlab tightness`` and ``boundlab sweep tightness`` (issue 6).

Every search is one cached point (:mod:`boundlab.sweeps`), so the runs resume, and go
through joblib locally or a Dask cluster given ``--scheduler``.

Points:
* tree searches (V = 2, T = 2..6) at delta = 1e-3, 1e-2, 1e-1;
* i.i.d. searches at delta = 1e-3 over T up to 4096, and over delta at T = 256;
* chain searches (state = last token, V = 2) at delta = 1e-3 over T up to 1024.
Exponents of log worst case against log T are fitted on the i.i.d. and chain series in the
small-divergence regime T delta <= 1 and, separately, for T delta >= 1, and on each tree
series (adversarial search over exact trees, T = 2..6: few points, wide intervals).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import plotting  # noqa: E402
from .experiments import _write_csv, save_figure  # noqa: E402
from .sweeps import atomic_write_text, horizon_grid, run_points  # noqa: E402
from .tightness import (fit_exponent, search_chain, search_iid, search_tree,  # noqa: E402
                        Exponent)

__all__ = ["tightness_points", "tightness_point", "run_tightness", "exponents"]

SERIES_DELTA = 1e-3
RATIO_BOUNDS = ("classical", "coupling", "pm_kl", "pm_tv", "mix_kl", "mix_tv", "adap_star",
                "unified")


def tightness_point(point: dict) -> dict:
    """Worker: run one search and return its row (value, every bound, the pair, profiles)."""
    kind, p = point["kind"], point["params"]
    if kind == "tree":
        res = search_tree(p["V"], p["T"], ("delta", p["delta"]), restarts=p["restarts"],
                          seed=p["seed"])
    elif kind == "iid":
        res = search_iid(p["T"], p["delta"])
    elif kind == "chain":
        res = search_chain(p["T"], p["delta"], restarts=p["restarts"], seed=p["seed"])
    else:
        raise ValueError(f"unknown search kind {kind!r}")
    rep = res.report
    row = {"kind": kind, "series": point["series"], "T": p["T"], "delta_budget": p["delta"],
           "worst_case_error": res.worst_case_error, "delta": rep.delta, "eps": rep.eps,
           "dkl_seq": rep.dkl_seq, "dtv_seq": rep.dtv_seq}
    row.update(rep.bounds)
    row.update({f"ratio_{k}": v for k, v in res.ratios.items()})
    row["profile_dbar"] = rep.dbar.tolist() if rep.T <= 64 else []
    row["profile_delta_t"] = rep.delta_t.tolist() if rep.T <= 64 else []
    row["pair"] = res.mdp.to_dict() if rep.T <= 64 or kind != "iid" else None
    return row


def tightness_points(quick: bool) -> list[dict]:
    pts = []
    tree_T = (2, 3, 4, 5) if quick else (2, 3, 4, 5, 6)
    deltas = (1e-2,) if quick else (1e-3, 1e-2, 1e-1)
    restarts = 4 if quick else 10
    for d in deltas:
        for T in tree_T:
            pts.append(dict(kind="tree", series=f"tree delta={d:g}",
                            params=dict(V=2, T=T, delta=d, restarts=restarts, seed=T)))
    for T in horizon_grid(1024 if quick else 4096, 8 if quick else 13):
        if T >= 2:
            pts.append(dict(kind="iid", series="iid T-series",
                            params=dict(T=T, delta=SERIES_DELTA)))
    for T in horizon_grid(256 if quick else 1024, 6 if quick else 10):
        if T >= 2:
            pts.append(dict(kind="chain", series="chain T-series",
                            params=dict(T=T, delta=SERIES_DELTA, restarts=2 if quick else 3,
                                        seed=T)))
    for d in np.geomspace(1e-5, 1.0, 6 if quick else 11):
        pts.append(dict(kind="iid", series="iid delta-series",
                        params=dict(T=256, delta=float(d))))
    return pts


def exponents(frame: pd.DataFrame) -> pd.DataFrame:
    """Fitted exponents (slope of log worst case on log T, 95% CI) per series and regime,
    beside the exponent each bound would impose."""
    rows = []
    tree_series = sorted(s for s in frame["series"].unique() if s.startswith("tree"))
    for series in ("iid T-series", "chain T-series", *tree_series):
        sub = frame[frame["series"] == series]
        if sub.empty:
            continue
        regimes = ((("T delta <= 1", sub["T"] * SERIES_DELTA <= 1),
                    ("T delta >= 1", sub["T"] * SERIES_DELTA >= 1))
                   if not series.startswith("tree") else (("T = 2..6", sub["T"] > 0),))
        for regime, mask in regimes:
            part = sub[mask]
            if len(part) < 3:
                continue
            e: Exponent = fit_exponent(part["T"], part["worst_case_error"])
            rows.append({"series": series, "regime": regime, "slope": e.slope,
                         "ci_low": e.low, "ci_high": e.high, "n": e.n, "T_min": e.T_min,
                         "T_max": e.T_max,
                         "unified_slope": fit_exponent(part["T"], part["unified"]).slope,
                         "pm_kl_slope": fit_exponent(part["T"], part["pm_kl"]).slope,
                         "mix_kl_slope": fit_exponent(part["T"], part["mix_kl"]).slope})
    return pd.DataFrame(rows)


def run_tightness(out: Path, *, quick: bool = False, jobs: int = 1, progress=None,
                  scheduler=None, figures: bool = False) -> dict:
    """Run every search (cached), write CSVs, the pairs found and, with ``figures``, the
    tightness figures. Returns the frames and what was written."""
    out = Path(out)
    results = out / "results"
    frame = run_points(tightness_points(quick), results / "cache", jobs=jobs,
                       progress=progress, description="(tightness) searches",
                       worker=tightness_point, scheduler=scheduler)
    exps = exponents(frame)
    table = frame.drop(columns=["pair", "profile_dbar", "profile_delta_t"])
    written = [_write_csv(table, results / "tightness.csv"),
               _write_csv(exps, results / "tightness_exponents.csv")]
    pairs_dir = results / "pairs"
    pairs_dir.mkdir(parents=True, exist_ok=True)
    for _, r in frame.iterrows():
        if r["pair"] is not None and isinstance(r["pair"], dict):
            name = f"{r['kind']}_T{r['T']}_delta{r['delta_budget']:g}.json"
            atomic_write_text(pairs_dir / name, json.dumps(
                {"worst_case_error": r["worst_case_error"], "kind": r["kind"],
                 "budget": ["delta", r["delta_budget"]], "mdp": r["pair"]}))
    written.append(pairs_dir)
    if figures:
        written += _figures(frame, exps, out / "figures")
    return {"frame": table, "exponents": exps, "written": written, "n_points": len(frame)}


def _figures(frame: pd.DataFrame, exps: pd.DataFrame, figures: Path) -> list[Path]:
    written = []
    # 1. ratio worst case / bound against T
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0))
    tree = frame[frame["series"] == "tree delta=0.01"].sort_values("T")
    for b in RATIO_BOUNDS:
        axes[0].plot(tree["T"], tree[f"ratio_{b}"], marker="o", ms=3,
                     label=plotting.BOUND_LABEL[b], **plotting.BOUND_STYLE[b])
    axes[0].set_title("exact trees (V = 2), $\\delta$ = 0.01: best pair found")
    axes[0].set_xlabel("horizon $T$")
    for series, mk in (("iid T-series", "o"), ("chain T-series", "s")):
        sub = frame[frame["series"] == series].sort_values("T")
        for b in ("unified", "pm_kl", "mix_kl", "adap_star"):
            st = dict(plotting.BOUND_STYLE[b])
            axes[1].plot(sub["T"], sub[f"ratio_{b}"], marker=mk, ms=3,
                         label=f"{series.split()[0]}: {plotting.BOUND_LABEL[b]}", **st)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("horizon $T$")
    axes[1].set_title(f"i.i.d. (circles) and last-token chains (squares), "
                      f"$\\delta$ = {SERIES_DELTA:g}")
    for ax in axes:
        ax.set_yscale("log")
        ax.set_ylabel("worst case found / bound (1 = tight)")
        ax.axhline(1, color="black", lw=0.8)
        ax.grid(True, alpha=0.25)
        ax.legend(fontsize=6, frameon=False)
    fig.suptitle("How far below each bound the worst case found sits", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    written += save_figure(fig, figures, "tightness_vs_T")

    # 2. ratio against delta
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0))
    T4 = frame[(frame["kind"] == "tree") & (frame["T"] == frame[frame["kind"] == "tree"]["T"]
                                                         .max())].sort_values("delta_budget")
    iid = frame[frame["series"] == "iid delta-series"].sort_values("delta_budget")
    for ax, sub, title in ((axes[0], T4, f"exact trees, T = {int(T4['T'].max()) if len(T4) else 0}"),
                           (axes[1], iid, "i.i.d. pairs, T = 256")):
        for b in RATIO_BOUNDS:
            ax.plot(sub["delta_budget"], sub[f"ratio_{b}"], marker="o", ms=3,
                    label=plotting.BOUND_LABEL[b], **plotting.BOUND_STYLE[b])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("budget $\\delta$ (nats, every context)")
        ax.set_ylabel("worst case found / bound")
        ax.set_title(title)
        ax.grid(True, alpha=0.25)
    axes[0].legend(fontsize=6, frameon=False)
    fig.suptitle("Tightness against the divergence budget", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    written += save_figure(fig, figures, "tightness_vs_delta")

    # 3. the adversarial pair's per-position divergence profile
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for series in sorted(s for s in frame["series"].unique() if s.startswith("tree")):
        sub = frame[frame["series"] == series]
        r = sub.loc[sub["T"].idxmax()]
        t = np.arange(1, len(r["profile_dbar"]) + 1)
        ax.plot(t, r["profile_delta_t"], "-o", ms=3, label=f"{series}: max D_KL at t")
        ax.plot(t, r["profile_dbar"], "--s", ms=3, label=f"{series}: Dbar_t")
    ax.set_yscale("log")
    ax.set_xlabel("position $t$")
    ax.set_ylabel("divergence at position $t$")
    ax.set_title("Adversarial pairs: where the divergence sits", fontsize=9)
    ax.legend(fontsize=6, frameon=False)
    ax.grid(True, alpha=0.25)
    fig.tight_layout()
    written += save_figure(fig, figures, "adversarial_profile")

    # 4. scaling with fitted exponents
    fig, ax = plt.subplots(figsize=(6.6, 4.2))
    for series, mk in (("iid T-series", "o"), ("chain T-series", "s")):
        sub = frame[frame["series"] == series].sort_values("T")
        ax.plot(sub["T"], sub["worst_case_error"], mk, ms=4, label=f"{series}: worst case")
        for _, e in exps[exps["series"] == series].iterrows():
            Tg = np.geomspace(e["T_min"], e["T_max"], 20)
            part = sub[(sub["T"] >= e["T_min"]) & (sub["T"] <= e["T_max"])]
            a = np.mean(np.log(part["worst_case_error"]) - e["slope"] * np.log(part["T"]))
            ax.plot(Tg, np.exp(a) * Tg ** e["slope"], "-", lw=1,
                    label=f"fit {e['slope']:.2f} [{e['ci_low']:.2f}, {e['ci_high']:.2f}] "
                          f"({e['regime']})")
    sub = frame[frame["series"] == "iid T-series"].sort_values("T")
    for b in ("pm_kl", "mix_kl", "unified"):
        ax.plot(sub["T"], sub[b], label=plotting.BOUND_LABEL[b], **plotting.BOUND_STYLE[b])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("horizon $T$")
    ax.set_ylabel("reward units")
    ax.set_title(f"Worst case found vs T at $\\delta$ = {SERIES_DELTA:g}, with fitted exponents",
                 fontsize=9)
    ax.legend(fontsize=6, frameon=False)
    ax.grid(True, alpha=0.25)
    fig.tight_layout()
    written += save_figure(fig, figures, "tightness_exponents")
    return written

