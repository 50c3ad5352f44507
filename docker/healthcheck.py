"""The image's HEALTHCHECK, for both programs: it asks the container's main process what that
process serves, on the port its own command line names.

- ``mfa-server``: ``GET /admin/identity-providers/names`` (with the API's Accept header) on
  ``--port`` (8443, the image's CMD, when not given), over HTTP or else HTTPS (not verified:
  this is the server checking itself on loopback).
- ``mock-radius serve`` (or ``mock-radius`` alone): ``GET /health`` of its control API, on
  ``--control-port``; that port must be given (its default, 0, is a free port nobody knows).
- any other command (``mock-radius validate`` and the like) runs briefly: nothing to check.

Usage: ``python healthcheck.py [PID]`` (default 1, the container's main process). Exit status
0 when healthy, 1 otherwise, with the reason on stdout (``docker inspect`` shows it).
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path

ACCEPT = "application/vnd.appgate.peer-v22+json"
SERVER_PORT = "8443"
TIMEOUT_SECONDS = 2.0


def command_line(pid: str) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def option(argv: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE``, the last one given (as argparse)."""
    found = None
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            found = argv[index + 1]
        elif arg.startswith(name + "="):
            found = arg.split("=", 1)[1]
    return found


class Unchecked(Exception):
    """Nothing to ask; ``healthy`` says whether that is fine (a short command) or not."""

    def __init__(self, reason: str, *, healthy: bool) -> None:
        super().__init__(reason)
        self.healthy = healthy


def target(argv: list[str]) -> tuple[str, list[str]]:
    """What to ask: the program, and the URLs to try in order."""
    starts = [i for i, arg in enumerate(argv) if os.path.basename(arg) in PROGRAMS]
    if not starts:
        raise Unchecked(f"not mfa-server or mock-radius: {' '.join(argv)[:200]}", healthy=False)
    program = os.path.basename(argv[starts[0]])
    return program, PROGRAMS[program](argv[starts[0] + 1 :])


def _server(args: list[str]) -> list[str]:
    port = option(args, "--port") or SERVER_PORT
    path = "/admin/identity-providers/names"
    return [f"http://127.0.0.1:{port}{path}", f"https://127.0.0.1:{port}{path}"]


def _mock(args: list[str]) -> list[str]:
    command = next((arg for arg in args if not arg.startswith("-")), "serve")
    if command != "serve":
        raise Unchecked(f"mock-radius {command} runs briefly: nothing to check", healthy=True)
    port = option(args, "--control-port")
    if port in (None, "0"):
        reason = "mock-radius serve without --control-port: its control API is on a free port"
        raise Unchecked(reason, healthy=False)
    return [f"http://127.0.0.1:{port}/health"]


PROGRAMS = {"mfa-server": _server, "mock-radius": _mock}


def healthy(what: str, urls: list[str]) -> tuple[bool, str]:
    problems = []
    for url in urls:
        request = urllib.request.Request(url, headers={"Accept": ACCEPT})  # noqa: S310 - ours
        context = ssl._create_unverified_context() if url.startswith("https") else None  # noqa: S323
        try:
            answer = urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS, context=context)  # noqa: S310
            with answer:
                body = json.loads(answer.read())
        except (OSError, ValueError) as exc:  # refused, reset, TLS, timeout, not JSON
            problems.append(f"{url}: {exc}")
            continue
        if what == "mock-radius" and body.get("status") != "ok":
            return False, f"{url}: {body}"
        return True, f"{what} answers at {url}"
    return False, "; ".join(problems)


def main(argv: list[str]) -> int:
    pid = argv[1] if len(argv) > 1 else "1"
    try:
        ok, message = healthy(*target(command_line(pid)))
    except Unchecked as unchecked:
        ok, message = unchecked.healthy, str(unchecked)
    except OSError as exc:  # no such process
        ok, message = False, f"cannot read the command line of process {pid}: {exc.strerror}"
    print(message)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
