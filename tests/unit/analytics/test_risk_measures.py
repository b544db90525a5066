"""Risk math against empyrical-reloaded (an independent implementation) and against numerical integration."""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import integrate, stats

from tacore.analytics import risk_measures as rm

BPY = 252.0


def _fat_tailed(seed: int, n: int = 500) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.asarray(rng.standard_t(4, n) * 0.012 + 0.0004, dtype=np.float64)


returns_strategy = arrays(np.float64, st.integers(30, 400),
                          elements=st.floats(-0.25, 0.25, allow_nan=False, allow_infinity=False))


@settings(max_examples=60, deadline=None)
@given(returns=returns_strategy)
def test_volatility_sharpe_sortino_drawdown_match_empyrical(returns: np.ndarray) -> None:
    rf = 0.0001
    assert rm.annualised_volatility(returns, BPY) == pytest.approx(
        empyrical.annual_volatility(returns, annualization=BPY), rel=1e-9, abs=1e-12)
    sharpe = rm.sharpe_ratio(returns, BPY, rf)
    expected = empyrical.sharpe_ratio(returns, risk_free=rf, annualization=BPY)
    if sharpe is None:  # no dispersion, or only in the last bits (where empyrical's ratio is rounding noise)
        excess = returns - rf
        assert not np.isfinite(expected) or np.std(excess, ddof=1) <= 1e-9 * abs(np.mean(excess))
    else:
        assert sharpe == pytest.approx(expected, rel=1e-9, abs=1e-9)
    sortino = rm.sortino_ratio(returns, BPY, rf)
    expected = empyrical.sortino_ratio(returns, required_return=rf, annualization=BPY)
    if sortino is None:
        assert not np.isfinite(expected)
    else:
        assert sortino == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert rm.max_drawdown(returns).max == pytest.approx(-empyrical.max_drawdown(returns), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(returns=returns_strategy, confidence=st.sampled_from([0.9, 0.95, 0.975, 0.99]))
def test_historical_var_and_cvar_match_empyrical(returns: np.ndarray, confidence: float) -> None:
    estimate = rm.historical_var(returns, confidence)
    assert estimate.var == pytest.approx(-empyrical.value_at_risk(returns, cutoff=1 - confidence), abs=1e-12)
    assert estimate.cvar == pytest.approx(-empyrical.conditional_value_at_risk(returns, cutoff=1 - confidence),
                                          abs=1e-12)
    assert estimate.cvar >= estimate.var - 1e-12  # the tail's mean is at least as bad as its edge


def test_a_series_differing_only_in_its_last_bits_has_no_sharpe_ratio() -> None:
    returns = np.full(40, 0.013)
    returns[::3] = np.nextafter(0.013, 1.0)  # one ulp apart: a std of ~1e-18 against a mean of 0.013
    assert rm.sharpe_ratio(returns, BPY, 0.0001) is None


def test_beta_matches_empyrical_on_a_correlated_pair() -> None:
    rng = np.random.default_rng(7)
    market = rng.normal(0.0005, 0.01, 300)
    asset = 1.3 * market + rng.normal(0, 0.006, 300)
    assert rm.beta(asset, market) == pytest.approx(empyrical.beta(asset, market), rel=1e-10)
    assert rm.beta(asset, market) == pytest.approx(1.3, abs=0.1)
    assert rm.beta(asset, np.zeros(300)) is None  # a benchmark that never moves explains nothing


@pytest.mark.parametrize("confidence", [0.95, 0.99])
def test_parametric_cvar_is_the_normal_tail_mean(confidence: float) -> None:
    mean, std = 0.0005, 0.013
    estimate = rm.parametric_var(mean, std, confidence)
    dist = stats.norm(mean, std)
    assert estimate.var == pytest.approx(-dist.ppf(1 - confidence), rel=1e-12)
    tail, _ = integrate.quad(lambda x: x * dist.pdf(x), -np.inf, dist.ppf(1 - confidence))
    assert estimate.cvar == pytest.approx(-tail / (1 - confidence), rel=1e-8)


@pytest.mark.parametrize(("skew", "kurt"), [(0.0, 0.0), (-0.6, 3.0), (0.4, 1.5), (-1.0, 6.0)])
@pytest.mark.parametrize("confidence", [0.95, 0.99])
def test_cornish_fisher_cvar_is_the_mean_of_the_corrected_quantiles(skew: float, kurt: float,
                                                                   confidence: float) -> None:
    """ES = (1/a) * integral over p in (0, a) of the Cornish-Fisher quantile: numerically, independently."""
    mean, std = 0.0002, 0.02

    def quantile(p: float) -> float:
        z = stats.norm.ppf(p)
        z_cf = z + (z * z - 1) * skew / 6 + (z ** 3 - 3 * z) * kurt / 24 - (2 * z ** 3 - 5 * z) * skew ** 2 / 36
        return mean + z_cf * std

    tail = 1 - confidence
    estimate = rm.cornish_fisher_var(mean, std, skew, kurt, confidence)
    assert estimate.var == pytest.approx(-quantile(tail), rel=1e-10)
    integral, _ = integrate.quad(quantile, 0, tail, limit=200)
    assert estimate.cvar == pytest.approx(-integral / tail, rel=1e-6)
    if skew == 0 and kurt == 0:
        normal = rm.parametric_var(mean, std, confidence)
        assert (estimate.var, estimate.cvar) == pytest.approx((normal.var, normal.cvar), rel=1e-12)


def test_cornish_fisher_sees_the_fat_left_tail_the_normal_misses() -> None:
    """Calm days with an occasional crash: skewed left, fat-tailed; the corrected 99 % VaR and CVaR land near
    the empirical ones where the normal's fall well short."""
    rng = np.random.default_rng(3)
    crash = rng.random(20_000) < 0.05
    returns = np.where(crash, rng.normal(-0.025, 0.015, crash.size), rng.normal(0.001, 0.01, crash.size))
    m = rm.moments(returns)
    assert m.skew < -0.5 and m.excess_kurtosis > 1.5
    normal = rm.parametric_var(m.mean, m.std, 0.99)
    corrected = rm.cornish_fisher_var(m.mean, m.std, m.skew, m.excess_kurtosis, 0.99)
    historical = rm.historical_var(returns, 0.99)
    for got, base, truth in ((corrected.var, normal.var, historical.var), (corrected.cvar, normal.cvar,
                                                                           historical.cvar)):
        assert got is not None and base is not None and truth is not None
        assert abs(got - truth) < 0.3 * abs(base - truth)


def test_moments_match_scipy_unbiased_estimators() -> None:
    returns = _fat_tailed(11)
    m = rm.moments(returns)
    assert m.std == pytest.approx(np.std(returns, ddof=1))
    assert m.skew == pytest.approx(stats.skew(returns, bias=False))
    assert m.excess_kurtosis == pytest.approx(stats.kurtosis(returns, bias=False))
    assert m.count == returns.size


def test_horizon_returns_compound_overlapping_windows() -> None:
    returns = np.array([0.01, -0.02, 0.03, 0.005, -0.01])
    got = rm.horizon_returns(returns, 3)
    expected = [np.prod(1 + returns[i:i + 3]) - 1 for i in range(3)]
    assert got == pytest.approx(expected, rel=1e-12)
    assert rm.horizon_returns(returns, 1) is returns
    assert rm.horizon_returns(returns, 6).size == 0


def test_drawdown_reports_peak_trough_and_recovery_points() -> None:
    # curve: 1, 1.1, 0.99, 0.88, 1.1, 1.21
    returns = np.array([0.1, -0.1, -1 / 9, 0.25, 0.1])
    dd = rm.max_drawdown(returns)
    assert (dd.peak, dd.trough, dd.recovery) == (1, 3, 4)
    assert dd.max == pytest.approx(0.2)
    still_down = rm.max_drawdown(np.array([0.1, -0.3, 0.05]))
    assert (still_down.peak, still_down.trough, still_down.recovery) == (1, 2, None)
    assert rm.max_drawdown(np.array([0.01, 0.02])).max == 0.0


def test_concentration_and_volatility_contributions() -> None:
    assert rm.herfindahl(np.array([0.25, 0.25, 0.25, 0.25])) == pytest.approx(0.25)
    assert rm.herfindahl(np.array([1.0])) == 1.0
    assert rm.herfindahl(np.array([0.5, -0.5])) == pytest.approx(0.5)  # shorts count by size
    rng = np.random.default_rng(5)
    returns = rng.normal(0, 0.01, (400, 3)) * np.array([1.0, 2.0, 0.5])
    cov = np.cov(returns, rowvar=False)
    weights = np.array([0.5, 0.3, 0.2])
    contributions = rm.volatility_contributions(weights, cov)
    assert float(np.sum(contributions)) == pytest.approx(1.0)
    assert int(np.argmax(contributions)) == 1  # the most volatile position
    assert math.isclose(float(np.sqrt(weights @ cov @ weights)), float(np.std(returns @ weights, ddof=1)),
                        rel_tol=1e-9)


def test_vectorised_betas_and_correlations_match_the_column_by_column_ones() -> None:
    rng = np.random.default_rng(9)
    market = rng.normal(0, 0.01, 250)
    returns = np.column_stack([k * market + rng.normal(0, 0.005, 250) for k in (0.5, 1.0, 2.0)])
    returns = np.column_stack([returns, np.zeros(250)])  # a position that never moves
    got = rm.betas(returns, market)
    assert got[:3] == pytest.approx([empyrical.beta(returns[:, i], market) for i in range(3)], rel=1e-10)
    assert got[3] == 0.0
    corr = rm.correlation_from_covariance(np.cov(returns, rowvar=False))
    assert corr[:3, :3] == pytest.approx(np.corrcoef(returns[:, :3], rowvar=False), abs=1e-12)
    assert np.isnan(corr[3]).all()  # no dispersion: no correlation, not a division by zero
