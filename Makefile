# The two commands of the README, and what they need. Everything installs into .venv from PyPI.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
PHASE  ?= phase-1

.PHONY: render plan test lint unit bench bench-stacks bench-nodes node-image clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

## render: validate the shipped campus, plan a phase (PHASE=phase-1 by default), render it and verify it
render: $(STAMP)
	$(BIN)/kasbah validate
	$(BIN)/kasbah plan $(PHASE)
	$(BIN)/kasbah render $(PHASE) --out rendered/campus/$(PHASE)
	$(BIN)/kasbah verify rendered/campus/$(PHASE)

## plan: validate and plan only
plan: $(STAMP)
	$(BIN)/kasbah validate
	$(BIN)/kasbah plan $(PHASE)

## test: linters and the whole test suite
test: lint unit

lint: $(STAMP)
	$(BIN)/ruff check modules tests stacks
	$(BIN)/ruff format --check modules tests stacks
	$(BIN)/mypy
	$(BIN)/yamllint --strict environments tests playbooks stacks .yamllint .ansible-lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/ansible-lint --nocolor -q

unit: $(STAMP)
	$(BIN)/pytest

## bench: plan, render and verify time and peak memory for every shipped phase; Ansible inventory load
bench: $(STAMP)
	$(BIN)/python tests/benchmarks/bench_plan.py
	$(BIN)/python tests/benchmarks/bench_render.py

## bench-stacks: resources and mocked program time of every stack at 40 MW and 500 MW, vs one resource per object
bench-stacks: $(STAMP)
	$(BIN)/python tests/benchmarks/bench_pulumi.py

## node-image: the Debian 12 node image and package mirror the playbook tests run on (mmdebstrap, docker import)
node-image: $(STAMP)
	$(BIN)/python tests/nodes/build_image.py

## bench-nodes: Ansible controller overhead on node containers, default vs tuned settings (needs Docker)
bench-nodes: $(STAMP)
	$(BIN)/python tests/benchmarks/bench_ansible.py

clean:
	rm -rf $(VENV) rendered .mypy_cache .ruff_cache .pytest_cache .hypothesis
