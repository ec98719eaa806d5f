"""Evaluation: the rolling-origin backtest, its scorer (EVALUATION.md's metrics), its report
and running it on a Dask cluster."""
