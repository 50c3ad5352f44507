"""End to end: the real server process against the real mock RADIUS process.

Every scenario the mock loads from scenarios/ carries an ``endToEnd`` block
(tests/e2e_spec.py): the HTTP calls it should produce through the server, and what the mock
should have received. One parametrized test runs them all, so adding a scenario file adds a
test case (the CI matrix).

Order does not matter: each test resets the mock's state for its users and reads the journal
from a mark taken at its start; the matrix server's providers allow many failed attempts, so
the failures one case provokes cannot lock out the next; the lockout test has a server of its
own. ``python3 -m pytest -p random_order --random-order tests/test_e2e_radius.py`` checks.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mock_radius.pytest_plugin import MockRadius
from mock_radius.scenario import Scenario, load_scenario, scenario_files
from tests.conftest import (
    ACCEPT,
    SCENARIOS,
    http_call,
    http_login,
    radius_provider,
    server_process,
    totp_now,
)
from tests.e2e_spec import EndToEnd, check_journal, run_calls

SCENARIO_FILES = scenario_files(SCENARIOS)  # exactly the files the mock serves
RADIUS_TIMEOUT = 2
# the matrix's cases provoke failures and push on purpose; neither a lockout nor a push limit
# may leak into the next case
MATRIX_LIMITS = {"lockout": {"maxFailedAttempts": 1000}, "pushLimit": 1000}
pytestmark = pytest.mark.mock_radius(time_scale=0.1)  # the module's mock


def journal_mark(mock: MockRadius) -> int:
    """The journal's last sequence number: read entries after it, without clearing anything."""
    seq: int = mock.control.health()["journal"]["lastSeq"]
    return seq


def e2e_config(scenarios: list[Scenario], port: int, folder: Path) -> dict[str, Any]:
    idps: list[dict[str, Any]] = [
        {
            "name": "local",
            "mfaProvider": "builtin",
            "users": [{"username": "alice", "password": "alice-pass"}],
        }
    ]
    providers: list[dict[str, Any]] = [{"name": "builtin", "type": "DefaultTimeBased"}]
    for scenario in scenarios:
        if scenario.end_to_end is None:
            continue
        spec = EndToEnd.model_validate(scenario.end_to_end)
        idps.append(
            {
                "name": scenario.name,
                "mfaProvider": scenario.name,
                "users": [{"username": spec.user, "password": spec.password}],
            }
        )
        provider = {**MATRIX_LIMITS, **spec.provider}
        providers.append(radius_provider(
            scenario.name, port, **{"sharedSecret": scenario.secret, "timeout": RADIUS_TIMEOUT,
                                    **provider}))  # fmt: skip
    return {
        "storage": {"url": "sqlite:///./e2e.db", "encryptionKeyFile": "./e2e.key"},
        "identityProviders": idps,
        "mfaProviders": providers,
    }


@pytest.fixture(scope="module")
def server_url(mock: MockRadius, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("e2e")
    scenarios = [load_scenario(f) for f in SCENARIO_FILES]
    with server_process(e2e_config(scenarios, mock.port, folder), folder) as url:
        yield url


def _matrix_case(scenario_file: Path) -> Any:
    """A scenario whose server answers 502 or 504 waits out the provider's whole timeout for
    each, so it is slow."""
    spec = EndToEnd.model_validate(load_scenario(scenario_file).end_to_end or {})
    waits = any(call.status in (502, 504) for case in spec.cases for call in case.calls)
    return pytest.param(scenario_file, marks=[pytest.mark.slow] if waits else [])


@pytest.mark.parametrize(
    "scenario_file", [_matrix_case(f) for f in SCENARIO_FILES], ids=lambda p: p.stem
)
def test_scenario_through_the_server(
    scenario_file: Path, mock: MockRadius, server_url: str
) -> None:
    scenario = load_scenario(scenario_file)
    assert scenario.end_to_end is not None, (
        f"{scenario_file.name} has no endToEnd block: say what it should do through the server"
    )
    spec = EndToEnd.model_validate(scenario.end_to_end)
    problems: list[str] = []
    with httpx.Client(timeout=30) as client:

        def login() -> tuple[str, float]:
            started = time.monotonic()
            token = http_login(client, server_url, scenario.name, spec.user, spec.password)
            return token, time.monotonic() - started

        for case in spec.cases:
            mock.control.reset(spec.user)
            mark = journal_mark(mock)
            variables = {"port": str(mock.port)}
            found = run_calls(client, server_url, login, case, variables)
            found += check_journal(mock.control.journal(user=spec.user, since=mark), case)
            problems += [f"{case.name}: {p}" for p in found]
    assert not problems, "\n".join(problems)


def test_the_matrix_covers_every_file_the_mock_loads(
    mock: MockRadius, mock_radius_factory: Any, tmp_path: Path
) -> None:
    """A .yml scenario is served like a .yaml one, so it is tested like one."""
    (tmp_path / "a.yaml").write_text("name: a\nsecret: s\nsteps: [{drop: true}]\n")
    (tmp_path / "b.yml").write_text("name: b\nsecret: s\nsteps: [{drop: true}]\n")
    (tmp_path / "notes.txt").write_text("not a scenario")
    served = mock_radius_factory(tmp_path).control.scenarios()["scenarios"]
    assert [s["name"] for s in served] == [load_scenario(f).name for f in scenario_files(tmp_path)]
    shipped = {s["name"] for s in mock.control.scenarios()["scenarios"]}
    assert shipped == {load_scenario(f).name for f in SCENARIO_FILES}


# Beyond the scenario files


INIT = "/admin/authentication/otp/initialize"
OTP = "/admin/authentication/otp"


def test_sealed_state_refuses_tampering_and_other_users(mock: MockRadius, tmp_path: Path) -> None:
    challenge = load_scenario(SCENARIOS / "challenge.yaml")
    provider = radius_provider("c", mock.port, timeout=RADIUS_TIMEOUT, mode="Challenge",
                               challengeSharedSecret="unused", useUserPassword=True)  # fmt: skip
    config = {
        "storage": {"url": "sqlite:///./s.db", "encryptionKeyFile": "./s.key"},
        "identityProviders": [
            {"name": "corp", "mfaProvider": "c", "users": [
                {"username": "carol", "password": "carol-pass"},
                {"username": "mallory", "password": "m-pass"},
            ]},
        ],
        "mfaProviders": [provider],
    }  # fmt: skip
    assert challenge.users == ["carol"]
    mock.control.reset("carol")
    with server_process(config, tmp_path) as url, httpx.Client(timeout=10) as client:
        carol = http_login(client, url, "corp", "carol", "carol-pass")
        state = http_call(client, url, INIT, carol, {"userPassword": "carol-pass"}).json()["state"]
        blob = bytearray(base64.b64decode(state))
        blob[-1] ^= 1
        tampered = base64.b64encode(bytes(blob)).decode()
        refused = http_call(client, url, OTP, carol, {"otp": "123456", "state": tampered})
        assert refused.status_code == 401
        assert refused.json()["reason"] == "The state is not one this server issued."
        malformed = http_call(client, url, OTP, carol, {"otp": "123456", "state": "not base64!"})
        assert malformed.status_code == 422
        assert malformed.json()["errors"] == [{"field": "state", "message": "must be base64"}]
        mallory = http_login(client, url, "corp", "mallory", "m-pass")
        stolen = http_call(client, url, OTP, mallory, {"otp": "123456", "state": state})
        assert stolen.status_code == 401
        assert stolen.json()["reason"] == "The state was issued to another user."
        # the genuine state still works for its owner
        assert (
            http_call(client, url, OTP, carol, {"otp": "123456", "state": state}).status_code == 200
        )


@pytest.mark.slow
def test_failover_to_the_second_hostname(mock: MockRadius, tmp_path: Path) -> None:
    # 127.0.0.2 on the mock's port: a socket that reads nothing, so no ICMP error either
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.2", mock.port))
        provider = radius_provider("o", mock.port, timeout=RADIUS_TIMEOUT, mode="OneFactor")
        provider["hostnames"] = ["127.0.0.2", "127.0.0.1"]
        config = {
            "storage": {"url": "sqlite:///./f.db", "encryptionKeyFile": "./f.key"},
            "identityProviders": [
                {"name": "corp", "mfaProvider": "o",
                 "users": [{"username": "olga", "password": "p"}]},
            ],
            "mfaProviders": [provider],
        }  # fmt: skip
        mock.control.reset("olga")
        mark = journal_mark(mock)
        with server_process(config, tmp_path) as url, httpx.Client(timeout=10) as client:
            token = http_login(client, url, "corp", "olga", "p")
            started = time.monotonic()
            response = http_call(client, url, OTP, token, {"otp": "654321"})
            elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert elapsed >= RADIUS_TIMEOUT / 2  # waited out the first host's share, then asked the next
    assert [e["step"] for e in mock.control.journal(user="olga", since=mark)] == ["right-code"]


def test_lockout_applies_to_radius_users(mock: MockRadius, tmp_path: Path) -> None:
    provider = radius_provider("one-factor", mock.port, timeout=RADIUS_TIMEOUT, mode="OneFactor")
    config = {
        "storage": {"url": "sqlite:///./l.db", "encryptionKeyFile": "./l.key"},
        "identityProviders": [{"name": "one-factor", "mfaProvider": "one-factor",
                               "users": [{"username": "olga", "password": "olga-pass"}]}],
        "mfaProviders": [provider],
    }  # fmt: skip
    with server_process(config, tmp_path) as url, httpx.Client(timeout=10) as client:
        for attempt in range(5):
            mock.control.reset("olga")
            token = http_login(client, url, "one-factor", "olga", "olga-pass")
            response = http_call(client, url, OTP, token, {"otp": "000000"})
            assert response.status_code == 401, attempt
        mark = journal_mark(mock)
        token = http_login(client, url, "one-factor", "olga", "olga-pass")
        locked = http_call(client, url, OTP, token, {"otp": "654321"})
    assert locked.json()["reason"] == "Too many failed attempts. Try again later."
    assert mock.control.journal(user="olga", since=mark) == []  # locked: RADIUS was not asked


def test_passwords_guessed_at_initialize_are_locked_out(mock: MockRadius, tmp_path: Path) -> None:
    """In Challenge mode with useUserPassword, initialize sends the client's password to
    RADIUS: each wrong one is a guess, under the same lockout as the codes."""
    provider = radius_provider("challenge", mock.port, timeout=RADIUS_TIMEOUT, mode="Challenge",
                               useUserPassword=True, authenticationProtocol="PAP")  # fmt: skip
    config = {
        "storage": {"url": "sqlite:///./g.db", "encryptionKeyFile": "./g.key"},
        "identityProviders": [{"name": "corp", "mfaProvider": "challenge",
                               "users": [{"username": "carol", "password": "carol-pass"}]}],
        "mfaProviders": [provider],
    }  # fmt: skip
    with server_process(config, tmp_path) as url, httpx.Client(timeout=10) as client:
        token = http_login(client, url, "corp", "carol", "carol-pass")
        reasons = [
            http_call(client, url, INIT, token, {"userPassword": f"guess-{i}"}).json()["reason"]
            for i in range(5)
        ]
        mark = journal_mark(mock)
        right = http_call(client, url, INIT, token, {"userPassword": "carol-pass"})
    assert reasons[4] == "Too many failed attempts. Try again later."
    assert all("Too many failed attempts" not in reason for reason in reasons[:4])
    assert right.json()["reason"] == "Too many failed attempts. Try again later."
    assert mock.control.journal(user="carol", since=mark) == []  # locked: RADIUS was not asked


def test_a_retried_push_joins_the_one_in_flight(mock: MockRadius, server_url: str) -> None:
    mock.control.reset("paula")
    mark = journal_mark(mock)

    async def both() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(
                server_url + "/admin/authentication",
                headers=ACCEPT,
                json={"providerName": "push", "username": "paula", "password": "paula-pass",
                      "deviceId": "4c07bc67-57ea-42dd-b702-c2d6c45419fc"},
            )  # fmt: skip
            token = response.json()["token"]
            headers = {**ACCEPT, "Authorization": f"Bearer {token}"}
            first = client.post(
                server_url + "/admin/authentication/otp", headers=headers, json={"otp": "x"}
            )
            second = client.post(
                server_url + "/admin/authentication/otp", headers=headers, json={"otp": "x"}
            )
            return list(await asyncio.gather(first, second))

    first, second = asyncio.run(both())
    assert first.status_code == second.status_code == 200
    assert first.json()["token"] == second.json()["token"]
    requests = [e for e in mock.control.journal(user="paula", since=mark)
                if not e["outcome"].startswith("retransmission")]  # fmt: skip
    assert len(requests) == 1  # one Access-Request, one prompt on the phone


@pytest.mark.slow
def test_fifty_pushes_wait_together_and_totp_stays_fast(
    mock_radius_factory: Any, tmp_path: Path
) -> None:
    """While 50 pushes wait on the phone, AlreadySeeded initializes are answered: all of them
    before the first push answer. No absolute timing: the order of events is the evidence,
    with the pushes seen waiting together at the mock."""
    scenario = tmp_path / "push-many.yaml"
    scenario.write_text(
        "name: push-many\nsecret: testing123\nsteps:\n"
        "  - {times: always, delay: 4, match: {password: push-secret}, "
        "reply: {code: Access-Accept}}\n"
    )
    radius = mock_radius_factory(scenario)
    users = [{"username": f"p{i}", "password": "pw"} for i in range(50)]
    config = {
        "storage": {"url": "sqlite:///./c.db", "encryptionKeyFile": "./c.key"},
        "identityProviders": [
            {"name": "push", "mfaProvider": "push", "users": users},
            {"name": "local", "mfaProvider": "builtin",
             "users": [{"username": "alice", "password": "alice-pass"}]},
        ],
        "mfaProviders": [
            radius_provider("push", radius.port, mode="Push",
                            challengeSharedSecret="push-secret", timeout=20),
            {"name": "builtin", "type": "DefaultTimeBased"},
        ],
    }  # fmt: skip
    with server_process(config, tmp_path) as url:
        with httpx.Client() as client:  # enrol alice so her initialize is AlreadySeeded
            token = http_login(client, url, "local", "alice", "alice-pass")
            secret = http_call(client, url, INIT, token).json()["secret"]
            assert (
                http_call(
                    client, url, OTP, token, {"otp": totp_now(secret, time.time())}
                ).status_code
                == 200
            )
            alice = http_login(client, url, "local", "alice", "alice-pass")
            tokens = [http_login(client, url, "push", u["username"], "pw") for u in users]

        async def push(client: httpx.AsyncClient, token: str) -> tuple[int, float]:
            response = await client.post(
                url + "/admin/authentication/otp",
                headers={**ACCEPT, "Authorization": f"Bearer {token}"},
                json={"otp": "x"},
            )
            return response.status_code, time.monotonic()

        async def all_waiting() -> int:
            """Wait (bounded) until the mock holds every push's reply back at once."""
            deadline = time.monotonic() + 20
            pending = 0
            while time.monotonic() < deadline:
                pending = radius.control.health()["pending"]
                if pending == len(users):
                    break
                await asyncio.sleep(0.02)
            return pending

        async def initializes(client: httpx.AsyncClient) -> list[float]:
            done = []
            for _ in range(10):
                response = await client.post(
                    url + "/admin/authentication/otp/initialize",
                    headers={**ACCEPT, "Authorization": f"Bearer {alice}"},
                )
                assert response.json() == {"type": "AlreadySeeded"}
                done.append(time.monotonic())
            return done

        async def everything() -> tuple[list[tuple[int, float]], int, list[float]]:
            limits = httpx.Limits(max_connections=100)
            async with httpx.AsyncClient(timeout=30, limits=limits) as client:
                pushes = asyncio.gather(*(push(client, t) for t in tokens))
                waiting = await all_waiting()
                done = await initializes(client)
                return await pushes, waiting, done

        answers, waiting, initialized = asyncio.run(everything())
    assert [status for status, _ in answers] == [200] * 50
    assert waiting == 50  # the 50 pushes waited together, not one after another
    assert max(initialized) < min(at for _, at in answers)  # none queued behind a push
