"""radius_codec/codes.py: the numbers, pinned against a second source each (pyrad's constants,
the dictionary file), so a wrong one cannot hide in both the programs and their tests."""

from __future__ import annotations

import pytest
from pyrad import packet as rp

from radius_codec.codes import Attr, Code, code_label, code_of_label
from radius_codec.dictionary import code_of, name_of

PYRAD_CODES = {
    "AccessRequest": Code.ACCESS_REQUEST,
    "AccessAccept": Code.ACCESS_ACCEPT,
    "AccessReject": Code.ACCESS_REJECT,
    "AccountingRequest": Code.ACCOUNTING_REQUEST,
    "AccountingResponse": Code.ACCOUNTING_RESPONSE,
    "AccessChallenge": Code.ACCESS_CHALLENGE,
    "StatusServer": Code.STATUS_SERVER,
    "StatusClient": Code.STATUS_CLIENT,
}


def test_every_code_is_pyrads() -> None:
    assert set(PYRAD_CODES.values()) == set(Code)
    for name, code in PYRAD_CODES.items():
        assert getattr(rp, name) == code, name


@pytest.mark.parametrize("attr", list(Attr), ids=lambda a: a.name)
def test_every_attribute_type_is_the_dictionarys(attr: Attr) -> None:
    """USER_NAME is User-Name, number for number."""
    assert name_of(attr).upper().replace("-", "_") == attr.name
    assert code_of(name_of(attr)) == attr


def test_code_labels_are_the_rfc_names() -> None:
    assert [code_label(code) for code in Code] == [
        "Access-Request", "Access-Accept", "Access-Reject", "Accounting-Request",
        "Accounting-Response", "Access-Challenge", "Status-Server", "Status-Client",
    ]  # fmt: skip
    assert code_label(40) == "40"  # Disconnect-Request: not one the codec knows


def test_a_label_names_its_code() -> None:
    """What a scenario writes (``Access-Challenge``) is the code the mock sends."""
    assert code_of_label("Access-Challenge") is Code.ACCESS_CHALLENGE
    assert all(code_of_label(code.label) is code for code in Code)
    with pytest.raises(KeyError):
        code_of_label("Access-Maybe")
