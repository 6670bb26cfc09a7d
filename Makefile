# `make run`: set up and serve on $HOST:$PORT (SQLite + demo route by default).
# `make test`: set up and run the whole suite (PostgreSQL when DATABASE_URL points to it), browser tests included.
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test setup migrate bench clean browser

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)

# Secrets: created readable by the owner only (umask 077 before the file exists; chmod for older files).
.gateway.local.env:
	@umask 077 && $(PYTHON) -c "import secrets; print('SECRET_KEY=' + secrets.token_urlsafe(50)); print('GATEWAY_ENCRYPTION_KEY=' + secrets.token_urlsafe(32)); print('GATEWAY_MASTER_KEY=sk-gw-master-' + secrets.token_urlsafe(24))" > $@
	@chmod 600 $@
	@echo "wrote $@ (local dev secrets, mode 0600; real environment variables override it)"

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --noinput

# Plain-text logs for a person at a terminal; everything else defaults to JSON lines (README "Operations").
run: export GATEWAY_LOG_FORMAT ?= text
run: $(STAMP) .gateway.local.env
	@chmod 600 .gateway.local.env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v 0
	$(BIN)/python manage.py bootstrap_demo --url http://$(HOST):$(PORT)
	$(BIN)/uvicorn gateway.asgi:application --host $(HOST) --port $(PORT) --workers $(WORKERS) \
		--loop uvloop --http gateway.listener:BoundedHttpToolsProtocol --no-access-log --timeout-graceful-shutdown 30

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# The browser tests (tests/integration/browser) drive Debian's chromium through chromium-driver. Installed here
# when missing and running as root (CI is); otherwise those tests skip and say why.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium and chromium-driver for the browser tests"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    { apt-get install -y -qq chromium chromium-driver || \
	      { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }; } >/dev/null \
	      || echo "could not install chromium: the browser tests will skip"; \
	  else echo "chromium or chromium-driver missing (and not root): the browser tests will skip"; fi; \
	fi

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
