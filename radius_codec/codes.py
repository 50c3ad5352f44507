"""The numbers of RADIUS: packet codes, the attribute types the code relies on, and the sizes
RFC 2865 fixes. Everything else names them from here."""

from __future__ import annotations

from enum import IntEnum

HEADER_LENGTH = 20  # Code, Identifier, Length, Authenticator (RFC 2865 section 3)
AUTHENTICATOR_LENGTH = 16
MAX_PACKET_LENGTH = 4096  # RFC 2865 section 3
MAX_VALUE_LENGTH = 253  # one attribute's value: its Length octet counts the 2 header octets too
PAP_MAX_LENGTH = 128  # a User-Password, hidden or clear (RFC 2865 section 5.2)
CHAP_RESPONSE_LENGTH = 17  # CHAP-Password: the CHAP identifier and an MD5 (RFC 2865 section 5.3)
MESSAGE_AUTHENTICATOR_LENGTH = 18  # the whole attribute: type, length, HMAC-MD5 (RFC 3579)


class Code(IntEnum):
    """Packet codes (RFC 2865 section 3, RFC 2866 section 3, RFC 5997)."""

    ACCESS_REQUEST = 1
    ACCESS_ACCEPT = 2
    ACCESS_REJECT = 3
    ACCOUNTING_REQUEST = 4
    ACCOUNTING_RESPONSE = 5
    ACCESS_CHALLENGE = 11
    STATUS_SERVER = 12
    STATUS_CLIENT = 13

    @property
    def label(self) -> str:
        """The name the RFCs (and radclient, and the mock's journal) write: Access-Request."""
        return self.name.title().replace("_", "-")


class Attr(IntEnum):
    """The attribute types the server's client and the mock handle themselves; any other is
    known by name through the dictionary (``radius_codec.dictionary``)."""

    USER_NAME = 1
    USER_PASSWORD = 2
    CHAP_PASSWORD = 3
    NAS_IP_ADDRESS = 4
    REPLY_MESSAGE = 18
    STATE = 24
    SESSION_TIMEOUT = 27
    NAS_IDENTIFIER = 32
    PROXY_STATE = 33
    ACCT_STATUS_TYPE = 40
    CHAP_CHALLENGE = 60
    MESSAGE_AUTHENTICATOR = 80


_LABELS = {code.value: code.label for code in Code}


_BY_LABEL = {code.label: code for code in Code}


def code_of_label(label: str) -> Code:
    """2 (Access-Accept) for ``Access-Accept``: the reverse of ``Code.label``."""
    return _BY_LABEL[label]


def code_label(code: int) -> str:
    """``Access-Accept`` for 2; the number itself for a code RADIUS does not define here."""
    return _LABELS.get(code) or str(code)
