#!/usr/bin/env bash
# Appends a Trivy table report to the job summary (.github/workflows/scan.yml), also when the scan step failed.
#   scripts/ci/scan-summary.sh TITLE REPORT
# A missing or empty report means the scan did not run to its end: the summary says so and this step fails,
# so a broken scan never reads as "no findings". The summary is capped below GitHub's 1 MiB per step
# (docs.github.com "Workflow commands": job summaries larger than 1 MiB are not shown).
set -euo pipefail
title="${1:?title}"
report="${2:?report file}"
summary="${GITHUB_STEP_SUMMARY:?GITHUB_STEP_SUMMARY is not set}"
limit=900000

if [[ ! -s "$report" ]]; then
  {
    echo "### Trivy: $title"
    echo "No report: the scan did not finish (see the scan step's log). Nothing was checked."
  } >> "$summary"
  echo "::error title=Trivy ($title)::no report at $report: the scan did not finish"
  exit 1
fi
size="$(wc -c < "$report")"
{
  echo "### Trivy: $title (fixable CRITICAL/HIGH fail the job)"
  echo '```text'
  head -c "$limit" "$report"
  echo
  echo '```'
  if (( size > limit )); then
    echo "Report cut at $limit of $size bytes (a step summary over 1 MiB is not shown at all)."
  fi
} >> "$summary"
