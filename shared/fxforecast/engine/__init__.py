"""The forecasting engine: members, validation origins, running members, combination and
calibration. It reads a cleaned MarketData and returns one EnsembleForecast; it never writes
files and never imports the ops or cli layers."""
