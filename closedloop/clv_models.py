"""The CLV models' likelihoods and predictions: BG/NBD, Pareto/NBD and Gamma-Gamma.

Each model is written in the papers' closed forms with ``scipy.special`` (``gammaln``,
``betaln``, ``hyp2f1``) over the *unique* ``(x, t_x, T)`` rows of a customer summary, each
weighted by its number of customers (Fader & Hardie's condensed data), and maximised by
``scipy.optimize.minimize`` (BFGS from lifetimes' starting point) with an analytic gradient for
BG/NBD and Gamma-Gamma. :mod:`closedloop.clv` holds the summary, the fitter and the model object
that analysts use; this module holds the mathematics.

- BG/NBD: Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science
  24(2), 275-284;
- Pareto/NBD: Schmittlein, Morrison & Colombo (1987); likelihood as in Fader, Hardie & Lee (2005),
  "A note on deriving the Pareto/NBD model and related expressions";
- Gamma-Gamma: Fader & Hardie (2013), "The Gamma-Gamma model of monetary value".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from closedloop.errors import DataError

#: the columns of a customer summary the purchase models read: x, t_x and T
SUMMARY_COLUMNS = ("repeat_purchases", "purchase_span", "age")
_START = 0.1  # lifetimes' starting point: every log-parameter at 0.1
_GRADIENT_OK = 1e-5  # a fit whose optimiser stops with a larger gradient has not converged


@dataclass(frozen=True)
class Patterns:
    """Unique (frequency, recency, T) rows, their customer counts and each customer's row; and
    the unique (frequency, T) pairs among them, on which the t-dependent part of a forecast
    is computed."""

    x: np.ndarray
    tx: np.ndarray
    T: np.ndarray
    w: np.ndarray
    inverse: np.ndarray
    pair_x: np.ndarray
    pair_T: np.ndarray
    pair: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Patterns:
        codes, first = _unique_rows(frame[list(SUMMARY_COLUMNS)])
        x, tx, T = (frame[c].to_numpy("float64")[first] for c in SUMMARY_COLUMNS)
        pair, pair_first = _unique_rows(pd.DataFrame({"x": x, "age": T}))
        weights = np.bincount(codes).astype("float64")
        return cls(x, tx, T, weights, codes, x[pair_first], T[pair_first], pair)


def _unique_rows(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each row's group code (hashing group-by) and the first row of each group."""
    codes = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
    # unsorted group codes are numbered in order of appearance: a new group raises the maximum
    first = np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0)
    return codes, first


class BGNBD:
    """BG/NBD: Fader, Hardie & Lee (2005), Marketing Science 24(2), 275-284."""

    @staticmethod
    def prepare(pat: Patterns, scale: float):
        """The patterns, and each distinct count, recency and T with its rows: the terms of the
        likelihood that depend on one of them only are evaluated once per distinct value (days
        make at most a few hundred distinct recencies and Ts among a million customers)."""
        ux, xi = np.unique(pat.x, return_inverse=True)
        utx, txi = np.unique(pat.tx * scale, return_inverse=True)
        uT, Ti = np.unique(pat.T * scale, return_inverse=True)
        xw = np.bincount(xi, weights=pat.w)
        return pat.x, pat.w, ux, xi, xw, utx, txi, uT, Ti

    @staticmethod
    def objective(u, data, penalizer):
        """Mean negative log-likelihood (eq. 6) and its gradient in log-parameters."""
        x, w, ux, xi, xw, utx, txi, uT, Ti = data
        r, alpha, a, b = theta = np.exp(u)
        W = w.sum()
        # terms that depend on the purchase count only: once per distinct count
        ll_x = (
            special.gammaln(r + ux)
            - special.gammaln(r)
            + r * np.log(alpha)
            + special.betaln(a, b + ux)
            - special.betaln(a, b)
        )
        g_x = np.stack(
            [
                special.digamma(r + ux) - special.digamma(r) + np.log(alpha),
                np.full_like(ux, r / alpha),
                special.digamma(a + b) - special.digamma(a + b + ux),
                special.digamma(a + b)
                + special.digamma(b + ux)
                - special.digamma(b)
                - special.digamma(a + b + ux),
            ]
        )
        repeat = ux > 0
        bx = np.where(repeat, b + ux - 1, 1.0)
        c_x = np.where(repeat, np.log(a) - np.log(bx), -np.inf)
        inv_bx = np.where(repeat, 1 / bx, 0.0)
        # per row: log(exp(A3) + exp(A4)) with A3 = -(r+x) ln(alpha+T) and
        # A4 = c_x - (r+x) ln(alpha+t_x), as A3 + log(1 + exp(d)), d = A4 - A3; pi = P(A4 term)
        # (sums of products, not BLAS dot: its threads are slower than one core on a busy machine)
        rx = r + x
        wrx = w * rx
        log_T, log_tx = np.log(alpha + uT)[Ti], np.log(alpha + utx)[txi]
        d = c_x[xi] + rx * (log_T - log_tx)
        e = np.exp(-np.abs(d))
        pi = np.where(d >= 0, 1.0, e) / (1 + e)  # expit(d), without overflow
        wpi = w * pi
        softplus = np.maximum(d, 0) + np.log1p(e)  # log(1 + exp(d))
        ll = xw @ ll_x - (wrx * log_T).sum() + (w * softplus).sum()
        grad = g_x @ xw + np.array(
            [
                -((w - wpi) * log_T).sum() - (wpi * log_tx).sum(),
                -(wrx * ((1 - pi) / (alpha + uT)[Ti] + pi / (alpha + utx)[txi])).sum(),
                wpi.sum() / a,
                -(wpi * inv_bx[xi]).sum(),
            ]
        )
        f = -ll / W + penalizer * (theta**2).sum()
        return f, theta * (-grad / W + 2 * penalizer * theta)

    @staticmethod
    def growth(theta, t, x, T):
        """The part of FHL (2005) eq. 10 that depends on t: it needs x and T only, not t_x.

        ``(a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]``
        (Euler's transform of 2F1 where it overflows).
        """
        r, alpha, a, b = theta
        ha, hb, hc = r + x, b + x, a + b + x - 1
        z = t / (alpha + T + t)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_h = np.log(special.hyp2f1(ha, hb, hc, z))
            alt = np.log(special.hyp2f1(hc - ha, hc - hb, hc, z)) + (hc - ha - hb) * np.log1p(-z)
        log_h = np.where(np.isfinite(log_h), log_h, alt)
        head = (a + b + x - 1) / (a - 1)
        return head * (1 - np.exp(log_h + (r + x) * np.log((alpha + T) / (alpha + T + t))))

    @staticmethod
    def p_alive(theta, x, tx, T):
        """P(alive | x, t_x, T), FHL (2005) eq. 11 (= 1 for customers without a repeat); it is
        also the t-free factor of eq. 10: E[Y(t) | x, t_x, T] = growth * p_alive."""
        r, alpha, a, b = theta
        bx = np.where(x > 0, b + x - 1, 1.0)
        odds = (x > 0) * (a / bx) * np.exp((r + x) * np.log((alpha + T) / (alpha + tx)))
        return 1 / (1 + odds)

    weight = p_alive

    @staticmethod
    def population(theta, t):
        """E[X(t)] for a customer who just made the first purchase, FHL (2005) eq. 9."""
        r, alpha, a, b = theta
        z = t / (alpha + t)
        return (
            (a + b - 1)
            / (a - 1)
            * (1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, z))
        )


class ParetoNBD:
    """Pareto/NBD: Schmittlein, Morrison & Colombo (1987); likelihood as in Fader, Hardie & Lee
    (2005), "A note on deriving the Pareto/NBD model and related expressions", eq. 22."""

    @staticmethod
    def prepare(pat: Patterns, scale: float):
        return pat.x, pat.tx * scale, pat.T * scale, pat.w

    @staticmethod
    def objective(u, data, penalizer):
        """Mean negative log-likelihood; central-difference gradient (2F1 has no closed derivative)."""
        x, tx, T, w = data

        def f(v):
            theta = np.exp(v)
            ll = ParetoNBD.loglik(theta, x, tx, T)
            return -(w @ ll) / w.sum() + penalizer * (theta**2).sum()

        step = 1e-6
        grad = np.array([(f(u + step * e) - f(u - step * e)) / (2 * step) for e in np.eye(len(u))])
        return f(u), grad

    @staticmethod
    def loglik(theta, x, tx, T):
        r, alpha, s, beta = theta
        head = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        tail = np.logaddexp(
            -(r + x) * np.log(alpha + T) - s * np.log(beta + T),
            np.log(s) + ParetoNBD._log_a0(theta, x, tx, T) - np.log(r + s + x),
        )
        return head + tail

    @staticmethod
    def _log_a0(theta, x, tx, T):
        r, alpha, s, beta = theta
        low, high, second = (alpha, beta, r + x) if alpha < beta else (beta, alpha, s + 1)
        rsx = r + s + x
        q1, q2 = high + tx, high + T
        with np.errstate(divide="ignore"):
            l1 = np.log(special.hyp2f1(rsx, second, rsx + 1, (high - low) / q1)) + rsx * np.log(q2)
            l2 = np.log(special.hyp2f1(rsx, second, rsx + 1, (high - low) / q2)) + rsx * np.log(q1)
            return l1 + np.log1p(-np.exp(l2 - l1)) - rsx * np.log(q1 * q2)

    @staticmethod
    def growth(theta, t, x, T):
        """The t-dependent factor of Schmittlein et al. (1987) eq. 22 (a function of T only)."""
        s, beta = theta[2:]
        return (1 - ((beta + T) / (beta + T + t)) ** (s - 1)) / (s - 1) + 0 * x

    @staticmethod
    def weight(theta, x, tx, T):
        """The t-free factor of eq. 22, written with the customer's likelihood."""
        r, alpha, s, beta = theta
        log_ll = ParetoNBD.loglik(theta, x, tx, T)
        head = (
            special.gammaln(r + x)
            - special.gammaln(r)
            + r * np.log(alpha)
            + s * np.log(beta)
            - (r + x) * np.log(alpha + T)
            - s * np.log(beta + T)
        )
        return np.exp(head + np.log(r + x) + np.log(beta + T) - np.log(alpha + T) - log_ll)

    @staticmethod
    def p_alive(theta, x, tx, T):
        """P(alive | x, t_x, T), Schmittlein et al. (1987) eq. 18."""
        r, alpha, s, beta = theta
        log_a0 = ParetoNBD._log_a0(theta, x, tx, T)
        return 1 / (
            1
            + np.exp(
                np.log(s)
                - np.log(r + s + x)
                + (r + x) * np.log(alpha + T)
                + s * np.log(beta + T)
                + log_a0
            )
        )

    @staticmethod
    def population(theta, t):
        """E[X(t)] for a new customer: r beta / (alpha (s - 1)) [1 - (beta / (beta + t))^(s-1)]."""
        r, alpha, s, beta = theta
        return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))


SPECS = {"bgnbd": BGNBD, "pareto": ParetoNBD}


def gamma_gamma_data(repeat: pd.DataFrame):
    """Per row only ``x`` and ``x m`` are needed each step; the rest is summed once."""
    keys = repeat.groupby(["repeat_purchases", "repeat_ticket"], sort=False).size()
    x = keys.index.get_level_values(0).to_numpy("float64")
    m = keys.index.get_level_values(1).to_numpy("float64")
    w = keys.to_numpy("float64")
    ux, xi = np.unique(x, return_inverse=True)
    log_m = np.log(m)
    return x, x * m, w, ux, np.bincount(xi, weights=w), w @ (x * log_m), w @ log_m


def gamma_gamma_objective(u, data, penalizer):
    """Gamma-Gamma mean negative log-likelihood, Fader & Hardie (2013) eq. 1a, and gradient.

    ``gammaln(px+q) - gammaln(px) - gammaln(q) + q ln(gamma) + (px-1) ln(m) + px ln(x)
    - (px+q) ln(gamma + x m)``: the gamma functions depend on the count x only, so they are
    evaluated once per distinct count.
    """
    x, xm, w, ux, xw, s_xlogm, s_logm = data
    p, q, gamma = theta = np.exp(u)
    pu = p * ux
    dg = special.digamma(pu + q)
    per_x = (
        special.gammaln(pu + q)
        - special.gammaln(pu)
        - special.gammaln(q)
        + q * np.log(gamma)
        + pu * np.log(ux)
    )
    log_xm = np.log(gamma + xm)
    wpxq = w * (p * x + q)
    # per row: sums of products, not BLAS dot (its threads are slower on a busy machine)
    ll = xw @ per_x + p * s_xlogm - s_logm - (wpxq * log_xm).sum()
    grad = np.array(
        [
            xw @ (ux * (dg - special.digamma(pu) + np.log(ux))) + s_xlogm - (w * x * log_xm).sum(),
            xw @ (dg - special.digamma(q) + np.log(gamma)) - (w * log_xm).sum(),
            xw.sum() * q / gamma - (wpxq / (gamma + xm)).sum(),
        ]
    )
    W = w.sum()
    f = -ll / W + penalizer * (theta**2).sum()
    return f, theta * (-grad / W + 2 * penalizer * theta)


def maximise(objective, data, k: int, penalizer: float):
    """Minimise a mean negative log-likelihood over log-parameters (BFGS, lifetimes' start)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        result = optimize.minimize(
            objective,
            np.full(k, _START),
            args=(data, penalizer),
            jac=True,
            method="BFGS",
            options={"gtol": 1e-9, "maxiter": 2000},
        )
        grad = objective(result.x, data, penalizer)[1]
    if not (np.all(np.isfinite(result.x)) and np.max(np.abs(grad)) < _GRADIENT_OK):
        raise DataError(
            "fit",
            f"the model did not converge ({result.message}); try a penalizer such as 0.001",
        )
    hess = _hessian(lambda v: objective(v, data, penalizer)[1], result.x)
    return result.x, float(result.fun), hess


def _hessian(grad, u: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Hessian by central differences of the gradient, symmetrised."""
    rows = [(grad(u + step * e) - grad(u - step * e)) / (2 * step) for e in np.eye(len(u))]
    hess = np.array(rows)
    return (hess + hess.T) / 2


def parameter_errors(theta, hess, n: float, names) -> pd.Series:
    """Delta method from log-parameters: se = theta * sqrt(diag(H^-1) / n), as lifetimes."""
    try:
        cov = np.linalg.inv(hess) / n
    except np.linalg.LinAlgError:
        cov = np.full_like(hess, np.nan)
    return pd.Series(theta * np.sqrt(np.clip(np.diag(cov), 0, None)), index=list(names), name="se")
