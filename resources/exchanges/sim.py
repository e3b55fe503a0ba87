"""``sim``: the embedded default exchange, a deterministic twin of a crypto exchange.

:class:`SimExchange` implements :class:`~resources.exchanges.base.ExchangeClient` on top of the
simulated world :class:`~resources.exchanges.sim_market.SimMarket`. Every venue name sees the same
world for a given seed; a venue other than ``sim`` lists a deterministic subset of the assets and
quotes them with a tiny deterministic basis (a few bps), so venues differ but each one always
gives the same numbers. The clock is injectable: only candles closed at ``now()`` are returned.

Fault injection (for tests of callers; the simulator is a twin, not the live client):

- ``failing_symbols``: ``fetch_ohlcv`` raises for these symbols (``failure`` picks
  :class:`TransientError`, :class:`RateLimitedError` or :class:`PermanentError`), and
  ``fetch_derivatives`` reports them in its error mapping;
- ``missing_candles``: ``(symbol, open time)`` pairs whose candles the venue does not have, for
  any timeframe (a gap the exchange really has, never forward-filled);
- ``outages``: ``[start, end)`` windows without trading on the venue: no 1-minute candle opens in
  them, and higher timeframes aggregate only the minutes that exist (a candle inside an outage is
  missing).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import polars as pl

from ml.marketdata.frames import DERIVATIVES_SCHEMA, MARKET_SCHEMA, OHLCV_SCHEMA, empty_frame
from ml.marketdata.timeframes import HOUR_MS, from_ms, timeframe_ms, to_ms
from resources.exchanges.errors import (
    MarketDataError,
    PermanentError,
    RateLimitedError,
    TransientError,
    UnknownSymbolError,
)
from resources.exchanges.sim_assets import DEFAULT_UNIVERSE, SimAsset
from resources.exchanges.sim_intraday import Bars
from resources.exchanges.sim_market import SimMarket, shared_market

logger = logging.getLogger(__name__)

QUOTE = "USDT"
FUNDING_INTERVAL_MS = 8 * HOUR_MS
FailureKind = Literal["transient", "rate_limited", "permanent"]

#: Share of each segment's assets a venue other than ``sim`` lists.
VENUE_LISTING_SHARE: dict[str, float] = {"major": 1.0, "alt": 0.85, "meme": 0.6}
#: Share of the perpetuals of its listed assets a venue other than ``sim`` lists.
VENUE_PERP_SHARE = 0.9
#: Largest per-venue price basis, in basis points.
VENUE_MAX_BASIS_BPS = 3.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


def venue_uniform(venue: str, base: str, salt: str) -> float:
    """A deterministic number in [0, 1) for (venue, asset, purpose), stable across processes."""
    digest = hashlib.blake2b(f"{venue}|{base}|{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def venue_lists(venue: str, asset: SimAsset) -> bool:
    """Whether ``venue`` lists ``asset`` (``sim`` lists every asset)."""
    return (
        venue == "sim"
        or venue_uniform(venue, asset.base, "list") < VENUE_LISTING_SHARE[asset.segment]
    )


def venue_lists_perp(venue: str, asset: SimAsset) -> bool:
    """Whether ``venue`` lists the perpetual of ``asset``."""
    if not (asset.has_perp and venue_lists(venue, asset)):
        return False
    return venue == "sim" or venue_uniform(venue, asset.base, "perp") < VENUE_PERP_SHARE


def venue_basis(venue: str, base: str) -> float:
    """Multiplier of every price of ``base`` on ``venue``: 1 on ``sim``, within +-3 bps elsewhere."""
    if venue == "sim":
        return 1.0
    return 1.0 + (2.0 * venue_uniform(venue, base, "basis") - 1.0) * VENUE_MAX_BASIS_BPS * 1e-4


def venue_volume_share(venue: str, base: str) -> float:
    """Multiplier of volumes and open interest of ``base`` on ``venue``: 1 on ``sim``, 0.2-1 elsewhere."""
    if venue == "sim":
        return 1.0
    return 0.2 + 0.8 * venue_uniform(venue, base, "volume")


class SimExchange:
    """A simulated exchange (the embedded default), implementing ``ExchangeClient``.

    Parameters
    ----------
    venue : str
        Venue name, also the client's ``name``; ``"sim"`` lists every simulated asset.
    seed : int
        Seed of the simulated world (shared by every venue with that seed).
    clock : callable returning a timezone-aware datetime, optional
        The exchange's "now"; defaults to the system clock in UTC.
    failing_symbols : iterable of str
        Symbols whose fetches fail with ``failure`` (fault injection for callers' tests).
    failure : {"transient", "rate_limited", "permanent"}
        The error raised for ``failing_symbols``.
    missing_candles : iterable of (symbol, open time)
        Candles the venue does not have; the open time is epoch ms (UTC) or an aware datetime.
    outages : iterable of (start, end)
        Aware datetimes bounding windows with no trading on the venue.
    market : SimMarket, optional
        The world to use; defaults to the process-wide :func:`shared_market` of ``seed`` and
        ``symbols``.
    symbols : int
        Assets in the simulated universe (``SIGNALWORKS_SIM_SYMBOLS``): 87 built in by default,
        up to 2000 with generated small caps; ignored when ``market`` is given.
    """

    def __init__(
        self,
        venue: str = "sim",
        *,
        seed: int = 42,
        clock: Callable[[], datetime] | None = None,
        failing_symbols: Iterable[str] = frozenset(),
        failure: FailureKind = "transient",
        missing_candles: Iterable[tuple[str, int | datetime]] = frozenset(),
        outages: Iterable[tuple[datetime, datetime]] = (),
        market: SimMarket | None = None,
        symbols: int = DEFAULT_UNIVERSE,
    ) -> None:
        if failure not in ("transient", "rate_limited", "permanent"):
            raise ValueError(
                f"failure must be transient, rate_limited or permanent, not {failure!r}"
            )
        self.name = venue
        self.seed = seed
        self.market = market if market is not None else shared_market(seed, symbols)
        self._clock = clock or _utc_now
        self._failing = frozenset(failing_symbols)
        self._failure = failure
        self._missing = frozenset(
            (symbol, moment if isinstance(moment, int) else to_ms(moment))
            for symbol, moment in missing_candles
        )
        self._outages = tuple(sorted((to_ms(a), to_ms(b)) for a, b in outages))
        self._spot = {a.base: a for a in self.market.assets if venue_lists(venue, a)}
        self._perp = {a.base for a in self._spot.values() if venue_lists_perp(venue, a)}

    def __repr__(self) -> str:
        return f"SimExchange(venue={self.name!r}, seed={self.seed})"

    # -- ExchangeClient ---------------------------------------------------------------------------
    def now(self) -> datetime:
        """The injected clock (timezone-aware UTC)."""
        moment = self._clock()
        if moment.tzinfo is None:
            raise ValueError(
                f"the clock returned a naive datetime {moment!r}; it must be timezone-aware"
            )
        return moment.astimezone(UTC)

    def load_markets(self) -> pl.DataFrame:
        """Spot ``BASE/USDT`` for every asset listed by now, ``BASE/USDT:USDT`` where it has a perp.

        ``quote_volume_24h`` is the sum of ``volume * close`` over the last 24 closed hours.
        """
        now_ms = to_ms(self.now())
        hour = now_ms - now_ms % HOUR_MS
        rows = []
        for asset in self._spot.values():
            if asset.listing_ms > now_ms:
                continue
            for perp in (False, True) if asset.base in self._perp else (False,):
                symbol = self._symbol(asset.base, perp)
                bars = self._candles(symbol, asset, perp, "1h", hour - 24 * HOUR_MS, hour)
                volume = float(np.sum(bars.volume * bars.close)) if len(bars) else None
                rows.append(
                    {
                        "exchange": self.name,
                        "symbol": symbol,
                        "base": asset.base,
                        "quote": QUOTE,
                        "settle": QUOTE if perp else None,
                        "market_type": "swap" if perp else "spot",
                        "is_spot": not perp,
                        "contract": perp,
                        "active": True,
                        "quote_volume_24h": volume,
                    }
                )
        return pl.DataFrame(rows, schema=MARKET_SCHEMA) if rows else empty_frame(MARKET_SCHEMA)

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, start: datetime, end: datetime
    ) -> pl.DataFrame:
        """Closed candles of ``symbol`` with ``start <= ts < end``, sorted, one per ``ts``.

        Nothing opens before the asset's listing (>= GENESIS) and nothing that has not closed at
        ``now()`` (open + timeframe <= now) is returned. Raises ``ValueError`` for an unknown
        timeframe or naive datetimes, :class:`UnknownSymbolError` for a symbol the venue does not
        list, and the injected error for ``failing_symbols``.
        """
        step = timeframe_ms(timeframe)
        asset, perp = self._resolve(symbol)
        self._raise_if_failing(symbol)
        start_ms, end_ms, now_ms = to_ms(start), to_ms(end), to_ms(self.now())
        bars = self._candles(
            symbol, asset, perp, timeframe, start_ms, min(end_ms, now_ms - step + 1)
        )
        logger.debug(
            "%s: %d %s candles of %s from %s", self.name, len(bars), timeframe, symbol, start
        )
        return bars.to_frame() if len(bars) else empty_frame(OHLCV_SCHEMA)

    def fetch_derivatives(self, symbols: list[str]) -> tuple[pl.DataFrame, dict[str, str]]:
        """Funding rate, mark price and open interest now for perpetual ``symbols``.

        ``ts`` is now floored to the hour, ``next_funding_ts`` the next 00/08/16 UTC boundary.
        A spot, unknown or failing symbol goes to the error mapping; the others still come back.
        """
        now_ms = to_ms(self.now())
        rows, errors = [], {}
        for symbol in dict.fromkeys(symbols):
            try:
                rows.append(self._derivatives_row(symbol, now_ms))
            except (MarketDataError, ValueError) as error:
                errors[symbol] = str(error)
        if errors:
            logger.warning(
                "%s: derivatives failed for %d of %d symbols", self.name, len(errors), len(symbols)
            )
        frame = (
            pl.DataFrame(rows, schema=DERIVATIVES_SCHEMA)
            if rows
            else empty_frame(DERIVATIVES_SCHEMA)
        )
        return frame, errors

    def close(self) -> None:
        """Nothing to release: the simulator holds no connection."""

    # -- internals --------------------------------------------------------------------------------
    @staticmethod
    def _symbol(base: str, perp: bool) -> str:
        return f"{base}/{QUOTE}:{QUOTE}" if perp else f"{base}/{QUOTE}"

    def _resolve(self, symbol: str) -> tuple[SimAsset, bool]:
        """The asset and whether ``symbol`` is its perpetual; ``UnknownSymbolError`` otherwise."""
        pair, _, settle = symbol.partition(":")
        base, _, quote = pair.partition("/")
        perp = bool(settle)
        asset = self._spot.get(base)
        listed = (
            asset is not None
            and quote == QUOTE
            and (not perp or (settle == QUOTE and base in self._perp))
        )
        if not listed or asset is None:
            raise UnknownSymbolError(
                f"{symbol!r} is not listed on simulated venue {self.name!r}: spot symbols look like "
                f"'BTC/USDT', perpetuals like 'BTC/USDT:USDT'; call load_markets() for the universe",
                source=self.name,
            )
        if asset.listing_ms > to_ms(self.now()):
            raise UnknownSymbolError(
                f"{symbol!r} is not listed yet on {self.name!r} (it lists on {asset.listed_from})",
                source=self.name,
            )
        return asset, perp

    def _raise_if_failing(self, symbol: str) -> None:
        if symbol not in self._failing:
            return
        message = f"simulated {self._failure} failure injected for {symbol} (failing_symbols)"
        if self._failure == "transient":
            raise TransientError(message, source=self.name)
        if self._failure == "rate_limited":
            raise RateLimitedError(message, source=self.name, retry_after=1.0)
        raise PermanentError(message, source=self.name)

    def _candles(
        self, symbol: str, asset: SimAsset, perp: bool, timeframe: str, start_ms: int, end_ms: int
    ) -> Bars:
        """The venue's candles opening in ``[start_ms, end_ms)``: basis, outages and gaps applied."""
        basis, share = venue_basis(self.name, asset.base), venue_volume_share(self.name, asset.base)

        def venue_minutes(bars: Bars) -> Bars:
            for lo, hi in self._outages:
                if len(bars) and lo <= bars.ts[-1] and hi > bars.ts[0]:
                    bars = bars.take((bars.ts < lo) | (bars.ts >= hi))
            return bars.scaled(basis, share)

        bars = self.market.candles(
            asset.base, timeframe, start_ms, end_ms, perp=perp, minute_filter=venue_minutes
        )
        if self._missing:
            gone = [ts for sym, ts in self._missing if sym == symbol]
            if gone:
                bars = bars.take(~np.isin(bars.ts, np.asarray(gone, dtype=np.int64)))
        return bars

    def _derivatives_row(self, symbol: str, now_ms: int) -> dict[str, object]:
        asset, perp = self._resolve(symbol)
        if not perp:
            raise PermanentError(
                f"{symbol!r} is a spot market: derivatives exist only for perpetuals such as "
                f"'{asset.base}/{QUOTE}:{QUOTE}'",
                source=self.name,
            )
        if symbol in self._failing:
            self._raise_if_failing(symbol)
        mark = self.market.price_at(asset.base, now_ms, perp=True) * venue_basis(
            self.name, asset.base
        )
        contracts = self.market.open_interest(asset.base, now_ms) * venue_volume_share(
            self.name, asset.base
        )
        return {
            "exchange": self.name,
            "symbol": symbol,
            "ts": from_ms(now_ms - now_ms % HOUR_MS),
            "funding_rate": self.market.funding_rate(asset.base, now_ms),
            "next_funding_ts": from_ms((now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS),
            "mark_price": mark,
            "open_interest": contracts,
            "open_interest_value": contracts * mark,
        }
