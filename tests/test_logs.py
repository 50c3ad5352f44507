"""The log lines: JSON objects, whole, written in chunks that end on a line and fit in one
atomic pipe write, and switched off where the configuration says."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from appgate_mfa_server import logs
from tests.conftest import ACCEPT, base_config, mfa_server


class _Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.writes.append(data)
        return len(data)

    def flush(self) -> None:
        pass


def test_lines_are_flushed_in_chunks_that_end_on_a_line() -> None:
    recorder = _Recorder()
    sink = logs.LineSink(recorder)  # type: ignore[arg-type]
    for index in range(300):
        sink.emit({"event": "x", "index": index, "pad": "p" * (index % 50)})
    sink.emit({"event": "huge", "pad": "h" * 10_000})  # a line longer than PIPE_BUF: alone
    sink.flush()
    assert all(w.endswith(b"\n") for w in recorder.writes)
    assert all(len(w) <= logs.PIPE_BUF or w.count(b"\n") == 1 for w in recorder.writes)
    lines = [json.loads(line) for w in recorder.writes for line in w.splitlines()]
    assert [line.get("index") for line in lines[:300]] == list(range(300))
    assert lines[-1]["event"] == "huge"


def test_audit_and_access_lines_are_json_with_their_fields() -> None:
    recorder = _Recorder()
    previous, logs.SINK._stream = logs.SINK._stream, recorder  # type: ignore[assignment]
    try:
        logs.audit("login_ok", username='quote " and \\ and é', provider="local", mfa=None)
        logs.access("POST", "/admin/x\u00e9", 200, 0.001234)
        logs.SINK.flush()
    finally:
        logs.SINK._stream = previous
    audit, access = (json.loads(line) for w in recorder.writes for line in w.splitlines())
    assert audit == {"ts": audit["ts"], "level": "info", "logger": "mfa.audit",
                     "event": "login_ok", "username": 'quote " and \\ and é',
                     "provider": "local", "mfa": None}  # fmt: skip
    assert access == {"ts": access["ts"], "level": "info", "logger": "mfa.access",
                      "event": "request", "method": "POST", "path": "/admin/x\u00e9",
                      "status": 200, "ms": 1.23}  # fmt: skip


def test_access_lines_can_be_turned_off(tmp_path: Path) -> None:
    config = base_config(tmp_path)
    config["server"]["accessLog"] = False
    path = tmp_path / "server.yaml"
    path.write_text(yaml.safe_dump(config))
    with mfa_server(["--config", str(path)]) as (url, process, _ready):
        assert httpx.get(url + "/admin/identity-providers/names", headers=ACCEPT).status_code == 200
        login = httpx.post(url + "/admin/authentication", headers=ACCEPT, json={
            "providerName": "local", "username": "alice", "password": "alice-pass",
            "deviceId": "4c07bc67-57ea-42dd-b702-c2d6c45419fc"})  # fmt: skip
        assert login.status_code == 200
    process.log.text()
    assert process.log.events("request") == []
    assert [e["username"] for e in process.log.events("login_ok")] == ["alice"]


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=12).filter(lambda k: k not in ("ts", "level", "logger")),
        st.one_of(st.text(max_size=40), st.integers(), st.none(), st.booleans()),
        max_size=5,
    )
)
def test_an_audit_line_holds_exactly_its_fields(fields: dict[str, object]) -> None:
    """Whatever the text (quotes, controls, surrogates aside), an audit line is one JSON object
    with the event and exactly the fields given."""
    fields = {k: v for k, v in fields.items() if k != "event"}
    recorder = _Recorder()
    previous, logs.SINK._stream = logs.SINK._stream, recorder  # type: ignore[assignment]
    try:
        logs.audit("e", **fields)
        logs.SINK.flush()
    finally:
        logs.SINK._stream = previous
    [line] = b"".join(recorder.writes).decode().splitlines()
    parsed = json.loads(line)
    assert parsed == {"ts": parsed["ts"], "level": "info", "logger": "mfa.audit", "event": "e",
                      **fields}  # fmt: skip
