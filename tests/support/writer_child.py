"""A child process that replaces one candle slice; used to kill a writer mid-transaction and to
run concurrent writers. Usage: python -m tests.support.writer_child URL EXCHANGE SYMBOLS DAYS SEED REPEAT"""

from __future__ import annotations

import sys
from datetime import timedelta

from ml.marketdata.timeframes import day_bounds
from resources.warehouse.engine import make_engine
from resources.warehouse.store import Warehouse
from tests.support.builders import make_candles


def main() -> None:
    url, exchange, n_symbols, day, seed, repeat = sys.argv[1:7]
    start, end = day_bounds(day)
    symbols = tuple(f"S{i:04d}/USDT" for i in range(int(n_symbols)))
    frame = make_candles(1440, "1m", symbols=symbols, exchange=exchange, start=start, seed=int(seed))
    warehouse = Warehouse(make_engine(url))
    print("starting", flush=True)
    for _ in range(int(repeat)):
        warehouse.replace_candles(frame, exchange=exchange, timeframe="1m", start=start,
                                  end=end + timedelta(0), symbols=symbols)
    print("done", flush=True)


if __name__ == "__main__":
    main()
