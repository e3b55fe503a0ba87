"""book_risk: each symbol's figures equal symbol_risk's, failures stay local, the portfolio and the
bootstraps use what they say, and the whole is a pure function of its inputs and seed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from ml.risk import bootstrap_value_paths, summarise_paths, symbol_risk
from ml.risk.book import BookRiskConfig, book_risk

CONFIG = BookRiskConfig(n_paths=400, n_steps=24, seed=11)
START = datetime(2024, 1, 1, tzinfo=UTC)


def closes(n: int, *, symbols: tuple[str, ...], seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    common = rng.normal(0, 0.01, n)
    return pl.concat([pl.DataFrame({
        "symbol": symbol, "ts": [START + timedelta(hours=h) for h in range(n)],
        "close": 100 * np.exp(np.cumsum(0.7 * common + rng.normal(0, 0.006, n))),
    }) for symbol in symbols])


def test_symbols_match_symbol_risk_and_a_broken_one_is_listed_not_fatal() -> None:
    frame = pl.concat([closes(300, symbols=("AAA/USDT", "BBB/USDT"), seed=1),
                       closes(12, symbols=("NEW/USDT",), seed=2)]).sample(fraction=1.0, shuffle=True, seed=3)
    strategies = {"majors": np.random.default_rng(4).normal(0, 0.002, 200), "broken": [0.01]}
    book = book_risk(frame, strategies, config=CONFIG)

    assert set(book.failures) == {"symbol:NEW/USDT", "strategy:broken"}
    assert "at least 30 log returns" in book.failures["symbol:NEW/USDT"]
    for symbol in ("AAA/USDT", "BBB/USDT"):
        series = frame.filter(pl.col("symbol") == symbol).sort("ts").get_column("close").to_numpy()
        expected = symbol_risk(series, n_paths=400, n_steps=24, seed=11).rows()
        ours = book.symbols.filter(pl.col("symbol") == symbol).drop("symbol").to_dicts()
        assert ours == expected
    assert book.parameters.get_column("symbol").to_list() == ["AAA/USDT", "BBB/USDT"]

    assert book.portfolio is not None and book.portfolio.symbols == ("AAA/USDT", "BBB/USDT")
    assert book.portfolio.observations == 299 and book.portfolio.max_drawdowns.shape == (400,)
    # two correlated assets: the equal-weight book is less risky than the riskier of the two alone
    single = book.symbols.filter(pl.col("model") == "gbm").get_column("var_99").max()
    assert 0 < book.portfolio.summary.var[0.99] < single

    (row,) = book.bootstrap.to_dicts()
    paths = bootstrap_value_paths(strategies["majors"], n_paths=400, n_steps=24, seed=11 + 2 + 1)
    assert row == {"strategy": "majors", "observations": 200, **summarise_paths(paths).as_dict()}
    assert set(book.bootstrap_drawdowns) == {"majors"}


def test_same_inputs_and_seed_same_figures_other_seed_other_figures() -> None:
    frame = closes(200, symbols=("AAA/USDT", "BBB/USDT"), seed=5)
    returns = {"alts": np.random.default_rng(6).normal(0, 0.003, 100)}
    first, again = book_risk(frame, returns, config=CONFIG), book_risk(frame, returns, config=CONFIG)
    assert first.to_dict() == again.to_dict()
    other = book_risk(frame, returns, config=BookRiskConfig(n_paths=400, n_steps=24, seed=12))
    assert other.symbols.get_column("var_95").to_list() != first.symbols.get_column("var_95").to_list()


def test_portfolio_needs_shared_timestamps() -> None:
    early = closes(100, symbols=("AAA/USDT",), seed=7)
    late = closes(100, symbols=("BBB/USDT",), seed=8).with_columns(pl.col("ts") + timedelta(hours=90))
    book = book_risk(pl.concat([early, late]), {}, config=CONFIG)
    assert book.portfolio is None
    assert "share 10 timestamps" in book.failures["portfolio"]
    assert book.parameters.height == 2  # each symbol on its own is still reported


def test_missing_columns_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"lacks columns \['close'\]"):
        book_risk(pl.DataFrame({"symbol": ["A"], "ts": [START]}), {}, config=CONFIG)
