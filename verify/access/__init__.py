"""The permission model of Muse's identities (who may do what, where) and the access matrix rendered from it.

rbac.py evaluates Azure RBAC as Azure does (conditions.py: ABAC); operations.py says what each tool asks Azure
for; model.py derives every identity's operations from the plans and the workflows and proves each is allowed,
that no grant is unneeded and that the prohibitions hold; matrix.py renders docs/access-matrix.md.
"""
