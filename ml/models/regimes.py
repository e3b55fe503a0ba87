"""A 4-state Gaussian HMM market-regime detector: fit, deterministic labelling, causal inference.

* **Fit** (:func:`fit_regime_model`): hmmlearn's ``GaussianHMM`` by EM on standardised features of
  a training window. The standardiser (per-feature mean and std) is fitted on that window only.
  The start distribution is held uniform, not learned: from one training sequence EM would learn a
  point mass on whatever regime the window happened to begin in, biasing inference on any window
  that begins elsewhere.
* **Labels** (:func:`label_states`): the fitted states are arbitrary in order, so they are named by
  a fixed rule on their fitted means and variances (see there) and every parameter is stored in
  :data:`~ml.models.regime_features.REGIMES` order. "Bear trend" thus means the same after every
  retrain, whatever order EM found the states in.
* **Inference** (:func:`filter_regimes`, :func:`infer_regimes`): the forward filter
  ``P(state_t | x_1..x_t)``, computed here by a normalised recursion in log space. Never Viterbi
  nor forward-backward (hmmlearn's ``predict``/``predict_proba``), which condition row ``t`` on
  rows after it.

hmmlearn is imported inside :func:`fit_regime_model` only; a fitted :class:`RegimeModel` is plain
numpy and needs no hmmlearn to run inference.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from ml.models.regime_features import (
    FEATURES,
    REGIMES,
    RegimeConfig,
    candles_feature_matrix,
)

logger = logging.getLogger(__name__)

_RETURN = FEATURES.index("log_return")
_VOLATILITY = FEATURES.index("volatility")

DEFAULT_CONFIG = RegimeConfig()

#: Output column of each regime's filtered probability, in REGIMES order.
PROBABILITY_COLUMNS: tuple[str, ...] = tuple("p_" + name.lower().replace(" ", "_") for name in REGIMES)


@dataclass(frozen=True)
class RegimeModel:
    """A fitted regime detector; every state axis is in ``REGIMES`` order.

    Attributes
    ----------
    feature_mean, feature_std
        Standardiser fitted on the training window, shape ``(4,)`` in ``FEATURES`` order.
    startprob, transmat
        Initial distribution ``(4,)`` and transition matrix ``(4, 4)``, row = from, column = to.
    means, covars
        Per-state means ``(4, 4)`` and full covariances ``(4, 4, 4)`` in standardised units.
    fitted_order
        ``fitted_order[i]`` is the index hmmlearn gave the state now named ``REGIMES[i]``.
    log_likelihood
        Of the training window under the model, nats.
    n_train_rows
        Complete feature rows the model was fitted on.
    """

    config: RegimeConfig
    feature_mean: np.ndarray
    feature_std: np.ndarray
    startprob: np.ndarray
    transmat: np.ndarray
    means: np.ndarray
    covars: np.ndarray
    fitted_order: tuple[int, ...]
    log_likelihood: float
    n_train_rows: int

    def standardise(self, features: np.ndarray) -> np.ndarray:
        """Features in the training window's standard units (NaN rows stay NaN)."""
        return (features - self.feature_mean) / self.feature_std

    def transition_frame(self) -> pl.DataFrame:
        """The transition matrix as a table: column ``from``, then one column per destination regime."""
        return pl.DataFrame({"from": list(REGIMES), **{to: self.transmat[:, j] for j, to in enumerate(REGIMES)}})

    def state_summary(self) -> pl.DataFrame:
        """Per regime, raw units: mean trailing log return per candle and its std, typical
        one-candle volatility (exp of the mean log volatility), and the size multiplier."""
        raw_means = self.means * self.feature_std + self.feature_mean
        return pl.DataFrame(
            {
                "regime": list(REGIMES),
                "mean_log_return": raw_means[:, _RETURN],
                "std_log_return": np.sqrt(self.covars[:, _RETURN, _RETURN]) * self.feature_std[_RETURN],
                "typical_volatility": np.exp(raw_means[:, _VOLATILITY]),
                "size_multiplier": list(self.config.size_multipliers.in_regime_order()),
            }
        )


def label_states(means: np.ndarray, covars: np.ndarray) -> tuple[int, ...]:
    """Name fitted states: the fitted index of each regime, in ``REGIMES`` order.

    The rule, on fitted means (any per-feature positive affine scaling preserves it):

    1. **High volatility**: the state with the highest mean ``volatility`` feature.
    2. Of the other three, **Bull trend** has the highest mean ``log_return`` (trailing mean
       return), **Bear trend** the lowest.
    3. The remaining state is **Sideways**.

    Ties resolve to the lower fitted index, so the result is a pure function of the fitted
    parameters, whatever order EM produced the states in. ``covars`` is checked for shape only:
    the rule reads means, which are better determined than variances on short windows.

    Parameters
    ----------
    means
        ``(4, n_features)`` state means, features in ``FEATURES`` order.
    covars
        ``(4, n_features, n_features)`` state covariances.
    """
    if means.shape[0] != len(REGIMES) or covars.shape[0] != len(REGIMES):
        raise ValueError(f"expected {len(REGIMES)} states, got means {means.shape} and covars {covars.shape}")
    high_vol = int(np.argsort(-means[:, _VOLATILITY], kind="stable")[0])
    rest = [s for s in range(len(REGIMES)) if s != high_vol]
    bull, sideways, bear = sorted(rest, key=lambda s: (-means[s, _RETURN], s))
    return (bull, bear, sideways, high_vol)


def _log_emissions(x: np.ndarray, means: np.ndarray, covars: np.ndarray) -> np.ndarray:
    """``log N(x_t; mean_k, cov_k)`` for every row and state, ``(n, k)``; NaN rows give NaN."""
    n, d = x.shape
    out = np.empty((n, means.shape[0]))
    for k in range(means.shape[0]):
        chol = np.linalg.cholesky(covars[k])
        solved = np.linalg.solve(chol, (x - means[k]).T)
        log_det = 2.0 * np.log(np.diag(chol)).sum()
        out[:, k] = -0.5 * (d * np.log(2 * np.pi) + log_det + (solved**2).sum(axis=0))
    return out


def _logsumexp(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    peak = np.max(values, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    total = np.log(np.sum(np.exp(values - peak), axis=axis, keepdims=True)) + peak
    return np.squeeze(total, axis=axis) if axis is not None else total.reshape(())


def forward_filter(log_emission: np.ndarray, startprob: np.ndarray, transmat: np.ndarray) -> tuple[np.ndarray, float]:
    """Filtered state probabilities ``P(s_t | x_1..x_t)`` by the normalised forward recursion.

    ``alpha_1 ∝ startprob * b(x_1)``; ``alpha_t ∝ (alpha_{t-1} @ transmat) * b(x_t)``, each
    normalised to sum to one (in log space, so no underflow). Row ``t`` reads emissions ``1..t``
    only. A row whose emission is NaN (an unobserved candle) takes the prediction step alone,
    ``alpha_t = alpha_{t-1} @ transmat``, and leading unobserved rows carry ``startprob``.

    Returns
    -------
    (numpy.ndarray, float)
        Probabilities ``(n, k)`` and the log-likelihood of the observed rows, nats.
    """
    with np.errstate(divide="ignore"):
        log_start = np.log(startprob)
        log_trans = np.log(transmat)
    n, k = log_emission.shape
    log_alpha = np.empty((n, k))
    previous: np.ndarray | None = None
    log_likelihood = 0.0
    for t in range(n):
        prior = log_start if previous is None else _logsumexp(previous[:, None] + log_trans, axis=0)
        if np.isnan(log_emission[t]).any():
            log_alpha[t] = prior
            if previous is not None:
                previous = prior
            continue
        joint = prior + log_emission[t]
        norm = _logsumexp(joint)
        log_likelihood += float(norm)
        previous = joint - norm
        log_alpha[t] = previous
    return np.exp(log_alpha), log_likelihood


def fit_regime_model(candles: pl.DataFrame, config: RegimeConfig = DEFAULT_CONFIG, *, seed: int) -> RegimeModel:
    """Fit the 4-state Gaussian HMM on one market's training-window candles.

    Parameters
    ----------
    candles
        Closed candles of one market, oldest first (columns ``ts``, ``close``, ``volume``): the
        training window and nothing else; the standardiser sees these rows only.
    config
        Windows, covariance type, EM budget, size multipliers.
    seed
        Seeds EM's k-means initialisation; restart ``i`` uses ``seed + i``. Same data, config and
        seed give the same model.

    Raises
    ------
    ValueError
        Fewer than ``config.min_train_rows`` complete feature rows, constant features, or invalid
        candles (see :func:`~ml.models.regime_features.regime_feature_matrix`).
    """
    from hmmlearn.hmm import GaussianHMM
    from threadpoolctl import threadpool_limits

    _, features = candles_feature_matrix(candles, config)
    rows = features[~np.isnan(features).any(axis=1)]
    if rows.shape[0] < config.min_train_rows:
        raise ValueError(
            f"{rows.shape[0]} complete feature rows (of {candles.height} candles, {config.warmup} of warm-up);"
            f" fitting needs at least {config.min_train_rows}"
        )
    feature_mean = rows.mean(axis=0)
    feature_std = rows.std(axis=0)
    if (feature_std <= 0).any():
        constant = [FEATURES[i] for i in np.flatnonzero(feature_std <= 0)]
        raise ValueError(f"feature(s) {constant} are constant over the training window; no regimes to find")
    x = (rows - feature_mean) / feature_std

    # EM works on 4 x 4 matrices: handing them to several BLAS threads costs far more than the
    # arithmetic (5x slower with two threads on a loaded 2-core machine), so BLAS gets one thread.
    with threadpool_limits(limits=1, user_api="blas"):
        best, best_score = _fit_restarts(GaussianHMM, x, config, seed)
    assert best is not None  # n_init >= 1

    covars = np.asarray(best.covars_)  # full (k, d, d) whatever the covariance type
    order = label_states(best.means_, covars)
    idx = np.array(order)
    return RegimeModel(
        config=config,
        feature_mean=feature_mean,
        feature_std=feature_std,
        startprob=np.asarray(best.startprob_)[idx],
        transmat=np.asarray(best.transmat_)[np.ix_(idx, idx)],
        means=np.asarray(best.means_)[idx],
        covars=covars[idx],
        fitted_order=tuple(int(i) for i in order),
        log_likelihood=best_score,
        n_train_rows=int(rows.shape[0]),
    )


def _fit_restarts(hmm_class: type, x: np.ndarray, config: RegimeConfig, seed: int) -> tuple[Any, float]:
    """EM from ``config.n_init`` seeded starts; the fitted hmmlearn model with the best score."""
    k = len(REGIMES)
    best, best_score = None, -np.inf
    for restart in range(config.n_init):
        hmm = hmm_class(
            n_components=k,
            covariance_type=config.covariance_type,
            n_iter=config.n_iter,
            tol=config.tol,
            random_state=seed + restart,
            params="tmc",
            init_params="tmc",
        )
        hmm.startprob_ = np.full(k, 1.0 / k)
        hmm.fit(x)
        score = float(hmm.score(x))
        logger.debug("regime fit restart %d: log-likelihood %.3f, converged %s", restart, score, hmm.monitor_.converged)
        if score > best_score:
            best, best_score = hmm, score
    return best, best_score


def filter_regimes(model: RegimeModel, features: np.ndarray) -> np.ndarray:
    """Filtered probabilities ``(n, 4)`` in ``REGIMES`` order for raw features (NaN rows allowed)."""
    x = model.standardise(features)
    return forward_filter(_log_emissions(x, model.means, model.covars), model.startprob, model.transmat)[0]


def infer_regimes(model: RegimeModel, candles: pl.DataFrame) -> pl.DataFrame:
    """The regime of every candle from data up to and including that candle.

    Parameters
    ----------
    model
        A fitted detector.
    candles
        Closed candles of one market, oldest first (``ts``, ``close``, ``volume``); may extend past
        the training window (that is the point).

    Returns
    -------
    polars.DataFrame
        ``ts``; ``regime`` (the most probable name, ties to the earlier of ``REGIMES``); one
        ``p_*`` column per regime (filtered probabilities summing to 1); ``size_multiplier`` (the
        configured multiplier of ``regime``). Warm-up rows, before the features exist, are null.

    Guarantees
    ----------
    Row ``t`` depends on candles ``0..t`` only: the forward filter starts at the first complete
    feature row and never reads a later row. Changing candles after ``t`` changes nothing at or
    before ``t``.
    """
    ts, features = candles_feature_matrix(candles, model.config)
    observed = ~np.isnan(features).any(axis=1)
    first = int(np.argmax(observed)) if observed.any() else features.shape[0]
    probabilities = np.full((features.shape[0], len(REGIMES)), np.nan)
    probabilities[first:] = filter_regimes(model, features[first:])
    valid = ~np.isnan(probabilities).any(axis=1)
    best = np.argmax(np.where(valid[:, None], probabilities, 0.0), axis=1)
    names = np.array(REGIMES, dtype=object)[best]
    multipliers = np.array(model.config.size_multipliers.in_regime_order())[best]
    return pl.DataFrame(
        {
            "ts": ts,
            "regime": pl.Series([str(n) if v else None for n, v in zip(names, valid, strict=True)], dtype=pl.String),
            **{
                column: pl.Series(probabilities[:, i], dtype=pl.Float64, nan_to_null=True)
                for i, column in enumerate(PROBABILITY_COLUMNS)
            },
            "size_multiplier": pl.Series(np.where(valid, multipliers, np.nan), dtype=pl.Float64, nan_to_null=True),
        }
    )
