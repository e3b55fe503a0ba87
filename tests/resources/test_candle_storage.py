"""Candle storage on both engines: the ``candles`` view over integer-keyed bars, writes that skip
unchanged bars, and migration 0005 upgrading a populated warehouse."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text

from ml.marketdata.frames import CANDLE_SCHEMA
from ml.marketdata.timeframes import day_bounds
from resources.warehouse import candles
from resources.warehouse.engine import make_engine
from resources.warehouse.migrate import alembic_config
from resources.warehouse.store import Warehouse
from tests.support.builders import make_candles

START, END = day_bounds("2024-01-31")
KEY = ["exchange", "symbol", "timeframe", "ts"]


class RecordingSession:
    """A BarSession that forwards to a real one and records what it deletes and inserts."""

    def __init__(self, inner: candles.BarSession) -> None:
        self.inner = inner
        self.deleted: list[tuple[Sequence[int], datetime, datetime]] = []
        self.inserted: list[pl.DataFrame] = []
        self.read: list[Sequence[int]] = []

    def lock(self, exchange: str, timeframe: str) -> None:
        self.inner.lock(exchange, timeframe)

    def series_ids(self, exchange: str, timeframe: str, symbols: Sequence[str],
                   create: Sequence[str]) -> dict[str, int]:
        return self.inner.series_ids(exchange, timeframe, symbols, create)

    def read_bars(self, ids: Sequence[int], start: datetime, end: datetime) -> pl.DataFrame:
        self.read.append(ids)
        return self.inner.read_bars(ids, start, end)

    def delete_bars(self, ids: Sequence[int], start: datetime, end: datetime) -> None:
        self.deleted.append((ids, start, end))
        self.inner.delete_bars(ids, start, end)

    def insert_bars(self, bars: pl.DataFrame) -> None:
        self.inserted.append(bars)
        self.inner.insert_bars(bars)


def _recorded_write(warehouse: Warehouse, frame: pl.DataFrame, symbols: Sequence[str]) -> RecordingSession:
    where = candles.CandleSlice("sim", "1m", tuple(sorted(symbols)), START, END)
    with candles.bar_session(warehouse.engine, (START, END)) as session:
        recording = RecordingSession(session)
        candles.replace_slice(recording, frame, where)
    return recording


def _write(warehouse: Warehouse, frame: pl.DataFrame) -> int:
    return warehouse.replace_candles(frame, exchange="sim", timeframe="1m", start=START, end=END,
                                     symbols=frame.get_column("symbol").unique().to_list())


def _view(engine: Engine) -> pl.DataFrame:
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT exchange, symbol, timeframe, ts, open, high, low, close, volume FROM candles "
            "ORDER BY exchange, symbol, timeframe, ts")).all()
    utc = [(*r[:3], r[3] if isinstance(r[3], datetime) else datetime.fromtimestamp(r[3] / 1000, tz=UTC), *r[4:])
           for r in rows]
    return pl.DataFrame(utc, schema=CANDLE_SCHEMA, orient="row")


def test_rewriting_identical_candles_writes_nothing(warehouse: Warehouse) -> None:
    frame = make_candles(1440, "1m", symbols=("BTC/USDT", "ETH/USDT"), start=START)
    first = _recorded_write(warehouse, frame, ["BTC/USDT", "ETH/USDT"])
    assert not first.deleted and [f.height for f in first.inserted] == [2880]
    again = _recorded_write(warehouse, frame.sample(fraction=1.0, shuffle=True, seed=1), ["BTC/USDT", "ETH/USDT"])
    assert not again.deleted and not again.inserted
    assert warehouse.read_candles(timeframe="1m").equals(frame.sort(KEY))


def test_appending_candles_inserts_only_the_new_ones(warehouse: Warehouse) -> None:
    """The hourly re-materialisation: the day so far, then the same day one hour longer."""
    day = make_candles(1440, "1m", symbols=("BTC/USDT", "ETH/USDT"), start=START)
    morning = day.filter(pl.col("ts") < START + timedelta(hours=9))
    _recorded_write(warehouse, morning, ["BTC/USDT", "ETH/USDT"])
    later = day.filter(pl.col("ts") < START + timedelta(hours=10))
    recording = _recorded_write(warehouse, later, ["BTC/USDT", "ETH/USDT"])
    assert not recording.deleted
    assert [f.height for f in recording.inserted] == [2 * 60]
    assert warehouse.read_candles(timeframe="1m").equals(later.sort(KEY))


@pytest.mark.parametrize("change", ["value", "missing candle", "missing symbol"])
def test_any_change_rewrites_the_slice(warehouse: Warehouse, change: str) -> None:
    frame = make_candles(1440, "1m", symbols=("BTC/USDT", "ETH/USDT"), start=START)
    _recorded_write(warehouse, frame, ["BTC/USDT", "ETH/USDT"])
    if change == "value":
        new = frame.with_columns(pl.when(pl.col("ts") == START + timedelta(hours=3))
                                 .then(pl.col("close") * 1.01).otherwise(pl.col("close")).alias("close"))
    elif change == "missing candle":
        new = frame.filter(pl.col("ts") != START + timedelta(hours=3))
    else:
        new = frame.filter(pl.col("symbol") == "BTC/USDT")
    recording = _recorded_write(warehouse, new, ["BTC/USDT", "ETH/USDT"])
    assert len(recording.deleted) == 1 and [f.height for f in recording.inserted] == [new.height]
    assert warehouse.read_candles(timeframe="1m").equals(new.sort(KEY))


def test_a_changed_first_series_skips_reading_the_others(warehouse: Warehouse) -> None:
    frame = make_candles(1440, "1m", symbols=("BTC/USDT", "ETH/USDT"), start=START)
    _recorded_write(warehouse, frame, ["BTC/USDT", "ETH/USDT"])
    changed = frame.with_columns(pl.col("close") * 1.01)
    recording = _recorded_write(warehouse, changed, ["BTC/USDT", "ETH/USDT"])
    assert [len(ids) for ids in recording.read] == [1]
    assert len(recording.deleted) == 1
    assert warehouse.read_candles(timeframe="1m").equals(changed.sort(KEY))


def test_duplicate_keys_in_a_frame_keep_the_last(warehouse: Warehouse) -> None:
    frame = make_candles(60, "1m", start=START)
    doubled = pl.concat([frame, frame.head(5).with_columns(pl.col("volume") + 1)])
    assert _write(warehouse, doubled) == 60
    stored = warehouse.read_candles(timeframe="1m")
    assert stored.head(5).get_column("volume").to_list() == (frame.head(5).get_column("volume") + 1).to_list()


def test_the_view_shows_exactly_what_read_candles_returns(warehouse: Warehouse) -> None:
    one = make_candles(1440, "1m", symbols=("BTC/USDT", "ETH/USDT"), start=START, seed=1)
    hourly = make_candles(48, "1h", symbols=("BTC/USDT",), start=START - timedelta(days=1), seed=2)
    _write(warehouse, one)
    warehouse.replace_candles(hourly, exchange="sim", timeframe="1h", start=START - timedelta(days=1), end=END,
                              symbols=["BTC/USDT"])
    expected = pl.concat([warehouse.read_candles(timeframe="1h"), warehouse.read_candles(timeframe="1m")])
    assert _view(warehouse.engine).equals(expected.sort(KEY))
    assert _view(warehouse.engine).equals(pl.concat([one, hourly]).sort(KEY))


def test_the_view_takes_inserts_updates_and_deletes(warehouse: Warehouse) -> None:
    frame = make_candles(3, "1h", start=START)
    warehouse.replace_candles(frame, exchange="sim", timeframe="1h", start=START, end=END, symbols=["BTC/USDT"])
    bind = (lambda t: t) if warehouse.postgres else (lambda t: int(t.timestamp() * 1000))
    with warehouse.engine.begin() as connection:  # PostgreSQL: into the month partition the writer created
        connection.execute(text("INSERT INTO candles (exchange, symbol, timeframe, ts, open, high, low, close, volume) "
                                "VALUES ('manual', 'X/USDT', '1h', :ts, 1, 2, 0.5, 1.5, 10)"), {"ts": bind(START)})
        connection.execute(text("UPDATE candles SET close = 1.75 WHERE exchange = 'manual'"))
        connection.execute(text("DELETE FROM candles WHERE symbol = 'BTC/USDT' AND ts = :ts"),
                           {"ts": bind(START + timedelta(hours=1))})
    manual = warehouse.read_candles(timeframe="1h", exchange="manual")
    assert manual.select("symbol", "ts", "close").rows() == [("X/USDT", START, 1.75)]
    assert warehouse.read_candles(timeframe="1h", exchange="sim").equals(
        frame.filter(pl.col("ts") != START + timedelta(hours=1)))


def test_latest_and_first_candle_per_symbol(warehouse: Warehouse) -> None:
    early = make_candles(24, "1h", symbols=("A/USDT",), start=START - timedelta(days=1))
    late = make_candles(5, "1h", symbols=("B/USDT",), start=START + timedelta(hours=3))
    warehouse.replace_candles(pl.concat([early, late]), exchange="sim", timeframe="1h",
                              start=START - timedelta(days=1), end=END, symbols=["A/USDT", "B/USDT"])
    assert warehouse.first_candle_ts(exchange="sim", timeframe="1h") == {
        "A/USDT": START - timedelta(days=1), "B/USDT": START + timedelta(hours=3)}
    assert warehouse.latest_candle_ts(exchange="sim", timeframe="1h") == START + timedelta(hours=7)
    assert warehouse.first_candle_ts(exchange="sim", timeframe="1m") == {}
    assert warehouse.delete_candles_before(timeframe="1h", before=START) == 24
    assert warehouse.first_candle_ts(exchange="sim", timeframe="1h") == {"B/USDT": START + timedelta(hours=3)}


# -- migration 0005 on a populated warehouse ---------------------------------------------------
def _alembic(url: str, action: str, revision: str) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            getattr(command, action)(config, revision)
            connection.commit()
    finally:
        engine.dispose()


def _old_candles() -> pl.DataFrame:
    """Two exchanges, two timeframes, two months (PostgreSQL: two partitions)."""
    feb = datetime(2024, 2, 28, tzinfo=UTC)
    frames = [make_candles(72, "1h", symbols=("BTC/USDT", "ETH/USDT"), exchange=e, start=feb, seed=i)
              for i, e in enumerate(("sim", "sim_b"))]
    frames.append(make_candles(120, "1m", symbols=("BTC/USDT",), start=feb + timedelta(days=1, hours=23), seed=9))
    return pl.concat(frames).sort(KEY)


def _insert_old(url: str, frame: pl.DataFrame) -> None:
    engine = create_engine(url)
    postgres = engine.dialect.name == "postgresql"
    rows = frame.to_dicts() if postgres else frame.with_columns(pl.col("ts").dt.epoch("ms")).to_dicts()
    with engine.begin() as connection:
        if postgres:
            for month, following in (("2024-02-01", "2024-03-01"), ("2024-03-01", "2024-04-01")):
                connection.execute(text(f"CREATE TABLE candles_{month[:7].replace('-', '_')} PARTITION OF candles "
                                        f"FOR VALUES FROM ('{month}+00') TO ('{following}+00')"))
        connection.execute(text("INSERT INTO candles VALUES (:exchange, :symbol, :timeframe, :ts, :open, :high, "
                                ":low, :close, :volume)"), rows)
    engine.dispose()


def _read_all(warehouse: Warehouse) -> pl.DataFrame:
    return pl.concat([warehouse.read_candles(timeframe=tf) for tf in ("1h", "1m")]).sort(KEY)


def test_migration_0005_upgrades_a_populated_warehouse(warehouse_url: str) -> None:
    _alembic(warehouse_url, "upgrade", "0004_indicators")
    old = _old_candles()
    _insert_old(warehouse_url, old)
    warehouse = Warehouse(make_engine(warehouse_url))  # migrates to head
    assert _read_all(warehouse).equals(old)
    assert _view(warehouse.engine).equals(old)
    if warehouse.postgres:
        with warehouse.engine.connect() as connection:
            children = connection.execute(text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p "
                "ON p.oid = i.inhparent WHERE p.relname = 'candle_bars' ORDER BY 1")).scalars().all()
        assert children == ["candle_bars_2024_02", "candle_bars_2024_03"]
    # the migrated storage takes writes: change one migrated day, then put it back
    start, end = day_bounds("2024-02-29")
    day = old.filter((pl.col("exchange") == "sim") & (pl.col("timeframe") == "1h") & pl.col("ts").is_between(
        start, end, closed="left"))
    for frame in (day.with_columns(pl.col("close") * 1.01), day):
        warehouse.replace_candles(frame, exchange="sim", timeframe="1h", start=start, end=end,
                                  symbols=["BTC/USDT", "ETH/USDT"])
    assert _read_all(warehouse).equals(old)
    warehouse.engine.dispose()


def test_migration_0005_downgrades_and_upgrades_again(warehouse_url: str) -> None:
    _alembic(warehouse_url, "upgrade", "0004_indicators")
    old = _old_candles()
    _insert_old(warehouse_url, old)
    _alembic(warehouse_url, "upgrade", "head")
    _alembic(warehouse_url, "downgrade", "0004_indicators")
    engine = create_engine(warehouse_url)
    assert _view(engine).equals(old)  # a plain table again, same rows
    engine.dispose()
    warehouse = Warehouse(make_engine(warehouse_url))
    assert _read_all(warehouse).equals(old)
    warehouse.engine.dispose()
