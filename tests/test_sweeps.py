"""Sweep machinery: cached, resumable, parallel runs give the same rows; the CLI works."""

import json

import pandas as pd
from typer.testing import CliRunner

from boundlab.cli import app
from boundlab.sweeps import atomic_write_text, evaluate_point, horizon_grid, point_key, run_points

POINTS = [dict(part="t", label="moe", family="moe_flip", params=dict(T=T, seed=1))
          for T in (1, 3, 17)] + [
    dict(part="t", label="iid", family="iid", params=dict(T=5, delta=1e-3))]


def test_point_key_is_stable_and_distinguishes_points():
    assert point_key(POINTS[0]) == point_key(json.loads(json.dumps(POINTS[0])))
    assert len({point_key(p) for p in POINTS}) == len(POINTS)


def test_run_points_caches_and_resumes(tmp_path):
    first = run_points(POINTS[:2], tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 2

    calls = []

    def counting_worker(p):
        calls.append(p)
        return evaluate_point(p)

    # an "interrupted" run finished the first two points; the rerun computes only the rest
    full = run_points(POINTS, tmp_path, worker=counting_worker)
    assert calls == POINTS[2:]
    pd.testing.assert_frame_equal(full.iloc[:2][first.columns].reset_index(drop=True), first,
                                  check_dtype=False)  # NaN-padded int columns become float

    def failing_worker(p):
        raise AssertionError("everything should come from the cache")

    again = run_points(POINTS, tmp_path, worker=failing_worker)
    pd.testing.assert_frame_equal(again, full)


def test_corrupt_cache_entry_is_recomputed(tmp_path):
    run_points(POINTS[:1], tmp_path)
    (tmp_path / f"{point_key(POINTS[0])}.json").write_text("{ half-written")
    frame = run_points(POINTS[:1], tmp_path)
    assert frame.loc[0, "T"] == 1


def test_parallel_run_equals_serial(tmp_path):
    serial = run_points(POINTS, tmp_path / "a", jobs=1)
    parallel = run_points(POINTS, tmp_path / "b", jobs=2)
    pd.testing.assert_frame_equal(serial, parallel)


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "sub" / "x.csv"
    atomic_write_text(target, "a,b\n1,2\n")
    assert target.read_text() == "a,b\n1,2\n"
    assert [p.name for p in target.parent.iterdir()] == ["x.csv"]


def test_horizon_grid_reaches_t_max_and_has_powers_of_two():
    g = horizon_grid(4096, 25)
    assert g[0] == 1 and g[-1] == 4096 and all(2**k in g for k in range(13))
    assert g == sorted(set(g))


def test_cli_table_prints_the_reproduced_values():
    result = CliRunner().invoke(app, ["table"])
    assert result.exit_code == 0
    assert "113.8 / 113.8" in result.output and "3.49 x 10^5 / 3.49 x 10^5" in result.output
    assert "16 of 16" in result.output and "14 of 14" in result.output


def test_cli_evaluate_and_errors():
    runner = CliRunner()
    ok = runner.invoke(app, ["evaluate", "moe_flip", "-T", "32", "-p", "flip_frac=0.25"])
    assert ok.exit_code == 0 and "adap_star" in ok.output and "holds" in ok.output
    bad = runner.invoke(app, ["evaluate", "nope"])
    assert bad.exit_code == 2 and "unknown family" in bad.output
    bad = runner.invoke(app, ["evaluate", "moe_flip", "-p", "flip_frac=3"])
    assert bad.exit_code == 2 and "flip_frac" in bad.output
    bad = runner.invoke(app, ["sweep", "nonsense"])
    assert bad.exit_code == 2 and "unknown sweep" in bad.output


def test_quick_sweep_end_to_end(tmp_path):
    result = CliRunner().invoke(app, ["sweep", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in ("horizon_scaling", "divergence_sweep", "tightest_map", "validity"):
        for ext in ("png", "pdf"):
            assert (tmp_path / "figures" / f"{name}.{ext}").stat().st_size > 10_000
    for name in ("horizon", "divergence", "tightest_map", "validity", "bigram_bf16",
                 "paper_tables"):
        assert (tmp_path / "results" / f"{name}.csv").exists()
    v = pd.read_csv(tmp_path / "results" / "validity.csv")
    status = v[[c for c in v.columns if c.startswith("status_")]]
    assert (status == "holds").all().all()
    h = pd.read_csv(tmp_path / "results" / "horizon.csv")
    assert set(h["label"]) == {"bigram_bf16", "moe_flip", "iid"}
    assert "no bound exceeded" in result.output and "measured delta" in result.output
    # a second run resumes entirely from the cache
    again = CliRunner().invoke(app, ["sweep", "--quick", "--out", str(tmp_path)])
    assert again.exit_code == 0
