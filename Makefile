# The two commands a new machine needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
STAMP  := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs
# The kitsu (JavaScript) client test's npm packages; npm ci writes this file last.
JS_DEPS := tests/js/node_modules/.package-lock.json
NPM     := $(shell command -v npm)

export FLASK_APP := wsgi.py

.PHONY: help install run test lint docs fuzz chromium prometheus deploy-check bench bench-push bench-idle clean migrate

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null \
		|| { echo "needs Python 3.11 or newer on PATH (or PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python setup.cfg
	@# a venv cut short while it was made has no pip: give it one
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --upgrade
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[postgres,redis,test]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the service with its test tools

$(JS_DEPS): tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund
	touch $(JS_DEPS)

migrate: $(STAMP) ## apply migrations to DATABASE_URL (default: the SQLite file in instance/)
	$(BIN)/flask db upgrade

# One push worker beside gunicorn. Without APNS_* or FCM_CREDENTIALS_FILE it is the
# development stand-in: each push is recorded, not sent (flask push outbox shows them);
# Ctrl-C stops both.
run: migrate ## serve the API with gunicorn on 127.0.0.1:$(PORT), and a push worker
	@$(BIN)/flask push worker & worker=$$!; \
	trap 'kill -TERM $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	PORT=$(PORT) $(BIN)/gunicorn --config gunicorn.conf.py wsgi:app

# Without npm the kitsu client test skips (and fails under CI=true).
test: lint $(if $(NPM),$(JS_DEPS)) ## lint, then the whole suite on SQLite, then on PostgreSQL when TEST_DATABASE_URL is set
	$(BIN)/python -m pytest --db=sqlite
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		$(BIN)/python -m pytest --db=postgresql; \
	elif [ "$$CI" = "true" ]; then \
		echo "CI=true needs TEST_DATABASE_URL: the PostgreSQL run is mandatory"; exit 1; \
	else \
		echo "*** PostgreSQL run SKIPPED: set TEST_DATABASE_URL=postgresql://127.0.0.1:5432/test to run it ***"; \
	fi

# FUZZ_ARGS passes options to tests/fuzz_api.py: make fuzz FUZZ_ARGS="--only api-key"
fuzz: $(STAMP) ## schemathesis against gunicorn on PostgreSQL (TEST_DATABASE_URL), every credential kind
	$(BIN)/python -m tests.fuzz_api $(FUZZ_ARGS)

# The /docs test drives Debian's chromium; without it that test skips (and fails under CI=true).
chromium: ## install Debian's chromium (root, apt-get) when it is missing
	@command -v chromium >/dev/null || { export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; }

# promtool and prometheus: tests/test_deploy.py skips without them (and fails under CI=true).
prometheus: ## install Debian's prometheus (promtool and the server; root, apt-get) when missing
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q prometheus || { apt-get update -q && apt-get install -y -q prometheus; }; }

deploy-check: ## check deploy/: promtool check and test the alerting rules
	promtool check rules deploy/prometheus/alerts.yml
	cd deploy/prometheus && promtool test rules alerts_test.yml

lint: $(STAMP) ## ruff, then mypy on app/ (setup.cfg's [mypy])
	$(BIN)/ruff check .
	$(BIN)/mypy

# The docs tools are an extra of their own, so `make install` (and `make test`) skip them.
$(DOCS_STAMP): $(STAMP) setup.cfg
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP) ## build the documentation site into site/ (mkdocs --strict: a broken link or anchor fails)
	@# no --quiet: it silences the warnings --strict counts, and a broken link would pass
	$(BIN)/mkdocs build --strict

# BENCH_ARGS passes options to bench/run.py: make bench BENCH_ARGS="--repeat 3"
bench: $(STAMP) ## load benchmark: the service vs a bare Flask echo and django-push-notifications
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-push: $(STAMP) ## fan one notification out to 100,000 devices (fake APNs, fake FCM, a local webhook receiver), receipts off then on 3 times (20,000 APNs devices), then audiences of DEVICES (1,000,000) mixed, and a local-time one
	$(BIN)/python bench/push_fanout.py --channel apns
	$(BIN)/python bench/push_fanout.py --channel fcm
	$(BIN)/python bench/push_fanout.py --channel webhook
	$(BIN)/python bench/receipts_cost.py --rounds 3 --devices 20000
	$(BIN)/python bench/push_fanout.py --channel apns --live-activities --devices 10000
	$(BIN)/python bench/webhook_clients.py
	$(BIN)/python bench/push_audience.py --audience all --devices $(or $(DEVICES),1000000)
	$(BIN)/python bench/push_audience.py --audience topic --devices $(or $(DEVICES),1000000)
	$(BIN)/python bench/push_schedule.py --devices $(or $(DEVICES),1000000)

bench-idle: $(STAMP) ## an idle push worker's transactions a second on PostgreSQL, embedded queue and procrastinate
	$(BIN)/python bench/idle_worker.py $(BENCH_ARGS)

clean: ## remove the virtual environment and local databases
	rm -rf $(VENV) instance .pytest_cache bench/.venv-dpn site
