"""Every proof obligation runs and is proved, or honestly labelled as a numeric check."""

import pytest
import sympy as sp
from typer.testing import CliRunner

import proofs
from boundlab.cli import app
from proofs._core import FAILED, NUMERIC, PROVED, zero_step, positive_step

# Obligations whose every step sympy settles symbolically.
FULLY_SYMBOLIC = {"telescoping", "ratio_equals_pdi", "estimators", "adaptive", "clipping"}


@pytest.mark.parametrize("name", list(proofs.OBLIGATIONS))
def test_obligation_holds(name):
    result = proofs.OBLIGATIONS[name]()
    assert result.verdict in (PROVED, NUMERIC), [(s.claim, s.detail) for s in result.steps]
    assert result.steps and result.statement and result.source.startswith("arXiv")
    for step in result.steps:
        assert step.verdict != FAILED, step.claim
        if step.verdict == NUMERIC:
            assert "random points" in step.detail  # a numeric step says what it did
    if name in FULLY_SYMBOLIC:
        assert result.verdict == PROVED
    assert "\\begin{align*}" in result.latex()


def test_checker_can_fail():
    x, y = sp.symbols("x y", positive=True)
    assert zero_step("false identity", x + y, x).verdict == FAILED
    assert zero_step("true identity", (x + y) ** 2, x**2 + 2 * x * y + y**2).verdict == PROVED
    assert positive_step("x - y >= 0 is false in general", x - y).verdict == FAILED
    assert positive_step("x^2 + y >= 0", x**2 + y).verdict == PROVED


def test_obligations_cover_the_issue_list():
    expected = {"telescoping", "ratio_equals_pdi", "estimators", "pinsker", "bound_algebra",
                "adaptive", "clipping"}
    assert expected <= set(proofs.OBLIGATIONS)
    claims = " ".join(s.claim for r in proofs.run_all() for s in r.steps)
    for phrase in ("crossover", "index reversal", "DRPO stationary point", "UNCLIPPED",
                   "k3", "k2", "E_roll[rho] = 1", "2 TV", "classical", "(2/3) T^(3/2)",
                   "mix_kl", "mix_tv", "4 T eps + 2", "induction step"):
        assert phrase in claims, phrase


def test_cli_proofs_table_and_latex():
    runner = CliRunner()
    out = runner.invoke(app, ["proofs"])
    assert out.exit_code == 0, out.output
    for name in proofs.OBLIGATIONS:
        assert name in out.output
    tex = runner.invoke(app, ["proofs", "telescoping", "--latex"])
    assert tex.exit_code == 0 and "\\begin{align*}" in tex.output and "rho" in tex.output
    one = runner.invoke(app, ["proofs", "pinsker"])
    assert one.exit_code == 0 and "numeric check" in one.output
    bad = runner.invoke(app, ["proofs", "nope"])
    assert bad.exit_code == 2
