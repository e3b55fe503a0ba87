"""Walk-forward: no look-ahead, finds a planted edge after costs, claims nothing on a random walk."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from numpy.typing import NDArray

from ml.evaluation.costs import DEFAULT_COSTS, NO_COSTS, TradingCosts
from ml.evaluation.walkforward import PositionRule, PredictProba, WalkForwardConfig, walk_forward

START = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
THRESHOLD = 0.002
CONFIG = WalkForwardConfig(train_length=600 * HOUR, test_length=200 * HOUR, mode="rolling",
                           embargo=2 * HOUR, seed=7)


def market(seed: int, *, edge: float, bars: int = 1800) -> pl.DataFrame:
    """Hourly market: feature ``signal`` is a persistent AR(1) known at the bar's close; the
    next return is ``edge * signal + noise`` (``edge = 0`` is a pure random walk). ``noise`` is
    an unrelated feature. Labels follow :mod:`ml.features.labels` with horizon 1."""
    rng = np.random.default_rng(seed)
    signal = np.zeros(bars)
    shocks = rng.normal(size=bars)
    for t in range(1, bars):
        signal[t] = 0.9 * signal[t - 1] + np.sqrt(1 - 0.81) * shocks[t]
    asset_return = edge * signal + 0.01 * rng.normal(size=bars)
    label = np.where(asset_return > THRESHOLD, 2, np.where(asset_return < -THRESHOLD, 0, 1))
    ts = [START + i * HOUR for i in range(bars)]
    return pl.DataFrame({
        "ts": ts, "label_end_ts": [t + 2 * HOUR for t in ts],
        "signal": signal, "noise": rng.normal(size=bars),
        "label": label.astype(np.int8), "asset_return": asset_return,
    })


def nearest_centroid(features: NDArray[np.float64], labels: NDArray[np.int64]) -> PredictProba:
    """Softmax over minus squared distances to the class centroids (absent classes get 0)."""
    centroids = {k: features[labels == k].mean(axis=0) for k in range(3) if np.any(labels == k)}
    scale = features.std(axis=0) + 1e-12

    def predict(x: NDArray[np.float64]) -> NDArray[np.float64]:
        scores = np.full((x.shape[0], 3), -np.inf)
        for k, centre in centroids.items():
            scores[:, k] = -(((x - centre) / scale) ** 2).sum(axis=1)
        scores -= scores.max(axis=1, keepdims=True)
        weights = np.exp(scores)
        return weights / weights.sum(axis=1, keepdims=True)

    return predict


def logistic(features: NDArray[np.float64], labels: NDArray[np.int64]) -> PredictProba:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=200).fit(features, labels)

    def predict(x: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.zeros((x.shape[0], 3))
        out[:, model.classes_] = model.predict_proba(x)
        return out

    return predict


FEATURES = ["signal", "noise"]


def test_planted_edge_is_found_after_costs_and_beats_permuted_labels() -> None:
    # edge 0.002 per unit of signal against 1 % hourly noise: about 11 out of sample after costs
    report = walk_forward(market(1, edge=0.002), feature_columns=FEATURES, fit=logistic, config=CONFIG)
    assert report.windows.height == 6
    assert report.out_of_sample.sharpe > 3.0
    assert report.out_of_sample.p_value < 0.01
    assert report.out_of_sample.total_return > 0
    assert report.beats_permuted_labels
    assert not report.baselines["permuted_labels"].p_value < 0.05
    assert not report.overfit.overfit
    assert report.baselines["always_flat"].total_return == 0
    assert report.predictions.height == 6 * 200


def memoriser(features: NDArray[np.float64], labels: NDArray[np.int64]) -> PredictProba:
    """1-nearest-neighbour on the training rows: perfect in sample, noise out of sample."""

    def predict(x: NDArray[np.float64]) -> NDArray[np.float64]:
        nearest = ((x[:, None, :] - features[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        return np.eye(3)[labels[nearest]]

    return predict


def test_a_memorising_model_on_a_random_walk_is_flagged_overfit() -> None:
    report = walk_forward(market(21, edge=0.0), feature_columns=FEATURES, fit=memoriser, config=CONFIG)
    assert report.in_sample_sharpe > 10
    assert report.overfit.overfit
    assert report.windows.get_column("overfit").sum() >= 4
    assert not report.out_of_sample.p_value < 0.05


def test_random_walk_claims_no_edge() -> None:
    for seed in (11, 12, 13):
        report = walk_forward(market(seed, edge=0.0), feature_columns=FEATURES, fit=nearest_centroid,
                              config=CONFIG)
        assert not report.out_of_sample.p_value < 0.05, (seed, report.out_of_sample)


@pytest.mark.parametrize("rule", [PositionRule(), PositionRule(margin=0.1, hold=4)], ids=["per-candle", "hold-4"])
def test_no_look_ahead_altering_after_a_window_changes_nothing_in_it(rule: PositionRule) -> None:
    frame = market(3, edge=0.004)
    config = WalkForwardConfig(**{**CONFIG.__dict__, "rule": rule})
    base = walk_forward(frame, feature_columns=FEATURES, fit=nearest_centroid, config=config)
    cut = base.windows.row(2, named=True)["test_end"]
    rng = np.random.default_rng(99)
    future = pl.col("ts") >= cut
    altered = frame.with_columns(
        pl.when(future).then(pl.lit(rng.normal())).otherwise(pl.col("signal")).alias("signal"),
        pl.when(future).then(pl.lit(0.05)).otherwise(pl.col("asset_return")).alias("asset_return"),
        pl.when(future).then(pl.lit(2, dtype=pl.Int8)).otherwise(pl.col("label")).alias("label"),
    )
    changed = walk_forward(altered, feature_columns=FEATURES, fit=nearest_centroid, config=config)
    past = pl.col("ts") < cut
    before, after = base.predictions.filter(past), changed.predictions.filter(past)
    assert before.height == 3 * 200
    assert before.equals(after)
    assert not base.predictions.filter(~past).equals(changed.predictions.filter(~past))


def test_costs_are_charged() -> None:
    frame = market(4, edge=0.004)
    free = walk_forward(frame, feature_columns=FEATURES, fit=nearest_centroid,
                        config=WalkForwardConfig(**{**CONFIG.__dict__, "costs": NO_COSTS}))
    paid = walk_forward(frame, feature_columns=FEATURES, fit=nearest_centroid, config=CONFIG)
    assert paid.out_of_sample.trades > 0
    assert free.out_of_sample.total_return > paid.out_of_sample.total_return
    assert np.all(free.predictions["net_return"].to_numpy() >= paid.predictions["net_return"].to_numpy())
    dear = walk_forward(frame, feature_columns=FEATURES, fit=nearest_centroid,
                        config=WalkForwardConfig(**{**CONFIG.__dict__, "costs": TradingCosts(0.01, 0.01)}))
    assert dear.out_of_sample.total_return < paid.out_of_sample.total_return


def test_windows_never_overlap_and_training_precedes_test() -> None:
    for mode in ("rolling", "anchored"):
        config = WalkForwardConfig(**{**CONFIG.__dict__, "mode": mode})
        report = walk_forward(market(5, edge=0.004), feature_columns=FEATURES, fit=nearest_centroid,
                              config=config)
        rows = report.windows.to_dicts()
        for previous, current in itertools.pairwise(rows):
            assert previous["test_end"] <= current["test_start"]
        for row in rows:
            assert row["train_end"] <= row["test_start"]
        assert report.predictions.get_column("ts").is_unique().all()
        assert report.predictions.get_column("ts").is_sorted()


def test_long_only_never_shorts_and_margin_trades_less() -> None:
    frame = market(6, edge=0.004)
    long_only = walk_forward(frame, feature_columns=FEATURES, fit=nearest_centroid,
                             config=WalkForwardConfig(**{**CONFIG.__dict__, "rule": PositionRule(long_only=True)}))
    assert long_only.predictions["position"].min() == 0
    loose = walk_forward(frame, feature_columns=FEATURES, fit=nearest_centroid, config=CONFIG)
    strict = walk_forward(frame, feature_columns=FEATURES, fit=nearest_centroid,
                          config=WalkForwardConfig(**{**CONFIG.__dict__, "rule": PositionRule(margin=0.5)}))
    assert (strict.predictions["position"] != 0).sum() < (loose.predictions["position"] != 0).sum()


def test_bad_input_is_rejected_clearly() -> None:
    frame = market(7, edge=0.0)
    with pytest.raises(ValueError, match="lacks columns"):
        walk_forward(frame.drop("label_end_ts"), feature_columns=FEATURES, fit=nearest_centroid, config=CONFIG)
    with pytest.raises(ValueError, match="strictly increasing"):
        walk_forward(frame.reverse(), feature_columns=FEATURES, fit=nearest_centroid, config=CONFIG)
    with pytest.raises(ValueError, match="nulls"):
        walk_forward(frame.with_columns(signal=pl.when(pl.col("ts") == START).then(None).otherwise("signal")),
                     feature_columns=FEATURES, fit=nearest_centroid, config=CONFIG)
    with pytest.raises(ValueError, match="no complete"):
        walk_forward(frame.head(500), feature_columns=FEATURES, fit=nearest_centroid, config=CONFIG)
    with pytest.raises(ValueError, match="one symbol"):
        walk_forward(frame.with_columns(symbol=pl.Series(["A", "B"] * 900)), feature_columns=FEATURES,
                     fit=nearest_centroid, config=CONFIG)


def test_training_rows_are_purged_and_embargoed() -> None:
    """``fit`` never sees a row whose label ends inside its test window, nor one within the
    embargo after an earlier test window; the recorded feature ``hour`` is the row's index."""
    frame = market(8, edge=0.002).with_row_index("hour").with_columns(pl.col("hour").cast(pl.Float64))
    seen: list[NDArray[np.float64]] = []

    def recording(features: NDArray[np.float64], labels: NDArray[np.int64]) -> PredictProba:
        seen.append(features[:, -1].copy())
        return _drop_last(features, labels)

    report = walk_forward(frame, feature_columns=[*FEATURES, "hour"], fit=recording, config=CONFIG)
    assert len(seen) == 2 * report.windows.height  # the model and its permuted-label twin
    ends = [(end - START) // HOUR for end in report.windows.get_column("test_end")]
    embargo_bites = 0
    for number, row in enumerate(report.windows.iter_rows(named=True)):
        test_start = (row["test_start"] - START) // HOUR
        # rolling 600 h of training, minus the last row (its label ends inside the test window),
        # minus the 2 h embargo after every earlier test window
        expected = set(range(test_start - 600, test_start - 1))
        expected -= {hour for end in ends[:number] for hour in (end, end + 1)}
        embargo_bites += len(expected) < 599
        for hours in seen[2 * number: 2 * number + 2]:
            assert set(hours.astype(int).tolist()) == expected
    assert embargo_bites == report.windows.height - 2  # windows 2.. have an earlier end in training

def _drop_last(features: NDArray[np.float64], labels: NDArray[np.int64]) -> PredictProba:
    inner = nearest_centroid(features[:, :-1], labels)
    return lambda x: inner(x[:, :-1])


def reads_its_score(features: NDArray[np.float64], labels: NDArray[np.int64]) -> PredictProba:
    """A "model" whose ``P(up) - P(down)`` is the row's first feature, whatever it was trained on."""

    def predict(x: NDArray[np.float64]) -> NDArray[np.float64]:
        up, down = np.maximum(x[:, 0], 0.0), np.maximum(-x[:, 0], 0.0)
        return np.column_stack([down, 1.0 - up - down, up])

    return predict


def test_a_held_position_crosses_the_window_boundary_and_each_change_pays_its_costs() -> None:
    # two test windows, bars 600..799 and 800..999; confident forecasts at 798 (up), 850 (down), 852 (up)
    frame = market(9, edge=0.0, bars=1000).with_columns(
        score=pl.Series(np.zeros(1000)).scatter([798, 850, 852], [0.5, -0.5, 0.5]))
    config = WalkForwardConfig(**{**CONFIG.__dict__, "rule": PositionRule(margin=0.1, hold=4)})
    report = walk_forward(frame, feature_columns=["score"], fit=reads_its_score, config=config)
    assert report.windows["test_start"].to_list() == [START + 600 * HOUR, START + 800 * HOUR]
    expected = np.zeros(1000)
    expected[798:802] = 1.0  # held 4 candles, 2 of them in the next window (its model's 0 score does not close it)
    expected[850:852] = -1.0  # until the fresh up forecast at 852 flips it
    expected[852:856] = 1.0
    positions = report.predictions["position"].to_numpy()
    np.testing.assert_array_equal(positions, expected[600:])

    moves = report.predictions["asset_return"].to_numpy()
    rate = DEFAULT_COSTS.per_unit_traded
    paid = positions * moves - report.predictions["net_return"].to_numpy()
    units = {798: 1, 802: 1, 850: 1, 852: 2, 856: 1}  # entry, exit, entry, flip (two sides), exit
    np.testing.assert_allclose(paid, [rate * units.get(600 + i, 0) for i in range(400)], rtol=0, atol=1e-15)
    assert paid[800 - 600] == 0  # carried into window 1: no new entry at the boundary
    assert report.out_of_sample.trades == 3
    # per window, a trade cut by the boundary counts in both (entered and exited there)
    assert report.windows["oos_trades"].to_list() == [1, 3]
