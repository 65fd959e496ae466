# Boogu Image API toolkit. `make test` and `make demo` set up everything themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PY := $(BIN)/python
NODE_BIN := $(CURDIR)/node_modules/.bin
export PATH := $(BIN):$(NODE_BIN):$(PATH)
# The mock is local; never send these requests through a proxy.
export NO_PROXY := 127.0.0.1,localhost,$(NO_PROXY)
export no_proxy := 127.0.0.1,localhost,$(no_proxy)

# pytest-xdist, three workers for two cores (at most 8): the suite often waits on processes, sockets and
# real time, and one worker per core left a core idle for a third of the run; a fourth worker for two
# cores only added its start-up. A test file stays on one worker (some share a gateway across tests),
# handed out in the suite's order (contract_tests/conftest.py: the slowest first), not pytest-xdist's
# own (files with the most tests first), which started the README and wheel tests past a minute in.
PYTEST_WORKERS ?= $(shell nproc 2>/dev/null | awk '{ n = int((3 * $$1 + 1) / 2); print (n > 8 ? 8 : n) }')
PYTEST_PARALLEL := -n $(or $(PYTEST_WORKERS),2) --dist loadfile --no-loadscope-reorder
# `make test-fast`: the unit and in-process suites (no server process, build or real-time wait), ~25 s.
TEST_FAST := contract_tests/spec contract_tests/codegen/test_generated_client.py \
	contract_tests/codegen/test_generated_readme.py contract_tests/mock/test_backend.py \
	contract_tests/mock/test_jobs.py contract_tests/mock/test_http.py contract_tests/mock/test_webhooks.py \
	contract_tests/mock/test_wallet.py contract_tests/mock/test_ratelimit.py \
	contract_tests/mock/test_in_process.py contract_tests/mock/test_media.py \
	contract_tests/mock/test_capacity.py contract_tests/mock/test_plugin.py contract_tests/mock/test_gc_pacer.py \
	contract_tests/mock/test_coalesce.py contract_tests/client/test_core.py \
	contract_tests/client/test_client_respx.py contract_tests/client/test_batch.py \
	contract_tests/client/test_gate.py
# Every Python process make starts keeps compiled modules (and pytest its rewritten test modules) in
# build/pycache, even where the environment sets PYTHONDONTWRITEBYTECODE: compiling everything afresh
# cost each pytest process (and each mock or CLI process the tests start) seconds of CPU. pip compiles
# the venv there once, as it installs it, not the first processes of a run all at once.
export PYTHONDONTWRITEBYTECODE :=
export PYTHONPYCACHEPREFIX := $(CURDIR)/build/pycache

.PHONY: setup generate check-generated lint lint-python lint-spec spec-diff docs clients chromium test test-contract
.PHONY: test-steps test-ts test-client test-fast demo mock prism bench bench-client bench-proxy dist fuzz clean

setup: $(VENV)/.installed node_modules/.installed ## venv with the project and dev tools, pinned npm tools

# generated/ is its own distribution (boogu-image-client), which the toolkit depends on. uv installs the
# venv (and the OpenAPI Generator python client's, tools/client_smoke.py): pip took 42 s and 28 CPU-s
# here, uv 12 s and 17 CPU-s, compiling into build/pycache on both cores. uv reads none of pip's
# settings: where it cannot reach the index that pip is set up for (a mirror in pip.conf), pip installs
# instead. pip stays in the venv for the tests that install our wheels as a user would.
UV := uv==0.13.9
DEV_INSTALL := "pip>=24" -e ./generated -e '.[dev]'
$(BIN)/uv:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(UV)"

$(VENV)/.installed: pyproject.toml generated/pyproject.toml $(BIN)/uv
	$(BIN)/uv pip install --quiet --system-certs --compile-bytecode --python $(PY) $(DEV_INSTALL) \
		|| { echo "make setup: uv failed (above); installing with pip"; $(PY) -m pip install --quiet $(DEV_INSTALL); }
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Stoplight Prism, for `make bench BENCH_ARGS=--prism` only: its own npm project, a third the size of the
# root one, so that `make setup` does not install it.
prism: tools/prism/node_modules/.installed ## Stoplight Prism, pinned in tools/prism/, for the benchmark's --prism

tools/prism/node_modules/.installed: tools/prism/package.json tools/prism/package-lock.json
	npm ci --prefix tools/prism --no-audit --no-fund --loglevel=error
	touch $@

generate: setup ## regenerate generated/ from openapi.yaml
	$(PY) -m tools.generate_client

check-generated: setup ## fail when generated/ is out of date with openapi.yaml
	$(PY) -m tools.generate_client --check

lint: lint-python lint-spec spec-diff ## ruff, mypy, import layers, the three spec linters, the breaking-change check

lint-python: setup
	ruff check .
	ruff format --check .
	mypy
	lint-imports --no-cache

lint-spec: setup
	$(PY) -m tools.lint_spec

spec-diff: setup ## breaking changes in openapi.yaml since its last change (or since BASE=<git revision>)
	$(PY) -m tools.spec_diff $(if $(BASE),--base $(BASE))

docs: setup build/docs/index.html ## the offline HTML reference of openapi.yaml, served by the mock at /docs

# Rebuilt only when a source changed, so that `make dist` during the tests never rewrites it under them.
build/docs/index.html: openapi.yaml redocly.yaml tools/offline_docs.py package-lock.json | $(VENV)/.installed node_modules/.installed
	npm run --silent docs
	$(PY) -m tools.offline_docs $@

clients: setup ## every client in another language (TypeScript, Python, Go, Rust, Java, Kotlin), built in build/clients/ when stale
	$(PY) -m tools.client_smoke --build-only

dist: setup docs ## the two wheels a third party installs, in build/dist/ (no download: the venv's backends)
	rm -rf build/dist
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation --no-index --wheel-dir build/dist ./generated .

chromium: ## Debian's chromium for the docs test, installed when missing (needs root or sudo)
	bash tools/install_chromium.sh

# The steps before the tests run side by side (`-j`: the venv beside npm, lint beside the client builds),
# each one's output printed whole when it ends; the schemathesis CLI and the clients' smoke tests run
# beside pytest (each mostly waits on a socket).
test: ## everything: drift check, lint, all test suites
	$(MAKE) --no-print-directory -j 3 --output-sync=target test-steps
	$(PY) -m tools.run_pytest $(PYTEST_PARALLEL) --beside tools.schemathesis_cli --beside "tools.client_smoke --no-build"

test-steps: setup check-generated lint docs clients chromium

test-fast: setup ## only the unit and in-process suites, for the edit loop (~25 s)
	$(PY) -m tools.run_pytest $(PYTEST_PARALLEL) $(TEST_FAST)

test-contract: setup ## only the contract suite
	$(PY) -m tools.run_pytest contract_tests

test-client: setup ## only the client suite (~30 s)
	$(PY) -m tools.run_pytest contract_tests/client

test-ts: clients ## only the clients in other languages: each one's smoke test against the mock gateway
	$(PY) -m tools.client_smoke --no-build

demo: setup ## start the mock gateway and drive a real generation end to end
	$(PY) -m tools.demo --out images

mock: setup ## serve the mock gateway on http://127.0.0.1:8080
	$(PY) -m mock_gateway --host 127.0.0.1 --port 8080

fuzz: setup ## hypothesis against the mock's admin API and API edges, the proxy, the replay and the client, 1,500 examples each (~2 min)
	FUZZ_EXAMPLES=1500 $(PY) -m pytest contract_tests/mock/test_fuzz.py contract_tests/proxy/test_fuzz.py \
		contract_tests/client/test_fuzz.py -q -p no:cacheprovider

bench: setup $(if $(findstring --prism,$(BENCH_ARGS)),prism) ## issue 20's figures in one table: mock vs bare Starlette under wrk, 200,000 held jobs, in-process vs respx, the proxy (~4 min; installs Debian's wrk when missing)
	$(PY) -m tools.bench_mock $(BENCH_ARGS)

bench-client: setup ## the client: polling lag (idle, busy fleet), throughput, 500 async waits, rate limits (~5 min)
	$(PY) -m tools.bench_polling

bench-proxy: setup ## what the validating proxy adds per call, against direct calls to the same mock
	$(PY) -m tools.bench_proxy

clean:
	rm -rf $(VENV) node_modules tools/prism/node_modules build .pytest_cache .mypy_cache .ruff_cache images
