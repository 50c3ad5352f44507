"""The real `mfa-server` process at the HTTP edge: the ready line, worker processes, HTTPS,
and the limits that keep hostile clients from holding it (header size, slow heads, too many
connections)."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ACCEPT, config_args, mfa_server, rss_kib

NAMES = "/admin/identity-providers/names"


def _names_ok(url: str, **options: Any) -> bool:
    response = httpx.get(url + NAMES, headers=ACCEPT, timeout=10, **options)
    return response.status_code == 200 and response.json()["data"][0]["name"] == "local"


def test_ready_line_says_how_it_serves(tmp_path: Path) -> None:
    with mfa_server(config_args(tmp_path), tmp_path) as (url, process, ready):
        assert ready["event"] == "ready"
        assert ready["scheme"] == "http" and ready["url"] == url
        assert ready["workers"] == 1 and ready["pids"] == [process.pid]
        assert ready["loop"] == "uvloop"  # uvicorn's loop factory, not asyncio.run's default
        assert _names_ok(url)
    assert process.returncode == 0


@pytest.mark.slow
def test_workers_share_the_port_restart_and_stop_together(tmp_path: Path) -> None:
    with mfa_server([*config_args(tmp_path), "--workers", "2"], tmp_path) as (url, sup, ready):
        assert ready["workers"] == 2 and len(set(ready["pids"])) == 2
        assert sup.pid not in ready["pids"]
        assert all(_names_ok(url) for _ in range(20))
        first, second = ready["pids"]
        os.kill(first, signal.SIGKILL)  # a worker dies: the supervisor starts another
        restarted = sup.log.wait_for("worker_restarted")
        assert restarted["pid"] == first
        assert all(_names_ok(url) for _ in range(20))
    assert sup.returncode == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in (first, second))


def test_tls_self_signed_for_the_demo(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MFA_SERVER_CONFIG"}
    with mfa_server(["--tls", "--no-mock-radius"], tmp_path, env) as (url, _process, ready):
        cert = tmp_path / "data" / "tls.crt"
        assert ready["scheme"] == "https" and url.startswith("https://")
        assert ready["tlsCertificate"] == str(cert)
        assert (tmp_path / "data" / "tls.key").stat().st_mode & 0o777 == 0o600
        context = ssl.create_default_context(cafile=str(cert))
        assert _names_ok(url, verify=context)
        with pytest.raises(httpx.TransportError):  # only TLS on that port
            httpx.get(url.replace("https://", "http://") + NAMES, headers=ACCEPT, timeout=5)


def test_a_huge_header_is_refused_and_costs_little_memory(tmp_path: Path) -> None:
    with mfa_server(config_args(tmp_path), tmp_path) as (url, process, ready):
        before = rss_kib(process.pid)
        with socket.create_connection(("127.0.0.1", ready["port"])) as sock:
            sock.sendall(b"GET " + NAMES.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Big: ")
            sent, answer = 0, b""
            chunk = b"a" * 65536
            try:
                while sent < 16 * 1024 * 1024:
                    sock.sendall(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused before the whole header was sent
            sock.settimeout(10)
            try:
                while data := sock.recv(65536):
                    answer += data
            except ConnectionResetError:
                pass
        assert sent < 16 * 1024 * 1024 or answer.startswith(b"HTTP/1.1 431")
        if answer:
            assert answer.startswith(b"HTTP/1.1 431")
            body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
            assert body == {"id": "request header fields too large",
                            "message": "The request head is larger than 32768 bytes."}  # fmt: skip
        assert rss_kib(process.pid) - before < 8 * 1024  # not the 16 MiB it was sent
        assert _names_ok(url)


@pytest.mark.slow
def test_slow_heads_are_cut_off_while_others_are_served(tmp_path: Path) -> None:
    # every connection comes from 127.0.0.1 here: no share per address
    args = config_args(tmp_path, requestTimeout="1s", maxConnectionsPerAddress=1000)
    with mfa_server(args, tmp_path) as (url, _process, ready):
        address = ("127.0.0.1", ready["port"])
        slow = [socket.create_connection(address) for _ in range(200)]
        silent = socket.create_connection(address)  # sends nothing at all
        for sock in slow:
            sock.sendall(b"GET " + NAMES.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        assert _names_ok(url)  # served while 201 connections dawdle
        answers = []
        for sock in [*slow, silent]:
            sock.settimeout(10)  # the server's bound is 1 s; 10 s only keeps a bug from hanging
            answers.append(sock.recv(4096))
            assert sock.recv(4096) == b""  # closed after the answer
            sock.close()
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), {a[:20] for a in answers}
        assert json.loads(answers[0].split(b"\r\n\r\n", 1)[1]) == {
            "id": "request timeout", "message": "The request head did not arrive in time."
        }  # fmt: skip
        # a client that keeps trickling bytes does not restart the clock
        trickled, answer = _trickle(address, every=0.2, give_up_after=50)
        assert answer.startswith(b"HTTP/1.1 408")
        assert trickled < 25  # cut off after about 5 bytes (1 s), long before 50 (10 s)
        assert _names_ok(url)


def test_bytes_that_are_not_http_get_a_json_400_and_the_connection_closed(
    tmp_path: Path,
) -> None:
    with mfa_server(config_args(tmp_path), tmp_path) as (url, _process, ready):
        with socket.create_connection(("127.0.0.1", ready["port"])) as sock:
            sock.sendall(b"\x16\x03\x01 not HTTP at all\r\n\r\n")
            sock.settimeout(10)
            answer = b""
            while data := sock.recv(4096):  # until the server closes
                answer += data
        head, body = answer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 400 ") and b"connection: close" in head
        assert json.loads(body) == {"id": "bad request",
                                    "message": "The request is not valid HTTP/1.1."}  # fmt: skip
        assert _names_ok(url)


def _trickle(address: tuple[str, int], every: float, give_up_after: int) -> tuple[int, bytes]:
    """Send a request head one byte at a time; (bytes sent, what came back)."""
    with socket.create_connection(address) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nX-Slow: ")
        sock.settimeout(every)
        for sent in range(give_up_after):
            try:
                answer = sock.recv(4096)
            except TimeoutError:
                sock.sendall(b"a")
                continue
            return sent, answer
    return give_up_after, b""


@pytest.mark.slow
def test_connections_over_the_cap_are_closed_and_logged_once(tmp_path: Path) -> None:
    args = config_args(tmp_path, maxConnections=20, maxConnectionsPerAddress=20)
    with mfa_server(args, tmp_path) as (url, process, ready):
        held = [socket.create_connection(("127.0.0.1", ready["port"])) for _ in range(20)]
        extra = [socket.create_connection(("127.0.0.1", ready["port"])) for _ in range(100)]
        for sock in extra:
            assert _closed_without_answer(sock)
            sock.close()
        for sock in held:
            sock.close()
        assert _names_ok(url)  # once the hogs are gone, the server serves again
    process.log.text()  # wait for all of it
    refused = process.log.events("connections_refused")
    assert 1 <= len(refused) <= 2  # the first refusal, then at most one count for the rest
    assert refused[0]["count"] == 1 and refused[0]["maxConnections"] == 20


def _closed_without_answer(sock: socket.socket) -> bool:
    sock.settimeout(10)
    try:
        return sock.recv(10) == b""
    except ConnectionResetError:
        return True


@pytest.mark.slow
def test_an_answer_before_the_body_closes_the_connection(tmp_path: Path) -> None:
    """A request answered before its body was read (a 406 here) must not leave the rest of
    that body free to trickle in on a kept-alive connection, outside every deadline."""
    args = config_args(tmp_path, requestTimeout="1s")
    with mfa_server(args, tmp_path) as (url, _process, ready):
        with socket.create_connection(("127.0.0.1", ready["port"])) as sock:
            sock.sendall(b"POST /admin/authentication HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: 100000000\r\n\r\n{")  # fmt: skip
            sock.settimeout(10)  # the server closes at once; 10 s only keeps a bug from hanging
            answer = b""
            while chunk := sock.recv(65536):  # until the server closes it: not kept alive
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 406")
            assert b'"id":"not acceptable"' in answer
        assert _names_ok(url)
