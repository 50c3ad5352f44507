"""The ceiling: a bare Starlette route returning a constant JSON, served the same way."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def constant(request: Request) -> JSONResponse:
    return JSONResponse({"type": "AlreadySeeded"})


app = Starlette(routes=[Route("/ceiling", constant, methods=["GET", "POST"])])
