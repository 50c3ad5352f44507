# -*- test-case-name: tests.test_totp, tests.test_login_flow -*-
"""The QR code of an otpauth URL as a JPEG (the vendor's `barcode` field is a base64 JPEG).

The module matrix comes from zxing-cpp, a maintained C++ encoder with wheels for the common
platforms: about 0.3 ms a code, where the pure-Python ``qrcode`` package took 1.8 ms even with
its mask search skipped (bench/bench_qr.py). Where zxing-cpp cannot be imported, ``qrcode`` (with
a fixed mask: any of the eight is a valid code) makes the same kind of matrix. The matrix is
then drawn straight into a greyscale image, scaled with nearest-neighbour and saved as a JPEG.

Each module is 8 x 8 pixels and the quiet zone a whole number of modules, so every 8 x 8 block
of the JPEG is one flat colour: a block without edges keeps only its DC coefficient, so the
picture stays sharp and the file small (about 3.6 KB where 6-pixel modules, whose edges cut
through the blocks, made 29 KB), which makes the whole Secret answer 8 times smaller to encode,
send and read.
"""

from __future__ import annotations

import io

from PIL import Image

MODULE_PIXELS = 8  # = the JPEG block size: see above
QUIET_ZONE_MODULES = 4
JPEG_QUALITY = 85
FIXED_MASK_PATTERN = 4  # for the qrcode fallback

try:
    import zxingcpp
except ImportError:  # pragma: no cover - platforms without a zxing-cpp wheel
    zxingcpp = None  # type: ignore[assignment]


def _zxing_matrix(text: str) -> tuple[int, bytes]:
    """(side, one byte per module: 0 dark, 255 light), quiet zone included."""
    assert zxingcpp is not None
    # otpauth URLs are ASCII (percent-encoded); other text is marked UTF-8 (ECI), or readers
    # would guess another charset for it
    extra = {} if text.isascii() else {"eci": "UTF8"}
    code = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M", **extra)
    image = code.to_image(scale=1, add_quiet_zones=True)
    side = image.shape[0]
    return side, memoryview(image).tobytes()  # type: ignore[arg-type]  # a buffer, untyped


def _qrcode_matrix(text: str) -> tuple[int, bytes]:
    import qrcode
    import qrcode.constants

    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=QUIET_ZONE_MODULES,
        mask_pattern=FIXED_MASK_PATTERN,
    )
    code.add_data(text)
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()
    return len(matrix), bytes(0 if dark else 255 for row in matrix for dark in row)


def qr_jpeg(text: str, *, encoder: str = "auto") -> bytes:
    """``encoder``: "auto" (zxing-cpp where installed), "zxing" or "qrcode"."""
    use_zxing = encoder == "zxing" or (encoder == "auto" and zxingcpp is not None)
    side, pixels = _zxing_matrix(text) if use_zxing else _qrcode_matrix(text)
    image = Image.frombytes("L", (side, side), pixels).resize(
        (side * MODULE_PIXELS, side * MODULE_PIXELS), Image.Resampling.NEAREST
    )
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()
