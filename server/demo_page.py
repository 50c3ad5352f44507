"""The demo page: ``GET /`` walks the login flow in a browser, as a real client of this API.

Plain HTML, a stylesheet and a small script (package data in ``demo_page/``: no build step,
nothing from another site) served from memory by a middleware in front of the Accept check,
since a browser asks for ``text/html`` and the page is not part of the API. Its script speaks
the API as any client does, versioned Accept header included. Served with ``server.demoPage``
(the embedded demo's configuration turns it on) or under test control; otherwise ``/`` is an
unknown path like any other.
"""

from __future__ import annotations

from importlib import resources

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from appgate_mfa_server.config import Settings

FILES = {
    "/": ("index.html", b"text/html; charset=utf-8"),
    "/demo.js": ("demo.js", b"text/javascript; charset=utf-8"),
    "/demo.css": ("demo.css", b"text/css; charset=utf-8"),
}
# Only this origin's files, the QR code as a data: URL and calls of this API; no framing.
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; "
     b"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
     b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]  # fmt: skip
Asset = tuple[bytes, bytes]  # content type, body


def load_assets() -> dict[str, Asset]:
    folder = resources.files(__package__).joinpath("demo_page")
    return {
        path: (kind, folder.joinpath(name).read_bytes()) for path, (name, kind) in FILES.items()
    }


class DemoPageMiddleware:
    def __init__(self, app: ASGIApp, assets: dict[str, Asset]) -> None:
        self.app = app
        self.assets = assets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        asset = self.assets.get(scope["path"]) if scope["type"] == "http" else None
        if asset is None or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        kind, body = asset
        headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()),
                   *SECURITY_HEADERS]  # fmt: skip
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )


def served(settings: Settings) -> bool:
    return settings.server.demo_page or settings.server.test_control.enabled


def demo_page_middleware(settings: Settings) -> list[Middleware]:
    """The middleware to put in front of the Accept check, if the page is served."""
    return [Middleware(DemoPageMiddleware, assets=load_assets())] if served(settings) else []
