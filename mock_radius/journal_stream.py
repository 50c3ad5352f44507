# -*- test-case-name: tests.test_mock_control, tests.test_mock_page -*-
"""The journal, live: Server-Sent Events for ``GET /journal/stream``.

Each entry is an ``entry`` event (``id:`` its sequence number, so a browser's EventSource that
reconnects resumes after the last one it saw, ``Last-Event-ID``); a delayed reply, once it
leaves, is a ``sent`` event carrying the entry again with its ``sent`` time (a poller of
``GET /journal`` sees the same entry change in place). A comment line every ``keepalive``
seconds lets either side notice a dead connection.

Bounded: at most ``max_subscribers`` streams at once, and per stream at most ``max_buffered``
events waiting while its connection takes no more (Twisted pauses the stream, as a producer,
when the socket's buffer is full). A subscriber that falls further behind is cut off rather
than allowed to grow the mock's memory; its EventSource reconnects and resumes.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import LoopingCall
from twisted.web.server import Request
from zope.interface import implementer

from mock_radius.journal import ADDED, Entry, Journal
from mock_radius.journal_filter import JournalFilter

MAX_SUBSCRIBERS = 16
MAX_BUFFERED = 1000
KEEPALIVE = 15.0


@implementer(IPushProducer)
class Subscriber:
    """One open stream: written to at once, or queued while its connection is paused."""

    def __init__(self, hub: StreamHub, request: Request, wanted: JournalFilter) -> None:
        self.hub = hub
        self.request = request
        self.wanted = wanted
        self.paused = False
        self.queue: deque[bytes] = deque()
        self.closed = False

    def push(self, data: bytes) -> None:
        if self.closed:
            return
        if not self.paused:
            self.request.write(data)
            return
        if len(self.queue) >= self.hub.max_buffered:
            self.hub.cut_off(self)
            return
        self.queue.append(data)

    # IPushProducer: Twisted's word on the connection

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        while self.queue and not self.paused and not self.closed:
            self.request.write(self.queue.popleft())

    def stopProducing(self) -> None:
        self.hub.forget(self)


class StreamHub:
    def __init__(
        self,
        journal: Journal,
        reactor: Any,
        *,
        max_subscribers: int = MAX_SUBSCRIBERS,
        max_buffered: int = MAX_BUFFERED,
        keepalive: float = KEEPALIVE,
    ) -> None:
        self.journal = journal
        self.max_subscribers = max_subscribers
        self.max_buffered = max_buffered
        self.subscribers: list[Subscriber] = []
        self.cut = 0  # subscribers cut off for falling behind
        self._keepalive = LoopingCall(self._beat)
        self._keepalive.clock = reactor
        self._interval = keepalive  # the journal is listened to only while somebody streams

    @property
    def full(self) -> bool:
        return len(self.subscribers) >= self.max_subscribers

    def subscribe(self, request: Request, wanted: JournalFilter, since: int | None) -> None:
        """Start a stream on ``request`` (the caller checked ``full``); entries after
        ``since`` first, at most ``max_buffered`` of them, then everything as it happens."""
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        subscriber = Subscriber(self, request, wanted)
        if not self.subscribers:
            self.journal.listen(self._heard)
        self.subscribers.append(subscriber)
        request.registerProducer(subscriber, True)
        request.notifyFinish().addBoth(lambda _: self.forget(subscriber))
        request.write(b"retry: 1000\n\n")  # how soon an EventSource reconnects
        if since is not None:
            sent = 0
            while sent < self.max_buffered:
                batch = self.journal.after(since, 500)
                if not batch:
                    break
                for entry in batch:
                    since = entry.seq
                    if wanted.matches(entry) and sent < self.max_buffered:
                        subscriber.push(self._event(ADDED, entry))
                        sent += 1
        if not self._keepalive.running:
            self._keepalive.start(self._interval, now=False)

    def forget(self, subscriber: Subscriber) -> None:
        if subscriber.closed:
            return
        subscriber.closed = True
        subscriber.queue.clear()
        if subscriber in self.subscribers:
            self.subscribers.remove(subscriber)
        if not self.subscribers:
            self.journal.unlisten(self._heard)
            if self._keepalive.running:
                self._keepalive.stop()

    def cut_off(self, subscriber: Subscriber) -> None:
        """Too far behind: closed at once, its queue and the socket's buffer freed."""
        self.cut += 1
        self.forget(subscriber)
        channel = getattr(subscriber.request, "channel", None)
        transport: Any = getattr(channel, "transport", None)
        if transport is not None:
            transport.abortConnection()

    def stats(self) -> dict[str, int]:
        return {"subscribers": len(self.subscribers), "cutOff": self.cut}

    def _heard(self, kind: str, entry: Entry) -> None:
        data: bytes | None = None
        for subscriber in list(self.subscribers):
            if subscriber.wanted.matches(entry):
                if data is None:  # rendered once for all who want it
                    data = self._event(kind, entry)
                subscriber.push(data)

    def _event(self, kind: str, entry: Entry) -> bytes:
        data = json.dumps(self.journal.render(entry), default=str)
        head = f"event: {kind}\nid: {entry.seq}\n" if kind == ADDED else f"event: {kind}\n"
        return f"{head}data: {data}\n\n".encode()

    def _beat(self) -> None:
        for subscriber in list(self.subscribers):
            subscriber.push(b": keepalive\n\n")
