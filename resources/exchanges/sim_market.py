"""The simulated crypto market: a pure function of (seed, asset, timestamp).

:class:`SimMarket` is the world behind every ``sim`` venue and the CoinGecko / DexScreener twins.
Generation is hierarchical: a daily process per asset (:mod:`resources.exchanges.sim_daily`,
O(days since GENESIS) once per asset, cached) fixes each UTC day's open and close; a seeded
Brownian bridge (:mod:`resources.exchanges.sim_intraday`) fills the day's 1440 minutes, O(1 day)
per (asset, day) and kept in a small LRU cache. Higher timeframes aggregate the 1-minute path
exactly. Nothing here reads a clock: "closed candles only" is the exchange client's business.

All timestamps are epoch milliseconds UTC and mark the *open* of a candle; prices are USD (USDT),
volumes base units.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date

import numpy as np
import polars as pl

from ml.marketdata.timeframes import DAY_MS, MINUTE_MS, timeframe_ms
from resources.exchanges.sim_assets import (
    DEFAULT_UNIVERSE,
    FACTOR_BASE,
    GENESIS,
    GENESIS_MS,
    SIM_ASSETS,
    SimAsset,
    sim_universe,
)
from resources.exchanges.sim_daily import (
    TAG_DERIVATIVES,
    TAG_INTRADAY,
    DailyPath,
    RegimeChain,
    SimParams,
    rng_for,
)
from resources.exchanges.sim_intraday import (
    MINUTES_PER_DAY,
    Bars,
    DayPath,
    aggregate,
    day_bars,
    empty_bars,
    generate_day,
)

logger = logging.getLogger(__name__)

__all__ = ["GENESIS", "SIM_ASSETS", "Bars", "SimAsset", "SimMarket", "SimParams", "shared_market"]

#: Candles are generated and aggregated this many days at a time, which bounds memory.
CHUNK_DAYS = 32


def _ceil(ms: int, step: int) -> int:
    return -(-ms // step) * step


class SimMarket:
    """The deterministic simulated market.

    Parameters
    ----------
    seed : int
        Non-negative seed; two markets with the same seed are identical everywhere.
    params : SimParams, optional
        Model parameters (defaults: :class:`~resources.exchanges.sim_daily.SimParams`).
    cache_days : int
        How many (asset, day) minute paths to keep (about 58 KB each).
    symbols : int
        Size of the universe (:func:`~resources.exchanges.sim_assets.sim_universe`): the 87
        built-in assets by default, up to 2000 with the generated tail. An asset's candles do not
        depend on the universe size.

    Notes
    -----
    Thread-safe; memory is the per-asset daily cache (a few floats per day since listing) plus
    at most ``cache_days`` minute paths, whatever range is asked for.
    """

    def __init__(
        self,
        seed: int = 42,
        params: SimParams | None = None,
        *,
        cache_days: int = 512,
        symbols: int = DEFAULT_UNIVERSE,
    ) -> None:
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        self.seed = seed
        self._assets = sim_universe(symbols)
        self._by_base = {asset.base: asset for asset in self._assets}
        self.params = params or SimParams()
        self._cache_days = cache_days
        self._lock = threading.RLock()
        self._regime = RegimeChain(seed, self.params)
        self._daily: dict[str, DailyPath] = {}
        self._paths: OrderedDict[tuple[str, int], DayPath] = OrderedDict()
        self._noise: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()

    # -- universe ---------------------------------------------------------------------------------
    @property
    def assets(self) -> tuple[SimAsset, ...]:
        """Every simulated asset of this universe, majors first."""
        return self._assets

    def asset(self, base: str) -> SimAsset:
        """The asset with ticker ``base``; ``KeyError`` for an unknown ticker."""
        try:
            return self._by_base[base]
        except KeyError:
            raise KeyError(f"{base!r} is not a simulated asset") from None

    def listing_ms(self, base: str) -> int:
        """First trading instant of ``base`` (epoch ms UTC, a UTC midnight >= GENESIS)."""
        return self.asset(base).listing_ms

    # -- candles ----------------------------------------------------------------------------------
    def minutes(self, base: str, start_ms: int, end_ms: int, *, perp: bool = False) -> Bars:
        """1-minute candles of ``base`` opening in ``[start_ms, end_ms)`` (nothing before listing).

        With ``perp`` the perpetual's candles: spot prices times (1 + hourly premium), volume
        times ``params.perp_volume_factor``. Open of each minute equals the previous close exactly.
        """
        asset = self.asset(base)
        lo = _ceil(max(start_ms, asset.listing_ms), MINUTE_MS)
        if lo >= end_ms:
            return empty_bars()
        parts = []
        for g in range((lo - GENESIS_MS) // DAY_MS, (end_ms - 1 - GENESIS_MS) // DAY_MS + 1):
            day_ms = GENESIS_MS + g * DAY_MS
            path = self.day_path(base, g)
            factors = self._perp_factors(base, g, path) if perp else None
            bars = day_bars(path, day_ms, factors)
            i0 = max(0, (lo - day_ms) // MINUTE_MS)
            i1 = min(MINUTES_PER_DAY, _ceil(end_ms - day_ms, MINUTE_MS) // MINUTE_MS)
            parts.append(bars.take(slice(i0, i1)))
        out = Bars.concat(parts)
        return out.scaled(1.0, self.params.perp_volume_factor) if perp else out

    def candles(
        self,
        base: str,
        timeframe: str,
        start_ms: int,
        end_ms: int,
        *,
        perp: bool = False,
        minute_filter: Callable[[Bars], Bars] | None = None,
    ) -> Bars:
        """Candles of ``timeframe`` opening in ``[start_ms, end_ms)``, aggregated from 1 minute.

        The first candle opens at or after the listing, so none contains time before it.
        ``minute_filter`` (optional) maps the 1-minute bars before aggregation (a venue's basis,
        an outage that removes minutes). Generated ``CHUNK_DAYS`` at a time, so memory is bounded
        whatever the range. Raises ``ValueError`` for an unknown timeframe.
        """
        step = timeframe_ms(timeframe)
        lo = _ceil(max(start_ms, self.listing_ms(base)), step)
        hi = _ceil(end_ms, step)
        chunk = step * max(1, CHUNK_DAYS * DAY_MS // step)
        parts = []
        for a in range(lo, hi, chunk):
            bars = self.minutes(base, a, min(a + chunk, hi), perp=perp)
            parts.append(aggregate(minute_filter(bars) if minute_filter else bars, step))
        return Bars.concat(parts)

    def ohlcv(
        self, base: str, timeframe: str, start_ms: int, end_ms: int, *, perp: bool = False
    ) -> pl.DataFrame:
        """:meth:`candles` as a frame with schema :data:`ml.marketdata.frames.OHLCV_SCHEMA`."""
        return self.candles(base, timeframe, start_ms, end_ms, perp=perp).to_frame()

    def price_at(self, base: str, ts_ms: int, *, perp: bool = False) -> float:
        """Last price at ``ts_ms``: the open of the minute containing it (USD).

        Only minutes that opened by ``ts_ms`` matter, so the value never depends on the future.
        """
        asset = self.asset(base)
        if ts_ms < asset.listing_ms:
            raise ValueError(f"{base} does not trade before {asset.listing_ms} ms (its listing)")
        g, minute = divmod((ts_ms - GENESIS_MS) // MINUTE_MS, MINUTES_PER_DAY)
        path = self.day_path(base, g)
        price = float(np.exp(path.logp[minute]))  # the same operation as the candles use
        if perp:
            price *= 1.0 + self._hour_premiums(base, g, path)[minute // 60]
        return price

    # -- daily view -------------------------------------------------------------------------------
    def daily_ohlc(self, base: str, start_day: date, end_day: date, *, exact: bool = False) -> Bars:
        """Daily candles of ``base`` for UTC days in ``[start_day, end_day)`` (from listing on).

        Open and close are exact: they equal the 1d candles aggregated from the minute path. By
        default high, low and volume are cheap model-consistent estimates (no minute path is drawn):
        high / low are drawn from the extreme-value law of a Brownian bridge with the day's sigma
        (always ``low <= min(open, close)`` and ``high >= max(open, close)``), volume is the day's
        expected volume in base units. ``exact=True`` aggregates the minute path instead
        (~1440 times the work). ``ts`` is the day's open time (UTC midnight, epoch ms).
        """
        if exact:
            lo = GENESIS_MS + (start_day - GENESIS.date()).days * DAY_MS
            hi = GENESIS_MS + (end_day - GENESIS.date()).days * DAY_MS
            return self.candles(base, "1d", lo, hi)
        asset = self.asset(base)
        g_lo = max((start_day - GENESIS.date()).days, asset.listing_day)
        g_hi = (end_day - GENESIS.date()).days
        if g_lo >= g_hi:
            return empty_bars()
        daily = self._daily_path(base)
        with self._lock:
            daily.ensure(g_hi - daily.g0)
        k = np.arange(g_lo, g_hi) - daily.g0
        x0, x1 = daily.logp[k], daily.logp[k + 1]
        ret, var = x1 - x0, daily.sigma_total[k] ** 2
        u = 1.0 - daily.hl_draws[k]  # in (0, 1]
        up = (ret + np.sqrt(ret**2 - 2 * var * np.log(u[:, 0]))) / 2
        down = (-ret + np.sqrt(ret**2 - 2 * var * np.log(u[:, 1]))) / 2
        ts = GENESIS_MS + np.arange(g_lo, g_hi, dtype=np.int64) * DAY_MS
        return Bars(
            ts,
            np.exp(x0),
            np.exp(x0 + up),
            np.exp(x0 - down),
            np.exp(x1),
            daily.volume_usd[k] / np.exp(x0),
        )

    def daily_closes(self, base: str, until_day: date) -> tuple[np.ndarray, np.ndarray]:
        """Open times (epoch ms UTC) and closes (USD) of every day from listing to ``until_day``
        inclusive. Cheap: reads the daily process only."""
        bars = self.daily_ohlc(base, GENESIS.date(), date.fromordinal(until_day.toordinal() + 1))
        return bars.ts, bars.close

    # -- derivatives ------------------------------------------------------------------------------
    def premium(self, base: str, ts_ms: int) -> float:
        """Perpetual premium over spot (fraction) during the hour containing ``ts_ms``.

        Driven by the ~3-day log return up to the hour's start plus noise; uses nothing later.
        """
        g, minute = divmod((ts_ms - GENESIS_MS) // MINUTE_MS, MINUTES_PER_DAY)
        return float(self._hour_premiums(base, g, self.day_path(base, g))[minute // 60])

    def funding_rate(self, base: str, ts_ms: int) -> float:
        """Predicted funding rate (per 8 h, fraction) of the interval containing ``ts_ms``.

        Binance-style: ``F = P + clamp(0.0001 - P, +-0.0005)`` where ``P`` is the mean premium of
        the interval's hours so far (00/08/16 UTC boundaries), then clipped to +-0.0075.
        """
        p = self.params
        g, minute = divmod((ts_ms - GENESIS_MS) // MINUTE_MS, MINUTES_PER_DAY)
        hour = minute // 60
        premiums = self._hour_premiums(base, g, self.day_path(base, g))
        mean = float(np.mean(premiums[hour - hour % 8 : hour + 1]))
        gap = p.premium_base - mean
        if abs(gap) <= p.funding_clamp:
            return p.premium_base  # exactly the neutral rate, as on real exchanges
        rate = mean + math.copysign(p.funding_clamp, gap)
        return min(max(rate, -p.funding_cap), p.funding_cap)

    def open_interest(self, base: str, ts_ms: int) -> float:
        """Open interest of the perpetual at ``ts_ms`` in base units (contracts of 1 base unit).

        Its USD value is a segment's share of the market cap at the hour's start
        (``params.oi_mcap_share``: 0.5 % majors, 1.5 % alts, 4 % memes), times the square root of
        the trailing 10-day trading activity relative to normal (clipped to
        ``params.oi_activity_range``), times the 7-day trend factor and 2 % hourly noise: so it
        stays a plausible fraction of the market cap whatever the price or volume does. It uses
        nothing after the hour containing ``ts_ms``.
        """
        p = self.params
        asset = self.asset(base)
        daily = self._daily_path(base)
        g, minute = divmod((ts_ms - GENESIS_MS) // MINUTE_MS, MINUTES_PER_DAY)
        path = self.day_path(base, g)  # also extends the daily cache through day g
        k = g - daily.g0
        days = slice(max(0, k - 10), max(k, 1))
        normal = p.turnover_of(asset.segment) * asset.supply * np.exp(daily.logp[days])
        activity = float(np.mean(daily.volume_usd[days] / normal))
        trend = daily.logp[k] - daily.logp[max(0, k - 7)]
        hour = minute // 60
        value = (
            p.oi_share_of(asset.segment)
            * asset.supply
            * math.exp(path.logp[60 * hour])
            * min(max(math.sqrt(activity), p.oi_activity_range[0]), p.oi_activity_range[1])
            * (1.0 + p.oi_momentum * math.tanh(5.0 * trend))
            * (1.0 + 0.02 * self._hour_noise(base, g)[1, hour])
        )
        return value / self.price_at(base, ts_ms, perp=True)

    # -- caches -----------------------------------------------------------------------------------
    @property
    def cached_day_paths(self) -> int:
        """How many (asset, day) minute paths the cache holds (at most ``cache_days``)."""
        return len(self._paths)

    def day_path(self, base: str, g: int) -> DayPath:
        """Minute path of ``base`` on UTC day ``g`` (days since GENESIS), cached."""
        key = (base, g)
        with self._lock:
            path = self._paths.get(key)
            if path is not None:
                self._paths.move_to_end(key)
                return path
            asset = self.asset(base)
            daily = self._daily_path(base)
            k = g - daily.g0
            if k < 0:
                raise ValueError(f"{base} does not trade on day {g} (listed on day {daily.g0})")
            daily.ensure(k + 1)
            factor = None if base == FACTOR_BASE else self.day_path(FACTOR_BASE, g)
            x_open = float(daily.logp[k])
            path = generate_day(
                rng_for(self.seed, TAG_INTRADAY, asset.asset_id, g),
                self.params,
                x_open=x_open,
                x_close=float(daily.logp[k + 1]),
                sigma=float(daily.sigma[k]),
                volume_per_minute=float(daily.volume_usd[k]) / math.exp(x_open) / MINUTES_PER_DAY,
                segment=asset.segment,
                factor=factor,
                beta=asset.beta,
            )
            self._paths[key] = path
            if len(self._paths) > self._cache_days:
                self._paths.popitem(last=False)
            return path

    def _daily_path(self, base: str) -> DailyPath:
        with self._lock:
            daily = self._daily.get(base)
            if daily is None:
                asset = self.asset(base)
                factor = None if base == FACTOR_BASE else self._daily_path(FACTOR_BASE)
                daily = DailyPath(asset, self.seed, self.params, self._regime, factor)
                self._daily[base] = daily
                logger.debug("sim market seed %d: daily process for %s", self.seed, base)
            return daily

    def _hour_noise(self, base: str, g: int) -> np.ndarray:
        """Standard normals (2, 24) for day ``g``: premium noise and open-interest noise."""
        key = (base, g)
        with self._lock:
            noise = self._noise.get(key)
            if noise is None:
                noise = rng_for(
                    self.seed, TAG_DERIVATIVES, self.asset(base).asset_id, g
                ).standard_normal((2, 24))
                self._noise[key] = noise
                if len(self._noise) > 4 * self._cache_days:
                    self._noise.popitem(last=False)
            return noise

    def _hour_premiums(self, base: str, g: int, path: DayPath) -> np.ndarray:
        """Premiums of the 24 hours of day ``g`` and of hour 0 of day ``g + 1`` (25 values)."""
        p = self.params
        daily = self._daily_path(base)
        k = g - daily.g0
        x_hours = path.logp[::60]  # 25 boundaries: 00:00 ... next 00:00
        lag = daily.logp[np.maximum(0, np.array([k - 3] * 24 + [k - 2]))]
        noise = np.concatenate([self._hour_noise(base, g)[0], self._hour_noise(base, g + 1)[0, :1]])
        raw = p.premium_base + p.premium_momentum * (x_hours - lag) + p.premium_noise * noise
        return np.clip(raw, -p.premium_cap, p.premium_cap)

    def _perp_factors(self, base: str, g: int, path: DayPath) -> np.ndarray:
        """1 + premium at each of the day's 1441 minute boundaries."""
        premiums = self._hour_premiums(base, g, path)
        return 1.0 + premiums[np.arange(MINUTES_PER_DAY + 1) // 60]


@functools.lru_cache(maxsize=8)
def shared_market(seed: int = 42, symbols: int = DEFAULT_UNIVERSE) -> SimMarket:
    """One :class:`SimMarket` per (seed, universe size) per process, so clients share caches."""
    return SimMarket(seed, symbols=symbols)
