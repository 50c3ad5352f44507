"""Lockout after repeated wrong codes: same answer while locked, a growing but bounded cooldown."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from appgate_mfa_server.lockout import (
    Admission,
    Locked,
    LockoutGuard,
    LockoutPolicy,
    StillInFlight,
    Verdict,
    admit,
    is_locked,
    login_key,
    settle,
)
from appgate_mfa_server.store import Store, open_store
from appgate_mfa_server.store.base import LockoutRecord
from tests.conftest import LiveServer, radius_provider, totp_now

LOCKED = {
    "id": "authentication failed",
    "message": "Authentication failed.",
    "reason": "Too many failed attempts. Try again later.",
}


def _enrolled(live: LiveServer) -> tuple[str, str]:
    token = live.login("alice", "alice-pass")["token"]
    return token, live.initialize(token).json()["secret"]


def test_five_wrong_codes_lock_the_user(live: LiveServer) -> None:
    token, secret = _enrolled(live)
    for attempt in range(4):
        response = live.otp(token, "000000")
        assert response.status_code == 401
        assert response.json()["reason"] == "Invalid OTP.", attempt
    fifth = live.otp(token, "000000")
    assert fifth.json() == LOCKED
    # right or wrong, the answer is the same while locked, from any session
    right = live.otp(token, totp_now(secret, live.clock.now))
    wrong = live.otp(live.login("alice", "alice-pass")["token"], "999999")
    assert right.status_code == wrong.status_code == 401
    assert right.json() == wrong.json() == LOCKED
    # initialize is no guess (for TOTP): a locked user still sees the unfinished enrolment
    assert live.initialize(token).json()["secret"] == secret
    # the cooldown ends (60 s for the first lockout)
    live.clock.advance(59)
    assert live.otp(token, totp_now(secret, live.clock.now)).json() == LOCKED
    live.clock.advance(1)
    assert live.otp(token, totp_now(secret, live.clock.now)).status_code == 200


def test_cooldown_grows_with_repeated_lockouts(live: LiveServer) -> None:
    token, secret = _enrolled(live)
    for _ in range(5):
        live.otp(token, "000000")
    live.clock.advance(60)
    for _ in range(5):
        live.otp(token, "000000")
    # second lockout in a row: 120 s
    live.clock.advance(119)
    assert live.otp(token, totp_now(secret, live.clock.now)).json() == LOCKED
    live.clock.advance(1)
    assert live.otp(token, totp_now(secret, live.clock.now)).status_code == 200


def test_other_users_are_not_affected(live: LiveServer) -> None:
    token, _ = _enrolled(live)
    for _ in range(5):
        live.otp(token, "000000")
    dave = live.login("dave", "dave-pass")["token"]
    secret = live.initialize(dave).json()["secret"]
    assert live.otp(dave, totp_now(secret, live.clock.now)).status_code == 200


def test_success_resets_the_counter(live: LiveServer) -> None:
    token, secret = _enrolled(live)
    for _ in range(4):
        live.otp(token, "000000")
    assert live.otp(token, totp_now(secret, live.clock.now)).status_code == 200
    live.clock.advance(30)
    token = live.login("alice", "alice-pass")["token"]
    for _ in range(4):
        assert live.otp(token, "000000").json()["reason"] == "Invalid OTP."
    assert live.otp(token, totp_now(secret, live.clock.now)).status_code == 200


policies = st.builds(
    LockoutPolicy,
    max_failed_attempts=st.integers(1, 20),
    cooldown=st.floats(1, 600),
    max_cooldown=st.floats(600, 86400),
    lease=st.floats(1, 60),
)


@given(policies, st.lists(st.floats(0, 10_000), max_size=60))
def test_a_lockout_always_ends_within_max_cooldown(
    policy: LockoutPolicy, gaps: list[float]
) -> None:
    record = LockoutRecord("CN=x,OU=y")
    now = 0.0
    for n, gap in enumerate(gaps):
        now += gap
        record, admission = admit(record, now, policy, f"a{n}")
        if admission is Admission.ADMITTED:  # a wrong guess
            record, _ = settle(record, now, policy, f"a{n}", Verdict.WRONG)
        assert record.locked_until <= now + policy.max_cooldown
        assert not is_locked(record, now + policy.max_cooldown)
        assert 0 <= record.failures <= policy.max_failed_attempts


# Concurrent guesses of one account, as a script: an attempt arrives (with the verdict it will
# get), an admitted attempt settles, an attempt that was told to wait tries again, or time
# moves on (which may end a lock, or the lease of an attempt whose process died).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("arrive"), st.sampled_from(list(Verdict))),
        st.tuples(st.just("settle"), st.integers(0, 1000)),
        st.tuples(st.just("retry"), st.integers(0, 1000)),
        st.tuples(st.just("tick"), st.floats(0, 400)),
    ),
    max_size=120,
)


@given(policies, steps)
def test_concurrent_guesses_keep_the_budget_and_never_refuse_a_free_account(
    policy: LockoutPolicy, script: list[tuple[str, object]]
) -> None:
    """Between two resets (a success, or a lock that ended), at most max_failed_attempts wrong
    guesses are evaluated, whatever the interleaving; an attempt is refused only while the
    account is locked, and told to wait only while the budget is spent or in flight."""
    record = LockoutRecord("k")
    now = 0.0
    in_flight: dict[str, Verdict] = {}
    waiting: dict[str, Verdict] = {}
    wrong_in_window = 0
    lease_of: dict[str, float] = {}
    counter = 0

    def try_admit(attempt: str, verdict: Verdict) -> None:
        nonlocal record, wrong_in_window
        was_locked_until = record.locked_until
        if was_locked_until and now >= was_locked_until:
            wrong_in_window = 0  # the lock ended: a new window
        record, admission = admit(record, now, policy, attempt)
        if admission is Admission.LOCKED:
            assert is_locked(record, now)  # refused only while locked
            waiting.pop(attempt, None)
        elif admission is Admission.WAIT:
            live = [p for p in record.pending if p.until > now]
            assert record.failures + len(live) >= policy.max_failed_attempts and live
            waiting[attempt] = verdict
        else:
            waiting.pop(attempt, None)
            in_flight[attempt] = verdict
            lease_of[attempt] = now + policy.lease

    for action, value in script:
        if action == "arrive":
            assert isinstance(value, Verdict)
            counter += 1
            try_admit(f"a{counter}", value)
        elif action == "retry" and waiting:
            attempt = sorted(waiting)[int(str(value)) % len(waiting)]
            try_admit(attempt, waiting[attempt])
        elif action == "settle" and in_flight:
            attempt = sorted(in_flight)[int(str(value)) % len(in_flight)]
            verdict = in_flight.pop(attempt)
            if lease_of[attempt] <= now:
                continue  # its lease ran out: its process died, nothing was settled
            record, _ = settle(record, now, policy, attempt, verdict)
            if verdict is Verdict.RIGHT:
                wrong_in_window = 0
            elif verdict is Verdict.WRONG:
                wrong_in_window += 1
                assert wrong_in_window <= policy.max_failed_attempts
        elif action == "tick":
            assert isinstance(value, float)
            now += value
        assert not is_locked(record, now + policy.max_cooldown)


def test_an_attempt_beyond_the_budget_in_flight_waits_then_is_admitted_after_a_success() -> None:
    policy = LockoutPolicy(max_failed_attempts=3, cooldown=10, max_cooldown=100, lease=30)
    record = LockoutRecord("k")
    admissions = []
    for n in range(5):  # five concurrent guesses: three are evaluated, two wait
        record, admission = admit(record, 0, policy, f"a{n}")
        admissions.append(admission)
    assert admissions == [Admission.ADMITTED] * 3 + [Admission.WAIT] * 2
    assert [p.id for p in record.pending] == ["a0", "a1", "a2"]
    record, tripped = settle(record, 1, policy, "a0", Verdict.RIGHT)
    assert not tripped and record.failures == 0 and [p.id for p in record.pending] == ["a1", "a2"]
    record, admission = admit(record, 1, policy, "a3")
    assert admission is Admission.ADMITTED
    assert admit(record, 1, policy, "a4")[1] is Admission.WAIT  # still three in flight


def test_the_wrong_verdict_that_uses_up_the_budget_locks_and_the_waiters_are_refused() -> None:
    policy = LockoutPolicy(max_failed_attempts=3, cooldown=10, max_cooldown=100, lease=30)
    record = LockoutRecord("k")
    for n in range(3):
        record, _ = admit(record, 0, policy, f"a{n}")
    record, tripped = settle(record, 1, policy, "a0", Verdict.WRONG)
    assert not tripped
    record, _ = settle(record, 1, policy, "a1", Verdict.NONE)  # a timeout gives its place back
    assert record.failures == 1 and [p.id for p in record.pending] == ["a2"]
    record, admission = admit(record, 1, policy, "a3")
    assert admission is Admission.ADMITTED
    record, tripped = settle(record, 2, policy, "a2", Verdict.WRONG)
    assert not tripped
    record, tripped = settle(record, 2, policy, "a3", Verdict.WRONG)
    assert tripped and record.locked_until == 12 and record.lockouts == 1
    assert admit(record, 5, policy, "a4")[1] is Admission.LOCKED
    # the lock ends: a new count, and the next lock lasts twice as long
    record, admission = admit(record, 12, policy, "a5")
    assert admission is Admission.ADMITTED and record.failures == 0
    # a right guess clears everything (attempts still in flight keep their places)
    record, _ = admit(record, 12, policy, "a6")
    cleared, _ = settle(record, 13, policy, "a5", Verdict.RIGHT)
    assert cleared == LockoutRecord("k", updated_at=13, pending=record.pending[1:])


def test_a_lease_that_ran_out_frees_the_place_of_a_dead_process() -> None:
    policy = LockoutPolicy(max_failed_attempts=1, cooldown=10, max_cooldown=100, lease=30)
    record, _ = admit(LockoutRecord("k"), 0, policy, "dies")
    assert admit(record, 29.9, policy, "next")[1] is Admission.WAIT
    record, admission = admit(record, 30, policy, "next")
    assert admission is Admission.ADMITTED and [p.id for p in record.pending] == ["next"]
    # the dead one's late verdict, had it come, would only count: the lease's end is the bound
    assert settle(record, 31, policy, "dies", Verdict.NONE)[0].pending == record.pending


@given(policies, st.integers(1, 40))
def test_cooldowns_never_shrink_and_are_capped(policy: LockoutPolicy, count: int) -> None:
    previous = 0.0
    for lockouts in range(1, count + 1):
        current = policy.cooldown_for(lockouts)
        assert previous <= current <= policy.max_cooldown
        previous = current


def test_attempts_while_locked_do_not_extend_the_lock() -> None:
    policy = LockoutPolicy(max_failed_attempts=2, cooldown=10, max_cooldown=100)
    record = LockoutRecord("dn")
    for n, now in enumerate((0, 1)):
        record, _ = admit(record, now, policy, f"a{n}")
        record, _ = settle(record, now, policy, f"a{n}", Verdict.WRONG)
    assert record.locked_until == 11
    assert admit(record, 5, policy, "a2") == (record, Admission.LOCKED)


def test_a_lowered_limit_locks_an_account_already_past_it() -> None:
    """A configuration change may leave more failures than the new limit allows: the next
    attempt locks (it never waits for attempts that are not there)."""
    record = LockoutRecord("k", failures=4)
    policy = LockoutPolicy(max_failed_attempts=3, cooldown=10, max_cooldown=100)
    record, admission = admit(record, 0, policy, "a")
    assert admission is Admission.LOCKED and record.locked_until == 10


def _password_login(live: LiveServer, username: str, password: str) -> tuple[int, str | None]:
    response = live.call(
        "POST",
        "/admin/authentication",
        json={"providerName": "local", "username": username, "password": password,
              "deviceId": "4c07bc67-57ea-42dd-b702-c2d6c45419fc"},
    )  # fmt: skip
    return response.status_code, response.json().get("reason")


def test_password_guessing_is_locked_out_too(live: LiveServer) -> None:
    for _ in range(9):
        assert _password_login(live, "alice", "guess") == (401, "Invalid username or password.")
    assert _password_login(live, "alice", "guess") == (401, LOCKED["reason"])
    # right or wrong, the same answer while locked; other accounts are not affected
    assert _password_login(live, "alice", "alice-pass") == (401, LOCKED["reason"])
    assert _password_login(live, "dave", "dave-pass")[0] == 200
    live.clock.advance(60)
    assert _password_login(live, "alice", "alice-pass")[0] == 200
    # a success resets the count
    for _ in range(9):
        _password_login(live, "alice", "guess")
    assert _password_login(live, "alice", "alice-pass")[0] == 200


def test_unknown_accounts_lock_the_same_way(live: LiveServer) -> None:
    """Otherwise the lockout itself would tell which accounts exist."""
    answers = [_password_login(live, "nobody", "guess") for _ in range(11)]
    assert answers[:9] == [(401, "Invalid username or password.")] * 9
    assert answers[9:] == [(401, LOCKED["reason"])] * 2


def test_lockout_keys_are_bounded_whatever_the_name() -> None:
    """The user name is the client's: a row's key must not grow with it (at most 200 chars)."""
    MAX_KEY_CHARS = 200  # the documented bound, not the module's constant: a change shows here
    short = login_key("local", "alice")
    assert short == "login:local:alice"
    edge = "x" * (MAX_KEY_CHARS - len("login:local:"))
    assert login_key("local", edge) == f"login:local:{edge}"  # exactly 200: as is
    long_one = login_key("local", edge + "y")
    long_two = login_key("local", "z" * 4096)
    assert long_one.startswith("login:sha256:") and len(long_one) <= MAX_KEY_CHARS
    assert len(long_two) <= MAX_KEY_CHARS and long_two != long_one
    assert login_key("local", "z" * 4096) == long_two  # the same name, the same key


@contextlib.asynccontextmanager
async def _sqlite(path: Path) -> AsyncIterator[Store]:
    store = open_store(f"sqlite:///{path}")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def _guess(guard: LockoutGuard, policy: LockoutPolicy, verdict: Verdict,
                 hold: asyncio.Event | None = None) -> str:  # fmt: skip
    """One guess through the guard: how it ended ("right", "wrong", "tripped", "locked")."""
    try:
        async with guard.attempt("k", policy) as attempt:
            if hold is not None:
                await hold.wait()
            if verdict is Verdict.RIGHT:
                attempt.right()
            elif verdict is Verdict.WRONG:
                attempt.wrong()
    except Locked:
        return "locked"
    if attempt.tripped:
        return "tripped"
    return verdict.value


def test_attempts_without_a_verdict_never_lock(tmp_path: Path) -> None:
    """Through the guard and a real store: RADIUS timeouts (no verdict) give their place back,
    so any number of them leaves the user free and uncounted."""
    policy = LockoutPolicy(max_failed_attempts=3, cooldown=60, max_cooldown=600)

    async def body() -> None:
        async with _sqlite(tmp_path / "lockout.db") as store:
            guard = LockoutGuard(store, clock=lambda: 100.0)
            assert [await _guess(guard, policy, Verdict.WRONG) for _ in range(2)] == ["wrong"] * 2
            for _ in range(10):
                assert await _guess(guard, policy, Verdict.NONE) == "none"
            record = await store.get_lockout("k")
            assert (record.failures, record.lockouts, record.locked_until) == (2, 0, 0.0)
            assert record.pending == ()

    asyncio.run(body())


def test_concurrent_right_guesses_all_pass_and_wrong_ones_stop_at_the_budget(
    tmp_path: Path,
) -> None:
    """Twelve guesses at once with a budget of 5: right ones wait for a place and all pass;
    wrong ones: five are evaluated (the fifth locks) and the seven that waited are refused."""
    policy = LockoutPolicy(max_failed_attempts=5, cooldown=60, max_cooldown=600)

    async def body() -> None:
        async with _sqlite(tmp_path / "lockout.db") as store:
            guard = LockoutGuard(store, clock=lambda: 100.0)
            hold = asyncio.Event()
            right = [asyncio.create_task(_guess(guard, policy, Verdict.RIGHT, hold))
                     for _ in range(12)]  # fmt: skip
            await asyncio.sleep(0.05)
            assert len((await store.get_lockout("k")).pending) == 5  # five in flight, 7 wait
            hold.set()
            assert await asyncio.gather(*right) == ["right"] * 12
            hold = asyncio.Event()
            wrong = [asyncio.create_task(_guess(guard, policy, Verdict.WRONG, hold))
                     for _ in range(12)]  # fmt: skip
            await asyncio.sleep(0.05)
            hold.set()
            ends = Counter(await asyncio.gather(*wrong))
            assert ends == Counter({"wrong": 4, "tripped": 1, "locked": 7})

    asyncio.run(body())


def test_a_waiter_on_another_process_is_admitted_when_the_budget_settles(tmp_path: Path) -> None:
    """Two stores on one database file stand for two processes: the waiter learns of the
    other's settle by polling the store, and is then evaluated by the settled count."""
    policy = LockoutPolicy(max_failed_attempts=1, cooldown=60, max_cooldown=600)

    async def body() -> None:
        async with _sqlite(tmp_path / "l.db") as one, _sqlite(tmp_path / "l.db") as two:
            first = LockoutGuard(one, clock=lambda: 100.0)
            second = LockoutGuard(two, clock=lambda: 100.0, poll_seconds=0.01)
            hold = asyncio.Event()
            holder = asyncio.create_task(_guess(first, policy, Verdict.RIGHT, hold))
            await asyncio.sleep(0.02)
            waiter = asyncio.create_task(_guess(second, policy, Verdict.RIGHT))
            await asyncio.sleep(0.1)
            assert not waiter.done()  # its place is taken by the holder, on "another process"
            hold.set()
            assert list(await asyncio.gather(holder, waiter)) == ["right", "right"]
            # and by the settled count: a wrong verdict there locks the waiter out
            hold = asyncio.Event()
            holder = asyncio.create_task(_guess(first, policy, Verdict.WRONG, hold))
            await asyncio.sleep(0.02)
            waiter = asyncio.create_task(_guess(second, policy, Verdict.RIGHT))
            await asyncio.sleep(0.05)
            hold.set()
            assert list(await asyncio.gather(holder, waiter)) == ["tripped", "locked"]

    asyncio.run(body())


def test_a_waiter_gives_up_after_a_lease_of_waiting(tmp_path: Path) -> None:
    """The clock is frozen, so the holder's lease never runs out: the waiter waits one lease of
    real time and is then refused without an evaluation (no wait goes unbounded)."""
    policy = LockoutPolicy(max_failed_attempts=1, cooldown=60, max_cooldown=600, lease=0.2)

    async def body() -> None:
        async with _sqlite(tmp_path / "l.db") as store:
            guard = LockoutGuard(store, clock=lambda: 100.0)
            hold = asyncio.Event()
            holder = asyncio.create_task(_guess(guard, policy, Verdict.RIGHT, hold))
            await asyncio.sleep(0.02)
            with pytest.raises(StillInFlight):
                async with guard.attempt("k", policy):
                    pytest.fail("admitted while the only place was taken")
            hold.set()
            assert await holder == "right"
            assert await _guess(guard, policy, Verdict.RIGHT) == "right"

    asyncio.run(body())


def test_a_cancelled_guess_gives_its_place_back(postgres_url: str) -> None:
    """A client that hangs up mid-evaluation must not hold a place for a whole lease, even when
    it is cancelled again while settling (PostgreSQL: the settle really waits on the network)."""
    policy = LockoutPolicy(max_failed_attempts=1, cooldown=60, max_cooldown=600)

    async def body() -> None:
        store = open_store(postgres_url)
        await store.open()
        try:
            guard = LockoutGuard(store, clock=lambda: 100.0)
            task = asyncio.create_task(_guess(guard, policy, Verdict.WRONG, asyncio.Event()))
            await asyncio.sleep(0.1)
            assert len((await store.get_lockout("k")).pending) == 1
            task.cancel()
            await asyncio.sleep(0)  # the settle has begun ...
            task.cancel()  # ... and is cancelled too
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.2)  # the shielded settle finishes on its own
            record = await store.get_lockout("k")
            assert (record.pending, record.failures) == ((), 0)
        finally:
            await store.close()

    asyncio.run(body())


@pytest.mark.slow
def test_radius_timeouts_through_the_server_never_lock(tmp_path: Path) -> None:
    """Seven /otp calls to a RADIUS server that never answers: each is a 504, none counts as a
    guess (with the limit at 5, a counted sixth would be refused as locked out)."""
    import socket

    from appgate_mfa_server.app import create_app
    from tests.conftest import FakeClock, base_config, serve_in_thread, settings_from

    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    config = base_config(tmp_path)
    config["identityProviders"].append(
        {"name": "corp", "type": "Credentials", "mfaProvider": "radius",
         "users": [{"username": "tim", "password": "tim-pass"}]}
    )  # fmt: skip
    config["mfaProviders"].append(
        radius_provider("radius", silent.getsockname()[1], sharedSecret="s", timeout=0.15,
                        mode="OneFactor", lockout={"maxFailedAttempts": 5})
    )  # fmt: skip
    app = create_app(settings_from(config, tmp_path), clock=FakeClock())
    url, server, thread = serve_in_thread(app)
    try:
        with httpx.Client(timeout=10) as client:
            live = LiveServer(url, FakeClock(), settings_from(config, tmp_path), client, app)
            token = live.login("tim", "tim-pass", provider="corp")["token"]
            answers = [
                live.call("POST", "/admin/authentication/otp", token=token, json={"otp": "1"})
                for _ in range(7)
            ]
            assert [(a.status_code, a.json()["id"]) for a in answers] == [
                (504, "radius timeout")
            ] * 7
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        silent.close()


def test_the_purge_keeps_the_failures_of_the_last_hour(live: LiveServer) -> None:
    """A purge deletes lockout rows idle for an hour or more past their end, never a fresh
    count."""
    token, secret = _enrolled(live)
    for _ in range(4):
        assert live.otp(token, "000000").json()["reason"] == "Invalid OTP."
    live.clock.advance(3599)
    asyncio.run(live.app.state.service.purge())  # the server is idle: its store is free
    assert live.otp(token, "000000").json() == LOCKED  # the fifth: a first lockout, 60 s
    # idle for over an hour past its end, the row goes, and with it the count of lockouts:
    # the next lockout is a first one again (60 s, where a second would last 120 s)
    live.clock.advance(60 + 3601)
    asyncio.run(live.app.state.service.purge())
    token = live.login("alice", "alice-pass")["token"]
    for _ in range(5):
        live.otp(token, "000000")
    live.clock.advance(60)
    assert live.otp(token, totp_now(secret, live.clock.now)).status_code == 200
