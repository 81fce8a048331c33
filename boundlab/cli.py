"""The ``boundlab`` command line (typer + rich)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn)
from rich.table import Table

from .errors import ValidationError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Exact token MDPs for checking trust-region bounds of LLM "
                       "policy-gradient methods.")
console = Console()

SWEEPS = ("main", "masking", "tightness", "training", "all")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def _fail(msg: str) -> None:
    console.print(f"[bold red]error:[/] {msg}")
    raise typer.Exit(code=2)


@app.command()
def sweep(
    name: str = typer.Argument("main", help=f"which sweep: {', '.join(SWEEPS)}"),
    quick: bool = typer.Option(False, "--quick", help="CI-sized grids"),
    out: Path = typer.Option(Path("."), "--out", help="writes OUT/figures and OUT/results"),
    jobs: int = typer.Option(1, "--jobs", min=-1,
                             help="local processes (joblib n_jobs; -1 = all cores)"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler",
                                            help="run the points on an existing Dask "
                                                 "cluster, e.g. tcp://HOST:8786"),
):
    """Regenerate figures (PNG and PDF) and tidy CSV results from exact computation.

    Finished points are cached in OUT/results/cache: an interrupted sweep resumes where it
    stopped.
    """
    if name not in SWEEPS:
        _fail(f"unknown sweep {name!r}; available: {', '.join(SWEEPS)}")
    if jobs == 0:
        _fail("--jobs must be a positive number of processes or -1 for all cores")
    if name == "all":
        for each in SWEEPS[:-1]:
            sweep(each, quick=quick, out=out, jobs=jobs, scheduler=scheduler)
        return
    start = time.perf_counter()
    console.print(f"[bold]boundlab sweep {name}[/] ({'quick' if quick else 'full'} grids, "
                  f"jobs={jobs}) -> {out.resolve()}")
    try:
        with _progress() as progress:
            if name == "masking":
                from .experiments_masking import run_masking

                info = run_masking(out, quick=quick, jobs=jobs, progress=progress,
                                   scheduler=scheduler)
            elif name == "training":
                from .experiments_training import run_training

                info = run_training(out, quick=quick, jobs=jobs, progress=progress,
                                    scheduler=scheduler)
            elif name == "tightness":
                from .experiments_tightness import run_tightness

                info = run_tightness(out, quick=quick, jobs=jobs, progress=progress,
                                     scheduler=scheduler, figures=True)
            else:
                from .experiments import run_main

                info = run_main(out, quick=quick, jobs=jobs, progress=progress,
                                scheduler=scheduler)
    except ValidationError as exc:
        _fail(str(exc))
    if name == "tightness":
        _print_tightness(info)
    if name != "main":
        for p in info["written"]:
            console.print(f"  wrote {p}")
        console.print(f"{info['n_points']} points in {time.perf_counter() - start:.1f} s")
        return
    b = info["bigram"]
    console.print(
        f"bigram-bf16 real input ({b['n_chars']:,} characters of stdlib docstrings, Python "
        f"{b['python']}): measured delta = {b['delta']:.3e} nats, eps = {b['eps']:.3e}, "
        f"D_KL^seq = {b['dkl_seq']:.4g} nats at T = {b['T']} "
        f"({b['dkl_per_token']:.3e} per token)")
    verdict = ("[green]no bound exceeded[/]" if info["violations"] == 0
               else f"[bold red]{info['violations']} VIOLATIONS[/]")
    console.print(f"validity: {info['n_validity']} random trees x every bound: {verdict}"
                  + (f", {info['within_rounding']} within rounding"
                     if info["within_rounding"] else ""))
    console.print("paper tables: " + ("all printed values reproduced" if info["tables_match"]
                                      else "[red]some printed values NOT reproduced[/]"))
    for p in info["written"]:
        console.print(f"  wrote {p}")
    console.print(f"{info['n_points']} points in {time.perf_counter() - start:.1f} s")
    if info["violations"]:
        raise typer.Exit(code=1)


@app.command()
def tightness(
    quick: bool = typer.Option(False, "--quick", help="CI-sized run (still fits exponents)"),
    out: Path = typer.Option(Path("."), "--out", help="writes OUT/results"),
    jobs: int = typer.Option(1, "--jobs", min=-1, help="local processes (joblib)"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler",
                                            help="existing Dask cluster, tcp://HOST:PORT"),
):
    """Search for worst-case pairs; print worst case / bound ratios and fitted exponents."""
    from .experiments_tightness import run_tightness

    start = time.perf_counter()
    try:
        with _progress() as progress:
            info = run_tightness(out, quick=quick, jobs=jobs, progress=progress,
                                 scheduler=scheduler)
    except ValidationError as exc:
        _fail(str(exc))
    _print_tightness(info)
    for p in info["written"]:
        console.print(f"  wrote {p}")
    console.print(f"{info['n_points']} searches in {time.perf_counter() - start:.1f} s")


def _print_tightness(info: dict) -> None:
    frame = info["frame"]
    t = Table(title="best worst case found / bound (1 would be tight)")
    cols = ["series", "T", "worst_case_error", "ratio_unified", "ratio_pm_kl",
            "ratio_mix_kl", "ratio_adap_star", "ratio_classical"]
    for c in cols:
        t.add_column(c.replace("ratio_", "/ "), justify="right" if c != "series" else "left",
                     no_wrap=c == "series")
    for _, r in frame.sort_values(["series", "T", "delta_budget"]).iterrows():
        if r["series"] == "iid delta-series":
            continue
        t.add_row(r["series"], str(r["T"]), f"{r['worst_case_error']:.4g}",
                  *[f"{r[c]:.3g}" for c in cols[3:]])
    console.print(t)
    e = Table(title="exponent of worst case vs T (slope of log-log fit, 95% CI)")
    for c in ("series", "regime", "slope", "95% CI", "T range", "unified", "pm_kl", "mix_kl"):
        e.add_column(c, no_wrap=c in ("series", "regime", "95% CI"))
    for _, r in info["exponents"].iterrows():
        e.add_row(r["series"], r["regime"], f"{r['slope']:.3f}",
                  f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]", f"{r['T_min']}..{r['T_max']}",
                  f"{r['unified_slope']:.2f}", f"{r['pm_kl_slope']:.2f}",
                  f"{r['mix_kl_slope']:.2f}")
    console.print(e)


@app.command()
def methods():
    """Every method of methods.md: coefficient formula, source, and the exact checks it
    passes (run now, on small instances)."""
    from .experiments_training import method_table

    frame = method_table()
    t = Table(title="method zoo (exact checks run now)")
    for col in ("method", "variant", "coef on grad log pi", "source", "checks passed"):
        t.add_column(col, overflow="fold")
    for _, r in frame.iterrows():
        passed = "; ".join(("ok " if v else "FAILED ") + k for k, v in r["checks"].items())
        t.add_row(r["method"], r["variant"], r["coef"], r["source"],
                  f"[{'green' if r['all_pass'] else 'red'}]{r['passed']}/{r['n_checks']}[/] "
                  + passed)
    console.print(t)
    if not frame["all_pass"].all():
        raise typer.Exit(code=1)


@app.command()
def table(fmt: str = typer.Option("markdown", "--format", help="markdown or csv")):
    """Print the paper's bound tables (v4 Table 1, v2 table) beside boundlab's values."""
    from .tables import paper_tables, to_markdown

    frame = paper_tables()
    if fmt == "csv":
        typer.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "markdown":
        typer.echo(to_markdown(frame))
    else:
        _fail(f"--format {fmt!r}; expected markdown or csv")


@app.command()
def proofs(
    name: Optional[str] = typer.Argument(None, help="one obligation (default: all)"),
    latex: bool = typer.Option(False, "--latex", help="print the derivation as LaTeX"),
):
    """Run the sympy proof obligations and print their verdicts (or one derivation)."""
    try:
        import proofs as proof_pkg
    except ImportError:  # pragma: no cover - the wheel ships it
        _fail("the proofs package is not installed next to boundlab")
    names = list(proof_pkg.OBLIGATIONS)
    if name is not None and name not in names:
        _fail(f"unknown obligation {name!r}; available: {', '.join(names)}")
    chosen = [name] if name else names
    results = [proof_pkg.OBLIGATIONS[n]() for n in chosen]
    if latex:
        for r in results:
            typer.echo(r.latex())
        return
    if name:
        r = results[0]
        console.print(f"[bold]{r.name}[/]: {r.statement}\nassumptions: "
                      f"{'; '.join(r.assumptions)}\nsource: {r.source}", highlight=False)
        for i, st in enumerate(r.steps, 1):
            console.print(f"  {i:2d}. [{_colour(st.verdict)}]{st.verdict:>13}[/]  {st.claim}"
                          + (f"  ({st.detail})" if st.detail else ""), highlight=False)
    t = Table(title="proof obligations")
    for col in ("obligation", "method", "verdict", "steps", "seconds"):
        t.add_column(col, no_wrap=col != "steps")
    for r in results:
        kinds = [s.verdict for s in r.steps]
        detail = f"{kinds.count('proved')} proved"
        for k in ("numeric check", "given", "FAILED"):
            if kinds.count(k):
                detail += f", {kinds.count(k)} {k}"
        t.add_row(r.name, r.method, f"[{_colour(r.verdict)}]{r.verdict}[/]", detail,
                  f"{r.seconds:.2f}")
    console.print(t)
    if any(r.verdict == "FAILED" for r in results):
        raise typer.Exit(code=1)


def _colour(verdict: str) -> str:
    return {"proved": "green", "numeric check": "yellow", "given": "cyan"}.get(verdict, "red")


def _parse_params(items) -> dict:
    kwargs = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            _fail(f"--param {item!r}: expected KEY=VALUE")
        kwargs[key] = _number(value)
    return kwargs


def _number(value: str):
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


@app.command("inspect")
def inspect_cmd(
    family: Optional[str] = typer.Argument(None, help="instance family (or use --from-file)"),
    T: int = typer.Option(3, "-T", "--horizon", min=1, help="horizon (tokens)"),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p",
                                              help="family parameter KEY=VALUE (repeatable)"),
    from_file: Optional[Path] = typer.Option(None, "--from-file",
                                             help=".npz with roll_0.., theta_0.., reward "
                                                  "[, prompt_probs] (a tree)"),
    reward: str = typer.Option("worst", "--reward",
                               help="worst (maximiser of |Error|) or given"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="write the slack waterfall "
                                                             "(PNG or PDF)"),
    csv: Optional[Path] = typer.Option(None, "--csv", help="write the slack table (CSV)"),
    grid: Optional[list[str]] = typer.Option(None, "--grid",
                                             help="KEY=V1,V2,... (repeatable; T allowed): "
                                                  "inspect every combination, write --csv"),
):
    """Every link of every proof route, exact, on one tree-sized instance."""
    import itertools

    from .families import FAMILIES
    from .inspect import inspect, slack_table
    from .sweeps import atomic_write_text

    def build(T_, kwargs):
        if from_file is not None:
            return _load_tree(from_file)
        if family not in FAMILIES:
            _fail(f"unknown family {family!r}; available: {', '.join(FAMILIES)}")
        return FAMILIES[family](T_, **kwargs)

    if from_file is None and family is None:
        _fail("give a FAMILY or --from-file")
    kwargs = _parse_params(param)
    try:
        if grid:
            if csv is None:
                _fail("--grid needs --csv PATH for the slack table")
            axes = {}
            for item in grid:
                key, sep, values = item.partition("=")
                if not sep:
                    _fail(f"--grid {item!r}: expected KEY=V1,V2,...")
                axes[key] = [_number(v) for v in values.split(",")]
            frames = []
            combos = list(itertools.product(*axes.values()))
            with _progress() as progress:
                task = progress.add_task("inspect grid", total=len(combos))
                for combo in combos:
                    point = dict(zip(axes, combo))
                    T_ = int(point.pop("T", T))
                    res = inspect(build(T_, {**kwargs, **point}), reward=reward)
                    frames.append(slack_table(res, family=family, T=T_, **point))
                    progress.advance(task)
            import pandas as pd

            atomic_write_text(csv, pd.concat(frames).to_csv(index=False))
            console.print(f"wrote {csv} ({len(combos)} instances)")
            return
        res = inspect(build(T, kwargs), reward=reward)
    except ValidationError as exc:
        _fail(str(exc))
    except TypeError as exc:
        _fail(str(exc))
    console.print(str(res), highlight=False, markup=False, soft_wrap=True)
    if csv is not None:
        atomic_write_text(csv, slack_table(res, family=family or str(from_file), T=T,
                                           **kwargs).to_csv(index=False))
        console.print(f"wrote {csv}")
    if plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .inspect import waterfall_figure

        name = family or from_file.name
        name += "".join(f", {k}={v}" for k, v in kwargs.items())
        fig = waterfall_figure(res, name)
        plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(plot, dpi=200)
        plt.close(fig)
        console.print(f"wrote {plot}")


def _load_tree(path: Path):
    import numpy as np

    from .model import TokenMDP

    try:
        data = np.load(path)
    except (OSError, ValueError) as exc:
        _fail(f"cannot read {path}: {exc}")
    T = sum(1 for k in data.files if k.startswith("roll_"))
    missing = [k for k in [*(f"roll_{t}" for t in range(T)), *(f"theta_{t}" for t in range(T)),
                           "reward"] if k not in data.files]
    if T == 0 or missing:
        _fail(f"{path} lacks arrays {missing or ['roll_0']}; expected roll_0..roll_(T-1), "
              "theta_0..theta_(T-1), reward and optionally prompt_probs")
    return TokenMDP.tree([data[f"roll_{t}"] for t in range(T)],
                         [data[f"theta_{t}"] for t in range(T)], data["reward"],
                         prompt_probs=data["prompt_probs"] if "prompt_probs" in data.files
                         else None)


@app.command("evaluate")
def evaluate_cmd(
    family: str = typer.Argument(..., help="instance family, e.g. bigram_bf16, moe_flip"),
    T: int = typer.Option(64, "-T", "--horizon", min=1, help="horizon (tokens)"),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p",
                                              help="family parameter KEY=VALUE (repeatable)"),
):
    """Evaluate one instance exactly and print the report (every bound and its status)."""
    from .evaluation import evaluate
    from .families import FAMILIES

    if family not in FAMILIES:
        _fail(f"unknown family {family!r}; available: {', '.join(FAMILIES)}")
    kwargs = _parse_params(param)
    try:
        report = evaluate(FAMILIES[family](T, **kwargs))
    except (ValidationError, TypeError) as exc:
        _fail(str(exc))
    t = Table(title=f"{family} T={T} {kwargs or ''}")
    for col in ("bound", "value", "bound / worst case", "status"):
        t.add_column(col, justify="right" if col != "bound" else "left")
    for name, row in report.frame.iterrows():
        t.add_row(name, f"{row['value']:.6g}", f"{row['ratio_to_worst_case']:.4g}",
                  row["status"])
    console.print(report.headline(), highlight=False)
    console.print(t)
