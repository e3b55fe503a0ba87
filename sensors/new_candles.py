"""``new_candles_sensor``: a run of ``market_signals_job`` as soon as new closed 1m candles are stored.

Why a sensor on the warehouse (and not a one-minute schedule or the strategies inside the sidecar):
the ``feed`` sidecar writes each closed 1m candle into the warehouse within seconds of its close,
and the 5-minute ``candles_1m_schedule`` repairs and backfills; the warehouse is therefore the one
place where every new candle shows up, whoever wrote it. A sensor evaluated every 5 s (the daemon's
tick) sees it a few seconds later and requests one in-process run (no step subprocesses, ~2 s to
start), so a signal reaches the outbox within ~10 s of the candle's close. A one-minute schedule
would add up to 60 s of waiting and fire whether or not anything arrived; running the strategies
inside the sidecar would put them outside Dagster (no run history, no config in the launchpad) and
duplicate the publish path. Dagster runs stay the unit of work; the sidecar only stores candles.

Progress (the cursor): per market, the open time of its latest 1m candle the sensor has handed to a
run. Each tick reads every 1m series' latest open time (one index lookup per series) and requests a
run for the markets whose latest candle moved past the cursor, telling the run, per market, the
close of the last candle already handed over (so it scans exactly the new ones). Per-market
watermarks are commit-order safe where one global "latest candle" would not be: when a writer
commits ETH's 10:05 candle after BTC's 10:06 one, a single maximum would already be past 10:05 and
skip ETH; here ETH's own watermark is still 10:04 and the late candle is picked up on the next tick.
A candle stored *behind* its market's latest one (a repaired gap) is not a new candle and triggers
nothing; the backfill schedule and the backtests cover history.

Run keys: a digest of the markets and their new watermarks, so re-evaluating a tick never launches
a second run for the same candles, and two different sets of candles never share a key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from dagster import (
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)
from sqlalchemy import Engine, text

from resources.warehouse.resource import WarehouseResource

_LATEST_1M_SQL = ("SELECT s.exchange, s.symbol, (SELECT MAX(b.ts) FROM candle_bars b WHERE b.series_id = s.series_id) "
                  "FROM candle_series s WHERE s.timeframe = '1m'")
MINUTE_MS = 60_000


def latest_1m_candles(engine: Engine) -> dict[str, int]:
    """``'exchange|symbol'`` -> open time (epoch ms, UTC) of the latest stored 1m candle."""
    with engine.connect() as connection:
        rows = connection.execute(text(_LATEST_1M_SQL)).all()
    return {f"{exchange}|{symbol}": _ms(ts) for exchange, symbol, ts in rows if ts is not None}


def _ms(value: object) -> int:
    if isinstance(value, datetime):
        return int(value.astimezone(UTC).timestamp() * 1000)
    return int(value)  # type: ignore[call-overload]


def decode_cursor(text_value: str | None) -> dict[str, int] | None:
    """The cursor's watermarks, ``None`` without a cursor; raises ValueError saying what a valid one is."""
    if not text_value:
        return None
    try:
        data = json.loads(text_value)
        if not isinstance(data, dict):
            raise TypeError("not an object")
        return {str(k): int(v) for k, v in data.items()}
    except (ValueError, TypeError) as error:
        raise ValueError(f"new_candles_sensor cursor {text_value[:80]!r} is not valid ({error}): it is a JSON object "
                         "{\"exchange|symbol\": latest 1m open time in epoch ms}; clear it in the UI to rescan the "
                         "last hour") from error


def new_candles(cursor: Mapping[str, int] | None, latest: Mapping[str, int]) -> dict[str, int | None]:
    """Markets whose latest candle moved past the cursor -> their old watermark (None: never handled).

    Without a cursor every market is new (the run then scans its last ``window_minutes``).
    """
    if cursor is None:
        return {market: None for market in latest}
    return {market: cursor.get(market) for market, ts in latest.items() if ts > cursor.get(market, -1)}


def run_key(changed: Mapping[str, int]) -> str:
    """Stable key of a request: its markets' new watermarks."""
    body = ",".join(f"{m}={ts}" for m, ts in sorted(changed.items()))
    return f"candles:{max(changed.values())}:{len(changed)}:{hashlib.sha256(body.encode()).hexdigest()[:16]}"


def since_config(handled: Mapping[str, int | None]) -> dict[str, str]:
    """The op's ``markets`` config: the close (ISO) of the last candle handed over, '' for none."""
    return {market: "" if ts is None else (datetime.fromtimestamp(ts / 1000, tz=UTC) + timedelta(minutes=1)).isoformat()
            for market, ts in sorted(handled.items())}


def build_new_candles_sensor(job: JobDefinition, *, op_name: str = "market_signals_op", interval_s: int = 5,
                             strategies: Mapping[str, bool] | None = None) -> SensorDefinition:
    """Each tick requests ONE run for every market with new 1m candles (see the module docstring).

    ``strategies``: ``{"bos": bool, "ema_cross": bool, "funding": bool}`` put in the run config
    (default: the op's defaults, all on).
    """
    switches = {name: {"enabled": on} for name, on in (strategies or {}).items()}

    @sensor(name="new_candles_sensor", job=job, minimum_interval_seconds=interval_s,
            default_status=DefaultSensorStatus.RUNNING,
            description="Requests market_signals_job when new closed 1m candles are stored (cursor: the latest "
            "1m candle per market).")
    def new_candles_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult:
        cursor = decode_cursor(context.cursor)
        latest = latest_1m_candles(warehouse.store().engine)
        handled = new_candles(cursor, latest)
        watermarks = {**(cursor or {}), **{m: latest[m] for m in handled}}
        if not handled:
            return SensorResult(skip_reason=f"no new 1m candle in {len(latest)} markets",
                                cursor=json.dumps(watermarks, sort_keys=True, separators=(",", ":")))
        changed = {m: latest[m] for m in handled}
        request = RunRequest(
            run_key=run_key(changed),
            run_config={"ops": {op_name: {"config": {"markets": since_config(handled), **switches}}}},
            tags={"signalworks/markets": str(len(changed)),
                  "signalworks/latest_candle": datetime.fromtimestamp(max(changed.values()) / 1000, tz=UTC).isoformat()},
        )
        return SensorResult(run_requests=[request], cursor=json.dumps(watermarks, sort_keys=True,
                                                                      separators=(",", ":")))

    return new_candles_sensor
