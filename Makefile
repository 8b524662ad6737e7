# One command for the tests, one for the demo; both set up what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: test demo lint redis-server clean

test: $(INSTALLED) redis-server
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(INSTALLED)
	$(PY) -m tests.demo

lint: $(INSTALLED)
	$(VENV)/bin/ruff check bilicrawl tests

$(INSTALLED): requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

# Tests start their own Redis server on a free port; only the binary is needed.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq redis-server; }

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache data
