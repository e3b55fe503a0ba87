"""``config/sources.yaml``: what to listen to, how to weigh it, where to publish.

Typed and frozen; secrets are never in the file, only the *names* of the environment variables
that hold them (``*_env`` fields).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    field_validator,
)

from ml.signals.routing import MAX_SIGNAL_AGE_S


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChannelConfig(_Frozen):
    """A channel / account to follow and how much its calls weigh (0..1]."""

    id: str = Field(description="Telegram @username or numeric id; Discord channel id; X handle")
    weight: float = Field(default=1.0, gt=0, le=1)
    window_s: NonNegativeFloat | None = Field(default=None, description="overrides the source's window")
    name: str | None = None


class ReplaySourceConfig(_Frozen):
    enabled: bool = True
    path: Path | None = Field(default=None, description="JSONL stream; default: the bundled synthetic stream")
    speed: PositiveFloat = Field(default=1.0, description="1 = real time, 60 = a minute per second")
    loop: bool = False
    window_s: NonNegativeFloat = 60.0
    channels: tuple[ChannelConfig, ...] = ()


class TelegramSourceConfig(_Frozen):
    enabled: bool = False
    session: str = Field(default="signalworks", description="Telethon session name (file in the data home)")
    api_id_env: str = "SIGNALWORKS_TELEGRAM_API_ID"
    api_hash_env: str = "SIGNALWORKS_TELEGRAM_API_HASH"
    session_string_env: str = "SIGNALWORKS_TELEGRAM_SESSION"
    window_s: NonNegativeFloat = 60.0
    channels: tuple[ChannelConfig, ...] = ()


class DiscordSourceConfig(_Frozen):
    enabled: bool = False
    token_env: str = "SIGNALWORKS_DISCORD_TOKEN"
    window_s: NonNegativeFloat = 60.0
    channels: tuple[ChannelConfig, ...] = ()


class XSourceConfig(_Frozen):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=0, le=65535)
    path: str = "/x/webhook"
    consumer_secret_env: str = "SIGNALWORKS_X_CONSUMER_SECRET"
    bearer_token_env: str = "SIGNALWORKS_X_BEARER_TOKEN"
    proxy: str | None = Field(default=None, description="proxy URL for outbound calls to X")
    window_s: NonNegativeFloat = 60.0
    accounts: tuple[ChannelConfig, ...] = ()


class SourcesConfig(_Frozen):
    replay: ReplaySourceConfig = ReplaySourceConfig()
    telegram: TelegramSourceConfig = TelegramSourceConfig()
    discord: DiscordSourceConfig = DiscordSourceConfig()
    x: XSourceConfig = XSourceConfig()


SignalKind = Literal["social", "market", "funding"]
RiskLevel = Literal["low", "medium", "high"]


class PublisherConfig(_Frozen):
    """One destination and its routing rules."""

    name: str
    kind: Literal["console", "telegram_bot", "telethon", "webhook"]
    enabled: bool = True
    chat_id: str | None = Field(default=None, description="Telegram chat id or @channel")
    chat_kind: Literal["private", "group", "channel"] = "channel"
    token_env: str | None = Field(default=None, description="env var with the bot token")
    url: str | None = Field(default=None, description="webhook URL")
    secret_env: str | None = Field(default=None, description="env var with the webhook HMAC secret")
    min_confidence: float = Field(default=0.0, ge=0, le=1)
    chains: tuple[str, ...] = Field(default=(), description="only these chains (empty: all)")
    sources: tuple[str, ...] = Field(default=(), description="only these sources (empty: all)")
    priority: int = Field(default=0, description="higher publishes first")
    review_chat_id: str | None = Field(default=None, description="chat for calls just under the bar")
    review_margin: float = Field(default=0.1, ge=0, le=1)
    expiry_hours: PositiveFloat | None = Field(default=None, description="a token may be published again after this")
    token_exceptions: tuple[str, ...] = Field(default=(), description="base tokens never blacklisted")
    template: str | None = Field(default=None, description="Telegram HTML template for social calls")
    # Market signals and funding-rate alerts (ml/signals/routing.py says which filter applies to which kind).
    kinds: tuple[SignalKind, ...] = Field(default=(), description="only these signal kinds (empty: all)")
    strategies: tuple[str, ...] = Field(default=(), description="market: only these strategies (empty: all)")
    symbols: tuple[str, ...] = Field(default=(), description="market: only these markets or base assets (empty: all)")
    muted_symbols: tuple[str, ...] = Field(default=(), description="market: never these markets or base assets")
    risk_levels: tuple[RiskLevel, ...] = Field(default=(), description="market: only these risk levels (empty: all)")
    max_signal_age_s: PositiveFloat | None = Field(
        default=None, description="market: not sent when older than this at its turn (None: the file's value)")
    market_template: str | None = Field(default=None, description="Telegram HTML template for market signals")
    funding_template: str | None = Field(default=None, description="Telegram HTML template for funding alerts")


class SpamConfig(_Frozen):
    patterns: tuple[str, ...] = (
        r"(?i)\bfree\s+airdrop\b", r"(?i)\bclaim\s+(your|now)\b", r"(?i)\bsend\s+\d+(\.\d+)?\s*(sol|eth|bnb)\b",
        r"(?i)\bguaranteed\s+\d+x\b", r"(?i)\bDM\s+me\b", r"(?i)\bwallet\s+connect\b",
    )
    wave_window_s: PositiveFloat = 120.0
    wave_min_channels: PositiveInt = 3
    wave_similarity: float = Field(default=0.9, gt=0, le=1)


class DigestConfig(_Frozen):
    """The daily scorecard digest: how the signals published on the previous UTC day did, sent to
    one Telegram chat through the Bot API."""

    enabled: bool = True
    chat_id: str = Field(description="Telegram chat id or @channel")
    chat_kind: Literal["private", "group", "channel"] = "channel"
    token_env: str = Field(default="SIGNALWORKS_TELEGRAM_BOT_TOKEN", description="env var with the bot token")
    horizon_minutes: Literal[1, 2, 3, 5, 10, 15] = Field(default=15, description="horizon the digest ranks by")
    group_by: tuple[Literal["strategy", "symbol", "source", "publisher"], ...] = ("strategy",)
    top: PositiveInt = Field(default=10, description="most groups listed as best and as worst")


class SignalworksSocialConfig(_Frozen):
    """The whole ``config/sources.yaml``."""

    sources: SourcesConfig = SourcesConfig()
    publishers: tuple[PublisherConfig, ...] = (PublisherConfig(name="console", kind="console"),)
    digest: DigestConfig | None = Field(default=None, description="daily scorecard digest (none: not sent)")
    spam: SpamConfig = SpamConfig()
    validation_threshold: float = Field(default=0.6, ge=0, le=1)
    max_signal_age_s: PositiveFloat = Field(
        default=MAX_SIGNAL_AGE_S, description="MAX_SIGNAL_AGE: a market signal or funding alert older than this "
        "(seconds since its trigger candle closed) when its turn to be sent comes is recorded expired, not sent")

    @field_validator("publishers")
    @classmethod
    def _unique_names(cls, value: tuple[PublisherConfig, ...]) -> tuple[PublisherConfig, ...]:
        names = [p.name for p in value]
        if len(names) != len(set(names)):
            raise ValueError(f"publisher names must be unique: {names}")
        return value


def load_social_config(path: Path) -> SignalworksSocialConfig:
    """Parse ``path``; a missing file gives the embedded default (replay + console)."""
    if not path.exists():
        return SignalworksSocialConfig()
    data = yaml.safe_load(path.read_text()) or {}
    try:
        return SignalworksSocialConfig.model_validate(data)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
