# -*- test-case-name: tests.test_mock_request_view -*-
"""A request as the engine sees it: ``RequestView`` has no wire format in sight (tests build
one by hand), ``WireView`` computes the same from a parsed packet, and only what a step asks
for (decoded attributes, the revealed PAP password)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator, Mapping, Sequence

from radius_codec.authenticators import MaStatus
from radius_codec.codes import CHAP_RESPONSE_LENGTH, Attr
from radius_codec.dictionary import Value, code_of, decode_value, name_of
from radius_codec.packet import Packet
from radius_codec.passwords import AuthProtocol, chap_matches, pap_reveal

EMPTY: Mapping[str, Sequence[Value]] = {}
_USER_PASSWORD, _CHAP_PASSWORD = int(Attr.USER_PASSWORD), int(Attr.CHAP_PASSWORD)
# the members as module names: on the per-packet path an enum class's attribute costs ~70 ns
_PAP, _CHAP, _VALID = AuthProtocol.PAP, AuthProtocol.CHAP, MaStatus.VALID


def _never(_clear: str) -> bool:
    return False


def _nothing() -> str | None:
    return None


class RequestView:
    """What the engine needs of a request. Expensive parts are computed only when a step asks;
    ``WireView`` computes them from the packet."""

    __slots__ = (
        "_attributes",
        "_clear",
        "_matches",
        "auth_type",
        "chap",
        "message_authenticator",
        "state",
        "user_name",
    )

    def __init__(
        self,
        user_name: str | None,
        state: bytes | None = None,
        message_authenticator: bool = False,
        attributes: Mapping[str, Sequence[Value]] = EMPTY,
        password_matches: Callable[[str], bool] = _never,
        auth_type: AuthProtocol | None = None,
        clear_password: Callable[[], str | None] = _nothing,  # PAP only: CHAP never reveals it
        chap: tuple[bytes, bytes] | None = None,  # (challenge, CHAP-Password)
    ) -> None:
        self.user_name = user_name
        self.state = state
        self.message_authenticator = message_authenticator
        self._attributes = attributes
        self._matches = password_matches
        self.auth_type = auth_type
        self._clear = clear_password
        self.chap = chap

    @property
    def attributes(self) -> Mapping[str, Sequence[Value]]:
        return self._attributes

    def password_matches(self, expected: str) -> bool:
        return self._matches(expected)

    @property
    def clear_password(self) -> str | None:
        return self._clear()


def auth_protocol(kinds: Sequence[int] | set[int]) -> AuthProtocol | None:
    """PAP when a request carries a User-Password, CHAP for a CHAP-Password, else None."""
    if _USER_PASSWORD in kinds:
        return _PAP
    if _CHAP_PASSWORD in kinds:
        return _CHAP
    return None


def chap_exchange(packet: Packet) -> tuple[bytes, bytes] | None:
    """(challenge, CHAP-Password) of a CHAP request, else None; the challenge is the
    CHAP-Challenge attribute or else the Request Authenticator (RFC 2865 section 2.2)."""
    response = packet.first(_CHAP_PASSWORD)
    if response is None or len(response) != CHAP_RESPONSE_LENGTH:
        return None
    return packet.first(Attr.CHAP_CHALLENGE) or packet.authenticator, response


class RequestAttributes(Mapping[str, list[Value]]):
    """The packet's attributes by name, each decoded on first use only."""

    __slots__ = ("_cache", "_packet")

    def __init__(self, packet: Packet) -> None:
        self._packet = packet
        self._cache: dict[str, list[Value]] = {}

    def __getitem__(self, name: str) -> list[Value]:
        found = self._cache.get(name)
        if found is None:
            try:
                code = code_of(name)
            except KeyError:
                raise KeyError(name) from None
            raw = self._packet.values(code)
            if not raw:
                raise KeyError(name)
            found = self._cache[name] = [decode_value(code, value) for value in raw]
        return found

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for kind, _ in self._packet.attrs:
            seen.setdefault(name_of(kind), None)
        return iter(seen)

    def __len__(self) -> int:
        return len({kind for kind, _ in self._packet.attrs})


class WireView(RequestView):
    """A parsed request as a RequestView."""

    __slots__ = ("_packet", "_revealed", "_secret")

    def __init__(self, packet: Packet, secret: bytes, ma: MaStatus) -> None:
        # the base class's slots, set directly: this runs for every request
        auth_type = auth_protocol([kind for kind, _ in packet.attrs])
        self.user_name = packet.user_name
        self.state = packet.state
        self.message_authenticator = ma is _VALID
        self.auth_type = auth_type
        self.chap = chap_exchange(packet) if auth_type is _CHAP else None
        self._attributes = EMPTY
        self._packet = packet
        self._secret = secret
        self._revealed: list[bytes | None] = []

    @property
    def attributes(self) -> Mapping[str, Sequence[Value]]:
        if self._attributes is EMPTY:
            self._attributes = RequestAttributes(self._packet)
        return self._attributes

    def _pap(self) -> bytes | None:
        if not self._revealed:
            hidden = self._packet.first(_USER_PASSWORD)
            clear = None
            if hidden is not None:
                clear = pap_reveal(hidden, self._secret, self._packet.authenticator)
            self._revealed.append(clear)
        return self._revealed[0]

    def password_matches(self, expected: str) -> bool:
        wanted = expected.encode("utf-8")
        if self.chap is not None:
            return chap_matches(*self.chap, wanted)
        revealed = self._pap()
        return revealed is not None and hmac.compare_digest(revealed, wanted)

    @property
    def clear_password(self) -> str | None:
        if self.chap is not None:
            return None
        revealed = self._pap()
        return None if revealed is None else revealed.decode("utf-8", "ignore")


def view(packet: Packet, secret: bytes, ma: MaStatus) -> RequestView:
    """What the engine needs of a request."""
    return WireView(packet, secret, ma)
