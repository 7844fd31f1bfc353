"""What docs/runbook.md has a person run in a cluster: every kubectl command of its shell blocks and of its
inline code, read from the runbook itself, as the Kubernetes requests each makes (API group, resource, verb).

The permission model (verify/access/model.py `people`) turns each request into the Azure data action AKS
checks for it and proves an operators' group member holds it. A kubectl command this module cannot read (an
unknown subcommand or resource) is an error, so a new runbook step cannot go unmodelled. How a request
becomes a data action, and what each subcommand asks for, from kubeguard's and kubectl's code:
Why: docs/architecture/code.md#the-runbooks-kubectl-requests."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from rbac.arm import LIST_CLUSTER_USER_CREDENTIAL, LOG_ANALYTICS_WORKSPACES, RESOURCE_GROUPS_READ
from stack.files import REPO_ROOT

RUNBOOK = REPO_ROOT / "docs" / "runbook.md"

SHELL_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)```(?:bash|sh|shell|console)\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
ANY_FENCE = re.compile(r"^[ \t]*```.*?^[ \t]*```", re.M | re.S)
# Inline code may wrap onto the next line (CommonMark: a line ending inside a code span is a space), never
# across a blank line.
INLINE_CODE = re.compile(r"(?<!`)`((?:[^`\n]|\n(?![ \t]*\n))+)`(?!`)")
PLACEHOLDER = re.compile(r"<[^<>\n]+>")  # `<pod>`, `<new pod>`: a value the reader fills in
SEPARATORS = {"|", "||", "&", "&&", ";", ";;", "(", ")", ");", "$", "`"}
SHELL_KEYWORDS = {"do", "then", "else", "time", "!", "{"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")

# Resource names kubectl accepts (`kubectl api-resources`: NAME, SHORTNAMES, APIVERSION; the Gateway API and
# Secrets Store CSI CRDs' own shortNames), each to (API group, plural). Only those the runbook may use: an
# unknown one is an error, not a guess.
_RESOURCES: dict[tuple[str, str], tuple[str, ...]] = {
    ("core", "pods"): ("pod", "po"),
    ("core", "nodes"): ("node", "no"),
    ("core", "events"): ("event", "ev"),
    ("core", "secrets"): ("secret",),
    ("core", "namespaces"): ("namespace", "ns"),
    ("core", "configmaps"): ("configmap", "cm"),
    ("core", "services"): ("service", "svc"),
    ("core", "serviceaccounts"): ("serviceaccount", "sa"),
    ("apps", "deployments"): ("deployment", "deploy"),
    ("apps", "replicasets"): ("replicaset", "rs"),
    ("apps", "daemonsets"): ("daemonset", "ds"),
    ("autoscaling", "horizontalpodautoscalers"): ("horizontalpodautoscaler", "hpa"),
    ("batch", "jobs"): ("job",),
    ("policy", "poddisruptionbudgets"): ("poddisruptionbudget", "pdb"),
    ("networking.k8s.io", "networkpolicies"): ("networkpolicy", "netpol"),
    ("gateway.networking.k8s.io", "gateways"): ("gateway", "gtw"),
    ("gateway.networking.k8s.io", "httproutes"): ("httproute",),
    ("secrets-store.csi.x-k8s.io", "secretproviderclasses"): ("secretproviderclass",),
}
RESOURCE_NAMES: dict[str, tuple[str, str]] = {
    name: key for key, aliases in _RESOURCES.items() for name in (key[1], *aliases)
}

# Flags that take a value as the next word (kubectl's global and per-command flags the runbook may use).
VALUED_FLAGS = {
    "-n",
    "--namespace",
    "-l",
    "--selector",
    "-o",
    "--output",
    "-L",
    "--label-columns",
    "-p",
    "--patch",
    "--type",
    "--for",
    "--timeout",
    "--to-revision",
    "--sort-by",
    "--kubeconfig",
    "--context",
    "-k",
    "--kustomize",
    "-f",
    "--filename",
    "-c",
    "--container",
    "--tail",
    "--since",
    "--grace-period",
}


@dataclass(frozen=True)
class Request:
    """One kind of Kubernetes API request: `verb` is Azure's (read, write, delete)."""

    group: str  # "core" for the core group
    resource: str  # plural
    verb: str


@dataclass(frozen=True)
class KubectlCommand:
    text: str  # the command as the runbook writes it
    line: int  # its line in the runbook
    requests: tuple[Request, ...]  # empty: a mention in prose (`kubectl top`), not a command to run

    @property
    def label(self) -> str:
        return f"docs/runbook.md:{self.line}: {self.text}"


def _resource(name: str) -> tuple[str, str]:
    lowered = name.lower()
    if lowered in RESOURCE_NAMES:
        return RESOURCE_NAMES[lowered]
    plural, _, group = lowered.partition(".")  # `secretproviderclasses.secrets-store.csi.x-k8s.io`
    if group and plural in RESOURCE_NAMES and RESOURCE_NAMES[plural][0] == group:
        return RESOURCE_NAMES[plural]
    raise ValueError(f"unknown Kubernetes resource {name!r}: add it to verify/access/runbook.py _RESOURCES")


def _split(words: list[str]) -> tuple[list[str], dict[str, str]]:
    """(positional words, flags) of a kubectl command line after `kubectl`."""
    positional, flags = [], {}
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("-") and word != "-":
            name, eq, value = word.partition("=")
            if not eq and name in VALUED_FLAGS and i + 1 < len(words):
                value = words[i + 1]
                i += 1
            flags[name] = value
        else:
            positional.append(word)
        i += 1
    return positional, flags


def _targets(args: list[str]) -> list[tuple[str, str]]:
    """(group, plural) of each object or kind the arguments name: `TYPE[,TYPE] [NAME...]` or `TYPE/NAME`."""
    if not args:
        return []
    if "/" in args[0]:
        return [_resource(arg.split("/", 1)[0]) for arg in args if "/" in arg]
    return [_resource(name) for name in args[0].split(",")]


def _reads(targets: list[tuple[str, str]]) -> list[Request]:
    return [Request(group, plural, "read") for group, plural in targets]


def manifest_kinds(directory: Path) -> list[tuple[str, str]]:
    """(group, plural) of every object `kubectl apply -k <directory>` sends: the kustomization's resources,
    recursively, less the local-config objects kustomize does not emit (config.kubernetes.io/local-config)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    found = []
    for entry in kustomization.get("resources") or []:
        path = directory / entry
        if path.is_dir():
            found += manifest_kinds(path)
            continue
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not document:
                continue
            annotations = (document.get("metadata") or {}).get("annotations") or {}
            if str(annotations.get("config.kubernetes.io/local-config", "")).lower() == "true":
                continue
            api_version, kind = str(document["apiVersion"]), str(document["kind"])
            group = api_version.split("/")[0] if "/" in api_version else "core"
            found.append(_kind(group, kind))
    return found


def _kind(group: str, kind: str) -> tuple[str, str]:
    for (known_group, plural), aliases in _RESOURCES.items():
        if known_group == group and kind.lower() in aliases:
            return known_group, plural
    raise ValueError(f"unknown kind {group}/{kind}: add it to verify/access/runbook.py _RESOURCES")


def requests_of(words: list[str], overlay: Path) -> tuple[Request, ...]:
    """The requests of one kubectl command (its words after `kubectl`); () for a mention without a target.
    `overlay`: the directory an `apply -k deploy/overlays/<stack>` means, for the model's stack."""
    args, flags = _split(words)
    if not args:
        return ()
    command, rest = args[0], args[1:]
    found: list[Request] = []
    if command in ("get", "wait"):
        found = _reads(_targets(rest))
    elif command == "describe":
        targets = _targets(rest)
        found = [*_reads(targets), Request("core", "events", "read")] if targets else []
    elif command == "logs":
        if rest and rest[0].lower().startswith("job/"):
            found = [Request("batch", "jobs", "read"), Request("core", "pods", "read")]
        elif rest:
            found = [Request("core", "pods", "read")]  # pods/log: checked as the pod (guard)
    elif command == "delete":
        targets = _targets(rest)
        found = [*_reads(targets), *(Request(g, p, "delete") for g, p in targets)]
    elif command == "patch":
        found = [Request(g, p, "write") for g, p in _targets(rest)]
    elif command == "rollout":
        sub, target = (rest[0], _targets(rest[1:])) if rest else ("", [])
        if target:
            found = _reads(target)
            if sub in ("history", "undo"):
                found.append(Request("apps", "replicasets", "read"))
            if sub in ("undo", "restart", "pause", "resume"):
                found += [Request(g, p, "write") for g, p in target]
            elif sub not in ("history", "status"):
                raise ValueError(f"kubectl rollout {sub} is not modelled in verify/access/runbook.py")
    elif command == "top":
        if rest and _resource(rest[0]) == ("core", "nodes"):
            found = [Request("metrics.k8s.io", "nodes", "read"), Request("core", "nodes", "read")]
        elif rest and _resource(rest[0]) == ("core", "pods"):
            found = [Request("metrics.k8s.io", "pods", "read")]
    elif command == "cordon":
        if rest or "-l" in flags or "--selector" in flags:
            found = [Request("core", "nodes", "read"), Request("core", "nodes", "write")]
    elif command == "drain":
        if rest or "-l" in flags or "--selector" in flags:
            found = [
                Request("core", "nodes", "read"),
                Request("core", "nodes", "write"),  # cordon first
                Request("core", "pods", "read"),
                Request("core", "pods", "write"),  # pods/eviction create
                Request("apps", "daemonsets", "read"),
            ]
    elif command == "apply":
        directory = flags.get("-k") or flags.get("--kustomize")
        if directory:
            path = overlay if directory.startswith("deploy/overlays/") else REPO_ROOT / directory
            kinds = manifest_kinds(path)
            found = [Request(g, p, verb) for g, p in kinds for verb in ("read", "write")]
        elif flags.get("-f") or flags.get("--filename"):
            raise ValueError("kubectl apply -f is not modelled: name the objects in verify/access/runbook.py")
    elif command == "auth" and rest[:1] == ["can-i"]:
        # A SelfSubjectAccessReview: Kubernetes RBAC's system:basic-user lets every authenticated user ask
        # (kubernetes.io/docs/reference/access-authn-authz/rbac, "Default roles and role bindings").
        found = []
    elif command in ("kustomize", "version", "config", "api-resources", "explain", "scale"):
        if command == "scale" and rest:
            raise ValueError("kubectl scale is not modelled in verify/access/runbook.py")
        found = []  # local, or a mention in prose
    else:
        raise ValueError(f"kubectl {command} is not modelled in verify/access/runbook.py")
    return tuple(dict.fromkeys(found))


def _invocations(code: str) -> Iterator[list[str]]:
    """The words after `kubectl` of every kubectl invocation on a shell line (pipes, `;`, `$(...)`)."""
    # A placeholder is one word, whatever it holds (`<new pod>`), shown as written.
    holders = PLACEHOLDER.findall(code)
    for i, holder in enumerate(holders):
        code = code.replace(holder, f"__placeholder{i}__", 1)
    lexer = shlex.shlex(code, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        words = list(lexer)
    except ValueError:  # an unclosed quote: a line of a multi-line string, not a command
        return
    for i, holder in enumerate(holders):
        words = [word.replace(f"__placeholder{i}__", holder) for word in words]
    segment: list[str] = []
    for word in [*words, ";"]:
        if word in SEPARATORS or set(word) <= set("|&;()`$"):
            # A simple command may start with a shell keyword or variable assignments: `do kubectl ...`.
            while segment and (segment[0] in SHELL_KEYWORDS or ASSIGNMENT.match(segment[0])):
                segment.pop(0)
            if segment and segment[0] == "kubectl":
                yield segment[1:]
            segment = []
        else:
            segment.append(word)


def for_stack(command: str, stack: str) -> str:
    """A command as written (in prod's names, the runbook's convention: "for dev replace `prod` with `dev`")
    as it is run against `stack`."""
    command = re.sub(r"\bmuse-prod\b", f"muse-{stack}", command)
    return re.sub(r"\bscripts/stack prod\b", f"scripts/stack {stack}", command)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def commands(stack: str, markdown: str | None = None) -> list[KubectlCommand]:
    """Every kubectl command of the runbook (its shell blocks and inline code), for `stack`'s cluster."""
    text = RUNBOOK.read_text(encoding="utf-8") if markdown is None else markdown
    overlay = REPO_ROOT / "deploy" / "overlays" / stack
    found: list[KubectlCommand] = []
    pieces: list[tuple[int, str]] = []
    for block in SHELL_BLOCK.finditer(text):
        start = block.start("body")
        body = re.sub(r"\\\n", "  ", block.group("body"))  # continuation lines: same length, same lines
        offset = 0
        for raw in body.split("\n"):
            pieces.append((_line_of(text, start + offset), raw))
            offset += len(raw) + 1
    prose = ANY_FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for span in INLINE_CODE.finditer(prose):
        code = " ".join(span.group(1).split())
        if code.startswith("kubectl "):
            pieces.append((_line_of(prose, span.start()), code))
    for line, code in sorted(pieces):
        for words in _invocations(code):
            shown = for_stack("kubectl " + " ".join(words), stack)
            try:
                requests = requests_of(words, overlay)
            except ValueError as error:
                raise ValueError(f"docs/runbook.md:{line}: {shown}: {error}") from None
            found.append(KubectlCommand(shown, line, requests))
    return found


# --- the operator's path: whose grants exist when a member runs a step ------------------------------------

PATH_SECTION = "## The operator's path\n"
PATH_STEP = re.compile(r"^(\d+)\. \*\*(.+?)\*\*", re.M)
# A step a member of a stack's operators' group runs: its commands address the stack through the wrapper
# (`scripts/stack <env> stack output`), its namespace (`kubectl -n muse-<env>`) or its cluster.
MEMBER_STACK = re.compile(r"scripts/stack (\w+) stack output|kubectl -n muse-(\w+)\b")
# Where a step writes a stack's operators' group into its stack file (a yaml block that names the file).
SETS_GROUP = re.compile(
    r"^[ \t]*```yaml\n[ \t]*#\s*Pulumi\.(\w+)\.yaml\b[^\n]*\n"
    r"(?:(?![ \t]*```)[^\n]*\n)*?[ \t]*muse:operatorsGroupObjectId:[ \t]*\S",
    re.M,
)


@dataclass(frozen=True)
class PathStep:
    number: int
    title: str
    text: str

    def member_stacks(self) -> set[str]:
        """The stacks whose operators' grants the step's member commands need."""
        if "kubectl" not in self.text and "get-credentials" not in self.text:
            return set()
        return {a or b for a, b in MEMBER_STACK.findall(self.text)}

    def sets_group_of(self) -> set[str]:
        return set(SETS_GROUP.findall(self.text))


def path_steps(markdown: str | None = None) -> list[PathStep]:
    """The numbered steps of the runbook's "The operator's path", each with its text up to the next step."""
    text = RUNBOOK.read_text(encoding="utf-8") if markdown is None else markdown
    section = text.split(PATH_SECTION, 1)[1].split("\n## ", 1)[0]
    starts = list(PATH_STEP.finditer(section))
    return [
        PathStep(int(m.group(1)), m.group(2), section[m.start() : ends.start() if ends else len(section)])
        for m, ends in zip(starts, [*starts[1:], None], strict=True)
    ]


def steps_without_grants(set_in_files: set[str], markdown: str | None = None) -> list[str]:
    """The path's member steps that use a stack whose operators' group neither its stack file names
    (`set_in_files`: stacks whose file sets a real group) nor an earlier step of the path sets: the bootstrap
    grants such a group nothing, so the member's commands are refused."""
    found, set_by_path = [], set(set_in_files)
    for step in path_steps(markdown):
        for stack in sorted(step.member_stacks() - set_by_path):
            found.append(f"step {step.number} ({step.title}): a member uses {stack}, whose group nobody set")
        set_by_path |= step.sets_group_of()
    return found


# --- triage: the portal steps and `az` commands of "When an alert fires" ---------------------------------

TRIAGE_SECTION = "## When an alert fires\n"
WORKSPACES = LOG_ANALYTICS_WORKSPACES
ALERTS = "Microsoft.AlertsManagement/alerts"


@dataclass(frozen=True)
class AzureRequest:
    """One Azure (control-plane) action a triage step needs, on one of the stack's resources: `target` is
    "group", "workspace", "workbook", "cluster" or "alert" (an alert on the stack's resources)."""

    action: str
    target: str


def _queries(tables: tuple[str, ...]) -> tuple[AzureRequest, ...]:
    # A Log Analytics query is authorized per table: workspaces/query/<table>/read
    # (learn.microsoft.com/azure/azure-monitor/logs/manage-access, "Set table-level read access").
    return tuple(AzureRequest(f"{WORKSPACES}/query/{table}/read", "workspace") for table in tables)


# What Container Insights' views read (learn.microsoft.com/azure/azure-monitor/containers/container-insights-
# log-query, "Container tables"): inventories, metrics and the container logs, and the cluster resource.
CONTAINER_INSIGHTS_TABLES = (
    "ContainerLogV2",
    "InsightsMetrics",
    "KubeEvents",
    "KubeNodeInventory",
    "KubePodInventory",
)


def kusto_tables(markdown: str | None = None) -> tuple[str, ...]:
    """The tables the KQL blocks of the triage section read: each statement's first word (`Perf`), or what
    a `let` binds (`let musePods = KubePodInventory`). Tables are capitalized, KQL's keywords are not."""
    found = set()
    for block in re.finditer(r"^```kusto\n(.*?)^```", _triage(markdown), re.M | re.S):
        for line in block.group(1).splitlines():
            if match := re.match(r"(?:let\s+\w+\s*=\s*)?([A-Z]\w*)\b", line):
                found.add(match.group(1))
    return tuple(sorted(found))


# The triage section's steps done in the portal, each keyed by its text in docs/runbook.md (a key the runbook
# no longer contains is an error: a reworded step must be re-declared). Actions: learn.microsoft.com/azure/
# role-based-access-control/resource-provider-operations (Microsoft.AlertsManagement, Microsoft.Insights,
# Microsoft.OperationalInsights); an alert's state is changed with POST .../alerts/{id}/changestate
# (learn.microsoft.com/rest/api/monitor/alertsmanagement/alerts/change-state), `changestate/action`.
def portal_steps(tables: tuple[str, ...]) -> dict[str, tuple[AzureRequest, ...]]:
    return {
        "Open the alert in the portal and set it to *Acknowledged*": (
            AzureRequest(f"{ALERTS}/read", "alert"),
            AzureRequest(f"{ALERTS}/changestate/action", "alert"),
        ),
        "**Azure portal → Monitor → Alerts**, filtered on resource group": (
            AzureRequest(RESOURCE_GROUPS_READ, "group"),
            AzureRequest(f"{ALERTS}/read", "alert"),
        ),
        "*View query results*": _queries(tables),
        "**Workbook `Muse (": (
            AzureRequest(f"{WORKSPACES}/read", "workspace"),
            AzureRequest("Microsoft.Insights/workbooks/read", "workbook"),
            *_queries(tables),
        ),
        "**Container Insights**": (
            AzureRequest("Microsoft.ContainerService/managedClusters/read", "cluster"),
            *_queries(CONTAINER_INSIGHTS_TABLES),
        ),
        "**Logs**: workspace → Logs, paste the KQL below": (
            AzureRequest(f"{WORKSPACES}/read", "workspace"),
            *_queries(tables),
        ),
    }


# The `az` commands the triage section may use, each as the requests it makes (Azure/azure-cli: `workspace
# show` GETs the workspace; `log-analytics query` POSTs the query to the workspace's query API, authorized per
# table; `aks get-credentials` POSTs listClusterUserCredential). Another `az` command there is an error.
def az_commands(tables: tuple[str, ...]) -> dict[tuple[str, ...], tuple[AzureRequest, ...]]:
    return {
        ("monitor", "log-analytics", "workspace", "show"): (AzureRequest(f"{WORKSPACES}/read", "workspace"),),
        ("monitor", "log-analytics", "query"): _queries(tables),
        ("aks", "get-credentials"): (AzureRequest(LIST_CLUSTER_USER_CREDENTIAL, "cluster"),),
    }


@dataclass(frozen=True)
class TriageStep:
    text: str  # the portal step's key, or the az command as written
    line: int
    requests: tuple[AzureRequest, ...]


def _triage(markdown: str | None) -> str:
    text = RUNBOOK.read_text(encoding="utf-8") if markdown is None else markdown
    if TRIAGE_SECTION not in text:
        raise ValueError(f"docs/runbook.md has no section {TRIAGE_SECTION.strip()!r}")
    return text.split(TRIAGE_SECTION, 1)[1].split("\n## ", 1)[0]


def triage_steps(markdown: str | None = None) -> list[TriageStep]:
    """The portal steps and `az` commands of the runbook's triage section, as the Azure requests of each."""
    text = RUNBOOK.read_text(encoding="utf-8") if markdown is None else markdown
    section = _triage(text)
    offset = text.index(TRIAGE_SECTION) + len(TRIAGE_SECTION)
    tables = kusto_tables(text)
    found = []
    flat = " ".join(section.split())
    for key, requests in portal_steps(tables).items():
        if " ".join(key.split()) not in flat:
            raise ValueError(f"docs/runbook.md no longer has the triage step {key!r}: update runbook.py")
        found.append(TriageStep(key, _line_of(text, offset + section.find(key.split()[0])), requests))
    known = az_commands(tables)
    prose = ANY_FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), section)
    codes = [(m.start(), " ".join(m.group(1).split())) for m in INLINE_CODE.finditer(prose)]
    codes += [(b.start("body"), b.group("body")) for b in SHELL_BLOCK.finditer(section)]
    for start, code in codes:
        for words in _az_invocations(code):
            command = next((k for k in known if tuple(words[: len(k)]) == k), None)
            if command is None:
                raise ValueError(f"docs/runbook.md: az {' '.join(words[:4])} is not modelled in runbook.py")
            found.append(
                TriageStep("az " + " ".join(command), _line_of(text, offset + start), known[command])
            )
    return found


def _az_invocations(code: str) -> Iterator[list[str]]:
    for segment in re.split(r"\$\(|\)|\||;|&&", code):
        words = segment.replace('"', " ").split()
        if "az" in words:
            yield words[words.index("az") + 1 :]
