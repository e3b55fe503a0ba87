"""Infrastructure settings, read once from ``SIGNALWORKS_*`` environment variables (``.env`` honoured).

Secrets (API keys) are not read here: they reach resources as Dagster ``EnvVar`` so they are
resolved at run time and never logged. Every variable is listed in :data:`SETTINGS_REFERENCE`,
which the README's configuration table mirrors (a test keeps them in sync).
"""

from __future__ import annotations

import os
from datetime import date
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

#: name -> (default, meaning). The README's configuration reference is generated from this.
SETTINGS_REFERENCE: dict[str, tuple[str, str]] = {
    "SIGNALWORKS_HOME": ("./.signalworks", "data home: SQLite warehouse, Dagster instance, model files"),
    "SIGNALWORKS_DATABASE_URL": (
        "(unset: sqlite:///$SIGNALWORKS_HOME/warehouse.db)",
        "warehouse; set postgresql+psycopg://user:pass@host/db for PostgreSQL",
    ),
    "SIGNALWORKS_EXCHANGES": (
        "sim",
        "comma-separated exchange ids: sim (simulated), sim_<venue>, binance, bybit, okx, bitget, mexc",
    ),
    "SIGNALWORKS_SIM_SEED": ("42", "seed of the simulated market (candles are a pure function of it)"),
    "SIGNALWORKS_SIM_SYMBOLS": (
        "87",
        "assets in the simulated market (spot symbols per sim venue; most have a perp): 87 built in, "
        "up to 2000 with generated small caps, e.g. 400 for a Binance-sized USDT list",
    ),
    "SIGNALWORKS_COINGECKO": ("sim", "sim (twin consistent with the simulated market) or live"),
    "SIGNALWORKS_COINGECKO_BASE_URL": ("https://api.coingecko.com/api/v3", "CoinGecko API base URL"),
    "SIGNALWORKS_COINGECKO_API_KEY": ("(unset)", "optional CoinGecko demo/pro key (secret, read at run time)"),
    "SIGNALWORKS_COINGECKO_TOP": ("2000", "how many coins each CoinGecko snapshot keeps"),
    "SIGNALWORKS_<EXCHANGE>_API_KEY": ("(unset)", "optional API key per exchange, e.g. SIGNALWORKS_BINANCE_API_KEY (secret)"),
    "SIGNALWORKS_<EXCHANGE>_SECRET": ("(unset)", "optional API secret per exchange (secret)"),
    "SIGNALWORKS_<EXCHANGE>_PASSWORD": ("(unset)", "optional API passphrase (okx, bitget) (secret)"),
    "SIGNALWORKS_QUOTE": ("USDT", "quote currency of the tracked universe"),
    "SIGNALWORKS_CANDLES_1H_SYMBOLS": ("0", "symbols per exchange for candles_1h by liquidity rank; 0 = whole universe"),
    "SIGNALWORKS_CANDLES_1M_SYMBOLS": ("150", "symbols per exchange for candles_1m by liquidity rank"),
    "SIGNALWORKS_RETENTION_1M_DAYS": ("30", "the weekly retention job deletes 1m candles older than this"),
    "SIGNALWORKS_START_DATE": ("2024-01-01", "first day of the daily candle partitions"),
    "SIGNALWORKS_FRESHNESS_HOURS": ("3", "a candle asset is stale when its newest candle is older than this"),
    "SIGNALWORKS_SOCIAL_CONFIG": ("config/sources.yaml", "sources, channel weights, spam rules, publishers and routing"),
    "SIGNALWORKS_DEXSCREENER": ("sim", "sim (deterministic twin) or live DexScreener for call enrichment"),
    "SIGNALWORKS_DEXSCREENER_BASE_URL": ("https://api.dexscreener.com", "DexScreener API base URL"),
    "SIGNALWORKS_TELEGRAM_BOT_API": ("https://api.telegram.org", "Telegram Bot API base URL (a local Bot API server also works)"),
    "SIGNALWORKS_MODEL_STORE": (
        "local",
        "model artifacts: local (files in $SIGNALWORKS_HOME/models) or http://host:port/bucket (S3-compatible, path-style)",
    ),
    "SIGNALWORKS_STRATEGIES": ("bos,ema_cross,funding", "market strategies new_candles_sensor runs (or none)"),
}


class Settings(BaseModel):
    """Frozen, typed infrastructure settings."""

    model_config = ConfigDict(frozen=True)

    home: Path = Path("./.signalworks")
    database_url: str | None = None
    exchanges: tuple[str, ...] = ("sim",)
    sim_seed: int = 42
    sim_symbols: int = Field(default=87, ge=1, le=2000)
    coingecko: str = "sim"
    coingecko_base_url: str = "https://api.coingecko.com/api/v3"
    coingecko_top: PositiveInt = 2000
    quote: str = "USDT"
    candles_1h_symbols: int = Field(default=0, ge=0)
    candles_1m_symbols: int = Field(default=150, ge=0)
    retention_1m_days: PositiveInt = 30
    start_date: date = date(2024, 1, 1)
    freshness_hours: PositiveInt = 3
    social_config: Path = Path("config/sources.yaml")
    dexscreener: str = "sim"
    dexscreener_base_url: str = "https://api.dexscreener.com"
    telegram_bot_api: str = "https://api.telegram.org"
    model_store: str = "local"
    #: Market strategies the live path runs (SIGNALWORKS_STRATEGIES, comma-separated).
    strategies: tuple[str, ...] = ("bos", "ema_cross", "funding")

    @field_validator("exchanges")
    @classmethod
    def _known_exchanges(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from resources.exchanges.base import LIVE_EXCHANGES

        if not value:
            raise ValueError("SIGNALWORKS_EXCHANGES is empty: name at least one exchange, e.g. sim")
        for name in value:
            if name not in LIVE_EXCHANGES and name != "sim" and not name.startswith("sim_"):
                raise ValueError(
                    f"unknown exchange {name!r} in SIGNALWORKS_EXCHANGES; expected sim, sim_<venue> "
                    f"or one of {', '.join(LIVE_EXCHANGES)}"
                )
        if len(set(value)) != len(value):
            raise ValueError(f"SIGNALWORKS_EXCHANGES lists an exchange twice: {','.join(value)}")
        return value

    @field_validator("coingecko", "dexscreener")
    @classmethod
    def _sim_or_live(cls, value: str) -> str:
        if value not in ("sim", "live"):
            raise ValueError(f"must be sim or live, not {value!r}")
        return value

    @field_validator("model_store")
    @classmethod
    def _model_store(cls, value: str) -> str:
        _object_store_location(value)
        return value

    @property
    def object_model_store(self) -> tuple[str, str] | None:
        """``(endpoint, bucket)`` of the object model store, or None for local files."""
        return _object_store_location(self.model_store)

    @property
    def warehouse_url(self) -> str:
        """SQLAlchemy URL of the warehouse (SQLite in the data home unless a URL is set)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'warehouse.db').resolve()}"

    def __repr__(self) -> str:  # never show a password embedded in the database URL
        from sqlalchemy.engine import make_url

        shown = make_url(self.warehouse_url).render_as_string(hide_password=True)
        return f"Settings(home={str(self.home)!r}, warehouse={shown!r}, exchanges={self.exchanges!r})"


def _object_store_location(value: str) -> tuple[str, str] | None:
    """None for ``local``; ``(endpoint, bucket)`` for ``http(s)://host[:port]/bucket``."""
    if value == "local":
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    bucket = parts.path.strip("/")
    if parts.scheme not in ("http", "https") or not parts.netloc or not bucket or "/" in bucket \
            or parts.query or parts.fragment:
        raise ValueError(f"must be local or http(s)://host:port/bucket (one bucket, no key), not {value!r}")
    return f"{parts.scheme}://{parts.netloc}", bucket


def _model_store_setting(value: str) -> str:
    _object_store_location(value)
    return value


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in value.split(",") if part.strip())


#: What SIGNALWORKS_STRATEGIES may list (``none`` turns every market strategy off).
STRATEGIES = ("bos", "ema_cross", "funding")


def _strategies(value: str) -> tuple[str, ...]:
    chosen = tuple(s for s in _split(value) if s != "none")
    unknown = sorted(set(chosen) - set(STRATEGIES))
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; expected a comma-separated subset of {', '.join(STRATEGIES)} "
                         "or 'none'")
    return chosen


def settings_from_env(environ: dict[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``environ`` (default: ``os.environ`` after loading ``.env``)."""
    if environ is None:
        from dotenv import load_dotenv

        load_dotenv(override=False)
        environ = dict(os.environ)
    fields: dict[str, object] = {}
    mapping = {
        "SIGNALWORKS_HOME": ("home", Path),
        "SIGNALWORKS_DATABASE_URL": ("database_url", str),
        "SIGNALWORKS_EXCHANGES": ("exchanges", _split),
        "SIGNALWORKS_SIM_SEED": ("sim_seed", int),
        "SIGNALWORKS_SIM_SYMBOLS": ("sim_symbols", int),
        "SIGNALWORKS_COINGECKO": ("coingecko", str.lower),
        "SIGNALWORKS_COINGECKO_BASE_URL": ("coingecko_base_url", str),
        "SIGNALWORKS_COINGECKO_TOP": ("coingecko_top", int),
        "SIGNALWORKS_QUOTE": ("quote", str.upper),
        "SIGNALWORKS_CANDLES_1H_SYMBOLS": ("candles_1h_symbols", int),
        "SIGNALWORKS_CANDLES_1M_SYMBOLS": ("candles_1m_symbols", int),
        "SIGNALWORKS_RETENTION_1M_DAYS": ("retention_1m_days", int),
        "SIGNALWORKS_START_DATE": ("start_date", date.fromisoformat),
        "SIGNALWORKS_FRESHNESS_HOURS": ("freshness_hours", int),
        "SIGNALWORKS_SOCIAL_CONFIG": ("social_config", Path),
        "SIGNALWORKS_DEXSCREENER": ("dexscreener", str.lower),
        "SIGNALWORKS_DEXSCREENER_BASE_URL": ("dexscreener_base_url", str),
        "SIGNALWORKS_TELEGRAM_BOT_API": ("telegram_bot_api", str),
        "SIGNALWORKS_MODEL_STORE": ("model_store", _model_store_setting),
        "SIGNALWORKS_STRATEGIES": ("strategies", _strategies),
    }
    for variable, (field, convert) in mapping.items():
        raw = environ.get(variable, "").strip()
        if raw:
            try:
                fields[field] = convert(raw)
            except ValueError as error:
                raise ValueError(f"{variable}={raw!r} is not valid: {error}") from error
    return Settings(**fields)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return settings_from_env()
