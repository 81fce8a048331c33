"""Closed-form relations between the bounds (theory.md section 5) and the paper's tables."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from boundlab import ValidationError, bounds as B
from boundlab.tables import paper_tables

Ts = st.integers(1, 5000)
small = st.floats(0, 1, allow_nan=False)


@given(T=Ts, delta=st.floats(0, 2.0, allow_nan=False))
@settings(max_examples=200)
def test_pm_kl_small_divergence_form(T, delta):
    delta = min(delta, 2.0 / T)  # caps inactive
    exact = 2 * delta * np.sqrt(np.arange(T)).sum()
    assert B.pm_kl(T, delta) == pytest.approx(exact, rel=1e-12, abs=1e-300)
    assert B.pm_kl(T, delta) <= 4 / 3 * T**1.5 * delta * (1 + 1e-12)


@given(T=Ts, eps=small)
@settings(max_examples=200)
def test_coupling_regimes(T, eps):
    c = B.coupling(T, eps)
    if T * eps <= 1:
        assert c == pytest.approx(2 * T * (T - 1) * eps**2, rel=1e-12, abs=1e-300)
    else:
        assert c <= 4 * T * eps + 2
        assert c <= 4 * T * eps * (1 + 1e-12)  # v4 main text states this tighter form
    assert B.coupling(T, eps, capped=False) == pytest.approx(B.classical(T, eps), rel=1e-12,
                                                             abs=1e-300)


@given(T=Ts, delta=st.floats(0, 50, allow_nan=False), eps=small)
@settings(max_examples=200)
def test_recovery_of_pm_and_coupling_by_adaptive(T, delta, eps):
    d_kl = np.full(T, min(1.0, math.sqrt(delta / 2)))
    assert B.adap_kl(T, delta, d_kl) == pytest.approx(B.pm_kl(T, delta), rel=1e-12,
                                                      abs=1e-300)
    assert B.adap_tv(T, eps, np.full(T, eps)) == pytest.approx(B.coupling(T, eps), rel=1e-12,
                                                               abs=1e-300)


@given(T=Ts, delta=st.floats(0, 50, allow_nan=False), eps=small,
       dkl=st.floats(0, 50, allow_nan=False), dtv=small)
@settings(max_examples=300)
def test_orderings(T, delta, eps, dkl, dtv):
    b = B.compute(T, delta, eps, dkl, dtv, dbar=np.full(T, eps / 2))
    assert b["adap_star"] <= min(b["adap_kl"], b["adap_tv"]) * (1 + 1e-12)
    assert b["unified"] == min(b[k] for k in ("pm_kl", "pm_tv", "mix_kl", "mix_tv",
                                              "coupling", "adap_star"))
    assert b["min3"] == min(b["pm_kl"], b["mix_kl"], b["adap_kl"])
    assert b["adap_tv"] <= b["linear"] * (1 + 1e-12)
    assert all(v >= 0 and not math.isnan(v) for v in b.values())


@given(T=Ts, delta=st.floats(1e-12, 2, allow_nan=False),
       dkl=st.floats(0, 2).filter(lambda x: x == 0 or x > 1e-300))  # no subnormals
@settings(max_examples=200)
def test_mixed_tv_equals_kl_when_pinsker_tight(T, delta, dkl):
    eps, dtv = math.sqrt(delta / 2), math.sqrt(dkl / 2)
    assert B.mix_tv(T, eps, dtv) == pytest.approx(B.mix_kl(T, delta, dkl), rel=1e-12,
                                                  abs=1e-300)
    assert B.mix_kl(T, delta, dkl) == pytest.approx(2 * T * math.sqrt(delta * dkl),
                                                    rel=1e-12, abs=1e-300)


def test_crossover_of_adaptive_routes():
    """The per-position minimum switches from the coupling to the Pinsker route at
    T - t = delta / (2 eps^2)."""
    delta, eps, T = 1e-4, 1e-3, 1000
    k = np.arange(T)
    coupling_wins = k * eps <= np.sqrt(k * delta / 2)
    assert k[coupling_wins].max() == math.floor(delta / (2 * eps**2))


def test_infinite_delta_is_capped():
    b = B.compute(10, math.inf, 1.0, math.inf, 1.0)
    assert b["pm_kl"] == 4 * 9 and b["mix_kl"] == 40 and b["classical_kl"] == math.inf
    assert b["adap_kl"] == 4 * 9  # worst-case dbar = 1, route capped at 1 except t = T
    assert B.classical_kl(1, math.inf) == 0.0


@pytest.mark.parametrize("kwargs,msg", [
    (dict(T=0), "T = 0"),
    (dict(T=2.5), "T = 2.5"),
    (dict(delta=-1e-3), "delta"),
    (dict(eps=1.5), "eps"),
    (dict(eps=float("nan")), "eps"),
    (dict(dtv_seq=2.0), "dtv_seq"),
    (dict(dkl_seq=-1.0), "dkl_seq"),
    (dict(dbar=np.zeros(3)), "dbar has shape"),
    (dict(dbar=np.full(4, 1.5)), r"dbar\[0\]"),
])
def test_compute_rejects_bad_parameters(kwargs, msg):
    args = dict(T=4, delta=1e-3, eps=1e-2, dkl_seq=1e-2, dtv_seq=0.1)
    args.update(kwargs)
    with pytest.raises(ValidationError, match=msg):
        B.compute(**args)


# --------------------------------------------------------------------------- paper tables
# The printed values, transcribed from the LaTeX of arXiv 2512.23075 (v4 Table 1, v2 table).
V4_PRINTED = {
    ("Classical", "TV (uncapped)", "KL-only"): "1,677",
    ("Classical", "TV (uncapped)", "KL+TV"): "839",
    ("Coupling", "TV coupling (capped)", "KL-only"): "113.8",
    ("Coupling", "TV coupling (capped)", "KL+TV"): "79.9",
    ("Pinsker-Marginal", "TV+KL", "KL+TV"): "24.7",
    ("Mixed", "KL", "KL+TV"): "8.2",
    ("Mixed", "TV", "KL+TV"): "4.1",
    ("Unified B*", "min all", "KL+TV"): "<= 4.1",
}
V2_PRINTED = {
    ("Linear", "KL", "small div. (delta=1e-4)"): "115.9",
    ("Classical (TRPO)", "KL", "large div. (delta=1), no cap"): "1.68 x 10^7",
    ("Pinsker-Marginal", "KL", "large div. (delta=1), no cap"): "3.49 x 10^5",
    ("Pinsker-Marginal", "KL", "large div. (delta=1), with cap"): "11,582",
    ("Mixed", "KL", "large div. (delta=1), with cap"): "8,192",
}


def test_every_printed_table_value_is_reproduced():
    f = paper_tables()
    assert len(f) == 30
    assert f["match"].all(), f.loc[~f["match"], ["table", "bound", "column", "paper",
                                                  "boundlab"]]
    for table, printed in (("v4 Table 1", V4_PRINTED), ("v2 table", V2_PRINTED)):
        sub = f[f["table"] == table].set_index(["bound", "route", "column"])
        for key, text in printed.items():
            assert sub.loc[key, "boundlab"] == text, key


def test_pm_prints_are_the_closed_form_not_the_sum():
    """The paper's 35.0 is (4/3) T^{3/2} delta = 34.95; the eq:B-PM-KL sum is 34.946."""
    assert B.pm_kl(4096, 1e-4) == pytest.approx(34.9461, abs=1e-4)
    assert 4 / 3 * 4096**1.5 * 1e-4 == pytest.approx(34.9525, abs=1e-4)
