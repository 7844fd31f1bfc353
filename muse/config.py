"""Service configuration, from environment variables only (no files: the image ships code, not config).

:func:`load_settings` raises :class:`ConfigError` with one line per problem, each naming the variable, so a
misconfigured pod fails at start (exit 2) with a message ``kubectl logs`` shows verbatim, before binding.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from muse.contract import (
    DEFAULT_METRICS_PORT,
    DEFAULT_PORT,
    ENV_BODY_TIMEOUT_SECONDS,
    ENV_DRAIN_SECONDS,
    ENV_ENVIRONMENT,
    ENV_EVALUATION_CONCURRENCY,
    ENV_GIT_REVISION,
    ENV_GOVERNANCE_DIR,
    ENV_HEADER_TIMEOUT_SECONDS,
    ENV_HOST,
    ENV_KEEP_ALIVE_SECONDS,
    ENV_LOG_LEVEL,
    ENV_MAX_BODY_BYTES,
    ENV_MEMORY_LIMIT_BYTES,
    ENV_METRICS_PORT,
    ENV_PORT,
    ENV_SHUTDOWN_TIMEOUT_SECONDS,
    ENV_VERSION,
    SECRETS,
    Secret,
)

MIN_TOKEN_LENGTH = 32
MIB = 1024 * 1024
# What the workload's container limit is (components/muse_workload/manifests.py sets the limit and passes it
# back through the Downward API as MUSE_MEMORY_LIMIT_BYTES); the same default outside Kubernetes keeps a local
# run's limits equal to production's.
DEFAULT_MEMORY_LIMIT_BYTES = 256 * MIB

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class ConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Settings(BaseSettings):
    """Every setting but the secrets, which `Settings` adds from muse/contract.py SECRETS."""

    # validation_alias is the environment variable's exact name, so error locations name what operators set.
    model_config = SettingsConfigDict(
        case_sensitive=True,
        env_file=None,
        secrets_dir=None,
        extra="ignore",
        frozen=True,
        populate_by_name=False,
    )

    port: Annotated[int, Field(ge=1, le=65535, validation_alias=AliasChoices(ENV_PORT))] = DEFAULT_PORT
    # 0.0.0.0 because in a container/pod the port is reached through the pod network, never loopback.
    host: Annotated[str, Field(min_length=1, validation_alias=AliasChoices(ENV_HOST))] = "0.0.0.0"  # noqa: S104
    env: Annotated[
        str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$", validation_alias=AliasChoices(ENV_ENVIRONMENT))
    ] = "local"
    log_level: Annotated[LogLevel, Field(validation_alias=AliasChoices(ENV_LOG_LEVEL))] = "INFO"
    if TYPE_CHECKING:
        # A SecretStr per secret of muse/contract.py SECRETS (`Settings` below adds them), typed here.
        api_token: SecretStr
    max_body_bytes: Annotated[
        int, Field(ge=1024, le=64 * 1024 * 1024, validation_alias=AliasChoices(ENV_MAX_BODY_BYTES))
    ] = 1024 * 1024
    drain_seconds: Annotated[int, Field(ge=0, le=300, validation_alias=AliasChoices(ENV_DRAIN_SECONDS))] = 5
    shutdown_timeout_seconds: Annotated[
        int, Field(ge=1, le=600, validation_alias=AliasChoices(ENV_SHUTDOWN_TIMEOUT_SECONDS))
    ] = 20
    # An idle keep-alive connection is closed within 30 s. The Gateway's proxy is Envoy (approuting-istio),
    # whose upstream idle timeout defaults to 1 h and cannot be lowered here: the add-on does not support
    # Istio CRDs such as DestinationRule (MicrosoftDocs/azure-aks-docs, articles/aks/
    # app-routing-gateway-api.md, "Comparison with Istio service mesh add-on"). Envoy drops a pooled
    # connection when Muse's FIN arrives; docs/service.md states the remaining race.
    keep_alive_seconds: Annotated[
        int, Field(ge=1, le=30, validation_alias=AliasChoices(ENV_KEEP_ALIVE_SECONDS))
    ] = 30
    # Request-head deadline: a connection must deliver its request line and headers within this many seconds
    # of opening (or of its first byte after a keep-alive pause), else it is closed (muse/protocol.py).
    header_timeout_seconds: Annotated[
        int, Field(ge=1, le=60, validation_alias=AliasChoices(ENV_HEADER_TIMEOUT_SECONDS))
    ] = 10
    # Whole-body deadline of POST /api/v1/evaluate, counted once the request is admitted (408 after it).
    body_timeout_seconds: Annotated[
        int, Field(ge=1, le=120, validation_alias=AliasChoices(ENV_BODY_TIMEOUT_SECONDS))
    ] = 20
    # The container's memory limit in bytes: the Downward API's resourceFieldRef limits.memory. Every input
    # and output bound is derived from it (muse/limits.py).
    memory_limit_bytes: Annotated[
        int, Field(ge=96 * MIB, validation_alias=AliasChoices(ENV_MEMORY_LIMIT_BYTES))
    ] = DEFAULT_MEMORY_LIMIT_BYTES
    # Evaluations running at once (each on a worker thread); more wait before their body is read.
    evaluation_concurrency: Annotated[
        int, Field(ge=1, le=16, validation_alias=AliasChoices(ENV_EVALUATION_CONCURRENCY))
    ] = 2
    # Prometheus scrape port, separate from PORT so the Gateway, which routes only PORT, never exposes it.
    metrics_port: Annotated[int, Field(ge=1, le=65535, validation_alias=AliasChoices(ENV_METRICS_PORT))] = (
        DEFAULT_METRICS_PORT
    )
    git_revision: Annotated[
        str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$", validation_alias=AliasChoices(ENV_GIT_REVISION))
    ] = "unknown"
    # The deployed image's tag or digest (the workload sets it); a label of every request metric, so a
    # release's error rate can be told from its predecessor's. Digest form: registry/repo@sha256:<64 hex>.
    version: Annotated[
        str, Field(pattern=r"^[A-Za-z0-9.+_:@/-]{1,200}$", validation_alias=AliasChoices(ENV_VERSION))
    ] = "unknown"
    # Where the governance reports (<env>.md, <env>.inventory.json) are; default: docs/governance next to the
    # muse package (/app/docs/governance in the image, the repository's docs/governance in a checkout).
    governance_dir: Annotated[
        str | None, Field(min_length=1, validation_alias=AliasChoices(ENV_GOVERNANCE_DIR))
    ] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The process environment and nothing else: no .env file, no secrets directory, no constructor kwargs.
        return (env_settings,)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _timing(self) -> _Settings:
        if self.shutdown_timeout_seconds <= self.drain_seconds:
            raise ValueError(
                f"{ENV_SHUTDOWN_TIMEOUT_SECONDS} must be greater than {ENV_DRAIN_SECONDS} "
                f"({self.shutdown_timeout_seconds} <= {self.drain_seconds})"
            )
        if self.metrics_port == self.port:
            raise ValueError(f"{ENV_METRICS_PORT} must differ from {ENV_PORT} (both {self.port})")
        return self

    @property
    def grace_seconds(self) -> int:
        """Time in-flight requests get after the drain period, within the overall shutdown timeout."""
        return self.shutdown_timeout_seconds - self.drain_seconds


def secret_field(secret: Secret) -> str:
    """The setting a secret fills: its variable without MUSE_, lower case (MUSE_API_TOKEN -> api_token)."""
    return secret.env.removeprefix("MUSE_").lower()


def _secret_strength(cls: Any, value: SecretStr) -> SecretStr:
    secret = value.get_secret_value()
    if len(secret) < MIN_TOKEN_LENGTH:
        raise ValueError(f"must be at least {MIN_TOKEN_LENGTH} characters")
    if secret != secret.strip() or re.search(r"\s", secret):
        raise ValueError("must not contain whitespace")
    return value


# The settings with one required SecretStr per secret of the list: a secret added to muse/contract.py is read,
# required and checked here with no edit (the program mounts the same list; tests/deploy/
# test_service_contract.py checks both sides).
if TYPE_CHECKING:
    Settings = _Settings
else:
    Settings = create_model(
        "Settings",
        __base__=_Settings,
        __module__=__name__,
        __validators__={
            "_secret_strength": field_validator(*(secret_field(s) for s in SECRETS))(_secret_strength)
        },
        **{secret_field(s): (SecretStr, Field(validation_alias=AliasChoices(s.env))) for s in SECRETS},
    )


class _ExplicitSettings(Settings):
    """Settings from a given mapping only (tests), never mixed with the test runner's own environment."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _variable(field: FieldInfo) -> str:
    """The one environment variable a setting reads: its validation alias."""
    alias = field.validation_alias
    name = alias.choices[0] if isinstance(alias, AliasChoices) and len(alias.choices) == 1 else None
    if not isinstance(name, str):
        raise TypeError(f"each setting reads exactly one variable, by name: {alias!r}")
    return name


# The variables the service reads, from the fields themselves: the table the workload's manifests are checked
# against (tests/deploy/test_service_contract.py).
VARIABLES = frozenset(_variable(field) for field in Settings.model_fields.values())
# The secrets': a problem with one never echoes its value.
SECRET_VARIABLES = frozenset(secret.env for secret in SECRETS)
# The ones without a default: a pod that does not set them exits 2 at start.
REQUIRED_VARIABLES = frozenset(
    _variable(field) for field in Settings.model_fields.values() if field.is_required()
)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the process environment (via pydantic-settings) or, for tests, an explicit mapping."""
    source = os.environ if environ is None else environ
    values = {k: v for k, v in source.items() if k in VARIABLES}
    try:
        if environ is None:
            # pydantic-settings fills the required fields from the environment; mypy cannot see that.
            return Settings()  # type: ignore[call-arg]
        return _ExplicitSettings.model_validate(values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            loc = ".".join(str(p) for p in err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            if not loc:  # model-level validator: the message already names the variables
                problems.append(message)
                continue
            shown = "" if loc in SECRET_VARIABLES or loc not in values else f" (got {values[loc][:80]!r})"
            if err["type"] == "missing":
                message = "is required but not set"
            problems.append(f"{loc}: {message}{shown}")
        raise ConfigError(problems) from None
