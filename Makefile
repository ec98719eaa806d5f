# Every target installs into .venv on first use, so a fresh clone needs only python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install forecast run-7d run-15d run-30d run-90d test test-fast bench bench-refresh fetch-data lint \
	clean backtest enable-chronos disable-chronos status chronos-download bench-chronos \
	report bench-report bench-history bench-backtest docs accuracy-docs docs-examples \
	mutation width-variants

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

# Per-service Chronos rollout: make enable-chronos SERVICE=forecaster_7d
SERVICE ?=
enable-chronos disable-chronos: %-chronos: $(STAMP)
	@test -n "$(SERVICE)" || { echo "error: give SERVICE=forecaster_7d (or 15d, 30d, 90d)" >&2; exit 2; }
	$(BIN)/fxforecast rollout --service $(SERVICE) --chronos $(if $(filter enable,$*),on,off)

# Health of every service from logs/metrics.jsonl (ARGS=--accuracy for realized accuracy).
status: $(STAMP)
	$(BIN)/fxforecast status $(ARGS)

# One self-contained HTML page of every service's history (OUTPUT_DIR/report/index.html).
report: $(STAMP)
	$(BIN)/fxforecast report $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The unit tests, for development: `make test` without the files that run whole services,
# backtests, a deployment, a Dask cluster, Chronos models or a browser (a new file is in it).
SLOW_TESTS := tests/test_deploy.py tests/evaluation/test_backtest.py tests/evaluation/test_cluster.py \
	tests/ops/test_service.py tests/ops/test_reliability.py tests/ops/test_report.py \
	tests/ops/test_store_accuracy.py tests/ops/test_service_cache.py tests/engine/test_runner.py \
	tests/engine/test_chronos.py tests/engine/test_chronos_fast.py tests/marketdata/test_properties.py
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile $(addprefix --ignore=,$(SLOW_TESTS))

# Mutation testing (mutmut) of the critical modules, each with the fast tests that cover it, one
# module after another; MODULE=calibration (or several, space-separated) runs those only. Not
# part of `make test`: docs/development.md (Mutation testing) gives its time and the scores.
MODULE ?=
mutation: $(STAMP)
	$(BIN)/python -m mutation.run $(MODULE)

# Each service cold and warm against the import floor; ARGS="--before DIR" adds another
# checkout's cold runs in the same sitting.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench $(ARGS)

# Live data: refresh the cache in data/ (or DATA_DIR); time a run with every source down.
fetch-data: $(STAMP)
	$(BIN)/fxforecast fetch-data $(ARGS)

bench-refresh: $(STAMP)
	$(BIN)/python -m benchmarks.bench_refresh

# Time to render the report from five years of weekly runs of the four services.
bench-report: $(STAMP)
	$(BIN)/python -m benchmarks.bench_report

# status and report on 1,000 and 100,000 metrics lines side by side: time and peak memory.
bench-history: $(STAMP)
	$(BIN)/python -m benchmarks.bench_history

# Chronos-Bolt-Small's two files into models/, for servers that later run offline (needs network),
# then exported for the numpy path: services given that folder never import torch.
CHRONOS_REPO ?= amazon/chronos-bolt-small
CHRONOS_DIR ?= models/chronos-bolt-small
chronos-download: $(STAMP)
	$(BIN)/fxforecast chronos-download --model $(CHRONOS_REPO) --to $(CHRONOS_DIR)
	$(BIN)/fxforecast chronos-export --model $(CHRONOS_DIR)

# Time and memory of the services with Chronos off and on, numpy path and library side by side
# (Bolt-Small shape, random weights).
bench-chronos: $(STAMP)
	$(BIN)/python -m benchmarks.bench_chronos

# The same short backtest with --jobs 1 and on a local Dask cluster of 1 and 2 workers.
bench-backtest: $(STAMP)
	$(BIN)/python -m benchmarks.bench_backtest $(ARGS)

# The documentation site (mkdocs.yml, docs/) into site/; --strict: any warning, a broken link
# or anchor among them, fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The Accuracy page (docs/accuracy/) from a backtest's output folder: after make backtest.
BACKTEST_DIR ?= output/backtest
accuracy-docs: $(STAMP)
	$(BIN)/python -m doctools.accuracy $(BACKTEST_DIR)

# The example outputs in README.md and docs/ rewritten from real runs (a test compares them
# with a real run: rerun this when a change moves the forecast).
docs-examples: $(STAMP)
	$(BIN)/python -m doctools.examples --write

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) output site .pytest_cache .ruff_cache

# The rolling-origin backtest of EVALUATION.md (about 20-30 minutes on 2 cores).
backtest: $(STAMP)
	$(BIN)/fxforecast backtest --horizons 7,15,30,90 --start 2017-01-06 --end 2024-11-29 \
		--jobs 2 --out $(BACKTEST_DIR) $(ARGS)

# Every interval-width variant tried, each through the full backtest (members from the cache).
width-variants: $(STAMP)
	$(BIN)/python -m benchmarks.width_variants $(ARGS)
