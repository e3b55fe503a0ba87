"""Funding-rate alerts: known episodes, both sides, look-ahead, many symbols, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from ml.marketdata.frames import DERIVATIVES_SCHEMA
from ml.strategies.funding import FundingAlert, detect_funding_extremes

T0 = datetime(2024, 5, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def snapshots(rates: list[float | None], symbol: str = "BTC/USDT:USDT", exchange: str = "binance") -> pl.DataFrame:
    n = len(rates)
    return pl.DataFrame({
        "exchange": [exchange] * n, "symbol": [symbol] * n, "ts": [T0 + HOUR * i for i in range(n)],
        "funding_rate": rates, "next_funding_ts": [T0 + timedelta(hours=8) * (i // 8 + 1) for i in range(n)],
        "mark_price": [100.0 + i for i in range(n)], "open_interest": [1e6] * n, "open_interest_value": [1e8] * n,
    }).select(pl.col(c).cast(t) for c, t in DERIVATIVES_SCHEMA.items())


def test_one_alert_per_episode_on_each_side() -> None:
    #         0       1      2      3      4      5      6      7       8       9      10     11
    rates = [0.0001, 0.001, 0.003, 0.002, 0.0005, None, 0.0012, -0.002, -0.001, None, -0.0008, -0.0009999]
    alerts = detect_funding_extremes(snapshots(rates), threshold=0.001)
    assert [(int((a.ts - T0) / HOUR), a.side, a.funding_rate) for a in alerts] == [
        (1, "longs_pay", 0.001),  # at the threshold: extreme
        (6, "longs_pay", 0.0012),  # back inside at 4 (the null at 5 is skipped), out again
        (7, "shorts_pay", -0.002),  # a flip to the other extreme is a new episode
    ]
    first = alerts[0]
    assert first.mark_price == 101.0 and first.open_interest_value == 1e8
    assert first.next_funding_ts == T0 + timedelta(hours=8) and first.threshold == 0.001
    assert first.annualised_pct == pytest.approx(0.001 * 3 * 365 * 100)
    assert first.key == ("funding", "binance", "BTC/USDT:USDT", "longs_pay")
    assert first.to_record()["ts"] == "2024-05-01T01:00:00+00:00"


def test_a_null_between_two_extremes_does_not_split_the_episode() -> None:
    alerts = detect_funding_extremes(snapshots([0.002, None, 0.002, 0.0, -0.003]), threshold=0.001)
    assert [(a.ts, a.side) for a in alerts] == [(T0, "longs_pay"), (T0 + 4 * HOUR, "shorts_pay")]
    assert detect_funding_extremes(snapshots([0.002, 0.003]), threshold=0.005) == []


def test_optional_columns_may_be_absent() -> None:
    (alert,) = detect_funding_extremes(snapshots([0.0, -0.004]).select("exchange", "symbol", "ts", "funding_rate"))
    assert alert.side == "shorts_pay" and alert.mark_price is None and alert.next_funding_ts is None


def random_funding(symbols: list[str], n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for symbol in symbols:
        rates = np.cumsum(rng.normal(0, 0.0003, n)) * 0.5 + rng.normal(0, 0.0003, n)
        masked = [None if rng.random() < 0.05 else float(r) for r in rates]
        frames.append(snapshots(masked, symbol=symbol))
    return pl.concat(frames)


def test_no_look_ahead_and_symbols_are_independent() -> None:
    symbols = [f"S{i}/USDT:USDT" for i in range(5)]
    data = random_funding(symbols, 400, seed=4)
    full = detect_funding_extremes(data)
    assert len(full) > 20 and {a.side for a in full} == {"longs_pay", "shorts_pay"}
    rng = np.random.default_rng(9)
    changed = 0
    for k in rng.integers(10, 390, 8):
        cut = T0 + HOUR * int(k)
        noise = pl.lit(rng.normal(0, 0.003, data.height))
        altered = data.with_columns(pl.when(pl.col("ts") > cut).then(noise).otherwise("funding_rate").alias("funding_rate"))
        after = detect_funding_extremes(altered)
        assert [a for a in after if a.ts <= cut] == [a for a in full if a.ts <= cut]
        assert detect_funding_extremes(data.filter(pl.col("ts") <= cut)) == [a for a in full if a.ts <= cut]
        changed += after != full
    assert changed
    alone = [a for s in symbols for a in detect_funding_extremes(data.filter(pl.col("symbol") == s))]
    assert detect_funding_extremes(data.sample(fraction=1.0, shuffle=True, seed=2)) == sorted(
        alone, key=lambda a: (a.ts, a.exchange, a.symbol))


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.with_columns(pl.lit(float("inf")).alias("funding_rate")), "ETH/USDT:USDT snapshot at 2024-05-01 00:00.* non-finite"),
    (lambda f: pl.concat([f, f.tail(1)]), "ETH/USDT:USDT snapshot at 2024-05-01 02:00.* duplicated"),
    (lambda f: f.drop("funding_rate"), r"lack columns \['funding_rate'\]"),
])
def test_bad_input_is_refused_naming_symbol_and_row(change: object, message: str) -> None:
    bad = change(snapshots([0.0, 0.0, 0.0], symbol="ETH/USDT:USDT"))  # type: ignore[operator]
    with pytest.raises(ValueError, match=message):
        detect_funding_extremes(bad)
    for threshold in (0.0, -0.001, float("nan")):
        with pytest.raises(ValueError, match="must be positive"):
            detect_funding_extremes(snapshots([0.0]), threshold=threshold)


def test_an_alert_must_be_extreme_on_its_side() -> None:
    with pytest.raises(ValueError, match="not extreme"):
        FundingAlert(strategy="funding", exchange="binance", symbol="X", ts=T0, side="shorts_pay", funding_rate=0.002,
                     threshold=0.001, annualised_pct=0.0, next_funding_ts=None, mark_price=None, open_interest_value=None)


def test_each_symbol_starts_its_own_episode() -> None:
    data = pl.concat([snapshots([0.002, 0.002], symbol=s, exchange=e)
                      for e, s in (("binance", "A/USDT:USDT"), ("binance", "B/USDT:USDT"), ("okx", "A/USDT:USDT"))])
    alerts = detect_funding_extremes(data.reverse())
    assert [(a.exchange, a.symbol, a.ts) for a in alerts] == [
        ("binance", "A/USDT:USDT", T0), ("binance", "B/USDT:USDT", T0), ("okx", "A/USDT:USDT", T0)]
