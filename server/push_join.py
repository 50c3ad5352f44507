"""One push per token, however many times and on however many processes ``/otp`` is retried.

A push prompts a phone: a client that retries ``/otp`` while the first call still waits must
not cause a second prompt, and both calls must get the same answer. Within a process the retry
awaits the first call's future. Across processes the store holds a claim per token: the first
caller owns the push and writes its answer there, sealed (it holds the new token), and a caller
on another process polls for that answer. An owner that dies leaves a claim whose deadline
passes; the next caller then takes the push over. An answer is shared for ``ANSWER_SHARED_FOR``
seconds after it came: a later ``/otp`` (a retry after a denial, say) starts a new push.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from appgate_mfa_server import errors
from appgate_mfa_server.store.base import Store

POLL_SECONDS = 0.05
DEADLINE_MARGIN = 5.0  # beyond the verification budget, before a claim counts as abandoned
ANSWER_SHARED_FOR = 2.0  # joiners poll every 50 ms: they read an answer long before this
_NONCE = 12

Work = Callable[[], Awaitable[dict[str, Any]]]


class PushJoiner:
    def __init__(self, store: Store, key: bytes, clock: Callable[[], float]) -> None:
        self._store = store
        self._aead = AESGCM(key)
        self._clock = clock
        self._local: dict[str, asyncio.Future[tuple[dict[str, Any], bool]]] = {}

    async def run_once(
        self, token_hash: str, budget: float, work: Work
    ) -> tuple[dict[str, Any], bool]:
        """The answer of the one verification for ``token_hash``, and whether this call
        joined one that another call started (here or on another process)."""
        pending = self._local.get(token_hash)
        joined_here = pending is not None
        if pending is None:
            pending = asyncio.ensure_future(self._claim_and_run(token_hash, budget, work))
            self._local[token_hash] = pending
            pending.add_done_callback(lambda _: self._local.pop(token_hash, None))
        body, joined_elsewhere = await asyncio.shield(pending)
        return body, joined_here or joined_elsewhere

    async def _claim_and_run(
        self, token_hash: str, budget: float, work: Work
    ) -> tuple[dict[str, Any], bool]:
        me = secrets.token_hex(8)
        while True:
            now = self._clock()  # a deadline from now: one taken over gets a whole budget
            deadline = now + budget + DEADLINE_MARGIN
            claim = await self._store.claim_push(
                token_hash, me, now, deadline, now - ANSWER_SHARED_FOR
            )
            if claim.owner:
                return await self._run(token_hash, me, work), False
            if claim.result is not None:
                return self._open(claim.result), True
            await asyncio.sleep(POLL_SECONDS)  # another process is waiting for the phone

    async def _run(self, token_hash: str, me: str, work: Work) -> dict[str, Any]:
        """Run the verification; its answer, error or not, is what joiners get too (an
        unexpected failure as the 500 it becomes, so no joiner pushes again)."""
        try:
            body = await work()
        except Exception as exc:
            error = exc if isinstance(exc, errors.ApiError) else errors.unexpected_error()
            fields = dataclasses.asdict(error)  # status, id, message, extra: ApiError(**fields)
            await self._store.finish_push(
                token_hash, me, self._seal({"error": fields}), self._clock()
            )
            raise
        await self._store.finish_push(token_hash, me, self._seal({"body": body}), self._clock())
        return body

    def _seal(self, answer: dict[str, Any]) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._aead.encrypt(nonce, json.dumps(answer).encode(), None)

    def _open(self, sealed: bytes) -> dict[str, Any]:
        try:
            answer = json.loads(self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], None))
        except (InvalidTag, ValueError):
            raise errors.unexpected_error() from None
        if "error" in answer:
            raise errors.ApiError(**answer["error"])
        body: dict[str, Any] = answer["body"]
        return body
