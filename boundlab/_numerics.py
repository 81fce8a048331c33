"""Small numerically careful helpers (private)."""

from __future__ import annotations

import numpy as np

# 1 / (2 j + 3) for j = 0..19: coefficients of (atanh(u) - u) / u^3 = sum_j u^(2j) / (2j + 3)
_ATANH_TAIL = 1.0 / (2.0 * np.arange(20) + 3.0)


def x_minus_log1p(x):
    """x - log1p(x) for x >= -1, accurate to a few ulps also for tiny |x|.

    This is k3(rho) = rho - 1 - log(rho) at rho = 1 + x, the non-negative integrand of
    D_KL(pi_roll || pi_theta) = sum_v pi_roll(v) k3(pi_theta(v) / pi_roll(v)) (for rows that
    sum to 1). The direct difference loses all digits as x -> 0 (it is about x^2 / 2); for
    |x| < 1/2 we use u = x / (2 + x), log1p(x) = 2 atanh(u), hence
    x - log1p(x) = x^2 / (2 + x) - 2 (atanh(u) - u), with the odd series of atanh(u) - u
    (|u| <= 1/3, 20 terms: truncation below 1e-19 relative). Returns inf at x = -1.
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    small = np.abs(x) < 0.5
    xs = x[small]
    u = xs / (2.0 + xs)
    u2 = u * u
    tail = np.zeros_like(u)
    for c in _ATANH_TAIL[::-1]:  # Horner
        tail = tail * u2 + c
    out[small] = xs * xs / (2.0 + xs) - 2.0 * u * u2 * tail
    xl = x[~small]
    with np.errstate(divide="ignore"):
        out[~small] = xl - np.log1p(xl)
    return out if out.ndim else out[()]


def _ratio_parts(theta, roll):
    """x = rho - 1 (from the exact difference theta - roll) and rho = theta / roll, with
    roll = 0 entries mapped to rho = 1 (they carry no mass)."""
    pos = roll > 0
    safe = np.where(pos, roll, 1.0)
    x = np.where(pos, (theta - roll) / safe, 0.0)
    rho = np.where(pos, theta / safe, 1.0)
    return x, rho


def log_ratio(theta, roll):
    """log rho = log(theta / roll) elementwise, accurate for rho near 1 (log1p of the exact
    difference) and for rho near 0 (log of the ratio); -inf where theta = 0 < roll and 0
    where roll = 0."""
    x, rho = _ratio_parts(theta, roll)
    with np.errstate(divide="ignore"):
        return np.where(np.abs(x) < 0.5, np.log1p(x), np.log(rho))


def k3(theta, roll):
    """k3 = rho - 1 - log rho at rho = theta / roll, elementwise, accurate near rho = 1
    (no cancellation) and near rho = 0; inf where theta = 0 < roll, 0 where roll = 0."""
    x, rho = _ratio_parts(theta, roll)
    small = np.abs(x) < 0.5
    with np.errstate(divide="ignore"):
        far = rho - 1.0 - np.log(np.where(small, 1.0, rho))
    return np.where(small, x_minus_log1p(np.where(small, x, 0.0)), far)


def kl_rows(roll: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """D_KL(roll || theta) of each row, sum_v roll * k3(theta / roll), in nats.

    Non-negative term by term, so no cancellation when the rows are close. Entries with
    roll = 0 contribute 0; theta = 0 < roll gives inf. (For float rows whose sums differ by
    s, this differs from sum_v roll log(roll / theta) by s: a few 1e-16 for normalised
    rows, which is the precision to which the data define the divergence.)
    """
    return (roll * k3(theta, roll)).sum(axis=-1)
