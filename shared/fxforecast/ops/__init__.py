"""Operating the services: what operators read and run around the forecasts."""
