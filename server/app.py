# -*- test-case-name: tests.test_login_flow, tests.test_errors, tests.test_api22 -*-
"""The Starlette application: routes that parse input, call the service and render the result.

The service is built in the lifespan, once the store is open and the seed key has been checked
against it (server/keys.py), so a server with the wrong key never answers a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from appgate_mfa_server import errors
from appgate_mfa_server.cancelled import AnswerWhenCancelled
from appgate_mfa_server.config import DefaultTimeBasedProvider, Settings
from appgate_mfa_server.demo_page import demo_page_middleware
from appgate_mfa_server.edge import EdgeMiddleware
from appgate_mfa_server.http_input import Incoming
from appgate_mfa_server.keys import open_checked_key
from appgate_mfa_server.logs import SINK, quiet_loop_errors
from appgate_mfa_server.mfa.base import MfaMethod
from appgate_mfa_server.mfa.builtin import BuiltinTotp
from appgate_mfa_server.mfa.radius import RadiusMfa
from appgate_mfa_server.mfa.sealed_state import StateSealer, derive_key
from appgate_mfa_server.push_join import PushJoiner
from appgate_mfa_server.responses import exception_handlers, send_json
from appgate_mfa_server.schemas import InitializeRequest, LoginRequest, OtpRequest, parse_body
from appgate_mfa_server.seedcrypt import SeedCipher
from appgate_mfa_server.service import Credentials, LoginService
from appgate_mfa_server.store import Stage, Store, open_store
from appgate_mfa_server.testcontrol import ownership
from appgate_mfa_server.testcontrol.control import TestControl
from appgate_mfa_server.testcontrol.middleware import control_middleware

log = logging.getLogger("mfa.server")


class _DistinguishedName(PathConvertor):
    """A distinguished name in a path: may hold "/" (sent as %2F), never empty."""

    regex = ".+"


register_url_convertor("dn", _DistinguishedName())

PUSH_KEY_INFO = b"appgate-mfa-reference push result v1"
Clock = Callable[[], float]


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


def build_service(settings: Settings, store: Store, key: bytes, clock: Clock) -> LoginService:
    methods = build_methods(settings, store, key, clock)
    pushes = PushJoiner(store, derive_key(key, PUSH_KEY_INFO), clock)
    return LoginService(settings, store, methods, clock, pushes)


@dataclass
class _Runtime:
    """What the lifespan builds and every route uses."""

    service: LoginService | None = None

    @property
    def ready(self) -> LoginService:
        if self.service is None:
            raise errors.unavailable()
        return self.service


Answer = tuple[int, dict[str, Any] | None]  # status, JSON body (None: no body)


class _Endpoint:
    """A route handler as a bare ASGI app: it reads an Incoming and answers a status and a
    body; an ApiError it raises is answered here, in the contract's shape."""

    def __init__(self, handler: Callable[[Incoming], Awaitable[Answer]]) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, body = await self.handler(Incoming(scope, receive))
        except errors.ApiError as error:
            status, body = error.status, error.body()
        await send_json(send, status, body)


def _routes(runtime: _Runtime, settings: Settings) -> list[Route]:
    body_limit = settings.server.max_body_bytes
    body_timeout = settings.server.request_timeout

    async def body_of(request: Incoming) -> dict[str, object] | None:
        return await request.json_object(body_limit, body_timeout)

    async def identity_provider_names(request: Incoming) -> Answer:
        return 200, runtime.ready.identity_provider_names()

    async def credentials(request: Incoming) -> Credentials:
        body = parse_body(LoginRequest, await body_of(request))
        return Credentials(body.providerName, body.username, body.password)

    async def authenticate(request: Incoming) -> Answer:
        given = await credentials(request)
        return 200, await runtime.ready.authenticate(given)

    async def login(request: Incoming) -> Answer:
        given = await credentials(request)
        return 200, await runtime.ready.login(given)

    async def initialize(request: Incoming) -> Answer:
        service = runtime.ready
        session = await service.resolve(request.bearer_token(), Stage.PARTIAL, with_seed=True)
        body = parse_body(InitializeRequest, await body_of(request))
        return 200, await service.initialize(session, body.userPassword)

    async def otp(request: Incoming) -> Answer:
        service = runtime.ready
        session = await service.resolve(request.bearer_token(), Stage.PARTIAL, with_seed=True)
        body = parse_body(OtpRequest, await body_of(request))
        return 200, await service.verify_otp(session, body.otp, body.state)

    async def authorization(request: Incoming) -> Answer:
        return 200, await runtime.ready.authorize(request.bearer_token())

    async def logout(request: Incoming) -> Answer:
        await runtime.ready.logout(request.bearer_token())
        return 204, None

    async def list_seeds(request: Incoming) -> Answer:
        query = request.query("query")
        return 200, await runtime.ready.list_seeds(request.bearer_token(), query)

    async def delete_seed(request: Incoming) -> Answer:
        await runtime.ready.delete_seed(request.bearer_token(), request.path_param("dn"))
        return 204, None

    table = [  # the router tries them in order: the ones of every login first
        ("/admin/authentication/otp/initialize", initialize, "POST"),
        ("/admin/authentication/otp", otp, "POST"),
        ("/admin/authentication", authenticate, "POST"),
        ("/admin/authorization", authorization, "GET"),
        ("/admin/identity-providers/names", identity_provider_names, "GET"),
        ("/admin/login", login, "POST"),
        ("/admin/authentication/logout", logout, "POST"),
        ("/admin/logout", logout, "POST"),  # the API 16 path, kept as an alias
        ("/admin/otp/seeds", list_seeds, "GET"),
        ("/admin/otp/seeds/{dn:dn}", delete_seed, "DELETE"),
    ]
    return [Route(path, _Endpoint(handler), methods=[method]) for path, handler, method in table]


def _direct_routes(routes: list[Route]) -> dict[tuple[str, str], ASGIApp]:
    """(method, path) -> endpoint, for the routes without path parameters: the edge calls
    these itself, past Starlette's exception middleware and router (a linear regex scan);
    they answer their own errors. The rest (parameters, 404, 405) goes through the router."""
    return {
        (method, route.path): route.app
        for route in routes
        if not route.param_convertors
        for method in route.methods or ()
        if method != "HEAD"
    }


def create_app(
    settings: Settings,
    *,
    clock: Clock = time.time,
    store: Store | None = None,
    on_ready: Callable[[], None] | None = None,
) -> Starlette:
    the_store = store if store is not None else open_store(settings.storage.url)
    runtime = _Runtime()
    control = TestControl.from_settings(settings, clock)  # None unless server.testControl
    clock = clock if control is None else control.clock

    async def purge_forever(service: LoginService) -> None:
        while True:
            await asyncio.sleep(settings.storage.purge_interval)
            try:
                await service.purge()
            except Exception as exc:  # a purge that fails now may work next time
                fields = {"event": "purge_failed", "type": type(exc).__name__}
                log.error("purge failed", extra={"fields": fields})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ownership.claim_if_new(the_store, settings)
        await the_store.open()
        try:
            await ownership.check(the_store, settings)
            key = await open_checked_key(the_store, settings.storage)
            runtime.service = build_service(settings, the_store, key, clock)
            if control is not None:
                control.bind(the_store, key)
            app.state.service = runtime.service
            purger = asyncio.create_task(purge_forever(runtime.service))
            quiet_loop_errors(asyncio.get_running_loop())
            if on_ready is not None:
                on_ready()
            try:
                yield
            finally:
                runtime.service = None
                purger.cancel()
        finally:
            await the_store.close()
            SINK.flush()

    routes = _routes(runtime, settings)
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(AnswerWhenCancelled),  # outermost, so it covers every request
            *control_middleware(control),
            *demo_page_middleware(settings),  # before the Accept check: a browser's page
            Middleware(
                EdgeMiddleware,
                min_version=settings.server.api_versions.min,
                max_version=settings.server.api_versions.max,
                access_log=settings.server.access_log,
                direct=_direct_routes(routes),
            ),
        ],
        exception_handlers=exception_handlers(log),
        lifespan=lifespan,
    )
    # A trailing slash is a path of its own (404), never a redirect built from the Host header.
    app.router.redirect_slashes = False
    app.state.store = the_store
    return app
