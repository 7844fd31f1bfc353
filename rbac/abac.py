"""ABAC role assignment conditions (version 2.0) as a small typed structure, rendered to Azure's condition
language, and `parse` reads that language back into the same structure (for plans and Azure's strings:
rbac/conditions.py summarises them, verify/access/conditions.py evaluates them).

Grammar: https://learn.microsoft.com/azure/role-based-access-control/conditions-format: `AND` binds tighter
than `OR`, `!` negates, parentheses group; `ForAnyOfAnyValues:` operators compare with a set `{...}`, plain
ones with one value; GUIDs are written bare, strings in single quotes. Parentheses make the text mean the tree
whatever the precedence: `!` wraps as `(!(x))`, an `OR` is wrapped whole and wraps each operand not already
wrapped, an `AND` writes its operands bare (an `AND` inside one is wrapped).
"""

from __future__ import annotations

import re
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


# ----------------------------------------------------------------------------------------------------------
# Parsing: the grammar above, and nothing else (a form outside it is refused with its position, so a new
# form cannot be silently misread).

_TOKEN = re.compile(
    r"\s*(?:(?P<lparen>\()|(?P<rparen>\))|(?P<not>!)|(?P<and>AND\b)|(?P<or>OR\b)"
    r"|ActionMatches\{'(?P<action>[^']*)'\}"
    r"|(?P<attribute>@(?:Request|Resource|Principal|Environment)\[[^\]]+\])"
    r"|(?P<operator>(?:ForAnyOfAnyValues:)?(?:StringNotEqualsIgnoreCase|StringNotEquals|StringEqualsIgnoreCase"
    r"|StringEquals|GuidNotEquals|GuidEquals))"
    r"|'(?P<string>[^']*)'"
    r"|\{(?P<set>[^}]*)\})",
    re.IGNORECASE,
)


def _tokens(condition: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = condition.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ValueError(
                f"unsupported condition syntax at {position}: {text[position : position + 40]!r}"
            )
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind) or ""))
        position = match.end()
        while position < len(text) and text[position].isspace():
            position += 1
    return tokens


def _set_values(raw: str) -> list[str]:
    return [v.strip().strip("'") for v in raw.split(",") if v.strip()]


class _Parser:
    """Recursive descent over the tokens into rbac/abac.py's structure (OR of ANDs of factors)."""

    def __init__(self, condition: str) -> None:
        self.tokens = _tokens(condition)
        self.index = 0

    def peek(self) -> str:
        return self.tokens[self.index][0] if self.index < len(self.tokens) else ""

    def take(self, kind: str) -> str:
        if self.peek() != kind:
            raise ValueError(f"expected {kind} at token {self.index}, found {self.peek() or 'end'}")
        value = self.tokens[self.index][1]
        self.index += 1
        return value

    def expression(self) -> Condition:
        operands = [self.term()]
        while self.peek() == "or":
            self.take("or")
            operands.append(self.term())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def term(self) -> Condition:
        operands = [self.factor()]
        while self.peek() == "and":
            self.take("and")
            operands.append(self.factor())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def factor(self) -> Condition:
        kind = self.peek()
        if kind == "not":
            self.take("not")
            return Not(self.factor())
        if kind == "lparen":
            self.take("lparen")
            value = self.expression()
            self.take("rparen")
            return value
        if kind == "action":
            return ActionMatches(self.take("action"))
        if kind == "attribute":
            attribute = self.take("attribute")
            operator = self.take("operator")
            wanted = _set_values(self.take("set")) if self.peek() == "set" else [self.take("string")]
            return Compare(attribute, operator, tuple(wanted))
        raise ValueError(f"unexpected {kind or 'end'} at token {self.index}")


def parse(condition: str) -> Condition:
    """The structure of a condition string (from a plan or Azure). Raises ValueError on syntax it does not
    know, so a new form cannot be silently misread."""
    parser = _Parser(condition)
    value = parser.expression()
    if parser.index != len(parser.tokens):
        raise ValueError(f"trailing tokens from {parser.index} in condition")
    return value
