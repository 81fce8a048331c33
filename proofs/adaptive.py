"""Adaptive bounds: crossover of the two future routes at T - t = delta / (2 eps^2), and
recovery of pm_kl (Dbar_t = min(1, sqrt(delta/2))) and coupling (Dbar_t = eps) by index
reversal sum_t f(T - t) = sum_t f(t - 1).

theory.md section 5; arXiv 2512.23075 v4 Theorem "Adaptive Bounds", Remark "Recovery of
prior bounds", Appendix "Crossover Analysis".
"""

import sympy as sp

from ._core import ProofResult, given_step, timed, zero_step

NAME = "adaptive"


@timed
def check() -> ProofResult:
    eps, delta = sp.symbols("epsilon delta", positive=True)
    m = sp.Symbol("m", positive=True)  # m = T - t, remaining horizon
    sol = sp.solve(sp.Eq(m * eps, sp.sqrt(m * delta / 2)), m)
    steps = [zero_step("crossover: m eps = sqrt(m delta / 2) at m = T - t",
                       sp.Tuple(*sol), sp.Tuple(delta / (2 * eps**2)))]
    f = sp.Function("f")
    for T in range(1, 11):
        t = sp.symbols("t", integer=True)
        lhs = sum(f(T - tt) for tt in range(1, T + 1))
        rhs = sum(f(tt - 1) for tt in range(1, T + 1))
        steps.append(zero_step(f"index reversal, T = {T}", lhs, rhs))
    T, t, k = sp.symbols("T t k", integer=True, positive=True)
    # sympy re-indexes both sums (k = T - t in the adaptive sum, k = t - 1 in the PM sum);
    # they become the same Sum over k = 0..T-1.
    adaptive_sum = sp.Sum(f(T - t), (t, 1, T)).change_index(t, T - t, k)
    pm_sum = sp.Sum(f(t - 1), (t, 1, T)).change_index(t, t - 1, k)
    steps.append(zero_step("index reversal, general T: sum_{t=1}^T f(T-t) = sum_{t=1}^T f(t-1)",
                           adaptive_sum, pm_sum))
    # Recovery, term by term after building both sums from their own index expressions.
    adv = sp.Min(1, sp.sqrt(delta / 2))
    for T_ in (1, 2, 5, 10):
        adap_kl = 4 * sum(adv * sp.Min(1, sp.sqrt((T_ - tt) * delta / 2))
                          for tt in range(1, T_ + 1))
        pm_kl = 4 * adv * sum(sp.Min(1, sp.sqrt((tt - 1) * delta / 2))
                              for tt in range(1, T_ + 1))
        steps.append(zero_step(f"adap_kl(Dbar_t = min(1, sqrt(delta/2))) = pm_kl, T = {T_}",
                               adap_kl, pm_kl))
    steps.append(given_step("for eps <= 1: min(1, eps) = eps", sp.Eq(sp.Min(1, eps), eps)))
    for T_ in (1, 2, 5, 10):
        adap_tv = 4 * sum(eps * sp.Min(1, (T_ - tt) * eps) for tt in range(1, T_ + 1))
        coupling = 4 * eps * sum(sp.Min(1, (tt - 1) * eps) for tt in range(1, T_ + 1))
        steps.append(zero_step(f"adap_tv(Dbar_t = eps) = coupling, T = {T_}",
                               adap_tv, coupling))
    return ProofResult(NAME, "adaptive routes cross at T - t = delta/(2 eps^2); adap_kl and "
                       "adap_tv recover pm_kl and coupling", ["delta, eps > 0", "eps <= 1"],
                       steps, "arXiv 2512.23075v4 Thm 'Adaptive Bounds', Rem. 'Recovery', "
                       "App. 'Crossover Analysis'")
