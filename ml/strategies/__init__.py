"""Market-signal strategies (pure): candles and indicators in, :class:`MarketSignal` rows out."""
