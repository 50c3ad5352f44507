# -*- test-case-name: tests.test_test_control, tests.test_test_control_openapi -*-
"""The routes under /_test/: a small Starlette application of its own, answered in front of the
API (no Accept negotiation, no access log: the journal and the test_* log events say what
happened). Errors have the API's shape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from pydantic import ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from appgate_mfa_server import errors
from appgate_mfa_server.errors import FieldError
from appgate_mfa_server.http_input import read_json_object
from appgate_mfa_server.responses import exception_handlers, json_response, no_content
from appgate_mfa_server.schemas import RequestBody, parse_body
from appgate_mfa_server.testcontrol.clock import ClockError
from appgate_mfa_server.testcontrol.connection import from_scope
from appgate_mfa_server.testcontrol.control import TestControl, event
from appgate_mfa_server.testcontrol.faults import FaultRequest
from appgate_mfa_server.testcontrol.seeds import SeedRequest

log = logging.getLogger("mfa.testcontrol")
PREFIX = "/_test/"
Seconds = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class ClockRequest(RequestBody):
    """Exactly one of ``now`` (epoch seconds; null for real time) and ``advance`` (seconds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    now: Seconds | None = None
    advance: Seconds = 0.0


def control_app(control: TestControl) -> Starlette:
    async def body_of(request: Request) -> dict[str, object] | None:
        return await read_json_object(request, control.body_limit, control.body_timeout)

    async def get_clock(request: Request) -> Response:
        return json_response(control.clock.view())

    async def set_clock(request: Request) -> Response:
        body = parse_body(ClockRequest, await body_of(request))
        given = {"now", "advance"} & body.model_fields_set
        if len(given) != 1:
            raise errors.validation_error([FieldError("now", "give either now or advance")])
        try:
            if "now" in given:
                control.clock.set(body.now)
            else:
                control.clock.advance(body.advance)
        except ClockError as exc:
            raise errors.validation_error([FieldError(given.pop(), str(exc))]) from None
        event("clock_set", **control.clock.view())
        return json_response(control.clock.view())

    async def list_faults(request: Request) -> Response:
        return json_response({"faults": control.faults.views()})

    async def add_fault(request: Request) -> Response:
        spec = parse_body(FaultRequest, await body_of(request))
        if spec.fault is not None and from_scope(request.scope) is None:
            message = "this server cannot break connections (run it as mfa-server)"
            raise errors.validation_error([FieldError("fault", message)])
        fault = control.faults.add(spec)
        event("fault_added", **fault.summary(), method=fault.method, path=fault.path,
              times=fault.remaining)  # fmt: skip
        return json_response(fault.view(), 201)

    async def clear_faults(request: Request) -> Response:
        control.faults.clear()
        return no_content()

    async def delete_fault(request: Request) -> Response:
        if not control.faults.remove(request.path_params["id"]):
            raise errors.not_found("No such fault waiting.")
        return no_content()

    async def put_seed(request: Request) -> Response:
        body = parse_body(SeedRequest, await body_of(request))
        return json_response(await control.put_seed(request.path_params["dn"], body))

    async def reset(request: Request) -> Response:
        await control.reset()
        return no_content()

    async def journal(request: Request) -> Response:
        since = request.query_params.get("since", "0")
        if not (since.isascii() and since.isdigit() and len(since) <= 18):
            raise errors.validation_error([FieldError("since", "must be a sequence number")])
        entries = control.journal.since(int(since))
        return json_response({"entries": entries, "dropped": control.journal.dropped})

    async def clear_journal(request: Request) -> Response:
        control.journal.clear()
        return no_content()

    routes = [
        _route("clock", GET=get_clock, POST=set_clock),
        _route("faults", GET=list_faults, POST=add_fault, DELETE=clear_faults),
        _route("faults/{id:int}", DELETE=delete_fault),
        _route("seeds/{dn:path}", PUT=put_seed),
        _route("reset", POST=reset),
        _route("journal", GET=journal, DELETE=clear_journal),
    ]
    app = Starlette(routes=routes, exception_handlers=exception_handlers(log))
    app.router.redirect_slashes = False
    return app


Endpoint = Callable[[Request], Awaitable[Response]]


def _route(path: str, **by_method: Endpoint) -> Route:
    """One route per path, whatever its methods, so a 405 lists them all in ``Allow``."""

    async def dispatch(request: Request) -> Response:
        return await by_method[request.method if request.method != "HEAD" else "GET"](request)

    return Route(PREFIX + path, dispatch, methods=list(by_method))
