# make demo: the product, running against a local simulator and local stores.
# make test: lint, format check, type check and the whole test suite.
# Both set up everything they need: a virtual environment with the package
# and its test extra, and (for tests) the Debian packages the tests start.

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& echo $$p && break; done)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the tests run: redis-server (real stores), prometheus
# (promtool and the end-to-end scrape), prometheus-alertmanager (the alert
# delivery test and amtool), chromium (the status page test), nodejs and npm
# (the Node SDK cross-check).
SYSTEM_PACKAGES := redis-server:redis-server prometheus:promtool prometheus-alertmanager:prometheus-alertmanager chromium:chromium nodejs:node npm:npm
# The Node SDK the cross-check asks, pinned by tests/support/node_sdk/package-lock.json.
NODE_SDK := .cache/node-sdk
NODE_PINS := tests/support/node_sdk

.PHONY: test demo venv system-deps node-deps lint clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
		pkg=$${pair%%:*}; cmd=$${pair##*:}; \
		command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

node-deps: system-deps
	@if ! cmp -s $(NODE_PINS)/package-lock.json $(NODE_SDK)/package-lock.json \
		|| [ ! -d $(NODE_SDK)/node_modules/@launchdarkly/node-server-sdk-redis ]; then \
		echo "installing the pinned Node SDK into $(NODE_SDK)"; \
		mkdir -p $(NODE_SDK) && cp $(NODE_PINS)/package.json $(NODE_PINS)/package-lock.json $(NODE_SDK)/ && \
		npm ci --no-audit --no-fund --silent --prefix $(NODE_SDK) \
		|| echo "npm could not install the Node SDK: the tests say why"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(STAMP) system-deps node-deps lint
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/python -m devtools.demo

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info .cache
