"""``signalworks feed``: closed 1m candles into the warehouse within seconds of their close."""
