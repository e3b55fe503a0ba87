"""Market segments (majors, alts, memes): their symbols, movement thresholds and XGBoost
hyperparameters, as frozen pydantic models read from ``config/segments.yaml``.

Rule for a symbol in no list (deterministic, documented in the YAML too): a base asset with a
known liquidity rank at most :attr:`SegmentsConfig.unlisted_alt_max_rank` is an alt; any other
base (ranked lower, or with no rank known) is a meme, whose wider threshold and heavier
subsampling suit a thinly traded, noisy market.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

SegmentName = Literal["majors", "alts", "memes"]
#: Stable integer id of each segment (the ``segment_id`` feature).
SEGMENT_IDS: dict[str, int] = {"majors": 0, "alts": 1, "memes": 2}

Fraction = Annotated[float, Field(gt=0.0, le=1.0)]
_MULTIPLIER = re.compile(r"^(?:1000000|1000)(?=[A-Z])")


class XGBoostParams(BaseModel):
    """Hyperparameters of one segment's XGBoost classifier (names as XGBoost spells them)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_estimators: PositiveInt = 200
    learning_rate: Fraction = 0.05
    max_depth: PositiveInt = 6
    subsample: Fraction = 0.8
    colsample_bytree: Fraction = 0.8


class SegmentSpec(BaseModel):
    """One segment: its base assets, its movement threshold (fraction) and its model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bases: tuple[str, ...]
    threshold: Annotated[float, Field(gt=0.0, lt=1.0)]
    xgboost: XGBoostParams = XGBoostParams()


def _seed_segments() -> dict[str, SegmentSpec]:
    return {
        "majors": SegmentSpec(bases=("BTC", "ETH", "BNB"), threshold=0.005,
                              xgboost=XGBoostParams(learning_rate=0.03, max_depth=8)),
        "alts": SegmentSpec(bases=("SOL", "AVAX", "LINK", "DOT", "MATIC", "NEAR", "ARB", "OP"),
                            threshold=0.008, xgboost=XGBoostParams(learning_rate=0.05, max_depth=7)),
        "memes": SegmentSpec(bases=("PEPE", "DOGE", "SHIB", "FLOKI", "BONK", "WIF"), threshold=0.015,
                             xgboost=XGBoostParams(learning_rate=0.08, max_depth=6, subsample=0.5,
                                                   colsample_bytree=0.5)),
    }


class SegmentsConfig(BaseModel):
    """All three segments; defaults are the seed specification's (same as config/segments.yaml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    segments: dict[SegmentName, SegmentSpec] = Field(default_factory=_seed_segments)
    unlisted_alt_max_rank: PositiveInt = 50

    @model_validator(mode="after")
    def _complete_and_disjoint(self) -> SegmentsConfig:
        missing = set(SEGMENT_IDS) - set(self.segments)
        if missing:
            raise ValueError(f"segments config lacks {sorted(missing)}")
        seen: dict[str, str] = {}
        for name, spec in self.segments.items():
            for base in spec.bases:
                key = base.upper()
                if key in seen:
                    raise ValueError(f"base {base!r} is listed in both {seen[key]!r} and {name!r}")
                seen[key] = name
        return self

    def segment_of(self, symbol: str, liquidity_rank: int | None = None) -> str:
        """Segment of ``symbol`` (``BASE/QUOTE`` or ``BASE/QUOTE:SETTLE``); see the module rule."""
        base = base_asset(symbol)
        for name, spec in self.segments.items():
            if base in {b.upper() for b in spec.bases}:
                return name
        if liquidity_rank is not None and liquidity_rank <= self.unlisted_alt_max_rank:
            return "alts"
        return "memes"

    def segments_of(self, symbols: list[str], liquidity_ranks: Mapping[str, int] | None = None,
                    ) -> dict[str, str]:
        """:meth:`segment_of` for each symbol, ranks looked up by symbol in ``liquidity_ranks``."""
        ranks = liquidity_ranks or {}
        return {s: self.segment_of(s, ranks.get(s)) for s in symbols}

    def threshold_of(self, symbol: str, liquidity_rank: int | None = None) -> float:
        """Movement threshold (fraction) of ``symbol``'s segment."""
        return self.segments[self.segment_of(symbol, liquidity_rank)].threshold  # type: ignore[index]


def base_asset(symbol: str) -> str:
    """Upper-case base asset of a ccxt symbol, a ``1000``/``1000000`` contract multiplier removed
    (``1000PEPE/USDT:USDT`` -> ``PEPE``)."""
    base = symbol.split("/", 1)[0].strip().upper()
    return _MULTIPLIER.sub("", base)


def load_segments(path: str | Path) -> SegmentsConfig:
    """Read a segments YAML file (see config/segments.yaml) into a validated config.

    Raises ``ValueError`` naming the file when it is not a mapping or fails validation.
    """
    import yaml  # only the loader needs it

    text = Path(path).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with 'segments', got {type(data).__name__}")
    try:
        return SegmentsConfig.model_validate(data)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e
