"""Muse: evaluates an infrastructure resource inventory against governance policies (CLI and HTTP service)."""

__version__ = "0.1.0"
