# Two commands: `make run` serves the gateway, `make test` runs the whole suite.
# Each bootstraps .venv on first use (and again when pyproject.toml changes).

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint browser mailserver bench-web bench-nlu clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required (set PYTHON=...)"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/hotline serve

# Debian's Chromium for the browser tests (Playwright drives it through executablePath).
browser:
	@dpkg -s chromium fonts-noto-cjk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk >/dev/null); \
	  else echo "chromium missing and not root: browser tests will be skipped"; fi; }

# Debian's Dovecot for the e-mail channel's tests: a real IMAP server on loopback, started by a
# fixture with its own configuration in a temporary folder (no system service is touched).
mailserver:
	@command -v dovecot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dovecot-imapd >/dev/null); \
	  else echo "dovecot missing and not root: e-mail server tests will be skipped"; fi; }

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/mypy

test: $(VENV)/.test-installed browser mailserver lint
	$(BIN)/pytest

bench-web: $(VENV)/.test-installed
	$(BIN)/python bench/web_e2e.py

bench-nlu: $(VENV)/.run-installed
	$(BIN)/python bench/nlu_parse.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
