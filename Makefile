# `make run` and `make test` are the two commands; see README.md.
# Without DATABASE_URL both use an embedded PostgreSQL whose data lives under var/.

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test test-fast lint fmt check install install-dev agent-deps bench stop-db

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The example agent's dependencies (the agentfield SDK and the model client, pinned) in the same
# virtualenv, so the README's `.venv/bin/python examples/batch/main.py` runs after `make run`.
$(VENV)/.installed-agent: examples/batch/requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r examples/batch/requirements.txt
	touch $@

agent-deps: $(VENV)/.installed-agent

# The development server: daphne on $(HOST):$(PORT) (via `manage.py serve`, which refuses a
# public HOST until an API key exists) plus one dispatcher; Ctrl-C stops both, and so does
# either one exiting.
# Webhooks may reach loopback receivers here, and agents may live on loopback and private networks
# (production refuses non-public addresses for both unless they are listed).
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_dev_admin
	@echo "Control plane on http://$(HOST):$(PORT)/  (dashboard: /dashboard/, admin: /admin/)"
	@echo "Example agent: make agent-deps, then AGENTFIELD_SERVER=http://$(HOST):$(PORT) .venv/bin/python examples/batch/main.py"
	@export AGENTFIELD_WEBHOOK_ALLOWED_CIDRS="$${AGENTFIELD_WEBHOOK_ALLOWED_CIDRS:-127.0.0.0/8,::1/128}"; \
	export AGENTFIELD_AGENT_ALLOWED_CIDRS="$${AGENTFIELD_AGENT_ALLOWED_CIDRS:-127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7}"; \
	trap 'kill -TERM $$server $$dispatcher 2>/dev/null; wait $$server $$dispatcher; exit 130' INT TERM; \
	$(PY) manage.py serve --host $(HOST) --port $(PORT) & server=$$!; \
	$(PY) manage.py run_dispatcher & dispatcher=$$!; \
	wait -n $$server $$dispatcher; status=$$?; \
	echo "a process stopped (exit $$status): stopping the other" >&2; \
	kill -TERM $$server $$dispatcher 2>/dev/null; wait $$server $$dispatcher; exit $$status

test: install-dev lint check
	$(PY) -m pytest $(PYTEST_ARGS)

# The unit layer only: every test not marked e2e, so no subprocess, daphne, SDK agent or browser.
test-fast: install-dev
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

check: install-dev
	$(PY) manage.py check --fail-level WARNING
	$(PY) manage.py makemigrations --check --dry-run --noinput

$(VENV)/.installed-bench: requirements.txt requirements-dev.txt requirements-bench.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-bench.txt
	touch $(VENV)/.installed $(VENV)/.installed-dev $@

# Benchmarks (bench/README.md); results are written under bench/results/. `BENCH_ARGS=--help`.
bench: $(VENV)/.installed-bench
	$(PY) -m bench $(BENCH_ARGS)

stop-db:
	$(PY) -m agentfield_project.devdb stop
