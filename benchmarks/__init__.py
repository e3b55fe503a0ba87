"""Speed and memory of the warehouse and the candle backfill against reference paths.

Run ``python -m benchmarks`` (``make bench``) from the repository root; see ``benchmarks/README.md``.
Nothing here asserts on timings: the report prints figures, ratios and MET / MISSED per target.
"""
