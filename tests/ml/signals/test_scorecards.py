from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from ml.signals.scorecards import GROUP_KEYS, STAT_SCHEMA, digest_text, scorecard


def outcomes(rows: list[tuple]) -> pl.DataFrame:
    """rows: (signal_id, strategy, symbol, source, publisher, horizon_minutes, net_return)."""
    return pl.DataFrame(
        rows,
        schema={"signal_id": pl.String, "strategy": pl.String, "symbol": pl.String, "source": pl.String,
                "publisher": pl.String, "horizon_minutes": pl.Int64, "net_return": pl.Float64},
        orient="row",
    )


def random_outcomes(seed: int, n_signals: int = 200) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_signals):
        strategy = ["bos", "ema_cross"][i % 2]
        symbol = ["BTC", "ETH", "DOGE"][i % 3]
        source = ["market", "twitter"][i % 2]
        publisher = [None, "alpha", "beta", "gamma"][i % 4]
        for horizon in (1, 2, 3, 5, 10, 15):
            value = float(rng.standard_t(3) * 0.01)
            if rng.random() < 0.1:
                value = None
            elif rng.random() < 0.05:
                value = 0.0
            rows.append((f"s{i}", strategy, symbol, source, publisher, horizon, value))
    return outcomes(rows)


HAND = outcomes([
    ("a1", "bos", "BTC", "market", "alpha", 5, 0.02),
    ("a2", "bos", "BTC", "market", "alpha", 5, -0.01),
    ("a3", "bos", "BTC", "market", "alpha", 5, 0.03),
    ("a4", "bos", "BTC", "market", "alpha", 5, 0.0),
    ("a5", "bos", "BTC", "market", "alpha", 5, None),
    ("b1", "ema_cross", "ETH", "twitter", None, 5, -0.02),
    ("b1", "ema_cross", "ETH", "twitter", None, 15, None),
])


def test_known_answers_by_hand() -> None:
    card = scorecard(HAND, by=["strategy"])
    bos = card.filter(pl.col("strategy") == "bos").row(0, named=True)
    # returns 0.02, -0.01, 0.03, 0.0 ; one pending
    assert bos["horizon_minutes"] == 5
    assert bos["signals"] == 4
    assert bos["pending"] == 1
    assert bos["win_rate"] == pytest.approx(0.5)
    assert bos["mean_return"] == pytest.approx(0.01)
    assert bos["median_return"] == pytest.approx(0.01)
    # wins mean 0.025 x 0.5 - |loss| mean 0.01 x 0.25 = 0.0125 - 0.0025
    assert bos["expectancy"] == pytest.approx(0.01)
    sd = math.sqrt((0.01**2 + 0.02**2 + 0.02**2 + 0.01**2) / 3)
    assert bos["std_return"] == pytest.approx(sd)
    assert bos["t_stat"] == pytest.approx(0.01 / (sd / 2))
    assert bos["p_value"] == pytest.approx(2 * stats.t.sf(0.01 / (sd / 2), 3))

    ema = card.filter(pl.col("strategy") == "ema_cross").sort("horizon_minutes").to_dicts()
    assert [row["horizon_minutes"] for row in ema] == [5, 15]
    one, pending_only = ema
    assert (one["signals"], one["pending"], one["win_rate"], one["mean_return"]) == (1, 0, 0.0, -0.02)
    assert one["expectancy"] == pytest.approx(-0.02)
    assert one["std_return"] is None and one["t_stat"] is None and one["p_value"] is None  # n < 2
    assert (pending_only["signals"], pending_only["pending"]) == (0, 1)
    assert all(pending_only[column] is None for column in
               ("win_rate", "mean_return", "median_return", "expectancy", "std_return", "t_stat", "p_value"))


def test_t_stat_null_when_all_returns_equal() -> None:
    frame = outcomes([(f"s{i}", "bos", "BTC", "market", "alpha", 1, 0.1) for i in range(5)])
    row = scorecard(frame, by=["symbol"]).row(0, named=True)
    assert row["signals"] == 5 and row["win_rate"] == 1.0
    assert row["t_stat"] is None and row["p_value"] is None


def test_expectancy_equals_mean_on_random_data() -> None:
    for seed in range(5):
        card = scorecard(random_outcomes(seed), by=["strategy", "symbol", "publisher"])
        assert card.height > 0
        settled = card.filter(pl.col("signals") > 0)
        np.testing.assert_allclose(settled["expectancy"].to_numpy(), settled["mean_return"].to_numpy(),
                                   rtol=1e-12, atol=1e-15)


def test_t_stat_and_p_value_match_scipy() -> None:
    frame = random_outcomes(7)
    card = scorecard(frame, by=["strategy", "source"])
    checked = 0
    for row in card.iter_rows(named=True):
        returns = frame.filter(
            (pl.col("strategy") == row["strategy"]) & (pl.col("source") == row["source"])
            & (pl.col("horizon_minutes") == row["horizon_minutes"])
        )["net_return"].drop_nulls().to_numpy()
        expected = stats.ttest_1samp(returns, 0.0)
        assert row["signals"] == len(returns)
        assert row["t_stat"] == pytest.approx(expected.statistic, rel=1e-9)
        assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
        assert row["mean_return"] == pytest.approx(returns.mean(), rel=1e-12)
        assert row["median_return"] == pytest.approx(float(np.median(returns)), rel=1e-12)
        assert row["std_return"] == pytest.approx(returns.std(ddof=1), rel=1e-12)
        assert row["win_rate"] == pytest.approx((returns > 0).mean())
        checked += 1
    assert checked == 2 * 6


def test_pending_counted_and_excluded() -> None:
    frame = random_outcomes(3)
    card = scorecard(frame, by=[])
    assert card.columns == list(STAT_SCHEMA)
    assert card["horizon_minutes"].to_list() == [1, 2, 3, 5, 10, 15]
    for row in card.iter_rows(named=True):
        at = frame.filter(pl.col("horizon_minutes") == row["horizon_minutes"])
        assert row["pending"] == at["net_return"].null_count() > 0
        assert row["signals"] == at.height - at["net_return"].null_count()
        assert row["mean_return"] == pytest.approx(at["net_return"].drop_nulls().mean())


@pytest.mark.parametrize("key", GROUP_KEYS)
def test_grouping_by_each_key(key: str) -> None:
    frame = random_outcomes(11, n_signals=60)
    card = scorecard(frame, by=[key])
    assert card.columns == [key, *STAT_SCHEMA]
    expected_groups = sorted(set(frame[key].to_list()), key=lambda value: (value is None, value or ""))
    assert card.filter(pl.col("horizon_minutes") == 15)[key].to_list() == expected_groups
    for row in card.iter_rows(named=True):
        match = pl.col(key).is_null() if row[key] is None else pl.col(key) == row[key]
        returns = frame.filter(match & (pl.col("horizon_minutes") == row["horizon_minutes"]))["net_return"]
        assert row["signals"] + row["pending"] == returns.len()
        assert row["mean_return"] == pytest.approx(returns.drop_nulls().mean())


def test_null_publisher_is_its_own_group() -> None:
    card = scorecard(HAND, by=["publisher"])
    assert card.select("publisher", "horizon_minutes", "signals").rows() == [
        ("alpha", 5, 4), (None, 5, 1), (None, 15, 0)]


def test_empty_input_gives_empty_frame_with_schema() -> None:
    card = scorecard(HAND.clear(), by=["strategy", "publisher"])
    assert card.height == 0
    assert card.schema == pl.Schema({"strategy": pl.String, "publisher": pl.String, **STAT_SCHEMA})
    assert scorecard(HAND, by=["strategy", "publisher"]).schema == card.schema


@pytest.mark.parametrize(("frame", "by", "message"), [
    (HAND, ["chain"], "unknown group keys"),
    (HAND, "strategy", "sequence"),
    (HAND.drop("publisher"), ["strategy"], "lack columns"),
    (HAND.with_columns(horizon_minutes=pl.lit(4, pl.Int64)), ["strategy"], "horizon_minutes"),
    (HAND.with_columns(net_return=pl.lit(float("nan"))), ["strategy"], "finite"),
])
def test_bad_input_is_rejected_clearly(frame: pl.DataFrame, by: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scorecard(frame, by=by)


def digest_card() -> pl.DataFrame:
    rows = []
    for name, returns in {"<b>evil</b> & co": [0.02, 0.01], "zeta": [0.02, 0.01], "alpha": [0.02, 0.01],
                          "mid": [0.005, -0.001, 0.002], "loser": [-0.03, -0.01], "flat": [0.0, 0.0]}.items():
        for i, value in enumerate(returns):
            rows.append((f"{name}{i}", "bos", "BTC", "market", name, 15, value))
    rows.append(("p", "bos", "BTC", "market", "zeta", 15, None))
    rows.append(("other", "bos", "BTC", "market", "other-horizon", 5, 0.5))
    return scorecard(outcomes(rows), by=["publisher"])


def test_digest_escapes_names_and_orders_deterministically() -> None:
    card = digest_card()
    text = digest_text(card, title="Daily <scorecard>", horizon=15, top=10)
    assert "<b>evil</b>" not in text and "&lt;b&gt;evil&lt;/b&gt; &amp; co" in text
    assert "Daily &lt;scorecard&gt;" in text
    lines = text.splitlines()
    names = [line.split(":")[0].removeprefix("• ") for line in lines if line.startswith("• ")]
    assert names == ["&lt;b&gt;evil&lt;/b&gt; &amp; co", "alpha", "zeta", "mid", "loser", "flat"]
    assert lines.index("<b>Best</b>") < lines.index("• mid: n=3, win 67%, mean +0.20%, t +1.15") \
        < lines.index("<b>Worst</b>") < lines.index("• loser: n=2, win 0%, mean -2.00%, t -2.00")
    assert "• flat: n=2, win 0%, mean +0.00%, t n/a" in lines
    assert "pending 1" in lines[1] and "other-horizon" not in text
    for seed in range(3):
        shuffled = card.sample(fraction=1.0, shuffle=True, seed=seed)
        assert digest_text(shuffled, title="Daily <scorecard>") == text


def test_digest_top_limits_each_section() -> None:
    text = digest_text(digest_card(), title="t", top=1)
    bullets = [line for line in text.splitlines() if line.startswith("• ")]
    assert bullets == ["• &lt;b&gt;evil&lt;/b&gt; &amp; co: n=2, win 100%, mean +1.50%, t +3.00",
                       "• loser: n=2, win 0%, mean -2.00%, t -2.00"]


def test_digest_without_settled_signals_says_so() -> None:
    text = digest_text(scorecard(HAND, by=["strategy"]), title="Scores", horizon=15)
    assert text == "<b>Scores</b>\nHorizon +15 min · pending 1\nNo settled signals yet."
    with pytest.raises(ValueError, match="horizon"):
        digest_text(scorecard(HAND, by=["strategy"]), title="Scores", horizon=4)
