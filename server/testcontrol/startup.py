# -*- test-case-name: tests.test_test_control_units -*-
"""When a server with test control must not start: the clock and faults live in one process,
and the routes let anyone log in as anyone, so they stay on loopback unless a test setup says
otherwise (``allowRemote``)."""

from __future__ import annotations

import ipaddress
import socket

from appgate_mfa_server.config import TEST_CONTROL_WORKERS, Settings

WARNING = (
    "test control is on: /_test/ can set the clock, seeds and answers of this server; "
    "for tests only"
)


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` stands for is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False  # the bind will say what is wrong with the name
    addresses = {str(info[4][0]).split("%", 1)[0] for info in found}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def refusal(settings: Settings, host: str, workers: int) -> str | None:
    """Why the server must not start as configured, or None."""
    control = settings.server.test_control
    if not control.enabled:
        return None
    if workers > 1:
        return TEST_CONTROL_WORKERS
    if not control.allow_remote and not is_loopback(host):
        return (
            f"test control is on and {host} is not a loopback address: anyone who reaches "
            "/_test/ can log in as anyone. Listen on 127.0.0.1, or set "
            "server.testControl.allowRemote: true for a test network."
        )
    return None
