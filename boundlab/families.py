"""Seeded instance families: the policy pairs boundlab studies (theory.md section 7).

* ``random_tree``   exact trees with dense Gaussian logit noise and optional flips.
* ``random_dense``  a Markov chain (state = last k tokens) with dense logit noise.
* ``moe_flip``      the same chain where a fraction of states gets a large logit jump
                    (mixture-of-experts routing flips: sparse, large divergence).
* ``iid``           i.i.d. Bernoulli tokens on the counting automaton, at a chosen delta.
* ``bigram_bf16``   REAL INPUT: a character bigram model of English estimated at run time
                    from the docstrings of the standard library; pi_theta is its float32
                    softmax, pi_roll the same logits and softmax computed in bfloat16.

Every generator takes ``seed`` (an int) and is reproducible; the same arguments give
bit-identical tables. :data:`FAMILIES` maps names to generators ``f(T, **params)``.
"""

from __future__ import annotations

import ast
import glob
import os
import sysconfig
from dataclasses import dataclass
from functools import lru_cache

import ml_dtypes
import numpy as np
from scipy.optimize import brentq
from scipy.special import rel_entr, softmax

from .errors import ValidationError
from .model import TokenMDP, check_size, tree_bytes

__all__ = [
    "ALPHABET", "FAMILIES", "BigramModel", "bigram_model", "bigram_bf16", "iid",
    "moe_flip", "random_dense", "random_tree", "bernoulli_at_kl", "perturb_logits",
    "last_k_next", "improve_flip",
]


# ---------------------------------------------------------------- building blocks
def perturb_logits(logits: np.ndarray, rng: np.random.Generator, *, noise: float = 0.0,
                   flip_frac: float = 0.0, jump: float = 7.0) -> np.ndarray:
    """pi_theta logits from pi_roll logits: Gaussian noise of scale ``noise`` (nats) on
    every logit, and at a fraction ``flip_frac`` of the rows (contexts) the most likely
    token's logit lowered by ``jump`` nats (a routing flip: with jump = 7, a token with
    pi_roll = 0.9 falls to about 0.008, a ratio near 1/100).
    """
    out = logits + noise * rng.standard_normal(logits.shape) if noise > 0 else logits.copy()
    if flip_frac > 0:
        n_rows = logits.shape[0]
        n_flip = max(1, int(round(flip_frac * n_rows)))
        rows = rng.permutation(n_rows)[:n_flip]
        top = np.argmax(logits[rows], axis=1)
        out[rows, top] -= jump
    return out


def last_k_next(V: int, k: int) -> np.ndarray:
    """Next-state table of the chain whose state is the last k tokens (S = V**k)."""
    S = V**k
    return (np.arange(S, dtype=np.int64)[:, None] * V + np.arange(V)[None, :]) % S


def _check_positive(name, x, *, allow_zero=True):
    if not np.isfinite(x) or x < 0 or (x == 0 and not allow_zero):
        raise ValidationError(f"{name} = {x!r} must be {'>= 0' if allow_zero else '> 0'}")


# ---------------------------------------------------------------- random trees
def random_tree(T: int, V: int = 2, *, P: int = 1, noise: float = 0.3,
                flip_frac: float = 0.0, jump: float = 7.0, logit_scale: float = 1.5,
                zero_frac: float = 0.0, seed: int = 0) -> TokenMDP:
    """A random exact tree: pi_roll = softmax(N(0, logit_scale^2) logits) at every context,
    pi_theta from :func:`perturb_logits`; reward uniform on [0, 1] per leaf.

    ``zero_frac`` sets that fraction of (context, token) pairs to probability 0 under both
    policies (sparse support). Raises ValidationError if the tree would not fit in memory.
    """
    for name, x in (("noise", noise), ("flip_frac", flip_frac), ("logit_scale", logit_scale),
                    ("zero_frac", zero_frac)):
        _check_positive(name, x)
    check_size(tree_bytes(P, V, T), f"a tree with P={P}, V={V}, T={T}")
    rng = np.random.default_rng(seed)
    roll, theta = [], []
    for t in range(T):
        rows = P * V**t
        lr = logit_scale * rng.standard_normal((rows, V))
        lt = perturb_logits(lr, rng, noise=noise, flip_frac=flip_frac, jump=jump)
        if zero_frac > 0:
            dead = rng.random((rows, V)) < zero_frac
            # keep the two likeliest tokens of every row, so that a flip (even jump = inf,
            # pi_theta = 0 on the top token) leaves pi_theta a distribution
            top2 = np.argsort(lr, axis=1)[:, -2:]
            dead[np.arange(rows)[:, None], top2] = False
            lr = np.where(dead, -np.inf, lr)
            lt = np.where(dead, -np.inf, lt)
        roll.append(softmax(lr, axis=1))
        theta.append(softmax(lt, axis=1))
    reward = rng.random(P * V**T)
    return TokenMDP.tree(roll, theta, reward)


# ---------------------------------------------------------------- Markov chains
def random_dense(T: int, V: int = 8, k: int = 2, *, noise: float = 0.05,
                 flip_frac: float = 0.0, jump: float = 7.0, logit_scale: float = 1.5,
                 seed: int = 0) -> TokenMDP:
    """Chain with state = last ``k`` tokens (S = V**k): random pi_roll logits
    N(0, logit_scale^2), pi_theta with dense noise (and optional flips). The reward is a
    fixed random [0, 1] value per final state; init is uniform over states.
    """
    for name, x in (("noise", noise), ("flip_frac", flip_frac), ("logit_scale", logit_scale)):
        _check_positive(name, x)
    if not 0 <= flip_frac <= 1:
        raise ValidationError(f"flip_frac = {flip_frac!r} must lie in [0, 1]")
    rng = np.random.default_rng(seed)
    S = V**k
    lr = logit_scale * rng.standard_normal((S, V))
    lt = perturb_logits(lr, rng, noise=noise, flip_frac=flip_frac, jump=jump)
    reward = rng.random(S)
    return TokenMDP.markov(last_k_next(V, k), softmax(lr, axis=1), softmax(lt, axis=1),
                           np.full(S, 1.0 / S), reward, T)


def moe_flip(T: int, V: int = 8, k: int = 2, *, flip_frac: float = 1 / 16,
             jump: float = 7.0, noise: float = 0.0, logit_scale: float = 1.5,
             seed: int = 0) -> TokenMDP:
    """Sparse mixture-of-experts routing flips: :func:`random_dense` with a fraction
    ``flip_frac`` of the V**k states flipped by ``jump`` nats and (by default) no other
    noise. theory.md section 7, second bullet."""
    return random_dense(T, V, k, noise=noise, flip_frac=flip_frac, jump=jump,
                        logit_scale=logit_scale, seed=seed)


def improve_flip(T: int, V: int = 8, k: int = 2, *, eta: float = 0.5,
                 flip_frac: float = 0.0, jump: float = 7.0, logit_scale: float = 1.5,
                 seed: int = 0) -> TokenMDP:
    """A policy-improvement step plus routing flips: pi_theta's logits are pi_roll's plus
    ``eta`` times the centred reward of the state each token leads to (a step toward
    higher-reward states), then a fraction ``flip_frac`` of states is flipped by ``jump``
    nats. With flip_frac = 0, J(theta) > J(roll) is the typical outcome; the flips add
    mismatch that TRM should reject."""
    for name, x in (("eta", eta), ("flip_frac", flip_frac), ("logit_scale", logit_scale)):
        _check_positive(name, x)
    if not 0 <= flip_frac <= 1:
        raise ValidationError(f"flip_frac = {flip_frac!r} must lie in [0, 1]")
    rng = np.random.default_rng(seed)
    S = V**k
    nxt = last_k_next(V, k)
    lr = logit_scale * rng.standard_normal((S, V))
    reward = rng.random(S)
    gain = reward[nxt] - reward[nxt].mean(axis=1, keepdims=True)
    lt = perturb_logits(lr + eta * gain, rng, flip_frac=flip_frac, jump=jump)
    return TokenMDP.markov(nxt, softmax(lr, axis=1), softmax(lt, axis=1),
                           np.full(S, 1.0 / S), reward, T)


# ---------------------------------------------------------------- i.i.d. counting
def bernoulli_at_kl(q: float, delta: float) -> float:
    """The p > q with KL(Bernoulli(q) || Bernoulli(p)) = delta (nats), by Brent's method.

    Raises ValidationError if no such p < 1 exists (delta >= -log(1 - q))."""
    if not 0 < q < 1:
        raise ValidationError(f"q = {q!r} must lie in (0, 1)")
    _check_positive("delta", delta)
    if delta == 0:
        return q

    def kl(p):
        return rel_entr(q, p) + rel_entr(1 - q, 1 - p) - delta

    hi = 1 - 1e-15
    if kl(hi) < 0:
        raise ValidationError(f"delta = {delta!r} is unreachable from q = {q!r} with p > q")
    return brentq(kl, q, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200)


def iid(T: int, *, delta: float = 1e-3, q: float = 0.5, reward: str = "fraction") -> TokenMDP:
    """I.i.d. binary tokens: pi_roll = Bernoulli(q), pi_theta = Bernoulli(p) with
    KL(roll || theta) = delta at every context (so delta is exactly the given value), on
    the counting automaton (state = number of 1s). The count is a sufficient statistic,
    so D_TV^seq is exact; exact to T >= 4096.

    reward: "fraction" (k / T, the fraction of 1s) or "majority" (1[k > T q]).
    """
    p = bernoulli_at_kl(q, delta)
    counts = np.arange(T + 1)
    if reward == "fraction":
        R = counts / T
    elif reward == "majority":
        R = (counts > T * q).astype(float)
    else:
        raise ValidationError(f"reward = {reward!r}; expected 'fraction' or 'majority'")
    return TokenMDP.counting(np.array([1 - q, q]), np.array([1 - p, p]), T, reward=R, token=1)


# ---------------------------------------------------------------- real input: bigram
#: Symbols of the character model: 26 letters, space, . , ' digit(0) other(#). V = 32.
ALPHABET = "abcdefghijklmnopqrstuvwxyz .,'0#"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}


def _symbol(c: str) -> int:
    c = c.lower()
    if c in _INDEX and c not in "0#":
        return _INDEX[c]
    if c.isspace():
        return _INDEX[" "]
    if c.isdigit():
        return _INDEX["0"]
    return _INDEX["#"]


def stdlib_docstrings(max_chars: int = 2_000_000) -> list[str]:
    """Docstrings of the top-level standard-library modules of this Python, in file order.

    Read with ``ast`` (nothing is imported, so no module runs); files that do not parse are
    skipped. The text differs slightly between Python versions; the measured figures are
    reported with the version.
    """
    root = sysconfig.get_paths()["stdlib"]
    docs, total = [], 0
    for path in sorted(glob.glob(os.path.join(root, "*.py"))):
        try:
            with open(path, encoding="utf-8") as fh:
                tree = ast.parse(fh.read())
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                 ast.AsyncFunctionDef)):
                d = ast.get_docstring(node)
                if d:
                    docs.append(" ".join(d.split()))  # collapse whitespace runs
                    total += len(docs[-1])
        if total >= max_chars:
            break
    if total == 0:
        raise ValidationError(f"no docstrings found under {root}: cannot build the bigram model")
    return docs


@dataclass(frozen=True)
class BigramModel:
    """A character bigram language model (state = last character), V = len(ALPHABET).

    logits : (V, V) float32, log-probabilities of the next symbol given the last.
    init : (V,) float64, distribution of the first symbol of a docstring.
    n_chars : number of characters it was estimated from.
    """

    logits: np.ndarray
    init: np.ndarray
    n_chars: int

    def pi_theta(self) -> np.ndarray:
        """float32 softmax of the float32 logits, rows renormalised in float64."""
        x = self.logits.astype(np.float32)
        z = np.exp(x - x.max(axis=1, keepdims=True))
        p = (z / z.sum(axis=1, keepdims=True, dtype=np.float32)).astype(np.float64)
        return p / p.sum(axis=1, keepdims=True)

    def pi_roll(self) -> np.ndarray:
        """The same logits rounded to bfloat16 and the softmax computed in bfloat16
        (subtract max, exp, sum, divide, all in bfloat16 via ml_dtypes), then rows
        renormalised in float64 so that they are exact distributions. The renormalisation
        removes only a common factor per row; the mismatch left is the per-entry bfloat16
        rounding, as in a low-precision inference backend."""
        bf16 = ml_dtypes.bfloat16
        x = self.logits.astype(bf16)
        z = np.exp(x - x.max(axis=1, keepdims=True))
        p = (z / z.sum(axis=1, keepdims=True, dtype=bf16)).astype(np.float64)
        return p / p.sum(axis=1, keepdims=True)


@lru_cache(maxsize=4)
def bigram_model(max_chars: int = 2_000_000, smoothing: float = 0.5) -> BigramModel:
    """Estimate the bigram model from :func:`stdlib_docstrings` with add-``smoothing``
    counts (so every transition has positive probability)."""
    _check_positive("smoothing", smoothing, allow_zero=False)
    V = len(ALPHABET)
    counts = np.zeros((V, V))
    first = np.zeros(V)
    n = 0
    for d in stdlib_docstrings(max_chars):
        sym = np.fromiter((_symbol(c) for c in d), dtype=np.int64, count=len(d))
        first[sym[0]] += 1
        np.add.at(counts, (sym[:-1], sym[1:]), 1.0)
        n += len(sym)
    counts += smoothing
    logp = np.log(counts) - np.log(counts.sum(axis=1, keepdims=True))
    return BigramModel(logits=logp.astype(np.float32), init=first / first.sum(), n_chars=n)


def bigram_bf16(T: int, *, reward: str = "vowel") -> TokenMDP:
    """REAL INPUT: the stdlib-docstring bigram model, pi_theta in float32 and pi_roll in
    bfloat16 (see :class:`BigramModel`), as a last-character chain of horizon T.

    reward: "vowel" (1 if the last character is a vowel) or "period" (1 if it is '.').
    """
    model = bigram_model()
    V = len(ALPHABET)
    if reward == "vowel":
        R = np.array([1.0 if c in "aeiou" else 0.0 for c in ALPHABET])
    elif reward == "period":
        R = (np.arange(V) == _INDEX["."]).astype(float)
    else:
        raise ValidationError(f"reward = {reward!r}; expected 'vowel' or 'period'")
    return TokenMDP.last_token(model.pi_roll(), model.pi_theta(), model.init, R, T)


#: name -> generator f(T, **params) returning a TokenMDP.
FAMILIES = {
    "bigram_bf16": bigram_bf16,
    "moe_flip": moe_flip,
    "iid": iid,
    "random_dense": random_dense,
    "random_tree": random_tree,
    "improve_flip": improve_flip,
}
