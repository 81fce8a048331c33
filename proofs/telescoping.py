"""Telescoping identity prod_t rho_t - 1 = sum_t (rho_t - 1) prod_{j>t} rho_j.

theory.md section 2 (ratio form); arXiv 2512.23075 v4 Appendix "Proof of the Adaptive
Bound", Step 1, eq:telescoping.
"""

import sympy as sp

from ._core import ProofResult, Step, timed, zero_step

NAME = "telescoping"


def lhs_rhs(T: int):
    rho = sp.symbols(f"rho1:{T + 1}", positive=True)
    lhs = sp.prod(rho) - 1
    rhs = sum((rho[t] - 1) * sp.prod(rho[t + 1:]) for t in range(T))
    return rho, lhs, rhs


@timed
def check() -> ProofResult:
    steps = []
    for T in range(1, 9):
        _, lhs, rhs = lhs_rhs(T)
        steps.append(zero_step(f"T = {T}", lhs, rhs))
    # Induction: with P_T = prod_{t<=T} rho_t and S_T = sum_{t<=T} (rho_t - 1) prod_{t<j<=T},
    # appending rho_{T+1} multiplies every product in S_T by rho_{T+1} and adds the new term
    # (rho_{T+1} - 1) * (empty product 1): S_{T+1} = S_T rho_{T+1} + rho_{T+1} - 1.
    for T in range(1, 6):
        rho, _, S_T = lhs_rhs(T)
        _, _, S_T1 = lhs_rhs(T + 1)
        r = sp.Symbol(f"rho{T + 1}", positive=True)
        steps.append(zero_step(f"recurrence S_(T+1) = S_T rho_(T+1) + rho_(T+1) - 1 at T = {T}",
                               S_T1, S_T * r + r - 1))
    P, S, r = sp.symbols("P_T S_T rho_{T+1}", positive=True)
    hyp = sp.Eq(S, P - 1)
    step_lhs = (S * r + r - 1).subs(S, P - 1)
    steps.append(Step("induction hypothesis S_T = P_T - 1", hyp, "given",
                      "assumed for T, shown above for T = 1"))
    steps.append(zero_step("induction step: S_T rho + rho - 1 = P_T rho - 1", step_lhs, P * r - 1))
    return ProofResult(NAME, "prod_t rho_t - 1 = sum_t (rho_t - 1) prod_{j>t} rho_j",
                       ["rho_t > 0"], steps,
                       "arXiv 2512.23075v4 App. 'Proof of the Adaptive Bound', eq:telescoping")
