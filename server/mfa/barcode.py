"""The QR code of an otpauth URL as a JPEG, made cheaply.

Pure-Python QR encoders spend most of their time trying all eight mask patterns to pick the one
with the lowest penalty score (about 8 ms here). Any of the eight is a valid code that every
reader decodes; the search only buys slightly fewer confusing patterns. Fixing the mask and
drawing the module matrix straight into a greyscale image (instead of one rectangle per module)
brings a code to about 2 ms. bench/README.md has the figures; tests decode the result with zxing.
"""

from __future__ import annotations

import io

import qrcode
import qrcode.constants
from PIL import Image

FIXED_MASK_PATTERN = 4
MODULE_PIXELS = 6
QUIET_ZONE_MODULES = 4
JPEG_QUALITY = 85


def qr_matrix(text: str) -> list[list[bool]]:
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=QUIET_ZONE_MODULES,
        mask_pattern=FIXED_MASK_PATTERN,
    )
    code.add_data(text)
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()
    return matrix


def qr_jpeg(text: str) -> bytes:
    matrix = qr_matrix(text)
    size = len(matrix)
    pixels = bytes(0 if dark else 255 for row in matrix for dark in row)
    image = Image.frombytes("L", (size, size), pixels).resize(
        (size * MODULE_PIXELS, size * MODULE_PIXELS), Image.Resampling.NEAREST
    )
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()
