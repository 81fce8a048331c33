"""Training under injected mismatch, the methods table, and the training sweep (issue 5)."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax
from typer.testing import CliRunner

from boundlab import ValidationError, families
from boundlab.cli import app
from boundlab.experiments_training import method_table
from boundlab.masking import TRMMax
from boundlab.objectives import DRPO, PGIS, PPG, PPOClip, RPG, TRMMask, logits_of
from boundlab.train import Mismatch, rollout_policy, train

TEMPLATE = families.random_dense(5, V=3, k=1, noise=0.0, seed=3)


@pytest.mark.parametrize("method", [PGIS(), PPOClip(), TRMMask(TRMMax(0.05)), DRPO(12.5),
                                    RPG("FKL", 0.01)], ids=lambda m: m.name)
@pytest.mark.parametrize("mismatch", [Mismatch("none"), Mismatch("moe", 0.3, 9.0),
                                      Mismatch("stale", staleness=2), Mismatch("bf16")],
                         ids=lambda m: m.kind)
def test_guaranteed_steps_always_improve(method, mismatch):
    """The monotonic-improvement guarantee: whenever L > unified bound, J(theta) > J(roll).
    Checked on every step of exact training runs (a violation would falsify the theory)."""
    log = train(TEMPLATE, method, iterations=12, lr=20.0, mismatch=mismatch, seed=1)
    assert len(log) == 12
    assert not (log["guaranteed"] & ~log["improved"]).any()
    assert (log["error"].abs() <= log["unified"] + 1e-12).all()  # the bound holds too
    if mismatch.kind == "none":
        assert log["J"].iloc[-1] > log["J"].iloc[0] + 0.05       # training makes progress
        assert (log["log_ppl_gap"] == 0).all()


def test_rollout_policy_kinds():
    z = logits_of(TEMPLATE)
    rng = np.random.default_rng(0)
    exact = softmax(z, axis=1)
    assert np.array_equal(rollout_policy(z, [z], Mismatch("none"), rng), exact)
    bf = rollout_policy(z, [z], Mismatch("bf16"), rng)
    assert 0 < np.abs(bf - exact).max() < 1e-2 and np.allclose(bf.sum(axis=1), 1)
    moe = rollout_policy(z, [z], Mismatch("moe", 1.0, 5.0), rng)
    top = exact.argmax(axis=1)
    assert (moe[np.arange(len(top)), top] < exact[np.arange(len(top)), top]).all()
    old = z - 1.0 * np.arange(z.shape[1])
    assert np.allclose(rollout_policy(z, [old, z], Mismatch("stale", staleness=2), rng),
                       softmax(old, axis=1))
    with pytest.raises(ValidationError):
        Mismatch("gpu")
    with pytest.raises(ValidationError, match="PPG needs step_rewards"):
        train(TEMPLATE, PPG("full"), iterations=2)


def test_methods_table_every_check_passes():
    table = method_table()
    assert table["all_pass"].all(), table.loc[~table["all_pass"], ["method", "variant",
                                                                   "checks"]]
    for name in ("PG-IS", "TIS", "PPO-clip", "dual-clip PPO", "token masking", "TRM", "DPPO",
                 "SPO", "DRPO", "RPG", "GRPO k3 penalty", "PPG"):
        assert name in set(table["method"]), name
    assert (table["n_checks"] >= 1).all()
    out = CliRunner().invoke(app, ["methods"])
    assert out.exit_code == 0 and "DRPO" in out.output


def test_training_sweep_end_to_end(tmp_path):
    result = CliRunner().invoke(app, ["sweep", "training", "--quick", "--out", str(tmp_path),
                                      "--jobs", "2"])
    assert result.exit_code == 0, result.output
    for name in ("training_token_is_vs_ppo", "training_trm_vs_ppo", "training_combined",
                 "training_other", "training_ppg"):
        assert (tmp_path / "figures" / f"{name}.png").stat().st_size > 10_000
    log = pd.read_csv(tmp_path / "results" / "training.csv")
    assert not (log["guaranteed"] & ~log["improved"]).any()
    assert {"J", "log_ppl_gap", "delta", "unified", "masked_fraction"} <= set(log.columns)


def test_training_with_a_sampled_batch():
    exact = train(TEMPLATE, PGIS(), iterations=10, lr=20.0, mismatch=Mismatch("none"))
    batch = train(TEMPLATE, PGIS(), iterations=10, lr=20.0, mismatch=Mismatch("none"),
                  batch=2000, seed=4)
    assert batch["J"].iloc[-1] > batch["J"].iloc[0] + 0.05   # still learns
    assert not np.allclose(batch["J"], exact["J"])           # but with sampling noise
    again = train(TEMPLATE, PGIS(), iterations=10, lr=20.0, mismatch=Mismatch("none"),
                  batch=2000, seed=4)
    pd.testing.assert_frame_equal(batch, again)               # reproducible
    with pytest.raises(ValidationError, match="batch"):
        train(TEMPLATE, RPG("FKL", 0.1), iterations=2, batch=100)
