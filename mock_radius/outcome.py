# -*- test-case-name: tests.test_mock_protocol, tests.test_mock_docs -*-
"""What the mock did with a datagram: one value per journal entry, shared by the protocol, the
journal, the tests and the documentation (docs/mock-radius.md lists them all, a test checks)."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    MATCHED = "matched"
    MISMATCH = "mismatch"
    DROPPED_BY_SCRIPT = "dropped-by-script"
    STATUS_SERVER = "answered-status-server"
    REPLY_TOO_LONG = "reply-too-long"
    RETRANSMISSION_PENDING = "retransmission-pending"
    RETRANSMISSION_FROM_CACHE = "retransmission-answered-from-cache"
    RETRANSMISSION_DROPPED = "retransmission-dropped"
    RETRANSMISSION_IGNORED = "retransmission-ignored"
    DROPPED_MALFORMED = "dropped-malformed"
    DROPPED_UNKNOWN_SOURCE = "dropped-unknown-source"
    DROPPED_NO_MESSAGE_AUTHENTICATOR = "dropped-no-message-authenticator"
    DROPPED_BAD_MESSAGE_AUTHENTICATOR = "dropped-bad-message-authenticator"
    DROPPED_BAD_REQUEST_AUTHENTICATOR = "dropped-bad-request-authenticator"
    DROPPED_NO_SCENARIO = "dropped-no-scenario"
    DROPPED_UNSUPPORTED_CODE = "dropped-unsupported-code"
    DROPPED_OVERLOAD = "dropped-overload"
    INTERNAL_ERROR = "internal-error"

    @property
    def summary_only(self) -> bool:
        """Dropped before a scenario looked at it: the journal keeps a summary, not the
        packet, so junk cannot fill memory."""
        return self in _SUMMARY_ONLY

    @property
    def meaning(self) -> str:
        return _MEANING[self]


_SUMMARY_ONLY = {
    Outcome.RETRANSMISSION_PENDING,
    Outcome.RETRANSMISSION_FROM_CACHE,
    Outcome.RETRANSMISSION_DROPPED,
    Outcome.RETRANSMISSION_IGNORED,
    Outcome.DROPPED_MALFORMED,
    Outcome.DROPPED_UNKNOWN_SOURCE,
    Outcome.DROPPED_NO_MESSAGE_AUTHENTICATOR,
    Outcome.DROPPED_BAD_MESSAGE_AUTHENTICATOR,
    Outcome.DROPPED_BAD_REQUEST_AUTHENTICATOR,
    Outcome.DROPPED_NO_SCENARIO,
    Outcome.DROPPED_UNSUPPORTED_CODE,
    Outcome.DROPPED_OVERLOAD,
    Outcome.INTERNAL_ERROR,
}

_MEANING = {
    Outcome.MATCHED: "a step answered (or dropped, see dropped-by-script)",
    Outcome.MISMATCH: "no step fitted: the onMismatch reply (accounting: an empty "
    "Accounting-Response); nearMiss names the closest step, hint says it in words",
    Outcome.DROPPED_BY_SCRIPT: "a drop step: no answer to this transmission",
    Outcome.STATUS_SERVER: "a Status-Server (RFC 5997) answered: Access-Accept on the "
    "auth port, Accounting-Response on the accounting port",
    Outcome.REPLY_TOO_LONG: "the reply would exceed 4096 octets (RFC 2865): not sent",
    Outcome.RETRANSMISSION_PENDING: "a retransmission while the reply is delayed: discarded, "
    "the reply goes out once when ready",
    Outcome.RETRANSMISSION_FROM_CACHE: "a retransmission after the reply: the same reply "
    "again, from the duplicate cache",
    Outcome.RETRANSMISSION_DROPPED: "a retransmission of a request whose reply was too long "
    "to send (a retransmission of a dropped one goes to the script again: transmission 2, "
    "3...)",
    Outcome.RETRANSMISSION_IGNORED: "a retransmission of a step with onRetransmit: ignore",
    Outcome.DROPPED_MALFORMED: "not a RADIUS packet we may answer (length, attribute "
    "framing, two Message-Authenticators...): error says why",
    Outcome.DROPPED_UNKNOWN_SOURCE: "the source address is not in --client",
    Outcome.DROPPED_NO_MESSAGE_AUTHENTICATOR: "no Message-Authenticator: a Status-Server "
    "(RFC 5997 requires one), or an Access-Request whose scenario requires one (as FreeRADIUS, "
    "no answer)",
    Outcome.DROPPED_BAD_MESSAGE_AUTHENTICATOR: "the Message-Authenticator does not verify "
    "(another secret, or tampering)",
    Outcome.DROPPED_BAD_REQUEST_AUTHENTICATOR: "an Accounting-Request whose Request "
    "Authenticator does not verify (RFC 2866)",
    Outcome.DROPPED_NO_SCENARIO: "no scenario covers the User-Name (serve says so once per "
    "user on stderr)",
    Outcome.DROPPED_UNSUPPORTED_CODE: "a packet code this port does not serve",
    Outcome.DROPPED_OVERLOAD: "too many delayed replies waiting at once (--max-pending)",
    Outcome.INTERNAL_ERROR: "a bug in the mock cost this packet (health counts errors)",
}
