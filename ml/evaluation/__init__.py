"""Evaluation of trading strategies: pure, no I/O, no Dagster.

* :mod:`ml.evaluation.costs`: positions and asset returns to net returns (fees, slippage) and trades.
* :mod:`ml.evaluation.metrics`: Sharpe, Sortino, Calmar, drawdown, win rate, profit factor, t-test,
  in-sample/out-of-sample overfitting flag.
* :mod:`ml.evaluation.overfitting`: probability of backtest overfitting (CSCV), probabilistic and
  deflated Sharpe ratios.
* :mod:`ml.evaluation.baselines`: buy-and-hold and always-flat references.
* :mod:`ml.evaluation.walkforward`: walk-forward of one symbol and the position rule (signals held
  for ``hold`` candles); :mod:`ml.evaluation.positions`: that rule on several symbols at once.
* :mod:`ml.evaluation.segment`: walk-forward of one segment over several symbols (pooled XGBoost per
  window, equal-weight portfolio); :mod:`ml.evaluation.grid`: its parameter grid, PBO and deflated
  Sharpe; :mod:`ml.evaluation.verdict`: the plain-language verdict; :mod:`ml.evaluation.oos_calibration`:
  out-of-sample calibration before and after temperature scaling.

scipy is imported inside the functions that use it, not with the package.
"""
