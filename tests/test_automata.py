"""Automata describe the same sequence laws as their tree expansion (theory.md section 1).

For a Markov chain or a counting automaton, evaluate() on the automaton and on
``to_tree()`` must agree on everything that does not depend on how rewards may vary: J,
L, Error for the given reward, delta, eps, D_KL^seq, Dbar_t and D_TV^seq. The worst case
over rewards of the final state is at most the tree's worst case over all rewards.
"""

import numpy as np
import pytest

from boundlab import TokenMDP, evaluate, families
from boundlab.reference import enumerate_sequences
from conftest import close


def _compare(auto, tree):
    a, t = evaluate(auto), evaluate(tree)
    for name in ("J_roll", "J_theta", "surrogate"):
        assert close(getattr(a, name), getattr(t, name)), name
    assert close(a.error, t.error, abs_=1e-15 * max(t.worst_case_error, 1e-300))
    for name in ("delta", "eps"):
        assert close(getattr(a, name), getattr(t, name)), name
    assert close(a.dkl_seq, t.dkl_seq, rel=1e-11)
    assert close(a.dbar, t.dbar, abs_=1e-17)
    assert a.worst_case_error <= t.worst_case_error * (1 + 1e-12) + 1e-300
    return a, t


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("V,k,T", [(2, 1, 6), (3, 2, 5), (4, 1, 4)])
def test_markov_equals_tree(V, k, T, seed):
    auto = families.random_dense(T, V=V, k=k, noise=0.7, flip_frac=0.3, seed=seed)
    a, t = _compare(auto, auto.to_tree())
    # small automaton: D_TV^seq by enumeration is exact and equals the tree's
    assert a.dtv_seq_exact and a.dtv_seq_method in ("enumeration", "sufficient-statistic")
    assert close(a.dtv_seq, t.dtv_seq, abs_=1e-16)


@pytest.mark.parametrize("delta", [1e-6, 1e-3, 0.3, 2.0])
@pytest.mark.parametrize("T", [1, 3, 8, 11])
def test_counting_equals_tree(T, delta):
    auto = families.iid(T, delta=delta, q=0.3, reward="majority")
    a, t = _compare(auto, auto.to_tree())
    # the count is a sufficient statistic for a binary i.i.d. pair: exact D_TV^seq
    assert a.dtv_seq_method == "sufficient-statistic"
    assert close(a.dtv_seq, t.dtv_seq, rel=1e-12, abs_=1e-16)
    assert close(a.delta, delta, rel=1e-9)


def test_counting_with_non_sufficient_count_is_flagged():
    """V = 3 with unequal ratios off the counted token: the count is not sufficient, so
    D_TV^seq must come from enumeration (small T) or be marked as an upper bound."""
    p_roll = np.array([0.5, 0.3, 0.2])
    p_theta = np.array([0.45, 0.4, 0.15])
    small = TokenMDP.counting(p_roll, p_theta, 6)
    r = evaluate(small)
    assert r.dtv_seq_method == "enumeration" and r.dtv_seq_exact
    assert close(r.dtv_seq, enumerate_sequences(small.to_tree()).dtv_seq, abs_=1e-16)
    big = TokenMDP.counting(p_roll, p_theta, 200)
    rb = evaluate(big)
    assert not rb.dtv_seq_exact and rb.dtv_seq_method.endswith("-bound")
    assert rb.dtv_seq <= min(1.0, (rb.dkl_seq / 2) ** 0.5) + 1e-15


def test_counting_is_exact_at_T_4096():
    r = evaluate(families.iid(4096, delta=1e-4))
    assert r.dtv_seq_exact and r.dtv_seq_method == "sufficient-statistic"
    assert close(r.delta, 1e-4, rel=1e-9)
    assert close(r.dkl_seq, 4096 * 1e-4, rel=1e-9)  # i.i.d.: D_KL^seq = T delta exactly
    # the exact sequence TV lies between the TV of the count's law (data processing;
    # here equal, the count being sufficient) and Pinsker on D_KL^seq
    assert 0 < r.dtv_seq <= (r.dkl_seq / 2) ** 0.5
    for name, value in r.bounds.items():
        assert r.status(name) == "holds", name


def test_last_token_chain_is_markov_with_identity_next():
    rng = np.random.default_rng(0)
    V = 3
    roll = rng.dirichlet(np.ones(V), size=V)
    theta = rng.dirichlet(np.ones(V), size=V)
    init = np.full(V, 1 / V)
    reward = rng.random(V)
    a = TokenMDP.last_token(roll, theta, init, reward, 5)
    b = TokenMDP.markov(np.tile(np.arange(V), (V, 1)), roll, theta, init, reward, 5)
    ra, rb = evaluate(a), evaluate(b)
    assert ra.error == rb.error and ra.worst_case_error == rb.worst_case_error
    assert a.n_blocks == 1  # one shared table for all 5 steps
