"""Risk measures of a return series, in numpy: volatility, VaR/CVaR three ways, drawdown, ratios, beta.

Conventions (the same as empyrical's, which the tests use as an independent oracle): returns are simple,
per bar, non-cumulative; standard deviations use ``ddof=1``; annualising multiplies by bars per year
(``sqrt`` of it for dispersion). VaR, CVaR and drawdown are reported as positive loss fractions.

VaR/CVaR over a horizon of ``h`` bars:
- historical: the empirical quantile (linear interpolation) of overlapping compounded ``h``-bar returns; CVaR
  is the mean of the worst ``floor((n - 1) * (1 - c)) + 1`` of them (empyrical's tail),
- parametric: normal with mean ``h * mu`` and standard deviation ``sqrt(h) * sigma``,
- Cornish-Fisher: the normal quantile corrected for skew and excess kurtosis, which for i.i.d. bars scale
  as ``S / sqrt(h)`` and ``K / h``; its CVaR is the closed-form mean of the corrected quantile over the
  tail (the "modified expected shortfall", exact for the expansion while it is monotone in the tail).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
#: the standard normal (the standard library's: importing scipy.stats costs the serving process a second)
NORMAL = NormalDist()


@dataclass(frozen=True, slots=True)
class VarEstimate:
    var: float | None  # loss not exceeded with the confidence, as a positive fraction
    cvar: float | None  # mean loss beyond it


@dataclass(frozen=True, slots=True)
class Moments:
    mean: float
    std: float
    skew: float
    excess_kurtosis: float
    count: int


@dataclass(frozen=True, slots=True)
class Drawdown:
    """The deepest fall of the equity curve from a running peak; indexes are points of the curve
    (0 = before the first return)."""

    max: float
    peak: int
    trough: int
    recovery: int | None  # first point back at the peak's level, None while still under water


def moments(returns: F64) -> Moments:
    """Sample mean, standard deviation (ddof=1), and the bias-corrected skew (G1) and excess kurtosis (G2),
    the estimators of ``scipy.stats.skew/kurtosis(bias=False)``."""
    n = int(returns.size)
    mean = float(np.mean(returns)) if n else float("nan")
    std = float(np.std(returns, ddof=1)) if n > 1 else float("nan")
    if n < 4:
        return Moments(mean, std, float("nan"), float("nan"), n)
    centred = returns - mean
    m2 = float(np.mean(centred ** 2))
    if m2 == 0.0:
        return Moments(mean, 0.0, 0.0, 0.0, n)
    g1 = float(np.mean(centred ** 3)) / m2 ** 1.5
    g2 = float(np.mean(centred ** 4)) / m2 ** 2 - 3.0
    skew = math.sqrt(n * (n - 1)) / (n - 2) * g1
    kurt = ((n + 1) * g2 + 6.0) * (n - 1) / ((n - 2) * (n - 3))
    return Moments(mean, std, skew, kurt, n)


def annualised_volatility(returns: F64, bars_per_year: float) -> float:
    return float(np.std(returns, ddof=1) * math.sqrt(bars_per_year))


#: Below this share of the mean return, a standard deviation is rounding error, not risk.
_NEGLIGIBLE_DISPERSION = 1e-9


def sharpe_ratio(returns: F64, bars_per_year: float, risk_free_per_bar: float = 0.0) -> float | None:
    excess = returns - risk_free_per_bar
    if returns.size < 2 or float(np.ptp(excess)) == 0.0:
        return None  # no dispersion (float residue of a constant series must not become a huge ratio)
    std = float(np.std(excess, ddof=1))
    mean = float(np.mean(excess))
    if std <= _NEGLIGIBLE_DISPERSION * abs(mean):
        return None  # returns that differ only in their last bits: the ratio would be rounding noise
    return float(mean / std * math.sqrt(bars_per_year))


def downside_risk(returns: F64, bars_per_year: float, required_per_bar: float = 0.0) -> float:
    """Annualised root mean square of the shortfalls below the required return (zero above it)."""
    shortfall = np.minimum(returns - required_per_bar, 0.0)
    return float(np.sqrt(np.mean(shortfall * shortfall)) * math.sqrt(bars_per_year))


def sortino_ratio(returns: F64, bars_per_year: float, required_per_bar: float = 0.0) -> float | None:
    risk = downside_risk(returns, bars_per_year, required_per_bar)
    if not risk:
        return None
    return float(np.mean(returns - required_per_bar) * bars_per_year / risk)


def equity_curve(returns: F64) -> F64:
    """Value of 1 invested before the first return: ``len(returns) + 1`` points."""
    curve = np.empty(returns.size + 1)
    curve[0] = 1.0
    np.cumprod(1.0 + returns, out=curve[1:])
    return curve


def max_drawdown(returns: F64) -> Drawdown:
    curve = equity_curve(returns)
    peaks = np.maximum.accumulate(curve)
    falls = curve / peaks - 1.0
    trough = int(np.argmin(falls))
    depth = float(-falls[trough])
    if depth <= 0.0:
        return Drawdown(0.0, 0, 0, 0)
    peak = int(np.argmax(curve[:trough + 1]))
    after = np.flatnonzero(curve[trough:] >= curve[peak])
    return Drawdown(depth, peak, trough, trough + int(after[0]) if after.size else None)


def beta(returns: F64, benchmark: F64) -> float | None:
    """Cov(r, b) / Var(b)."""
    b = benchmark - np.mean(benchmark)
    var = float(np.mean(b * b))
    if not var:
        return None
    return float(np.mean(b * (returns - np.mean(returns))) / var)


def betas(returns: F64, benchmark: F64) -> F64:
    """``beta`` of each column of ``returns`` at once (NaN when the benchmark does not move)."""
    b = benchmark - np.mean(benchmark)
    var = float(np.mean(b * b))
    if not var:
        return np.full(returns.shape[1], float("nan"))
    return np.asarray((b @ (returns - returns.mean(axis=0))) / b.size / var, dtype=np.float64)


def correlation_from_covariance(covariance: F64) -> F64:
    """Pearson correlations from a covariance matrix (NaN where a column does not move)."""
    std = np.sqrt(np.diag(covariance))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = covariance / np.outer(std, std)
    np.fill_diagonal(corr, np.where(std > 0, 1.0, np.nan))
    return np.asarray(np.clip(corr, -1.0, 1.0), dtype=np.float64)


def horizon_returns(returns: F64, horizon: int) -> F64:
    """Overlapping compounded returns over ``horizon`` bars (the returns themselves for 1)."""
    if horizon <= 1:
        return returns
    if returns.size < horizon:
        return np.empty(0)
    log_growth = np.concatenate(([0.0], np.cumsum(np.log1p(returns))))
    return np.asarray(np.expm1(log_growth[horizon:] - log_growth[:-horizon]), dtype=np.float64)


def historical_var(returns: F64, confidence: float) -> VarEstimate:
    if returns.size == 0:
        return VarEstimate(None, None)
    tail = 1.0 - confidence
    quantile = float(np.percentile(returns, 100.0 * tail))
    cut = int((returns.size - 1) * tail)
    worst = np.partition(returns, cut)[:cut + 1]
    return VarEstimate(-quantile, -float(np.mean(worst)))


def parametric_var(mean: float, std: float, confidence: float) -> VarEstimate:
    tail = 1.0 - confidence
    z = NORMAL.inv_cdf(tail)
    return VarEstimate(-(mean + z * std), -(mean - std * NORMAL.pdf(z) / tail))


def cornish_fisher_var(mean: float, std: float, skew: float, excess_kurtosis: float,
                       confidence: float) -> VarEstimate:
    tail = 1.0 - confidence
    z = NORMAL.inv_cdf(tail)
    s, k = skew, excess_kurtosis
    z_cf = z + (z * z - 1) * s / 6 + (z ** 3 - 3 * z) * k / 24 - (2 * z ** 3 - 5 * z) * s * s / 36
    # E[g(Z); Z <= z] for the expansion g, from the truncated-normal moments I0..I3 below z.
    phi = NORMAL.pdf(z)
    i0, i1, i2, i3 = tail, -phi, tail - z * phi, -(z * z + 2) * phi
    tail_mean = (i1 + s / 6 * (i2 - i0) + k / 24 * (i3 - 3 * i1) - s * s / 36 * (2 * i3 - 5 * i1)) / tail
    return VarEstimate(-(mean + z_cf * std), -(mean + tail_mean * std))


def herfindahl(weights: F64) -> float:
    """Sum of squared weights (of gross exposure): 1 for one position, 1/n for n equal ones."""
    gross = float(np.sum(np.abs(weights)))
    if not gross:
        return float("nan")
    shares = np.abs(weights) / gross
    return float(np.sum(shares * shares))


def volatility_contributions(weights: F64, covariance: F64) -> F64:
    """Each position's share of the portfolio's variance, ``w_i (Sigma w)_i / w' Sigma w`` (sums to 1)."""
    marginal = covariance @ weights
    variance = float(weights @ marginal)
    if not variance:
        return np.full(weights.shape, float("nan"))
    return np.asarray(weights * marginal / variance, dtype=np.float64)
