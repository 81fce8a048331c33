"""Method zoo: exact objectives and gradients, and the claims of methods.md (issue 5)."""

import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import rel_entr

from boundlab import ValidationError, evaluate, families
from boundlab.masking import SER, TRMAvg, TRMMax
from boundlab.objectives import (DPPO, finite_difference_gradient, DRPO, GRPOK3, PGIS, PPG, PPOClip, RPG, SPO, TIS,
                                 DualClip, TokenMask, TRMMask, dppo_divergence, expected,
                                 grpo_k3_expected, j_beta, logits_of, ppg_gradient,
                                 ppg_objective, rpg_expected, with_logits)
from boundlab.reference import paths


def midpoint_threshold(values):
    """A threshold halfway between two adjacent distinct values near the median: the mask
    (a stop-gradient) then does not flip under the finite-difference steps."""
    v = np.unique(np.round(values, 12))
    i = max(1, len(v) // 2)
    return float(0.5 * (v[i - 1] + v[i]))


fd = finite_difference_gradient  # central differences, h = 1e-6: error ~1e-10


INSTANCES = {
    "chain": lambda: families.moe_flip(3, V=3, k=1, flip_frac=0.5, jump=1.0, noise=0.3, seed=2),
    "tree": lambda: families.random_tree(T=3, V=3, noise=0.4, flip_frac=0.2, jump=2.0, seed=5),
}
METHODS = [PGIS(), PPOClip(), DualClip(c=3.0), TokenMask(0.7, 1.4), DPPO("binary_tv", 0.1),
           DPPO("binary_kl", 0.01), DPPO("topk_tv", 0.1, k=2), DPPO("exact_kl", 0.05),
           SPO(), DRPO(0.3), DRPO(12.5), TRMMask(TRMMax(0.05))]


@pytest.mark.parametrize("inst", list(INSTANCES))
@pytest.mark.parametrize("method", METHODS, ids=lambda m: f"{m.name}-{id(m) % 1000}")
def test_gradient_matches_finite_differences_and_enumeration(method, inst):
    mdp = INSTANCES[inst]()
    if isinstance(method, TRMMask):  # a threshold that rejects some sequences, not all,
        v = np.unique(mdp._flat["kl"])   # halfway between two per-context KL values
        for thr in 0.5 * (v[1:] + v[:-1]):
            method = TRMMask(TRMMax(float(thr)))
            if 0 < expected(method, mdp).acceptance < 1:
                break
        assert 0 < expected(method, mdp).acceptance < 1
    dp = expected(method, mdp)
    en = expected(method, mdp, how="enumeration")
    assert dp.objective == pytest.approx(en.objective, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(dp.gradient, en.gradient, rtol=1e-10, atol=1e-15)
    z = logits_of(mdp)
    g = fd(lambda zz: expected(method, with_logits(mdp, zz), baseline=dp.baseline).objective, z)
    # central differences with h = 1e-6: truncation ~1e-12, rounding ~1e-10 on O(1) sums
    np.testing.assert_allclose(dp.gradient, g, atol=1e-8)
    assert np.abs(g).max() > 1e-4  # a non-trivial gradient


def test_sequence_masks_that_are_not_stepwise_use_enumeration():
    mdp = INSTANCES["tree"]()
    pa = paths(mdp)
    for rule in (TRMAvg(midpoint_threshold(pa.kl_ctx.mean(axis=1))),
                 SER(midpoint_threshold(np.abs(pa.rho_m1).mean(axis=1)))):
        m = TRMMask(rule)
        r = expected(m, mdp)
        assert r.method == "enumeration" and 0 < r.acceptance < 1
        g = fd(lambda zz: expected(m, with_logits(mdp, zz), baseline=r.baseline).objective,
               logits_of(mdp))
        np.testing.assert_allclose(r.gradient, g, atol=1e-8)
        with pytest.raises(ValidationError, match="not a check at every step"):
            expected(m, mdp, how="dp")


def test_pg_is_gradient_equals_grad_J_at_roll():
    base = families.random_tree(T=3, V=3, noise=0.0, seed=9)  # theta = roll
    r = expected(PGIS(), base, baseline=0.0)
    gJ = fd(lambda zz: evaluate(with_logits(base, zz)).J_theta, logits_of(base))
    np.testing.assert_allclose(r.gradient, gJ, atol=1e-9)
    # the baseline does not change it at theta = roll (E_roll[grad log pi] = 0 there)
    np.testing.assert_allclose(expected(PGIS(), base, baseline=0.4).gradient, gJ, atol=1e-9)


def test_tis_is_pg_is_without_truncation_and_differs_with_it():
    mdp = INSTANCES["chain"]()
    np.testing.assert_allclose(expected(TIS(C=math.inf), mdp).gradient,
                               expected(PGIS(), mdp).gradient, atol=1e-15)
    r = mdp._flat["theta"] / mdp._flat["roll"]
    C = float(np.quantile(r, 0.5))
    assert not np.allclose(expected(TIS(C=C), mdp).gradient, expected(PGIS(), mdp).gradient)


def test_ppo_four_case_table():
    m = PPOClip(0.2, 0.28)
    r = np.array([1.5, 0.5, 1.5, 0.5])          # > 1+e_high, < 1-e_low, twice
    fp, fm, cp, cm = m.parts(r, {})
    # A > 0 uses (f+, c+); A < 0 uses (f-, c-)
    assert fp[0] == pytest.approx(1.28) and cp[0] == 0        # rho > 1+e, A > 0: clipped
    assert fm[1] == pytest.approx(0.8) and cm[1] == 0         # rho < 1-e, A < 0: clipped
    assert fm[2] == 1.5 and cm[2] == 1.5                      # rho > 1+e, A < 0: leaks
    assert fp[3] == 0.5 and cp[3] == 0.5                      # rho < 1-e, A > 0: leaks
    d = DualClip(0.2, 0.28, c=3.0)
    _, fm, _, cm = d.parts(np.array([5.0, 2.0]), {})
    assert fm[0] == 3.0 and cm[0] == 0 and cm[1] == 2.0       # capped beyond c


def test_drpo_weight_and_stationary_point():
    mu, delta = 0.3, 0.2
    m = DRPO(delta)
    for sign in (1.0, -1.0):
        pis = np.array([mu + sign * delta, mu + sign * 1.5 * delta])
        ctx = {"roll": np.full(2, mu), "theta": pis}
        _, _, cp, cm = m.parts(pis / mu, ctx)
        weight = (cp if sign > 0 else cm) / (pis / mu)   # 1 - sign(A) Delta / delta
        assert weight[0] == pytest.approx(0.0, abs=1e-12) and weight[1] < 0
        # stationary point of pi A - |A| (pi - mu)^2 / (2 delta) is mu + sign(A) delta
        res = minimize_scalar(lambda p: -(p * sign - (p - mu) ** 2 / (2 * delta)),
                              bounds=(-5, 5), method="bounded", options={"xatol": 1e-10})
        assert res.x == pytest.approx(mu + sign * delta, abs=1e-7)


@pytest.mark.parametrize("seed", range(20))
def test_dppo_binary_and_topk_are_lower_bounds_of_exact(seed):
    rng = np.random.default_rng(seed)
    roll = rng.dirichlet(np.ones(6) * 0.5, size=50)
    theta = rng.dirichlet(np.ones(6) * 0.5, size=50)
    exact_tv = dppo_divergence(roll, theta, "exact_tv")
    exact_kl = dppo_divergence(roll, theta, "exact_kl")
    # |mu(y) - pi(y)| <= TV(mu, pi): one coordinate of the difference is at most its
    # positive (or negative) part, which sums to the TV
    assert (dppo_divergence(roll, theta, "binary_tv") <= exact_tv + 1e-15).all()
    assert (dppo_divergence(roll, theta, "topk_tv", k=3) <= exact_tv + 1e-15).all()
    assert (dppo_divergence(roll, theta, "binary_kl") <= exact_kl + 1e-12).all()
    assert (dppo_divergence(roll, theta, "topk_kl", k=3) <= exact_kl + 1e-12).all()


@pytest.mark.parametrize("variant", ["FKL", "RKL", "UFKL", "URKL"])
@pytest.mark.parametrize("form", ["loss", "reinforce"])
def test_rpg_losses_have_gradient_minus_grad_J_beta(variant, form):
    mdp = families.random_tree(T=3, V=2, noise=0.5, seed=1)
    beta = 0.3
    res = rpg_expected(RPG(variant, beta, form), mdp)
    g = fd(lambda zz: j_beta(variant, beta, with_logits(mdp, zz)), logits_of(mdp))
    np.testing.assert_allclose(res.gradient, -g, atol=1e-8)


def test_unnormalised_variants_equal_normalised_ones():
    mdp = families.random_tree(T=3, V=3, noise=0.6, seed=2)
    assert j_beta("UFKL", 0.2, mdp) == pytest.approx(j_beta("FKL", 0.2, mdp), rel=1e-12)
    assert j_beta("URKL", 0.2, mdp) == pytest.approx(j_beta("RKL", 0.2, mdp), rel=1e-12)


def test_grpo_k3_weighted_and_unweighted():
    """With the weight w the penalty's gradient is grad KL(pi || ref) (at any pi); without
    it, on-policy (pi_old = pi), it is grad KL(ref || pi)."""
    on = families.random_tree(T=2, V=3, noise=0.0, seed=3)          # pi_theta = pi_old
    ref_mdp = families.random_tree(T=2, V=3, noise=0.0, seed=4)
    ref = paths(ref_mdp).p_roll                                       # P^ref per sequence

    def kl(p, q):
        return float(rel_entr(p, q).sum())

    unweighted = grpo_k3_expected(GRPOK3(weighted=False), on, ref)
    g = fd(lambda zz: kl(ref, paths(with_logits(on, zz)).p_theta), logits_of(on))
    np.testing.assert_allclose(unweighted.gradient, g, atol=1e-8)
    off = families.random_tree(T=2, V=3, noise=0.5, seed=3)
    weighted = grpo_k3_expected(GRPOK3(weighted=True), off, ref)
    g = fd(lambda zz: kl(paths(with_logits(off, zz)).p_theta, ref), logits_of(off))
    np.testing.assert_allclose(weighted.gradient, g, atol=1e-8)


def test_ppg_full_window_is_the_policy_gradient():
    mdp = families.random_dense(5, V=3, k=1, noise=0.2, seed=6)
    rng = np.random.default_rng(0)
    rewards = [rng.random((int(mdp.n_states[t]), 3)) for t in range(mdp.T)]
    gJ = fd(lambda zz: ppg_objective(with_logits(mdp, zz), rewards), logits_of(mdp))
    full = ppg_gradient(PPG("full"), mdp, rewards)
    np.testing.assert_allclose(full, gJ, atol=1e-8)
    # a window covering the whole future (K >= T) reproduces it; shorter ones do not
    np.testing.assert_allclose(ppg_gradient(PPG("kstep", K=mdp.T), mdp, rewards), full,
                               atol=1e-14)
    np.testing.assert_allclose(ppg_gradient(PPG("segment", K=mdp.T), mdp, rewards), full,
                               atol=1e-14)
    assert not np.allclose(ppg_gradient(PPG("greedy"), mdp, rewards), full)
    assert not np.allclose(ppg_gradient(PPG("kstep", K=2), mdp, rewards), full)


@pytest.mark.parametrize("method", [PGIS(), PPOClip(), DRPO(0.3), TRMMask(TRMMax(0.3)),
                                    TRMMask(SER(0.5))], ids=lambda m: m.name)
def test_sampled_batch_gradient_is_unbiased(method):
    """The batch estimate with a fixed baseline averages to the exact expected gradient:
    |mean - exact| within 5 standard errors of the mean, coordinate by coordinate."""
    from boundlab.objectives import sampled

    mdp = INSTANCES["chain"]()
    exact = expected(method, mdp, how="enumeration")
    runs = np.stack([sampled(method, mdp, 4000, seed=s, baseline=exact.baseline).gradient
                     for s in range(60)])
    se = runs.std(axis=0, ddof=1) / np.sqrt(len(runs))
    assert (np.abs(runs.mean(axis=0) - exact.gradient) <= 5 * se + 1e-12).all()
    a = sampled(method, mdp, 500, seed=3, baseline=exact.baseline)
    b = sampled(method, mdp, 500, seed=3, baseline=exact.baseline)
    assert np.array_equal(a.gradient, b.gradient)  # seeded


def test_all_masked_batch_gives_zero_gradient_and_a_warning():
    from boundlab.objectives import sampled

    mdp = INSTANCES["chain"]()
    with pytest.warns(RuntimeWarning, match="all 300 sequences"):
        res = sampled(TRMMask(TRMMax(0.0)), mdp, 300)
    assert not res.gradient.any() and res.acceptance == 0
