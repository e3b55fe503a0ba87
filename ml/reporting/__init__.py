"""Reporting helpers: pure functions from data to artefacts (PNG plots), no I/O, no Dagster.

* :mod:`ml.reporting.plots`: equity curves, drawdown, reliability curves, regime timeline and
  distributions as PNG bytes (matplotlib, Agg backend, imported inside the functions).
"""
