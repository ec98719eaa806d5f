"""USD/CLP ensemble forecaster: data, members, ensemble, outputs and run metrics."""

__version__ = "0.1.0"
