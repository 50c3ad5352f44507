"""Lockout after repeated wrong codes: same answer while locked, a growing but bounded cooldown."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
from hypothesis import given
from hypothesis import strategies as st

from server.lockout import LockoutPolicy, Reservation, after_success, give_back, is_locked, reserve
from server.store.base import LockoutRecord
from tests.conftest import LiveServer, totp_now

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
)


@given(policies, st.lists(st.floats(0, 10_000), max_size=60))
def test_a_lockout_always_ends_within_max_cooldown(
    policy: LockoutPolicy, gaps: list[float]
) -> None:
    record = LockoutRecord("CN=x,OU=y")
    now = 0.0
    for gap in gaps:
        now += gap
        record, _ = reserve(record, now, policy)  # a wrong guess: the reservation stays
        assert record.locked_until <= now + policy.max_cooldown
        assert not is_locked(record, now + policy.max_cooldown)
        assert 0 <= record.failures <= policy.max_failed_attempts


# A burst: several guesses reserved before any is settled, then settled in any order, some
# wrong, some without a verdict; then time moves on.
bursts = st.lists(
    st.tuples(
        st.lists(st.sampled_from(["wrong", "no verdict"]), min_size=1, max_size=30),
        st.floats(0, 5000),
        st.randoms(use_true_random=False),
    ),
    max_size=8,
)


@given(policies, bursts)
def test_no_more_guesses_than_allowed_are_ever_evaluated(
    policy: LockoutPolicy, bursts: list[tuple[list[str], float, object]]
) -> None:
    """Between two lockouts, at most max_failed_attempts guesses get a verdict, whatever the
    concurrency; and a lockout always ends."""
    record = LockoutRecord("k")
    now = 0.0
    judged: Counter[int] = Counter()  # guesses that got a verdict, by the window they were in
    for verdicts, gap, rng in bursts:
        admitted: list[tuple[Reservation, str, int]] = []
        for verdict in verdicts:
            window = record.lockouts  # lockouts that stand so far: which window this is
            record, reservation = reserve(record, now, policy)
            if reservation.admitted:
                admitted.append((reservation, verdict, window))
        rng.shuffle(admitted)  # type: ignore[attr-defined]
        for reservation, verdict, window in admitted:
            if verdict == "no verdict":
                record = give_back(record, reservation)
            else:
                judged[window] += 1
        assert max(judged.values(), default=0) <= policy.max_failed_attempts
        assert not is_locked(record, now + policy.max_cooldown)
        now += gap


def test_the_reservation_that_uses_up_the_attempts_locks_at_once() -> None:
    policy = LockoutPolicy(max_failed_attempts=3, cooldown=10, max_cooldown=100)
    record = LockoutRecord("k")
    reservations = []
    for _ in range(5):  # five concurrent guesses: three are evaluated, two refused
        record, reservation = reserve(record, 0, policy)
        reservations.append(reservation)
    assert [r.admitted for r in reservations] == [True, True, True, False, False]
    assert [r.tripped for r in reservations] == [False, False, True, False, False]
    assert record.locked_until == 10 and record.lockouts == 1
    # the tripping guess got no verdict (a RADIUS timeout): its lock is lifted, its slot back
    lifted = give_back(record, reservations[2])
    assert lifted.locked_until == 0 and lifted.lockouts == 0 and lifted.failures == 2
    assert reserve(lifted, 1, policy)[1].tripped
    # a right guess clears everything, the lock included
    assert after_success(record) == LockoutRecord("k")


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
    record, _ = reserve(record, 0, policy)
    record, _ = reserve(record, 1, policy)
    assert record.locked_until == 11
    assert reserve(record, 5, policy) == (record, Reservation(admitted=False))
    assert after_success(record) == LockoutRecord("dn", updated_at=1)


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


def test_a_reservation_given_back_leaves_no_trace() -> None:
    """A RADIUS timeout is not a guess: after it, the count is what it was (down to zero)."""
    policy = LockoutPolicy(max_failed_attempts=3, cooldown=10, max_cooldown=100)
    for before in (0, 1):
        record = LockoutRecord("k", failures=before)
        reserved, reservation = reserve(record, 0, policy)
        assert give_back(reserved, reservation).failures == before


def test_lockout_keys_are_bounded_whatever_the_name() -> None:
    """The user name is the client's: a row's key must not grow with it (at most 200 chars)."""
    from server.guard import lockout_key

    MAX_KEY_CHARS = 200  # the documented bound, not the module's constant: a change shows here
    short = lockout_key("login", "local", "alice")
    assert short == "login:local:alice"
    edge = "x" * (MAX_KEY_CHARS - len("login:local:"))
    assert lockout_key("login", "local", edge) == f"login:local:{edge}"  # exactly 200: as is
    long_one = lockout_key("login", "local", edge + "y")
    long_two = lockout_key("login", "local", "z" * 4096)
    assert long_one.startswith("login:sha256:") and len(long_one) <= MAX_KEY_CHARS
    assert len(long_two) <= MAX_KEY_CHARS and long_two != long_one
    assert lockout_key("login", "local", "z" * 4096) == long_two  # the same name, the same key


def test_attempts_without_a_verdict_never_lock(tmp_path: Path) -> None:
    """Through the guard and a real store: RADIUS timeouts (no verdict) are given back, even the
    one that had tripped the lock, so any number of them leaves the user free and uncounted."""
    from server.guard import LockoutGuard
    from server.store import open_store

    policy = LockoutPolicy(max_failed_attempts=3, cooldown=60, max_cooldown=600)

    async def body() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'lockout.db'}")
        await store.open()
        try:
            guard = LockoutGuard(store, clock=lambda: 100.0)
            for _ in range(2):  # two wrong guesses stay counted
                assert (await guard.reserve("k", policy)).admitted
            tripping = await guard.reserve("k", policy)
            assert tripping.tripped  # the third would lock ...
            await guard.no_verdict("k", tripping)  # ... but it got no verdict
            for _ in range(10):
                reservation = await guard.reserve("k", policy)
                assert reservation.admitted
                await guard.no_verdict("k", reservation)
            record = await store.get_lockout("k")
            assert (record.failures, record.lockouts, record.locked_until) == (2, 0, 0.0)
        finally:
            await store.close()

    asyncio.run(body())


def test_radius_timeouts_through_the_server_never_lock(tmp_path: Path) -> None:
    """Seven /otp calls to a RADIUS server that never answers: each is a 504, none counts as a
    guess (with the limit at 5, a counted sixth would be refused as locked out)."""
    import socket

    from server.app import create_app
    from tests.conftest import FakeClock, base_config, serve_in_thread, settings_from

    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    config = base_config(tmp_path)
    config["identityProviders"].append(
        {"name": "corp", "type": "Credentials", "mfaProvider": "radius",
         "users": [{"username": "tim", "password": "tim-pass"}]}
    )  # fmt: skip
    config["mfaProviders"].append(
        {"name": "radius", "type": "Radius", "hostnames": ["127.0.0.1"],
         "port": silent.getsockname()[1], "sharedSecret": "s", "timeout": 0.15,
         "mode": "OneFactor", "lockout": {"maxFailedAttempts": 5}}
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
