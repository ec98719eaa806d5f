"""Evaluation: the rolling-origin backtest, its scoring, and running it on a Dask cluster."""
