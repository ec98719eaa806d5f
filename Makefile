# Every target installs into .venv on first use, so a fresh clone needs only python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install forecast run-7d run-15d run-30d run-90d test bench lint clean chronos-download \
	bench-chronos

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(STAMP)

# The main job: the 7-day service on the embedded data.
forecast: run-7d

run-7d run-15d run-30d run-90d: run-%: $(STAMP)
	$(BIN)/python services/forecaster_$*/run.py $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m fxforecast.bench

# Chronos-Bolt-Small's two files into models/, for servers that later run offline (needs network).
CHRONOS_REPO ?= amazon/chronos-bolt-small
CHRONOS_DIR ?= models/chronos-bolt-small
chronos-download: $(STAMP)
	$(BIN)/fxforecast chronos-download --model $(CHRONOS_REPO) --to $(CHRONOS_DIR)

# Time and memory of the services with Chronos off and on (Bolt-Small shape, random weights).
bench-chronos: $(STAMP)
	$(BIN)/python -m fxforecast.bench_chronos

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) output .pytest_cache .ruff_cache
