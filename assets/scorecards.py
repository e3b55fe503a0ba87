"""``scorecards``: how published signals did, per strategy, symbol, source and publisher; and the
daily digest of the previous UTC day's scorecard to a Telegram chat.

Both read ``signal_outcomes`` (:func:`resources.warehouse.outcomes.read_signal_outcomes`, one row per
signal and publisher that sent it) over a window of publication times and compute
:func:`ml.signals.scorecards.scorecard` from its long form
(:func:`ml.signals.outcome_rows.outcomes_long`). Returns are net of costs and direction-aware;
a horizon not elapsed yet counts as pending, not as a return.
"""

import os
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
from dagster import (
    AssetExecutionContext,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    asset,
    op,
)
from pydantic import Field

from assets.metadata import plot_metadata, table_metadata
from assets.publishing import PublishersResource
from ml.signals.outcome_rows import outcomes_long
from ml.signals.scorecards import GROUP_KEYS, digest_text, scorecard
from resources.clock import parse_instant
from resources.social_config import DigestConfig
from resources.social_resources import SocialConfigResource
from resources.warehouse.outcomes import read_signal_outcomes
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.store import Warehouse

ONE_DAY = timedelta(days=1)


class ScorecardsConfig(Config):
    """The window of publication times the scorecards cover."""

    days: float = Field(default=30.0, gt=0, description="days of published signals, ending at as_of")
    as_of: str = Field(default="", description="ISO UTC instant the window ends at (empty: now)")


def scorecards_of(store: Warehouse, *, start: datetime, end: datetime) -> tuple[dict[str, pl.DataFrame], int]:
    """Scorecards of the signals published in ``[start, end)``: ``overall`` and one per group key
    (``strategy``, ``symbol``, ``source``, ``publisher``); and the number of (signal, publisher) rows."""
    outcomes = read_signal_outcomes(store, published_from=start, published_to=end)
    long = outcomes_long(outcomes)
    cards = {"overall": scorecard(long, [])} | {key: scorecard(long, [key]) for key in GROUP_KEYS}
    return cards, outcomes.height


def scorecard_metadata(cards: dict[str, pl.DataFrame], rows: int, start: datetime, end: datetime
                       ) -> dict[str, MetadataValue]:
    """A table per scorecard; mean return (± one standard error) and win rate by horizon per
    strategy, and mean return by horizon per publisher, as plots (when anything is settled)."""
    from ml.reporting.scorecard_plots import by_horizon_png

    metadata: dict[str, MetadataValue] = {
        "window": MetadataValue.text(f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC"),
        "published": MetadataValue.int(rows),
        "settled_15m": MetadataValue.int(int(cards["overall"].filter(pl.col("horizon_minutes") == 15)["signals"].sum())),
    }
    for name, card in cards.items():
        metadata[f"by_{name}" if name != "overall" else "overall"] = table_metadata(card)
    plots = (("strategy", "mean_return", "mean net return (%)", True), ("strategy", "win_rate", "win rate (%)", False),
             ("publisher", "mean_return", "mean net return (%)", True))
    for key, statistic, label, error_bars in plots:
        if cards[key]["signals"].sum() > 0:
            png = by_horizon_png(cards[key], key=key, statistic=statistic, error_bars=error_bars, ylabel=label,
                                 title=f"{label.split(' (')[0].capitalize()} by horizon, per {key}")
            metadata[f"{statistic}_by_{key}"] = plot_metadata(png, f"{statistic} by horizon per {key}")
    return metadata


@asset(
    name="scorecards",
    deps=["signal_outcomes"],
    group_name="signals",
    kinds={"polars"},
    description="Per strategy, symbol, source and publisher: signals, win rate, mean and median net return per "
    "horizon (+1..15 min), expectancy, t-statistic and p-value, over the published signals of the last `days` "
    "days; tables and plots.",
)
def scorecards(context: AssetExecutionContext, config: ScorecardsConfig,
               warehouse: WarehouseResource) -> MaterializeResult:
    end = parse_instant(config.as_of) if config.as_of else datetime.now(UTC)
    start = end - timedelta(days=config.days)
    cards, rows = scorecards_of(warehouse.store(), start=start, end=end)
    context.log.info("scorecards over %d published (signal, publisher) rows from %s to %s", rows, start, end)
    return MaterializeResult(metadata=scorecard_metadata(cards, rows, start, end))


# -- the daily digest ------------------------------------------------------------------------------
def digest_message(store: Warehouse, day: date, digest: DigestConfig) -> str:
    """Telegram HTML of the scorecard of the signals published on ``day`` (UTC), grouped by
    ``digest.group_by``, ranked at ``digest.horizon_minutes``."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    long = outcomes_long(read_signal_outcomes(store, published_from=start, published_to=start + ONE_DAY))
    card = scorecard(long, list(digest.group_by))
    return digest_text(card, title=f"Signalworks scorecard {day.isoformat()} (UTC)",
                       horizon=digest.horizon_minutes, top=digest.top)


def send_digest(text: str, digest: DigestConfig, *, base_url: str) -> str:
    """Send ``text`` to the digest chat through the Bot API, behind Telegram's flood limits; returns
    ``chat:message`` of the message Telegram accepted."""
    from resources.publishers.flood import FloodGate
    from resources.publishers.render import fit_message
    from resources.publishers.telegram_bot import TelegramBotClient

    token = os.environ.get(digest.token_env)
    if not token:
        raise Failure(f"the scorecard digest needs a Telegram bot token: set the environment variable "
                      f"{digest.token_env} (digest.token_env in the sources config)")
    with TelegramBotClient(token, base_url=base_url, flood=FloodGate()) as client:
        sent = client.send_message(digest.chat_id, fit_message(text), chat_kind=digest.chat_kind)
    return f"{sent.chat_id}:{sent.message_id}"


class DigestRunConfig(Config):
    day: str = Field(default="", description="UTC day (YYYY-MM-DD) whose published signals are reported "
                     "(empty: yesterday)")


@op(name="send_scorecard_digest")
def send_scorecard_digest(context: OpExecutionContext, config: DigestRunConfig, warehouse: WarehouseResource,
                          social_config: SocialConfigResource, publishers: PublishersResource) -> Any:
    """The previous UTC day's scorecard to the chat of ``digest`` in the sources config (nothing
    when there is no enabled ``digest`` entry)."""
    digest = social_config.load().digest
    if digest is None or not digest.enabled:
        context.log.info("no enabled digest entry in %s: nothing sent", social_config.config_path)
        return None
    day = date.fromisoformat(config.day) if config.day else (datetime.now(UTC) - ONE_DAY).date()
    text = digest_message(warehouse.store(), day, digest)
    reference = send_digest(text, digest, base_url=publishers.telegram_base_url)
    context.log.info("scorecard digest of %s sent to %s (%s)", day, digest.chat_id, reference)
    return reference
