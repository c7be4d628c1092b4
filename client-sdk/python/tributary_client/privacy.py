"""The privacy accountant, as the coordinator and the TypeScript SDK compute it
(``@tributary/protocol``'s ``privacy/rdp.ts``): Rényi DP of the subsampled Gaussian
mechanism at Opacus's orders (Mironov, Talwar, Zhang 2019, §3.3, integer and fractional
orders, in log space) and Balle et al. 2020's conversion to (ε, δ). Standard library only."""

from __future__ import annotations

import math
from typing import List, Sequence, Tuple

#: Opacus's default RDP orders: 1.1, 1.2, …, 10.9, then 12, 13, …, 63.
DEFAULT_ORDERS: List[float] = [1 + x / 10 for x in range(1, 100)] + [float(a) for a in range(12, 64)]

_LOG_SQRT_PI = 0.5 * math.log(math.pi)


def log_add(a: float, b: float) -> float:
    """``log(exp(a) + exp(b))``."""
    lo, hi = min(a, b), max(a, b)
    if lo == -math.inf:
        return hi
    return math.log1p(math.exp(lo - hi)) + hi


def log_sub(a: float, b: float) -> float:
    """``log(exp(a) - exp(b))`` for ``a >= b``."""
    if a < b:
        raise ValueError(f"log_sub: log-difference of {a} and {b} would be negative")
    if b == -math.inf:
        return a
    if a == b:
        return -math.inf
    try:
        return math.log(math.expm1(a - b)) + b
    except OverflowError:
        return a


def log_erfc(x: float) -> float:
    """``log(erfc(x))`` for any finite x, accurate far into the tail (a continued fraction
    past x = 2, where ``erfc`` itself underflows eventually)."""
    if x < 0:
        return math.log(2 - math.exp(log_erfc(-x)))
    if x < 2:
        return math.log(math.erfc(x))
    tiny = 1e-300
    f = c = x
    d = 0.0
    for n in range(1, 5000):
        a = n / 2
        d = x + a * d
        d = d if d != 0 else tiny
        c = x + a / c
        c = c if c != 0 else tiny
        d = 1 / d
        delta = c * d
        f *= delta
        if abs(delta - 1) < 1e-16:
            break
    return -x * x - _LOG_SQRT_PI - math.log(f)


def _log_a_int(q: float, z: float, alpha: int) -> float:
    log_a = -math.inf
    log_binom = 0.0
    for i in range(alpha + 1):
        if i > 0:
            log_binom += math.log(alpha - i + 1) - math.log(i)
        s = log_binom + i * math.log(q) + (alpha - i) * math.log1p(-q) + (i * i - i) / (2 * z * z)
        log_a = log_add(log_a, s)
    return log_a


def _log_a_frac(q: float, z: float, alpha: float) -> float:
    log_a0 = log_a1 = -math.inf
    z0 = z * z * math.log(1 / q - 1) + 0.5
    scale = math.sqrt(2) * z
    log_abs_coef = 0.0
    positive = True
    i = 0
    while True:
        if i > 0:
            f = (alpha - i + 1) / i
            log_abs_coef += math.log(abs(f))
            if f < 0:
                positive = not positive
        j = alpha - i
        log_t0 = log_abs_coef + i * math.log(q) + j * math.log1p(-q)
        log_t1 = log_abs_coef + j * math.log(q) + i * math.log1p(-q)
        log_e0 = math.log(0.5) + log_erfc((i - z0) / scale)
        log_e1 = math.log(0.5) + log_erfc((z0 - j) / scale)
        log_s0 = log_t0 + (i * i - i) / (2 * z * z) + log_e0
        log_s1 = log_t1 + (j * j - j) / (2 * z * z) + log_e1
        if positive:
            log_a0, log_a1 = log_add(log_a0, log_s0), log_add(log_a1, log_s1)
        else:
            log_a0, log_a1 = log_sub(log_a0, log_s0), log_sub(log_a1, log_s1)
        if max(log_s0, log_s1) < -30:
            break
        i += 1
    return log_add(log_a0, log_a1)


def rdp_of_step(q: float, z: float, alpha: float) -> float:
    """RDP of one step of the subsampled Gaussian mechanism at order ``alpha``."""
    if q == 0:
        return 0.0
    if z == 0:
        return math.inf
    if q == 1:
        return alpha / (2 * z * z)
    log_a = _log_a_int(q, z, int(alpha)) if float(alpha).is_integer() else _log_a_frac(q, z, alpha)
    return log_a / (alpha - 1)


def composed_rdp(history: Sequence[Tuple[float, float, int]], orders: Sequence[float] = DEFAULT_ORDERS) -> List[float]:
    """RDP at each order of ``(q, noise_multiplier, steps)`` steps composed."""
    return [sum(steps * rdp_of_step(q, z, a) for q, z, steps in history) for a in orders]


def privacy_spent(rdp: Sequence[float], delta: float, orders: Sequence[float] = DEFAULT_ORDERS) -> Tuple[float, float]:
    """``(epsilon, order)``: the smallest ε over the orders (Balle et al. 2020, Theorem 21)."""
    if len(rdp) != len(orders):
        raise ValueError(f"{len(rdp)} RDP values for {len(orders)} orders")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    best = (math.inf, math.nan)
    for a, r in zip(orders, rdp):
        eps = r - (math.log(delta) + math.log(a)) / (a - 1) + math.log((a - 1) / a)
        if not math.isnan(eps) and eps < best[0]:
            best = (eps, a)
    return best


def epsilon_of(q: float, noise_multiplier: float, steps: int, delta: float) -> float:
    """ε after ``steps`` steps at sampling rate ``q`` and ``noise_multiplier``, at ``delta``."""
    return privacy_spent(composed_rdp([(q, noise_multiplier, steps)]), delta)[0]
