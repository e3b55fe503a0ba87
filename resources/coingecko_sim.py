"""Offline twin of :class:`resources.coingecko.CoinGeckoClient`, consistent with the ``sim`` market.

:class:`SimCoinGecko` answers ``top_markets(n)`` with the same :data:`COINGECKO_SCHEMA` frame as
the live client, as a pure function of ``(seed, clock time)``:

* every :data:`~resources.exchanges.sim_market.SIM_ASSETS` asset listed by the snapshot, priced by
  :meth:`SimMarket.price_at`, so the twin agrees with the ``sim`` exchanges;
* a synthetic long tail ``simcoin-0001`` ... (closed-form log-price paths that load on the
  simulated BTC), whose market caps fall off like a power law, to fill the listing up to ``n``.

All-time high and low follow a *daily refresh*: they are the extremes of the **closed** UTC days
since listing (never the running day, whose high is not known yet), so between refreshes a price
can sit above the recorded ATH, as on CoinGecko itself. Moving the clock forward therefore only
ever raises an ATH (and lowers an ATL), and two snapshots within one UTC day share them exactly.
``ath_ts`` / ``atl_ts`` are the UTC midnight opening the day of the extreme (day resolution).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

from ml.marketdata.frames import COINGECKO_SCHEMA
from resources.exchanges.base import Clock
from resources.exchanges.sim_assets import ANCHOR_DATE
from resources.exchanges.sim_market import GENESIS, SimAsset, SimMarket, shared_market

DAY_MS = 86_400_000
GENESIS_MS = int(GENESIS.timestamp() * 1000)
#: Days from GENESIS to the date from which the simulated assets' anchor prices are flat.
ANCHOR_DAY = (ANCHOR_DATE - GENESIS.date()).days
#: Share of tail coins listed after GENESIS (the rest trade from GENESIS on).
TAIL_LATE_SHARE = 0.3
#: Tail coins generated at least, so that ``top_markets(n)`` for any n up to ~2000 is the head of
#: one fixed listing.
TAIL_MIN_SIZE = 3000
#: Reference market cap (USD) of tail coin 1 and the power-law exponent of the fall-off.
TAIL_TOP_CAP_USD = 2e9
TAIL_CAP_EXPONENT = 0.8
_TAIL_BLOCK = 1000
_TAIL_TAG = 0xC06E  # spawn-key word of the tail's random stream, distinct from the market's


def _utc_now() -> datetime:
    return datetime.now(UTC)


def coin_id_for(asset: SimAsset) -> str:
    """CoinGecko-style id of a simulated asset: its name slugged (``"Bitcoin Cash"`` -> ``bitcoin-cash``)."""
    name = asset.name.replace("(invented)", "")
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@dataclass(frozen=True)
class _Tail:
    """Per-coin parameters of the synthetic tail (arrays of one length)."""

    logp0: np.ndarray  # log USD price at GENESIS before the BTC term
    mu: np.ndarray  # drift, log per day
    a1: np.ndarray  # slow cycle amplitude (log) and its period (days) and phase
    t1: np.ndarray
    ph1: np.ndarray
    a2: np.ndarray  # fast cycle
    t2: np.ndarray
    ph2: np.ndarray
    beta: np.ndarray  # loading on log(BTC / BTC at GENESIS)
    listing_day: np.ndarray  # days since GENESIS (int)
    pump: np.ndarray  # log excess at listing, decaying with time scale ``lam`` (days)
    lam: np.ndarray
    supply: np.ndarray  # circulating, base units
    total_factor: np.ndarray  # total supply / circulating
    max_factor: np.ndarray  # max supply / total supply, NaN when uncapped
    turnover: np.ndarray  # 24 h volume / market cap
    ph3: np.ndarray

    @property
    def size(self) -> int:
        return int(self.logp0.size)


@functools.lru_cache(maxsize=8)
def _tail_block(seed: int, block: int, btc_growth: float) -> _Tail:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_TAIL_TAG, block)))
    n = _TAIL_BLOCK
    index = np.arange(block * n, (block + 1) * n)
    logp0 = rng.uniform(math.log(1e-6), math.log(50.0), n)
    beta = rng.uniform(0.5, 1.6, n)
    late = rng.random(n) < TAIL_LATE_SHARE
    listing_day = np.where(late, rng.integers(30, 1800, n), 0)
    cap = (
        TAIL_TOP_CAP_USD
        * (index + 1.0) ** -TAIL_CAP_EXPONENT
        * np.exp(0.25 * rng.standard_normal(n))
    )
    mu = rng.normal(-4e-4, 6e-4, n)
    # the coin's level at the anchor date, once BTC has grown: caps follow the power law then
    reference_price = np.exp(logp0 + beta * btc_growth + mu * ANCHOR_DAY)
    capped = rng.random(n) < 0.65
    return _Tail(
        logp0=logp0,
        mu=mu,
        a1=rng.uniform(0.2, 0.8, n),
        t1=rng.uniform(200.0, 700.0, n),
        ph1=rng.uniform(0.0, 2 * math.pi, n),
        a2=rng.uniform(0.05, 0.3, n),
        t2=rng.uniform(10.0, 60.0, n),
        ph2=rng.uniform(0.0, 2 * math.pi, n),
        beta=beta,
        listing_day=listing_day,
        pump=np.where(late, rng.uniform(0.0, 1.5, n), 0.0),
        lam=rng.uniform(10.0, 60.0, n),
        supply=cap / reference_price,
        total_factor=rng.uniform(1.0, 2.5, n),
        max_factor=np.where(capped, rng.uniform(1.0, 1.5, n), np.nan),
        turnover=np.exp(rng.uniform(math.log(0.005), math.log(0.3), n)),
        ph3=rng.uniform(0.0, 2 * math.pi, n),
    )


def _tail(seed: int, size: int, btc_growth: float) -> _Tail:
    blocks = [_tail_block(seed, b, btc_growth) for b in range(-(-size // _TAIL_BLOCK))]
    fields = _Tail.__dataclass_fields__
    return _Tail(**{f: np.concatenate([getattr(b, f) for b in blocks])[:size] for f in fields})


def _tail_log_price(tail: _Tail, days: np.ndarray, btc_log: np.ndarray) -> np.ndarray:
    """Log USD price at the UTC midnights ``days`` (days since GENESIS): shape (days, coins).

    ``btc_log`` is log(BTC / BTC at GENESIS) indexed by day since GENESIS. Before its listing a
    coin is held at its listing value (callers drop it anyway).
    """
    k = np.maximum(days[:, None], tail.listing_day)
    x = tail.beta * btc_log[np.minimum(k, btc_log.size - 1)]  # unlisted coins: value unused
    kf = k.astype(np.float64)
    x += tail.logp0 - tail.a1 * np.sin(tail.ph1) - tail.a2 * np.sin(tail.ph2)
    x += tail.mu * kf
    x += tail.a1 * np.sin(kf * (2 * np.pi / tail.t1) + tail.ph1)
    x += tail.a2 * np.sin(kf * (2 * np.pi / tail.t2) + tail.ph2)
    late = np.flatnonzero(tail.pump > 0)
    x[:, late] += tail.pump[late] * np.exp((tail.listing_day[late] - kf[:, late]) / tail.lam[late])
    return x


def _tail_extremes(
    tail: _Tail, last_day: int, btc_log: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Highest and lowest log price over the UTC midnights ``listing .. last_day`` and their days.

    In the tail model the price moves log-linearly within a day, so a day's high and low sit at
    its two midnights: these are the exact extremes of the days closed by ``last_day``. The
    cycles are advanced by rotation (one multiply-add per coin and day instead of a sine), which
    agrees with :func:`_tail_log_price` to ~1e-13.
    """
    w1, w2 = 2 * np.pi / tail.t1, 2 * np.pi / tail.t2
    c1, s1, c2, s2 = np.cos(w1), np.sin(w1), np.cos(w2), np.sin(w2)
    u1, v1 = np.sin(tail.ph1), np.cos(tail.ph1)  # sin and cos of the cycle angle at day 0
    u2, v2 = np.sin(tail.ph2), np.cos(tail.ph2)
    base = tail.logp0 - tail.a1 * u1 - tail.a2 * u2
    late = np.flatnonzero(tail.pump > 0)
    hi, lo = np.full(tail.size, -np.inf), np.full(tail.size, np.inf)
    hi_day, lo_day = np.zeros(tail.size, np.int64), np.zeros(tail.size, np.int64)
    for day in range(last_day + 1):
        x = base + tail.mu * day + tail.a1 * u1 + tail.a2 * u2 + tail.beta * btc_log[day]
        since = np.maximum(day - tail.listing_day[late], 0)
        x[late] += tail.pump[late] * np.exp(-since / tail.lam[late])
        listed = tail.listing_day <= day
        up, down = listed & (x > hi), listed & (x < lo)
        hi[up], hi_day[up], lo[down], lo_day[down] = x[up], day, x[down], day
        u1, v1 = u1 * c1 + v1 * s1, v1 * c1 - u1 * s1
        u2, v2 = u2 * c2 + v2 * s2, v2 * c2 - u2 * s2
    return hi, hi_day, lo, lo_day


class SimCoinGecko:
    """Deterministic simulated CoinGecko: ``top_markets(n)`` as a function of (seed, clock).

    Parameters
    ----------
    seed
        Seed of the simulated market (:func:`~resources.exchanges.sim_market.shared_market`) and of
        the synthetic tail.
    clock
        Returns the current aware UTC time; defaults to the wall clock.

    Notes
    -----
    ``top_markets(n)`` draws from the first ``max(TAIL_MIN_SIZE, ceil(n / (1 - TAIL_LATE_SHARE)))``
    tail coins, enough for ``n`` listed coins at any time after GENESIS. Up to n ~ 2000 that is
    one fixed listing, so ``top_markets(m)`` is the first ``m`` rows of ``top_markets(n)``.
    """

    def __init__(self, *, seed: int = 42, clock: Clock | None = None) -> None:
        self.seed = seed
        self._clock: Clock = clock if clock is not None else _utc_now
        self._market: SimMarket = shared_market(seed)
        self._extremes: dict[tuple[str, int], tuple[float, int, float, int]] = {}
        self._tail_cache: dict[tuple[int, int], tuple[np.ndarray, ...]] = {}

    def now(self) -> datetime:
        """The twin's clock (aware UTC)."""
        return self._clock()

    def close(self) -> None:
        """Nothing to release; present for parity with the live client."""

    def top_markets(self, n: int = 2000) -> pl.DataFrame:
        """The ``n`` largest simulated coins by market cap at the clock time, floored to the minute.

        Returns
        -------
        polars.DataFrame
            Exactly :data:`~ml.marketdata.frames.COINGECKO_SCHEMA`, sorted by market cap
            (descending), ``market_cap_rank`` 1..n, one row per ``coin_id``; every timestamp UTC,
            ``last_updated`` = ``snapshot_ts``. Coins not listed yet at the snapshot are absent.
        """
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError(f"naive datetime {now!r} from the clock: it must be timezone-aware")
        snapshot = now.astimezone(UTC).replace(second=0, microsecond=0)
        snap_ms = int(snapshot.timestamp() * 1000)
        if n <= 0 or snap_ms < GENESIS_MS:
            return pl.DataFrame(schema=COINGECKO_SCHEMA)
        rows = pl.concat(
            [self._asset_rows(snap_ms), self._tail_rows(snap_ms, _tail_size(n))],
            how="vertical",
        )
        return (
            rows.sort(["market_cap_usd", "coin_id"], descending=[True, False], nulls_last=True)
            .head(n)
            .with_columns(
                pl.lit(snapshot).cast(COINGECKO_SCHEMA["snapshot_ts"]).alias("snapshot_ts"),
                pl.lit(snapshot).cast(COINGECKO_SCHEMA["last_updated"]).alias("last_updated"),
                pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("market_cap_rank"),
            )
            .select(list(COINGECKO_SCHEMA))
        )

    # -- simulated exchange assets --------------------------------------------------------------
    def _asset_rows(self, snap_ms: int) -> pl.DataFrame:
        today = (snap_ms - GENESIS_MS) // DAY_MS
        columns: dict[str, list[object]] = {name: [] for name in COINGECKO_SCHEMA}
        for asset in self._market.assets:
            if asset.listing_ms > snap_ms:
                continue
            price = self._market.price_at(asset.base, snap_ms)
            day_ago = snap_ms - DAY_MS
            change = (
                (price / self._market.price_at(asset.base, day_ago) - 1.0) * 100.0
                if day_ago >= asset.listing_ms
                else None
            )
            minutes = self._market.minutes(asset.base, day_ago, snap_ms)
            volume_usd = float(np.sum(minutes.volume * minutes.close))
            ath, ath_ms, atl, atl_ms = self._asset_extremes(asset, today)
            total = asset.supply
            row = {
                "coin_id": coin_id_for(asset),
                "symbol": asset.base.lower(),
                "name": asset.name,
                "price_usd": price,
                "market_cap_usd": price * asset.supply,
                "fdv_usd": price * (asset.max_supply or total),
                "total_volume_usd": volume_usd,
                "circulating_supply": asset.supply,
                "total_supply": total,
                "max_supply": asset.max_supply,
                "price_change_pct_24h": change,
                "ath_usd": ath,
                "ath_ts": _ms_to_dt(ath_ms),
                "atl_usd": atl,
                "atl_ts": _ms_to_dt(atl_ms),
            }
            for name in COINGECKO_SCHEMA:
                columns[name].append(row.get(name))
        return pl.DataFrame(columns, schema=COINGECKO_SCHEMA)

    def _asset_extremes(self, asset: SimAsset, today: int) -> tuple[float, int, float, int]:
        """ATH/ATL (USD) and their day's open time (epoch ms) over closed days, cached per day."""
        key = (asset.base, today)
        cached = self._extremes.get(key)
        if cached is not None:
            return cached
        bars = self._market.daily_ohlc(asset.base, GENESIS.date(), _day(today))
        if len(bars) == 0:  # listed today: the listing price is all the history there is
            first = self._market.price_at(asset.base, asset.listing_ms)
            result = (first, asset.listing_ms, first, asset.listing_ms)
        else:
            i_hi, i_lo = int(np.argmax(bars.high)), int(np.argmin(bars.low))
            result = (
                float(bars.high[i_hi]),
                int(bars.ts[i_hi]),
                float(bars.low[i_lo]),
                int(bars.ts[i_lo]),
            )
        self._extremes = {k: v for k, v in self._extremes.items() if k[1] == today}
        self._extremes[key] = result
        return result

    # -- synthetic long tail --------------------------------------------------------------------
    def _tail_rows(self, snap_ms: int, size: int) -> pl.DataFrame:
        today, into_day = divmod(snap_ms - GENESIS_MS, DAY_MS)
        btc_log = self._btc_log(today + 2)
        btc = self._market.asset("BTC")
        tail = _tail(self.seed, size, math.log(btc.anchor_price / btc.start_price))
        hi, hi_day, lo, lo_day = self._tail_history(tail, today, btc_log)

        def log_price_at(day: int, fraction: float) -> np.ndarray:
            ends = _tail_log_price(tail, np.array([day, day + 1]), btc_log)
            return (1.0 - fraction) * ends[0] + fraction * ends[1]

        fraction = into_day / DAY_MS
        price = np.exp(log_price_at(today, fraction))
        before = np.exp(log_price_at(today - 1, fraction)) if today >= 1 else np.full(size, np.nan)
        listed = tail.listing_day <= today
        had_day = tail.listing_day <= today - 1
        cap = price * tail.supply
        total = tail.supply * tail.total_factor
        max_supply = total * tail.max_factor
        fraction_days = today + fraction
        volume = (
            cap * tail.turnover * (1.0 + 0.5 * np.sin(2 * np.pi * fraction_days / 7.0 + tail.ph3))
        )
        number = np.arange(1, size + 1)
        frame = pl.DataFrame(
            {
                "coin_id": [f"simcoin-{i:04d}" for i in number],
                "symbol": [f"sc{i:04d}" for i in number],
                "name": [f"SimCoin {i:04d}" for i in number],
                "price_usd": price,
                "market_cap_usd": cap,
                "fdv_usd": price * np.where(np.isnan(max_supply), total, max_supply),
                "total_volume_usd": volume,
                "circulating_supply": tail.supply,
                "total_supply": total,
                "max_supply": max_supply,
                "price_change_pct_24h": np.where(had_day, (price / before - 1.0) * 100.0, np.nan),
                "ath_usd": np.exp(hi),
                "ath_ts": GENESIS_MS + hi_day * DAY_MS,
                "atl_usd": np.exp(lo),
                "atl_ts": GENESIS_MS + lo_day * DAY_MS,
            }
        ).filter(pl.Series(listed))
        return frame.with_columns(
            pl.col("max_supply", "price_change_pct_24h").fill_nan(None),
            pl.col("ath_ts", "atl_ts").cast(pl.Datetime("ms", "UTC")),
            pl.lit(None, dtype=pl.Int64).alias("market_cap_rank"),
            pl.lit(None, dtype=COINGECKO_SCHEMA["snapshot_ts"]).alias("snapshot_ts"),
            pl.lit(None, dtype=COINGECKO_SCHEMA["last_updated"]).alias("last_updated"),
        ).select(list(COINGECKO_SCHEMA))

    def _tail_history(self, tail: _Tail, today: int, btc_log: np.ndarray) -> tuple[np.ndarray, ...]:
        """Extremes over the closed days before ``today`` (midnights up to today's), cached per day."""
        key = (tail.size, today)
        cached = self._tail_cache.get(key)
        if cached is None:
            cached = _tail_extremes(tail, today, btc_log)
            self._tail_cache = {key: cached}
        return cached

    def _btc_log(self, days: int) -> np.ndarray:
        """log(BTC / BTC at GENESIS) at the first ``days`` UTC midnights since GENESIS."""
        bars = self._market.daily_ohlc("BTC", GENESIS.date(), _day(days))
        return np.log(bars.open / bars.open[0])


def _tail_size(n: int) -> int:
    return max(TAIL_MIN_SIZE, math.ceil(n / (1.0 - TAIL_LATE_SHARE)))


def _day(index: int) -> date:
    return GENESIS.date() + timedelta(days=index)


def _ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
