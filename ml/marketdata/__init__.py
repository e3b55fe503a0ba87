"""Pure market-data helpers: timeframes, candle frames, quality checks, universe ranking."""
