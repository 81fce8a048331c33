"""Instance families: reproducible, and the real bigram input is what it says it is."""

import numpy as np
import pytest

from boundlab import evaluate, families
from boundlab.families import ALPHABET, bernoulli_at_kl, bigram_model
from scipy.special import rel_entr


@pytest.mark.parametrize("name,kwargs", [
    ("random_tree", dict(V=3, noise=0.5, flip_frac=0.2)),
    ("random_dense", dict(noise=0.1)),
    ("moe_flip", dict(flip_frac=0.1)),
])
def test_seeded_families_are_reproducible(name, kwargs):
    f = families.FAMILIES[name]
    a, b, c = f(4, seed=7, **kwargs), f(4, seed=7, **kwargs), f(4, seed=8, **kwargs)
    for t in range(4):
        assert np.array_equal(a.step(t)[2], b.step(t)[2])
    assert not all(np.array_equal(a.step(t)[2], c.step(t)[2]) for t in range(4))


def test_moe_flip_is_sparse_and_large():
    mdp = families.moe_flip(16, V=8, k=2, flip_frac=1 / 16, jump=7.0)
    roll, theta = mdp.step(0)[1], mdp.step(0)[2]
    tv = 0.5 * np.abs(theta - roll).sum(axis=1)
    assert (tv > 0).sum() == 4  # 64 states, 1/16 flipped
    r = evaluate(mdp)
    assert r.delta > 0.3 and r.dbar.max() < 0.2 * r.eps  # large max, small average


def test_bernoulli_at_kl_hits_the_target():
    for q in (0.1, 0.5, 0.9):
        for delta in (1e-9, 1e-4, 0.1, 1.0):
            if delta >= -np.log(q):
                continue
            p = bernoulli_at_kl(q, delta)
            kl = rel_entr(q, p) + rel_entr(1 - q, 1 - p)
            assert kl == pytest.approx(delta, rel=1e-9)


def test_bigram_model_is_estimated_from_real_text():
    model = bigram_model()
    V = len(ALPHABET)
    assert V == 32 and model.logits.shape == (V, V) and model.logits.dtype == np.float32
    assert model.n_chars > 200_000  # hundreds of thousands of characters of docstrings
    p = np.exp(model.logits.astype(float))
    i = ALPHABET.index
    # English: after 'q' comes 'u'; after 't' the likeliest letter is 'h'
    assert np.argmax(p[i("q")]) == i("u")
    letters = [c for c in ALPHABET if c.isalpha()]
    assert max(letters, key=lambda c: p[i("t"), i(c)]) == "h"
    assert model.init[i(" ")] == 0.0  # docstrings are stripped of leading whitespace


def test_bigram_bf16_mismatch_is_a_real_small_dense_divergence():
    model = bigram_model()
    roll, theta = model.pi_roll(), model.pi_theta()
    assert roll.dtype == np.float64 and np.allclose(roll.sum(axis=1), 1, atol=1e-15)
    assert not np.array_equal(roll, theta)
    # bfloat16 keeps 8 significant bits: relative probability errors of order 2^-8
    rel = np.abs(roll / theta - 1)
    assert 1e-4 < rel.max() < 0.1
    r = evaluate(families.bigram_bf16(256))
    # dense and small: every context diverges a little (theory.md section 7)
    assert 1e-7 < r.delta < 1e-2
    assert (r.dbar > 0).all()
    assert r.dkl_seq == pytest.approx(r.dkl_t.sum())
