# One command for the tests, one for the demo, one for the benchmarks; each sets up what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: test test-fast demo bench lint proto redis-server clean

test: $(INSTALLED) redis-server
	$(PY) -m pytest $(PYTEST_ARGS)

# The tests not marked slow (subprocesses, long end-to-end crawls), in under a minute.
test-fast: $(INSTALLED) redis-server
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

demo: $(INSTALLED)
	$(PY) -m tests.demo

# All benchmarks (about 24 minutes), figures written into docs/benchmarks.md.
# Options go in BENCH_ARGS, e.g. make bench BENCH_ARGS="--quick" or "--only request";
# see .venv/bin/python -m bench --help.
bench: $(INSTALLED)
	$(PY) -m bench $(BENCH_ARGS)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check bilicrawl tests bench
	$(VENV)/bin/ruff format --check bilicrawl tests bench
	$(VENV)/bin/mypy

# Regenerate the danmaku protobuf code from bilicrawl/proto/dm.proto with a pinned protoc
# (grpcio-tools), in a throwaway environment; the generated dm_pb2.py is checked in.
proto:
	$(PYTHON) -m venv .venv-proto
	.venv-proto/bin/python -m pip install --quiet -r requirements-proto.txt
	.venv-proto/bin/python -m grpc_tools.protoc -I bilicrawl/proto --python_out=bilicrawl/proto bilicrawl/proto/dm.proto
	rm -rf .venv-proto

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
