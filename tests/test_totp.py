"""TOTP against RFC 6238's own test vectors, and the QR barcode decoded by zxing and zbar."""

from __future__ import annotations

import base64
import io
import subprocess
from pathlib import Path

import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from appgate_mfa_server.mfa import totp
from appgate_mfa_server.mfa.barcode import qr_jpeg

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


@pytest.mark.parametrize(
    ("when", "code"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ],
)
def test_rfc6238_sha1_vectors(when: int, code: str) -> None:
    params = totp.TotpParameters(digits=8, period=30, drift_steps=0)
    assert totp.matching_step(RFC_SECRET, code, when, params) == when // 30
    wrong = str((int(code) + 1) % 10**8).zfill(8)
    assert totp.matching_step(RFC_SECRET, wrong, when, params) is None
    # code_at (what `mfa-server totp` and the test-control code route print) agrees, in any
    # letter case, and its 6 digits are the last 6 of the 8
    assert totp.code_at(RFC_SECRET, when, params) == code
    assert totp.code_at(RFC_SECRET.lower(), when, totp.TotpParameters(6, 30, 0)) == code[2:]


@pytest.mark.parametrize("secret", ["GEZDGNBVGY3TQOJQ1", "GEZDGNBVGY3TQOJQ=", "ABC"])
def test_code_at_refuses_what_is_not_base32(secret: str) -> None:
    with pytest.raises(ValueError, match="the secret is not base32"):
        totp.code_at(secret, 59)


def test_drift_window_reports_the_matching_step() -> None:
    params = totp.TotpParameters(digits=8, period=30, drift_steps=1)
    # the code of t=59 (step 1) is accepted at t=80 (step 2), and the step says which
    assert totp.matching_step(RFC_SECRET, "94287082", 80, params) == 1
    assert totp.matching_step(RFC_SECRET, "94287082", 95, params) is None


@pytest.mark.parametrize("bits", [128, 160, 256, 512])
def test_secret_sizes(bits: int) -> None:
    secret = totp.new_secret(bits)
    padded = secret + "=" * (-len(secret) % 8)
    assert len(base64.b32decode(padded)) * 8 == bits


@pytest.mark.parametrize("bits", [120, 130, 520])
def test_bad_secret_sizes(bits: int) -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        totp.new_secret(bits)


def test_otpauth_url_escapes_the_label() -> None:
    url = totp.otpauth_url(
        "ABC", username="a b", provider="corp/x", hostname="h", issuer="Appgate SDP"
    )
    assert url == "otpauth://totp/a%20b@corp%2Fx@h?secret=ABC&issuer=Appgate%20SDP"
    custom = totp.otpauth_url(
        "ABC",
        username="u",
        provider="p",
        hostname="h",
        issuer="I",
        params=totp.TotpParameters(digits=8, period=60),
    )
    assert custom.endswith("&digits=8&period=60")


@settings(max_examples=25, deadline=None)
@given(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=150),
    st.sampled_from(["zxing", "qrcode"]),
)
def test_barcode_decodes_back_to_any_text(text: str, encoder: str) -> None:
    url = "otpauth://totp/" + text
    jpeg = qr_jpeg(url, encoder=encoder)
    assert jpeg[:3] == b"\xff\xd8\xff"  # a JPEG, as the vendor's field says
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(jpeg)))
    assert [d.text for d in decoded] == [url]


@pytest.mark.parametrize("encoder", ["zxing", "qrcode"])
def test_zbar_reads_the_barcode_too(encoder: str, tmp_path: Path) -> None:
    """A second, independent decoder (the one many phone apps are built on)."""
    url = totp.otpauth_url(totp.new_secret(160), username="alice", provider="local",
                           hostname="controller.example.com", issuer="Appgate SDP")  # fmt: skip
    image = tmp_path / "code.jpg"
    image.write_bytes(qr_jpeg(url, encoder=encoder))
    out = subprocess.run(["zbarimg", "--quiet", "--raw", str(image)], capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == url


@pytest.mark.parametrize("encoder", ["zxing", "qrcode"])
def test_every_jpeg_block_of_the_barcode_is_one_module(encoder: str) -> None:
    """Modules of 8 x 8 pixels on the JPEG's 8 x 8 blocks: no block holds an edge, so the
    picture has no ringing and the file stays small (a 6-pixel module made 29 KB)."""
    url = totp.otpauth_url(totp.new_secret(160), username="alice", provider="local",
                           hostname="controller.example.com", issuer="Appgate SDP")  # fmt: skip
    jpeg = qr_jpeg(url, encoder=encoder)
    image = Image.open(io.BytesIO(jpeg))
    side = image.size[0]
    assert image.size == (side, side) and side % 8 == 0
    pixels = image.load()
    assert pixels is not None
    for top in range(0, side, 8):
        for left in range(0, side, 8):
            block = [pixels[left + x, top + y] for y in range(8) for x in range(8)]
            assert max(block) - min(block) < 16, (left, top)  # one flat colour, give or take
    assert len(jpeg) < 8 * 1024
