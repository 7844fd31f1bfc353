#!/usr/bin/env bash
# Install the Python packages of a checked-out deployed commit (drift.yml), hash-locked: the job holds an Azure
# identity, so only hash-locked wheels may install there (Makefile, ci-venv).
#   scripts/ci/deployed-venv.sh <worktree of the deployed commit>
# A commit that has `make ci-venv` installs its own lock with it: its program runs with the versions it was
# deployed with. A commit older than that target has no hash-locked install of its own; it gets this commit's
# requirements-ci.txt (--require-hashes, wheels only) in its own .venv, and the summary says so, since its
# providers may then be newer than the ones it was deployed with.
set -euo pipefail

worktree="${1:?usage: deployed-venv.sh <worktree>}"
current="$(cd "$(dirname "$0")/../.." && pwd)"
python="${PYTHON:-python3}"

# `make -n` prints a target's recipe without running it and fails with "No rule to make target" when the
# Makefile has none (GNU make manual, "Instead of Executing Recipes").
if make -C "$worktree" -n ci-venv >/dev/null 2>&1; then
  make -C "$worktree" ci-venv
  exit 0
fi

note="the deployed commit has no \`make ci-venv\`: installed this commit's hash-locked requirements-ci.txt into its .venv"
echo "::notice title=Deployed commit::$note"
echo "- $note" >> "${GITHUB_STEP_SUMMARY:-/dev/null}"
test -x "$worktree/.venv/bin/python" || "$python" -m venv "$worktree/.venv"
"$worktree/.venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
  --only-binary=:all: -r "$current/requirements-ci.txt"
if [[ -f "$worktree/pyproject.toml" ]]; then
  # The deployed commit's own code, as `make ci-venv` installs it: no dependencies, the locked setuptools.
  "$worktree/.venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --no-build-isolation --config-settings editable_mode=compat -e "$worktree"
fi
