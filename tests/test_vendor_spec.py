"""server/openapi.yaml against the vendor's own OpenAPI files for the login routes.

tests/vendor-spec/ holds the vendor's files unchanged (MIT, see LICENSE and SOURCE there). Every
field this server declares in a request or a 200 body, and in its error bodies, must exist in the
vendor's document with the same type, format and enum values, so a client written against the
vendor's API finds what it expects. Routes of the vendor's login document that this server does
not serve are listed here, with why, so adding one shows up as a change to review.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
VENDOR = Path(__file__).resolve().parent / "vendor-spec"
OURS: dict[str, Any] = yaml.safe_load((ROOT / "server" / "openapi.yaml").read_text())
VENDOR_FILES = {
    name: yaml.safe_load((VENDOR / name).read_text()) for name in ("login.yml", "common.yml")
}

NOT_SERVED: dict[str, str] = {}
# Where this server answers with more than the vendor documents, on purpose.
EXTENSIONS = {
    ("/authentication/otp", "200"): "a second RADIUS round answers with a Challenge body",
}


def vendor_login_routes() -> dict[str, str]:
    """URL path under /admin -> the key of its entry in login.yml (from paths-v22.txt)."""
    text = (VENDOR / "paths-v22.txt").read_text()
    pairs = re.findall(r"^  (/\S+):\n    \$ref: '\./login\.yml#/([\w-]+)'", text, re.M)
    return dict(pairs)


def _resolve(schema: Any, document: str) -> tuple[Any, str]:
    """Follow $refs: ``#/a/b`` inside ``document`` or ``./file.yml#/a/b``."""
    while isinstance(schema, dict) and "$ref" in schema:
        target, _, pointer = schema["$ref"].partition("#")
        if target:
            document = target.removeprefix("./")
        if document not in VENDOR_FILES and document != "ours":
            return None, document  # a file not copied here: not compared
        node: Any = OURS if document == "ours" else VENDOR_FILES[document]
        for part in pointer.strip("/").split("/"):
            node = node[part]
        schema = node
    return schema, document


def _merged(schema: Any, document: str) -> tuple[dict[str, Any], str]:
    """allOf parts merged into one schema (the vendor builds error bodies that way)."""
    schema, document = _resolve(schema, document)
    if not isinstance(schema, dict) or "allOf" not in schema:
        return schema, document
    merged: dict[str, Any] = {"type": "object", "properties": {}}
    for part in schema["allOf"]:
        resolved, part_document = _merged(part, document)
        for name, prop in (resolved or {}).get("properties", {}).items():
            merged["properties"][name] = _resolve(prop, part_document)[0]
    return merged, document


def compare(ours: Any, theirs: Any, where: str, theirs_doc: str = "login.yml") -> list[str]:
    """Differences where ours declares something the vendor does not, or otherwise."""
    ours, _ = _merged(ours, "ours")
    theirs, theirs_doc = _merged(theirs, theirs_doc)
    if theirs is None:  # defined in a vendor file that is not part of this copy
        return []
    problems: list[str] = []
    for key in ("type", "format"):
        if key in theirs and ours.get(key) != theirs[key]:
            problems.append(f"{where}: {key} {ours.get(key)!r}, the vendor's is {theirs[key]!r}")
    if "enum" in ours and not set(ours["enum"]) <= set(theirs.get("enum", ours["enum"])):
        problems.append(f"{where}: enum {ours['enum']} not within {theirs['enum']}")
    theirs_props = theirs.get("properties", {})
    for name, prop in ours.get("properties", {}).items():
        if name not in theirs_props:
            problems.append(f"{where}.{name}: not in the vendor's schema")
        else:
            problems += compare(prop, theirs_props[name], f"{where}.{name}", theirs_doc)
    if "items" in ours and "items" in theirs:
        problems += compare(ours["items"], theirs["items"], f"{where}[]", theirs_doc)
    return problems


def _body(operation: dict[str, Any] | None, document: str) -> tuple[Any, str]:
    if operation is None:
        return None, document
    operation, document = _resolve(operation, document)
    content = (operation or {}).get("content", {}).get("application/json")
    return (content or {}).get("schema"), document


def test_the_vendor_files_are_here_with_their_licence() -> None:
    assert "MIT License" in (VENDOR / "LICENSE").read_text()
    assert "appgate/sdp-api-specification" in (VENDOR / "SOURCE").read_text()


def test_every_vendor_login_route_is_served_or_listed() -> None:
    served = {path.removeprefix("/admin") for path in OURS["paths"]}
    vendor = set(vendor_login_routes())
    assert len(vendor) == 7
    assert vendor - served == set(NOT_SERVED)
    assert {"/admin/login", "/admin/authentication/logout"} <= set(OURS["paths"])


@pytest.mark.parametrize(
    "route", sorted(set(vendor_login_routes()) - set(NOT_SERVED)), ids=lambda r: r
)
def test_request_and_success_bodies_match_the_vendor(route: str) -> None:
    theirs_route = VENDOR_FILES["login.yml"][vendor_login_routes()[route]]
    ours_route = OURS["paths"]["/admin" + route]
    assert set(ours_route) == set(theirs_route), "the same HTTP methods"
    problems: list[str] = []
    for method, ours in ours_route.items():
        theirs = theirs_route[method]
        request = _body(ours.get("requestBody"), "ours")[0]
        if request is not None:
            vendor_request, doc = _body(theirs.get("requestBody"), "login.yml")
            problems += compare(request, vendor_request, f"{method} {route} request", doc)
        success = _resolve(_body(ours["responses"].get("200"), "ours")[0], "ours")[0]
        if success is not None:
            alternatives = success.get("oneOf") or success.get("anyOf") or [success]
            if (route, "200") in EXTENSIONS:
                alternatives = alternatives[:1]
            vendor_success, doc = _body(theirs["responses"].get("200"), "login.yml")
            for alternative in alternatives:
                problems += compare(alternative, vendor_success, f"{method} {route} 200", doc)
    assert problems == []


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("Error", "./common.yml#/definitions/Error"),
        ("ValidationError", "./common.yml#/definitions/ValidationError"),
        ("AuthenticationError", "#/responses/AuthenticationError"),
        ("NotAcceptable", "#/responses/NotAcceptableError"),
    ],
)
def test_error_bodies_match_the_vendor(ours: str, theirs: str) -> None:
    vendor: Any = {"$ref": theirs}
    if theirs.startswith("#/responses"):
        vendor, _ = _body(vendor, "login.yml")
    mine = {"$ref": f"#/components/schemas/{ours}"}
    assert compare(mine, vendor, ours) == []


def test_the_comparison_catches_a_renamed_or_retyped_field() -> None:
    """The check above can fail: a wrong name and a wrong type are both reported."""
    theirs = {"$ref": "#/definitions/LoginRequest"}
    wrong = {"type": "object", "properties": {"provider": {"type": "string"},
                                              "deviceId": {"type": "integer"}}}  # fmt: skip
    assert compare(wrong, theirs, "LoginRequest") == [
        "LoginRequest.provider: not in the vendor's schema",
        "LoginRequest.deviceId: type 'integer', the vendor's is 'string'",
        "LoginRequest.deviceId: format None, the vendor's is 'uuid'",
    ]
