"""Where the time of a `Secret` goes: the QR JPEG, by encoder.

python3 bench/bench_qr.py
"""

from __future__ import annotations

import base64
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import qrcode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from appgate_mfa_server.mfa import totp
from appgate_mfa_server.mfa.barcode import _qrcode_matrix, _zxing_matrix, qr_jpeg

URL = totp.otpauth_url(
    totp.new_secret(160),
    username="alice",
    provider="local",
    hostname="controller.example.com",
    issuer="Appgate SDP",
)


def naive() -> bytes:
    image = qrcode.make(URL)  # mask search + one rectangle per module
    out = io.BytesIO()
    image.save(out, format="JPEG")
    return out.getvalue()


def per_call_ms(function: Callable[[], object], rounds: int = 300) -> float:
    function()
    started = time.perf_counter()
    for _ in range(rounds):
        function()
    return (time.perf_counter() - started) / rounds * 1000


def main() -> None:
    rows = [
        ("qrcode.make + PIL JPEG (naive)", naive),
        ("matrix: qrcode, fixed mask (fallback)", lambda: _qrcode_matrix(URL)),
        ("matrix: zxing-cpp", lambda: _zxing_matrix(URL)),
        ("JPEG via qrcode (fallback)", lambda: qr_jpeg(URL, encoder="qrcode")),
        ("JPEG via zxing-cpp (the server)", lambda: qr_jpeg(URL, encoder="zxing")),
        ("the server's + base64", lambda: base64.b64encode(qr_jpeg(URL))),
    ]
    for name, function in rows:
        print(f"{name:<40} {per_call_ms(function):6.3f} ms")
    print(f"JPEG size {len(qr_jpeg(URL))} bytes, naive {len(naive())} bytes")


if __name__ == "__main__":
    main()
