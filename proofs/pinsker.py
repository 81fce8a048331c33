"""Pinsker's inequality for Bernoulli distributions (sign of the derivative of the gap),
and hence the capped advantage bound |g_t(c)| <= 2 D_TV(c) <= 2 min(1, sqrt(D_KL(c)/2)).

theory.md sections 3-4; arXiv 2512.23075 v4 Lemma "Advantage Bound".
"""

import numpy as np
import sympy as sp

from ._core import ProofResult, given_step, numeric_step, positive_step, timed, zero_step

NAME = "pinsker"


@timed
def check() -> ProofResult:
    p, q = sp.symbols("p q", positive=True)
    kl = q * sp.log(q / p) + (1 - q) * sp.log((1 - q) / (1 - p))  # KL(Bern(q) || Bern(p))
    gap = kl - 2 * (p - q) ** 2                                     # Pinsker: gap >= 0
    dgap = sp.diff(gap, p)
    factored = (p - q) * (2 * p - 1) ** 2 / (p * (1 - p))
    steps = [
        zero_step("gap(p = q) = 0", gap.subs(p, q)),
        zero_step("d gap / dp = (p - q)(2p - 1)^2 / (p (1 - p))", dgap, factored),
        positive_step("(2p - 1)^2 / (p (1 - p)) >= 0 on 0 < p < 1: the derivative has the "
                      "sign of p - q, so the gap is smallest (= 0) at p = q",
                      ((2 * p - 1) ** 2 / (p * (1 - p))).subs(p, sp.Symbol("u", positive=True)
                                                              / (1 + sp.Symbol("u",
                                                                               positive=True)))),
        given_step("data processing: TV(P, Q) = |P(A) - Q(A)| with A = {theta > roll}, and the "
                   "Bernoulli pair on A has KL <= KL(P || Q)", None,
                   "standard (log-sum inequality); reduces the categorical case to Bernoulli"),
    ]
    # |g| = |sum_v (theta - roll)(v) A(v)| <= sum_v |theta - roll| = 2 TV when |A| <= 1
    th = sp.symbols("t1 t2 t3", positive=True)
    ro = sp.symbols("r1 r2 r3", positive=True)
    A = sp.symbols("A1 A2 A3", real=True)
    g = sum((th[i] - ro[i]) * A[i] for i in range(3))
    bound = sum(sp.Abs(th[i] - ro[i]) for i in range(3))
    steps.append(numeric_step(
        "capped advantage bound: |sum_v (theta - roll) A_v| <= sum_v |theta - roll| "
        "for |A_v| <= 1 (triangle inequality; sympy cannot order |.| sums)",
        bound - sp.Abs(g), [*th, *ro, *A], lambda v: v >= -1e-12,
        sampler=lambda rng: np.concatenate([rng.dirichlet(np.ones(3)),
                                            rng.dirichlet(np.ones(3)),
                                            rng.uniform(-1, 1, 3)]), what=">= 0"))
    # Sharper than the paper (boundlab's observation): since sum_v (theta - roll) = 0,
    # g = sum_v (theta - roll)(Q_v - c) for any c; the positive and negative parts of
    # theta - roll each have mass D_TV, so |g| <= D_TV (max Q - min Q) <= D_TV for Q in [0,1].
    Q = sp.symbols("Q1 Q2 Q3", real=True)
    g_q = sum((th[i] - ro[i]) * Q[i] for i in range(3))
    tv = bound / 2
    steps.append(numeric_step(
        "sharper (boundlab): |g| = |sum_v (theta - roll) Q_v| <= D_TV for Q_v in [0, 1], "
        "a factor 2 below the paper's 2 D_TV",
        tv - sp.Abs(g_q), [*th, *ro, *Q], lambda v: v >= -1e-12,
        sampler=lambda rng: np.concatenate([rng.dirichlet(np.ones(3)),
                                            rng.dirichlet(np.ones(3)),
                                            rng.uniform(0, 1, 3)]), what=">= 0"))
    return ProofResult(NAME, "KL(Bern(q)||Bern(p)) >= 2 (p - q)^2, hence D_TV <= sqrt(KL/2) "
                       "and |g_t| <= 2 min(1, eps, sqrt(delta/2))",
                       ["0 < p, q < 1", "|A_t| <= 1 (rewards in [0, 1])"], steps,
                       "arXiv 2512.23075v4 Lemma 'Advantage Bound'; theory.md s.3-4")
