# -*- test-case-name: tests.test_serving, tests.test_edge_limits -*-
"""TLS files for the server: the configured pair, or a self-signed pair for the demo.

Real clients of the Controller's API (the vendor's CLI among them) only speak HTTPS, so the
demo can make its own certificate for localhost and 127.0.0.1 on first start; clients then
trust that one file (``curl --cacert data/tls.crt``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SELF_SIGNED_DAYS = 825  # the longest lifetime Apple's TLS clients accept for a server cert
CERT_NAME = "tls.crt"
KEY_NAME = "tls.key"


class TlsError(Exception):
    """The certificate or key cannot be used; the message names the file."""


@dataclass(frozen=True)
class TlsFiles:
    cert_file: Path
    key_file: Path
    generated: bool = False


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """The context the server's TLS handshakes run with: Python's defaults for a server (TLS
    1.2 or later, its own list of strong ciphers) and the pair. Raises TlsError naming the
    files when they cannot be used."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    for path in (files.cert_file, files.key_file):
        if not path.is_file():
            raise TlsError(f"{path}: no such file")
    try:
        context.load_cert_chain(str(files.cert_file), str(files.key_file))
    except (ssl.SSLError, OSError) as exc:
        raise TlsError(
            f"{files.cert_file} / {files.key_file}: not a usable certificate and key: {exc}"
        ) from None
    return context


def check_pair(files: TlsFiles) -> None:
    """Load the pair the way the server will, so a bad file stops the start with its name."""
    server_context(files)


def self_signed(folder: Path, now: dt.datetime | None = None) -> TlsFiles:
    """The demo's certificate in ``folder``, made on first use (the key with mode 0600)."""
    cert_path, key_path = folder / CERT_NAME, folder / KEY_NAME
    if cert_path.exists() and key_path.exists():
        return TlsFiles(cert_path, key_path)
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    names = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_pem)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return TlsFiles(cert_path, key_path, generated=True)
