"""Numba kernels (private). Plain arrays in, plain arrays out; the public API is numpy-level.

The forward pass carries four densities over the states of layer t (theory.md section 2):

* ``m_t(s)  = d_t^roll(s)``                                 rollout visitation
* ``dp_t(s) = d_t^theta(s) - d_t^roll(s)``                  visitation shift
* ``a_t(s)  = E_roll[ sum_{u<t} (rho_u - 1) ; s_t = s ]``   surrogate density
* ``e_t(s)  = dp_t(s) - a_t(s)``                            error density

with, for a transition s --v--> s' (r = pi_roll(v|s), th = pi_theta(v|s), d = th - r):

    m'  += m r
    dp' += dp th + m d
    a'  += a r + m d
    e'  += e th + a d

The last line is the difference of the two before it with the ``m d`` terms cancelled
algebraically, so the error (second order in the divergence) is never formed by
subtracting first-order quantities: it keeps full relative precision when
pi_theta is close to pi_roll. At the end, with reward R on the final layer,
J_roll = <R, m>, J_theta - J_roll = <R, dp>, L = <R, a>, Error = <R, e>, and the
worst case over rewards in [0, 1] of the final state is sum_s |e(s)| / 2 (sum_s e(s) = 0).

Reachability is structural (a boolean pass along pi_roll > 0), not "mass > 0", so
that states whose probability underflows at long horizons still count for delta and eps.
The pass also tracks the smallest and largest log likelihood ratio log(P^theta / P^roll)
over the paths into each state: when they agree on every final state the final state is
a sufficient statistic for the ratio and D_TV^seq is the TV of the final-state laws.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def forward(nxt, roll, theta, diff, logratio, kl, tv, block_start, layer_block, n_states, init):
    T = layer_block.shape[0]
    V = roll.shape[1]
    S0 = n_states[0]
    m = init.copy()
    dp = np.zeros(S0)
    a = np.zeros(S0)
    e = np.zeros(S0)
    reach = init > 0.0
    lmin = np.full(S0, np.inf)
    lmax = np.full(S0, -np.inf)
    for s in range(S0):
        if reach[s]:
            lmin[s] = 0.0
            lmax[s] = 0.0
    dbar = np.zeros(T)
    dkl_t = np.zeros(T)
    eps_t = np.zeros(T)
    delta_t = np.zeros(T)
    for t in range(T):
        base = block_start[layer_block[t]]
        S = n_states[t]
        S1 = n_states[t + 1]
        m2 = np.zeros(S1)
        dp2 = np.zeros(S1)
        a2 = np.zeros(S1)
        e2 = np.zeros(S1)
        reach2 = np.zeros(S1, dtype=np.bool_)
        lmin2 = np.full(S1, np.inf)
        lmax2 = np.full(S1, -np.inf)
        for s in range(S):
            if not reach[s]:
                continue
            row = base + s
            k = kl[row]
            d_tv = tv[row]
            if k > delta_t[t]:
                delta_t[t] = k
            if d_tv > eps_t[t]:
                eps_t[t] = d_tv
            ms = m[s]
            if ms > 0.0:
                dbar[t] += ms * d_tv
                dkl_t[t] += ms * k
            dps = dp[s]
            As = a[s]
            es = e[s]
            for v in range(V):
                r = roll[row, v]
                if r == 0.0:
                    continue
                th = theta[row, v]
                d = diff[row, v]
                s2 = nxt[row, v]
                m2[s2] += ms * r
                dp2[s2] += dps * th + ms * d
                a2[s2] += As * r + ms * d
                e2[s2] += es * th + As * d
                reach2[s2] = True
                lr = logratio[row, v]
                lo = lmin[s] + lr
                hi = lmax[s] + lr
                if lo < lmin2[s2]:
                    lmin2[s2] = lo
                if hi > lmax2[s2]:
                    lmax2[s2] = hi
        m, dp, a, e, reach, lmin, lmax = m2, dp2, a2, e2, reach2, lmin2, lmax2
    return m, dp, a, e, reach, lmin, lmax, dbar, dkl_t, eps_t, delta_t


# Columns of the per-sequence statistics returned by ``sample_paths``.
STAT_COLUMNS = ("sum_lr", "min_lr", "max_lr", "sum_k2", "max_k2", "sum_k3", "max_k3",
                "sum_abs", "sum_w_abs", "max_kl", "sum_kl", "sum_rho_m1", "sum_rho_m1_sq",
                "final")


@njit(cache=True)
def _pick(cdf, row, u):
    """Inverse-CDF draw: the first index whose cumulative probability exceeds u."""
    V = cdf.shape[1]
    y = 0
    while y < V - 1 and cdf[row, y] <= u:
        y += 1
    return y


@njit(cache=True)
def _k3_of_lr(lr):
    """rho - 1 - log rho at rho = exp(lr), without cancellation for small |lr|."""
    if abs(lr) < 1e-3:
        return lr * lr * (0.5 + lr * (1.0 / 6.0 + lr * (1.0 / 24.0 + lr / 120.0)))
    return np.expm1(lr) - lr


@njit(cache=True)
def sample_paths(nxt, roll_cdf, logratio, kl, block_start, layer_block, init_cdf,
                 uniforms, weights):
    """Draw len(uniforms) sequences from pi_roll (inverse CDF with the given uniforms,
    shape (N, T + 1): column 0 picks the first state, column t + 1 the token at step t)
    and return per-sequence statistics, shape (N, len(STAT_COLUMNS))."""
    N = uniforms.shape[0]
    T = layer_block.shape[0]
    out = np.empty((N, 14))
    init2 = init_cdf.reshape(1, -1)
    for i in range(N):
        s = _pick(init2, 0, uniforms[i, 0])
        sum_lr = 0.0
        min_lr = np.inf
        max_lr = -np.inf
        sum_k2 = 0.0
        max_k2 = 0.0
        sum_k3 = 0.0
        max_k3 = 0.0
        sum_abs = 0.0
        sum_w_abs = 0.0
        max_kl = 0.0
        sum_kl = 0.0
        sum_rm1 = 0.0
        sum_rm1_sq = 0.0
        for t in range(T):
            row = block_start[layer_block[t]] + s
            y = _pick(roll_cdf, row, uniforms[i, t + 1])
            lr = logratio[row, y]
            k = kl[row]
            rm1 = np.expm1(lr)
            k2 = 0.5 * lr * lr
            k3 = _k3_of_lr(lr)
            sum_lr += lr
            if lr < min_lr:
                min_lr = lr
            if lr > max_lr:
                max_lr = lr
            sum_k2 += k2
            if k2 > max_k2:
                max_k2 = k2
            sum_k3 += k3
            if k3 > max_k3:
                max_k3 = k3
            sum_abs += abs(rm1)
            sum_w_abs += weights[t] * abs(rm1)
            if k > max_kl:
                max_kl = k
            sum_kl += k
            sum_rm1 += rm1
            sum_rm1_sq += rm1 * rm1
            s = nxt[row, y]
        out[i, 0] = sum_lr
        out[i, 1] = min_lr
        out[i, 2] = max_lr
        out[i, 3] = sum_k2
        out[i, 4] = max_k2
        out[i, 5] = sum_k3
        out[i, 6] = max_k3
        out[i, 7] = sum_abs
        out[i, 8] = sum_w_abs
        out[i, 9] = max_kl
        out[i, 10] = sum_kl
        out[i, 11] = sum_rm1
        out[i, 12] = sum_rm1_sq
        out[i, 13] = s
    return out


@njit(cache=True)
def sample_rows_tokens(nxt, roll_cdf, block_start, layer_block, init_cdf, uniforms):
    """Draw len(uniforms) sequences from pi_roll (as ``sample_paths``) and return the flat
    table row and the token of every step, shape (N, T) each, and the final states (N,)."""
    N = uniforms.shape[0]
    T = layer_block.shape[0]
    rows = np.empty((N, T), dtype=np.int64)
    toks = np.empty((N, T), dtype=np.int64)
    final = np.empty(N, dtype=np.int64)
    init2 = init_cdf.reshape(1, -1)
    for i in range(N):
        s = _pick(init2, 0, uniforms[i, 0])
        for t in range(T):
            row = block_start[layer_block[t]] + s
            y = _pick(roll_cdf, row, uniforms[i, t + 1])
            rows[i, t] = row
            toks[i, t] = y
            s = nxt[row, y]
        final[i] = s
    return rows, toks, final
