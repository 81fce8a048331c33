"""The paper's bound tables, recomputed from the closed forms and set beside the printed values.

Source: Li et al., arXiv 2512.23075. Printed values are transcribed from the LaTeX of
v4 Table 1 ("Error bounds for T = 4096") and of the v2 table ("Comparison of error bounds
across two regimes"), as found in the public copy richardodliu/OpenRLHF,
tex/literature/TRM/main_arxiv.tex. Each printed number keeps its printed precision; a
reproduced value "matches" when, rounded the same way, it prints the same.

Conventions the tables use (and boundlab follows):
* "KL-only" column of v4: eps and D_TV^seq derived by Pinsker, eps = sqrt(delta/2),
  D_TV^seq = sqrt(D_KL^seq / 2).
* The adaptive rows use the worst case allowed by the other parameters,
  Dbar_t = min(1, eps, sqrt(delta/2)) (v4 footnote *); the v2 "Adaptive" row is the
  minimum over its three bounds (v2 footnote *), i.e. boundlab's ``min3``.
* v2 "Classical" is the KL form T (T-1) delta; v2 "Linear" is 4 T eps at eps = sqrt(delta/2).
* v2 "no cap": every min(1, .) removed (only the Pinsker-Marginal row changes).

Finding (reported, not hidden): the printed Pinsker-Marginal values in the
small-divergence columns are the *closed-form upper bound* (4/3) T^{3/2} delta = 34.95
(printed 35.0; the paper's appendix writes "34.95 ~ 35.0"), not the bound of eq:B-PM-KL
itself, 2 delta sum_{k<T} sqrt(k) = 34.946, which prints as 34.9. theory.md states the
relation correctly as "<=". For those rows the frame carries both: ``value`` (the exact
formula) and ``paper_form_value`` (the expression the paper evaluated), and ``match``
compares the latter with the print. A printed "<= x" is checked as value <= x to x's printed precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from . import bounds as B

__all__ = ["paper_tables", "format_like", "PaperValue", "to_markdown"]

T_PAPER = 4096


@dataclass(frozen=True)
class PaperValue:
    """A number as printed: its text, the rule that printed it, and an optional "<=".

    rule: "int" (rounded to an integer, thousands separators), "dp1" (one decimal),
    "sig3" (three significant figures in a x 10^k form).
    """

    text: str
    rule: str
    upper: bool = False


def format_like(x: float, rule: str) -> str:
    """Format ``x`` with a printing rule of :class:`PaperValue`."""
    if rule == "int":
        return f"{round(x):,}"
    if rule == "dp1":
        return f"{x:,.1f}"
    if rule == "sig3":
        k = math.floor(math.log10(abs(x)))
        m = round(x / 10**k, 2)
        if m >= 10:
            m, k = m / 10, k + 1
        return f"{m:.2f} x 10^{k}"
    raise ValueError(f"unknown rule {rule!r}")


def _v4_rows():
    delta, dkl_seq = 1e-4, 0.01
    cols = {
        "KL-only": dict(eps=math.sqrt(delta / 2), dtv_seq=math.sqrt(dkl_seq / 2)),
        "KL+TV": dict(eps=5e-3, dtv_seq=0.05),
    }
    printed = {
        # bound label, route, boundlab key, KL-only, KL+TV
        ("Classical", "TV (uncapped)", "classical"):
            (PaperValue("1,677", "int"), PaperValue("839", "int")),
        ("Coupling", "TV coupling (capped)", "coupling"):
            (PaperValue("113.8", "dp1"), PaperValue("79.9", "dp1")),
        ("Pinsker-Marginal", "KL", "pm_kl"):
            (PaperValue("35.0", "dp1"), PaperValue("35.0", "dp1")),
        ("Pinsker-Marginal", "TV+KL", "pm_tv"):
            (PaperValue("35.0", "dp1"), PaperValue("24.7", "dp1")),
        ("Mixed", "KL", "mix_kl"):
            (PaperValue("8.2", "dp1"), PaperValue("8.2", "dp1")),
        ("Mixed", "TV", "mix_tv"):
            (PaperValue("8.2", "dp1"), PaperValue("4.1", "dp1")),
        ("Adaptive (hybrid)", "KL+TV", "adap_star"):
            (PaperValue("35.0", "dp1", True), PaperValue("24.7", "dp1", True)),
        ("Unified B*", "min all", "unified"):
            (PaperValue("8.2", "dp1", True), PaperValue("4.1", "dp1", True)),
    }
    rows = []
    for (label, route, key), values in printed.items():
        for (col, params), pv in zip(cols.items(), values):
            b = B.compute(T_PAPER, delta, params["eps"], dkl_seq, params["dtv_seq"])
            row = dict(table="v4 Table 1", bound=label, route=route, key=key,
                       column=col, T=T_PAPER, delta=delta, eps=params["eps"],
                       dkl_seq=dkl_seq, dtv_seq=params["dtv_seq"], value=b[key], paper=pv)
            row.update(_paper_form(key, delta, params["eps"]))
            rows.append(row)
    return rows


def _v2_rows():
    rows = []
    regimes = {
        "small div. (delta=1e-4)": dict(delta=1e-4, dkl_seq=0.01, capped=True),
        "large div. (delta=1), no cap": dict(delta=1.0, dkl_seq=1.0, capped=False),
        "large div. (delta=1), with cap": dict(delta=1.0, dkl_seq=1.0, capped=True),
    }
    printed = {
        ("Classical (TRPO)", "classical_kl"): ("1,677", "int", "1.68 x 10^7", "sig3",
                                               "1.68 x 10^7", "sig3", False),
        ("Linear", "linear"): ("115.9", "dp1", "11,585", "int", "11,585", "int", False),
        ("Pinsker-Marginal", "pm_kl"): ("35.0", "dp1", "3.49 x 10^5", "sig3",
                                        "11,582", "int", False),
        ("Mixed", "mix_kl"): ("8.2", "dp1", "8,192", "int", "8,192", "int", False),
        ("Adaptive", "min3"): ("8.2", "dp1", None, None, "8,192", "int", True),
    }
    for (label, key), spec in printed.items():
        for i, (col, p) in enumerate(regimes.items()):
            text, rule = spec[2 * i], spec[2 * i + 1]
            if text is None:  # printed as an em dash
                continue
            eps = math.sqrt(p["delta"] / 2)
            dtv_seq = math.sqrt(p["dkl_seq"] / 2)
            if key == "pm_kl":
                value = B.pm_kl(T_PAPER, p["delta"], capped=p["capped"])
            else:
                value = B.compute(T_PAPER, p["delta"], eps, p["dkl_seq"], dtv_seq)[key]
            row = dict(table="v2 table", bound=label, route="KL", key=key, column=col,
                       T=T_PAPER, delta=p["delta"], eps=eps, dkl_seq=p["dkl_seq"],
                       dtv_seq=dtv_seq, value=value, paper=PaperValue(text, rule, spec[6]))
            if p["delta"] <= 2 / T_PAPER:  # caps inactive: the paper printed the closed form
                row.update(_paper_form(key, p["delta"], eps))
            rows.append(row)
    return rows


def _paper_form(key: str, delta: float, eps: float) -> dict:
    """The small-divergence closed form the paper evaluated for the Pinsker-Marginal rows."""
    T = T_PAPER
    if key == "pm_kl":
        return dict(paper_form="(4/3) T^(3/2) delta",
                    paper_form_value=4 / 3 * T**1.5 * delta)
    if key == "pm_tv":
        return dict(paper_form="(8/3) T^(3/2) eps sqrt(delta/2)",
                    paper_form_value=8 / 3 * T**1.5 * eps * math.sqrt(delta / 2))
    return {}


def _printed_upper(pv: PaperValue) -> float:
    """Largest number that prints as ``pv.text``: the printed value plus half a unit of its
    last printed digit."""
    text = pv.text.replace(",", "")
    if pv.rule == "sig3":
        m, k = text.split(" x 10^")
        return (float(m) + 0.005) * 10 ** int(k)
    half = {"int": 0.5, "dp1": 0.05}[pv.rule]
    return float(text) + half


def paper_tables() -> pd.DataFrame:
    """Both tables as one tidy frame: one row per (table, bound, column).

    Columns: table, bound, route, key (boundlab's name), column, T, delta, eps, dkl_seq,
    dtv_seq, value (theory.md formula, full precision), paper_form and paper_form_value
    (the closed form the paper evaluated, where it is not the formula itself), paper
    (printed text, "<= " where printed so), boundlab (the value the paper's expression
    gives, printed with the paper's rule), exact_printed (``value`` printed the same way),
    match (bool: the print is reproduced; for "<= x", value <= x + half a printed unit).
    """
    rows = _v4_rows() + _v2_rows()
    for r in rows:
        pv = r.pop("paper")
        r.setdefault("paper_form", "")
        r.setdefault("paper_form_value", float("nan"))
        shown = r["paper_form_value"] if r["paper_form"] else r["value"]
        prefix = "<= " if pv.upper else ""
        r["boundlab"] = prefix + format_like(shown, pv.rule)
        r["exact_printed"] = prefix + format_like(r["value"], pv.rule)
        r["paper"] = prefix + pv.text
        if pv.upper:
            r["match"] = bool(r["value"] <= _printed_upper(pv))
        else:
            r["match"] = r["boundlab"] == r["paper"]
    return pd.DataFrame(rows)


def to_markdown(frame: pd.DataFrame) -> str:
    """Markdown rendering of :func:`paper_tables`, one block per table, wide by column."""
    out = []
    for name, sub in frame.groupby("table", sort=False):
        cell = sub["paper"] + " / " + sub["boundlab"]
        cell = cell.where(sub["exact_printed"] == sub["boundlab"],
                          cell + " (exact " + sub["exact_printed"] + ")")
        wide = sub.assign(cell=cell).pivot_table(
            index=["bound", "route"], columns="column", values="cell", aggfunc="first",
            sort=False)
        cols = list(dict.fromkeys(sub["column"]))
        out.append(f"### {name} (T = {T_PAPER}); each cell: paper / boundlab\n")
        out.append("| bound | route | " + " | ".join(cols) + " |")
        out.append("|---|---|" + "---|" * len(cols))
        for (bound, route), row in wide.iterrows():
            cells = [row[c] if isinstance(row.get(c), str) else "—" for c in cols]
            out.append(f"| {bound} | {route} | " + " | ".join(cells) + " |")
        n_ok = int(sub["match"].sum())
        out.append(f"\n{n_ok} of {len(sub)} printed values reproduced to their printed "
                   "precision. \"(exact ...)\": the theory.md formula itself, where the paper "
                   "printed its small-divergence closed form (4/3) T^(3/2) delta instead.\n")
    return "\n".join(out)

