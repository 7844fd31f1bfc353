"""ABAC role assignment conditions (version 2.0) as a small typed structure, rendered to Azure's condition
language. rbac/roles.py builds its conditions from these; verify/access/conditions.py parses plan strings
into the same structure and evaluates them.

Grammar: https://learn.microsoft.com/azure/role-based-access-control/conditions-format: `AND` binds tighter
than `OR`, `!` negates, parentheses group; `ForAnyOfAnyValues:` operators compare with a set `{...}`, plain
ones with one value; GUIDs are written bare, strings in single quotes. Parentheses make the text mean the tree
whatever the precedence: `!` wraps as `(!(x))`, an `OR` is wrapped whole and wraps each operand not already
wrapped, an `AND` writes its operands bare (an `AND` inside one is wrapped).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Compare:
    """`<attribute> <operator> <value(s)>`: e.g. `@Request[...:PrincipalType]`,
    `ForAnyOfAnyValues:StringEqualsIgnoreCase`, ("ServicePrincipal",)."""

    attribute: str
    operator: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.values or (not self.cross_product and len(self.values) != 1):
            raise ValueError(f"{self.operator} takes {'a set' if self.cross_product else 'one value'}")

    @property
    def cross_product(self) -> bool:
        return self.operator.lower().startswith("foranyofanyvalues:")

    def render(self) -> str:
        guid = self.operator.split(":")[-1].lower().startswith("guid")
        written = [value if guid else f"'{value}'" for value in self.values]
        value = "{" + ", ".join(written) + "}" if self.cross_product else written[0]
        return f"{self.attribute} {self.operator} {value}"


@dataclass(frozen=True)
class ActionMatches:
    """`ActionMatches{'<pattern>'}`: the request's action matches the pattern (wildcards allowed)."""

    pattern: str

    def render(self) -> str:
        return f"ActionMatches{{'{self.pattern}'}}"


@dataclass(frozen=True)
class Not:
    operand: Condition

    def render(self) -> str:
        return f"(!({self.operand.render()}))"


@dataclass(frozen=True)
class And:
    operands: tuple[Condition, ...]

    def render(self) -> str:
        return " AND ".join(f"({o.render()})" if isinstance(o, And) else o.render() for o in self.operands)


@dataclass(frozen=True)
class Or:
    operands: tuple[Condition, ...]

    def render(self) -> str:
        wrapped = (o.render() if isinstance(o, Not | Or) else f"({o.render()})" for o in self.operands)
        return "(" + " OR ".join(wrapped) + ")"


Condition = Compare | ActionMatches | Not | And | Or


def request(attribute: str) -> str:
    """`@Request[<attribute>]`: an attribute of the request (the role assignment being written)."""
    return f"@Request[{attribute}]"


def resource(attribute: str) -> str:
    """`@Resource[<attribute>]`: an attribute of the resource acted on (the assignment being deleted)."""
    return f"@Resource[{attribute}]"


def only_when(action: str, condition: Condition) -> Or:
    """The form Azure documents for an action-scoped condition: other actions pass, `action` needs
    `condition` (`(!(ActionMatches{'<action>'})) OR (<condition>)`)."""
    return Or((Not(ActionMatches(action)), condition))


def flatten(condition: Condition) -> Condition:
    """The same condition without redundant grouping: an AND/OR of one operand is that operand, and an AND
    inside an AND (an OR inside an OR) joins its parent. Two conditions with the same flattened tree mean the
    same for every request; a parser cannot tell `((a))` from `a`, so round trips compare flattened trees."""
    if isinstance(condition, Not):
        return Not(flatten(condition.operand))
    if isinstance(condition, And | Or):
        kind = type(condition)
        operands: list[Condition] = []
        for operand in (flatten(o) for o in condition.operands):
            operands.extend(operand.operands if isinstance(operand, kind) else (operand,))
        return operands[0] if len(operands) == 1 else kind(tuple(operands))
    return condition
