"""The market-signal half of ``signalworks demo``: the live path replayed over the last hours, then
how its signals did (outcomes), the per-strategy scorecard and each publisher's paper account.

The replay, and why it is honest. The demo stores the last days of 1m candles first, so every
signal the strategies find in them is hours old by the time the demo runs; published on the wall
clock, every one would be older than MAX_SIGNAL_AGE (60 s) and recorded ``expired``, with no
outcome to show. Live, ``new_candles_sensor`` scans each market as its candles arrive and puts a
signal in the outbox about :data:`REPLAY_DELAY_S` seconds after its trigger candle closed (README,
"Market signals"). The demo runs ``market_signals_job`` once over the last
:data:`~orchestration.report_demo.DEMO_SIGNAL_HOURS` hours (the strategies see no candle after a
signal's trigger: the no-look-ahead and live/backtest parity tests prove it, so one scan finds the
signals the minute-by-minute path would have) and its publish op delivers each signal on a replay
clock, at its trigger candle's close plus :data:`REPLAY_DELAY_S` (``PublishersResource.replay_delay_s``),
never later than now. MAX_SIGNAL_AGE is checked against that age; routing, claims and deliveries
are the publish op's own. Everything after is the real assets on the stored candles:
``signal_outcomes`` enters at the open of the first 1m candle after that delivery, ``paper_accounts``
fills each publisher's account from the same moment, ``scorecards`` summarises the outcomes. The
newest signals' later horizons and trades are still open at the demo's end: shown as pending/open.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from orchestration.report_demo import DEMO_SIGNAL_HOURS, Run, market_signals_config

#: Seconds from a trigger candle's close to its delivery on the demo's replay clock: the live path's
#: typical candle-to-outbox time (a 5 s sensor tick plus an in-process run).
REPLAY_DELAY_S = 10.0
HORIZONS = (1, 2, 3, 5, 10, 15)
#: Rows of the outcomes table (the newest; every strategy keeps at least its latest row).
OUTCOME_ROWS = 16
#: Latest positions shown per paper account.
POSITION_ROWS = 5
STARTING_EQUITY = 10_000.0  # the paper_accounts asset's default, which the demo's run uses


def replay_run_config(publishers: Any, hours: int = DEMO_SIGNAL_HOURS) -> dict[str, Any]:
    """Run config of the demo's ``market_signals_job`` run: the scan over the last ``hours`` and the
    code location's ``publishers`` resource (:class:`assets.publishing.PublishersResource`) with the
    replay clock of the module docstring."""
    fields = {name: getattr(publishers, name) for name in type(publishers).model_fields}
    return {**market_signals_config(hours),
            "resources": {"publishers": {"config": {**fields, "replay_delay_s": REPLAY_DELAY_S}}}}


#: Dagster's implicit job of all assets: what the UI's "Materialize" launches for a selection.
ASSET_JOB = "__ASSET_JOB"
#: Materialised together in one run after the replayed signals (one run process instead of three).
MARKET_ASSETS = ["signal_outcomes", "paper_accounts", "scorecards"]


def run_market_demo(run: Run, publishers: Any, now: Callable[[], datetime]) -> tuple[bool, datetime]:
    """Launch the replayed ``market_signals_job`` run (:func:`replay_run_config`), then one run
    materialising ``signal_outcomes``, ``paper_accounts`` and ``scorecards`` (over the day of
    publications before ``now()``, read between the two runs); whether both succeeded, and that instant."""
    ok = run("market_signals_job", None, replay_run_config(publishers), None)
    as_of = now()
    ok &= run(ASSET_JOB, None, scorecards_run_config(as_of), MARKET_ASSETS)
    return ok, as_of


def scorecards_run_config(as_of: datetime) -> dict[str, Any]:
    """The scorecards run's window: the day of publications before ``as_of``."""
    return {"ops": {"scorecards": {"config": {"days": 1.0, "as_of": as_of.isoformat()}}}}


def _pct(value: float | None, spec: str = "+.2f") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(100.0 * value, spec)


def print_deliveries(warehouse_url: str) -> None:
    """Per publisher: the market signals' deliveries by status, with the skip reasons counted."""
    from sqlalchemy import select

    from resources.warehouse.schema import signal_deliveries, signals
    from resources.warehouse.store import Warehouse

    d, s = signal_deliveries.c, signals.c
    query = select(d.publisher, d.status, d.reason).join(signals, s.signal_id == d.signal_id).where(
        s.kind.in_(["market", "funding"]))
    with Warehouse.from_url(warehouse_url).engine.connect() as connection:
        rows = connection.execute(query).all()
    print(f"Publication on the replay clock (trigger candle's close + {REPLAY_DELAY_S:.0f} s, the live path's "
          "typical delay; MAX_SIGNAL_AGE checked against it):")
    for publisher in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == publisher]
        statuses = Counter(r[1] for r in mine)
        reasons = Counter(_reason(r[2]) for r in mine if r[1] == "skipped")
        why = "; ".join(f"{reason} x{n}" for reason, n in reasons.most_common(3))
        print(f"  {publisher:<12} " + ", ".join(f"{status} {n}" for status, n in sorted(statuses.items()))
              + (f"  (skipped: {why})" if why else ""))
    print()


def _reason(reason: str | None) -> str:
    """A skip reason without the signal's own figures (``confidence 0.51 under 0.55`` -> its rule)."""
    text = reason or "routing"
    for rule in ("confidence", "risk level", "symbol", "strategy", "kind"):
        if text.startswith(rule):
            return text.split(" ")[0] if rule != "risk level" else "risk level"
    return text


def outcome_table(warehouse_url: str) -> pl.DataFrame:
    """One row per market signal and outcome: the stored ``signal_outcomes`` rows, publishers that
    got the same outcome (the same delivery moment) merged, oldest publication first."""
    from resources.warehouse.outcomes import read_signal_outcomes
    from resources.warehouse.store import Warehouse

    rows = read_signal_outcomes(Warehouse.from_url(warehouse_url), kind="market")
    same = ["signal_id", "strategy", "symbol", "direction", "published_at", "entry_ts", "entry_price",
            *(f"return_{h}m" for h in HORIZONS), "exit_reason", "pnl", "settled"]
    return (rows.group_by(same, maintain_order=True).agg(pl.col("publisher").sort().str.join(","))
            .sort("published_at", "signal_id"))


def print_outcomes(warehouse_url: str, *, limit: int = OUTCOME_ROWS) -> None:
    """The outcomes table: the newest ``limit`` rows (each strategy at least its latest), the count
    of the rest."""
    table = outcome_table(warehouse_url)
    settled = int(table["settled"].sum()) if table.height else 0
    print(f"Outcomes (signal_outcomes: net of 0.1 % fee + 5 bp slippage per side, entry at the open of the first "
          f"1m candle after publication; {table.height} signals, {settled} settled, returns in %):")
    if not table.height:
        print("  none: no market signal was sent\n")
        return
    shown = table.tail(limit)
    for strategy in table["strategy"].unique().sort():
        if strategy not in shown["strategy"]:
            shown = pl.concat([table.filter(pl.col("strategy") == strategy).tail(1), shown])
    if table.height > shown.height:
        print(f"  ... {table.height - shown.height} older signals not shown (all in the signal_outcomes table)")
    print(f"  {'id':>5} {'strategy':<10} {'symbol':<12} {'dir':<5} {'published (UTC)':<19} "
          + " ".join(f"{f'+{h}m':>6}" for h in HORIZONS) + f" {'exit':<6} {'PnL':>6}  publishers")
    for r in shown.sort("published_at", "signal_id").iter_rows(named=True):
        returns = " ".join(f"{_pct(r[f'return_{h}m']):>6}" for h in HORIZONS)
        print(f"  {r['signal_id']:>5} {r['strategy']:<10} {r['symbol']:<12} {r['direction']:<5} "
              f"{r['published_at']:%Y-%m-%d %H:%M:%S} {returns} {r['exit_reason'] or '-':<6} "
              f"{_pct(r['pnl']):>6}  {r['publisher']}")
    print("  (- : the horizon has not closed yet; exit open: the trade's stop, targets and TRADE_TIME still pending)\n")


def scorecard_table(warehouse_url: str, as_of: datetime) -> pl.DataFrame:
    """The scorecards asset's per-strategy table over the day before ``as_of`` (the same function
    on the same stored outcomes as the demo's ``scorecards`` run)."""
    from assets.scorecards import scorecards_of
    from resources.warehouse.store import Warehouse

    cards, _ = scorecards_of(Warehouse.from_url(warehouse_url), start=as_of - timedelta(days=1), end=as_of)
    return cards["strategy"]


def print_scorecard(warehouse_url: str, as_of: datetime) -> None:
    """Per strategy and horizon: signals (settled), pending, win rate, mean, median, expectancy, t."""
    card = scorecard_table(warehouse_url, as_of)
    print("Scorecard per strategy (scorecards asset; (signal, publisher) outcomes, net returns in %):")
    if not card.height:
        print("  empty: no outcome yet\n")
        return
    print(f"  {'strategy':<10} {'horizon':>7} {'signals':>7} {'pending':>7} {'win rate':>8} {'mean':>7} "
          f"{'median':>7} {'expect.':>7} {'t':>6}")
    for r in card.iter_rows(named=True):
        t = "-" if r["t_stat"] is None else f"{r['t_stat']:.2f}"
        print(f"  {r['strategy']:<10} {'+' + str(r['horizon_minutes']) + 'm':>7} {r['signals']:>7} {r['pending']:>7} "
              f"{_pct(r['win_rate'], '.0f'):>7}% {_pct(r['mean_return']):>7} {_pct(r['median_return']):>7} "
              f"{_pct(r['expectancy']):>7} {t:>6}")
    print()


def paper_summary(warehouse_url: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the paper_accounts asset's account summary, the stored positions)."""
    from assets.paper import account_summary
    from resources.warehouse.paper import PaperLedger
    from resources.warehouse.store import Warehouse

    ledger = PaperLedger(Warehouse.from_url(warehouse_url))
    positions = ledger.positions()
    return account_summary(positions, ledger.equity(), STARTING_EQUITY), positions


def print_paper_accounts(warehouse_url: str, *, limit: int = POSITION_ROWS) -> None:
    """Per publisher: positions taken (closed, open), rejected with reasons, win rate, final
    equity, return and max drawdown; its latest ``limit`` trades."""
    summary, positions = paper_summary(warehouse_url)
    print(f"Paper accounts (paper_accounts: {STARTING_EQUITY:,.0f} USDT each, fees and slippage, at most 5 open "
          "positions, one per sector group, 5 % daily loss limit, 20 % drawdown stop):")
    if not summary.height:
        print("  none: no market signal was sent\n")
        return
    for r in summary.iter_rows(named=True):
        mine = positions.filter(pl.col("publisher") == r["publisher"])
        reasons = Counter(mine.filter(pl.col("status") == "rejected")["reason"].to_list())
        rejected = ", ".join(f"{reason} {n}" for reason, n in reasons.most_common())
        print(f"  {r['publisher']:<12} {r['signals']} signals: {r['closed']} closed, {r['open']} open, "
              f"{r['rejected']} rejected{f' ({rejected})' if rejected else ''}")
        print(f"  {'':<12} win rate {_pct(r['win_rate'], '.0f')} %, realised PnL {r['realised_pnl']:+,.2f}, "
              f"final equity {r['equity']:,.2f} ({_pct(r['return'])} %), max drawdown {_pct(r['max_drawdown'], '.2f')} %")
        trades = mine.filter(pl.col("status") != "rejected").sort("decided_at", "signal_id").tail(limit)
        for t in trades.iter_rows(named=True):
            exit_ = f"{t['exit_ts']:%H:%M} {t['exit_price']:.6g} ({t['reason']})" if t["exit_ts"] else "open"
            pnl = "-" if t["pnl"] is None else f"{t['pnl']:+,.2f}"
            print(f"      {t['signal_id']:>5} {t['strategy']:<10} {t['symbol']:<12} {t['direction']:<5} "
                  f"in {t['entry_ts']:%m-%d %H:%M} {t['entry_price']:.6g} -> out {exit_}  PnL {pnl}")
    print()
