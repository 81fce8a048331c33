"""Sweeps: many independent exact evaluations, cached on disk, run in parallel.

A sweep is a list of *points*; a point is a JSON-able dict ``{"family": name, "params":
{...}, ...labels}`` naming an instance of :data:`boundlab.families.FAMILIES`. Each finished
point is written atomically to ``<cache>/<key>.json`` (key = hash of the point and of
:data:`CACHE_VERSION`) the moment it is done, so an interrupted sweep loses nothing and a
rerun computes only what is missing. Points run through joblib (local processes).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from .bounds import CLOSED_FORM_BOUNDS, tightest
from .errors import ValidationError
from .evaluation import evaluate
from .families import FAMILIES

__all__ = ["CACHE_VERSION", "point_key", "evaluate_point", "run_points", "atomic_write_text",
           "horizon_grid"]

#: Bump when a change alters cached results, so stale caches are not reused.
CACHE_VERSION = 1


def point_key(point: dict) -> str:
    """Stable hash of a point (its JSON with sorted keys) and the cache version."""
    text = json.dumps({"v": CACHE_VERSION, "point": point}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file in the same folder, then
    rename), so a reader or an interrupted run never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def evaluate_point(point: dict) -> dict:
    """Build the point's instance, evaluate it exactly, and return one flat result row.

    The row holds the point's labels and parameters (prefixed ``p_``), every scalar of
    :meth:`BoundReport.summary`, ``abs_error`` and ``tightest_closed_form`` (the smallest
    bound that needs no Dbar_t).
    """
    params = point["params"]
    mdp = FAMILIES[point["family"]](**params)
    report = evaluate(mdp)
    row = {k: v for k, v in point.items() if k != "params"}
    row.update({f"p_{k}": v for k, v in params.items()})
    row.update(report.summary())
    row["abs_error"] = abs(report.error)
    row["tightest_closed_form"] = tightest(report.bounds, CLOSED_FORM_BOUNDS)
    return row


def _load(path: Path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError):
        return None  # missing or unreadable: recompute


def run_points(points: list[dict], cache_dir: Path, *, jobs: int = 1,
               progress=None, description: str = "points",
               worker: Callable[[dict], dict] = evaluate_point,
               scheduler: str | None = None) -> pd.DataFrame:
    """Evaluate ``points`` (cached in ``cache_dir``) and return their rows as a DataFrame,
    in the order of ``points``.

    ``jobs`` is joblib's n_jobs (local processes; 1 runs in this process). With
    ``scheduler`` (an address such as ``tcp://10.0.0.5:8786``, or a
    ``dask.distributed.Client``) the points run on that existing Dask cluster instead;
    its workers need boundlab installed (the same version). Results come back to this
    process, which writes the cache, so nothing depends on a shared file system.
    ``progress`` is an optional :class:`rich.progress.Progress`; a task named
    ``description`` advances as points finish (cached points count at once).
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    keys = [point_key(p) for p in points]
    rows: dict[str, dict] = {}
    for k in keys:
        if k not in rows:
            cached = _load(cache_dir / f"{k}.json")
            if cached is not None:
                rows[k] = cached
    todo = {k: p for k, p in zip(keys, points) if k not in rows}
    task = progress.add_task(description, total=len(set(keys))) if progress else None
    if progress:
        progress.update(task, completed=len(set(keys)) - len(todo))
    if todo:
        items = list(todo.items())
        results: Iterable
        if scheduler is not None:
            results = _on_dask(scheduler, worker, items)
        elif jobs == 1:
            results = ((k, worker(p)) for k, p in items)
        else:
            runner = Parallel(n_jobs=jobs, return_as="generator_unordered")
            results = runner(delayed(_keyed)(worker, k, p) for k, p in items)
        for k, row in results:
            atomic_write_text(cache_dir / f"{k}.json", json.dumps(row, default=_jsonable))
            rows[k] = row
            if progress:
                progress.advance(task)
    return pd.DataFrame([rows[k] for k in keys])


def _keyed(worker, key, point):
    return key, worker(point)


def _on_dask(scheduler, worker, items):
    """Run (key, point) items on a Dask cluster, yielding (key, row) as they finish."""
    try:
        from dask.distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - the dask extra is not installed
        raise ValidationError("--scheduler needs dask.distributed: pip install "
                              "'boundlab[dask]'") from exc
    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        futures = [client.submit(_keyed, worker, k, p, pure=False) for k, p in items]
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        if own:
            client.close()


def _jsonable(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"cannot store {type(x).__name__} in the cache")


def horizon_grid(t_max: int, n: int) -> list[int]:
    """About ``n`` integer horizons from 1 to ``t_max``, geometrically spaced, always
    containing powers of two up to ``t_max``."""
    g = np.unique(np.round(np.geomspace(1, t_max, n)).astype(int))
    p2 = 2 ** np.arange(int(np.log2(t_max)) + 1)
    return sorted(set(g.tolist()) | set(p2.tolist()))

