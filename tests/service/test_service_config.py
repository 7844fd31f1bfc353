"""Configuration comes from environment variables only; every problem names its variable."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from muse.config import MIN_TOKEN_LENGTH, VARIABLES, ConfigError, load_settings, secret_field
from muse.contract import SECRETS, secret_environment
from stack.files import REPO_ROOT

TOKEN = "t" * MIN_TOKEN_LENGTH


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    return info.value.problems


def test_defaults() -> None:
    settings = load_settings(secret_environment(TOKEN))
    assert settings.port == 8080
    assert settings.host == "0.0.0.0"  # noqa: S104 - the container default, asserted not bound
    assert settings.env == "local"
    assert settings.log_level == "INFO"
    assert settings.max_body_bytes == 1024 * 1024
    assert (settings.drain_seconds, settings.shutdown_timeout_seconds, settings.grace_seconds) == (5, 20, 15)
    assert settings.keep_alive_seconds == 30
    assert settings.git_revision == "unknown"
    assert settings.version == "unknown"
    assert (settings.header_timeout_seconds, settings.body_timeout_seconds) == (10, 20)
    assert (settings.memory_limit_bytes, settings.evaluation_concurrency) == (256 * 1024 * 1024, 2)
    assert settings.metrics_port == 9090


def test_every_variable_is_read() -> None:
    settings = load_settings(
        {
            "PORT": "9090",
            "MUSE_HOST": "127.0.0.1",
            "MUSE_ENV": "prod",
            "MUSE_LOG_LEVEL": "debug",
            **secret_environment(TOKEN),
            "MUSE_MAX_BODY_BYTES": "2048",
            "MUSE_DRAIN_SECONDS": "3",
            "MUSE_SHUTDOWN_TIMEOUT_SECONDS": "10",
            "MUSE_KEEP_ALIVE_SECONDS": "30",
            "MUSE_GIT_REVISION": "0123abc",
            "MUSE_VERSION": "acrmuse.azurecr.io/muse@sha256:" + "0" * 64,
            "MUSE_HEADER_TIMEOUT_SECONDS": "5",
            "MUSE_BODY_TIMEOUT_SECONDS": "7",
            "MUSE_MEMORY_LIMIT_BYTES": str(512 * 1024 * 1024),
            "MUSE_EVALUATION_CONCURRENCY": "3",
            "MUSE_METRICS_PORT": "9191",
        }
    )
    assert (settings.port, settings.host, settings.env, settings.log_level) == (
        9090,
        "127.0.0.1",
        "prod",
        "DEBUG",
    )
    assert (settings.max_body_bytes, settings.drain_seconds, settings.shutdown_timeout_seconds) == (
        2048,
        3,
        10,
    )
    assert (settings.keep_alive_seconds, settings.git_revision) == (30, "0123abc")
    assert settings.version == "acrmuse.azurecr.io/muse@sha256:" + "0" * 64
    assert (settings.header_timeout_seconds, settings.body_timeout_seconds) == (5, 7)
    assert (settings.memory_limit_bytes, settings.evaluation_concurrency, settings.metrics_port) == (
        512 * 1024 * 1024,
        3,
        9191,
    )
    assert settings.api_token.get_secret_value() == TOKEN


def test_missing_secrets_are_named() -> None:
    assert problems({}) == [f"{secret.env}: is required but not set" for secret in SECRETS]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PORT": "abc"}, "PORT: Input should be a valid integer"),
        ({"PORT": "0"}, "PORT: Input should be greater than or equal to 1 (got '0')"),
        ({"PORT": "70000"}, "PORT: Input should be less than or equal to 65535"),
        ({"PORT": ""}, "PORT: Input should be a valid integer"),
        ({"MUSE_ENV": "Prod!"}, "MUSE_ENV: String should match pattern"),
        ({"MUSE_LOG_LEVEL": "loud"}, "MUSE_LOG_LEVEL: Input should be 'DEBUG', 'INFO'"),
        ({"MUSE_MAX_BODY_BYTES": "10"}, "MUSE_MAX_BODY_BYTES: Input should be greater than or equal to 1024"),
        ({"MUSE_DRAIN_SECONDS": "-1"}, "MUSE_DRAIN_SECONDS: Input should be greater than or equal to 0"),
        (
            {"MUSE_SHUTDOWN_TIMEOUT_SECONDS": "x"},
            "MUSE_SHUTDOWN_TIMEOUT_SECONDS: Input should be a valid integer",
        ),
        (
            {"MUSE_KEEP_ALIVE_SECONDS": "0"},
            "MUSE_KEEP_ALIVE_SECONDS: Input should be greater than or equal to 1",
        ),
        # The former default: an idle connection must be closed within 30 s.
        (
            {"MUSE_KEEP_ALIVE_SECONDS": "75"},
            "MUSE_KEEP_ALIVE_SECONDS: Input should be less than or equal to 30",
        ),
        ({"MUSE_GIT_REVISION": "a b"}, "MUSE_GIT_REVISION: String should match pattern"),
        (
            {"MUSE_DRAIN_SECONDS": "30"},
            "MUSE_SHUTDOWN_TIMEOUT_SECONDS must be greater than MUSE_DRAIN_SECONDS (20 <= 30)",
        ),
    ],
)
def test_invalid_values_are_named(env: dict[str, str], expected: str) -> None:
    found = problems({**secret_environment(TOKEN), **env})
    assert len(found) == 1 and found[0].startswith(expected), found


def test_all_problems_are_reported_at_once() -> None:
    found = problems({"PORT": "x", "MUSE_LOG_LEVEL": "loud"})
    assert [p.split(":")[0] for p in found] == ["PORT", "MUSE_LOG_LEVEL", *(s.env for s in SECRETS)]


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("short-secret-value", f"must be at least {MIN_TOKEN_LENGTH} characters"),
        ("has a space " + "x" * MIN_TOKEN_LENGTH, "must not contain whitespace"),
    ],
)
def test_weak_token_is_rejected_without_echoing_it(token: str, expected: str) -> None:
    found = problems({**secret_environment(TOKEN), "MUSE_API_TOKEN": token})
    assert found == [f"MUSE_API_TOKEN: {expected}"]
    assert token not in found[0]


def test_process_environment_path_ignores_unrelated_and_lowercase_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in secret_environment(TOKEN).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PORT", "8181")
    monkeypatch.setenv("port", "1")
    monkeypatch.setenv("MUSE_SOMETHING_ELSE", "whatever")
    settings = load_settings()
    assert settings.port == 8181
    monkeypatch.setenv("PORT", "not-a-port")
    with pytest.raises(ConfigError, match="PORT: Input should be a valid integer"):
        load_settings()


def test_explicit_mapping_does_not_leak_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in secret_environment(TOKEN).items():
        monkeypatch.setenv(name, value)
    assert problems({}) == [f"{secret.env}: is required but not set" for secret in SECRETS]


def test_token_is_not_shown_in_repr() -> None:
    assert TOKEN not in repr(load_settings(secret_environment(TOKEN)))


def read_env_text(text: str) -> dict[str, str]:
    """Parse like ``podman run --env-file``: KEY=VALUE lines, '#' comments, values taken literally."""
    values = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"not KEY=VALUE: {line!r}"
            values[key] = value
    return values


def test_env_example_is_a_valid_configuration_documenting_every_variable() -> None:
    path = Path(__file__).resolve().parents[2] / ".env.example"
    values = read_env_text(path.read_text())
    # Build identity stays commented out: an --env-file value would override what the image build set.
    # MUSE_GOVERNANCE_DIR too: its default follows the code (the image's /app/docs/governance).
    commented = ("MUSE_GIT_REVISION", "MUSE_VERSION", "MUSE_GOVERNANCE_DIR")
    assert set(values) == set(VARIABLES) - set(commented)
    for name in commented:
        assert f"# {name}=" in path.read_text()
    settings = load_settings(values)
    assert settings.port == 8080
    assert "change-me" in settings.api_token.get_secret_value()  # obviously a placeholder
    for value in values.values():
        assert not value.startswith(('"', "'")) and " #" not in value


def _typed_secret_fields(source: str) -> set[str]:
    """The attributes `_Settings` declares for the type checker only (its `if TYPE_CHECKING:` block)."""
    tree = ast.parse(source)
    settings = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "_Settings")
    blocks = [n for n in settings.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"]
    return {
        stmt.target.id
        for block in blocks
        for stmt in block.body
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
    }


def test_every_secret_is_typed_for_the_type_checker_and_no_stale_one_is() -> None:
    """Settings adds one SecretStr per secret at run time; mypy sees only the stubs, so they must be the list:
    a secret the service reads would fail mypy without its stub, a removed one would leave a stale stub."""
    source = (REPO_ROOT / "muse" / "config.py").read_text()
    assert _typed_secret_fields(source) == {secret_field(s) for s in SECRETS}
    # Negative control: a stub for a secret that is not in the list.
    stale = source.replace(
        "        api_token: SecretStr\n", "        api_token: SecretStr\n        old_key: SecretStr\n"
    )
    assert _typed_secret_fields(stale) == {secret_field(s) for s in SECRETS} | {"old_key"}
