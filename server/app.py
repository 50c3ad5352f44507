"""The Starlette application: routes that parse input, call the service and render the result."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server import errors
from server.config import DefaultTimeBasedProvider, Settings
from server.http_input import bearer_token, read_json_object
from server.logs import AccessLogMiddleware, quiet_loop_errors
from server.mfa.base import MfaMethod
from server.mfa.builtin import BuiltinTotp
from server.mfa.radius import RadiusMfa
from server.mfa.sealed_state import StateSealer, derive_key
from server.negotiation import AcceptVersionMiddleware
from server.responses import error_response, json_response, no_content
from server.schemas import InitializeRequest, LoginRequest, OtpRequest, parse_body
from server.seedcrypt import KeyFileError, SeedCipher, decode_key, load_or_create_key_file
from server.service import LoginService
from server.store import Stage, Store, open_store

log = logging.getLogger("mfa.server")

PURGE_INTERVAL_SECONDS = 600.0
Clock = Callable[[], float]


def master_key(settings: Settings) -> bytes:
    """The key seeds are encrypted with; RADIUS states are sealed with a key derived from it."""
    storage = settings.storage
    if storage.encryption_key is not None:
        return decode_key(storage.encryption_key)
    if storage.encryption_key_file is None:
        raise KeyFileError("set storage.encryptionKey or storage.encryptionKeyFile")
    return load_or_create_key_file(Path(storage.encryption_key_file))


def build_methods(
    settings: Settings, store: Store, key: bytes, clock: Clock
) -> dict[str, MfaMethod]:
    cipher = SeedCipher(key)
    sealer = StateSealer(derive_key(key))
    methods: dict[str, MfaMethod] = {}
    for provider in settings.mfa_providers:
        if isinstance(provider, DefaultTimeBasedProvider):
            methods[provider.name] = BuiltinTotp(
                provider,
                store=store,
                cipher=cipher,
                clock=clock,
                hostname=settings.server.hostname,
                issuer=settings.server.issuer,
            )
        else:
            methods[provider.name] = RadiusMfa(provider, sealer=sealer, clock=clock)
    return methods


def _handlers(service: LoginService, body_limit: int) -> list[Route]:
    async def body_of(request: Request) -> dict[str, object] | None:
        return await read_json_object(request, body_limit)

    async def identity_provider_names(request: Request) -> Response:
        return json_response(service.identity_provider_names())

    async def authenticate(request: Request) -> Response:
        body = parse_body(LoginRequest, await body_of(request))
        return json_response(await service.authenticate(body))

    async def initialize(request: Request) -> Response:
        session = await service.resolve(bearer_token(request), Stage.PARTIAL)
        body = parse_body(InitializeRequest, await body_of(request))
        return json_response(await service.initialize(session, body))

    async def otp(request: Request) -> Response:
        session = await service.resolve(bearer_token(request), Stage.PARTIAL)
        body = parse_body(OtpRequest, await body_of(request))
        return json_response(await service.verify_otp(session, body))

    async def authorization(request: Request) -> Response:
        return json_response(await service.authorize(bearer_token(request)))

    async def logout(request: Request) -> Response:
        await service.logout(bearer_token(request))
        return no_content()

    async def list_seeds(request: Request) -> Response:
        query = request.query_params.get("query")
        return json_response(await service.list_seeds(bearer_token(request), query))

    async def delete_seed(request: Request) -> Response:
        dn = request.path_params["dn"]
        await service.delete_seed(bearer_token(request), dn)
        return no_content()

    return [
        Route("/admin/identity-providers/names", identity_provider_names, methods=["GET"]),
        Route("/admin/authentication", authenticate, methods=["POST"]),
        Route("/admin/authentication/otp/initialize", initialize, methods=["POST"]),
        Route("/admin/authentication/otp", otp, methods=["POST"]),
        Route("/admin/authorization", authorization, methods=["GET"]),
        Route("/admin/logout", logout, methods=["POST"]),
        Route("/admin/otp/seeds", list_seeds, methods=["GET"]),
        Route("/admin/otp/seeds/{dn}", delete_seed, methods=["DELETE"]),
    ]


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(errors.not_found())
    if exc.status_code == 405:
        response = error_response(errors.method_not_allowed())
        response.headers.update(exc.headers or {})  # Allow, as RFC 9110 requires
        return response
    return error_response(errors.ApiError(exc.status_code, "http error", "The request failed."))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error(
        "unexpected error",
        extra={"fields": {"event": "unexpected_error", "type": type(exc).__name__}},
    )
    return error_response(errors.unexpected_error())


def create_app(
    settings: Settings,
    *,
    clock: Clock = time.time,
    store: Store | None = None,
    on_ready: Callable[[], None] | None = None,
) -> Starlette:
    the_store = store if store is not None else open_store(settings.storage.url)
    key = master_key(settings)
    service = LoginService(
        settings, the_store, build_methods(settings, the_store, key, clock), clock
    )

    async def purge_forever() -> None:
        while True:
            await asyncio.sleep(PURGE_INTERVAL_SECONDS)
            await the_store.purge_tokens(clock())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await the_store.open()
        purger = asyncio.create_task(purge_forever())
        quiet_loop_errors(asyncio.get_running_loop())
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            purger.cancel()
            await the_store.close()

    handlers: dict[type[Exception] | int, Callable[[Request, Exception], Awaitable[Response]]] = {
        errors.ApiError: _api_error,
        HTTPException: _http_error,
        Exception: _unexpected,
    }
    app = Starlette(
        routes=_handlers(service, settings.server.max_body_bytes),
        middleware=[
            Middleware(AccessLogMiddleware),
            Middleware(
                AcceptVersionMiddleware,
                min_version=settings.server.api_versions.min,
                max_version=settings.server.api_versions.max,
            ),
        ],
        exception_handlers=handlers,
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.store = the_store
    return app
