"""The HMM regime detector: known answers, no look-ahead, stable labels, outputs."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from ml.models.regime_features import REGIMES, RegimeConfig, candles_feature_matrix
from ml.models.regimes import (
    PROBABILITY_COLUMNS,
    RegimeModel,
    filter_regimes,
    fit_regime_model,
    infer_regimes,
    label_states,
)
from tests.ml.models.planted import planted_market
from tests.support.fixtures import PROJECT_ROOT

CONFIG = RegimeConfig(n_iter=30)
N, TRAIN = 3000, 2000
LAG = 24  # candles after a planted switch that the filter may need (one feature window)


@pytest.fixture(scope="module")
def market() -> tuple[pl.DataFrame, np.ndarray]:
    return planted_market(N, seed=7)


@pytest.fixture(scope="module")
def model(market: tuple[pl.DataFrame, np.ndarray]) -> RegimeModel:
    candles, _ = market
    return fit_regime_model(candles.head(TRAIN), CONFIG, seed=1)


def _settled(planted: np.ndarray) -> np.ndarray:
    """Rows at least LAG candles after the last planted switch (and past the feature warm-up)."""
    since_switch = np.zeros(planted.size, dtype=int)
    for t in range(1, planted.size):
        since_switch[t] = 0 if planted[t] != planted[t - 1] else since_switch[t - 1] + 1
    settled = since_switch >= LAG
    settled[: CONFIG.warmup] = False
    return settled


def test_filtered_regimes_recover_the_planted_ones(
    market: tuple[pl.DataFrame, np.ndarray], model: RegimeModel
) -> None:
    candles, planted = market
    regimes = infer_regimes(model, candles)
    found = regimes.get_column("regime").to_numpy()
    settled = _settled(planted)
    in_sample = settled & (np.arange(N) < TRAIN)
    out_of_sample = settled & (np.arange(N) >= TRAIN)
    for name, rows in (("in-sample", in_sample), ("out-of-sample", out_of_sample)):
        accuracy = float(np.mean(found[rows] == planted[rows]))
        assert accuracy >= 0.85, f"{name} accuracy {accuracy:.3f}"
    for regime in REGIMES:
        rows = settled & (planted == regime)
        assert np.mean(found[rows] == regime) >= 0.7, regime


def test_altering_the_future_changes_no_probability_at_or_before_t(
    market: tuple[pl.DataFrame, np.ndarray], model: RegimeModel
) -> None:
    from hmmlearn.hmm import GaussianHMM

    candles, _ = market
    smoothed_hmm = GaussianHMM(n_components=4, covariance_type="full")
    smoothed_hmm.startprob_, smoothed_hmm.transmat_ = model.startprob, model.transmat
    smoothed_hmm.means_, smoothed_hmm.covars_ = model.means, model.covars

    def smoothed(frame: pl.DataFrame) -> np.ndarray:
        _, features = candles_feature_matrix(frame, CONFIG)
        return smoothed_hmm.predict_proba(model.standardise(features[CONFIG.warmup :]))

    reference = infer_regimes(model, candles)
    rng = np.random.default_rng(5)
    # Random cuts anywhere, and cuts where the filter is unsure (around planted switches): there
    # the smoothed posterior must move with the future, else the teeth check would be vacuous.
    confidence = reference.select(pl.max_horizontal(PROBABILITY_COLUMNS)).to_series().to_numpy()
    unsure = np.flatnonzero((confidence < 0.9) & (np.arange(N) < N - 100))
    assert unsure.size >= 10, "the planted market must have uncertain rows to test against"
    random_cuts = rng.integers(CONFIG.warmup + 50, N - 100, size=4)
    unsure_cuts = rng.choice(unsure, size=4, replace=False)
    full_smoothed = smoothed(candles)
    for cut in (*random_cuts, *unsure_cuts):
        future = N - cut - 1
        # Two altered futures (a quiet drift-less market, a crash in high volatility) and no future.
        for drift, vol in ((0.0, 0.002), (-0.01, 0.04)):
            altered = candles.with_columns(
                close=pl.Series(np.concatenate([np.ones(cut + 1), np.exp(np.cumsum(rng.normal(drift, vol, future)))]))
                * pl.col("close"),
                volume=pl.Series(np.concatenate([np.ones(cut + 1), rng.uniform(0.1, 5.0, future)])) * pl.col("volume"),
            )
            result = infer_regimes(model, altered)
            assert result.head(cut + 1).equals(reference.head(cut + 1)), f"filtered output before {cut} changed"
            assert not result.equals(reference), "the altered future must change something after t"
        assert infer_regimes(model, candles.head(cut + 1)).equals(reference.head(cut + 1))
        if cut in unsure_cuts:
            # Teeth: hmmlearn's forward-backward probabilities at or before the cut DO depend on the future.
            rows = cut + 1 - CONFIG.warmup
            moved = np.abs(smoothed(candles.head(cut + 1)) - full_smoothed[:rows]).max()
            assert moved > 0.05, f"smoothed probabilities before {cut} moved only {moved}"


def test_forward_filter_agrees_with_hmmlearn_at_each_prefix_end(
    market: tuple[pl.DataFrame, np.ndarray], model: RegimeModel
) -> None:
    """The filter at t equals the smoothed posterior of the prefix's last row (nothing follows it)."""
    from hmmlearn.hmm import GaussianHMM

    candles, _ = market
    _, features = candles_feature_matrix(candles.head(1500), CONFIG)
    x = model.standardise(features[CONFIG.warmup :])
    filtered = filter_regimes(model, features[CONFIG.warmup :])
    hmm = GaussianHMM(n_components=4, covariance_type="full")
    hmm.startprob_, hmm.transmat_, hmm.means_, hmm.covars_ = model.startprob, model.transmat, model.means, model.covars
    unsure = np.flatnonzero(filtered.max(axis=1) < 0.99)
    assert unsure.size >= 3, "no uncertain rows: the comparison would be between near-certainties"
    for end in (1, 2, 37, 300, x.shape[0], *(unsure[:3] + 1)):
        np.testing.assert_allclose(filtered[end - 1], hmm.predict_proba(x[:end])[-1], atol=1e-9)
    np.testing.assert_allclose(filtered.sum(axis=1), 1.0)


@pytest.mark.parametrize("seeds", [(1, 2)])
def test_labels_do_not_depend_on_the_fitted_state_order(
    market: tuple[pl.DataFrame, np.ndarray], model: RegimeModel, seeds: tuple[int, ...]
) -> None:
    candles, _ = market
    models = [model] + [fit_regime_model(candles.head(TRAIN), CONFIG, seed=s) for s in seeds[1:]]
    assert len({m.fitted_order for m in models}) > 1, "every seed found the same state order: no permutation tested"
    reference = infer_regimes(model, candles).get_column("regime").to_numpy()
    for other in models[1:]:
        labels = infer_regimes(other, candles).get_column("regime").to_numpy()
        assert np.mean(labels == reference) >= 0.98, other.fitted_order
        np.testing.assert_allclose(other.means, model.means, atol=0.1)


def test_label_rule_names_every_permutation_of_the_same_states_alike() -> None:
    # state means (trailing return, log volatility, volume ratio, rsi): bull, bear, sideways, high vol
    means = np.array([[0.5, 0.0, 0.1, 0.4], [-0.5, 0.1, 0.1, -0.4], [0.0, -1.0, 0.0, 0.0], [0.1, 2.0, 0.5, 0.0]])
    covars = np.tile(np.eye(4), (4, 1, 1))
    for permutation in itertools.permutations(range(4)):
        idx = np.array(permutation)
        order = label_states(means[idx], covars[idx])
        assert [permutation[i] for i in order] == [0, 1, 2, 3], permutation


def test_outputs_transition_matrix_and_multipliers(
    market: tuple[pl.DataFrame, np.ndarray], model: RegimeModel
) -> None:
    candles, _ = market
    result = infer_regimes(model, candles.head(500))
    assert result.columns == ["ts", "regime", *PROBABILITY_COLUMNS, "size_multiplier"]
    assert result.head(CONFIG.warmup).drop("ts").null_count().sum_horizontal().item() == CONFIG.warmup * 6
    body = result.slice(CONFIG.warmup)
    np.testing.assert_allclose(body.select(PROBABILITY_COLUMNS).sum_horizontal().to_numpy(), 1.0)
    multiplier = dict(zip(REGIMES, CONFIG.size_multipliers.in_regime_order(), strict=True))
    assert body.select(pl.col("regime").replace_strict(multiplier)).to_series().equals(
        body.get_column("size_multiplier"), check_names=False
    )
    transitions = model.transition_frame()
    assert transitions.get_column("from").to_list() == list(REGIMES)
    assert transitions.columns[1:] == list(REGIMES)
    np.testing.assert_allclose(transitions.drop("from").sum_horizontal().to_numpy(), 1.0)
    assert (np.diag(model.transmat) > 0.9).all(), "planted regimes last 150-300 candles"
    summary = model.state_summary()
    returns = dict(zip(summary["regime"], summary["mean_log_return"], strict=True))
    assert returns["Bull trend"] > 0.0015 > -0.0015 > returns["Bear trend"]  # planted drift: +-0.003
    assert summary["typical_volatility"].arg_max() == REGIMES.index("High volatility")
    assert summary["typical_volatility"].arg_min() == REGIMES.index("Sideways")


def test_bad_training_windows_fail_clearly(market: tuple[pl.DataFrame, np.ndarray]) -> None:
    candles, _ = market
    with pytest.raises(ValueError, match="at least 200"):
        fit_regime_model(candles.head(150), CONFIG, seed=0)
    with pytest.raises(ValueError, match="strictly increasing"):
        fit_regime_model(pl.concat([candles.head(300), candles.head(300)]), CONFIG, seed=0)
    with pytest.raises(ValueError, match="lack column"):
        fit_regime_model(candles.drop("volume"), CONFIG, seed=0)


def test_importing_the_module_does_not_import_hmmlearn() -> None:
    code = "import sys, ml.models.regimes; assert 'hmmlearn' not in sys.modules and 'sklearn' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_ROOT)


def test_the_standardiser_is_fitted_on_the_training_window_only(
    market: tuple[pl.DataFrame, np.ndarray], model: RegimeModel
) -> None:
    candles, _ = market
    _, train_features = candles_feature_matrix(candles.head(TRAIN), CONFIG)
    _, all_features = candles_feature_matrix(candles, CONFIG)
    train_rows = train_features[CONFIG.warmup :]
    assert not np.isnan(train_rows).any()
    np.testing.assert_allclose(model.feature_mean, train_rows.mean(axis=0))
    np.testing.assert_allclose(model.feature_std, train_rows.std(axis=0))
    assert not np.allclose(model.feature_mean, all_features[CONFIG.warmup :].mean(axis=0))
    assert model.n_train_rows == TRAIN - CONFIG.warmup
