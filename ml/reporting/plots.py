"""Plots as PNG bytes: data in, bytes out, nothing written anywhere.

Every function draws on its own ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot, no
global state, safe in threads), at a fixed size of :data:`FIGURE_SIZE` inches and :data:`DPI`
dots per inch, and saves it without the ``Software`` metadata entry, so equal input gives equal
bytes for a given matplotlib version. Time axes are UTC: timestamps are converted to UTC (naive
ones are taken as UTC) and labelled "time (UTC)". matplotlib is imported inside the functions,
so importing this module costs nothing.

Empty input (no rows, no series) raises ``ValueError`` saying what is missing, as do mismatched
lengths and non-finite values where a number is required.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Figure size in inches (width, height) and resolution: 1000 x 500 pixels.
FIGURE_SIZE = (10.0, 5.0)
DPI = 100
#: Quantiles marked by :func:`distribution_png` unless told otherwise.
DEFAULT_QUANTILES = (0.01, 0.05, 0.5, 0.95, 0.99)

Timestamps = Sequence[datetime] | pl.Series | NDArray[Any]


def _utc_times(ts: Timestamps, name: str = "ts") -> NDArray[np.datetime64]:
    """``datetime64[ms]`` in UTC (naive) from aware datetimes, a polars Datetime series or datetime64."""
    if isinstance(ts, pl.Series):
        if not isinstance(ts.dtype, pl.Datetime):
            raise ValueError(f"{name} must be a Datetime series, got {ts.dtype}")
        if ts.dtype.time_zone is not None:  # type: ignore[union-attr]
            ts = ts.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        values = ts.cast(pl.Datetime("ms")).to_numpy()
    elif isinstance(ts, np.ndarray) and np.issubdtype(ts.dtype, np.datetime64):
        values = ts.astype("datetime64[ms]")
    else:
        values = np.array([(t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t) for t in ts],
                          dtype="datetime64[ms]")
    if values.size == 0:
        raise ValueError(f"{name} is empty: nothing to plot")
    if np.isnat(values).any():
        raise ValueError(f"{name} holds a missing timestamp")
    return values


def _finite(values: ArrayLike, name: str, length: int | None = None) -> NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty one-dimensional series, got shape {array.shape}")
    if length is not None and array.size != length:
        raise ValueError(f"{name} has {array.size} values for {length} timestamps")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has a non-finite value at index {int(np.argmax(~np.isfinite(array)))}")
    return array


def _figure() -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGURE_SIZE, dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    axes.grid(True, alpha=0.3)
    return figure, axes


def _utc_axis(axes: Axes) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(tz=UTC)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    axes.set_xlabel("time (UTC)")


def _png(figure: Figure) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def equity_curves_png(ts: Timestamps, net_returns: Mapping[str, ArrayLike], *,
                      title: str = "Out-of-sample equity, net of costs") -> bytes:
    """Wealth curves (start 1, ``cumprod(1 + r)``) of several strategies over the same bars.

    Parameters
    ----------
    ts
        Bar times (UTC), one per return, in order.
    net_returns
        Series name -> net simple returns per bar (fees and slippage paid), e.g. ``strategy``,
        ``buy_and_hold``, ``always_flat``, ``permuted_labels``. Drawn in the mapping's order.
    """
    times = _utc_times(ts)
    if not net_returns:
        raise ValueError("net_returns is empty: give at least one series")
    curves = {name: np.cumprod(1.0 + _finite(r, f"net_returns[{name!r}]", times.size))
              for name, r in net_returns.items()}
    figure, axes = _figure()
    for name, curve in curves.items():
        axes.plot(times, curve, label=f"{name} ({curve[-1] - 1:+.1%})", linewidth=1.2)
    axes.axhline(1.0, color="black", linewidth=0.6)
    axes.set_ylabel("wealth (start = 1)")
    axes.set_title(title)
    axes.legend(loc="best", fontsize=9)
    _utc_axis(axes)
    return _png(figure)


def drawdown_png(ts: Timestamps, net_returns: ArrayLike, *, label: str = "strategy",
                 title: str = "Drawdown from running peak, net of costs") -> bytes:
    """Drawdown after each bar (``wealth / running peak - 1``, the start counting as a peak), as %."""
    times = _utc_times(ts)
    returns = _finite(net_returns, "net_returns", times.size)
    path = np.concatenate(([1.0], np.cumprod(1.0 + returns)))
    drawdown = (path / np.maximum.accumulate(path) - 1.0)[1:] * 100.0
    figure, axes = _figure()
    axes.fill_between(times, drawdown, 0.0, color="tab:red", alpha=0.35, step="post")
    axes.plot(times, drawdown, color="tab:red", linewidth=0.8,
              label=f"{label} (max {drawdown.min():.1f} %)")
    axes.set_ylabel("drawdown (%)")
    axes.set_title(title)
    axes.legend(loc="lower left", fontsize=9)
    _utc_axis(axes)
    return _png(figure)


def reliability_png(tables: Mapping[str, pl.DataFrame], *,
                    title: str = "Reliability of the top-class probability") -> bytes:
    """Reliability curves (mean confidence against accuracy per bin) on one plot, with the diagonal.

    ``tables`` maps a curve name (e.g. ``before calibration``, ``after calibration``) to a frame of
    :func:`ml.models.calibration.reliability_table`; empty bins are skipped, a bin's marker size
    grows with its row count.
    """
    if not tables:
        raise ValueError("tables is empty: give at least one reliability table")
    figure, axes = _figure()
    axes.plot([0.0, 1.0], [0.0, 1.0], color="grey", linestyle="--", linewidth=0.8, label="perfectly calibrated")
    for name, table in tables.items():
        missing = {"mean_confidence", "accuracy", "count"} - set(table.columns)
        if missing:
            raise ValueError(f"reliability table {name!r} lacks columns {sorted(missing)}")
        filled = table.filter(pl.col("count") > 0)
        if filled.is_empty():
            raise ValueError(f"reliability table {name!r} has no non-empty bin")
        counts = filled.get_column("count").to_numpy()
        axes.plot(filled.get_column("mean_confidence").to_numpy(), filled.get_column("accuracy").to_numpy(),
                  marker="o", linewidth=1.2, markersize=4, label=f"{name} ({int(counts.sum())} rows)")
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.0)
    axes.set_xlabel("mean predicted probability of the top class")
    axes.set_ylabel("observed frequency (accuracy)")
    axes.set_title(title)
    axes.legend(loc="upper left", fontsize=9)
    return _png(figure)


def regime_timeline_png(ts: Timestamps, close: ArrayLike, regimes: Sequence[str] | pl.Series, *,
                        title: str = "Close price and regime") -> bytes:
    """Close price (log scale when strictly positive) with each bar's regime shaded behind it.

    ``regimes`` holds one label per bar (e.g. ``Bull trend``); each distinct label gets a colour,
    in order of first appearance, and one legend entry.
    """
    times = _utc_times(ts)
    prices = _finite(close, "close", times.size)
    labels = [str(r) for r in (regimes.to_list() if isinstance(regimes, pl.Series) else regimes)]
    if len(labels) != times.size:
        raise ValueError(f"regimes has {len(labels)} labels for {times.size} timestamps")
    import matplotlib.colors as mcolors
    from matplotlib.patches import Patch

    palette = list(mcolors.TABLEAU_COLORS.values())
    colours: dict[str, str] = {}
    for label in labels:
        colours.setdefault(label, palette[len(colours) % len(palette)])
    step = np.diff(times).min() if times.size > 1 else np.timedelta64(1, "h")
    edges = np.concatenate([times, [times[-1] + step]])
    figure, axes = _figure()
    start = 0
    for index in range(1, len(labels) + 1):
        if index == len(labels) or labels[index] != labels[start]:
            axes.axvspan(edges[start], edges[index], color=colours[labels[start]], alpha=0.25, linewidth=0)
            start = index
    axes.plot(times, prices, color="black", linewidth=0.9)
    if np.all(prices > 0):
        from matplotlib.ticker import FuncFormatter

        axes.set_yscale("log")
        plain = FuncFormatter(lambda value, _: f"{value:g}")  # 90, not 9 x 10^1
        axes.yaxis.set_major_formatter(plain)
        if prices.max() / prices.min() < 10:  # within a decade the minor ticks are the only labels
            axes.yaxis.set_minor_formatter(plain)
    axes.set_ylabel("close")
    axes.set_title(title)
    axes.legend(handles=[Patch(color=c, alpha=0.4, label=name) for name, c in colours.items()],
                loc="best", fontsize=9)
    _utc_axis(axes)
    return _png(figure)


def distribution_png(values: ArrayLike, *, quantiles: Sequence[float] = DEFAULT_QUANTILES,
                     title: str = "Distribution", xlabel: str = "value", bins: int = 60) -> bytes:
    """Histogram of ``values`` with vertical lines at the given ``quantiles`` (each in (0, 1)),
    labelled with the quantile and its value, e.g. Monte Carlo maximum drawdowns or terminal
    returns."""
    data = _finite(values, "values")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    levels = [float(q) for q in quantiles]
    if any(not (0.0 < q < 1.0) or math.isnan(q) for q in levels):
        raise ValueError(f"quantiles must lie in (0, 1), got {levels}")
    figure, axes = _figure()
    axes.hist(data, bins=bins, color="tab:blue", alpha=0.7)
    for level, value in zip(levels, np.quantile(data, levels), strict=True):
        axes.axvline(value, color="tab:red", linewidth=0.9, linestyle="--")
        axes.annotate(f"q{level:g}: {value:.4g}", xy=(value, 1.0), xycoords=("data", "axes fraction"),
                      rotation=90, va="top", ha="right", fontsize=8)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("count")
    axes.set_title(f"{title} ({data.size} values)")
    return _png(figure)
