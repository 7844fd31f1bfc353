"""The command-line entry points of the programs and the tooling: one small module per command.

The rule: a library module never runs as a script. The command that fronts library module
`<package>/<name>.py` is `cli/<name>.py`, run as `python -m cli.<name>`; it parses the arguments, calls the
library's functions, prints, and returns the exit code. A package that is itself one command keeps it in its
`__main__.py` (`muse`, `export`, `policy`, `bench`). tests/test_architecture.py enforces the rule
(docs/architecture/code.md).
"""
