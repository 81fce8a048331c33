"""Ratio form of the error equals the performance-difference (PDI) form, symbolically, on
a 2-token vocabulary with horizon T = 2 and one prompt.

theory.md section 2; arXiv 2512.23075 v4 eq:error-pdi and Lemma "Exact Error Identity".
"""

import itertools

import sympy as sp

from ._core import ProofResult, timed, zero_step

NAME = "ratio_equals_pdi"


def model():
    """Symbols of the tree: first-token probabilities and second-token probabilities per
    first token, for both policies, and the four rewards."""
    a, p = sp.symbols("a p", positive=True)            # roll / theta prob of y1 = 0
    b = sp.symbols("b0 b1", positive=True)             # roll prob of y2 = 0 given y1
    q = sp.symbols("q0 q1", positive=True)             # theta prob of y2 = 0 given y1
    R = {y: sp.Symbol(f"R{y[0]}{y[1]}") for y in itertools.product((0, 1), repeat=2)}
    roll1 = {0: a, 1: 1 - a}
    theta1 = {0: p, 1: 1 - p}
    roll2 = {(y1, 0): b[y1] for y1 in (0, 1)} | {(y1, 1): 1 - b[y1] for y1 in (0, 1)}
    theta2 = {(y1, 0): q[y1] for y1 in (0, 1)} | {(y1, 1): 1 - q[y1] for y1 in (0, 1)}
    return roll1, theta1, roll2, theta2, R


def error_forms():
    roll1, theta1, roll2, theta2, R = model()
    seqs = list(itertools.product((0, 1), repeat=2))
    P_roll = {y: roll1[y[0]] * roll2[y] for y in seqs}
    P_theta = {y: theta1[y[0]] * theta2[y] for y in seqs}
    rho1 = {y: theta1[y[0]] / roll1[y[0]] for y in seqs}
    rho2 = {y: theta2[y] / roll2[y] for y in seqs}
    J_roll = sum(P_roll[y] * R[y] for y in seqs)
    J_theta = sum(P_theta[y] * R[y] for y in seqs)
    L = sum(P_roll[y] * R[y] * ((rho1[y] - 1) + (rho2[y] - 1)) for y in seqs)
    direct = J_theta - J_roll - L
    # ratio form: -E_roll[R sum_t (rho_t - 1)(1 - prod_{j>t} rho_j)]
    ratio = -sum(P_roll[y] * R[y] * ((rho1[y] - 1) * (1 - rho2[y]) + (rho2[y] - 1) * 0)
                 for y in seqs)
    # PDI: Q_t, V_t under roll, g_t = sum_v (theta - roll) A_t, Error = sum_t E_dtheta - E_droll
    Q2 = {y: R[y] for y in seqs}                                    # Q_2(y1, y2) = R
    V2 = {y1: roll2[(y1, 0)] * R[(y1, 0)] + roll2[(y1, 1)] * R[(y1, 1)] for y1 in (0, 1)}
    g2 = {y1: sum((theta2[(y1, v)] - roll2[(y1, v)]) * (Q2[(y1, v)] - V2[y1])
                  for v in (0, 1)) for y1 in (0, 1)}
    V1 = roll1[0] * V2[0] + roll1[1] * V2[1]
    g1 = sum((theta1[v] - roll1[v]) * (V2[v] - V1) for v in (0, 1))
    pdi_theta = g1 + theta1[0] * g2[0] + theta1[1] * g2[1]          # sum_t E_{d_t^theta} g_t
    pdi_roll = g1 + roll1[0] * g2[0] + roll1[1] * g2[1]
    return dict(direct=direct, ratio=ratio, pdi=pdi_theta - pdi_roll,
                dJ=J_theta - J_roll, pdi_theta=pdi_theta, L=L, pdi_roll=pdi_roll)


@timed
def check() -> ProofResult:
    f = error_forms()
    steps = [
        zero_step("performance difference: J(theta) - J(roll) = sum_t E_{d_t^theta}[g_t]",
                  f["dJ"], f["pdi_theta"]),
        zero_step("surrogate: L = sum_t E_{d_t^roll}[g_t]", f["L"], f["pdi_roll"]),
        zero_step("ratio form = J(theta) - J(roll) - L", f["ratio"], f["direct"]),
        zero_step("ratio form = PDI form", f["ratio"], f["pdi"]),
    ]
    return ProofResult(NAME, "Error in ratio form = Error in PDI form (V = 2, T = 2)",
                       ["all probabilities in (0, 1)", "rewards arbitrary symbols"], steps,
                       "arXiv 2512.23075v4 eq:error-pdi, Lemma 'Exact Error Identity'")
