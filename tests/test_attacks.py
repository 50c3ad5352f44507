"""Security promises under attack: bursts of concurrent requests on real server processes
(two processes on one PostgreSQL where the promise is about processes), counted from what the
servers wrote in their audit logs."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from appgate_mfa_server.passwords import hash_password
from tests.conftest import (
    ACCEPT,
    DEVICE_ID,
    ServerProcess,
    http_call,
    http_login,
    mfa_server,
    totp_now,
)

LOCKED = "Too many failed attempts. Try again later."
INIT = "/admin/authentication/otp/initialize"
OTP = "/admin/authentication/otp"
CAROL_HASH = hash_password("carol-pass")


def _config(storage: str, **server: Any) -> dict[str, Any]:
    return {
        # the bursts stand for many clients, all on 127.0.0.1: no share per address
        "server": {"maxConnectionsPerAddress": 1000, **server},
        "storage": {"url": storage, "encryptionKeyFile": "./shared.key"},
        "identityProviders": [
            {"name": "local", "mfaProvider": "builtin", "users": [
                {"username": "alice", "password": "alice-pass"},
                {"username": "carol", "passwordHash": CAROL_HASH},
                *({"username": f"u{i}", "password": f"u{i}-pass"} for i in range(8)),
            ]},
            {"name": "service", "users": [{"username": "bob", "password": "bob-pass"}]},
        ],
        "mfaProviders": [{"name": "builtin", "type": "DefaultTimeBased"}],
    }  # fmt: skip


@contextmanager
def servers(
    storage: str, folder: Path, count: int, **server: Any
) -> Iterator[list[tuple[str, ServerProcess]]]:
    """``count`` server processes on one database (the first creates the shared key file)."""
    path = folder / "server.yaml"
    path.write_text(yaml.safe_dump(_config(storage, **server)))
    with ExitStack() as stack:
        started = []
        for _ in range(count):
            url, process, _ready = stack.enter_context(mfa_server(["--config", str(path)]))
            started.append((url, process))
        yield started


def _events(processes: list[tuple[str, ServerProcess]], *names: str) -> int:
    return sum(len(p.log.events(name)) for _, p in processes for name in names)


Request = tuple[str, str, dict[str, Any], str | None]  # url, path, JSON body, bearer token


async def _burst(requests: Sequence[Request]) -> list[httpx.Response]:
    """Send every (url, path, body, token) at once."""
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def send(
            url: str, path: str, body: dict[str, Any], token: str | None
        ) -> httpx.Response:
            headers = dict(ACCEPT)
            if token:
                headers["Authorization"] = f"Bearer {token}"
            return await client.post(url + path, headers=headers, json=body)

        return list(await asyncio.gather(*(send(*r) for r in requests)))


def _enrol(url: str, user: str = "alice") -> tuple[str, str]:
    """A verified seed for ``user``: (its secret, a fresh partial token)."""
    with httpx.Client(timeout=10) as client:
        token = http_login(client, url, "local", user, f"{user}-pass")
        secret = http_call(client, url, INIT, token).json()["secret"]
        assert (
            http_call(client, url, OTP, token, {"otp": totp_now(secret, time.time())}).status_code
            == 200
        )
        return secret, http_login(client, url, "local", user, f"{user}-pass")


@pytest.mark.slow
def test_a_burst_of_200_wrong_codes_on_two_processes_gets_5_evaluated(
    postgres_url: str, tmp_path: Path
) -> None:
    with servers(postgres_url, tmp_path, 2) as procs:
        urls = [u for u, _ in procs]
        secret, token = _enrol(urls[0])
        burst = [(urls[i % 2], OTP, {"otp": f"{i:06d}"}, token) for i in range(200)]
        answers = asyncio.run(_burst(burst))
        assert {r.status_code for r in answers} == {401}
        reasons = [r.json()["reason"] for r in answers]
        assert reasons.count(LOCKED) >= 195
        # the right code of the next time step is refused now: the lock holds on both
        right = totp_now(secret, time.time() + 30)
        for url in urls:
            refused = http_call(httpx, url, OTP, token, {"otp": right})
            assert refused.json()["reason"] == LOCKED
    evaluated = _events(procs, "mfa_failed", "mfa_ok") - 1  # the enrolment's code was one
    assert evaluated == 5
    assert _events(procs, "lockout") == 1  # one lockout, one audit event
    assert _events(procs, "mfa_refused_locked") == 195 + 2


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_burst_of_password_guesses_gets_10_evaluated(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """carol's password is an scrypt hash (~50 ms a check, in threads): 80 guesses at once,
    on one process or two; then her right password is refused."""
    if backend == "sqlite":
        storage, count = "sqlite:///./mfa.db", 1
    else:
        storage, count = request.getfixturevalue("postgres_url"), 2
    body = {"providerName": "local", "username": "carol", "deviceId": DEVICE_ID}
    with servers(storage, tmp_path, count) as procs:
        urls = [u for u, _ in procs]
        answers = asyncio.run(_burst([(urls[i % count], "/admin/authentication",
                                       {**body, "password": f"guess-{i}"}, None)
                                      for i in range(80)]))  # fmt: skip
        assert {r.status_code for r in answers} == {401}
        for url in urls:
            right = httpx.post(url + "/admin/authentication", headers=ACCEPT,
                               json={**body, "password": "carol-pass"}, timeout=10)  # fmt: skip
            assert right.json()["reason"] == LOCKED
    assert _events(procs, "login_failed") == 10
    assert _events(procs, "login_ok") == 0
    assert _events(procs, "login_lockout") == 1
    assert _events(procs, "login_refused_locked") == 70 + count


@pytest.mark.slow
def test_logout_racing_authorization_leaves_no_live_token(
    postgres_url: str, tmp_path: Path
) -> None:
    with servers(postgres_url, tmp_path, 2) as procs:
        a, b = (u for u, _ in procs)

        async def race(client: httpx.AsyncClient) -> list[str]:
            login = await client.post(a + "/admin/authentication", headers=ACCEPT, json={
                "providerName": "service", "username": "bob", "password": "bob-pass",
                "deviceId": DEVICE_ID})  # fmt: skip
            partial = login.json()["token"]
            headers = {**ACCEPT, "Authorization": f"Bearer {partial}"}
            full, out = await asyncio.gather(
                client.get(a + "/admin/authorization", headers=headers),
                client.post(b + "/admin/authentication/logout", headers=headers),
            )
            problems = []
            if out.status_code == 204 and full.status_code == 200:
                both_answered_ok.append(1)
                token = full.json()["token"]
                for url in (a, b):
                    bearer = {**ACCEPT, "Authorization": f"Bearer {token}"}
                    check = await client.get(url + "/admin/authorization", headers=bearer)
                    if check.status_code != 401:
                        problems.append(f"{url}: {check.status_code} after logout")
            return problems

        async def all_races() -> list[str]:
            async with httpx.AsyncClient(timeout=20) as client:
                found: list[str] = []
                for _ in range(30):  # 30 rounds of 10 races at once: 300 races
                    rounds = await asyncio.gather(*(race(client) for _ in range(10)))
                    found += [p for r in rounds for p in r]
                return found

        both_answered_ok: list[int] = []
        assert asyncio.run(all_races()) == []
        assert both_answered_ok  # the race was run, not avoided: both sides answered OK


@pytest.mark.slow
def test_failed_logins_cost_the_same_for_known_and_unknown_names(tmp_path: Path) -> None:
    """alice has a clear-text password, carol an scrypt hash, zed does not exist: a wrong
    password must take the same time for each (else the timing tells who exists)."""
    with servers("sqlite:///./mfa.db", tmp_path, 1,
                 loginLockout={"maxFailedAttempts": 1000}) as procs:  # fmt: skip
        url = procs[0][0]
        timings: dict[str, list[float]] = {"alice": [], "carol": [], "zed": []}
        with httpx.Client(timeout=10) as client:
            for _ in range(15):
                for user in timings:  # interleaved, so load affects every name alike
                    started = time.perf_counter()
                    response = client.post(url + "/admin/authentication", headers=ACCEPT, json={
                        "providerName": "local", "username": user, "password": "wrong",
                        "deviceId": DEVICE_ID})  # fmt: skip
                    timings[user].append(time.perf_counter() - started)
                    assert response.status_code == 401
    medians = {user: statistics.median(t) for user, t in timings.items()}
    slowest, fastest = max(medians.values()), min(medians.values())
    assert (slowest - fastest) / slowest < 0.3, medians


@pytest.mark.slow
def test_a_token_is_spent_once_across_two_processes(postgres_url: str, tmp_path: Path) -> None:
    """The same MFA token sent to /authorization 20 times at once, half on each process: one
    full token comes out (replace_token is the one atomic step that spends it)."""
    with servers(postgres_url, tmp_path, 2) as procs:
        a, b = (u for u, _ in procs)

        def mfa_token(user: str) -> str:
            token = http_login(httpx, a, "local", user, f"{user}-pass")
            secret = http_call(httpx, a, INIT, token).json()["secret"]
            done = http_call(httpx, b, OTP, token, {"otp": totp_now(secret, time.time())})
            assert done.status_code == 200, done.text
            return str(done.json()["token"])

        tokens = [mfa_token(f"u{i}") for i in range(8)]

        async def rounds() -> list[list[int]]:
            found = []
            async with httpx.AsyncClient(timeout=20) as client:
                for token in tokens:
                    bearer = {**ACCEPT, "Authorization": f"Bearer {token}"}
                    answers = await asyncio.gather(
                        *(client.get(url + "/admin/authorization", headers=bearer)
                          for url in [a, b] * 10)
                    )  # fmt: skip
                    found.append(sorted(r.status_code for r in answers))
            return found

        results = asyncio.run(rounds())
    assert results == [[200] + [401] * 19] * 8, results
