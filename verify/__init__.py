"""The verification models: what proves the programs and workflows right offline, used by the tests,
`make drift` and CI's lint (never by the programs themselves).

access/ is the permission model (Azure RBAC, ABAC and Policy as Azure evaluates them), arm_types.py checks an
ARM body against its API version's type data, evaluate.py evaluates the exported Bicep, workflows.py reads the
GitHub workflows. docs/architecture/code.md places the package among the others.
"""
