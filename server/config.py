"""The server's one configuration file: pydantic models with the vendor's camelCase keys.

A bad file must stop the start with a message naming the file, the line, the key path and the
problem (server/config_errors.py), so loading never lets a pydantic traceback escape.
docs/configuration.md is generated from the descriptions and examples here.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from importlib import resources
from ipaddress import IPv4Address
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from appgate_mfa_server.config_errors import BELOW, load_yaml, validation_problems
from appgate_mfa_server.config_errors import (
    ConfigError as ConfigError,  # raised by the loaders below
)
from radius_codec.codes import PAP_MAX_LENGTH
from radius_codec.passwords import AuthProtocol

DEMO_CONFIG_RESOURCE = "demo.yaml"
TEST_CONTROL_WORKERS = (
    "testControl needs workers: 1 (the virtual clock, faults and journal live in one process)"
)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _problem(below: tuple[str | int, ...], message: str) -> PydanticCustomError:
    """A validation error reported at ``below``, a key path under the value being validated,
    so that it names the line of the offending key rather than the enclosing mapping."""
    return PydanticCustomError("config_reference", message, {BELOW: below})


MAX_DURATION = 10 * 365 * 86400.0  # far enough; dates past year 9999 cannot be written


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
    if not math.isfinite(seconds):  # .nan passes every comparison; .inf never ends
        raise ValueError("a duration must be a finite number of seconds")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    if seconds > MAX_DURATION:
        raise ValueError("a duration must be at most 10 years")
    return seconds


def _unit_of(value: object) -> str | None:
    """The unit a duration was written in: ``m`` for ``10m``, None for a bare number."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    return match.group(2) if match else None


def _amount(seconds: float, unit: str) -> str:
    number = seconds / _UNIT_SECONDS[unit]
    return f"{int(number) if number == int(number) else round(number, 6)}{unit}"


def _limit_in(seconds: float, unit: str | None) -> str:
    """A bound in the unit the user wrote, or the largest smaller unit that shows it whole
    (300 s to someone who wrote hours is 5m, not 0.083333h)."""
    if unit is None:
        return f"{seconds:g} (seconds)"
    units = sorted(_UNIT_SECONDS, key=_UNIT_SECONDS.__getitem__, reverse=True)
    for candidate in units[units.index(unit) :]:
        if (seconds / _UNIT_SECONDS[candidate]).is_integer():
            return _amount(seconds, candidate)
    return _amount(seconds, "ms")


def _bound_in_users_unit(value: object, handler: ValidatorFunctionWrapHandler) -> float:
    """A bound of a duration field (``le=300``) is checked in seconds; its message speaks the
    unit the user wrote: ``timeout: 10m`` gets "must be at most 5m, not 10m"."""
    try:
        seconds: float = handler(value)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        if error["type"] != "less_than_equal":  # the only bound a duration field has
            raise
        limit = _limit_in(float(error["ctx"]["le"]), _unit_of(value))
        raise ValueError(f"must be at most {limit}, not {value}") from None
    return seconds


# Seconds, given as a number or a string such as "90s", "15m", "24h" (the reference renders it
# so). A bound given with the field (``Field(le=300)``) is reported in the user's unit.
Duration = Annotated[float, BeforeValidator(parse_duration), WrapValidator(_bound_in_users_unit)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


class ApiVersions(_Model):
    """The API versions N accepted in ``Accept: application/vnd.appgate.peer-vN+json``."""

    min: int = Field(
        18,
        ge=1,
        description="Lowest accepted version; reported as minSupportedVersion in the 406 body.",
        examples=[18],
    )
    max: int = Field(
        22,
        ge=1,
        description="Highest accepted version; the 406 message names it as the current one.",
        examples=[22],
    )

    @model_validator(mode="after")
    def _ordered(self) -> ApiVersions:
        if self.min > self.max:
            raise ValueError("min must not be greater than max")
        return self


class LockoutSettings(_Model):
    """Wrong attempts in a row lock the account for a cooldown that doubles up to a cap."""

    max_failed_attempts: int = Field(
        5,
        ge=1,
        le=1000,
        description="Wrong attempts in a row that lock the account; a success resets the count.",
        examples=[5],
    )
    cooldown: Duration = Field(
        60.0,
        description="How long the first lock lasts; each further lock in a row doubles it.",
        examples=["60s"],
    )
    max_cooldown: Duration = Field(
        3600.0,
        description="The cap on the doubling cooldown, so a lock always ends.",
        examples=["1h"],
    )


class TlsSettings(_Model):
    """A certificate and its key, PEM files; relative paths are relative to this file."""

    cert_file: str = Field(
        min_length=1,
        description="The certificate (chain), PEM; clients must trust it or its issuer.",
        examples=["tls/server.crt"],
    )
    key_file: str = Field(
        min_length=1,
        description="The certificate's private key, PEM, unencrypted.",
        examples=["tls/server.key"],
    )


HostName = Annotated[
    str, Field(max_length=253, pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\.?$")
]


class TestControlSettings(_Model):
    """Routes under /_test/ that make this server a test double for API clients (clock, faults,
    known seeds, a journal); see the README. For tests only: anyone who can reach them can log
    in as anyone. `true` is short for `{enabled: true}`."""

    enabled: bool = Field(
        False,
        description=(
            "Serve /_test/; `mfa-server --test-control` turns it on too. Refused with more "
            "than one worker (the clock and faults live in the process)."
        ),
        examples=[True],
    )
    allow_remote: bool = Field(
        False,
        description=(
            "Start even when listening on an address that is not loopback; without it such a "
            "start is refused. /_test/ then also answers requests whose Host is an IP address "
            "(no DNS name can be rebound onto one); host names need allowedHosts."
        ),
        examples=[True],
    )
    allowed_hosts: list[HostName] = Field(
        [],
        description=(
            "Host names, besides localhost, that requests to /_test/ may carry in their Host "
            "(and Origin) header, any port; others get 403, so that a web page cannot reach "
            "/_test/ by rebinding its own name to this server's address."
        ),
        examples=[["mfa-server", "mfa.test.example"]],
    )


def _test_control_shorthand(value: object) -> object:
    return {"enabled": value} if isinstance(value, bool) else value


class ServerSettings(_Model):
    """How the server listens and what it tells clients about itself."""

    host: str = Field(
        "127.0.0.1",
        description="Address to listen on; `mfa-server --host` overrides it.",
        examples=["0.0.0.0"],  # noqa: S104 - an example value, not a bind
    )
    port: int = Field(
        8443,
        ge=0,
        le=65535,
        description="TCP port to listen on, 0 for a free one; `mfa-server --port` overrides it.",
        examples=[8443],
    )
    hostname: str = Field(
        "localhost",
        min_length=1,
        description="This server's name, the last part of the otpauth label `user@idp@hostname`.",
        examples=["controller.example.com"],
    )
    issuer: str = Field(
        "Appgate SDP",
        min_length=1,
        description="The otpauth `issuer` parameter: the account's title in authenticator apps.",
        examples=["Appgate SDP"],
    )
    api_versions: ApiVersions = Field(
        ApiVersions(),
        description="The accepted API versions; other Accept headers get 406 on every route.",
        examples=[{"min": 18, "max": 22}],
    )
    token_lifetime: Duration = Field(
        24 * 3600.0,
        description=(
            "How long a token lives from its issue; an MFA token never outlives the partial "
            "token it replaced."
        ),
        examples=["8h"],
    )
    banner_message: str | None = Field(
        None,
        description="`bannerMessage` of GET /admin/identity-providers/names; absent when unset.",
        examples=["Authorized use only."],
    )
    max_body_bytes: int = Field(
        64 * 1024,
        ge=1024,
        description="Largest request body read, in bytes; a larger one gets 413.",
        examples=[65536],
    )
    login_lockout: LockoutSettings = Field(
        LockoutSettings(max_failed_attempts=10),
        description=(
            "Throttles password guessing at POST /admin/authentication, per account, known or "
            "not (so the answers do not reveal which accounts exist)."
        ),
        examples=[{"maxFailedAttempts": 10, "cooldown": "60s", "maxCooldown": "1h"}],
    )
    tls: TlsSettings | None = Field(
        None,
        description=(
            "Serve HTTPS with this certificate and key (the port then speaks only TLS); plain "
            "HTTP when unset. `--tls-cert`/`--tls-key` override it; `--tls` alone makes a "
            "self-signed certificate for localhost in the data folder."
        ),
        examples=[{"certFile": "tls/server.crt", "keyFile": "tls/server.key"}],
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description=(
            "Server processes sharing the port (SO_REUSEPORT); `--workers` overrides it. With "
            "more than one, lockouts, one-time tokens and push joining hold across them through "
            "the store."
        ),
        examples=[2],
    )
    access_log: bool = Field(
        True,
        description="Write one JSON access line per request (audit lines stay).",
        examples=[False],
    )
    max_header_bytes: int = Field(
        32 * 1024,
        ge=1024,
        le=1024 * 1024,
        description=(
            "Largest request head (request line and headers) in bytes; a larger one gets 431 and "
            "the connection is closed."
        ),
        examples=[32768],
    )
    request_timeout: Duration = Field(
        10.0,
        description=(
            "How long a client may take to send a request head (then 408 and close; also for a "
            "connection that sends nothing) or a request body (then 408)."
        ),
        examples=["10s"],
    )
    keep_alive_timeout: Duration = Field(
        5.0, description="How long an idle keep-alive connection stays open.", examples=["5s"]
    )
    max_connections: int = Field(
        1000,
        ge=1,
        le=100_000,
        description=(
            "Open connections per worker, counted from the TCP accept (TLS handshakes "
            "included); one over it is closed at once. Lowered at start, with a warning, when "
            "the open files limit (raised to its hard limit at start) cannot hold it."
        ),
        examples=[1000],
    )
    max_connections_per_address: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description=(
            "Open connections per worker from one client address (an IPv6 address counts for "
            "its /64); one over it is closed at once, so one address leaves the rest of "
            "maxConnections to others. Unset: a tenth of maxConnections (100 by default). At "
            "most maxConnections; equal to it turns the share off, for a server behind a proxy "
            "or load balancer, where every client has the proxy's address."
        ),
        examples=[100],
    )
    tls_handshake_timeout: Duration = Field(
        10.0,
        le=300,
        description=(
            "How long a client may take over its TLS handshake, from the TCP accept, and over "
            "the closing one (its close_notify) once the server closes; then the connection is "
            "closed. With HTTPS only."
        ),
        examples=["10s"],
    )
    demo_page: bool = Field(
        False,
        description=(
            "Serve the demo page at GET /: the login flow in a browser (the QR code, a push, a "
            "challenge, the token's claims), as a client of this API. The embedded demo "
            "configuration turns it on; test control serves it too."
        ),
        examples=[True],
    )
    test_control: Annotated[TestControlSettings, BeforeValidator(_test_control_shorthand)] = Field(
        TestControlSettings(),
        description=(
            "The test double's routes under /_test/ (off unless enabled); `true` enables them."
        ),
        examples=[True],
    )

    @model_validator(mode="after")
    def _one_process_under_test_control(self) -> ServerSettings:
        if self.test_control.enabled and self.workers > 1:
            raise _problem(("testControl",), TEST_CONTROL_WORKERS)
        return self

    @model_validator(mode="after")
    def _share_within_the_whole(self) -> ServerSettings:
        share = self.max_connections_per_address
        if share is not None and share > self.max_connections:
            message = f"more than maxConnections ({self.max_connections})"
            raise _problem(("maxConnectionsPerAddress",), message)
        return self

    @property
    def connection_share(self) -> int:
        """maxConnectionsPerAddress, or its default: a tenth of maxConnections."""
        share = self.max_connections_per_address
        return share if share is not None else max(1, self.max_connections // 10)


class StorageSettings(_Model):
    """Where tokens, seeds and lockouts are kept, and the key that encrypts the seeds."""

    url: str = Field(
        "sqlite:///./data/mfa.db",
        description=(
            "`sqlite:///PATH` (one process; a relative PATH is relative to the configuration "
            "file's folder) or `postgresql://USER:PASSWORD@HOST:PORT/DB` (several processes "
            "sharing state)."
        ),
        examples=["postgresql://mfa:mfa@127.0.0.1:5432/mfa"],
    )
    encryption_key_file: str | None = Field(
        "./data/seed.key",
        description=(
            "File holding the base64 seed key, created with mode 0600 on first start; relative "
            "to the configuration file's folder. Every process sharing a database needs the "
            "same key. A file that others than its owner may read or change (mode 0644, say) "
            "gets a warning at start."
        ),
        examples=["/var/lib/mfa/seed.key"],
    )
    encryption_key: str | None = Field(
        None,
        description=(
            "The seed key itself: URL-safe base64 of 32 random bytes; wins over "
            "encryptionKeyFile. It encrypts the seeds and seals RADIUS states."
        ),
        examples=["q0cHc0Sd4sFIq_Jh3lEHvVbLWUcy5xzu2nqwU7GN3ZE="],
    )
    purge_interval: Duration = Field(
        600.0,
        description=(
            "How often expired tokens, sessions and push answers, and idle lockout rows, are "
            "deleted (in batches of 500, so requests are not held up); the first purge runs "
            "this long after the start."
        ),
        examples=["10m"],
    )

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value


class User(_Model):
    """A user of a Credentials identity provider; give exactly one of password and hash."""

    username: str = Field(
        min_length=1,
        description="The login name, unique within its identity provider.",
        examples=["alice"],
    )
    password: str | None = Field(
        None,
        min_length=1,
        description="The password in clear text (demos and tests; prefer passwordHash).",
        examples=["alice-pass"],
    )
    password_hash: str | None = Field(
        None,
        min_length=1,
        description="An scrypt hash of the password, as printed by `mfa-server hash-password`.",
        examples=["scrypt$16384$8$1$..."],
    )
    admin: bool = Field(
        False,
        description="May list and delete OTP seeds (GET and DELETE /admin/otp/seeds).",
        examples=[True],
    )

    @model_validator(mode="after")
    def _one_secret(self) -> User:
        if (self.password is None) == (self.password_hash is None):
            raise ValueError("give exactly one of password and passwordHash")
        if self.password_hash is not None and not self.password_hash.startswith("scrypt$"):
            raise ValueError("passwordHash must be an scrypt hash (see `mfa-server hash-password`)")
        return self


class IdentityProvider(_Model):
    """A named set of users that log in with a password (the vendor's Credentials type)."""

    name: str = Field(
        min_length=1,
        description="The `providerName` clients send at login; unique.",
        examples=["local"],
    )
    type: Literal["Credentials"] = Field(
        "Credentials",
        description="The only identity provider type this server implements.",
        examples=["Credentials"],
    )
    mfa_provider: str | None = Field(
        None,
        min_length=1,
        description="The `name` of an entry of mfaProviders; without it the users owe no MFA.",
        examples=["builtin"],
    )
    users: list[User] = Field(
        [],
        description="The users of this identity provider (see identityProviders[].users[]).",
        examples=[[{"username": "alice", "password": "alice-pass"}]],
    )

    @field_validator("users")
    @classmethod
    def _unique_users(cls, users: list[User]) -> list[User]:
        first: dict[str, int] = {}
        for index, user in enumerate(users):
            if user.username in first:
                message = (
                    f"duplicate username {user.username!r} (also users[{first[user.username]}])"
                )
                raise _problem((index, "username"), message)
            first[user.username] = index
        return users


class DefaultTimeBasedProvider(_Model):
    """The built-in TOTP provider (RFC 6238): the server enrols and verifies the seeds."""

    name: str = Field(
        min_length=1,
        description="Referred to by identityProviders[].mfaProvider; unique.",
        examples=["builtin"],
    )
    type: Literal["DefaultTimeBased"] = Field(
        description="Selects this kind of MFA provider.", examples=["DefaultTimeBased"]
    )
    secret_bits: int = Field(
        160,
        ge=128,
        le=512,
        multiple_of=8,
        description="Length of a new seed in bits.",
        examples=[256],
    )
    digits: int = Field(
        6, ge=6, le=8, description="Digits of a code (in the otpauth URL if not 6).", examples=[8]
    )
    period: int = Field(
        30,
        ge=10,
        le=300,
        description="Seconds per time step (in the otpauth URL if not 30).",
        examples=[30],
    )
    drift_steps: int = Field(
        1,
        ge=0,
        le=10,
        description="Time steps accepted either side of the current one, for clock drift.",
        examples=[1],
    )
    lockout: LockoutSettings = Field(
        LockoutSettings(),
        description="Lockout after wrong codes at POST /admin/authentication/otp.",
        examples=[{"maxFailedAttempts": 5, "cooldown": "60s", "maxCooldown": "1h"}],
    )


class RadiusMode(StrEnum):
    """What the RADIUS server is asked, and when (the README tells each mode's exchanges)."""

    ONE_FACTOR = "OneFactor"
    CHALLENGE = "Challenge"
    PUSH = "Push"


class RadiusProvider(_Model):
    """An external RADIUS server decides; see the README for what each mode sends."""

    name: str = Field(
        min_length=1,
        description="Referred to by identityProviders[].mfaProvider; unique.",
        examples=["corp-radius"],
    )
    type: Literal["Radius"] = Field(
        description="Selects this kind of MFA provider.", examples=["Radius"]
    )
    hostnames: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1,
        description="RADIUS servers, tried in order; each gets an equal share of timeout.",
        examples=[["radius1.example.com", "radius2.example.com"]],
    )
    port: int = Field(
        1812, ge=1, le=65535, description="UDP port of the RADIUS servers.", examples=[1812]
    )
    shared_secret: str = Field(
        min_length=1,
        description="The RADIUS shared secret of this server as a client.",
        examples=["testing123"],
    )
    authentication_protocol: AuthProtocol = Field(
        AuthProtocol.CHAP,
        description="How the password travels: User-Password (PAP) or CHAP-Password (CHAP).",
        examples=["PAP"],
    )
    timeout: Duration = Field(
        6.0,
        le=300,
        description=(
            "How long to wait for an answer over all hostnames, at most 5 minutes; clients are "
            "told it as `timeout` (in seconds). No answer in time: 504."
        ),
        examples=[10],
    )
    mode: RadiusMode = Field(
        RadiusMode.CHALLENGE,
        description=(
            "OneFactor: the OTP is the password of one Access-Request. Challenge: initialize "
            "gets an Access-Challenge, the OTP answers it. Push: /otp waits for an approval "
            "on another device."
        ),
        examples=["Push"],
    )
    use_user_password: bool = Field(
        False,
        description=(
            "Challenge: send the user's password (the `userPassword` of initialize) instead of "
            "challengeSharedSecret. Push: the client sends the password as `otp` "
            "(`sendPassword` true)."
        ),
        examples=[True],
    )
    challenge_shared_secret: str | None = Field(
        None,
        min_length=1,
        description=(
            "The password of the first Access-Request in Challenge and Push modes when "
            "useUserPassword is off (then required)."
        ),
        examples=["push-secret"],
    )
    input_type: Literal["Masked", "Numeric", "Text"] = Field(
        "Masked",
        description="How a client should show the OTP field; informational, never sent here.",
        examples=["Numeric"],
    )
    require_message_authenticator: bool = Field(
        True,
        description=(
            "Drop answers without a Message-Authenticator (BlastRADIUS, CVE-2024-3596); false "
            "only for a legacy RADIUS server that never sends one."
        ),
        examples=[False],
    )
    nas_identifier: str | None = Field(
        "appgate-sdp-controller",
        min_length=1,
        description="NAS-Identifier of every Access-Request; null leaves it out.",
        examples=["controller-1"],
    )
    nas_ip_address: IPv4Address | None = Field(
        None,
        description="NAS-IP-Address of every Access-Request; absent when unset.",
        examples=["192.0.2.10"],
    )
    lockout: LockoutSettings = Field(
        LockoutSettings(),
        description=(
            "Lockout after wrong answers: an Access-Reject of the OTP (or of the user's "
            "password at initialize), and every further Challenge round that does not end in "
            "an Access-Accept. Timeouts do not count; a success resets the count."
        ),
        examples=[{"maxFailedAttempts": 5, "cooldown": "60s", "maxCooldown": "1h"}],
    )
    max_challenge_rounds: int = Field(
        5,
        ge=1,
        le=100,
        description=(
            "The most Access-Challenges one login (one partial token) may get, initialize's "
            "included; the one beyond ends the session (401, log in again)."
        ),
        examples=[3],
    )
    push_limit: int = Field(
        5,
        ge=1,
        le=1000,
        description=(
            "Push mode: the most pushes per user within pushWindow, answered or not (against "
            "push fatigue); one more is refused with 401 and the time to retry."
        ),
        examples=[5],
    )
    push_window: Duration = Field(
        600.0,
        le=86400,
        description="Push mode: the window over which pushLimit counts, at most a day.",
        examples=["10m"],
    )

    @model_validator(mode="after")
    def _challenge_secret(self) -> RadiusProvider:
        needs_secret = self.mode is not RadiusMode.ONE_FACTOR and not self.use_user_password
        if needs_secret and self.challenge_shared_secret is None:
            message = f"mode {self.mode} without useUserPassword needs challengeSharedSecret"
            raise _problem(("challengeSharedSecret",), message)
        secret = self.challenge_shared_secret
        pap = self.authentication_protocol is AuthProtocol.PAP
        if pap and secret and len(secret.encode()) > PAP_MAX_LENGTH:
            message = (
                f"longer than {PAP_MAX_LENGTH} bytes, the most a RADIUS User-Password (PAP) carries"
            )
            raise _problem(("challengeSharedSecret",), message)
        return self


MfaProvider = Annotated[DefaultTimeBasedProvider | RadiusProvider, Field(discriminator="type")]


class Settings(_Model):
    """The whole file."""

    server: ServerSettings = Field(
        ServerSettings(),
        description="Listening, naming, tokens and limits (see server).",
        examples=[{"hostname": "controller.example.com", "port": 8443}],
    )
    storage: StorageSettings = Field(
        StorageSettings(),
        description="The database and the seed key (see storage).",
        examples=[{"url": "sqlite:///./data/mfa.db", "encryptionKeyFile": "./data/seed.key"}],
    )
    identity_providers: list[IdentityProvider] = Field(
        min_length=1,
        description="Who can log in (see identityProviders[]).",
        examples=[[{"name": "local", "mfaProvider": "builtin", "users": []}]],
    )
    mfa_providers: list[MfaProvider] = Field(
        [],
        description="The second factors that identity providers name (see mfaProviders[]).",
        examples=[[{"name": "builtin", "type": "DefaultTimeBased"}]],
    )

    @model_validator(mode="after")
    def _references(self) -> Settings:
        for key, items in (
            ("identityProviders", self.identity_providers),
            ("mfaProviders", self.mfa_providers),
        ):
            first: dict[str, int] = {}
            for index, item in enumerate(items):
                if item.name in first:
                    message = f"duplicate name {item.name!r} (also {key}[{first[item.name]}])"
                    raise _problem((key, index, "name"), message)
                first[item.name] = index
        mfa_names = [p.name for p in self.mfa_providers]
        for index, idp in enumerate(self.identity_providers):
            if idp.mfa_provider is not None and idp.mfa_provider not in mfa_names:
                known = ", ".join(mfa_names) or "none"
                message = f"no MFA provider named {idp.mfa_provider!r} in mfaProviders ({known})"
                raise _problem(("identityProviders", index, "mfaProvider"), message)
        return self

    def identity_provider(self, name: str) -> IdentityProvider | None:
        return next((idp for idp in self.identity_providers if idp.name == name), None)

    def mfa_provider(self, name: str) -> DefaultTimeBasedProvider | RadiusProvider | None:
        return next((p for p in self.mfa_providers if p.name == name), None)


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
    """Settings from YAML text; every problem in one ConfigError, a ``file:line:`` each."""
    raw, lines = load_yaml(text, source)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("\n".join(validation_problems(source, exc, lines, Settings))) from None
    return _resolve_relative(settings, base)


def load_settings(path: str | Path) -> Settings:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: cannot read: not UTF-8 text") from None
    return parse_settings(text, str(file), file.resolve().parent)


def demo_settings(data_dir: Path) -> Settings:
    """The embedded demo configuration, with its data kept in ``data_dir``."""
    text = resources.files(__package__).joinpath(DEMO_CONFIG_RESOURCE).read_text(encoding="utf-8")
    return parse_settings(text, "(embedded demo configuration)", data_dir)
