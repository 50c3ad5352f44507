"""One push per token: two joiners on one store stand for two server processes (the
multi-process test runs real processes on PostgreSQL; this one drives the edge cases)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from appgate_mfa_server import errors
from appgate_mfa_server.push_join import PushJoiner
from appgate_mfa_server.store import open_store
from appgate_mfa_server.store.base import Store

KEY = b"k" * 32


async def _store(tmp_path: Path) -> Store:
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    await store.open()
    return store


def test_a_caller_on_another_process_gets_the_owners_answer(tmp_path: Path) -> None:
    async def body() -> None:
        store = await _store(tmp_path)
        here, there = PushJoiner(store, KEY, lambda: 0.0), PushJoiner(store, KEY, lambda: 0.0)
        release = asyncio.Event()
        runs: list[str] = []

        async def push(name: str) -> dict[str, Any]:
            runs.append(name)
            await release.wait()
            return {"token": "new"}

        first = asyncio.create_task(here.run_once("t", 5, lambda: push("here")))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(there.run_once("t", 5, lambda: push("there")))
        local = asyncio.create_task(here.run_once("t", 5, lambda: push("here again")))
        await asyncio.sleep(0.1)
        release.set()
        assert await first == ({"token": "new"}, False)
        assert await second == ({"token": "new"}, True)
        assert await local == ({"token": "new"}, True)
        assert runs == ["here"]  # one push
        await store.close()

    asyncio.run(body())


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (errors.authentication_failed("Denied on the phone."), (401, "authentication failed")),
        (RuntimeError("bug"), (500, "unexpected error")),
    ],
)
def test_the_owners_failure_is_the_joiners_answer_too(
    tmp_path: Path, failure: Exception, expected: tuple[int, str]
) -> None:
    async def body() -> None:
        store = await _store(tmp_path)
        here, there = PushJoiner(store, KEY, lambda: 0.0), PushJoiner(store, KEY, lambda: 0.0)
        release = asyncio.Event()

        async def push() -> dict[str, Any]:
            await release.wait()
            raise failure

        async def never() -> dict[str, Any]:
            raise AssertionError("a joiner must not push again")

        first = asyncio.create_task(here.run_once("t", 5, push))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(there.run_once("t", 5, never))
        await asyncio.sleep(0.05)
        release.set()
        with pytest.raises(type(failure)):
            await first
        with pytest.raises(errors.ApiError) as joined:
            await second
        assert (joined.value.status, joined.value.id) == expected
        await store.close()

    asyncio.run(body())


def test_a_claim_whose_owner_died_is_taken_over(tmp_path: Path) -> None:
    async def body() -> None:
        store = await _store(tmp_path)
        now = [0.0]
        assert (await store.claim_push("t", "dead", 0.0, 1.0, -2.0)).owner  # it then died
        joiner = PushJoiner(store, KEY, lambda: now[0])
        waiting = asyncio.create_task(joiner.run_once("t", 5, _answer))
        await asyncio.sleep(0.1)
        assert not waiting.done()  # the claim still stands
        now[0] = 2.0  # past its deadline
        assert await asyncio.wait_for(waiting, 5) == ({"token": "mine"}, False)
        await store.close()

    asyncio.run(body())


async def _answer() -> dict[str, Any]:
    return {"token": "mine"}


def test_a_retry_after_an_answer_pushes_again(tmp_path: Path) -> None:
    """A denial is not final: an /otp after the answer was shared starts a new push."""

    async def body() -> None:
        store = await _store(tmp_path)
        now = [0.0]
        joiner = PushJoiner(store, KEY, lambda: now[0])
        runs: list[int] = []

        async def deny() -> dict[str, Any]:
            runs.append(1)
            raise errors.authentication_failed("Denied on the phone.")

        with pytest.raises(errors.ApiError):
            await joiner.run_once("t", 5, deny)
        now[0] = 10.0  # past the time an answer is shared
        with pytest.raises(errors.ApiError):
            await PushJoiner(store, KEY, lambda: now[0]).run_once("t", 5, deny)
        assert runs == [1, 1]
        await store.close()

    asyncio.run(body())


def test_the_answer_in_the_store_is_sealed(tmp_path: Path) -> None:
    async def body() -> None:
        store = await _store(tmp_path)
        joiner = PushJoiner(store, KEY, lambda: 0.0)
        await joiner.run_once("t", 5, _answer)
        claim = await store.claim_push("t", "other", 0.0, 1.0, -2.0)
        assert claim.result is not None and b"mine" not in claim.result
        await store.close()

    asyncio.run(body())


def test_an_answer_is_shared_for_two_seconds_then_a_retry_pushes_again(tmp_path: Path) -> None:
    """The window is what tells a joiner (same push) from a retry (new push): 2 s."""

    async def body() -> None:
        store = await _store(tmp_path)
        now = [100.0]
        runs: list[str] = []

        async def push(name: str) -> dict[str, Any]:
            runs.append(name)
            return {"token": name}

        def joiner() -> PushJoiner:  # a fresh one each time: as if on another process
            return PushJoiner(store, KEY, lambda: now[0])

        assert await joiner().run_once("t", 5, lambda: push("first")) == ({"token": "first"}, False)
        now[0] = 101.9
        assert await joiner().run_once("t", 5, lambda: push("late")) == ({"token": "first"}, True)
        now[0] = 102.1
        assert await joiner().run_once("t", 5, lambda: push("retry")) == ({"token": "retry"}, False)
        assert runs == ["first", "retry"]
        await store.close()

    asyncio.run(body())


def test_a_claim_stands_for_its_budget_and_five_seconds_more(tmp_path: Path) -> None:
    """A slow phone is not a dead owner: the claim is taken over only past budget + 5 s."""

    async def body() -> None:
        store = await _store(tmp_path)
        now = [100.0]
        release = asyncio.Event()

        async def slow() -> dict[str, Any]:
            await release.wait()
            return {"token": "slow"}

        owner = asyncio.create_task(PushJoiner(store, KEY, lambda: now[0]).run_once("t", 5, slow))
        await asyncio.sleep(0.05)
        now[0] = 109.9  # 100 + budget 5 + margin 5 = 110
        waiting = asyncio.create_task(
            PushJoiner(store, KEY, lambda: now[0]).run_once("t", 5, _answer)
        )
        await asyncio.sleep(0.2)
        assert not waiting.done()
        now[0] = 110.1
        assert await asyncio.wait_for(waiting, 5) == ({"token": "mine"}, False)
        release.set()
        assert await owner == ({"token": "slow"}, False)
        await store.close()

    asyncio.run(body())
