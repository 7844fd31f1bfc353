"""The governance documents `make export` writes: docs/governance/<stack>.md and <stack>.inventory.json.

sources.py collects the data from this repository (offline plans, the bootstrap plan, the workflow files);
document.py renders it. The service never imports this package: it serves the committed files
(muse/governance/published.py).
"""
