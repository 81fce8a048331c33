"""PPO clipping's four sign cases (which branch the min keeps, and its gradient in rho),
and DRPO's per-token stationary point pi = mu + sign(A) delta.

theory.md section 6 (PPO clipping asymmetry); methods.md (PPO, DRPO); arXiv 2512.23075
v2 Table "PPO Clipping Analysis"; DRPO: Yao et al. 2026, arXiv 2606.09821.
"""

import sympy as sp

from ._core import ProofResult, positive_step, timed, zero_step

NAME = "clipping"


@timed
def check() -> ProofResult:
    e, s, a = sp.symbols("e s a", positive=True)  # clip range, excess beyond it, |A|
    steps = []
    cases = [  # (name, rho, A, kept branch)
        ("rho > 1+e, A > 0: clipped, objective (1+e) A", 1 + e + s, a, "clipped"),
        ("rho < 1-e, A < 0: clipped, objective (1-e) A", 1 - e - s, -a, "clipped"),
        ("rho > 1+e, A < 0: UNCLIPPED, objective rho A", 1 + e + s, -a, "unclipped"),
        ("rho < 1-e, A > 0: UNCLIPPED, objective rho A", 1 - e - s, a, "unclipped"),
    ]
    for claim, rho, A, kept in cases:
        clipped = sp.Max(1 - e, sp.Min(1 + e, rho)) * A
        clipped = clipped.subs({sp.Min(1 + e, rho): sp.Min(1 + e, rho)})
        clip_val = ((1 + e) if rho == 1 + e + s else (1 - e)) * A
        unclipped = rho * A
        # min(unclipped, clipped) = kept branch  <=>  (other - kept) >= 0
        other, keep = (unclipped, clip_val) if kept == "clipped" else (clip_val, unclipped)
        steps.append(positive_step(claim + f" (the {kept} branch is the smaller)",
                                   sp.expand(other - keep), nonneg=False))
        grad = 0 if kept == "clipped" else A
        steps.append(zero_step("  gradient in rho: " + ("0" if grad == 0 else "A (leaks)"),
                               sp.diff(keep, s) / sp.diff(rho, s), grad))
    # DRPO: expected per-token objective over mu for one action: pi A - |A| (pi - mu)^2/(2 delta)
    pi, mu, d = sp.symbols("pi mu delta", positive=True)
    for sign, name in ((1, "A > 0"), (-1, "A < 0")):
        A = sign * a
        obj = pi * A - sp.Abs(A) * (pi - mu) ** 2 / (2 * d)
        sol = sp.solve(sp.diff(obj, pi), pi)
        steps.append(zero_step(f"DRPO stationary point, {name}: pi = mu + sign(A) delta",
                               sp.Tuple(*sol), sp.Tuple(mu + sign * d)))
        steps.append(positive_step(f"  and it is a maximum ({name}): -d2/dpi2 = |A|/delta > 0",
                                   -sp.diff(obj, pi, 2), nonneg=False))
    return ProofResult(NAME, "PPO clip keeps the unclipped branch for (rho > 1+e, A < 0) and "
                       "(rho < 1-e, A > 0); DRPO's stationary point is mu + sign(A) delta",
                       ["clip range e in (0, 1)", "s > 0 excess beyond the clip range",
                        "A != 0", "delta > 0"], steps,
                       "arXiv 2512.23075v2 Table 'PPO Clipping Analysis'; arXiv 2606.09821")
