"""A request still running when the server is made to stop gets the API's JSON error shape,
never uvicorn's plain-text 500: on a second Ctrl-C (at once) and when SIGTERM's graceful stop
runs out of time. The request is held in flight by a test-control delay fault, and the test
waits on the server's log lines, not on the clock."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import ACCEPT, ServerProcess, mfa_server

NAMES = "/admin/identity-providers/names"


def _held_request(url: str, process: ServerProcess) -> tuple[threading.Thread, list[object]]:
    """GET NAMES, held 60 s by a fault, in a thread; returns once the server is holding it."""
    added = httpx.post(url + "/_test/faults", json={"method": "GET", "path": NAMES, "delay": 60})
    assert added.status_code == 201, added.text
    answers: list[object] = []

    def call() -> None:
        try:
            answers.append(httpx.get(url + NAMES, headers=ACCEPT, timeout=60))
        except httpx.HTTPError as exc:
            answers.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    process.log.wait_for("test_fault")  # logged as the fault starts holding the request
    return thread, answers


def _assert_json_unavailable(answers: list[object]) -> None:
    (response,) = answers
    assert isinstance(response, httpx.Response), response
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "id": "unavailable",
        "message": "The server is starting or stopping.",
    }


@pytest.mark.slow
def test_a_second_ctrl_c_answers_the_request_in_flight_in_json(tmp_path: Path) -> None:
    args = ["--test-control", "--no-mock-radius", "--data-dir", str(tmp_path)]
    with mfa_server(args, cwd=tmp_path) as (url, process, _ready):
        thread, answers = _held_request(url, process)
        process.send_signal(signal.SIGINT)
        process.log.wait_for_message("Waiting for connections to close. (CTRL+C to force quit)")
        process.send_signal(signal.SIGINT)  # the second: uvicorn stops waiting for anyone
        thread.join(30)
        assert process.wait(15) == 0
    _assert_json_unavailable(answers)
    assert "Internal Server Error" not in process.log.text()


@pytest.mark.slow
def test_a_request_longer_than_the_graceful_stop_is_answered_in_json(tmp_path: Path) -> None:
    args = ["--test-control", "--no-mock-radius", "--data-dir", str(tmp_path)]
    with mfa_server(args, cwd=tmp_path) as (url, process, _ready):
        thread, answers = _held_request(url, process)
        process.send_signal(signal.SIGTERM)  # the 60 s hold outlasts the graceful 5 s
        thread.join(30)
        assert process.wait(15) == 0
    _assert_json_unavailable(answers)
