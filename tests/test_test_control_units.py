"""The test control's parts one by one: the validators (with hypothesis), the fault book, the
journal's bounds, the clock, the error shapes, the start checks, and its place in the app."""

from __future__ import annotations

import base64
import ipaddress
import json
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appgate_mfa_server import errors
from appgate_mfa_server.app import create_app
from appgate_mfa_server.cancelled import AnswerWhenCancelled
from appgate_mfa_server.schemas import parse_body
from appgate_mfa_server.testcontrol.clock import LATEST, ClockError, VirtualClock
from appgate_mfa_server.testcontrol.error_shapes import error_body
from appgate_mfa_server.testcontrol.faults import MAX_FAULTS, FaultBook, FaultRequest
from appgate_mfa_server.testcontrol.journal import Journal
from appgate_mfa_server.testcontrol.middleware import TestControlMiddleware
from appgate_mfa_server.testcontrol.origins import HostRule, refusal
from appgate_mfa_server.testcontrol.seeds import normalized_secret
from appgate_mfa_server.testcontrol.startup import is_loopback
from appgate_mfa_server.testcontrol.startup import refusal as start_refusal
from tests.conftest import ACCEPT, FakeClock, base_config, serve_in_thread, settings_from
from tests.test_architecture import imports_of

FIELDS = ["method", "path", "status", "body", "headers", "delay", "fault", "times", "other"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=6,
)  # fmt: skip
fault_fields = st.fixed_dictionaries(
    {},
    optional={
        "method": st.sampled_from(["GET", "post", "*", "", "G T", "PATCH"]) | json_values,
        "path": st.sampled_from(["/admin/x", "/admin/*", "/_test/clock", "x", "/a*b"])
        | json_values,
        "status": st.integers(100, 700) | json_values,
        "body": json_values,
        "headers": st.dictionaries(st.sampled_from(["Retry-After", "Content-Length", "X y"]),
                                   st.text(max_size=5), max_size=2) | json_values,
        "delay": st.floats(-1, 100) | json_values,
        "fault": st.sampled_from(["reset", "empty", "garbage", "boom"]) | json_values,
        "times": st.integers(-1, 5) | json_values,
        "other": json_values,
    },
)  # fmt: skip


def add(book: FaultBook, **fields: Any) -> Any:
    return book.add(parse_body(FaultRequest, fields))


@settings(max_examples=150, deadline=None)
@given(fault_fields)
def test_a_fault_is_added_whole_or_refused_with_422(fields: dict[str, Any]) -> None:
    book = FaultBook()
    try:
        fault = add(book, **fields)
    except errors.ApiError as error:
        assert error.status == 422 and error.extra["errors"]
        assert book.views() == []
        return
    assert fault.remaining == fields.get("times", 1) >= 1
    assert fault.path.startswith("/") and not fault.path.startswith("/_test")
    assert (fault.status, fault.delay, fault.fault) != (None, None, None)
    if fault.fault is not None:
        assert (fault.status, fault.body, fault.headers) == (None, None, {})
    assert "other" not in fields
    json.dumps(book.views())  # what GET /_test/faults answers is JSON


def test_faults_match_in_order_count_down_and_go() -> None:
    book = FaultBook()
    first = add(book, method="*", path="/admin/*", status=503, times=2)
    second = add(book, method="post", path="/admin/authentication", status=500)
    assert book.take("GET", "/other") is None
    assert book.take("POST", "/admin/authentication") is first
    assert [f["remaining"] for f in book.views()] == [1, 1]
    assert book.take("GET", "/admin/x") is first
    assert book.take("POST", "/admin/authentication") is second
    assert book.take("POST", "/admin/authentication") is None and book.views() == []
    assert first is not None and second is not None
    assert (first.summary(), second.method) == ({"id": 1, "status": 503}, "POST")


def test_the_number_of_waiting_faults_is_capped() -> None:
    book = FaultBook()
    for _ in range(MAX_FAULTS):
        add(book, method="GET", path="/a", status=500)
    with pytest.raises(errors.ApiError) as full:
        add(book, method="GET", path="/a", status=500)
    assert full.value.status == 409
    assert book.remove(1) and not book.remove(1)
    add(book, method="GET", path="/a", status=500)


@given(st.text(max_size=600), st.none() | st.text(max_size=200))
def test_a_journal_entry_never_takes_more_json_than_it_counts(path: str, accept: Any) -> None:
    journal = Journal((18, 22))
    journal.add(time=1e12, method="OPTIONS", path=path, status=599, accept=accept,
                fault={"id": 10**9, "status": 599, "delay": 59.999999}, ms=1e9 / 7)  # fmt: skip
    assert len(json.dumps(journal.since(0)[0])) <= journal._bytes


def test_the_journal_keeps_the_newest_within_a_count_and_a_size() -> None:
    def entry(path: str) -> dict[str, Any]:
        return {"time": 1.0, "method": "GET", "path": path, "status": 200,
                "accept": "a" * 1000, "fault": {"id": 99999, "status": 503, "delay": 59.5},
                "ms": 1234567.891}  # fmt: skip

    by_count = Journal((18, 22), max_entries=3)
    for index in range(5):
        by_count.add(**entry(f"/{index}"))
    assert [e["path"] for e in by_count.since(0)] == ["/2", "/3", "/4"]
    assert (by_count.dropped, [e["seq"] for e in by_count.since(3)]) == (2, [4, 5])
    by_size = Journal((18, 22), max_bytes=1000)  # an entry is cut to under 1000 bytes: one fits
    for index in range(5):
        by_size.add(**entry("/" + "p" * 5000 + str(index)))
    kept = by_size.since(0)
    assert len(kept) == 1 and len(json.dumps(kept)) <= 1000
    assert len(kept[0]["path"]) == 512 and len(kept[0]["accept"]) == 128
    assert kept[0]["apiVersion"] is None and kept[0]["ms"] == 1234567.89
    by_size.clear()
    by_size.add(**entry("/after"))
    assert [e["seq"] for e in by_size.since(0)] == [6]  # sequence numbers go on


@given(st.floats(allow_nan=False) | st.integers(-(10**12), 10**12))
def test_the_clock_takes_any_time_in_range_and_nothing_else(when: float) -> None:
    clock = VirtualClock(lambda: 5.0)
    try:
        clock.set(when)
    except ClockError:
        assert not 0 <= when <= LATEST
        assert clock() == 5.0 and not clock.frozen
        return
    assert clock() == when and clock.frozen


def test_the_clock_freezes_on_advance_and_returns_to_real_time() -> None:
    real = FakeClock(100.0)
    clock = VirtualClock(real)
    clock.advance(10)
    real.advance(50)
    assert (clock(), clock.frozen) == (110.0, True)
    with pytest.raises(ClockError):
        clock.advance(-200)
    clock.set(None)
    assert (clock(), clock.frozen) == (150.0, False)


@given(st.binary(min_size=10, max_size=64), st.booleans(), st.booleans())
def test_a_base32_secret_is_taken_in_any_spelling(raw: bytes, lower: bool, padded: bool) -> None:
    text = base64.b32encode(raw).decode()
    spelled = text.lower() if lower else text
    spelled = spelled if padded else spelled.rstrip("=")
    normal = normalized_secret(spelled)
    assert normal == text.rstrip("=")
    assert base64.b32decode(normal + "=" * (-len(normal) % 8)) == raw


@given(st.text(max_size=120))
def test_any_other_secret_is_a_422_on_secret(text: str) -> None:
    try:
        normal = normalized_secret(text)
    except errors.ApiError as error:
        assert error.status == 422 and error.extra["errors"][0]["field"] == "secret"
        return
    assert 10 <= len(base64.b32decode(normal + "=" * (-len(normal) % 8))) <= 64


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (500, {"id": "unexpected error", "message": "Unexpected server side error."}),
        (413, {"id": "payload too large", "message": "The request body is larger than 99 bytes."}),
        (406, {"id": "not acceptable", "minSupportedVersion": 18, "maxSupportedVersion": 22,
               "message": "Invalid 'Accept' header. Current version: "
               "application/vnd.appgate.peer-v22+json, Received: (none)"}),
        (409, {"id": "conflict", "message": "Conflict."}),
        (599, {"id": "http error", "message": "The request failed."}),
    ],
)  # fmt: skip
def test_error_shapes(status: int, expected: dict[str, Any]) -> None:
    assert error_body(status, accept=None, versions=(18, 22), body_limit=99) == expected


def _scope(*headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": "http", "headers": list(headers)}


@given(
    st.lists(st.tuples(st.sampled_from([b"host", b"origin", b"content-type", b"content-length",
                                        b"transfer-encoding"]),
                       st.binary(max_size=40)), max_size=5),
    st.booleans(),
)  # fmt: skip
def test_any_headers_give_a_verdict_never_an_exception(
    headers: list[tuple[bytes, bytes]], remote: bool
) -> None:
    verdict = refusal(_scope(*headers), HostRule(allow_remote=remote, names=["mfa-server"]))
    assert verdict is None or verdict.status in (403, 415)


@given(st.integers(0, 2**24 - 1), st.none() | st.integers(0, 65535), st.booleans())
def test_loopback_addresses_pass_with_any_port_and_others_only_when_remote(
    low: int, port: int | None, remote: bool
) -> None:
    rule = HostRule(allow_remote=remote, names=[])
    suffix = "" if port is None else f":{port}"
    loopback = str(ipaddress.IPv4Address((127 << 24) + low))
    assert refusal(_scope((b"host", (loopback + suffix).encode())), rule) is None
    other = str(ipaddress.IPv4Address((10 << 24) + low))
    verdict = refusal(_scope((b"host", (other + suffix).encode())), rule)
    assert (verdict is None) == remote
    six = f"[::1]{suffix}".encode()
    assert refusal(_scope((b"host", six)), rule) is None


@given(st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,20}){0,3}", fullmatch=True))
def test_a_name_passes_only_when_listed(name: str) -> None:
    listed = HostRule(allow_remote=True, names=[name.upper()])
    unlisted = HostRule(allow_remote=True, names=["mfa-server"])
    host = (b"host", f"{name}:8443".encode())
    assert refusal(_scope(host), listed) is None
    verdict = refusal(_scope(host), unlisted)
    expected = name in ("localhost", "mfa-server")
    assert (verdict is None) == expected
    if not expected:
        assert verdict is not None and verdict.body()["id"] == "forbidden"


def test_the_start_checks(tmp_path: Path) -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.0.2.1", "no-such-host.invalid"]))
    config = base_config(tmp_path)
    assert (
        start_refusal(settings_from(config, tmp_path), "0.0.0.0", 4) is None
    )  # off: anything goes
    config["server"]["testControl"] = True
    on = settings_from(config, tmp_path)
    assert start_refusal(on, "127.0.0.1", 1) is None
    assert "needs workers: 1" in str(start_refusal(on, "127.0.0.1", 2))
    assert "not a loopback address" in str(start_refusal(on, "0.0.0.0", 1))
    config["server"]["testControl"] = {"enabled": True, "allowRemote": True}
    assert start_refusal(settings_from(config, tmp_path), "0.0.0.0", 1) is None


def test_the_app_itself_refuses_a_database_of_the_other_kind(tmp_path: Path) -> None:
    """The command line checks first; the lifespan checks again, for an app built in a
    process of its own (a worker, or a test serving it in-process)."""
    import asyncio

    from appgate_mfa_server.testcontrol.ownership import NotItsDatabase

    config = base_config(tmp_path)

    async def start(app: Any) -> None:
        async with app.router.lifespan_context(app):
            pass

    asyncio.run(start(create_app(settings_from(config, tmp_path))))  # plain: made it
    config["server"]["testControl"] = True
    with pytest.raises(NotItsDatabase, match="test control needs a database of its own"):
        asyncio.run(start(create_app(settings_from(config, tmp_path))))
    config["storage"]["url"] = "sqlite:///./own.db"
    asyncio.run(start(create_app(settings_from(config, tmp_path))))  # test control: made it
    config["server"]["testControl"] = False
    with pytest.raises(NotItsDatabase, match="was created by a server with test control"):
        asyncio.run(start(create_app(settings_from(config, tmp_path))))


def test_off_the_app_has_no_test_control_on_it_is_in_front(tmp_path: Path) -> None:
    config = base_config(tmp_path)
    off = create_app(settings_from(config, tmp_path))
    assert all(cast(object, m.cls) is not TestControlMiddleware for m in off.user_middleware)
    config["server"]["testControl"] = True
    on = create_app(settings_from(config, tmp_path))
    # in front of the app's own middleware; only the answer to a forced stop wraps it
    outer = [cast(object, m.cls) for m in on.user_middleware[:2]]
    assert outer == [AnswerWhenCancelled, TestControlMiddleware]


def test_in_process_the_clock_wraps_the_given_one_and_connection_faults_are_refused(
    tmp_path: Path,
) -> None:
    """Served by plain uvicorn (not mfa-server's protocol), there is no connection to break:
    such faults are refused when added, not silently ignored when due."""
    config = base_config(tmp_path)
    config["server"]["testControl"] = True
    clock = FakeClock(1_000.0)
    url, server, thread = serve_in_thread(create_app(settings_from(config, tmp_path), clock=clock))
    try:
        with httpx.Client(timeout=10) as client:
            assert client.get(url + "/_test/clock").json() == {"now": 1000.0, "frozen": False}
            clock.advance(5)
            assert client.get(url + "/_test/clock").json()["now"] == 1005.0
            reset = {"method": "GET", "path": "/a", "fault": "reset"}
            refused = client.post(url + "/_test/faults", json=reset)
            assert refused.status_code == 422
            assert refused.json()["errors"][0]["field"] == "fault"
            names = client.get(url + "/admin/identity-providers/names", headers=ACCEPT)
            assert names.status_code == 200
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_client_example_imports_nothing_from_the_server() -> None:
    """It shows what a client developer's test needs: the fixtures, nothing else of ours."""
    imports = imports_of(Path(__file__).parent / "test_client_example.py")
    ours = {name for name in imports if name.split(".")[0] in ("server", "tests", "mock_radius")}
    assert imports and not ours


def test_the_readme_example_is_the_one_the_suite_runs() -> None:
    root = Path(__file__).parent.parent
    section = (root / "README.md").read_text().split("### pytest plugin for client tests")[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    imports, _, code = example.partition("\n\nACCEPT")
    module = (root / "tests" / "test_client_example.py").read_text()
    assert all(line in module.splitlines() for line in imports.splitlines() if line)
    assert "ACCEPT" + code in module
