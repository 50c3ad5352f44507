# -*- test-case-name: tests.test_mock_control -*-
"""What the kernel does with the RADIUS sockets: the receive buffer it granted, and the
datagrams it dropped because that buffer was full (a burst the mock never saw).

The drops are the ``drops`` column of ``/proc/net/udp`` and ``/proc/net/udp6`` (Linux), on the
line of the socket's inode. Elsewhere they are unknown (``None``).
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

_TABLES = (Path("/proc/net/udp"), Path("/proc/net/udp6"))
# Linux's SO_RCVBUFFORCE (Python does not name it): with CAP_NET_ADMIN it may exceed
# net.core.rmem_max, which caps SO_RCVBUF
_RCVBUFFORCE = 33 if sys.platform.startswith("linux") else None


def set_receive_buffer(sock: socket.socket, size: int) -> int:
    """Ask for ``size`` octets of receive buffer; return what the kernel granted (Linux
    reports twice what it accounts for data, and caps SO_RCVBUF at net.core.rmem_max)."""
    try:
        if _RCVBUFFORCE is None:
            raise OSError("no SO_RCVBUFFORCE here")
        sock.setsockopt(socket.SOL_SOCKET, _RCVBUFFORCE, size)
    except OSError:  # not privileged (EPERM), or not Linux
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return receive_buffer(sock)


def receive_buffer(sock: socket.socket) -> int:
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))


def kernel_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped for this socket since it was opened, or None if unknown."""
    try:
        inode = str(os.fstat(sock.fileno()).st_ino)
    except OSError:
        return None
    for table in _TABLES:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) >= 13 and fields[9] == inode:
                return int(fields[-1])
    return None


def held(granted: int) -> int:
    """The octets of data a buffer the kernel reports as ``granted`` holds (Linux reports
    twice as much, for its own bookkeeping)."""
    return granted // 2 if sys.platform.startswith("linux") else granted


class SocketReport:
    """What ``/health`` says of the RADIUS sockets (name -> socket)."""

    def __init__(self, sockets: dict[str, socket.socket]) -> None:
        self.sockets = sockets

    def __call__(self) -> dict[str, dict[str, int | None]]:
        return {
            name: {
                "port": sock.getsockname()[1],
                "receiveBuffer": receive_buffer(sock),
                "kernelDrops": kernel_drops(sock),
            }
            for name, sock in self.sockets.items()
        }
