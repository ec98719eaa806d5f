"""Evaluation: the rolling-origin backtest and its scorer (EVALUATION.md's metrics)."""
