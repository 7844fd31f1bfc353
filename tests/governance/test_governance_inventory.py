from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from muse.governance.inventory import InventoryError, decode_inventory, load_inventory, parse_inventory

VALID = {
    "schemaVersion": 1,
    "project": "muse",
    "stack": "dev",
    "environment": "dev",
    "tier": "development",
    "resources": [
        {
            "urn": "urn:pulumi:dev::muse::azure-native:containerregistry:Registry::muse-registry",
            "type": "azure-native:containerregistry:Registry",
            "name": "muse-registry",
            "parent": None,
            "custom": True,
            "properties": {"adminUserEnabled": False},
            "secretPaths": [],
            "options": {"ignoreChanges": [], "protect": False},
        }
    ],
}


def test_valid_inventory_parses_with_typed_fields() -> None:
    inventory = parse_inventory(VALID)
    assert inventory.environment == "dev"
    assert inventory.resources[0].properties == {"adminUserEnabled": False}
    assert inventory.resources[0].options.protect is False


def test_unknown_fields_are_tolerated_at_every_level() -> None:
    data = json.loads(json.dumps(VALID))
    data["generatedBy"] = "offline-engine 2"
    data["resources"][0]["provider"] = "default"
    data["resources"][0]["options"]["dependsOn"] = ["urn:x"]
    inventory = parse_inventory(data)
    assert inventory.resources[0].name == "muse-registry"


def test_optional_resource_fields_default() -> None:
    data = json.loads(json.dumps(VALID))
    minimal = {k: data["resources"][0][k] for k in ("urn", "type", "name")}
    data["resources"] = [minimal]
    res = parse_inventory(data).resources[0]
    assert (res.parent, res.properties, res.secretPaths, res.options.ignoreChanges) == (None, {}, [], [])


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["resources"][0].pop("type"), "resources[0].type: Field required"),
        (lambda d: d["resources"][0].update(properties=[1, 2]), "resources[0].properties"),
        (lambda d: d["resources"][0].update(name=5), "resources[0].name: Input should be a valid string"),
        (lambda d: d.update(resources={"a": 1}), "resources: Input should be a valid list"),
        (lambda d: d.pop("environment"), "environment: Field required"),
        (lambda d: d["resources"][0].update(secretPaths="kubeconfig"), "resources[0].secretPaths"),
    ],
)
def test_wrong_shape_is_an_error_naming_the_field(
    mutate: Callable[[dict[str, Any]], object], expected: str
) -> None:
    data = json.loads(json.dumps(VALID))
    mutate(data)
    with pytest.raises(InventoryError) as info:
        parse_inventory(data)
    assert any(p.startswith(expected) for p in info.value.problems), info.value.problems


def test_problems_do_not_echo_input_values() -> None:
    data = json.loads(json.dumps(VALID))
    data["resources"][0]["name"] = {"password": "hunter2-plaintext"}
    with pytest.raises(InventoryError) as info:
        parse_inventory(data)
    assert "hunter2" not in str(info.value)


def test_unsupported_schema_version_is_explicit() -> None:
    with pytest.raises(InventoryError, match=r"unsupported schemaVersion 2 \(this Muse reads 1\)"):
        parse_inventory({**VALID, "schemaVersion": 2})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "malformed JSON: key must be a string at line 1 column 2"),
        (b"\xff\xfe", "malformed JSON"),
        (b"[" * 100_000, "malformed JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b"1" * 5000, "malformed JSON"),
    ],
)
def test_decode_failures_are_inventory_errors(raw: bytes, message: str) -> None:
    with pytest.raises(InventoryError, match=message.replace("(", r"\(")):
        decode_inventory(raw)


def test_load_inventory_reports_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"cannot read inventory .*missing\.json"):
        load_inventory(tmp_path / "missing.json")


def test_load_inventory_prefixes_path_on_bad_content(tmp_path: Path) -> None:
    path = tmp_path / "inv.json"
    path.write_text("{}")
    with pytest.raises(InventoryError, match=r"inv.json: invalid inventory") as info:
        load_inventory(path)
    assert "schemaVersion: Field required" in str(info.value)


def test_an_inventory_that_does_not_say_its_tier_gets_the_production_rules() -> None:
    # Never quietly weaker: a producer that predates the tier (or forgets it) is held to production's bar.
    from muse.governance.policies import evaluate

    vault = {
        "urn": "urn:pulumi:staging::muse::azure-native:keyvault:Vault::vault",
        "type": "azure-native:keyvault:Vault",
        "name": "vault",
        "properties": {"properties": {"enableSoftDelete": True, "enablePurgeProtection": False}},
    }
    untiered = {k: v for k, v in VALID.items() if k != "tier"} | {
        "environment": "staging",
        "resources": [vault],
    }
    assert parse_inventory(untiered).tier == "production"
    assert "MUSE-KV-003" in {v.policyId for v in evaluate(parse_inventory(untiered)).violations}
    # Negative control: the development tier, said explicitly, is exempt.
    development = parse_inventory({**untiered, "tier": "development"})
    assert "MUSE-KV-003" not in {v.policyId for v in evaluate(development).violations}
