"""Service fixtures: settings from an explicit environment mapping, and an in-process client with lifespan."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from muse.app import ServiceState, create_app
from muse.config import Settings, load_settings
from muse.contract import secret_environment

TOKEN = "test-token-0123456789-abcdefghijklmnop"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TAGS = {"env": "dev", "owner": "platform-team", "app": "muse"}


def _inventory(*, admin_user: bool = False, env_tag: str = "dev") -> dict[str, Any]:
    return {
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
                "properties": {"adminUserEnabled": admin_user, "tags": {**TAGS, "env": env_tag}},
            }
        ],
    }


@pytest.fixture
def settings() -> Settings:
    return load_settings(
        {
            **secret_environment(TOKEN),
            "MUSE_ENV": "dev",
            "MUSE_GIT_REVISION": "abc1234",
            "MUSE_MAX_BODY_BYTES": "4096",
        }
    )


@pytest.fixture
def state() -> ServiceState:
    return ServiceState()


@pytest.fixture
def client(settings: Settings, state: ServiceState) -> Iterator[TestClient]:
    # raise_server_exceptions=False: assert what a real client sees, not the exception inside the app.
    with TestClient(create_app(settings, state), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def auth() -> dict[str, str]:
    return dict(AUTH)


@pytest.fixture
def token() -> str:
    return TOKEN


@pytest.fixture
def inventory() -> Callable[..., dict[str, Any]]:
    """``inventory(admin_user=True)``: a one-registry inventory; ``env_tag="prod"`` gives a medium finding."""
    return _inventory
