"""Paper trading on hand-built 1m candles with answers worked out by hand."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from ml.evaluation.costs import TradingCosts
from ml.signals.paper import PaperConfig, PaperResult, sector_group, simulate
from ml.strategies.signal import MarketSignal

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
RATE = 0.0015  # default fee 0.1 % + slippage 5 bp, per side


def candles(symbol: str, start: datetime, bars: list[tuple[float, float, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"exchange": "binance", "symbol": symbol, "timeframe": "1m", "ts": start + i * MINUTE,
          "open": o, "high": h, "low": low, "close": c, "volume": 1.0} for i, (o, h, low, c) in enumerate(bars)],
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )


def flat(symbol: str, start: datetime, count: int, price: float = 100.0) -> pl.DataFrame:
    return candles(symbol, start, [(price, price + 0.5, price - 0.5, price)] * count)


def signal(symbol: str = "BTC/USDT", trigger: datetime = T0, *, direction: str = "long", entry: float = 100.0,
           stop: float = 95.0, target: float = 110.0, size: float = 0.5, minutes: int = 30) -> MarketSignal:
    return MarketSignal(strategy="bos", exchange="binance", symbol=symbol, timeframe="1m",
                        direction=direction, trigger_ts=trigger, entry=entry, stop=stop,  # type: ignore[arg-type]
                        targets=(target,), confidence=0.6, risk_level="medium", size=size,
                        expires_at=trigger + minutes * MINUTE)


def reasons(result: PaperResult) -> list[tuple[str, str]]:
    return [(r["symbol"], r["reason"]) for r in result.rejections.iter_rows(named=True)]


# The trigger candle opens at T0 and closes at T0 + 1m; the entry is the open of the candle at T0 + 1m.
WIN_BARS = [(99.0, 100.0, 98.0, 100.0), (100.0, 104.0, 99.0, 103.0), (103.0, 111.0, 102.0, 109.0),
            (109.0, 109.0, 80.0, 85.0)]
LOSS_BARS = [(99.0, 100.0, 98.0, 100.0), (100.0, 101.0, 97.0, 98.0), (98.0, 99.0, 94.0, 96.0),
             (96.0, 130.0, 96.0, 120.0)]


def test_a_winning_long_pays_costs_on_both_sides() -> None:
    result = simulate([signal()], candles("BTC/USDT", T0, WIN_BARS))
    trade = result.trades.row(0, named=True)
    # 0.5 x 10 000 = 5 000 notional at 100 -> 50 units; out at the 110 target in the third candle.
    expected = 50 * (110 - 100) - RATE * 5_000 - RATE * 50 * 110  # 500 - 7.5 - 8.25
    assert (trade["entry_ts"], trade["entry_price"], trade["quantity"]) == (T0 + MINUTE, 100.0, 50.0)
    assert (trade["exit_ts"], trade["exit_price"], trade["exit_reason"]) == (T0 + 3 * MINUTE, 110.0, "target")
    assert trade["pnl"] == pytest.approx(expected) == pytest.approx(484.25)
    assert trade["costs"] == pytest.approx(15.75)
    assert result.equity["equity"][-1] == pytest.approx(10_000 + 484.25)
    assert result.rejections.is_empty()


def test_a_losing_long_stops_out_at_the_stop() -> None:
    result = simulate([signal()], candles("BTC/USDT", T0, LOSS_BARS))
    trade = result.trades.row(0, named=True)
    expected = 50 * (95 - 100) - RATE * 5_000 - RATE * 50 * 95  # -250 - 7.5 - 7.125
    assert (trade["exit_ts"], trade["exit_price"], trade["exit_reason"]) == (T0 + 3 * MINUTE, 95.0, "stop")
    assert trade["pnl"] == pytest.approx(expected) == pytest.approx(-264.625)
    assert result.equity["equity"][-1] == pytest.approx(10_000 - 264.625)


def test_a_losing_short_and_the_mark_to_market_curve() -> None:
    bars = [(99.0, 100.0, 98.0, 100.0), (100.0, 102.0, 99.0, 102.0), (102.0, 103.0, 101.0, 103.0)]
    short = signal(direction="short", stop=104.0, target=90.0)
    result = simulate([short], candles("BTC/USDT", T0, bars))
    # Entry at 100 (50 units). Mark after the first held candle: close 102 -> -100 - 7.5 - 0.0015*50*102.
    assert result.equity["equity"].to_list()[0] == pytest.approx(10_000 - 100 - 7.5 - 7.65)
    trade = result.trades.row(0, named=True)
    assert trade["exit_reason"] == "end_of_data" and trade["exit_price"] == 103.0
    assert trade["pnl"] == pytest.approx(-150 - 7.5 - RATE * 50 * 103)
    assert result.equity["equity"][-1] == pytest.approx(10_000 + trade["pnl"])


def test_a_candle_touching_stop_and_target_exits_at_the_stop() -> None:
    bars = [(99.0, 100.0, 98.0, 100.0), (100.0, 112.0, 94.0, 105.0)]
    trade = simulate([signal()], candles("BTC/USDT", T0, bars)).trades.row(0, named=True)
    assert (trade["exit_reason"], trade["exit_price"]) == ("stop", 95.0)


def test_expiry_exits_at_the_close_of_the_candle_reaching_it() -> None:
    result = simulate([signal(minutes=4)], flat("BTC/USDT", T0, 8))
    trade = result.trades.row(0, named=True)
    assert (trade["exit_reason"], trade["exit_ts"]) == ("expiry", T0 + 4 * MINUTE)
    assert trade["pnl"] == pytest.approx(-RATE * 5_000 * 2)


def test_max_open_positions_rejects_the_later_signal() -> None:
    frame = pl.concat([flat("BTC/USDT", T0, 10), flat("DOGE/USDT", T0, 10)])
    signals = [signal("DOGE/USDT", T0 + MINUTE), signal("BTC/USDT", T0)]
    result = simulate(signals, frame, PaperConfig(max_open_positions=1))
    assert reasons(result) == [("DOGE/USDT", "max_open_positions")]
    assert simulate(signals, frame, PaperConfig(max_open_positions=2)).rejections.is_empty()


def test_one_position_per_sector_group() -> None:
    frame = pl.concat([flat(s, T0, 10) for s in ("BTC/USDT", "ETH/USDT", "XYZ/USDT", "ABC/USDT:USDT")])
    signals = [signal(s, T0) for s in ("BTC/USDT", "ETH/USDT", "XYZ/USDT", "ABC/USDT:USDT")]
    result = simulate(signals, frame)
    assert reasons(result) == [("ETH/USDT", "same_group_open")]  # BTC and ETH are both majors
    assert sorted(result.trades["symbol"]) == ["ABC/USDT:USDT", "BTC/USDT", "XYZ/USDT"]
    assert sector_group("eth/USDT:USDT", PaperConfig().sector_groups) == "majors"
    # A later ETH signal, after the BTC position closed, is accepted.
    later = simulate([*signals, signal("ETH/USDT", T0 + 40 * MINUTE)], frame.vstack(flat("ETH/USDT", T0 + 41 * MINUTE, 3)))
    assert ("ETH/USDT", T0 + 40 * MINUTE) in list(zip(later.trades["symbol"], later.trades["trigger_ts"], strict=True))


def day_scenario(second_day: int) -> tuple[list[MarketSignal], pl.DataFrame]:
    """On 1 March a BTC long stops out at 23:53 (-264.6) while a DOGE long is open (mark -2.8 % at
    23:53), then DOGE reaches its target at 23:54 (+484.25, equity above its start); then signals at
    23:55 that day and at 00:01 ``second_day`` days later."""
    doge = [(99.0, 100.0, 98.0, 100.0), (100.0, 101.0, 99.0, 100.0), (100.0, 101.0, 99.0, 100.0),
            (100.0, 111.0, 100.0, 110.0)]
    night = datetime(2024, 3, 1, 23, 50, tzinfo=UTC)
    morning = datetime(2024, 3, 1 + second_day, 0, 0, tzinfo=UTC)
    frame = pl.concat([candles("BTC/USDT", night, LOSS_BARS), flat("BTC/USDT", night + 4 * MINUTE, 6),
                       candles("DOGE/USDT", night, doge), flat("SOL/USDT", night, 10), flat("SOL/USDT", morning, 10)])
    signals = [signal("BTC/USDT", night), signal("DOGE/USDT", night), signal("SOL/USDT", night + 5 * MINUTE, minutes=3),
               signal("SOL/USDT", morning + MINUTE, minutes=5)]
    return signals, frame


def test_daily_loss_limit_stops_entries_for_the_rest_of_the_utc_day_only() -> None:
    signals, frame = day_scenario(second_day=1)
    result = simulate(signals, frame, PaperConfig(daily_loss_limit=0.02, max_drawdown=0.5))
    assert reasons(result) == [("SOL/USDT", "daily_loss_limit")]
    assert result.rejections["trigger_ts"][0].hour == 23
    # Halted for the rest of the day although DOGE's gain brought the equity back above its start.
    assert result.trades["symbol"].to_list() == ["BTC/USDT", "DOGE/USDT", "SOL/USDT"]
    assert result.trades["pnl"].head(2).to_list() == pytest.approx([-264.625, 484.25])
    assert result.trades["entry_ts"][2] == datetime(2024, 3, 2, 0, 2, tzinfo=UTC)
    # Under the limit (2.6 % lost < 3 %) nothing is refused.
    assert simulate(signals, frame, PaperConfig(daily_loss_limit=0.03, max_drawdown=0.5)).rejections.is_empty()


def test_drawdown_stop_is_permanent() -> None:
    signals, frame = day_scenario(second_day=3)
    result = simulate(signals, frame, PaperConfig(daily_loss_limit=0.5, max_drawdown=0.02))
    assert reasons(result) == [("SOL/USDT", "drawdown_stop"), ("SOL/USDT", "drawdown_stop")]
    # Permanent: neither the recovery above the old peak nor the new UTC day lifts it.
    assert result.trades["symbol"].to_list() == ["BTC/USDT", "DOGE/USDT"]
    assert result.equity["equity"].max() > 10_000
    assert simulate(signals, frame, PaperConfig(daily_loss_limit=0.5, max_drawdown=0.03)).rejections.is_empty()


def test_a_signal_without_candles_is_rejected() -> None:
    # BTC has candles again only after the second signal expired (T0 + 25m).
    frame = pl.concat([flat("BTC/USDT", T0, 10), flat("BTC/USDT", T0 + 30 * MINUTE, 5)])
    result = simulate([signal("ADA/USDT"), signal("BTC/USDT", T0 + 20 * MINUTE, minutes=5)], frame)
    assert reasons(result) == [("ADA/USDT", "no_candles"), ("BTC/USDT", "no_candles")]
    assert result.trades.is_empty() and result.equity.is_empty()


def busy_scenario() -> tuple[list[MarketSignal], pl.DataFrame]:
    """Five markets of 240 random-walk minutes and 40 signals entered at their trigger close."""
    rng = random.Random(7)
    symbols = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "DOGE/USDT", "UNI/USDT")
    frames, closes = [], {}
    for symbol in symbols:
        price, bars = 100.0, []
        for _ in range(240):
            close = price * (1 + rng.gauss(0, 0.003))
            bars.append((price, max(price, close) * 1.004, min(price, close) * 0.996, close))
            price = close
        frames.append(candles(symbol, T0, bars))
        closes[symbol] = [bar[3] for bar in bars]
    signals = []
    for direction in ("long", "short") * 20:
        symbol, minute = rng.choice(symbols), rng.randrange(200)
        entry, sign = closes[symbol][minute], (1 if direction == "long" else -1)
        signals.append(signal(symbol, T0 + minute * MINUTE, direction=direction, entry=entry,
                              stop=entry * (1 - sign * 0.01), target=entry * (1 + sign * 0.015), size=0.3))
    return signals, pl.concat(frames)


def test_no_look_ahead() -> None:
    signals, frame = busy_scenario()
    config = PaperConfig(max_open_positions=3, daily_loss_limit=0.03, max_drawdown=0.5)
    base = simulate(signals, frame, config)
    assert set(base.rejections["reason"]) == {"max_open_positions", "same_group_open", "daily_loss_limit"}
    cut = T0 + 75 * MINUTE
    future = pl.col("ts") >= cut
    altered = frame.with_columns(*[pl.when(future).then(pl.col(c) * 1.7).otherwise(pl.col(c)).alias(c)
                                   for c in ("open", "high", "low", "close")])
    changed = simulate(signals, altered, config)
    assert not changed.trades.equals(base.trades)  # the future does matter after the cut
    for name, column in (("trades", "exit_ts"), ("rejections", "decided_at"), ("equity", "ts")):
        before, after = getattr(base, name), getattr(changed, name)
        assert before.filter(pl.col(column) <= cut).equals(after.filter(pl.col(column) <= cut)), name
        assert before.filter(pl.col(column) <= cut).height > 0, name


def test_deterministic_and_independent_of_input_order() -> None:
    signals, frame = busy_scenario()
    config = PaperConfig(max_open_positions=3)
    first = simulate(signals, frame, config)
    second = simulate(list(reversed(signals)), frame.sample(fraction=1.0, shuffle=True, seed=3), config)
    for name in ("trades", "rejections", "equity"):
        assert getattr(first, name).equals(getattr(second, name)), name
    assert first.trades.height > 3 and first.rejections.height > 3


def test_bad_input_is_refused_with_a_clear_error() -> None:
    frame = flat("BTC/USDT", T0, 3)
    with pytest.raises(ValueError, match="timezone-aware"):
        simulate([signal()], frame.with_columns(pl.col("ts").dt.replace_time_zone(None)))
    with pytest.raises(ValueError, match="1m candles only"):
        simulate([signal()], frame.with_columns(timeframe=pl.lit("5m")))
    with pytest.raises(ValueError, match="duplicate"):
        simulate([signal()], pl.concat([frame, frame]))
    with pytest.raises(ValueError, match="non-positive"):
        simulate([signal()], frame.with_columns(low=pl.lit(0.0)))
    with pytest.raises(ValueError, match="max_drawdown"):
        PaperConfig(max_drawdown=1.0)
    with pytest.raises(ValueError, match="fee_per_side"):
        PaperConfig(costs=TradingCosts(fee_per_side=-0.1))
