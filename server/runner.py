# -*- test-case-name: tests.test_serving, tests.test_multiprocess, tests.test_stopping -*-
"""Serving: listening sockets, one process or a supervisor of worker processes, one ready line.

The sockets are bound before any worker starts, so a client that connects early waits in the
backlog instead of being refused, and ``--port 0`` is known up front. Each worker runs uvicorn
through its public API (``Server.run`` with the socket, uvloop where installed) and tells when
its application has started (the lifespan calls ``on_ready``); the ready line is printed once
every worker has. SIGTERM and SIGINT stop everything gracefully with exit status 0.

With several workers each has its own socket bound with SO_REUSEPORT, so the kernel spreads
connections across them; the supervisor restarts a worker that dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import uvicorn

from appgate_mfa_server import logs
from appgate_mfa_server.http_guard import ConnectionExtension, ConnectionLimits, guarded_protocol
from appgate_mfa_server.tls import TlsFiles, server_context
from mfa_shared.ready_line import ready_line

log = logging.getLogger("mfa.server")

READY_TIMEOUT_SECONDS = 60.0
GRACEFUL_STOP_SECONDS = 5  # then requests still running are cancelled and idle TLS clients cut
STOP_TIMEOUT_SECONDS = 15.0
RESTART_LIMIT = 5  # workers that die within RESTART_WINDOW of starting, before giving up
RESTART_WINDOW_SECONDS = 10.0
# Descriptors a worker needs besides its connections: listening sockets, the database, the
# worker pipes, log and data files.
SPARE_FILES = 64

OnReady = Callable[[], None]
AppFactory = Callable[[OnReady], Any]  # builds the ASGI app, given what to call once started


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    workers: int = 1
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    keep_alive: float = 5.0
    backlog: int = 2048
    tls: TlsFiles | None = None
    ready_fields: dict[str, object] = field(default_factory=dict)
    # a handle on its connection in each request's scope (test control's, for its faults)
    extension: ConnectionExtension[Any] | None = None


def loop_name() -> str:
    """``uvloop`` or ``asyncio``: which event loop this process really runs."""
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def bind(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )[0]
    # proto IPPROTO_TCP: asyncio only sets TCP_NODELAY on sockets that say so, and without it
    # every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def listeners(options: ServeOptions) -> list[socket.socket]:
    """One listening socket per worker (sharing one port), bound before any worker starts."""
    reuse = options.workers > 1
    first = bind(options.host, options.port, reuse_port=reuse)
    sockets = [first]
    port = first.getsockname()[1]
    try:
        sockets += [bind(options.host, port, reuse_port=True) for _ in range(options.workers - 1)]
        for sock in sockets:
            sock.listen(options.backlog)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _ready_line(options: ServeOptions, sock: socket.socket, workers: list[dict[str, Any]]) -> str:
    host, port = sock.getsockname()[:2]
    scheme = "https" if options.tls else "http"
    shown = f"[{host}]" if ":" in host else host
    return ready_line(
        host=host,
        port=port,
        scheme=scheme,
        url=f"{scheme}://{shown}:{port}",
        workers=len(workers),
        loop=workers[0]["loop"],
        pids=[w["pid"] for w in workers],
        **options.ready_fields,
    )


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files to the hard limit, where the system allows (logged),
    so that connections, not the default 1,024 descriptors, are what runs out first. Returns
    the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):  # an unlimited hard limit the kernel will not grant
        return soft
    log.info(
        "open files limit raised",
        extra={"fields": {"event": "open_files_limit_raised", "from": soft, "to": hard}},
    )
    return hard


def fit_to_open_files(limits: ConnectionLimits, open_files: int) -> ConnectionLimits:
    """``limits`` with no more connections than the open-file limit lets a worker hold: past
    it, accepting fails and the event loop stops accepting anyone for a while."""
    room = max(1, open_files - SPARE_FILES)
    if limits.max_connections <= room:
        return limits
    fields = {"event": "max_connections_lowered", "maxConnections": limits.max_connections,
              "to": room, "openFilesLimit": open_files}  # fmt: skip
    log.warning("maxConnections lowered to fit the open files limit", extra={"fields": fields})
    per_address = min(limits.max_connections_per_address, room)
    return replace(limits, max_connections=room, max_connections_per_address=per_address)


def _uvicorn_config(app: Any, options: ServeOptions) -> uvicorn.Config:
    protocol = guarded_protocol(
        options.limits,
        tls=None if options.tls is None else server_context(options.tls),
        extension=options.extension,
    )
    return uvicorn.Config(
        app,
        loop="auto",  # uvloop where installed
        http=protocol,  # which runs the TLS handshakes too, so that it counts them
        ws="none",  # no route speaks WebSocket; an upgrade would leave the guarded protocol
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,  # no X-Forwarded-For: nothing here reads the client's address
        timeout_keep_alive=options.keep_alive,  # type: ignore[arg-type]
        backlog=options.backlog,
        timeout_graceful_shutdown=GRACEFUL_STOP_SECONDS,
    )


def _run_uvicorn(make_app: AppFactory, options: ServeOptions, sock: socket.socket,
                 on_ready: OnReady) -> int:  # fmt: skip
    server = uvicorn.Server(_uvicorn_config(make_app(on_ready), options))
    # uvicorn re-raises a signal that stopped it once it has shut down; a handler of ours that
    # does nothing turns that into a normal return, so a graceful stop exits with status 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    try:
        server.run(sockets=[sock])
    except SystemExit as exc:  # uvicorn's way of saying the application did not start
        return int(exc.code) if isinstance(exc.code, int) else 1
    return 0 if server.started else 1


def serve(make_app: AppFactory, options: ServeOptions) -> int:
    limits = fit_to_open_files(options.limits, raise_open_files_limit())
    options = replace(options, limits=limits)
    sockets = listeners(options)
    if options.workers == 1:
        sock = sockets[0]

        def announce() -> None:
            print(_ready_line(options, sock, [{"loop": loop_name(), "pid": os.getpid()}]),
                  flush=True)  # fmt: skip

        try:
            return _run_uvicorn(make_app, options, sock, announce)
        finally:
            sock.close()
    return _Supervisor(make_app, options, sockets).run()


class Start(Enum):
    """How the wait for the workers to be ready ended."""

    READY = "ready"
    STOPPED = "stopped"  # SIGTERM or SIGINT came first
    FAILED = "failed"  # a worker ended, or the time ran out


@dataclass
class _Worker:
    index: int
    pid: int
    pipe: int
    started: float
    ready: dict[str, Any] | None = None


class _Supervisor:
    """Forks one worker per socket, waits until all are ready, restarts the ones that die."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)

    def __init__(
        self, make_app: AppFactory, options: ServeOptions, sockets: list[socket.socket]
    ) -> None:
        self.make_app = make_app
        self.options = options
        self.sockets = sockets
        self.workers: dict[int, _Worker] = {}  # by pid
        self.early_deaths: list[float] = []

    def _fork(self, index: int) -> _Worker:
        read_end, write_end = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        logs.SINK.flush()  # else the worker would write the parent's pending lines again
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, self.SIGNALS)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.close(read_end)
                for other, sock in enumerate(self.sockets):
                    if other != index:
                        sock.close()

                def announce() -> None:
                    message = {"loop": loop_name(), "pid": os.getpid()}
                    os.write(write_end, json.dumps(message).encode() + b"\n")

                code = _run_uvicorn(self.make_app, self.options, self.sockets[index], announce)
            finally:
                logs.SINK.flush()
                os._exit(code)
        os.close(write_end)
        worker = _Worker(index, pid, read_end, time.monotonic())
        self.workers[pid] = worker
        return worker

    def run(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)
        try:
            for index in range(len(self.sockets)):
                self._fork(index)
            started = self._wait_until_ready()
            if started is not Start.READY:
                failed = self._stop_all()
                return failed if started is Start.STOPPED else 1  # asked to stop: a clean exit
            ready = sorted((w for w in self.workers.values()), key=lambda w: w.index)
            line = _ready_line(self.options, self.sockets[0], [w.ready or {} for w in ready])
            print(line, flush=True)
            return self._supervise()
        finally:
            for sock in self.sockets:
                sock.close()

    def _wait_until_ready(self) -> Start:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        buffers: dict[int, bytes] = {}
        while any(w.ready is None for w in self.workers.values()):
            pending = {w.pipe: w for w in self.workers.values() if w.ready is None}
            left = deadline - time.monotonic()
            if left <= 0:
                return Start.FAILED
            readable, _, _ = select.select(list(pending), [], [], min(left, 0.5))
            for fd in readable:
                chunk = os.read(fd, 4096)
                if not chunk:  # the worker ended before it was ready
                    return Start.FAILED
                buffers[fd] = buffers.get(fd, b"") + chunk
                if b"\n" in buffers[fd]:
                    pending[fd].ready = json.loads(buffers[fd].split(b"\n", 1)[0])
            if signal.sigtimedwait([signal.SIGTERM, signal.SIGINT], 0) is not None:
                return Start.STOPPED
        return Start.READY

    def _supervise(self) -> int:
        while True:
            info = signal.sigtimedwait(list(self.SIGNALS), 1.0)
            if info is None:
                continue
            if info.si_signo in (signal.SIGTERM, signal.SIGINT):
                return self._stop_all()
            self._reap_and_restart()
            if len(self.early_deaths) >= RESTART_LIMIT:
                log.error(
                    "workers keep dying right after they start; stopping",
                    extra={"fields": {"event": "workers_failing"}},
                )
                self._stop_all()
                return 1

    def _reap_and_restart(self) -> None:
        for pid, worker in list(self.workers.items()):
            finished, status = os.waitpid(pid, os.WNOHANG)
            if not finished:
                continue
            del self.workers[pid]
            os.close(worker.pipe)
            now = time.monotonic()
            if now - worker.started < RESTART_WINDOW_SECONDS:
                self.early_deaths.append(now)
            self.early_deaths = [t for t in self.early_deaths if now - t < RESTART_WINDOW_SECONDS]
            log.warning(
                "worker restarted",
                extra={"fields": {"event": "worker_restarted", "pid": pid,
                                  "exitStatus": os.waitstatus_to_exitcode(status)}},
            )  # fmt: skip
            self._fork(worker.index)

    def _stop_all(self) -> int:
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        failed = False
        for pid, worker in list(self.workers.items()):
            while True:
                finished, status = os.waitpid(pid, os.WNOHANG)
                if finished:
                    failed |= os.waitstatus_to_exitcode(status) not in (0, -signal.SIGTERM)
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    failed = True
                    break
                time.sleep(0.05)
            os.close(worker.pipe)
        self.workers.clear()
        return 1 if failed else 0
