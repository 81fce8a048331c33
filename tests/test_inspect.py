"""boundlab inspect: every chain is monotone and ends at the bound evaluate() reports."""

import numpy as np
import pytest
from hypothesis import given, settings
from typer.testing import CliRunner

from boundlab import ValidationError, evaluate, families
from boundlab.cli import app
from boundlab.inspect import ROUTES, inspect
from helpers import tree_instances


def _check_chain(res):
    chain = res.chain
    assert set(chain["route"]) == set(ROUTES)
    for route, sub in chain.groupby("route"):
        v = sub.sort_values("order")["value"].to_numpy()
        # each relaxation is >= the quantity it relaxes (up to float rounding of the sums)
        assert (np.diff(v) >= -1e-12 * np.maximum(v[1:], 1e-300) - 1e-15).all(), (route, v)
        # the last link is the bound evaluate() reports for this instance
        assert v[-1] == pytest.approx(res.report.bounds[route], rel=1e-10, abs=1e-15)
    ps = res.per_step
    # tower property: E[|rho_t - 1| |1 - prod|] = E[|rho_t - 1| 2 TV_future] for every t
    np.testing.assert_allclose(ps["adaptive_triangle"], ps["adaptive_tower"], rtol=1e-9,
                               atol=1e-15)
    # Hoelder pieces: |g_t(c)| <= 2 D_TV(c), and in fact <= D_TV(c) (boundlab's sharper form)
    assert (ps["g_inf"] <= ps["max_tv_ctx"] * (1 + 1e-9) + 1e-15).all()
    # every context-shift lemma bounds the exact context TV
    for col in [c for c in ps.columns if c.startswith("shift_")]:
        assert (ps["context_tv"] <= ps[col] * (1 + 1e-12) + 1e-15).all(), col
    assert (ps["tv_future_max"] <= ps["future_bound_star"] * (1 + 1e-12) + 1e-15).all()


@given(tree_instances(max_sequences=1024))
@settings(max_examples=200)
def test_chains_are_monotone_and_end_at_the_bounds(inst):
    _, mdp = inst
    _check_chain(inspect(mdp))


@pytest.mark.parametrize("seed", range(20))
def test_given_reward_chain(seed):
    mdp = families.random_tree(T=4, V=3, noise=0.5, flip_frac=0.2, seed=seed)
    res = inspect(mdp, reward="given")
    _check_chain(res)
    assert res.chain["value"].iloc[0] == pytest.approx(abs(evaluate(mdp).error), rel=1e-12)


def test_worst_reward_chain_starts_at_the_worst_case():
    mdp = families.random_tree(T=5, V=2, noise=0.8, seed=3)
    res = inspect(mdp)
    assert res.chain["value"].iloc[0] == pytest.approx(evaluate(mdp).worst_case_error,
                                                       rel=1e-12)


def test_automata_are_expanded_and_large_ones_refused():
    res = inspect(families.moe_flip(3, V=4, k=1, flip_frac=0.5))
    _check_chain(res)
    with pytest.raises(ValidationError, match="use a smaller T or V"):
        inspect(families.bigram_bf16(6))
    with pytest.raises(ValidationError, match="reward"):
        inspect(families.random_tree(T=2), reward="best")


def test_cli_inspect_prints_plots_and_grids(tmp_path):
    runner = CliRunner()
    png, csv = tmp_path / "w.png", tmp_path / "w.csv"
    out = runner.invoke(app, ["inspect", "bigram_bf16", "-T", "2", "--plot", str(png),
                              "--csv", str(csv)])
    assert out.exit_code == 0, out.output
    assert "[Hoelder]" in out.output and "[sup pulled out]" in out.output
    assert png.stat().st_size > 20_000 and csv.read_text().count("\n") > 30
    grid = tmp_path / "g.csv"
    out = runner.invoke(app, ["inspect", "moe_flip", "--grid", "T=2,3", "--grid",
                              "flip_frac=0.1,0.5", "--csv", str(grid)])
    assert out.exit_code == 0, out.output
    import pandas as pd

    g = pd.read_csv(grid)
    assert set(g["T"]) == {2, 3} and set(g["flip_frac"]) == {0.1, 0.5}
    assert len(g) == 4 * len(ROUTES) * 6 - 4 * 3  # 6 links per PDI route, 5 adaptive
    big = runner.invoke(app, ["inspect", "bigram_bf16", "-T", "8"])
    assert big.exit_code == 2 and "smaller T" in big.output


def test_cli_inspect_from_file(tmp_path):
    mdp = families.random_tree(T=3, V=2, noise=0.4, seed=2)
    arrays = {f"roll_{t}": mdp.step(t)[1] for t in range(3)}
    arrays |= {f"theta_{t}": mdp.step(t)[2] for t in range(3)}
    np.savez(tmp_path / "tree.npz", reward=mdp.reward, **arrays)
    out = CliRunner().invoke(app, ["inspect", "--from-file", str(tmp_path / "tree.npz")])
    assert out.exit_code == 0, out.output and "[adap_star]" in out.output
    np.savez(tmp_path / "bad.npz", reward=mdp.reward)
    bad = CliRunner().invoke(app, ["inspect", "--from-file", str(tmp_path / "bad.npz")])
    assert bad.exit_code == 2 and "roll_0" in bad.output
