"""Closed-form trust-region bounds on |Error| = |J(pi_theta) - J(pi_roll) - L(pi_theta)|.

Every formula is theory.md section 5, from Li et al., "Trust Region Masking for
Long-Horizon LLM Reinforcement Learning", arXiv 2512.23075. Equation references use the
LaTeX labels of the v4 text (``eq:B-PM-KL`` and so on) because the printed numbers differ
between versions; the version in which each bound first appears is given too.

Units: ``delta`` and ``dkl_seq`` in nats, ``eps``, ``dtv_seq`` and ``dbar`` are total
variation distances (probabilities in [0, 1]); every bound is in reward units (R in [0, 1]).
``delta = inf`` (pi_theta = 0 where pi_roll > 0) is allowed: the capped bounds stay finite.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ValidationError

__all__ = [
    "BOUND_NAMES",
    "BASE_BOUNDS",
    "CLOSED_FORM_BOUNDS",
    "classical",
    "classical_kl",
    "linear",
    "coupling",
    "pm_kl",
    "pm_tv",
    "mix_kl",
    "mix_tv",
    "adap_kl",
    "adap_tv",
    "adap_star",
    "compute",
    "tightest",
]

#: Every bound boundlab reports, in the order of theory.md section 5.
BOUND_NAMES = (
    "classical", "classical_kl", "linear", "coupling", "pm_kl", "pm_tv",
    "mix_kl", "mix_tv", "adap_kl", "adap_tv", "adap_star", "min3", "unified",
)
#: The bounds that are not themselves minima of others (candidates for "tightest").
BASE_BOUNDS = BOUND_NAMES[:-2]
#: Bounds in closed form of (T, delta, eps, D_KL^seq, D_TV^seq) alone, without Dbar_t.
CLOSED_FORM_BOUNDS = ("classical", "classical_kl", "linear", "coupling", "pm_kl", "pm_tv",
                      "mix_kl", "mix_tv")


# ---------------------------------------------------------------- helpers
def _sqrt_half(x):
    """sqrt(x / 2) for x >= 0, inf allowed."""
    return np.sqrt(np.asarray(x, dtype=np.float64) / 2.0)


def _k(T: int) -> np.ndarray:
    """k = 0..T-1 (k = t - 1 for the context shift, k = T - t for the future)."""
    return np.arange(T, dtype=np.float64)


def _pinsker_route(k: np.ndarray, delta: float, capped: bool = True) -> np.ndarray:
    """min(1, sqrt(k delta / 2)), with the k = 0 term exactly 0 even when delta = inf."""
    with np.errstate(invalid="ignore"):
        val = np.where(k == 0, 0.0, _sqrt_half(k * delta))
    return np.minimum(1.0, val) if capped else val


def _coupling_route(k: np.ndarray, eps: float, capped: bool = True) -> np.ndarray:
    """min(1, k eps)."""
    val = k * eps
    return np.minimum(1.0, val) if capped else val


# ---------------------------------------------------------------- the bounds
def classical(T: int, eps: float) -> float:
    """Classical TRPO-style bound ``2 T (T - 1) eps^2`` (uncapped, O(T^2)).

    theory.md section 5 row "classical"; arXiv 2512.23075 (all versions), eq:classical
    (v4 section 3.1, "The Classical Bound and Its Failure").
    """
    return 2.0 * T * (T - 1) * eps**2


def classical_kl(T: int, delta: float) -> float:
    """KL form of the classical bound, ``T (T - 1) delta`` (via eps <= sqrt(delta/2)).

    theory.md section 5 row "classical"; arXiv 2512.23075 (all versions), eq:classical.
    Returns 0 for T = 1 even when delta = inf.
    """
    return 0.0 if T == 1 else T * (T - 1) * delta


def linear(T: int, eps: float) -> float:
    """Linear bound ``4 T eps``: the adaptive bound with Dbar_t = eps and the cap 1.

    theory.md section 5 row "linear"; arXiv 2512.23075v2, remark "Relationship to prior
    bounds" (the v2 table's "Linear" row evaluates it at eps = sqrt(delta / 2)).
    """
    return 4.0 * T * min(1.0, eps)


def coupling(T: int, eps: float, *, capped: bool = True) -> float:
    """Coupling bound ``4 min(1, eps) sum_t min(1, (t - 1) eps)``.

    theory.md section 5 row "coupling"; arXiv 2512.23075v3+, eq:B-Coup (v4 Theorem
    "Coupling Bound"). With ``capped=False`` both min(1, .) are dropped, which gives the
    classical bound 2 T (T - 1) eps^2.
    """
    adv = min(1.0, eps) if capped else eps
    return 4.0 * adv * float(_coupling_route(_k(T), eps, capped).sum())


def pm_kl(T: int, delta: float, *, capped: bool = True) -> float:
    """Pinsker-Marginal bound, KL form:
    ``4 min(1, sqrt(delta/2)) sum_t min(1, sqrt((t - 1) delta / 2))``.

    theory.md section 5 row "pm_kl"; arXiv 2512.23075v1+, eq:B-PM-KL (v4 Theorem
    "Pinsker-Marginal Bounds"). Caps inactive (delta <= 2/T): equals
    2 delta sum_{k<T} sqrt(k) <= (4/3) T^{3/2} delta. ``capped=False`` drops the min(1, .)
    (the v2 table's "no cap" column).
    """
    adv = min(1.0, float(_sqrt_half(delta))) if capped else float(_sqrt_half(delta))
    return 4.0 * adv * float(_pinsker_route(_k(T), delta, capped).sum())


def pm_tv(T: int, delta: float, eps: float) -> float:
    """Pinsker-Marginal bound, TV advantage factor:
    ``4 min(1, eps) sum_t min(1, sqrt((t - 1) delta / 2))``.

    theory.md section 5 row "pm_tv"; arXiv 2512.23075v3+, eq:B-PM-TV.
    """
    return 4.0 * min(1.0, eps) * float(_pinsker_route(_k(T), delta).sum())


def mix_kl(T: int, delta: float, dkl_seq: float) -> float:
    """Mixed bound, KL form: ``4 T min(1, sqrt(delta/2)) min(1, sqrt(D_KL^seq / 2))``.

    theory.md section 5 row "mix_kl"; arXiv 2512.23075v1+, eq:B-Mix-KL (v4 Theorem
    "Mixed Bounds"). Caps inactive: 2 T sqrt(delta D_KL^seq).
    """
    return 4.0 * T * min(1.0, float(_sqrt_half(delta))) * min(1.0, float(_sqrt_half(dkl_seq)))


def mix_tv(T: int, eps: float, dtv_seq: float) -> float:
    """Mixed bound, TV form: ``4 T min(1, eps) min(1, D_TV^seq)``.

    theory.md section 5 row "mix_tv"; arXiv 2512.23075v3+, eq:B-Mix-TV.
    """
    return 4.0 * T * min(1.0, eps) * min(1.0, dtv_seq)


def _future_k(T: int) -> np.ndarray:
    """T - t for t = 1..T, i.e. T-1, ..., 0."""
    return np.arange(T - 1, -1, -1, dtype=np.float64)


def adap_kl(T: int, delta: float, dbar) -> float:
    """Adaptive bound, KL route: ``4 sum_t Dbar_t min(1, sqrt((T - t) delta / 2))``.

    theory.md section 5 row "adap_kl"; arXiv 2512.23075v2+, eq:B-Adap-KL (v4 Theorem
    "Adaptive Bounds"; v2 Theorem "Adaptive Bound"). ``dbar`` has shape (T,), t = 1..T.
    """
    return 4.0 * float(np.dot(dbar, _pinsker_route(_future_k(T), delta)))


def adap_tv(T: int, eps: float, dbar) -> float:
    """Adaptive bound, coupling route: ``4 sum_t Dbar_t min(1, (T - t) eps)``.

    theory.md section 5 row "adap_tv"; arXiv 2512.23075v3+, eq:B-Adap-TV.
    """
    return 4.0 * float(np.dot(dbar, _coupling_route(_future_k(T), eps)))


def adap_star(T: int, delta: float, eps: float, dbar) -> float:
    """Hybrid adaptive bound:
    ``4 sum_t Dbar_t min(1, (T - t) eps, sqrt((T - t) delta / 2))``.

    theory.md section 5 row "adap_star"; arXiv 2512.23075v3+, eq:B-Adap-star.
    """
    k = _future_k(T)
    route = np.minimum(_coupling_route(k, eps), _pinsker_route(k, delta))
    return 4.0 * float(np.dot(dbar, route))


# ---------------------------------------------------------------- all at once
def _check_scalar(name: str, x, lo: float, hi: float) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} = {x!r} is not a number") from None
    if math.isnan(x) or x < lo or x > hi:
        raise ValidationError(f"{name} = {x!r} is outside [{lo}, {hi}]")
    return x


def compute(T: int, delta: float, eps: float, dkl_seq: float, dtv_seq: float,
            dbar=None) -> dict[str, float]:
    """Every bound of theory.md section 5 at given divergence parameters.

    Parameters
    ----------
    T : int >= 1
        Horizon (tokens per response).
    delta : float in [0, inf]
        D_KL^{tok,max} in nats.
    eps : float in [0, 1]
        D_TV^{tok,max}.
    dkl_seq : float in [0, inf]
        D_KL^seq in nats.
    dtv_seq : float in [0, 1]
        D_TV^seq.
    dbar : array (T,) in [0, 1], optional
        Expected per-position TV, t = 1..T. If omitted, the worst case allowed by the other
        parameters, ``Dbar_t = min(1, eps, sqrt(delta / 2))``, is used (the convention of the
        paper's tables, footnote "*" of v4 Table 1); the adaptive bounds are then upper
        bounds of the data-dependent ones.

    Returns
    -------
    dict
        ``{name: value}`` for every name in :data:`BOUND_NAMES`, in reward units.

    Raises
    ------
    ValidationError
        T not a positive integer, a parameter NaN or out of range, or ``dbar`` of the wrong
        shape or outside [0, 1].
    """
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValidationError(f"T = {T!r}; the horizon must be an integer >= 1")
    T = int(T)
    delta = _check_scalar("delta", delta, 0.0, math.inf)
    eps = _check_scalar("eps", eps, 0.0, 1.0)
    dkl_seq = _check_scalar("dkl_seq", dkl_seq, 0.0, math.inf)
    dtv_seq = _check_scalar("dtv_seq", dtv_seq, 0.0, 1.0)
    if dbar is None:
        dbar = np.full(T, min(1.0, eps, float(_sqrt_half(delta))))
    else:
        dbar = np.asarray(dbar, dtype=np.float64)
        if dbar.shape != (T,):
            raise ValidationError(f"dbar has shape {dbar.shape}; expected ({T},)")
        bad = ~np.isfinite(dbar) | (dbar < 0) | (dbar > 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValidationError(f"dbar[{i}] = {float(dbar[i])!r} is outside [0, 1]")
    out = {
        "classical": classical(T, eps),
        "classical_kl": classical_kl(T, delta),
        "linear": linear(T, eps),
        "coupling": coupling(T, eps),
        "pm_kl": pm_kl(T, delta),
        "pm_tv": pm_tv(T, delta, eps),
        "mix_kl": mix_kl(T, delta, dkl_seq),
        "mix_tv": mix_tv(T, eps, dtv_seq),
        "adap_kl": adap_kl(T, delta, dbar),
        "adap_tv": adap_tv(T, eps, dbar),
        "adap_star": adap_star(T, delta, eps, dbar),
    }
    out["min3"] = min(out["pm_kl"], out["mix_kl"], out["adap_kl"])
    out["unified"] = min(out[k] for k in ("pm_kl", "pm_tv", "mix_kl", "mix_tv",
                                          "coupling", "adap_star"))
    return out


def tightest(bounds: dict[str, float], among=BASE_BOUNDS) -> str:
    """Name of the smallest bound among ``among`` (default: every base bound).

    Ties go to the earlier name, i.e. to the bound that needs fewer ingredients (for
    example adap_tv rather than adap_star when the coupling route wins at every position).
    """
    best = min(bounds[k] for k in among)
    return next(k for k in among if bounds[k] == best)
