"""Plot functions: each takes a results frame and a matplotlib Axes and returns the Axes.

No computation happens here beyond selecting and sorting columns; the frames come from
:mod:`boundlab.experiments` (or any frame with the same columns).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

__all__ = ["BOUND_STYLE", "BOUND_LABEL", "plot_horizon", "plot_divergence",
           "plot_tightest_map", "plot_validity", "ERROR_STYLE"]

#: One colour and line style per bound, shared by every figure.
BOUND_STYLE = {
    "classical": dict(color="0.45", ls="--", lw=1.2),
    "classical_kl": dict(color="0.65", ls="--", lw=1.0),
    "linear": dict(color="#8c564b", ls="-.", lw=1.2),
    "coupling": dict(color="#9467bd", ls="-", lw=1.4),
    "pm_kl": dict(color="#1f77b4", ls="-", lw=1.4),
    "pm_tv": dict(color="#17becf", ls=":", lw=1.8),
    "mix_kl": dict(color="#2ca02c", ls="-", lw=1.4),
    "mix_tv": dict(color="#98df8a", ls=":", lw=1.8),
    "adap_kl": dict(color="#ff7f0e", ls="-", lw=1.2),
    "adap_tv": dict(color="#e7ba52", ls=":", lw=1.6),
    "adap_star": dict(color="#d62728", ls="-", lw=1.6),
    "min3": dict(color="#7f7f7f", ls="-", lw=1.0),
    "unified": dict(color="black", ls="-", lw=2.4, alpha=0.35),
}
BOUND_LABEL = {
    "classical": "classical $2T(T-1)\\epsilon^2$",
    "classical_kl": "classical (KL) $T(T-1)\\delta$",
    "linear": "linear $4T\\epsilon$",
    "coupling": "coupling",
    "pm_kl": "Pinsker-Marginal (KL)",
    "pm_tv": "Pinsker-Marginal (TV)",
    "mix_kl": "Mixed (KL)",
    "mix_tv": "Mixed (TV)",
    "adap_kl": "Adaptive (KL)",
    "adap_tv": "Adaptive (TV)",
    "adap_star": "Adaptive (hybrid)",
    "min3": "min of three (v2)",
    "unified": "unified $B^*$",
}
ERROR_STYLE = {
    "worst_case_error": dict(color="black", marker="o", ls="none", ms=4,
                             label="worst case over rewards (of the final state)"),
    "abs_error": dict(color="black", marker="x", ls="none", ms=4, mfc="none",
                      label="|Error| (given reward)"),
}
#: Bounds drawn in the scaling figures (the others are shown in the validity figure).
MAIN_BOUNDS = ("classical", "coupling", "pm_kl", "pm_tv", "mix_kl", "mix_tv",
               "adap_star", "unified")


def _positive(y):
    y = np.asarray(y, dtype=float)
    return np.where(y > 0, y, np.nan)  # log axes: zeros are not drawn


def _bounds_and_errors(ax: Axes, x, frame: pd.DataFrame, bounds) -> None:
    """One line per bound and markers for the two error columns, against ``x``."""
    for name in bounds:
        ax.plot(x, _positive(frame[name]), label=BOUND_LABEL[name], **BOUND_STYLE[name])
    for col, style in ERROR_STYLE.items():
        ax.plot(x, _positive(frame[col]), **style)


def _finish(ax: Axes, title, legend) -> Axes:
    """Log-log axes, the bound label, optional title and legend, a light grid."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel("bound on |Error| (reward units)")
    if title:
        ax.set_title(title, fontsize=9)
    if legend:
        ax.legend(fontsize=6.5, loc="upper left", frameon=False)
    ax.grid(True, which="major", alpha=0.25)
    return ax


def plot_horizon(frame: pd.DataFrame, ax: Axes, *, bounds=MAIN_BOUNDS, slopes=True,
                 title: str | None = None, legend: bool = True) -> Axes:
    """Bounds and errors against the horizon T on log-log axes.

    ``frame``: one row per T with columns ``T``, the bound names, ``worst_case_error``,
    ``abs_error``. Reference slopes T^2, T^1.5 and T are drawn through the unified bound at
    the middle horizon.
    """
    f = frame.sort_values("T")
    T = f["T"].to_numpy(float)
    _bounds_and_errors(ax, T, f, bounds)
    if slopes and len(f) > 2:
        i = len(f) // 2
        T0, y0 = T[i], float(f["unified"].iloc[i])
        if y0 > 0:
            for p, lab in ((2.0, "$T^2$"), (1.5, "$T^{1.5}$"), (1.0, "$T$")):
                ref = y0 * (T / T0) ** p
                ax.plot(T, ref, color="0.7", lw=0.8, ls=(0, (1, 2)), zorder=0)
                ax.annotate(lab, (T[-1], ref[-1]), fontsize=7, color="0.45",
                            xytext=(2, 0), textcoords="offset points", va="center")
    ax.set_xlabel("horizon $T$ (tokens)")
    return _finish(ax, title, legend)


def plot_divergence(frame: pd.DataFrame, ax: Axes, *, x: str = "delta",
                    bounds=MAIN_BOUNDS, title: str | None = None,
                    legend: bool = True) -> Axes:
    """Bounds and errors against a divergence column (default ``delta``, nats) at a fixed
    horizon, with the caps-inactive boundary delta = 2 / T marked."""
    f = frame.sort_values(x)
    X = f[x].to_numpy(float)
    _bounds_and_errors(ax, X, f, bounds)
    T = int(f["T"].iloc[0])
    if x == "delta":
        ax.axvline(2.0 / T, color="0.5", lw=0.8, ls="--")
        ax.annotate("$\\delta = 2/T$\ncaps start to bind", (2.0 / T, 0.02),
                    xycoords=("data", "axes fraction"), fontsize=7, color="0.35",
                    xytext=(3, 0), textcoords="offset points")
        ax.set_xlabel("$\\delta = D_{KL}^{tok,max}$ (nats)")
    else:
        ax.set_xlabel(x)
    return _finish(ax, title, legend)


def plot_tightest_map(frame: pd.DataFrame, ax: Axes, *, x: str = "T", y: str,
                      column: str = "tightest", ylabel: str | None = None,
                      title: str | None = None, legend: bool = True,
                      categories=None) -> Axes:
    """Categorical map of the bound named in ``column`` (default ``tightest``) over the grid
    of ``x`` and ``y`` values (cells at their grid index, ticks labelled with the values).
    ``categories`` fixes the bound names shown (and their colours), e.g. to share one
    legend between panels; by default the names present in ``frame``."""
    xs = np.sort(frame[x].unique())
    ys = np.sort(frame[y].unique())
    names = list(categories) if categories is not None else \
        [n for n in BOUND_STYLE if n in set(frame[column])]
    code = {n: i for i, n in enumerate(names)}
    grid = np.full((len(ys), len(xs)), np.nan)
    xi = {v: i for i, v in enumerate(xs)}
    yi = {v: i for i, v in enumerate(ys)}
    for _, r in frame.iterrows():
        grid[yi[r[y]], xi[r[x]]] = code[r[column]]
    cmap = ListedColormap([BOUND_STYLE[n]["color"] for n in names])
    ax.imshow(grid, origin="lower", aspect="auto", cmap=cmap, vmin=-0.5,
              vmax=len(names) - 0.5, interpolation="nearest")
    step_x = max(1, len(xs) // 7)
    step_y = max(1, len(ys) // 7)
    ax.set_xticks(range(0, len(xs), step_x))
    ax.set_xticklabels([f"{v:g}" for v in xs[::step_x]], fontsize=7)
    ax.set_yticks(range(0, len(ys), step_y))
    ax.set_yticklabels([f"{v:.2g}" for v in ys[::step_y]], fontsize=7)
    ax.set_xlabel("horizon $T$ (tokens)" if x == "T" else x)
    ax.set_ylabel(ylabel or y)
    if title:
        ax.set_title(title, fontsize=9)
    if legend:
        ax.legend(handles=[Patch(color=BOUND_STYLE[n]["color"], label=BOUND_LABEL[n])
                           for n in names], fontsize=6.5, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax


def plot_validity(frame: pd.DataFrame, ax: Axes, bound: str, *, floor: float = 1e-16,
                  show_abs_error: bool = True) -> Axes:
    """Worst-case (and actual) |Error| against one bound, one point per instance, with the
    diagonal: a valid bound leaves every point on or below it. The title counts points
    above the diagonal (violations, beyond the rounding allowance, are marked red)."""
    b = frame[bound].to_numpy(float)
    wc = frame["worst_case_error"].to_numpy(float)
    show = (b > 0) & (wc > 0) & np.isfinite(b)
    ax.scatter(b[show], wc[show], s=6, color=BOUND_STYLE[bound]["color"], alpha=0.7,
               label="worst case over rewards", edgecolors="none")
    if show_abs_error:
        ae = frame["abs_error"].to_numpy(float)
        s2 = (b > 0) & (ae > floor) & np.isfinite(b)
        ax.scatter(b[s2], ae[s2], s=6, facecolors="none", edgecolors="0.5", linewidths=0.4,
                   alpha=0.6, label="|Error|")
    lo = max(floor, np.nanmin(np.concatenate([b[show], wc[show]])) if show.any() else floor)
    hi = np.nanmax(b[show]) if show.any() else 1.0
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
    above = int((frame[f"status_{bound}"] != "holds").sum()) \
        if f"status_{bound}" in frame else int((wc > b).sum())
    bad = (frame[f"status_{bound}"] == "VIOLATED") if f"status_{bound}" in frame else wc > b
    if bad.any():
        ax.scatter(b[bad], wc[bad], s=14, color="red", zorder=5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(f"{BOUND_LABEL[bound]}: {above} of {len(frame)} above", fontsize=7.5)
    ax.tick_params(labelsize=6)
    return ax
