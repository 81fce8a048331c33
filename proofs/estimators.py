"""Sample-based estimators: k3 unbiased and non-negative, k2 symmetric, E[rho] = 1,
E|rho - 1| = 2 TV. Symbolic over a categorical distribution on 3 tokens.

theory.md section 6; arXiv 2512.23075 v4 Appendix "Sample-Based Estimators".
"""

import sympy as sp

from ._core import ProofResult, positive_step, timed, zero_step

NAME = "estimators"


@timed
def check() -> ProofResult:
    r1, r2, t1, t2 = sp.symbols("r1 r2 theta1 theta2", positive=True)
    r = [r1, r2, 1 - r1 - r2]
    th = [t1, t2, 1 - t1 - t2]
    rho = [th[i] / r[i] for i in range(3)]
    kl = sum(r[i] * sp.log(r[i] / th[i]) for i in range(3))
    k3 = lambda x: x - 1 - sp.log(x)  # noqa: E731
    x = sp.Symbol("rho", positive=True)
    steps = [
        zero_step("E_roll[rho] = 1", sum(r[i] * rho[i] for i in range(3)), 1),
        zero_step("E_roll[k3(rho)] = KL(roll || theta)",
                  sp.expand_log(sum(r[i] * k3(rho[i]) for i in range(3)), force=True),
                  sp.expand_log(kl, force=True)),
        zero_step("k3(1) = 0", k3(x).subs(x, 1)),
        zero_step("k3'(rho) = 1 - 1/rho vanishes only at rho = 1",
                  sp.Tuple(*sp.solve(sp.diff(k3(x), x), x)), sp.Tuple(1)),
        positive_step("k3''(rho) = 1/rho^2 > 0 (convex): k3 >= k3(1) = 0",
                      sp.diff(k3(x), x, 2), nonneg=False),
        zero_step("k2(1/rho) = k2(rho) with k2 = (log rho)^2 / 2",
                  sp.expand_log(sp.log(1 / x) ** 2 / 2, force=True), sp.log(x) ** 2 / 2),
    ]
    # E_roll |rho - 1| = sum_v roll |theta/roll - 1| = sum_v |theta - roll| = 2 TV (roll > 0)
    rr, tt = sp.symbols("r theta", positive=True)
    steps.append(zero_step("r |theta/r - 1| = |theta - r| for r > 0, so E_roll|rho-1| = 2 TV",
                           rr * sp.Abs(tt / rr - 1), sp.Abs(tt - rr)))
    return ProofResult(NAME, "k3 unbiased for KL(roll||theta) and >= 0; k2 symmetric; "
                       "E_roll[rho] = 1; E_roll|rho - 1| = 2 TV",
                       ["roll, theta categorical on 3 tokens with positive entries"], steps,
                       "arXiv 2512.23075v4 App. 'Sample-Based Estimators'; theory.md s.6")
