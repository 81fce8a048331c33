"""theory.md section 2 identities, engine against the brute-force reference enumerator.

Tolerance: 1e-12 relative. Both sides are computed without catastrophic cancellation
(the kernel propagates the error density directly; the reference uses expm1 of summed
log ratios), so they agree to a few hundred ulps; quantities that are exactly zero in
exact arithmetic (T = 1, pi_theta = pi_roll) must come out exactly zero.

One exception, with its reason: the KL of two nearly equal float rows. The reference uses
the literal sum_v r log(r / theta), the engine the term-wise non-negative form
sum_v r k3(theta / r); for rows whose float sums differ by s the two differ by s, about
1e-16 per row, and the literal form also cancels first-order terms (error ~1e-16 * TV).
So delta gets an absolute allowance of 1e-15 nats, and D_KL^seq (a sum over T steps of
expectations) T * 1e-15: far below any divergence the bounds distinguish.
"""

import numpy as np
import pytest
from hypothesis import given, settings

from boundlab import evaluate, families
from boundlab.reference import enumerate_sequences
from conftest import close
from helpers import tree_instances


def _assert_matches_reference(mdp):
    r = evaluate(mdp)
    ref = enumerate_sequences(mdp)
    scale = max(r.worst_case_error, 1e-300)
    assert close(r.J_roll, ref.J_roll)
    assert close(r.J_theta, ref.J_theta)
    assert close(r.surrogate, ref.surrogate, abs_=1e-15)
    # ratio form of the error (telescoping identity) against the kernel's PDI-style recursion
    assert close(r.error, ref.error_ratio_form, abs_=1e-13 * scale)
    assert close(r.worst_case_error, ref.worst_case_error)
    assert close(r.delta, ref.delta, abs_=1e-15)
    assert close(r.eps, ref.eps)
    # chain rule: sum_t E[D_KL(c_t)] (engine) = KL(P^roll || P^theta) over sequences (ref)
    assert close(r.dkl_seq, ref.dkl_seq, abs_=mdp.T * 1e-15)
    assert close(r.dbar, ref.dbar, abs_=1e-16)
    assert close(r.dtv_seq, ref.dtv_seq, abs_=1e-16)
    assert r.dtv_seq_exact
    return r, ref


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("V,T,P", [(2, 1, 1), (2, 6, 1), (3, 4, 2), (4, 3, 1)])
def test_engine_equals_reference_on_random_trees(V, T, P, seed):
    mdp = families.random_tree(T=T, V=V, P=P, noise=0.4, flip_frac=0.2, seed=seed)
    _assert_matches_reference(mdp)


@given(tree_instances(max_sequences=512))
@settings(max_examples=150)
def test_engine_equals_reference_property(inst):
    _, mdp = inst
    r, ref = _assert_matches_reference(mdp)
    # performance difference identity (theory.md section 2, first bullet)
    assert close(ref.pdi_theta.sum(), r.J_theta - r.J_roll, abs_=1e-14)
    assert close(ref.pdi_roll.sum(), r.surrogate, abs_=1e-14)


@pytest.mark.parametrize("seed", range(10))
def test_performance_difference_identity(seed):
    mdp = families.random_tree(T=5, V=3, noise=0.8, seed=seed)
    r = evaluate(mdp)
    ref = enumerate_sequences(mdp)
    assert close(ref.pdi_theta.sum(), r.J_theta - r.J_roll)
    assert close(ref.pdi_roll.sum(), r.surrogate)
    # Error = sum_t (E_{d^theta} g_t - E_{d^roll} g_t)
    assert close((ref.pdi_theta - ref.pdi_roll).sum(), r.error, rel=1e-11)
    # and the t = 1 term of that sum vanishes: d_1^theta = d_1^roll
    assert ref.pdi_theta[0] == pytest.approx(ref.pdi_roll[0], rel=1e-13, abs=1e-16)


def test_telescoping_identity_numeric(rng):
    for T in range(1, 30):
        rho = rng.uniform(0.2, 3.0, size=T)
        lhs = np.prod(rho) - 1
        rhs = sum((rho[t] - 1) * np.prod(rho[t + 1:]) for t in range(T))
        assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("seed", range(10))
def test_T1_gives_zero_error(seed):
    mdp = families.random_tree(T=1, V=4, P=3, noise=2.0, flip_frac=0.5, seed=seed)
    r = evaluate(mdp)
    assert r.error == 0.0 and r.worst_case_error == 0.0
    assert r.J_theta - r.J_roll == pytest.approx(r.surrogate, rel=1e-14, abs=1e-16)
    assert r.delta > 0  # the policies do differ


@pytest.mark.parametrize("family", ["tree", "markov", "counting"])
def test_equal_policies_give_zero_error(family):
    if family == "tree":
        mdp = families.random_tree(T=5, V=3, noise=0.0, seed=3)
    elif family == "markov":
        mdp = families.random_dense(T=200, V=4, k=2, noise=0.0, seed=3)
    else:
        mdp = families.iid(T=300, delta=0.0)
    r = evaluate(mdp)
    for name in ("error", "worst_case_error", "surrogate", "delta", "eps", "dkl_seq",
                 "dtv_seq"):
        assert getattr(r, name) == 0.0, name
    assert r.J_theta == r.J_roll
    assert all(v == 0.0 for v in r.bounds.values())  # every bound vanishes with the divergence


@pytest.mark.parametrize("seed", range(5))
def test_surrogate_gradient_matches_objective_at_roll(seed):
    """grad L = grad J at theta = roll: the error is second order in the perturbation.

    Perturb pi_theta's logits along a fixed random direction by +-h; central differences of
    J and L agree to O(h^2), and Error(h) scales as h^2 (halving h quarters it)."""
    base = families.random_tree(T=4, V=3, noise=0.0, seed=seed)
    rng = np.random.default_rng(seed + 100)
    dirs = [rng.standard_normal(base.step(t)[1].shape) for t in range(base.T)]

    def at(h):
        theta = []
        for t in range(base.T):
            logits = np.log(base.step(t)[1]) + h * dirs[t]
            z = np.exp(logits - logits.max(axis=1, keepdims=True))
            theta.append(z / z.sum(axis=1, keepdims=True))
        return evaluate(base.with_theta(theta))

    h = 1e-4
    plus, minus = at(h), at(-h)
    dJ = (plus.J_theta - minus.J_theta) / (2 * h)
    dL = (plus.surrogate - minus.surrogate) / (2 * h)
    assert abs(dJ) > 1e-3  # a non-trivial direction
    assert dJ == pytest.approx(dL, rel=1e-6)
    # Error(h) = c2 h^2 + O(h^3): at h = 1e-5 the cubic term is ~1e-5 relative, and the
    # engine computes the O(h^2) error without cancellation, so the ratio is 4 to 1e-3.
    e1, e2 = at(1e-5).error, at(5e-6).error
    assert abs(e1) > 0
    assert e1 / e2 == pytest.approx(4.0, rel=1e-3)
