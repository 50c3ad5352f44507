"""The server's one configuration file: pydantic models with the vendor's camelCase keys.

A bad file must stop the start with a message naming the file, the key path and the problem,
so loading never lets a pydantic traceback escape.
"""

from __future__ import annotations

import re
from importlib import resources
from ipaddress import IPv4Address
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

DEMO_CONFIG_RESOURCE = "demo.yaml"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(Exception):
    """The configuration cannot be used; the message is meant for the operator as is."""


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as ``90``, ``15m``, ``24h``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 15m or 24h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError("expected a duration such as 30s, 15m or 24h")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    else:
        raise ValueError("expected a duration such as 30s, 15m or 24h")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


class ApiVersions(_Model):
    min: int = Field(18, ge=1)
    max: int = Field(22, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> ApiVersions:
        if self.min > self.max:
            raise ValueError("min must not be greater than max")
        return self


class LockoutSettings(_Model):
    max_failed_attempts: int = Field(5, ge=1, le=1000)
    cooldown: float = 60.0
    max_cooldown: float = 3600.0

    @field_validator("cooldown", "max_cooldown", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        return parse_duration(value)


class TlsSettings(_Model):
    cert_file: str = Field(min_length=1)
    key_file: str = Field(min_length=1)


class ServerSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(8443, ge=0, le=65535)
    hostname: str = Field("localhost", min_length=1)
    issuer: str = Field("Appgate SDP", min_length=1)
    api_versions: ApiVersions = ApiVersions()
    token_lifetime: float = 24 * 3600.0
    banner_message: str | None = None
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    login_lockout: LockoutSettings = LockoutSettings(max_failed_attempts=10)
    tls: TlsSettings | None = None
    workers: int = Field(1, ge=1, le=64)
    access_log: bool = True
    max_header_bytes: int = Field(32 * 1024, ge=1024, le=1024 * 1024)
    request_timeout: float = 10.0
    keep_alive_timeout: float = 5.0
    max_connections: int = Field(1000, ge=1, le=100_000)

    @field_validator("token_lifetime", "request_timeout", "keep_alive_timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        return parse_duration(value)


class StorageSettings(_Model):
    url: str = "sqlite:///./data/mfa.db"
    encryption_key_file: str | None = "./data/seed.key"
    encryption_key: str | None = Field(
        None, description="base64 of a 32-byte key; wins over encryptionKeyFile"
    )

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value


class User(_Model):
    username: str = Field(min_length=1)
    password: str | None = Field(None, min_length=1)
    password_hash: str | None = Field(None, min_length=1)
    admin: bool = False

    @model_validator(mode="after")
    def _one_secret(self) -> User:
        if (self.password is None) == (self.password_hash is None):
            raise ValueError("give exactly one of password and passwordHash")
        if self.password_hash is not None and not self.password_hash.startswith("scrypt$"):
            raise ValueError("passwordHash must be an scrypt hash (see `mfa-server hash-password`)")
        return self


class IdentityProvider(_Model):
    name: str = Field(min_length=1)
    type: Literal["Credentials"] = "Credentials"
    mfa_provider: str | None = Field(None, min_length=1)
    users: list[User] = []

    @field_validator("users")
    @classmethod
    def _unique_users(cls, users: list[User]) -> list[User]:
        seen: set[str] = set()
        for user in users:
            if user.username in seen:
                raise ValueError(f"duplicate username {user.username!r}")
            seen.add(user.username)
        return users


class DefaultTimeBasedProvider(_Model):
    name: str = Field(min_length=1)
    type: Literal["DefaultTimeBased"]
    secret_bits: int = Field(160, ge=128, le=512, multiple_of=8)
    digits: int = Field(6, ge=6, le=8)
    period: int = Field(30, ge=10, le=300)
    drift_steps: int = Field(1, ge=0, le=10)
    lockout: LockoutSettings = LockoutSettings()


class RadiusProvider(_Model):
    name: str = Field(min_length=1)
    type: Literal["Radius"]
    hostnames: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    port: int = Field(1812, ge=1, le=65535)
    shared_secret: str = Field(min_length=1)
    authentication_protocol: Literal["PAP", "CHAP"] = "CHAP"
    timeout: float = Field(6.0, gt=0, le=300)
    mode: Literal["OneFactor", "Challenge", "Push"] = "Challenge"
    use_user_password: bool = False
    challenge_shared_secret: str | None = Field(None, min_length=1)
    input_type: Literal["Masked", "Numeric", "Text"] = "Masked"
    require_message_authenticator: bool = True
    nas_identifier: str | None = Field("appgate-sdp-controller", min_length=1)
    nas_ip_address: IPv4Address | None = None
    lockout: LockoutSettings = LockoutSettings()

    @model_validator(mode="after")
    def _challenge_secret(self) -> RadiusProvider:
        needs_secret = self.mode in ("Challenge", "Push") and not self.use_user_password
        if needs_secret and self.challenge_shared_secret is None:
            raise ValueError(
                f"mode {self.mode} without useUserPassword needs challengeSharedSecret"
            )
        return self


MfaProvider = Annotated[DefaultTimeBasedProvider | RadiusProvider, Field(discriminator="type")]


class Settings(_Model):
    server: ServerSettings = ServerSettings()
    storage: StorageSettings = StorageSettings()
    identity_providers: list[IdentityProvider] = Field(min_length=1)
    mfa_providers: list[MfaProvider] = []

    @model_validator(mode="after")
    def _references(self) -> Settings:
        idp_names = [idp.name for idp in self.identity_providers]
        if len(set(idp_names)) != len(idp_names):
            raise ValueError("identity provider names must be unique")
        mfa_names = {p.name for p in self.mfa_providers}
        if len(mfa_names) != len(self.mfa_providers):
            raise ValueError("MFA provider names must be unique")
        for idp in self.identity_providers:
            if idp.mfa_provider is not None and idp.mfa_provider not in mfa_names:
                raise ValueError(
                    f"identity provider {idp.name!r} names unknown mfaProvider {idp.mfa_provider!r}"
                )
        return self

    def identity_provider(self, name: str) -> IdentityProvider | None:
        return next((idp for idp in self.identity_providers if idp.name == name), None)

    def mfa_provider(self, name: str) -> DefaultTimeBasedProvider | RadiusProvider | None:
        return next((p for p in self.mfa_providers if p.name == name), None)


def _format_errors(source: str, error: ValidationError) -> str:
    lines = [f"{source}: invalid configuration"]
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  {path}: {message}")
    return "\n".join(lines)


def _resolve_relative(settings: Settings, base: Path) -> Settings:
    """Relative paths in the file are relative to the file's folder, not the working directory."""
    storage = settings.storage
    updates: dict[str, str | None] = {}
    if storage.url.startswith("sqlite:///"):
        db_path = Path(storage.url.removeprefix("sqlite:///"))
        if not db_path.is_absolute() and str(db_path) != ":memory:":
            updates["url"] = "sqlite:///" + str((base / db_path).resolve())
    if storage.encryption_key_file is not None:
        updates["encryption_key_file"] = _absolute(storage.encryption_key_file, base)
    server = settings.server
    if server.tls is not None:
        tls = server.tls.model_copy(
            update={
                "cert_file": _absolute(server.tls.cert_file, base),
                "key_file": _absolute(server.tls.key_file, base),
            }
        )
        server = server.model_copy(update={"tls": tls})
    return settings.model_copy(
        update={"storage": storage.model_copy(update=updates), "server": server}
    )


def _absolute(path: str, base: Path) -> str:
    return path if Path(path).is_absolute() else str((base / path).resolve())


def parse_settings(text: str, source: str, base: Path) -> Settings:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None
    return _resolve_relative(settings, base)


def load_settings(path: str | Path) -> Settings:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    return parse_settings(text, str(file), file.resolve().parent)


def demo_settings(data_dir: Path) -> Settings:
    """The embedded demo configuration, with its data kept in ``data_dir``."""
    text = resources.files("server").joinpath(DEMO_CONFIG_RESOURCE).read_text(encoding="utf-8")
    return parse_settings(text, "(embedded demo configuration)", data_dir)
