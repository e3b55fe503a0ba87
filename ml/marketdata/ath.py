"""All-time-high proximity flags for CoinGecko snapshots (pure, no I/O)."""

from __future__ import annotations

import polars as pl

#: The bands, in percent below the all-time high, for which a ``within_<X>pct_of_ath`` flag exists.
ATH_BANDS_PCT: tuple[int, ...] = (5, 10, 15, 90)

_MS_PER_DAY = 86_400_000.0


def ath_drawdown_pct(price: pl.Expr, ath: pl.Expr) -> pl.Expr:
    """Drawdown from the all-time high in percent, clipped at 0: ``max(0, (ath - price) / ath * 100)``.

    Null when ``price`` or ``ath`` is null, or ``ath`` is not positive.
    """
    valid = price.is_not_null() & ath.is_not_null() & (ath > 0)
    raw = (ath - price) / ath * 100.0
    return pl.when(valid).then(raw.clip(lower_bound=0.0)).otherwise(None)


def ath_flags(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the distance from the all-time high to a CoinGecko snapshot frame.

    Parameters
    ----------
    frame
        At least ``snapshot_ts`` and ``ath_ts`` (``Datetime``, UTC), ``price_usd`` and
        ``ath_usd`` (USD), e.g. a :data:`~ml.marketdata.frames.COINGECKO_SCHEMA` frame.

    Returns
    -------
    polars.DataFrame
        ``frame`` with, appended in this order:

        ``days_since_ath`` : Float64
            ``(snapshot_ts - ath_ts)`` in days of 86 400 s (fractional; negative if CoinGecko
            dates the ATH after the snapshot). Null when either timestamp is null.
        ``within_5pct_of_ath``, ``within_10pct_of_ath``, ``within_15pct_of_ath``,
        ``within_90pct_of_ath`` : Boolean
            With the drawdown ``d = max(0, (ath_usd - price_usd) / ath_usd * 100)`` in percent,
            ``within_X = d <= X``. A price above the recorded ATH (possible between CoinGecko
            refreshes) has ``d = 0`` and is within every band. Null when ``price_usd`` or
            ``ath_usd`` is null or NaN, or ``ath_usd <= 0``.

    Notes
    -----
    Guarantees: rows and their order are unchanged; the flags are nested (within 5 implies
    within 10 implies within 15 implies within 90) because they threshold the same number.
    Only the row's own values are used, so no row sees another row or a later snapshot.
    """
    price = pl.col("price_usd").cast(pl.Float64).fill_nan(None)
    ath = pl.col("ath_usd").cast(pl.Float64).fill_nan(None)
    drawdown = ath_drawdown_pct(price, ath)
    elapsed_ms = (pl.col("snapshot_ts") - pl.col("ath_ts")).dt.total_microseconds() / 1000.0
    return frame.with_columns(
        (elapsed_ms.cast(pl.Float64) / _MS_PER_DAY).alias("days_since_ath"),
        *((drawdown <= float(band)).alias(f"within_{band}pct_of_ath") for band in ATH_BANDS_PCT),
    )
